"""Ctrl-C (SIGINT) and a scheduler's SIGTERM that always stop a command, cleanly.

Both become a ``KeyboardInterrupt`` in the main thread, so every ``with`` block unwinds: a
temporary output is removed (:func:`mea_cli.paths.atomic_output`), training keeps its last
completed epoch for ``--resume``. A batch scheduler (Slurm at its time limit, ``scancel``) sends
SIGTERM and kills a little later; Python's default for SIGTERM is to die on the spot, leaving
temporary files behind.

One CPython trap is handled: a signal handler runs wherever the main thread happens to be, and
when that is a weak-reference callback or a ``__del__`` method (h5py runs many), the exception
it raises is printed as "Exception ignored" and dropped, and the command goes on as if nothing
happened. The same holds for a callback that C code calls through ctypes: while openSMILE
works, its sink callbacks are nearly the only Python code that runs, so nearly every signal lands
in one, and ctypes prints the exception and returns to openSMILE. There the interrupt is deferred
by a few milliseconds (SIGALRM) until it lands in ordinary code; openSMILE's runs started by
:mod:`mea_cli.extract.audio` also stop early (``OpenSMILE.abort``) once :func:`received` says so.

A command that turns the interrupt into its own one-line message raises :class:`Interrupted`,
whose exit code follows the signal like the shell's: 130 for SIGINT, 143 for SIGTERM (a
scheduler or a wrapper script tells "the user stopped it" from "it was terminated" by it).
"""

from __future__ import annotations

import signal
from types import FrameType

from mea_cli.errors import MeaError

RETRY_SECONDS = 0.02
_received: list[int] = []
# Python functions that C code calls through ctypes (an exception raised in them is dropped):
# the openSMILE wrapper's sink and log callbacks.
_CTYPES_CALLBACK_FILES = ("opensmile/core/lib.py",)


def _swallowed_here(frame: FrameType | None) -> bool:
    """True when an exception raised in ``frame`` would be dropped by the interpreter."""
    while frame is not None:
        code = frame.f_code
        if code.co_name == "__del__" or code.co_filename.endswith(("weakref.py", "_weakrefset.py")):
            return True
        if code.co_name.startswith("internal_callback") and code.co_filename.endswith(
            _CTYPES_CALLBACK_FILES
        ):
            return True
        frame = frame.f_back
    return False


def _stop(signum: int, frame: FrameType | None) -> None:
    if signum != signal.SIGALRM:
        _received.append(signum)
    elif not _received:  # an alarm nobody asked for: not ours to act on
        return
    if _swallowed_here(frame):
        signal.setitimer(signal.ITIMER_REAL, RETRY_SECONDS)
        return
    signal.setitimer(signal.ITIMER_REAL, 0)  # a retry still pending must not interrupt the unwinding
    raise KeyboardInterrupt


def install() -> None:
    """Route SIGINT and SIGTERM to :func:`_stop` (main thread only; elsewhere a no-op). A
    SIGINT ignored from the start stays ignored, as Python leaves it: a job started in the
    background by a non-interactive shell (``mea ... &``) is not meant to stop at Ctrl-C."""
    sigs = [signal.SIGTERM, signal.SIGALRM]
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        sigs.append(signal.SIGINT)
    try:
        for sig in sigs:
            signal.signal(sig, _stop)
    except ValueError:  # not the main thread (mea embedded in another program)
        return


def received() -> int | None:
    """The stop signal that arrived last (``signal.SIGINT`` / ``signal.SIGTERM``), if any."""
    return _received[-1] if _received else None


def raise_if_received() -> None:
    """Raise the ``KeyboardInterrupt`` of a stop signal that has arrived: for code that asked a
    C library to stop early (its callbacks cannot raise) and must not carry on past it."""
    if _received:
        signal.setitimer(signal.ITIMER_REAL, 0)  # the deferred retry: this is the interrupt
        raise KeyboardInterrupt


def exit_code() -> int:
    """The shell's exit code for the stop signal received: 128 + its number (130 when none)."""
    return 128 + int(received() or signal.SIGINT)


class Interrupted(MeaError):
    """A command stopped by Ctrl-C or SIGTERM, with its own message (what was kept, how to
    resume); exit code 130 or 143 as :func:`exit_code` says."""

    @property
    def exit_code(self) -> int:  # type: ignore[override]
        return exit_code()
