"""What running a model needs, below every stage: process-wide settings (this module, light:
the ``mea`` entry point imports it before torch loads), the device / autocast / prediction
engine (:mod:`.engine`), data-parallel processes (:mod:`.distributed`), regression targets in
the model's range (:mod:`.targets`) and checkpoint -> model (:mod:`.loading`).

Process-wide settings for CPU training, applied by the ``mea`` entry point before torch loads.

Training allocates and frees many large tensors of varying sizes (attention maps of length
groups, ``docs/performance.md``). With glibc's allocator the freed space is reused badly and the
resident set grows well beyond the memory actually in use. PyTorch's CPU allocator can place
allocations of 2 MiB and more on transparent huge pages (``THP_MEM_ALLOC_ENABLE=1``, read once
when torch makes its first tensor); on Linux with THP in ``madvise`` or ``always`` mode this cut
the peak RSS of MEA training steps by about a fifth at the same speed (measured in
``benchmarks/``). A value the user set in the environment is kept; elsewhere it has no effect.
"""

from __future__ import annotations

import os

from mea_cli.errors import MeaError


def prefer_huge_pages() -> None:
    """Ask torch for transparent huge pages on large CPU tensors (before ``import torch``)."""
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")


SPIN_COUNT = "1000"
"""libgomp's ``GOMP_SPINCOUNT`` under :func:`passive_openmp`: about 10 microseconds of spinning
(libgomp counts about 100 000 spins per millisecond) before a waiting thread sleeps."""


def passive_openmp() -> None:
    """OpenMP threads that spin briefly, then sleep, while they wait (before ``import torch``):
    ``OMP_WAIT_POLICY=PASSIVE`` with ``GOMP_SPINCOUNT=1000`` (:data:`SPIN_COUNT`). Either
    variable set by the user keeps the user's choice and adds nothing.

    Why (docs/performance.md#threads, one MEA epoch at its MOSI preset, 2 threads, 2 cores):
    libgomp's own default spins about 3 ms, and spinning threads whose core another process
    holds made a 2-thread MEA step more than 50x slower on a busy machine; fully passive threads
    (spin count 0) do not collapse but halve the speed on a quiet machine (73 s against 37 s
    with 10 000 spins), as every hand-over between the two threads then costs a sleep and a
    wake-up. 1000 spins: 51 s quiet, and 74 s beside a process holding one core (passive: 61 s;
    10 000 spins: 199 s).
    """
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT


MAX_THREADS = 4096
"""The most CPU threads ``--threads`` takes: beyond any machine's cores (torch's own limit is a
C ``int``; a larger number ended in an ``Overflow when unpacking long`` traceback)."""


def check_threads(threads: int | None) -> None:
    """Refuse a ``--threads`` outside ``1 .. MAX_THREADS`` (``None``, the default, passes)."""
    if threads is not None and int(threads) < 1:
        raise MeaError(f"--threads must be at least 1, not {threads}")
    if threads is not None and int(threads) > MAX_THREADS:
        raise MeaError(f"--threads must be at most {MAX_THREADS}, not {threads}")


def apply_threads(threads: int | None) -> int:
    """Set the CPU threads of this process's torch (intra-op) and of the OpenMP / MKL pools
    of processes it starts (``--threads N``, checked by :func:`check_threads`); ``None``
    keeps the default of :func:`default_threads`. Returns the number in effect."""
    check_threads(threads)
    import torch  # here, not at the top: the entry point imports this module before torch

    n = default_threads() if threads is None else int(threads)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    torch.set_num_threads(n)
    return n


def default_threads() -> int:
    """The threads used without ``--threads``: ``OMP_NUM_THREADS`` when set, else torch's
    default (one per physical core), which with :func:`passive_openmp` does not collapse on a
    busy machine (measured: docs/performance.md#threads)."""
    import torch  # here, not at the top: see apply_threads

    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    usable = env.isdigit() and 0 < int(env) <= MAX_THREADS  # else torch's own number
    return int(env) if usable else torch.get_num_threads()
