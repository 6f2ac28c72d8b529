"""Train samples/s and peak RSS of ``mea train`` on a store imported from an MMSA pickle.

The pipeline a user runs, each step a process of its own: ``mea import mmsa PKL --out STORE``,
then ``mea train STORE --dataset mosi ...`` through :mod:`bench_train_child` (which times each pass
over the training batches). Train samples/s is the samples of one epoch over the mean train
seconds of the epochs after the first (the first pays one-off set-up), as the incumbent's
runner computes it for MMSA; with a single epoch, that epoch. Peak RSS is the training
process's, from the kernel (``wait4``).

    python benchmarks/bench_train.py PKL --work DIR [--model mea] [--epochs 2] [--set k=v ...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parent))  # sibling bench_* modules, after site-packages

import bench_machine

HERE = Path(__file__).resolve().parent


def import_store(pkl: Path, store: Path, log: Path, dataset: str = "mosi") -> dict[str, Any]:
    """``mea import mmsa`` in a child process; its wall time and peak RSS."""
    store.unlink(missing_ok=True)
    mea = [sys.executable, "-m", "mea_cli"]
    start = time.perf_counter()
    code, peak = bench_machine.run_child(
        [*mea, "import", "mmsa", str(pkl), "--out", str(store), "--dataset", dataset], log
    )
    if code != 0:
        raise RuntimeError(f"mea import mmsa failed (exit {code}); see {log}")
    return {"wall_s": round(time.perf_counter() - start, 2), "peak_rss_MiB": peak}


def summarise(passes: list[dict[str, Any]]) -> dict[str, Any]:
    """Train seconds per epoch and samples/s from the timed passes (first epoch left out)."""
    if not passes:
        raise RuntimeError("no pass over the training batches was timed")
    steady = passes[1:] if len(passes) > 1 else passes
    seconds = sum(p["train_s"] for p in steady) / len(steady)
    cpu = sum(p["train_cpu_s"] for p in steady) / len(steady)
    samples = steady[0]["samples"]
    return {
        "train_samples_per_cpu_s": round(samples / cpu, 3),
        "epochs": len(passes),
        "train_s_per_epoch_all": [p["train_s"] for p in passes],
        "train_s_per_epoch": round(seconds, 2),
        "samples_per_epoch": samples,
        "train_samples_per_s": round(samples / seconds, 3),
        "train_cpu_s_per_epoch_all": [p["train_cpu_s"] for p in passes],
        "load_average_per_epoch": [p["load_average"] for p in passes],
    }


def train_ours(
    pkl: Path,
    work: Path,
    model: str = "mea",
    dataset: str = "mosi",
    epochs: int = 2,
    sets: list[str] | None = None,
    seed: int = 1111,
    device: str = "cpu",
    procs: int = 1,
) -> dict[str, Any]:
    """Import ``pkl`` and train ``model`` on it (see the module docstring); the figures.
    ``procs`` > 1 trains with ``mea train --procs``: samples/s over all processes, CPU and
    memory of the whole process tree (``peak_rss_MiB`` is then the summed RSS's peak)."""
    work.mkdir(parents=True, exist_ok=True)
    store = work / f"{pkl.stem}.h5"
    log = work / f"{model}-train.log"
    log.unlink(missing_ok=True)
    imported = import_store(pkl, store, log, dataset)
    runs = work / "runs"
    name = f"bench-{model}-{dataset}-{device}" + (f"-procs{procs}" if procs > 1 else "")
    shutil.rmtree(runs / name, ignore_errors=True)
    result = work / f"{model}-train.result.json"
    result.unlink(missing_ok=True)
    args = ["train", str(store), "--dataset", dataset, "--model", model, "--epochs", str(epochs)]
    args += ["--seeds", str(seed), "--name", name, "--runs-dir", str(runs), "--device", device]
    for s in sets or []:
        args += ["--set", s]
    if procs > 1:
        args += ["--procs", str(procs)]
    cmd = [sys.executable, str(HERE / "bench_train_child.py"), str(result), "--", *args]
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    )
    start = time.perf_counter()
    tree: dict[str, Any] = {}
    code, peak = bench_machine.run_child(cmd, log, env, tree)
    if code != 0 or not result.exists():
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise RuntimeError(f"mea train failed (exit {code}); log {log}:\n" + "\n".join(tail))
    rec = json.loads(result.read_text())
    metrics_path = runs / name / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    out = {
        "model": model,
        "dataset_preset": dataset,
        "device": device,
        "sets": list(sets or []),
        **summarise(rec["passes"]),
        "procs": procs,
        "peak_rss_MiB": max(peak, rec["peak_rss_MiB"], tree["peak_rss_sum_MiB"]),
        "memory_tree": tree,
        "rss_at_start_MiB": rec["rss_at_start_MiB"],
        "cuda_max_memory_allocated_MiB": rec["cuda_max_memory_allocated_MiB"],
        "child_wall_s": round(time.perf_counter() - start, 1),
        "import": imported,
        "test": {k: v for k, v in metrics.get("test", {}).items() if isinstance(v, (int, float))},
        "machine": rec["machine"],
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pkl", type=Path)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--model", default="mea")
    ap.add_argument("--dataset", default="mosi")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--set", dest="sets", action="append", default=[])
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--procs", type=int, default=1, help="mea train --procs N (CPU processes)")
    a = ap.parse_args()
    rec = train_ours(
        a.pkl, a.work, a.model, a.dataset, a.epochs, a.sets, device=a.device, procs=a.procs
    )
    print(json.dumps(rec, indent=1))


if __name__ == "__main__":
    main()
