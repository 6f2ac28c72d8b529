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


def passive_openmp() -> None:
    """OpenMP threads that sleep, not spin, while they wait (``OMP_WAIT_POLICY=PASSIVE``,
    before ``import torch``; a value the user set is kept). Spinning threads whose core another
    process holds made a 2-thread MEA step more than 50x slower on a busy 2-core machine;
    passive ones were the fastest of the settings measured there (docs/performance.md#threads)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def apply_threads(threads: int | None) -> int:
    """Set the CPU threads of this process's torch (intra-op) and of the OpenMP / MKL pools
    of processes it starts (``--threads N``); ``None`` keeps the default of
    :func:`default_threads`. Returns the number in effect."""
    import torch  # here, not at the top: the entry point imports this module before torch

    n = default_threads() if threads is None else int(threads)
    if n < 1:
        raise MeaError(f"--threads must be at least 1, not {n}")
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
    return int(env) if env.isdigit() and int(env) > 0 else torch.get_num_threads()
