"""Extraction workers that never outlive the ``mea`` process that started them.

A worker of a process pool waits for work on a queue whose write end it holds itself, so when
its parent dies without stopping it (``kill -9``, the out-of-memory killer, a scheduler that
kills the job step) the wait never ends: the worker idles forever with its models loaded
(hundreds of MB each). :func:`die_with_parent`, called first thing in a worker, prevents that
in two ways:

* on Linux, ``prctl(PR_SET_PDEATHSIG, SIGTERM)``: the kernel itself sends the worker SIGTERM
  the moment its parent ends, whatever the worker is doing (strictly: when the parent *thread*
  that started it ends; a spawn-context pool starts a worker from the ``submit`` that needs
  one, so :func:`mea_cli.extract.run.run` submits each worker's first task from the thread
  that runs ``mea extract``, which lives as long as the process);
* everywhere, a daemon thread waits on the parent's process sentinel
  (:func:`multiprocessing.parent_process`; on POSIX a pipe that reads end-of-file when the
  parent is gone, no polling) and then sends the worker SIGTERM itself.

SIGTERM is the worker's ordinary stop signal (its handler removes a half-written cache entry,
then exits). A worker that has not exited :data:`GRACE_S` seconds after its parent died (its
handler cannot run: a native call that never returns) is ended with ``os._exit``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing as mp
import multiprocessing.connection
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
GRACE_S = 10.0


def _linux_parent_death_signal(sig: int) -> bool:
    """Ask the Linux kernel to send ``sig`` to this process when its parent ends."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):  # no libc / no prctl (another C library): the thread stays
        return False


def _terminate_self() -> None:
    """SIGTERM to the main thread: sent to the process, it could be taken by this thread and
    leave the main thread blocked in a read that no signal interrupts."""
    if hasattr(signal, "pthread_kill"):
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGTERM)
    else:  # Windows: os.kill ends the process at once
        os.kill(os.getpid(), signal.SIGTERM)


def _watch(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])  # returns once the parent is gone
    _terminate_self()
    time.sleep(GRACE_S)
    os._exit(128 + signal.SIGTERM)


def die_with_parent() -> None:
    """Make this worker process end (through its SIGTERM handler) when its parent does.

    A no-op in a process that multiprocessing did not start (no parent process known)."""
    parent = mp.parent_process()
    if parent is None:
        return
    _linux_parent_death_signal(signal.SIGTERM)
    threading.Thread(target=_watch, args=(parent.sentinel,), name="mea-parent-watch", daemon=True).start()
    if not parent.is_alive():  # died before the above was in place: nobody will signal us
        _terminate_self()
