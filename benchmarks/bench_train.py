"""Seconds per training epoch of MEA with the MOSI preset on synthetic MOSI-sized data.

Writes (or reuses) a synthetic MOSI-shaped store of 2199 samples (1284 / 229 / 686 is the real
split; the synthetic one follows the same fractions) and times full training epochs (forward,
backward, Adam step over the train split) of MEA with the Table I MOSI config (d=40, d_h=64,
8 heads, M=3 PSA, N=2 HCA, batch 32), in two ways in the same process:

* ``bucketed``: the trainer's loader (length-bucketed batches, padding per batch);
* ``unbucketed``: the same batches drawn in plain random order (``pool_batches=1``: no length
  sorting), still padded per batch - the baseline that bucketing is meant to beat.

It prints seconds per epoch for each and their ratio, and the device it ran on. This is a CPU
timing where no GPU is present; it is not a GPU figure. ``--limit-batches`` times only the first
batches of each epoch and scales up (for a quick estimate on a slow machine).

    python benchmarks/bench_train.py --out /tmp/bench --epochs 1 [--device cpu] [--n 2199]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from mea_cli.artifacts.features import FeatureStore
from mea_cli.data.dataset import FeatureDataset, NormStats, collate
from mea_cli.data.sampler import BucketBatchSampler
from mea_cli.data.synth import write_synthetic
from mea_cli.models import config_for
from mea_cli.train.engine import autocast, resolve_device
from mea_cli.train.modeling import build_model
from mea_cli.train.presets import training_preset


def time_epochs(
    ds: FeatureDataset,
    cfg: dict,
    device: torch.device,
    pool_batches: int,
    epochs: int,
    limit: int | None,
    batch_size: int,
) -> tuple[float, float]:
    """(seconds per epoch, mean padded steps per batch) for one batching scheme."""
    torch.manual_seed(0)
    model = build_model("mea", cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sampler = BucketBatchSampler(
        ds.lengths(), batch_size, shuffle=True, seed=0, pool_batches=pool_batches
    )
    loader = DataLoader(ds, batch_sampler=sampler, collate_fn=collate)
    n_batches = len(sampler)
    per_epoch = []
    pad = []
    warm = next(iter(loader)).to(device)  # first call pays one-off kernel setup: not timed
    with autocast(device):
        model(warm).loss.backward()
    opt.zero_grad(set_to_none=True)
    for e in range(epochs):
        sampler.set_epoch(e)
        model.train()
        t0 = time.perf_counter()
        done = 0
        for batch in loader:
            batch = batch.to(device)
            pad.append(sum(x.shape[1] for x in batch.inputs.values()))
            with autocast(device):
                out = model(batch)
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.8)
            opt.step()
            done += 1
            if limit is not None and done >= limit:
                break
        if device.type == "cuda":
            torch.cuda.synchronize()
        per_epoch.append((time.perf_counter() - t0) * n_batches / done)
    return sum(per_epoch) / len(per_epoch), sum(pad) / len(pad)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("bench-out"))
    ap.add_argument("--n", type=int, default=2199)
    ap.add_argument("--max-seconds", type=float, default=12.0)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--limit-batches", type=int, default=None)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    store_path = args.out / f"synth-mosi-{args.n}.h5"
    if not store_path.exists():
        write_synthetic(store_path, "mosi", n=args.n, seed=0, max_seconds=args.max_seconds)
    device = resolve_device(args.device)
    with FeatureStore(store_path) as store:
        stats = NormStats.fit(store, "train")
        ds = FeatureDataset(store, "train", stats)
        dims = {m: s.dim for m, s in store.modalities.items()}
        cfg = config_for("mea", "mosi", dims, "regression", 1).to_dict()
        batch_size = training_preset("mea", "mosi").settings.batch_size
        result = {
            "device": str(device)
            + (
                f" ({torch.cuda.get_device_name(device)})"
                if device.type == "cuda"
                else f" ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
            ),
            "precision": "bf16 autocast" if device.type == "cuda" else "fp32",
            "train_samples": len(ds),
            "batch_size": batch_size,
        }
        for name, pool in (("bucketed", 50), ("unbucketed", 1)):
            sec, pad = time_epochs(
                ds, cfg, device, pool, args.epochs, args.limit_batches, batch_size
            )
            result[f"{name}_s_per_epoch"] = round(sec, 2)
            result[f"{name}_mean_padded_steps"] = round(pad, 1)
            print(f"{name}: {sec:.2f} s/epoch (mean padded steps per batch {pad:.1f})", flush=True)
        result["unbucketed_over_bucketed"] = round(
            result["unbucketed_s_per_epoch"] / result["bucketed_s_per_epoch"], 2
        )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
