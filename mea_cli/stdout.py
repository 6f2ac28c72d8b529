"""Standard output that cannot take what a command prints.

``mea info --json > /dev/full``, a ``> file`` on a full disk or quota, or a reader that stops
reading (``| head``) used to end in a traceback from wherever the write happened: a JSON dump, a
Rich table, even ``--version``. While a command runs, :func:`guarded` puts a thin wrapper around
``sys.stdout`` (which Rich's consoles look up at every write), so every write goes through one
place: each write is flushed at once, so that a failure surfaces at the write and not at the
interpreter's exit ("Exception ignored ...", exit 120), and

* a failed write becomes :class:`OutputError`: one line naming where standard output goes and
  the system's reason, exit code 2, as a full disk behind ``--out`` is (:func:`mea_cli.paths.disk_full`);
* a closed pipe (``EPIPE``: the reader stopped on purpose) ends the command quietly with exit
  code 141, what a shell reports for a program ended by ``SIGPIPE``.

Either way standard output is pointed at ``/dev/null`` first, so nothing later (the
interpreter's final flush included) fails a second time.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from mea_cli.errors import MeaError

CLOSED_PIPE_EXIT = 128 + signal.SIGPIPE  # 141, as a shell reports a program ended by SIGPIPE


class OutputError(MeaError):
    """Standard output cannot be written (a full disk or device, an I/O error)."""

    def __init__(self, err: OSError) -> None:
        reason = os.strerror(err.errno).lower() if err.errno else str(err)
        super().__init__(f"{_where()}: cannot write the command's output: {reason}")


def _where() -> str:
    """Standard output named by its file when it is one (``/dev/full``), else plainly."""
    with contextlib.suppress(OSError):
        target = os.readlink("/proc/self/fd/1")  # Linux; "pipe:[...]" for a pipe
        if target.startswith("/"):
            return f"standard output ({target})"
    return "standard output"


def _to_devnull(stream: TextIO) -> None:
    """Point the stream's file descriptor at ``/dev/null``: what is still buffered, and any
    later write, then goes nowhere instead of failing again."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, stream.fileno())
        os.close(null)


class _Guarded:
    """``sys.stdout`` whose writes are flushed at once and whose failures are one error."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        with self._failures():
            n = self._stream.write(text)
            self._stream.flush()
        return n

    def flush(self) -> None:
        with self._failures():
            self._stream.flush()

    @contextlib.contextmanager
    def _failures(self) -> Iterator[None]:
        try:
            yield
        except OSError as err:
            failure = OutputError(err)  # names stdout's file before it becomes /dev/null
            _to_devnull(self._stream)
            if err.errno == errno.EPIPE:
                raise SystemExit(CLOSED_PIPE_EXIT) from None
            raise failure from None

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, ...: the stream's own
        return getattr(self._stream, name)


@contextlib.contextmanager
def guarded() -> Iterator[None]:
    """Guard ``sys.stdout`` for the block (as above); the stream is restored after it."""
    stream = sys.stdout
    if stream is None or isinstance(stream, _Guarded):
        yield
        return
    sys.stdout = _Guarded(stream)
    try:
        yield
    finally:
        sys.stdout = stream
