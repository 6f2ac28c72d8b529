"""Safe paths for every command: checked inputs and outputs, atomic writes, file digests.

Every file a command writes goes through :func:`atomic_output` (a temporary file beside the
target, renamed over it only once it is complete), so a crash, a Ctrl-C or a full disk never
leaves a half-written store, checkpoint, table or picture behind. Every path a user names is
checked first with :func:`check_output_file`, :func:`check_output_dir` or
:func:`check_input_file`, which raise :class:`PathError` (a :class:`~mea_cli.errors.MeaError`:
one line naming the path and the problem, exit code 2) before any work starts, and create
nothing: a missing parent directory is an error, never silently created.

An output may never be one of the command's inputs: every input checked with
:func:`check_input_file` (or named with :func:`note_input`) while a command runs is remembered,
and :func:`check_output_file` / :func:`atomic_output` refuse an output that is the same file,
through a symlink, a hard link (same inode) or another spelling of its path
(``mea eval ckpt.pt --predictions ckpt.pt`` would otherwise replace the checkpoint).
The command line starts and ends this bookkeeping around each command
(:func:`start_input_guard`, :func:`end_input_guard`); library calls outside a command are not
tracked.

Temporary files are created with ``os.open(..., 0o666)`` so the process umask applies, exactly
as for a plain ``open()``: outputs get the same permissions whatever wrote them.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import secrets
import stat
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from mea_cli.errors import MeaError
from mea_cli.locks import stale_temps

PathLike = str | os.PathLike[str]
"""What the Python API takes for a path: a string or any ``os.PathLike``."""


class PathError(MeaError):
    """A path the user gave that cannot be read or written as asked."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


TEMP_SUFFIX_BYTES = len(".") + len(".00000000.tmp")  # what atomic_output adds to a file name


def _name_max(path: Path) -> int:
    """The longest file name (bytes) the file system under ``path`` allows (255 on Linux,
    macOS and Windows file systems; ``pathconf`` where it can tell)."""
    probe = path
    while True:
        try:
            return int(os.pathconf(probe, "PC_NAME_MAX"))
        except (OSError, ValueError, AttributeError):
            if probe.parent == probe:
                return 255
            probe = probe.parent


def check_name_length(path: str | os.PathLike[str], what: str = "file", extra: int = 0) -> Path:
    """Refuse a path with a part longer than the file system allows (``extra`` bytes kept
    free for a temporary name beside it) with one line, before any system call fails on it
    with ``ENAMETOOLONG`` (which ``Path.exists`` raises instead of answering)."""
    p = Path(path)
    limit = _name_max(p if p.is_absolute() else Path.cwd())
    for i, part in enumerate(p.parts):
        size = len(os.fsencode(part)) + (extra if i == len(p.parts) - 1 else 0)
        if size > limit and part not in (p.anchor, "/"):
            plus = f" (+{extra} for its temporary file)" if i == len(p.parts) - 1 and extra else ""
            raise PathError(
                f"{part[:24]}...{part[-12:]}" if len(part) > 48 else p,
                f"the {what}'s name is {len(os.fsencode(part))} bytes{plus}; the file system "
                f"allows {limit}: give a shorter name",
            )
    return p


_INPUTS: ContextVar[list[Path] | None] = ContextVar("mea_inputs", default=None)


def start_input_guard() -> None:
    """Start remembering the inputs of one command (an empty list; see the module docstring)."""
    _INPUTS.set([])


def end_input_guard() -> None:
    """Stop remembering inputs (the command is over)."""
    _INPUTS.set(None)


def note_input(path: str | os.PathLike[str]) -> None:
    """Remember ``path`` as an input of the running command (no-op outside a command)."""
    known = _INPUTS.get()
    if known is not None:
        known.append(Path(path))


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """True when ``a`` and ``b`` are one file: the same resolved path (symlinks followed), or
    the same inode on the same device (hard links)."""
    a, b = Path(a), Path(b)
    try:
        if os.path.samefile(a, b):
            return True
    except OSError:  # one of them does not exist (yet): compare where they would be
        pass
    try:
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):  # a symlink loop: not resolvable, so not an input
        return False


def check_not_input(
    path: str | os.PathLike[str], inputs: Iterator[Path] | tuple[Path, ...] | list[Path] = (),
    what: str = "output file",
) -> Path:
    """Refuse an output that is one of ``inputs`` or of the running command's noted inputs."""
    p = Path(path)
    for given in (*inputs, *(_INPUTS.get() or ())):
        if same_file(p, given):
            shown = "" if str(given) == str(p) else f" ({given})"
            raise PathError(
                p, f"the {what} is also an input{shown}; writing it would destroy the input"
            )
    return p


def _check_parent(path: Path, what: str) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        # name the first missing ancestor: that is what the user has to create
        missing = parent
        while not missing.parent.exists() and missing.parent != missing:
            missing = missing.parent
        if missing.parent.exists() and not missing.parent.is_dir():
            raise PathError(path, f"cannot write the {what}: {missing.parent} is a file, not a directory")
        raise PathError(path, f"cannot write the {what}: directory {parent} does not exist")
    if not parent.is_dir():
        raise PathError(path, f"cannot write the {what}: {parent} is a file, not a directory")
    _probe(parent, path, what)


def _probe(directory: Path, path: Path, what: str) -> None:
    """Create and remove a file in ``directory``: the only test of writability that holds for
    root, read-only mounts and pseudo file systems (``os.access`` says yes to all three)."""
    probe = directory / f".mea-probe-{secrets.token_hex(4)}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise PathError(
            path, f"cannot write the {what}: directory {directory} is not writable ({reason})"
        ) from None
    probe.unlink(missing_ok=True)


def check_output_file(path: str | os.PathLike[str], what: str = "output file") -> Path:
    """Check that ``path`` can be written as a file: not a directory, not a special file (the
    output is written beside it and renamed over it, which would replace a device, a FIFO or a
    socket by a regular file), not an input of the running command, parent an existing,
    writable directory, an existing file writable. Creates nothing; returns ``Path(path)``."""
    p = check_name_length(path, what, TEMP_SUFFIX_BYTES)
    if p.is_dir():
        raise PathError(p, f"the {what} is an existing directory; give a file name")
    kind = _special_kind(p)
    if kind:
        raise PathError(p, f"the {what} is {kind}, not a regular file; give a file name")
    check_not_input(p, what=what)
    _check_parent(p, what)
    if p.exists() and not os.access(p, os.W_OK):
        raise PathError(p, f"the {what} exists and is not writable")
    return p


def _special_kind(path: Path) -> str | None:
    """What an existing non-regular file at ``path`` (links followed) is; None for a regular
    file or nothing at all."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    for test, kind in (
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return None


def check_output_dir(path: str | os.PathLike[str], what: str = "output directory") -> Path:
    """Check that ``path`` is a writable directory or can be created as one (its parent exists).

    Creates nothing; :func:`ensure_dir` creates it once the command is about to write.
    """
    p = check_name_length(path, what)
    if p.exists():
        if not p.is_dir():
            raise PathError(p, f"the {what} is a file, not a directory")
        _probe(p, p, what)
        return p
    _check_parent(p, what)
    return p


def ensure_dir(path: str | os.PathLike[str], what: str = "output directory") -> Path:
    """Create directory ``path`` (one level: its parent must exist) after checking it."""
    p = check_output_dir(path, what)
    p.mkdir(exist_ok=True)
    return p


def check_input_file(
    path: str | os.PathLike[str], what: str = "input file", allow_empty: bool = False
) -> Path:
    """Check that ``path`` is an existing, readable (and, by default, non-empty) file."""
    p = check_name_length(path, what)
    if not p.exists():
        raise PathError(p, f"no such {what}")
    if p.is_dir():
        raise PathError(p, f"the {what} is a directory, not a file")
    if not os.access(p, os.R_OK):
        raise PathError(p, f"the {what} is not readable")
    if not allow_empty and p.stat().st_size == 0:
        raise PathError(p, f"the {what} is empty")
    note_input(p)
    return p


_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
# HDF5 reports a failed write inside its own message ("... errno = 28, error message = 'No
# space left on device' ..."), with no errno on the OSError h5py raises
_FULL_WORDS = tuple(os.strerror(e) for e in _FULL_ERRNOS) + tuple(
    f"errno = {e}," for e in _FULL_ERRNOS
)


def is_disk_full(err: BaseException) -> bool:
    """True for an error that says the disk (or the quota, or the file size limit) is full."""
    if not isinstance(err, (OSError, RuntimeError)):  # h5py raises both for a failed write
        return False
    if isinstance(err, OSError) and err.errno in _FULL_ERRNOS:
        return True
    text = str(err)
    return any(word in text for word in _FULL_WORDS)


def disk_full(path: str | os.PathLike[str], what: str, err: BaseException) -> PathError:
    """The one-line error for a write that ran out of space."""
    code = getattr(err, "errno", None)
    if code not in _FULL_ERRNOS:  # HDF5: the errno is only in the message
        code = next((e for e in _FULL_ERRNOS if f"errno = {e}," in str(err)), errno.ENOSPC)
    if code == errno.EFBIG:
        return PathError(path, f"cannot write the {what}: the file is larger than this "
                         "system or its limits allow (file too large)")
    return PathError(
        path, f"cannot write the {what}: {os.strerror(code).lower()}; free some space and "
        "run it again"
    )


@contextlib.contextmanager
def disk_full_as_error(path: str | os.PathLike[str], what: str = "output file") -> Iterator[None]:
    """Turn a full disk inside the block into :func:`disk_full`'s one line (other errors pass)."""
    try:
        yield
    except (OSError, RuntimeError) as err:
        if is_disk_full(err):
            raise disk_full(path, what, err) from None
        raise


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], what: str = "output file") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` when the block succeeds.

    The temporary file exists (empty, with umask permissions) when the block starts, so a
    writer may open it in any mode or hand its name to a library (h5py, matplotlib, torch). On
    any exception, ``KeyboardInterrupt`` included, it is removed and ``path`` is untouched; a
    full disk (or quota) becomes a :class:`PathError` naming ``path``. A ``path`` that is a
    symbolic link is written through: the file it points at is replaced, the link kept.
    """
    target = check_output_file(path, what)
    if target.is_symlink():  # write what the link points at, and keep the link
        target = check_output_file(os.path.realpath(target), what)
    _remove_dead_writers_temps(target)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as err:
        raise PathError(target, f"cannot write the {what}: {err.strerror or err}") from None
    try:
        _lock(fd, blocking=True)  # held while writing: our temp file is not a dead writer's
        yield tmp
        os.replace(tmp, target)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if is_disk_full(err):
            raise disk_full(target, what, err) from None
        if isinstance(err, PathError) and same_file(err.path, tmp):  # a writer nested in this
            raise PathError(target, err.problem) from None  # block: name the output instead
        raise
    finally:
        os.close(fd)  # releases the lock


def _lock(fd: int, blocking: bool) -> bool:
    """Write-lock all of ``fd``'s file with an open-file-description lock (Linux
    ``F_OFD_SETLK``): held until this descriptor closes, whatever else the process opens and
    closes on the file, and apart from the ``flock`` HDF5 takes on the files it writes. False
    when another writer holds it (non-blocking); where such locks do not exist, nothing is
    locked and no file is ever taken for a dead writer's."""
    import fcntl
    import struct

    cmd = getattr(fcntl, "F_OFD_SETLKW" if blocking else "F_OFD_SETLK", None)
    if cmd is None:
        return False
    # struct flock: l_type, l_whence, l_start, l_len (0: to the end), l_pid (0 for OFD locks)
    try:
        fcntl.fcntl(fd, cmd, struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
    except OSError:
        return False
    return True


def _remove_dead_writers_temps(target: Path) -> None:
    """Remove the temporary files that killed writers of ``target`` left beside it (a
    ``kill -9`` skips the clean-up above): those of our naming whose lock nobody holds. A live
    writer holds its file's lock from creation until the rename, so its file stays."""
    for old in stale_temps(target.parent if str(target.parent) else Path("."), target.name):
        try:
            fd = os.open(old, os.O_RDWR)  # a write lock needs a descriptor open for writing
        except OSError:
            continue
        try:
            if _lock(fd, blocking=False):
                old.unlink(missing_ok=True)
        finally:
            os.close(fd)


def write_text(path: str | os.PathLike[str], text: str, what: str = "output file") -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; return the path."""
    with atomic_output(path, what) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def jsonable(obj: Any) -> Any:
    """Replace NaN / inf floats by None and numpy / torch scalars by Python numbers,
    recursively (dict keys become strings), so the result is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return jsonable(obj.item())
    return obj


def write_json(
    path: str | os.PathLike[str],
    obj: Any,
    what: str = "output file",
    *,
    nan: Literal["error", "null"] = "error",
) -> Path:
    """Write ``obj`` as indented strict JSON to ``path`` atomically.

    ``nan`` says what a NaN / inf is: ``"error"`` (a ``ValueError``: for files in which one
    would be a bug, e.g. a chart's data) or ``"null"`` (:func:`jsonable` first: run files,
    where a metric can be undefined, e.g. the correlation of constant predictions)."""
    if nan == "null":
        obj = jsonable(obj)
    return write_text(path, json.dumps(obj, indent=2, allow_nan=False) + "\n", what)


def replace_symlink(link: str | os.PathLike[str], target: str) -> Path:
    """Point symlink ``link`` at ``target`` atomically (a new link beside it, renamed over it),
    so a reader never sees the link missing. Raises ``OSError`` where symlinks are not
    supported; the caller decides what to do instead."""
    link = Path(link)
    tmp = link.with_name(f".{link.name}.{secrets.token_hex(4)}.tmp")
    try:
        os.symlink(target, tmp)
        os.replace(tmp, link)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return link


_SHA256: dict[tuple[int, int, int, int], str] = {}


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, streamed (feature stores can be large); computed once per process
    for a file whose inode, size and modification time have not changed."""
    st = os.stat(path)
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if key in _SHA256:
        return _SHA256[key]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    _SHA256[key] = h.hexdigest()
    return _SHA256[key]
