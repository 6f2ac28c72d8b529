"""Run ``mea train ...`` in this process and time every pass over its training batches.

Used by :mod:`bench_train` in a child process of its own (so that the peak RSS is this run's
alone)::

    python benchmarks/bench_train_child.py RESULT.json -- train STORE --dataset mosi --epochs 2 ...

Nothing of the trainer is reimplemented: the real ``mea`` entry point runs with the given
arguments. The only hook wraps the data stage's ``make_loader`` so that the *training* loader
(the one built with ``shuffle=True``) reports the wall time and sample count of each full pass
over it (data loading, forward, backward and optimiser steps; validation excluded), which is
what the incumbent's runner measures of MMSA's trainer. The result JSON holds those passes with
the load average after each, the process's peak RSS and the machine description.
"""

from __future__ import annotations

import inspect
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parent))  # sibling bench_* modules, after site-packages

import bench_machine


def main() -> int:
    result = Path(sys.argv[1])
    if len(sys.argv) < 3 or sys.argv[2] != "--":
        raise SystemExit("usage: bench_train_child.py RESULT.json -- <mea arguments>")
    args = sys.argv[3:]
    from mea_cli.runtime import passive_openmp, prefer_huge_pages

    # as the `mea` entry point does, before torch is imported (OpenMP reads its wait policy
    # when torch loads: set later, the measured process would keep spinning threads)
    prefer_huge_pages()
    passive_openmp()
    import torch

    import mea_cli.data.dataset as dataset
    from mea_cli.paths import write_json

    passes: list[dict[str, Any]] = []
    real_make_loader = dataset.make_loader
    signature = inspect.signature(real_make_loader)

    def make_loader(*a: Any, **kw: Any) -> Any:
        loader = real_make_loader(*a, **kw)
        shuffle = signature.bind(*a, **kw).arguments.get("shuffle")  # positional or keyword
        if not shuffle:
            return loader
        if "--procs" not in args:
            return bench_machine.TimedPasses(loader, passes, len)
        # mea train --procs N: this process is rank 0 of N, each taking its share of every
        # batch in step with the others, so a pass here is one over all N shares; its CPU is
        # the whole process tree's
        world = int(os.environ.get("WORLD_SIZE", "1"))
        return bench_machine.TimedPasses(
            loader, passes, lambda b: world * len(b), bench_machine.tree_cpu_s
        )

    dataset.make_loader = make_loader
    from mea_cli import cli

    for mod in list(sys.modules.values()):  # a trainer that imported the name before the hook
        if getattr(mod, "make_loader", None) is real_make_loader and mod is not dataset:
            mod.make_loader = make_loader
    rss_start = bench_machine.rss_mib()
    start = time.perf_counter()
    sys.argv = ["mea", *args]
    code = 0
    try:
        cli.main()
    except SystemExit as stop:
        code = int(stop.code or 0)
    wall = time.perf_counter() - start
    write_json(
        result,
        {
            "argv": args,
            "exit_code": code,
            "passes": passes,
            "wall_s": round(wall, 2),
            "rss_at_start_MiB": rss_start,
            "peak_rss_MiB": bench_machine.peak_rss_mib(),
            "cuda_max_memory_allocated_MiB": (
                round(torch.cuda.max_memory_allocated() / 2**20, 1)
                if torch.cuda.is_available()
                else None
            ),
            "machine": bench_machine.describe(torch),
        },
    )
    return code


if __name__ == "__main__":
    sys.exit(main())
