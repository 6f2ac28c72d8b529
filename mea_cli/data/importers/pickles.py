"""Loading a benchmark pickle safely: only numpy arrays and plain containers are unpickled,
so a pickle cannot run code, and a damaged or crafted one cannot crash the process.

Beyond the allowed globals, what numpy would trust is checked before numpy sees it. A numpy
dtype's state (the ``BUILD`` after ``numpy.dtype(spec)``) is accepted only when it is the one
numpy itself writes for that spec (or its byte-swapped twin): three changed bytes in it (flags,
item size) segfault ``dtype.__setstate__`` or make numpy read an array's bytes as object
pointers. An array's state is accepted only when its data fits its shape and dtype (an object
array: a list of exactly its size; numpy reads past a shorter one). ``numpy.ndarray`` is only an
argument of numpy's ``_reconstruct``, never called, and ``_reconstruct`` makes only the empty
array numpy starts from. The bytes that Python 3 writes at protocols 0-2 as
``_codecs.encode(text, "latin1")`` (``bytes()`` when empty) are rebuilt by small functions that
accept exactly that. The pure-Python unpickler (``pickle._Unpickler``) is used because the C one
cannot be intercepted at ``BUILD``; a benchmark pickle is a few dozen large byte strings (plus
one string per sample in MMSA's ``id``/``raw_text``), so it is about as fast (docs/data.md).
"""

from __future__ import annotations

import math
import os
import pickle
import re
import struct
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from mea_cli.data.importers.errors import ImportFormatError


class _Refused(pickle.UnpicklingError):
    """A pickle names an object that is not a numpy array's (nor a container's)."""


class _Damaged(pickle.UnpicklingError):
    """A pickle holds a value that numpy never writes (a damaged or crafted file)."""


def _short(value: object, limit: int = 80) -> str:
    """``value`` for a message, at most ``limit`` characters (a long string or bytes only named)."""
    if isinstance(value, tuple):
        text = "(" + ", ".join(_short(v, 24) for v in value[:10]) + ")"
    elif isinstance(value, (str, bytes, bytearray, list)) and len(value) > limit:
        text = f"<{type(value).__name__} of length {len(value)}>"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _latin1_bytes(text: object, encoding: object = "latin1", errors: object = "strict") -> bytes:
    """``_codecs.encode`` as Python 3 pickles bytes at protocols 0-2: text to latin-1 bytes."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1") or errors != "strict":
        raise _Damaged("_codecs.encode called with other than (text, 'latin1')")
    return text.encode("latin1")


def _empty_bytes(*args: object) -> bytes:
    """``bytes()`` as Python 3 pickles empty bytes at protocols 0-2 (never ``bytes(n)``, which
    would allocate ``n`` bytes)."""
    if args:
        raise _Damaged("bytes called with arguments")
    return b""


def _dtype(spec: object, align: object = False, copy: object = False) -> np.dtype:
    """``numpy.dtype`` as numpy pickles it: from a type string such as ``'f4'``, ``'S5'`` or
    ``'O8'`` (any richer description is in the state, checked at ``BUILD``), its two flags
    booleans, or the integers 0 and 1 numpy wrote before 1.19 (the 2019 MulT pickles, every
    Python 2 one)."""
    simple = isinstance(spec, str) and re.fullmatch(r"[A-Za-z]\d*", spec) is not None
    flags = all(type(f) in (bool, int) and f in (0, 1) for f in (align, copy))
    if not simple or not flags:
        raise _Damaged(f"numpy.dtype called with {_short((spec, align, copy))}, not a type string")
    return np.dtype(spec, bool(align), bool(copy))


_NDARRAY = object()
"""What ``numpy.ndarray`` in a pickle stands for: only an argument of :func:`_reconstruct`
(called itself, ``ndarray(shape, dtype, buffer, ...)`` could allocate and fill a huge array)."""


def _reconstruct(subtype: object, shape: object, typecode: object) -> np.ndarray:
    """numpy's ``_reconstruct`` as ``ndarray.__reduce__`` calls it: an empty ``ndarray`` that
    ``BUILD`` then fills (any other call could allocate and fill a huge array)."""
    if subtype is not _NDARRAY or shape != (0,) or typecode not in (b"b", "b"):
        raise _Damaged("numpy _reconstruct called with other than (ndarray, (0,), 'b')")
    return np.ndarray((0,), np.int8)


def _check_array_state(state: object) -> None:
    """Refuse an array state numpy does not write: ``(1, shape, dtype, is_fortran, data)``
    with ``data`` the array's bytes, or for an object array a list of its ``size`` values
    (numpy reads past the end of a shorter list and crashes)."""
    if type(state) is not tuple or len(state) != 5 or state[0] != 1:
        raise _Damaged(f"a numpy array with a state numpy does not write: {_short(state)}")
    _, shape, dtype, _, data = state
    if type(shape) is not tuple or not all(type(n) is int and n >= 0 for n in shape):
        raise _Damaged(f"a numpy array of shape {_short(shape)}")
    if not isinstance(dtype, np.dtype):
        raise _Damaged(f"a numpy array of dtype {_short(dtype)}")
    size = math.prod(shape)
    if dtype.hasobject:
        ok = dtype.kind == "O" and type(data) is list and len(data) == size
    else:
        ok = isinstance(data, (bytes, bytearray, str)) and len(data) == size * dtype.itemsize
    if not ok:
        raise _Damaged(
            f"a numpy array of shape {shape} and dtype {dtype} whose data is {_short(data, 40)}"
        )


_SAFE_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _dtype,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.multiarray", "scalar"): None,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "scalar"): None,
    ("numpy.core.numeric", "_frombuffer"): None,
    ("numpy._core.numeric", "_frombuffer"): None,
    ("collections", "OrderedDict"): None,
    ("builtins", "set"): None,
    ("builtins", "frozenset"): None,
    ("builtins", "slice"): None,
    ("builtins", "complex"): None,
    ("__builtin__", "set"): None,
    ("copy_reg", "_reconstructor"): None,
    ("copyreg", "_reconstructor"): None,
    ("__builtin__", "object"): None,
    ("builtins", "object"): None,
    # bytes as Python 3 writes them at protocols 0-2 (numpy arrays' data among them)
    ("_codecs", "encode"): _latin1_bytes,
    ("__builtin__", "bytes"): _empty_bytes,
    ("builtins", "bytes"): _empty_bytes,
}
"""The globals a benchmark pickle may name: the object itself (None) or a checked stand-in."""


class _SafeUnpickler(pickle._Unpickler):  # the Python unpickler: its BUILD can be checked
    """Unpickles dicts, lists, strings, numbers and numpy arrays; refuses anything else.

    A pickle can run arbitrary code on load; the benchmark pickles only ever hold numpy arrays
    in dicts, so any other global is refused with a clear error instead of being executed, and
    a numpy dtype is given no state but one numpy writes itself.
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, fh: BinaryIO) -> None:
        # latin1 reads numpy arrays pickled by Python 2 (the CMU releases are that old)
        super().__init__(fh, encoding="latin1")
        self._fh = fh
        self._size = os.fstat(fh.fileno()).st_size

    def find_class(self, module: str, name: str) -> Any:
        """An allowed global (or its checked stand-in); any other is refused."""
        if (module, name) not in _SAFE_GLOBALS:
            raise _Refused(f"refusing to load {module}.{name}")
        stand_in = _SAFE_GLOBALS[(module, name)]
        return stand_in if stand_in is not None else super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        """Refused, in the C unpickler's words (a benchmark pickle has no persistent ids)."""
        raise pickle.UnpicklingError(
            "A load persistent id instruction was encountered, but no persistent_load function "
            "was specified."
        )

    def load_build(self) -> None:
        """``BUILD``: a numpy dtype's state is checked (:meth:`_build_dtype`), an array's too
        (:func:`_check_array_state`); anything else is set as the pickle module does."""
        stack = self.stack
        if len(stack) >= 2 and isinstance(stack[-2], np.dtype):
            state = stack.pop()
            stack[-1] = self._build_dtype(stack[-1], state)
            return
        if len(stack) >= 2 and isinstance(stack[-2], np.ndarray):
            _check_array_state(stack[-1])
        super().load_build()

    dispatch[pickle.BUILD[0]] = load_build

    def load_bytearray8(self) -> None:
        """``BYTEARRAY8`` (numpy's arrays at protocol 5) read straight into the new bytearray,
        as the C unpickler does (the pickle module reads it into bytes, then copies), and never
        longer than the file."""
        (n,) = struct.unpack("<Q", self.read(8))
        if n > self._size:
            raise pickle.UnpicklingError("pickle data was truncated")
        buf = bytearray(n)
        if self._unframer.current_frame:  # a small one, inside a frame
            self.readinto(buf)
        elif self._fh.readinto(buf) != n:
            raise pickle.UnpicklingError("pickle data was truncated")
        self.append(buf)

    dispatch[pickle.BYTEARRAY8[0]] = load_bytearray8

    def _build_dtype(self, dtype: np.dtype, state: object) -> np.dtype:
        """``dtype`` with ``state``, when ``state`` is what numpy writes for it (as it is, or
        byte-swapped: then a swapped copy replaces it, also in the memo); anything else is
        refused, as numpy's ``__setstate__`` trusts it (and can crash on it)."""
        if type(state) is tuple:
            if state == dtype.__reduce__()[2]:
                return dtype  # numpy's __setstate__ would change nothing
            if len(state) > 1 and state[1] in ("<", ">"):
                swapped = dtype.newbyteorder(state[1])
                if state == swapped.__reduce__()[2]:
                    for key, value in self.memo.items():
                        if value is dtype:
                            self.memo[key] = swapped
                    return swapped
        raise _Damaged(f"a numpy {dtype} dtype with a state numpy does not write: {_short(state)}")


def load_pickle(path: Path) -> Any:
    """Load a benchmark pickle safely (numpy arrays only); one clear error when it is not one."""
    if not path.exists():
        raise ImportFormatError(path, "no such file")
    if path.is_dir():
        raise ImportFormatError(path, "is a directory, expected a .pkl file")
    try:
        with path.open("rb") as fh:
            return _SafeUnpickler(fh).load()
    except ImportFormatError:
        raise
    except _Refused as err:
        what = " ".join(str(err).removeprefix("refusing to load ").split())[:100]
        raise ImportFormatError(
            path,
            f"the pickle holds objects other than numpy arrays ({what}); "
            "refusing to load it (unpickling can run code)",
        ) from None
    except pickle.UnpicklingError as err:
        raise _unreadable(path, str(err)) from None
    except EOFError:
        raise _unreadable(path, "the file ends before the pickle does (truncated)") from None
    except Exception as err:  # whatever a damaged pickle makes the pickle module or numpy raise
        why = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        raise _unreadable(path, why) from None


def _unreadable(path: Path, why: str) -> ImportFormatError:
    """The error for a file that does not unpickle, on one line (the pickle module's messages
    can wrap); a zip archive (``torch.save``'s format, e.g. a ``ckpt.pt``) is named as such."""
    if zipfile.is_zipfile(path):
        return ImportFormatError(
            path, "a zip archive (e.g. a PyTorch checkpoint, ckpt.pt), not a benchmark pickle"
        )
    why = " ".join(why.split())
    return ImportFormatError(
        path, f"not a readable pickle (damaged or not a pickle of arrays): {why[:300]}"
    )
