"""``make bench-peers``: ours against the incumbent (MMSA 2.2.1's own trainer), one run, one file.

1. Creates MMSA's virtualenv under ``benchmarks/.peers/venv`` on first use (git-ignored) from
   the committed lock ``benchmarks/peers.lock`` (``torch==2.13.0``, ``MMSA==2.2.1`` and every
   dependency at the version measured working), so that every machine trains the incumbent
   in the same environment. ``--relock`` rebuilds the lock: a fresh virtualenv from
   ``torch==2.13.0`` then ``MMSA==2.2.1`` as PyPI resolves them today, ``pip freeze``d after
   the runner imported (check the run that follows, then commit the lock).
2. Writes the MOSI-shaped MMSA pickle (:mod:`bench_mmsa_pickle`; ``--n-scale 0.125`` gives the
   issue's 160 / 29 / 86 samples).
3. Trains MMSA's MulT with MMSA's own code (:mod:`bench_mmsa_runner`), then ours on the same pickle
   through ``mea import mmsa`` and ``mea train`` (:mod:`bench_train`): MEA at its MOSI preset,
   and every other registered model named in ``--ours`` (e.g. ``mult``); with ``--procs N``
   each of them once more with ``mea train --procs N`` (N CPU processes sharing each batch).
4. Prints train samples/s and peak RSS of each, and the ratios ours / MMSA-MulT; writes it all
   with the machine description to ``benchmarks/results/peers-<time>.json``.

    .venv/bin/python benchmarks/bench_peers.py [--n-scale 0.125] [--epochs 2] [--ours mea,mult]
                                         [--mult-as-mmsa] [--set [MODEL.]key=v] [--threads N]
                                         [--procs N]

Targets (issue 15): MEA >= 3x MMSA-MulT's train samples/s at <= 1/4 of its peak RSS; our MulT
>= 5x its samples/s. ``--mmsa-batch-size`` / ``--set train.batch_size=...`` shrink both sides
for a quick check of the pipeline on a busy machine; such figures are not the comparison.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parent))  # sibling bench_* modules, after site-packages

import bench_machine
import bench_mmsa_pickle
import bench_train

HERE = Path(__file__).resolve().parent
PEERS = HERE / ".peers"
VENV = PEERS / "venv"
PINS = ("torch==2.13.0", "MMSA==2.2.1")
LOCK = HERE / "peers.lock"
"""``pip freeze`` of MMSA's virtualenv as built from :data:`PINS` and measured working (the
runner imported and trained one epoch); ``make peers-lock`` rebuilds it (see docs/performance.md)."""
DRIFT_LIMIT = 0.15
"""The :func:`bench_machine.speed_drift` over which the report warns that the machine's own speed
moved during the benchmark: above the probe's own jitter (two probes in a row on a quiet machine:
0.345 and 0.371 s), far below what a shared virtual machine's speed did (2x within two hours)."""
MMSA_MULT = (
    "d=50", "heads=10", "layers=4", "memory_layers=4", "kernel_sizes=5/5/5", "text_dropout=0.5",
    "embed_dropout=0.2", "attn_dropout=0.3", "attn_dropout_audio=0.2", "attn_dropout_vision=0",
    "relu_dropout=0", "res_dropout=0", "out_dropout=0.5", "train.batch_size=16",
)  # fmt: skip
"""MMSA 2.2.1's MulT on MOSI (its ``config_regression.json``: sizes, dropouts, batch 16) as
``--set`` values for our ``mult`` (2,571,551 parameters, as MMSA's; ``docs/models/mult.md``):
``--mult-as-mmsa`` trains our MulT with the incumbent's architecture, so that the ratio measures
the toolkit itself (issue 15)."""


def ensure_venv(venv: Path = VENV, lock: Path = LOCK) -> Path:
    """MMSA's virtualenv, installed from the committed lock on first use (and again whenever the
    lock changes: the marker holds the lock's sha256); its python.

    Every distribution of the lock is pinned (``==``), so every machine gets the environment
    that was measured working, whatever PyPI holds today; pip adds only what a platform needs
    beyond it (PyPI's CUDA build of torch brings its ``nvidia-*`` wheels; the CPU build, as
    measured, needs none). ``pip check`` then says whether the result is consistent.
    """
    python = venv / "bin" / "python"
    marker = venv / ".installed-lock"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    if marker.exists() and marker.read_text().strip() == digest:
        return python
    print(f"creating MMSA's virtualenv in {venv} from {lock.name} ({', '.join(PINS)}) ...", flush=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip"]
    subprocess.run([*pip, "install", "-q", "-r", str(lock)], check=True)
    subprocess.run([*pip, "check"], check=True)
    subprocess.run([str(python), "-c", "import MMSA, torch"], check=True, env=safe_env())
    marker.write_text(digest + "\n")
    return python


def relock(venv: Path = VENV, lock: Path = LOCK) -> None:
    """Rebuild MMSA's virtualenv from :data:`PINS` as PyPI resolves them now and freeze it into
    ``lock`` (after checking that MMSA and torch import with this folder off the path)."""
    import shutil

    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    for pin in PINS:  # torch first: MMSA's own requirement would pick another build
        subprocess.run([python, "-m", "pip", "install", "-q", pin], check=True)
    subprocess.run([python, "-c", "import MMSA, torch"], check=True, env=safe_env())
    write_lock(Path(python), lock)


def write_lock(python: Path, lock: Path = LOCK) -> None:
    """``pip freeze`` of the virtualenv of ``python`` into ``lock``, local version labels
    dropped (torch's ``+cpu`` names a build of one index only; the version stays)."""
    frozen = subprocess.run(
        [str(python), "-m", "pip", "freeze", "--all", "--exclude", "pip", "--exclude", "setuptools"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    pins = [line.split("+")[0] if "==" in line else line for line in frozen.splitlines()]
    head = f"# pip freeze of MMSA's virtualenv, built from: {' '.join(PINS)} (bench_peers.py --relock)"
    lock.write_text("\n".join([head, *pins]) + "\n")
    print(f"wrote {lock} ({len(pins)} distributions)", flush=True)


def safe_env() -> dict[str, str]:
    """The environment for a script of this folder run by MMSA's python: ``PYTHONSAFEPATH``
    keeps the script's folder off the front of ``sys.path`` (Python >= 3.11), so that no file
    here can stand in for a package of MMSA's environment (issue 27: ``kernels.py`` once
    shadowed the ``kernels`` package that transformers 5 imports)."""
    return dict(os.environ, PYTHONSAFEPATH="1")


def run_mmsa(
    python: Path, pkl: Path, out: Path, epochs: int, batch_size: int | None
) -> list[dict[str, Any]]:
    """:mod:`bench_mmsa_runner` in MMSA's virtualenv; its summaries."""
    result = out / "mmsa-summary.json"
    result.unlink(missing_ok=True)
    cmd = [str(python), str(HERE / "bench_mmsa_runner.py"), "--pkl", str(pkl), "--out", str(out)]
    cmd += ["--models", "mult", "--epochs", str(epochs), "--json", str(result)]
    if batch_size:
        cmd += ["--batch-size", str(batch_size)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=safe_env())
    return json.loads(result.read_text())


def sets_for(model: str, sets: list[str], models: set[str]) -> list[str]:
    """The ``--set`` values for ``model``: unscoped ones, and ``model.key=v`` as ``key=v``
    (``mult.d=50``, ``mult.train.batch_size=16``); those scoped to another model are left out."""
    out = []
    for s in sets:
        scope, _, rest = s.partition(".")
        if scope in models and "=" not in scope:
            if scope == model:
                out.append(rest)
        else:
            out.append(s)
    return out


def ratio(ours: float, theirs: float) -> float:
    return round(ours / theirs, 2) if theirs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-scale", type=float, default=0.125)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--ours", default="mea", help="registered models to train, comma-separated")
    ap.add_argument("--set", dest="sets", action="append", default=[],
                    help="mea train --set for every model; MODEL.key=v for one model only")
    ap.add_argument("--mmsa-batch-size", type=int, help="override MMSA's preset batch size")
    ap.add_argument("--mult-as-mmsa", action="store_true",
                    help="our mult at MMSA's MulT sizes, dropouts and batch 16 (MMSA_MULT)")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--threads", type=int, default=0,
                    help="OpenMP/MKL threads of every training process, both sides (0: default)")
    ap.add_argument("--procs", type=int, default=0,
                    help="also train each of ours with mea train --procs N (CPU processes): "
                    "one more row per model, memory summed over its processes")
    ap.add_argument("--relock", action="store_true",
                    help="rebuild MMSA's virtualenv from PyPI and rewrite benchmarks/peers.lock")
    a = ap.parse_args()
    if a.mult_as_mmsa:  # before the user's own --set values, which win
        a.sets = [f"mult.{v}" for v in MMSA_MULT] + a.sets
    if a.threads:  # inherited by MMSA's process and ours alike
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(a.threads)

    if a.relock:
        relock()
    python = ensure_venv()
    work = PEERS / "work"
    work.mkdir(parents=True, exist_ok=True)
    pkl = work / f"mosi-mmsa-{a.n_scale:g}.pkl"
    data = bench_mmsa_pickle.write_mmsa_pickle(pkl, a.n_scale, seed=0)
    print(f"pickle {pkl.name}: train/valid/test {data['sizes']}", flush=True)

    start = time.perf_counter()
    probes = {"before MMSA-MulT": bench_machine.speed_probe()}
    theirs = run_mmsa(python, pkl, work / "mmsa", a.epochs, a.mmsa_batch_size)[0]
    print(
        f"MMSA-MulT: {theirs['train_samples_per_s']} samples/s, peak RSS "
        f"{theirs['peak_rss_MiB']:.0f} MiB",
        flush=True,
    )
    ours = []
    from mea_cli.models import list_models

    registered = set(list_models())
    for model in [m.strip() for m in a.ours.split(",") if m.strip()]:
        if model not in registered:
            print(f"{model}: not a registered model here, skipped", flush=True)
            continue
        sets = sets_for(model, a.sets, registered)
        probes[f"before {model}"] = bench_machine.speed_probe()
        ours.append(bench_train.train_ours(pkl, work / "ours", model, "mosi", a.epochs, sets))
        if a.procs > 1:
            probes[f"before {model} --procs {a.procs}"] = bench_machine.speed_probe()
            ours.append(
                bench_train.train_ours(
                    pkl, work / "ours", model, "mosi", a.epochs, sets, procs=a.procs
                )
            )
    probes["after"] = bench_machine.speed_probe()
    drift = bench_machine.speed_drift(list(probes.values()))
    rows = []
    for r in ours:
        rows.append(
            {
                "model": r["model"] + (f" --procs {r['procs']}" if r["procs"] > 1 else ""),
                "train_samples_per_s": r["train_samples_per_s"],
                "peak_rss_MiB": r["peak_rss_MiB"],
                "speed_ratio_vs_mmsa_mult": ratio(
                    r["train_samples_per_s"], theirs["train_samples_per_s"]
                ),
                "memory_ratio_vs_mmsa_mult": ratio(r["peak_rss_MiB"], theirs["peak_rss_MiB"]),
                "peak_pss_sum_MiB": r["memory_tree"]["peak_pss_sum_MiB"],
                "cpu_speed_ratio_vs_mmsa_mult": ratio(
                    r["train_samples_per_cpu_s"], theirs["train_samples_per_cpu_s"]
                ),
            }
        )
    print(
        f"\n{'model':<18}{'samples/s':>11}{'per cpu-s':>11}{'peak RSS MiB':>14}{'speed x':>9}"
        f"{'cpu x':>7}{'memory x':>10}"
    )
    print(
        f"{'MMSA-MulT':<18}{theirs['train_samples_per_s']:>11}"
        f"{theirs['train_samples_per_cpu_s']:>11}{theirs['peak_rss_MiB']:>14.0f}"
        f"{1.0:>9}{1.0:>7}{1.0:>10}"
    )
    for r, o in zip(rows, ours, strict=True):
        print(
            f"{r['model']:<18}{r['train_samples_per_s']:>11}{o['train_samples_per_cpu_s']:>11}"
            f"{r['peak_rss_MiB']:>14.0f}{r['speed_ratio_vs_mmsa_mult']:>9}"
            f"{r['cpu_speed_ratio_vs_mmsa_mult']:>7}{r['memory_ratio_vs_mmsa_mult']:>10}"
        )
    print(
        "peak RSS: the kernel's peak of the training process (wait4); with --procs the peak "
        "of the summed RSS of its processes. Summed PSS (shared pages counted once): "
        f"MMSA-MulT {theirs['memory_tree']['peak_pss_sum_MiB']:.0f} MiB, "
        + ", ".join(f"{r['model']} {r['peak_pss_sum_MiB']:.0f} MiB" for r in rows)
    )
    print(f"(load average now {bench_machine.load_average()}; per-epoch loads in the JSON)")
    print(bench_machine.probe_line(probes))
    if drift > DRIFT_LIMIT:
        print(
            f"warning: the machine's own speed changed by {drift:.0%} during this benchmark "
            f"(more than {DRIFT_LIMIT:.0%}): the speed ratios compare runs made at different "
            "machine speeds; run it again on a steadier machine",
            flush=True,
        )
    from mea_cli.paths import ensure_dir, write_json

    ensure_dir(a.out)
    path = a.out / f"peers-{time.strftime('%Y%m%d-%H%M%S')}.json"
    write_json(
        path,
        {
            "benchmark": "incumbent comparison (issue 15)",
            "pickle": data,
            "epochs": a.epochs,
            "sets": a.sets,
            "threads": a.threads or "torch default",
            # not the comparison, a pipeline check: smaller pickle or MMSA off its preset
            "reduced": bool(a.mmsa_batch_size) or a.n_scale != 0.125,
            "mmsa": theirs,
            "ours": ours,
            "ratios": rows,
            "speed_probe_s": probes,
            "speed_probe_drift": drift,
            "wall_s": round(time.perf_counter() - start, 1),
            "machine": bench_machine.describe(__import__("torch")),
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
