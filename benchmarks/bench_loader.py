"""Loader benchmark: padded-step share and throughput, bucketed batches vs fixed-length padding.

Writes a synthetic MOSI-shaped store (``mea synth --like mosi``: GloVe-sized text 300-d, vision
35-d at 30 Hz, audio 74-d at 25 Hz; synthetic data, not MOSI), then iterates one epoch of the
train split three ways, batch size 32 (MOSI's Table I value):

* ``bucketed``: :class:`~mea_cli.data.sampler.BucketBatchSampler` + per-batch padding (ours);
* ``random``: random batches, each padded to its own longest sequence;
* ``pad-to-max``: random batches padded to the data set's maximum length per modality (the
  fixed-length layout of the MulT/MMSA pickles).

It reports the share of padded (masked) steps over all modalities, the padded elements per
sample the model would process, and loader throughput in samples/s (best of ``--repeats``
epochs, on this machine's CPU, ``num_workers=0``; not a GPU figure).

    .venv/bin/python benchmarks/bench_loader.py --n 1000 --max-seconds 12
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from functools import partial
from pathlib import Path

from torch.utils.data import DataLoader, RandomSampler
from torch.utils.data.sampler import BatchSampler

from mea_cli.artifacts.features import FeatureStore
from mea_cli.data.dataset import FeatureDataset, NormStats, collate, make_loader
from mea_cli.data.synth import write_synthetic


def measure(loader: DataLoader, repeats: int) -> dict[str, float]:
    """Iterate ``loader`` ``repeats`` times; padded share, elements per sample, best samples/s."""
    best = 0.0
    real = padded = elements = samples = 0
    for r in range(repeats):
        sampler = getattr(loader, "batch_sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(r)
        t0 = time.perf_counter()
        n = 0
        for batch in loader:
            n += len(batch)
            if r == 0:
                for m, mask in batch.masks.items():
                    real += int(mask.sum())
                    padded += int((~mask).sum())
                    elements += batch.inputs[m].numel()
        dt = time.perf_counter() - t0
        best = max(best, n / dt)
        samples = n
    return {
        "padded_share": padded / (real + padded),
        "elements_per_sample": elements / samples,
        "samples_per_s": best,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="synthetic samples")
    ap.add_argument("--max-seconds", type=float, default=12.0, help="longest clip")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "synth-mosi.h5"
        write_synthetic(path, "mosi", args.n, args.seed, args.max_seconds)
        with FeatureStore(path) as store:
            ds = FeatureDataset(store, "train", NormStats.fit(store))
            max_len = {m: int(ds.lengths(m).max()) for m in ds.modalities}
            bs = args.batch_size
            loaders = {
                "bucketed": make_loader(ds, bs, shuffle=True, seed=args.seed),
                "random": DataLoader(
                    ds,
                    batch_sampler=BatchSampler(RandomSampler(ds), bs, drop_last=False),
                    collate_fn=collate,
                ),
                "pad-to-max": DataLoader(
                    ds,
                    batch_sampler=BatchSampler(RandomSampler(ds), bs, drop_last=False),
                    collate_fn=partial(collate, pad_to=max_len),
                ),
            }
            results = {name: measure(loader, args.repeats) for name, loader in loaders.items()}
    info = {
        "data": f"synthetic MOSI-shaped store (mea synth --like mosi), {args.n} samples, "
        f"train split {len(ds)}, max lengths {max_len}",
        "batch_size": bs,
        "device": "CPU, num_workers=0",
        "results": results,
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return
    print(info["data"])
    print(f"batch size {bs}; throughput is the best of {args.repeats} epochs on {info['device']}")
    print(f"{'loader':<12} {'padded steps':>13} {'elements/sample':>16} {'samples/s':>10}")
    for name, r in results.items():
        print(
            f"{name:<12} {100 * r['padded_share']:>12.1f}% {r['elements_per_sample']:>16,.0f} "
            f"{r['samples_per_s']:>10,.0f}"
        )
    ratio = (
        results["pad-to-max"]["elements_per_sample"] / results["bucketed"]["elements_per_sample"]
    )
    print(f"pad-to-max feeds the model {ratio:.1f}x the elements per sample of bucketed batches")


if __name__ == "__main__":
    main()
