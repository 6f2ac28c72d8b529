"""One ``mea`` process per run folder, and the temporary files a killed one left behind.

A run folder (``runs/<name>``, an ablation's or sweep's folder, a comparison) is written by one
process at a time: :func:`hold` takes an exclusive ``flock`` on ``<folder>/.mea.lock`` for as
long as the command works there, and a second command on the same folder is refused at once
with one line naming the folder and the holder's pid (two ``mea train --resume`` of one run
would otherwise both train it, interleaving their epochs in one log). The kernel releases the
lock when its holder ends in any way, ``kill -9`` included, so a lock file left by a dead
process is simply taken over: no stale lock ever needs deleting by hand. The file holds the
holder's pid and host, for the message only; a command refused for a user error (one line,
exit 2) while holding the lock leaves the file as it found it.

An extraction cache may be shared by several ``mea extract`` at once (shards of one corpus
write different entries): :func:`share` holds a shared lock there instead.

Every file a command writes goes through :func:`mea_cli.paths.atomic_output`, whose temporary
file ``.<name>.<8 hex digits>.tmp`` is removed on any error or Ctrl-C, but not after a
``kill -9`` or a power cut. Whoever holds a folder's lock alone removes such files there
(:func:`remove_stale_temps`): while it holds the lock no other ``mea`` process writes in that
folder, so each of them is a leftover. Only names of exactly that pattern are touched, never
another file.

Where ``fcntl`` is missing (Windows) there is no locking: commands run as before.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path

from mea_cli.errors import MeaError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".mea.lock"
TEMP = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp$")  # mea_cli.paths.atomic_output's temporary files


class InUseError(MeaError):
    """A run folder that another running ``mea`` command holds."""


def stale_temps(folder: Path, target: str | None = None) -> list[Path]:
    """The temporary files of :func:`mea_cli.paths.atomic_output` directly in ``folder``
    (only those of the output file named ``target`` when given)."""
    if not folder.is_dir():
        return []
    pattern = TEMP if target is None else re.compile(rf"^\.{re.escape(target)}\.[0-9a-f]{{8}}\.tmp$")
    return sorted(p for p in folder.iterdir() if pattern.match(p.name) and p.is_file() and not p.is_symlink())


def remove_stale_temps(folders: Iterable[Path], target: str | None = None) -> list[Path]:
    """Remove :func:`stale_temps` of each folder (call only while holding its lock alone)."""
    removed = []
    for folder in folders:
        for p in stale_temps(folder, target):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                removed.append(p)
    return removed


def _holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").split()
    except OSError:
        return "another process"
    if len(text) >= 2 and text[0].isdigit():
        return f"process {text[0]} on {text[1]}"
    return "another process"


def _open(folder: Path, what: str) -> int:
    path = folder / LOCK_NAME
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as err:
        raise InUseError(f"{folder}: cannot open the {what}'s lock file {path} ({err.strerror or err})") from None


@contextlib.contextmanager
def hold(folder: Path, what: str = "run", clean: Iterable[Path] = ()) -> Iterator[list[Path]]:
    """Hold ``folder`` (an existing directory) for this process alone, or raise
    :class:`InUseError` at once when another process holds it. While held, stale temporary
    files in ``folder`` and in the ``clean`` folders are removed; yields the removed paths."""
    if fcntl is None:
        yield []
        return
    path = folder / LOCK_NAME
    existed = path.exists()
    fd = _open(folder, what)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InUseError(
                f"{folder}: this {what} is in use by {_holder(path)} (lock {path}); wait until "
                f"it ends or stop it, then run again"
            ) from None
        before = os.pread(fd, 4096, 0)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        try:
            yield remove_stale_temps([folder, *clean])
        except MeaError:  # refused: leave the lock file as it was found
            if existed:
                os.ftruncate(fd, 0)
                os.pwrite(fd, before, 0)
            else:
                path.unlink(missing_ok=True)
            raise
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def share(folder: Path, what: str = "folder", targets: Iterable[Path] = ()) -> Iterator[list[Path]]:
    """Use ``folder`` (an existing directory) alongside other ``mea`` processes that may use it
    too (a shared lock). When none does, stale temporary files are removed first: those in
    ``folder`` and those of each output file in ``targets``. Yields the removed paths."""
    if fcntl is None:
        yield []
        return
    fd = _open(folder, what)
    removed: list[Path] = []
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            removed = remove_stale_temps([folder])
            for t in targets:
                removed += remove_stale_temps([t.parent if str(t.parent) else Path(".")], t.name)
        except BlockingIOError:
            pass  # others are at work here: their temporary files may be live
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield removed
    finally:
        os.close(fd)
