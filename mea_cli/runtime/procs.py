"""Data-parallel CPU processes started by ``mea train --procs N`` itself (no ``torchrun``).

This process becomes rank 0 of an ``N``-process Gloo group on this machine and starts ranks
``1..N-1`` with :mod:`multiprocessing`'s *spawn* method (a fresh interpreter each: no state of
this process, its open files or its OpenMP pool is inherited, as with ``torchrun``). Every rank
gets the rendezvous variables ``torchrun`` would set (``MASTER_ADDR``, ``MASTER_PORT``,
``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``), so the training code joins the group exactly as
under ``torchrun`` (:func:`mea_cli.runtime.distributed.init_distributed`).

Why a process per core instead of threads: MEA's step on a CPU is thousands of small operators
(docs/performance.md, "Training at 5x MMSA-MulT"), which torch's intra-op threads share badly,
while two processes of one thread each on half the batch keep both cores busy (MEA's training
pass over the 1/8-MOSI pickle, quiet 2-core machine: 19.3-19.5 s in one process with two
threads, 13.2-13.5 s with ``--procs 2``; docs/performance.md, "Training on every core").

Failure handling, so that one rank's problem never leaves another waiting forever: rank 0's
own error stops the other ranks and is re-raised; a rank that fails first is reported by name
with its exit code (a crash's traceback is above it, on the shared standard error; a user error,
:class:`~mea_cli.errors.MeaError`, is not printed by the rank but handed to rank 0, which
usually meets the same one and then reports it once); a rank that fails before it joined the
group is caught by rank 0's watch (:func:`_watch`); Ctrl-C reaches every process of the
terminal's group, each stops, and rank 0 reports it.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from mea_cli.errors import MeaError
from mea_cli.runtime import apply_threads

T = TypeVar("T")

RENDEZVOUS = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "RANK", "LOCAL_RANK")
"""The variables a rank reads to join the group (as ``torchrun`` sets them)."""

STOP_WAIT_S = 10.0
"""How long rank 0 waits for another rank to end after asking it to stop."""

GRACE_S = 10.0
"""How long rank 0 is given to notice by itself that another rank failed (:func:`_watch`): a
rank 0 that is training meets the failure at its next gradient all-reduce, within a step."""


class RankFailed(MeaError):
    """Another rank of ``--procs`` ended with an error before the run finished."""


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now (the group's store)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def in_torchrun() -> bool:
    """Whether this process is already a rank of a multi-process job (``torchrun``)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1


def run_ranks(
    n: int,
    main: Callable[[], T],
    other: Callable[..., Any],
    args: Sequence[Any] = (),
    threads: int = 1,
) -> T:
    """Run ``main()`` here as rank 0 and ``other(*args)`` in ``n - 1`` spawned processes (ranks
    ``1..n-1``), each with ``threads`` torch threads; return what ``main`` returns.

    ``other`` and ``args`` must be picklable (a module-level function and plain data): spawn
    sends them to a fresh interpreter. Raises :class:`RankFailed` when another rank fails."""
    if n < 1:
        raise MeaError(f"--procs must be at least 1, not {n}")
    if n == 1:
        return main()
    if in_torchrun():
        raise MeaError(
            "--procs starts its own processes; under torchrun give --nproc-per-node instead"
        )
    shared = {
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(free_port()),
        "WORLD_SIZE": str(n),
        "LOCAL_WORLD_SIZE": str(n),
    }
    saved = {k: os.environ.get(k) for k in RENDEZVOUS}
    os.environ.update(shared, RANK="0", LOCAL_RANK="0")
    ctx = multiprocessing.get_context("spawn")
    said = _Said(ctx.SimpleQueue())  # a rank's own user error, for rank 0 to report
    ranks = [
        ctx.Process(
            target=_rank_main,
            args=(r, shared, threads, said.queue, other, tuple(args)),
            name=f"rank {r}",
        )
        for r in range(1, n)
    ]
    done = threading.Event()
    try:
        for p in ranks:
            p.start()
        threading.Thread(target=_watch, args=(ranks, said, done), daemon=True).start()
        try:
            result = main()
        except BaseException as err:
            done.set()
            failed = _first_failure(ranks, said)
            _stop(ranks)
            if failed is not None and not isinstance(err, KeyboardInterrupt | MeaError):
                raise failed from None  # a rank died first: rank 0's error is its echo
            raise
        done.set()
        for p in ranks:
            p.join()
        failed = _first_failure(ranks, said)
        if failed is not None:
            raise failed
        return result
    finally:
        done.set()
        _restore(saved)


def _watch(ranks: list[Any], said: _Said, done: threading.Event) -> None:
    """Rank 0's guard against waiting forever. A rank that dies after joining the group breaks
    rank 0's next collective (an error :func:`run_ranks` turns into :class:`RankFailed`), but one
    that dies before joining leaves rank 0 inside the group's rendezvous, a C++ wait no Python
    exception reaches. So when a rank has failed and rank 0 has not ended :data:`GRACE_S`
    later, the failure is printed and this process ends with the rank's exit code (as a rank 0
    that is training notices within a step, it is then in practice still joining the group,
    before anything of the run is written)."""
    while not done.is_set():
        multiprocessing.connection.wait([p.sentinel for p in ranks], timeout=0.5)
        if any(p.exitcode for p in ranks) and not done.wait(GRACE_S):
            failed = _first_failure(ranks, said)
            if failed is None or done.is_set():
                return
            print(f"error: {failed}", file=sys.stderr, flush=True)
            _stop(ranks)
            os._exit(max(p.exitcode or 0 for p in ranks if (p.exitcode or 0) > 0) or 1)
        if all(p.exitcode == 0 for p in ranks):
            return


def _rank_main(
    rank: int,
    shared: dict[str, str],
    threads: int,
    said: Any,
    other: Callable[..., Any],
    args: tuple,
) -> None:
    """A spawned rank: the group's variables, its threads, then ``other(*args)``. A user error
    is handed to rank 0 (``said``) instead of printed: rank 0 usually meets the same one."""
    os.environ.update(shared, RANK=str(rank), LOCAL_RANK=str(rank))
    apply_threads(threads)
    try:
        other(*args)
    except KeyboardInterrupt:
        sys.exit(130)  # Ctrl-C reached every process; rank 0 says what was kept
    except MeaError as err:
        said.put((rank, str(err)))
        sys.exit(err.exit_code)


class _Said:
    """The user errors other ranks handed over (``rank <r>`` -> message), read by rank 0's
    main thread and its watch alike."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue
        self.messages: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> str | None:
        with self._lock:
            while not self.queue.empty():
                rank, text = self.queue.get()
                self.messages[f"rank {rank}"] = text
            return self.messages.get(name)


def _first_failure(ranks: list[Any], said: _Said, wait_s: float = 1.0) -> RankFailed | None:
    """The first rank (by number) that has ended with a non-zero code, waiting up to
    ``wait_s`` for a rank that is ending; ``None`` when every rank is fine or still running."""
    for p in ranks:
        p.join(wait_s if p.exitcode is None else 0)
    for p in ranks:
        if p.exitcode:  # None: still running; 0: finished
            how = f"signal {-p.exitcode}" if p.exitcode < 0 else f"exit code {p.exitcode}"
            what = said.get(p.name) or "its error is printed above"
            return RankFailed(
                f"--procs: training process {p.name} of {len(ranks) + 1} failed ({how}): {what}"
            )
    return None


def _stop(ranks: list[Any]) -> None:
    """Ask every rank still running to end (SIGTERM), then make sure it has."""
    for p in ranks:
        if p.is_alive():
            p.terminate()
    for p in ranks:
        p.join(STOP_WAIT_S)
        if p.is_alive():
            p.kill()
            p.join()


def _restore(saved: dict[str, str | None]) -> None:
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
