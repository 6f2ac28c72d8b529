"""Step 2 of ``mea extract``: extract every planned video once, through the per-video cache.

Every finished video is reused from the cache (:mod:`mea_cli.extract.cache`); the rest run
in this process (``workers=1``) or in this process and ``workers - 1`` spawned ones, each
building its own :class:`~mea_cli.extract.pipeline.Pipeline` once (spawn, not fork: MediaPipe
and torch hold threads; this process reuses the pipeline it built to check the backends). Each result is written to the cache as soon as it is done, so a run stopped at any
moment resumes where it stopped.

Workers end with the main process even when it is killed outright
(:mod:`mea_cli.extract.lifetime`). Ctrl-C (SIGINT) stops the run: workers ignore SIGINT (the terminal sends it to the whole
process group, and a traceback per worker helps nobody), the main process terminates them
(each removes its half-written cache entry on SIGTERM) and raises :class:`ExtractInterrupted`:
one message saying how much is cached and that the same command resumes, exit code 130 (143
for SIGTERM), and no store written.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from queue import SimpleQueue
from types import FrameType
from typing import Any

from mea_cli.extract import cache
from mea_cli.extract.cache import VideoResult
from mea_cli.extract.discover import ExtractError, Plan
from mea_cli.extract.lifetime import die_with_parent
from mea_cli.extract.pipeline import ExtractConfig, Pipeline
from mea_cli.interrupt import Interrupted
from mea_cli.paths import ensure_dir


class ExtractInterrupted(Interrupted):
    """Ctrl-C or SIGTERM during ``mea extract``: what is cached stays, the store is not written
    (exit code 130 or 143)."""


@dataclass
class Progress:
    """What a progress display shows after each video."""

    done: int
    total: int
    failures: int
    media_seconds: float  # seconds of video extracted in this run (cache hits excluded)
    elapsed: float

    @property
    def rtf(self) -> float:
        """Real-time factor: seconds of video per second of wall-clock time."""
        return self.media_seconds / self.elapsed if self.elapsed > 0 else 0.0


@dataclass
class RunResult:
    """Every planned video's result and how the run went."""

    results: dict[str, VideoResult]
    extracted: int
    cached: int
    media_seconds: float  # of the videos extracted in this run
    wall_seconds: float
    compute_seconds: dict[str, float] = field(default_factory=dict)
    first_started: float = math.nan  # time.time() when the first video of this run began


_STATE: Pipeline | None = None
# one video to extract: key, path, cache entry, source signature, the sample spans it is cut into
Job = tuple[str, Path, Path, dict[str, Any], list[list[float]]]
_BUSY = False  # a worker is inside _work (a cache entry may be half-written)
_STOP_GRACE_S = 10.0  # how long a terminated worker may take to clean up before SIGKILL


class _Stop(BaseException):
    """Raised in a worker by SIGTERM while it works, to unwind (and clean up) then exit."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    if not _BUSY:
        os._exit(128 + signum)  # idle: nothing to clean up, and no native teardown to wait for
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)  # MediaPipe's teardown chatter from a worker being stopped is noise
    raise _Stop


def _init_worker(cfg: ExtractConfig) -> None:
    global _STATE
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what Ctrl-C does
    signal.signal(signal.SIGTERM, _on_sigterm)
    die_with_parent()  # kill -9 of mea must not leave workers idling forever
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    _STATE = Pipeline.from_config(cfg)


def _work(
    key: str,
    path: str,
    entry: str,
    fingerprint: str,
    signature: dict[str, Any],
    spans: list[list[float]],
) -> dict[str, Any]:
    global _BUSY
    assert _STATE is not None
    started = time.time()  # wall clock, comparable across processes (start-up in the report)
    _BUSY = True
    try:
        res = _STATE.extract_video(key, Path(path), [(a, b) for a, b in spans])
        cache.save(Path(entry), res, fingerprint, signature)
    except _Stop:
        # unwound: atomic_output has removed the half-written entry. Exit at once: a normal
        # interpreter exit can wait on MediaPipe's native threads.
        os._exit(128 + signal.SIGTERM)
    finally:
        _BUSY = False
    return {
        "key": key,
        "duration": res.duration,
        "failures": len(res.failures),
        "seconds": res.seconds,
        "started": started,
    }


def _feed(
    pool: ProcessPoolExecutor,
    slots: int,
    todo: deque[Job],
    results: SimpleQueue[dict[str, Any] | BaseException],
    fingerprint: str,
) -> None:
    """Keep ``slots`` spawned workers busy with videos from the front of ``todo`` (one each, so
    that the parent process, taking from the back, gets its share); every result, or the first
    error (a worker killed, the pool stopped), goes to ``results``."""
    pending: set[Future[Any]] = set()
    try:
        while True:
            while len(pending) < slots and todo:
                try:
                    key, path, entry, sig, spans = todo.popleft()
                except IndexError:  # the parent took the last one
                    break
                pending.add(
                    pool.submit(_work, key, str(path), str(entry), fingerprint, sig, spans)
                )
            if not pending:
                return
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                results.put(fut.result())
    except BaseException as err:  # handed to the parent, which stops the pool and raises it
        results.put(err)


def _ready() -> None:
    """A spawned worker's first task, submitted from the thread that runs :func:`run` so that
    the worker is started by that thread (see there)."""


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """SIGTERM the workers (each removes its half-written cache entry), SIGKILL any still
    alive after a grace period, and let the pool go: its manager thread sees the workers gone
    and fails the pending futures itself (cancelling them here first trips a CPython 3.11 bug:
    ``InvalidStateError`` in that thread)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    for proc in procs:
        proc.terminate()
    deadline = time.monotonic() + _STOP_GRACE_S
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()
            proc.join()
    pool.shutdown(wait=True)


def run(
    plan: Plan,
    pipeline: Pipeline,
    cfg: ExtractConfig,
    cache_dir: Path,
    workers: int = 1,
    progress: Callable[[Progress], None] | None = None,
) -> RunResult:
    """Extract ``plan.videos`` with ``pipeline`` (this process) or ``workers`` processes."""
    global _STATE
    t_start = time.perf_counter()
    fingerprint = pipeline.fingerprint()
    results: dict[str, VideoResult] = {}
    todo: list[Job] = []
    for key, path in plan.videos:
        entry = cache.entry_path(cache_dir, key)
        sig = cache.source_signature(path)
        hit = cache.load(entry, fingerprint, sig)
        if hit is not None:
            if pipeline.add_summaries(hit, path, plan.spans(key)):  # cut another way before
                cache.save(entry, hit, fingerprint, sig)
            results[key] = hit
        else:
            todo.append((key, path, entry, sig, plan.spans(key)))
    cached = len(results)
    total = len(plan.videos)
    done, nfail, media = cached, sum(len(r.failures) for r in results.values()), 0.0
    compute: Counter[str] = Counter()
    first_started = math.inf

    def show() -> None:
        if progress is not None:
            progress(Progress(done, total, nfail, media, time.perf_counter() - t_start))

    def tick(summary: dict[str, Any]) -> None:
        nonlocal done, nfail, media, first_started
        first_started = min(first_started, summary["started"])
        done += 1
        nfail += summary["failures"]
        if math.isfinite(summary["duration"]):
            media += summary["duration"]
        compute.update(summary["seconds"])
        show()

    def interrupted() -> ExtractInterrupted:
        now = sum(1 for *_, entry, _sig, _spans in todo if entry.is_file())  # finished, maybe unseen
        return ExtractInterrupted(
            f"interrupted: {now} video(s) extracted in this run, {cached + now} of {total} now "
            f"cached in {cache_dir}; no store was written. Run the same command again to resume"
        )

    show()
    if todo:
        ensure_dir(cache_dir, "extraction cache folder")
    if workers == 1 or len(todo) <= 1:
        _STATE = pipeline
        try:
            for key, path, entry, sig, spans in todo:
                tick(_work(key, str(path), str(entry), fingerprint, sig, spans))
        except KeyboardInterrupt:
            raise interrupted() from None
    else:
        # This process is one of the workers: it holds a loaded pipeline already, so only
        # workers - 1 are spawned (one start-up fewer: some 4-5 CPU-s of imports and model
        # loads, most of a short-clip corpus's overhead). It takes videos from the back of the
        # queue; a feeder thread hands the spawned workers one video each from the front.
        # Their results are counted between this process's own videos (and at the end).
        ctx = mp.get_context("spawn")
        spawned = min(workers, len(todo)) - 1
        pool = ProcessPoolExecutor(spawned, mp_context=ctx, initializer=_init_worker, initargs=(cfg,))
        # The workers start here, in the thread that runs the whole extraction: a worker's
        # parent-death signal (lifetime.die_with_parent) follows the *thread* that started it,
        # and the pool starts a worker from the thread of the submit that needs one. Started by
        # the feeder thread below, a worker got SIGTERM when that thread ended, while idle, and
        # left at once without its clean-up (a "leaked semaphore" warning at every run's end).
        for _ in range(spawned):
            pool.submit(_ready)
        _STATE = pipeline
        queue_: deque[Job] = deque(todo)
        summaries: SimpleQueue[dict[str, Any] | BaseException] = SimpleQueue()
        feeder = threading.Thread(
            target=_feed, args=(pool, spawned, queue_, summaries, fingerprint), daemon=True
        )

        def collect() -> None:
            while not summaries.empty():
                got = summaries.get()
                if isinstance(got, BaseException):
                    raise got
                tick(got)

        try:
            feeder.start()
            while True:
                collect()
                try:
                    key, path, entry, sig, spans = queue_.pop()
                except IndexError:
                    break
                tick(_work(key, str(path), str(entry), fingerprint, sig, spans))
            feeder.join()
            collect()
        except KeyboardInterrupt:
            _stop_workers(pool)
            raise interrupted() from None
        except BaseException:
            _stop_workers(pool)
            raise
        pool.shutdown(wait=True)
    for key, path, entry, sig, _spans in todo:
        res = cache.load(entry, fingerprint, sig)
        if res is None:
            raise ExtractError(f"{entry}: cache entry for {path} vanished while extracting")
        results[key] = res
    return RunResult(
        results=results,
        extracted=len(todo),
        cached=cached,
        media_seconds=media,
        wall_seconds=time.perf_counter() - t_start,
        compute_seconds=dict(compute),
        first_started=first_started if todo else math.nan,
    )
