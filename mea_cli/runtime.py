"""Process-wide settings for CPU training, applied by the ``mea`` entry point before torch loads.

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


def prefer_huge_pages() -> None:
    """Ask torch for transparent huge pages on large CPU tensors (before ``import torch``)."""
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")


def apply_threads(threads: int | None) -> int:
    """Set the CPU threads of this process's torch (intra-op) and of the OpenMP / MKL pools
    of processes it starts (``--threads N``); ``None`` keeps the default of
    :func:`default_threads`. Returns the number in effect."""
    import torch

    n = default_threads() if threads is None else int(threads)
    if n < 1:
        from mea_cli.errors import MeaError

        raise MeaError(f"--threads must be at least 1, not {n}")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    torch.set_num_threads(n)
    return n


def default_threads() -> int:
    """The threads used without ``--threads``: ``OMP_NUM_THREADS`` when set; otherwise torch's
    default (one per physical core) less the cores other processes keep busy now (the 1-minute
    load average, rounded), at least 1. On a quiet machine that is every core; on a busy one 1,
    because OpenMP threads that wait for a core another process holds made a training step
    tens of times slower (docs/performance.md#threads)."""
    import torch

    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return threads_for_load(torch.get_num_threads(), os.getloadavg()[0])


def threads_for_load(cores: int, load: float) -> int:
    """``cores`` less the busy ones (``load``, rounded to the nearest integer), within 1..cores."""
    return max(1, min(cores, int(cores - load + 0.5)))
