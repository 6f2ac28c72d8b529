"""Time the incumbent, MMSA 2.2.1, training with its own code (``MMSA.MMSA_run``) on CPU.

Runs inside MMSA's own virtualenv (see :mod:`bench_peers`); it needs MMSA and torch there, and from
this repository only the stdlib-only :mod:`bench_machine` and :mod:`mea_cli.paths`. Per model, a child
process calls ``MMSA_run(model, "mosi", config=..., seeds=[seed], gpu_ids=[])`` with the
``featurePath`` pointing at the benchmark's pickle. MMSA's model, data loader and training loop
run untouched; the child only

* shims two incompatibilities of MMSA 2.2.1 with torch 2.13 on a CPU-only machine:
  ``torch.cuda.set_device`` is called with a CPU device (it raises), and
  ``ReduceLROnPlateau(verbose=...)`` no longer exists;
* wraps MMSA's training ``DataLoader`` so that each full pass over it is timed (train-only
  seconds: data loading, forward, backward, optimiser; validation excluded), as
  :mod:`bench_train_child` does for ours;
* stops training after ``--epochs`` validations (MMSA's loop only stops early: the child lowers
  ``early_stop`` to 0 after the last wanted validation, and MMSA's own check ends the loop);
* records the parameter count, MMSA's test metrics and the process's peak RSS.

    <mmsa-venv>/bin/python benchmarks/bench_mmsa_runner.py --pkl P.pkl --out DIR [--models mult]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# After site-packages, never before: MMSA's dependencies must not find our files in their place
# (run with PYTHONSAFEPATH=1 so that this folder is not first on the path either).
sys.path.append(str(HERE))  # bench_machine
sys.path.append(str(HERE.parent))  # mea_cli.paths (stdlib only) for the result files

import bench_machine  # noqa: E402

from mea_cli.paths import write_json  # noqa: E402


def _shim_torch(torch: Any) -> None:
    """Make MMSA 2.2.1's CPU path run on torch 2.13 (see the module docstring)."""
    set_device = torch.cuda.set_device

    def cpu_tolerant_set_device(device: Any) -> None:
        if isinstance(device, torch.device) and device.type != "cuda":
            return None
        return set_device(device)

    torch.cuda.set_device = cpu_tolerant_set_device
    import torch.optim.lr_scheduler as schedulers

    class ReduceLROnPlateau(schedulers.ReduceLROnPlateau):
        def __init__(self, *args: Any, verbose: Any = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)

    schedulers.ReduceLROnPlateau = ReduceLROnPlateau  # before MMSA imports the name


def child(a: argparse.Namespace) -> None:
    """One model, one process: MMSA_run with the hooks above; writes ``a.result``."""
    import pickle

    import torch

    _shim_torch(torch)
    import MMSA
    import MMSA.run as mmsa_run

    rec: dict[str, Any] = {"model": a.model, "passes": [], "val_s": []}
    real_loader = mmsa_run.MMDataLoader

    def loader(args: Any, num_workers: int) -> Any:
        loaders = real_loader(args, num_workers)
        rec["split_sizes"] = {k: len(v.dataset) for k, v in loaders.items()}
        rec["seq_lens"] = list(args.get("seq_lens", []))
        rec["rss_before_train_MiB"] = bench_machine.rss_mib()
        loaders["train"] = bench_machine.TimedPasses(
            loaders["train"], rec["passes"], lambda b: len(b["index"])
        )
        return loaders

    mmsa_run.MMDataLoader = loader
    real_count = mmsa_run.count_parameters

    def count(model: Any) -> int:
        rec["params"] = real_count(model)
        return rec["params"]

    mmsa_run.count_parameters = count
    real_atio = mmsa_run.ATIO

    class CappedATIO(real_atio):
        def getTrain(self, args: Any) -> Any:  # noqa: N802 (MMSA's name)
            trainer = super().getTrain(args)
            real_test = trainer.do_test

            def do_test(model: Any, loader: Any, mode: str = "VAL", *xa: Any, **kw: Any) -> Any:
                start = time.perf_counter()
                out = real_test(model, loader, mode, *xa, **kw)
                if mode == "VAL":
                    rec["val_s"].append(round(time.perf_counter() - start, 3))
                    if len(rec["val_s"]) >= a.epochs:
                        trainer.args.early_stop = 0  # MMSA's own check now ends the loop
                else:
                    rec["test"] = {
                        k: float(v) for k, v in out.items() if isinstance(v, (int, float))
                    }
                return out

            trainer.do_test = do_test
            return trainer

    mmsa_run.ATIO = CappedATIO
    from MMSA import get_config_regression

    cfg = get_config_regression(a.model, "mosi")
    with open(a.pkl, "rb") as f:
        n_train = len(pickle.load(f)["train"]["regression_labels"])
    cfg["featurePath"] = str(Path(a.pkl).resolve())
    cfg["early_stop"] = 10**9  # the epoch cap above ends training
    cfg["train_samples"] = n_train
    if a.batch_size:
        cfg["batch_size"] = a.batch_size
    out = Path(a.out)
    start = time.perf_counter()
    MMSA.MMSA_run(
        a.model, "mosi", config=cfg, seeds=[a.seed], gpu_ids=[], num_workers=0,
        verbose_level=0, model_save_dir=out / "models", res_save_dir=out / "results",
        log_dir=out / "logs",
    )  # fmt: skip
    rec["wall_s"] = round(time.perf_counter() - start, 2)
    rec["batch_size"] = cfg.get("batch_size")
    rec["peak_rss_MiB"] = bench_machine.peak_rss_mib()
    rec["machine"] = bench_machine.describe(torch)
    rec["mmsa"] = getattr(MMSA, "__version__", "2.2.1")
    write_json(a.result, rec)


def summarise(rec: dict[str, Any]) -> dict[str, Any]:
    """Train s/epoch and samples/s over the epochs after the first (one epoch: that one)."""
    passes = rec["passes"]
    if not passes:
        raise RuntimeError(f"{rec['model']}: no pass over MMSA's training batches was timed")
    steady = passes[1:] if len(passes) > 1 else passes
    seconds = sum(p["train_s"] for p in steady) / len(steady)
    cpu = sum(p["train_cpu_s"] for p in steady) / len(steady)
    return {
        "train_samples_per_cpu_s": round(steady[0]["samples"] / cpu, 3),
        "model": f"MMSA-{rec['model']}",
        "params": rec.get("params"),
        "batch_size": rec.get("batch_size"),
        "epochs": len(passes),
        "train_s_per_epoch_all": [p["train_s"] for p in passes],
        "train_s_per_epoch": round(seconds, 2),
        "samples_per_epoch": steady[0]["samples"],
        "train_samples_per_s": round(steady[0]["samples"] / seconds, 3),
        "train_cpu_s_per_epoch_all": [p["train_cpu_s"] for p in passes],
        "load_average_per_epoch": [p["load_average"] for p in passes],
        "peak_rss_MiB": rec["peak_rss_MiB"],
        "test": rec.get("test", {}),
        "split_sizes": rec.get("split_sizes"),
        "machine": rec.get("machine"),
    }


def run_models(
    pkl: Path,
    out: Path,
    models: list[str],
    epochs: int,
    seed: int = 1111,
    batch_size: int | None = None,
) -> list[dict[str, Any]]:
    """Each model in a child process of this interpreter; their summaries."""
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    results = []
    for model in models:
        result = out / f"{model}.result.json"
        log = out / f"{model}.log"
        result.unlink(missing_ok=True)
        log.unlink(missing_ok=True)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--model", model]
        cmd += ["--result", str(result), "--pkl", str(pkl), "--out", str(out)]
        cmd += ["--epochs", str(epochs), "--seed", str(seed)]
        if batch_size:
            cmd += ["--batch-size", str(batch_size)]
        tree: dict[str, Any] = {}
        code, peak = bench_machine.run_child(cmd, log, env, tree)
        if code != 0 or not result.exists():
            tail = log.read_text(errors="replace").splitlines()[-15:]
            raise RuntimeError(f"MMSA {model} failed (exit {code}); log {log}:\n" + "\n".join(tail))
        summary = summarise(json.loads(result.read_text()))
        summary["peak_rss_MiB"] = max(summary["peak_rss_MiB"], peak)
        summary["memory_tree"] = tree  # the same sampling as ours (bench_train)
        results.append(summary)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pkl", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--models", default="mult")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1111)
    ap.add_argument("--batch-size", type=int, help="override MMSA's preset (small test runs)")
    ap.add_argument("--json", type=Path, help="write the summaries here")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a)
        return
    models = [m.strip().lower() for m in a.models.split(",") if m.strip()]
    summaries = run_models(a.pkl, a.out, models, a.epochs, a.seed, a.batch_size)
    if a.json:
        write_json(a.json, summaries)
    print(json.dumps(summaries, indent=1))


if __name__ == "__main__":
    main()
