"""Safe paths for every command: checked inputs and outputs, atomic writes, file digests.

Every file a command writes goes through :func:`atomic_output` (a temporary file beside the
target, renamed over it only once it is complete), so a crash, a Ctrl-C or a full disk never
leaves a half-written store, checkpoint, table or picture behind. Every path a user names is
checked first with :func:`check_output_file`, :func:`check_output_dir` or
:func:`check_input_file`, which raise :class:`PathError` (a :class:`~mea_cli.errors.MeaError`:
one line naming the path and the problem, exit code 2) before any work starts, and create
nothing: a missing parent directory is an error, never silently created.

Temporary files are created with ``os.open(..., 0o666)`` so the process umask applies, exactly
as for a plain ``open()``: outputs get the same permissions whatever wrote them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mea_cli.errors import MeaError


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
    """Check that ``path`` can be written as a file: not a directory, parent an existing,
    writable directory, an existing file writable. Creates nothing; returns ``Path(path)``."""
    p = check_name_length(path, what, TEMP_SUFFIX_BYTES)
    if p.is_dir():
        raise PathError(p, f"the {what} is an existing directory; give a file name")
    _check_parent(p, what)
    if p.exists() and not os.access(p, os.W_OK):
        raise PathError(p, f"the {what} exists and is not writable")
    return p


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
    return p


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], what: str = "output file") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` when the block succeeds.

    The temporary file exists (empty, with umask permissions) when the block starts, so a
    writer may open it in any mode or hand its name to a library (h5py, matplotlib, torch). On
    any exception, ``KeyboardInterrupt`` included, it is removed and ``path`` is untouched.
    """
    target = check_output_file(path, what)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as err:
        raise PathError(target, f"cannot write the {what}: {err.strerror or err}") from None
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike[str], text: str, what: str = "output file") -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; return the path."""
    with atomic_output(path, what) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike[str], obj: Any, what: str = "output file") -> Path:
    """Write ``obj`` as indented strict JSON (no NaN) to ``path`` atomically."""
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


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, streamed (feature stores can be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
