"""``make bench``: every speed and memory figure of issue 15 beside its baseline, in one run.

1. **Kernels** (:mod:`bench_kernels`): each operation of the efficient paths beside the plain one.
2. **Levers** (:mod:`bench_step_cost`, a process per row): one MEA training step at the MOSI preset,
   batch 4 (``--lever-batch``), ragged lengths up to 500, from the code before issue 15
   (explicit attention with attention dropout 0.1) to today's default, one lever added per row;
   then the same for our MulT at MMSA's MulT sizes and dropouts (``bench_peers.MMSA_MULT``), batch 8,
   from SDPA with its own dropout (math path on CPU) to today's default.
3. **Cost curves**: step time and peak RSS against sequence length (``T`` = 50 ... 2000,
   batch 2, every sample full length) and against batch size (ragged lengths up to 500), for
   each model in ``--models`` (any registered name), efficient vs explicit path; PNGs in docs/.
4. **MOSEI preset** (batch 64, 10 heads, every sample 500 steps: the worst case): peak RSS
   against the 24 GiB budget.
5. **Training** (:mod:`bench_train`): ``mea import mmsa`` + ``mea train`` (MOSI preset,
   ``--epochs``) on the issue's 1/8-MOSI pickle, train samples/s and peak RSS beside the
   incumbent's (the newest ``benchmarks/results/peers-*.json`` from ``make bench-peers``, or
   the figures recorded in issue 15, labelled as such).

Everything goes to ``benchmarks/results/bench-<time>.json`` with the machine described and the
load average beside each timing. CPU timings on a busy machine are unreliable (with several
threads per process, much worse than proportionally): use a quiet machine, or ``--threads 1``.

    .venv/bin/python benchmarks/bench_run.py [--quick] [--threads N] [--models mea,mult]
                                       [--max-rss-gib G] [--skip-train]

On a quiet 2-core machine the full run (T up to 2000) took 9 min 20 s and ``--quick`` (T up to
1000, fewer batch sizes, no MOSEI point, one training epoch) 5 min 43 s, ``make`` included.
``--quick`` redraws the PNGs with its fewer points; ``--plot-only`` redraws them from a JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.append(str(Path(__file__).resolve().parent))  # sibling bench_* modules, after site-packages

import bench_kernels
import bench_machine
import bench_mmsa_pickle
import bench_peers
import bench_step_cost
import bench_train
from bench_step_cost import point

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BASE_RSS_MIB = 350.0  # an idle python + torch + mea_cli process: what does not grow with T or B
ISSUE_15_MMSA = {
    "model": "MMSA-MulT (recorded in issue 15, not this run)",
    "train_samples_per_s": 1.86,
    "peak_rss_MiB": 9.4 * 1024,
}
LEVERS = [
    ("before: explicit code, attention dropout 0.1", "explicit",
     ("attn_dropout=0.1",)),
    ("no attention dropout (the paper has none)", "explicit", ()),
    ("+ efficient kernels (flash MRU, map ops, lean FFN, LSTM)", "efficient",
     ("attn_group_budget=0", "checkpoint_psa=false")),
    ("+ length groups (attn_group_budget=2^20)", "efficient", ("checkpoint_psa=false",)),
    ("+ no PSA map kept (checkpoint_psa, default)", "efficient", ()),
    ("+ HCA groups checkpointed (checkpoint_hca=true)", "efficient", ("checkpoint_hca=true",)),
]  # fmt: skip
MULT_SIZES = tuple(v for v in bench_peers.MMSA_MULT if not v.startswith("train."))
MULT_LEVERS = [
    ("before: SDPA with its own dropout (CPU math path), no groups", "explicit", ()),
    ("+ CPU dropout attention, maps recomputed (checkpointed)", "efficient",
     ("attn_group_budget=0", "attn_saved_mib=0")),
    ("+ length groups (attn_group_budget=2^20)", "efficient", ("attn_saved_mib=0",)),
    ("+ maps kept when under attn_saved_mib (default)", "efficient", ()),
]  # fmt: skip


def _row(label: str, rec: dict[str, Any], base: dict[str, Any] | None) -> str:
    if "error" in rec:
        return f"{label:<58} failed: {rec['error']}"
    text = (
        f"{label:<58} {rec['step_s']:>7.2f} s {rec['step_cpu_s']:>7.2f} cpu-s "
        f"{rec['samples_per_s']:>6.2f}/s {rec['peak_rss_MiB']:>6.0f} MiB  load "
        f"{rec['load_average'][0]:.1f}"
    )
    if base is not None and "error" not in base:
        text += (
            f"  speed x{base['step_s'] / rec['step_s']:.2f} (cpu x"
            f"{base['step_cpu_s'] / rec['step_cpu_s']:.2f})"
            f"  memory /{base['peak_rss_MiB'] / rec['peak_rss_MiB']:.2f}"
        )
    return text


def _predicted_mib(prev: dict[str, Any] | None, factor: float) -> float:
    if prev is None or "error" in prev:
        return 0.0
    return BASE_RSS_MIB + (prev["peak_rss_MiB"] - BASE_RSS_MIB) * factor


class Bench:
    """Runs points in child processes and keeps every record."""

    def __init__(self, a: argparse.Namespace, work: Path) -> None:
        self.a = a
        self.work = work
        self.cap_mib = a.max_rss_gib * 1024 if a.max_rss_gib else None

    def measure(self, p: dict[str, Any], predicted_mib: float = 0.0) -> dict[str, Any]:
        if self.cap_mib is not None and predicted_mib > self.cap_mib:
            return {
                **p,
                "error": f"skipped: about {predicted_mib:.0f} MiB predicted, over --max-rss-gib",
            }
        return bench_step_cost.measure(p, self.work, steps=2, threads=self.a.threads)

    def curve(self, model: str, path: str, key: str, values: list[int], **fixed: Any) -> list:
        rows, prev, prev_v = [], None, None
        for v in values:
            factor = 1.0 if prev_v is None else (v / prev_v) ** (2 if key == "T" else 1)
            args = {"batch": fixed.get("batch"), "t": fixed.get("t"), key_arg(key): v}
            rec = self.measure(
                point(model, args["batch"], args["t"], path, ragged=fixed.get("ragged", False)),
                _predicted_mib(prev, factor),
            )
            rows.append(rec)
            print(_row(f"  {model} {path:<9} {key}={v}", rec, None), flush=True)
            if "error" in rec:
                break  # longer / bigger only costs more
            prev, prev_v = rec, v
        return rows


def key_arg(key: str) -> str:
    return "t" if key == "T" else "batch"


def plot(curves: dict[str, Any], key: str, path: Path, title: str) -> None:
    """Step seconds and peak RSS against ``key`` for every (model, path) curve, log-log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mea_cli.paths import atomic_output

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(10, 4))
    ticks: set[int] = set()
    for name, rows in curves.items():
        ok = [r for r in rows if "error" not in r]
        if not ok:
            continue
        xs = [r[key if key == "T" else "batch"] for r in ok]
        ticks.update(xs)
        style = "--" if "explicit" in name else "-"
        ax_t.plot(xs, [r["step_s"] for r in ok], style, marker="o", label=name)
        ax_m.plot(xs, [r["peak_rss_MiB"] / 1024 for r in ok], style, marker="o", label=name)
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    for ax, ylabel in ((ax_t, "seconds per training step"), (ax_m, "peak RSS (GiB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(sorted(ticks))  # the measured points, labelled as plain numbers
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("sequence length T (vision, audio)" if key == "T" else "batch size")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
    ax_t.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_output(path, "plot") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def replot(report: dict[str, Any], docs: Path) -> None:
    """``docs/perf-length.png`` and ``docs/perf-batch.png`` from a report's curves."""
    from mea_cli.paths import ensure_dir

    ensure_dir(docs)
    where = f"{report['machine']['cpu']}, {report['machine']['torch_threads']} threads"
    load = max(
        (r["load_average"][0] for rows in report["curves_length"].values() for r in rows
         if "load_average" in r),
        default=0.0,
    )  # fmt: skip
    plot(report["curves_length"], "T", docs / "perf-length.png",
         f"Training step vs sequence length, MOSI presets, batch 2 ({where}; load <= {load:.1f})")  # fmt: skip
    plot(report["curves_batch"], "B", docs / "perf-batch.png",
         f"Training step vs batch size, MOSI presets, lengths <= 500 ragged ({where})")  # fmt: skip


def newest_peers(results: Path) -> dict[str, Any]:
    """MMSA-MulT's figures from the newest ``make bench-peers`` run, else issue 15's."""
    runs = sorted(results.glob("peers-*.json"))
    for path in reversed(runs):
        rec = json.loads(path.read_text())
        if rec.get("pickle", {}).get("n_scale") == 0.125 and not rec.get("reduced"):
            mmsa = rec["mmsa"]
            return {**mmsa, "model": f"MMSA-MulT ({path.name})"}
    return ISSUE_15_MMSA


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick",
        action="store_true",
        help="T <= 1000, fewer batch sizes, no MOSEI point, one training epoch",
    )
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    ap.add_argument("--models", default="mea,mult", help="registered models for the cost curves")
    ap.add_argument("--max-rss-gib", type=float, help="skip points predicted to need more")
    ap.add_argument("--lever-batch", type=int, default=4, help="batch of the levers table")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--results", type=Path, default=HERE / "results")
    ap.add_argument("--docs", type=Path, default=ROOT / "docs")
    ap.add_argument("--plot-only", type=Path, help="redraw the PNGs from a bench-*.json")
    a = ap.parse_args()
    if a.plot_only:
        replot(json.loads(a.plot_only.read_text()), a.docs)
        return
    if a.threads:
        torch.set_num_threads(a.threads)
        # the training child (mea train) reads them when its torch starts
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(a.threads)
    from mea_cli.models import list_models
    from mea_cli.paths import ensure_dir, write_json

    work = ensure_dir(HERE / ".work")
    ensure_dir(a.results)
    bench = Bench(a, work)
    started = time.time()
    report: dict[str, Any] = {
        "benchmark": "issue 15 (make bench)",
        "machine": bench_machine.describe(torch),
    }
    print(f"machine: {json.dumps(report['machine'])}", flush=True)

    print("\n== kernels: plain operation vs ours, one process (ratio > 1: ours faster)")
    report["kernels"] = bench_kernels.run_all(repeats=3 if a.quick else 5)
    for rec in report["kernels"].values():
        print(f"  {rec['what']:<50} plain {rec['plain_s'] * 1e3:8.1f} ms  ours "
              f"{rec['ours_s'] * 1e3:8.1f} ms  x{rec['ratio']}  load {rec['load_average'][0]}")  # fmt: skip

    print(f"\n== levers: MEA, MOSI preset, batch {a.lever_batch}, lengths <= 500 (ragged)")
    levers = []
    for label, path, sets in LEVERS:
        rec = bench.measure(point("mea", a.lever_batch, 500, path, "mosi", sets, ragged=True))
        rec["lever"] = label
        levers.append(rec)
        print(_row(label, rec, levers[0]), flush=True)
    report["levers"] = levers
    print(f"\n== levers: our MulT at MMSA's MulT sizes and dropouts, batch {2 * a.lever_batch}, "
          "lengths <= 500 (ragged)")  # fmt: skip
    mult_levers = []
    for label, path, sets in MULT_LEVERS:
        rec = bench.measure(
            point("mult", 2 * a.lever_batch, 500, path, "mosi", MULT_SIZES + sets, ragged=True)
        )
        rec["lever"] = label
        mult_levers.append(rec)
        print(_row(label, rec, mult_levers[0]), flush=True)
    report["levers_mult"] = mult_levers

    models = [m for m in a.models.split(",") if m.strip()]
    unknown = sorted(set(models) - set(list_models()))
    if unknown:
        print(f"\n(models not registered here, left out: {', '.join(unknown)})")
    models = [m for m in models if m not in unknown]
    lengths = [50, 250, 1000] if a.quick else [50, 250, 500, 1000, 2000]
    batches = [1, 4, 16] if a.quick else [1, 4, 16, 32]
    explicit_lengths = [t for t in lengths if t <= 500]
    curves_t: dict[str, Any] = {}
    curves_b: dict[str, Any] = {}
    print("\n== cost against sequence length T (batch 2, full-length samples)")
    for m in models:
        curves_t[f"{m} efficient"] = bench.curve(m, "efficient", "T", lengths, batch=2)
        curves_t[f"{m} explicit"] = bench.curve(m, "explicit", "T", explicit_lengths, batch=2)
    print("\n== cost against batch size (T <= 500, ragged)")
    for m in models:
        curves_b[f"{m} efficient"] = bench.curve(m, "efficient", "B", batches, t=500, ragged=True)
        curves_b[f"{m} explicit"] = bench.curve(m, "explicit", "B", batches[:2], t=500, ragged=True)
    report["curves_length"] = curves_t
    report["curves_batch"] = curves_b
    replot(report, a.docs)

    if "mea" in models and not a.quick:
        print("\n== MOSEI preset: batch 64, 10 heads, every sample T = 500 (worst case)")
        b32 = [r for r in curves_b.get("mea efficient", []) if r.get("batch") == 32]
        # twice the batch, full instead of ragged lengths (~2x), 10 instead of 8 heads
        guess = _predicted_mib(b32[0] if b32 else None, 2 * 2 * 1.25)
        rec = bench.measure(point("mea", 64, 500, "efficient", "mosei"), guess)
        report["mosei_preset"] = rec
        print(_row("MEA MOSEI preset, batch 64, T 500", rec, None))
        if "error" not in rec:  # the check of `make bench-mosei-memory`
            print(f"  {bench_step_cost.budget_check(rec, 24)}")

    if not a.skip_train:
        print("\n== training: mea import mmsa + mea train, MOSI preset, 1/8-MOSI pickle")
        pkl = work / "mosi-mmsa-0.125.pkl"
        report["pickle"] = bench_mmsa_pickle.write_mmsa_pickle(pkl, 0.125, seed=0)
        epochs = 1 if a.quick else a.epochs
        ours = bench_train.train_ours(pkl, work / "train", "mea", "mosi", epochs)
        theirs = newest_peers(a.results)
        report["training"] = {"ours": ours, "baseline": theirs}
        print(f"  {'':<46}{'samples/s':>10}{'per cpu-s':>11}{'peak RSS MiB':>14}")
        print(f"  {theirs['model']:<46}{theirs['train_samples_per_s']:>10}"
              f"{theirs.get('train_samples_per_cpu_s', '-'):>11}"
              f"{theirs['peak_rss_MiB']:>14.0f}")  # fmt: skip
        print(f"  {'MEA (ours), load ' + str(ours['load_average_per_epoch'][-1][0]):<46}"
              f"{ours['train_samples_per_s']:>10}{ours['train_samples_per_cpu_s']:>11}"
              f"{ours['peak_rss_MiB']:>14.0f}")  # fmt: skip
        speed = ours["train_samples_per_s"] / theirs["train_samples_per_s"]
        memory = ours["peak_rss_MiB"] / theirs["peak_rss_MiB"]
        print(f"  ratio: speed x{speed:.2f} (target >= 3), memory x{memory:.2f} (target <= 0.25)")
        report["training"]["ratios"] = {"speed": round(speed, 2), "memory": round(memory, 3)}

    if torch.cuda.is_available():
        print("\n== GPU: MEA MOSI and MOSEI presets, bf16 autocast is the trainer's GPU precision")
        report["gpu"] = [
            bench_step_cost.measure(point("mea", b, 500, "efficient", ds, ragged=True), work,
                              threads=a.threads, device="cuda")
            for ds, b in (("mosi", 32), ("mosei", 64))
        ]  # fmt: skip
        for rec in report["gpu"]:
            print(f"  {rec['dataset']} batch {rec['batch']}: {rec.get('step_s')} s/step, "
                  f"{rec.get('cuda_max_memory_allocated_MiB')} MiB on {rec.get('device')}")  # fmt: skip
        if not a.skip_train:
            gpu = bench_train.train_ours(pkl, work / "train", "mea", "mosi", epochs, device="cuda")
            report["gpu_training"] = gpu
            print(f"  mea train on the 1/8 pickle: {gpu['train_samples_per_s']} samples/s, "
                  f"{gpu['cuda_max_memory_allocated_MiB']} MiB GPU memory")  # fmt: skip
    report["wall_s"] = round(time.time() - started, 1)
    out = a.results / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    write_json(out, report)
    print(f"\nwrote {out}, {a.docs / 'perf-length.png'}, {a.docs / 'perf-batch.png'} "
          f"({report['wall_s']:.0f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
