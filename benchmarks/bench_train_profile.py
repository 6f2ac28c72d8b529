"""Where one epoch of ``mea train`` spends its CPU seconds: torch.profiler over a real training pass.

Runs the real ``mea`` entry point in this process (as :mod:`bench_train_child` does) and puts
``torch.profiler`` around one chosen epoch's pass over the training batches (``--epoch``,
default 2, so that the first epoch's one-off set-up is left out). Each top-level part of the
model (extractors, PSA, WAL, HCA, encoders, discriminators, fusion, head) runs inside a
``record_function`` range of its own for the forward pass; the backward pass is attributed by
the autograd node names in the operator table; the optimiser step and the loader have ranges
too. Prints the parts' CPU seconds, the top operators by self CPU time, and the pass's
CPU seconds (user + sys, ``resource.getrusage``) and peak RSS::

    python benchmarks/bench_train_profile.py --top 30 -- train STORE --dataset mosi --epochs 2

Profiling adds overhead (a few per cent for this model's few thousand ops per step); read the
shares, not the absolute figures, and time levers with :mod:`bench_train` instead.
"""

from __future__ import annotations

import argparse
import resource
import sys
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parent))  # sibling bench_* modules, after site-packages

import bench_machine

PARTS = ("extractors", "psa", "wal", "hca", "exclusive", "agnostic", "discriminators", "fusion", "head")


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _ranges(model: Any, record_function: Any) -> None:
    """A ``record_function`` range around the forward pass of each of ``PARTS`` (and of every
    PSA layer's modalities, which ``run_psa`` calls one by one)."""

    def wrap(name: str, module: Any) -> None:
        real = module.forward

        def forward(*a: Any, **kw: Any) -> Any:
            with record_function(f"fwd/{name}"):
                return real(*a, **kw)

        module.forward = forward

    for part in PARTS:
        module = getattr(model, part, None)
        if module is None:
            continue
        if part in ("psa", "wal", "hca", "extractors"):  # containers: wrap their members
            for name, sub in module.named_children():
                if hasattr(sub, "named_children") and part == "psa":
                    for m, layer in sub.named_children():
                        wrap(f"psa/{name}/{m}", layer)
                elif part == "wal":
                    wrap(f"wal/{name}", sub)
                    real = sub.scores

                    def scores(*a: Any, _real: Any = real, **kw: Any) -> Any:
                        with record_function("fwd/wal"):
                            return _real(*a, **kw)

                    sub.scores = scores
                else:
                    wrap(f"{part}/{name}", sub)
        else:
            wrap(part, module)


def main() -> int:
    if "--" not in sys.argv:
        raise SystemExit("usage: bench_train_profile.py [--epoch N] [--top K] -- <mea arguments>")
    cut = sys.argv.index("--")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epoch", type=int, default=2)
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--trace", type=Path, help="write a Chrome trace of the profiled epoch here")
    a = ap.parse_args(sys.argv[1:cut])
    args = sys.argv[cut + 1 :]

    from mea_cli.runtime import prefer_huge_pages

    prefer_huge_pages()  # as the `mea` entry point does, before torch is imported
    import torch
    from torch.autograd.profiler import record_function
    from torch.profiler import ProfilerActivity, profile

    from mea_cli.train import trainer as trainer_mod

    real_epoch = trainer_mod.Trainer.train_epoch
    report: dict[str, Any] = {}

    def train_epoch(self: Any, epoch: int) -> dict[str, float]:
        if epoch != a.epoch:
            return real_epoch(self, epoch)
        _ranges(self.model, record_function)
        real_step, real_backward = self.opt.step, torch.Tensor.backward

        def step(*s: Any, **kw: Any) -> Any:
            with record_function("optimizer.step"):
                return real_step(*s, **kw)

        def backward(t: torch.Tensor, *s: Any, **kw: Any) -> Any:
            with record_function("backward (all)"):
                return real_backward(t, *s, **kw)

        self.opt.step = step
        torch.Tensor.backward = backward
        cpu0 = _cpu_s()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            out = real_epoch(self, epoch)
        report["cpu_s"] = _cpu_s() - cpu0
        torch.Tensor.backward = real_backward
        self.opt.step = real_step
        report["samples"] = len(self.loaders["train"].dataset)
        report["prof"] = prof
        return out

    trainer_mod.Trainer.train_epoch = train_epoch
    from mea_cli import cli

    sys.argv = ["mea", *args]
    try:
        cli.main()
    except SystemExit as stop:
        if stop.code:
            return int(stop.code)
    prof = report["prof"]
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) / 1e6
    print(f"epoch {a.epoch}: {report['samples']} samples, {report['cpu_s']:.1f} CPU-s (getrusage, "
          f"all threads), {report['cpu_s'] / report['samples']:.3f} CPU-s per sample; profiler self "
          f"CPU total {total:.1f} s; peak RSS {bench_machine.peak_rss_mib()} MiB; load "
          f"{bench_machine.load_average()}")
    print("\nranges (inclusive CPU s, forward unless named):")
    for e in sorted(events, key=lambda e: -e.cpu_time_total):
        if e.key.startswith(("fwd/", "optimizer.step", "backward (all)")):
            print(f"  {e.key:40s} {e.cpu_time_total / 1e6:8.2f} s  x{e.count}")
    print(f"\ntop {a.top} operators by self CPU s:")
    ops = [e for e in events if not e.key.startswith(("fwd/", "optimizer.step", "backward (all)"))]
    for e in sorted(ops, key=lambda e: -e.self_cpu_time_total)[: a.top]:
        print(f"  {e.key:60s} {e.self_cpu_time_total / 1e6:8.2f} s  {100 * e.self_cpu_time_total / 1e6 / total:5.1f} %  x{e.count}")
    if a.trace:
        prof.export_chrome_trace(str(a.trace))
    return 0


if __name__ == "__main__":
    sys.exit(main())
