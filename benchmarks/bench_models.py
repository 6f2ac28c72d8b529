"""Parameters and seconds per training epoch of several models at one dataset preset, side by side.

Writes (or reuses) a synthetic store shaped like the dataset (``mea synth``'s data: not the
benchmark), then for each model builds its dataset preset (``config_for``, the store's input
widths) and its training preset (``training_preset``: batch size, learning rate, gradient clip)
and times training epochs over the train split exactly as the trainer runs them (the trainer's
length-bucketed loader, forward, backward, clipping, Adam step). Each model runs in its own
child process, one after the other, so that each peak RSS is its own; one invocation gives the
whole table.

It prints, per model: trainable parameters, batch size, train samples and batches, wall and
CPU seconds per epoch (``time.process_time``, all threads of the child), and the child's peak
RSS; then the CPU-time ratio of each model to the first. ``--batch-size`` replaces every
model's preset batch size (say so when you quote the figures); ``--limit-batches`` times only
the first batches of each epoch and scales up. On a machine without a GPU this is a CPU timing,
not a GPU one.

    python benchmarks/bench_models.py --out /tmp/bench --models mea,mult --dataset mosi --n 300
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from mea_cli.artifacts.features import FeatureStore
from mea_cli.data.dataset import FeatureDataset, NormStats, make_loader
from mea_cli.data.synth import write_synthetic
from mea_cli.models import config_for, create_model
from mea_cli.runtime.engine import autocast, resolve_device
from mea_cli.train.presets import training_preset


def time_model(args: argparse.Namespace, model_name: str) -> dict[str, Any]:
    """One model's figures (runs in the child process)."""
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    with FeatureStore(args.store) as store:
        stats = NormStats.fit(store, "train")
        ds = FeatureDataset(store, "train", stats)
        dims = {m: s.dim for m, s in store.modalities.items()}
        cfg = config_for(model_name, args.dataset, dims)  # task and labels: the dataset's
        settings = training_preset(model_name, args.dataset).settings
        batch_size = args.batch_size or settings.batch_size
        torch.manual_seed(0)
        model = create_model(model_name, cfg).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=settings.lr)
        loader = make_loader(ds, batch_size, True, seed=0)
        n_batches = len(loader.batch_sampler)
        warm = next(iter(loader)).to(device)  # one-off setup cost: not timed
        with autocast(device):
            model(warm).loss.backward()
        opt.zero_grad(set_to_none=True)
        wall, cpu = [], []
        for epoch in range(args.epochs):
            loader.batch_sampler.set_epoch(epoch)
            model.train()
            w0, c0, done = time.perf_counter(), time.process_time(), 0
            for batch in loader:
                batch = batch.to(device)
                with autocast(device):
                    out = model(batch)
                opt.zero_grad(set_to_none=True)
                out.loss.backward()
                if settings.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
                opt.step()
                done += 1
                if args.limit_batches and done >= args.limit_batches:
                    break
            if device.type == "cuda":
                torch.cuda.synchronize()
            wall.append((time.perf_counter() - w0) * n_batches / done)
            cpu.append((time.process_time() - c0) * n_batches / done)
        return {
            "model": model_name,
            "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "batch_size": batch_size,
            "batch_size_source": "--batch-size" if args.batch_size else "training preset",
            "train_samples": len(ds),
            "batches_per_epoch": n_batches,
            "batches_timed": done,
            "wall_s_per_epoch": round(sum(wall) / len(wall), 2),
            "cpu_s_per_epoch": round(sum(cpu) / len(cpu), 2),
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("bench-out"))
    ap.add_argument("--models", default="mea,mult")
    ap.add_argument("--dataset", default="mosi")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--max-seconds", type=float, default=12.0)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=0)
    ap.add_argument("--limit-batches", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--child", default="", help=argparse.SUPPRESS)
    ap.add_argument("--store", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(time_model(args, args.child)))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    store = args.out / f"synth-{args.dataset}-{args.n}.h5"
    if not store.exists():
        write_synthetic(store, args.dataset, n=args.n, seed=0, max_seconds=args.max_seconds)
    rows = []
    for name in args.models.split(","):
        cmd = [sys.executable, __file__, *sys.argv[1:], "--child", name, "--store", str(store)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode:
            sys.exit(f"{name}: {done.stderr.strip().splitlines()[-1]}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    base = rows[0]["cpu_s_per_epoch"]
    result = {
        "device": f"{args.device} ({platform.processor() or platform.machine()}, "
        f"{args.threads} torch thread(s))",
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "store": f"{store.name} (synthetic, shaped like {args.dataset}; not the benchmark)",
        "models": rows,
        f"cpu_ratio_to_{rows[0]['model']}": {
            r["model"]: round(r["cpu_s_per_epoch"] / base, 2) for r in rows
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
