"""Loading a benchmark pickle safely: only numpy arrays and plain containers are unpickled,
so a pickle cannot run code."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

from mea_cli.data.importers.errors import ImportFormatError

_SAFE_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("collections", "OrderedDict"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "slice"),
    ("builtins", "complex"),
    ("__builtin__", "set"),
    ("copy_reg", "_reconstructor"),
    ("copyreg", "_reconstructor"),
    ("__builtin__", "object"),
    ("builtins", "object"),
}


class _SafeUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings, numbers and numpy arrays; refuses anything else.

    A pickle can run arbitrary code on load; the benchmark pickles only ever hold numpy arrays
    in dicts, so any other global is refused with a clear error instead of being executed.
    """

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def load_pickle(path: Path) -> Any:
    """Load a benchmark pickle safely (numpy arrays only); one clear error when it is not one."""
    if not path.exists():
        raise ImportFormatError(path, "no such file")
    if path.is_dir():
        raise ImportFormatError(path, "is a directory, expected a .pkl file")
    try:
        with path.open("rb") as fh:
            # latin1 reads numpy arrays pickled by Python 2 (the CMU releases are that old)
            return _SafeUnpickler(fh, encoding="latin1").load()
    except pickle.UnpicklingError as err:
        if "refusing" in str(err):
            raise ImportFormatError(
                path,
                f"the pickle holds objects other than numpy arrays ({str(err)[len('refusing to load ') :]}); "
                "refusing to load it (unpickling can run code)",
            ) from None
        raise _unreadable(path, str(err)) from None
    except (
        EOFError,
        ValueError,
        TypeError,
        IndexError,
        KeyError,
        AttributeError,
        MemoryError,
    ) as err:
        raise _unreadable(path, f"{type(err).__name__}: {err}") from None


def _unreadable(path: Path, why: str) -> ImportFormatError:
    """The error for a file that does not unpickle, on one line (the pickle module's messages
    can wrap); a zip archive (``torch.save``'s format, e.g. a ``ckpt.pt``) is named as such."""
    if zipfile.is_zipfile(path):
        return ImportFormatError(
            path, "a zip archive (e.g. a PyTorch checkpoint, ckpt.pt), not a benchmark pickle"
        )
    return ImportFormatError(
        path, f"not a readable pickle (corrupt or truncated): {' '.join(why.split())}"
    )
