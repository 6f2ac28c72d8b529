"""CPU seconds per sample and peak RSS of one MEA training epoch on a store, in this process.

The trainer's own pieces (its data stage, ``config_for``, ``create_model``, Adam), none of the
run-directory work: a warm-up step on the first batch, then one timed pass over every training
batch of epoch 1 (forward, backward, Adam). CPU seconds are ``resource.getrusage`` user + sys of
the whole process (every thread), which load changes far less than wall time; peak RSS is the
process's ``ru_maxrss``. For comparing levers one at a time on a busy machine, one fresh process
per setting (``--set k=v`` as ``mea train --set``)::

    python benchmarks/bench_train_epoch.py STORE [--batch 32] [--threads 1] [--set k=v ...]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parent))  # sibling bench_* modules, after site-packages

import bench_machine


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def add_epoch_args(ap: argparse.ArgumentParser) -> None:
    """The store, model and batching options shared with ``bench_saved_tensors.py``."""
    ap.add_argument("store", type=Path)
    ap.add_argument("--model", default="mea")
    ap.add_argument("--dataset", default="mosi")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--set", dest="sets", action="append", default=[])
    ap.add_argument("--seed", type=int, default=1111)


def epoch_batches(a: argparse.Namespace) -> tuple[Any, list[Any]]:
    """The model (training mode, seeded) and epoch 1's training batches, built with the
    trainer's own pieces (``config_for``, ``create_model``, ``NormStats``, ``make_loader``)."""
    import torch

    from mea_cli.artifacts.features import FeatureStore
    from mea_cli.data.dataset import FeatureDataset, NormStats, make_loader
    from mea_cli.models import config_for, create_model

    store = FeatureStore(a.store)
    dims = {m: s.dim for m, s in store.modalities.items()}
    cfg = config_for(a.model, a.dataset, input_dims=dims, **dict(s.split("=", 1) for s in a.sets))
    torch.manual_seed(a.seed)
    model = create_model(a.model, cfg).train()
    stats = NormStats.fit(store, "train")
    loader = make_loader(FeatureDataset(store, "train", stats), a.batch, True, seed=a.seed)
    loader.batch_sampler.set_epoch(1)
    return model, list(loader)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_epoch_args(ap)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--plain-flash", action="store_true",
                    help="thin heads unpadded (the lever before mea_cli.models.layers.flash)")
    a = ap.parse_args()

    from mea_cli.runtime import passive_openmp, prefer_huge_pages

    prefer_huge_pages()  # as the `mea` entry point does, before torch is imported
    passive_openmp()
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    if a.plain_flash:  # both users of the padded kernel: fused_attention and the MRU node
        import mea_cli.models.layers.attention as attention
        import mea_cli.models.mea.hca as hca

        attention.thin_heads = hca.thin_heads = lambda *args: False
    model, batches = epoch_batches(a)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    labels_mean = torch.cat([b.labels for b in batches]).mean()

    def step(batch: object) -> float:
        opt.zero_grad(set_to_none=True)
        out = model(batch)
        out.loss.backward()
        opt.step()
        return float(out.loss.detach())

    step(batches[0])  # warm-up: one-off allocations and kernel choices
    cpu, start = _cpu_s(), time.perf_counter()
    losses = [step(b) for b in batches]
    cpu, wall = _cpu_s() - cpu, time.perf_counter() - start
    samples = sum(len(b) for b in batches)
    print(json.dumps({
        "sets": a.sets, "threads": torch.get_num_threads(), "samples": samples,
        "cpu_s": round(cpu, 2), "cpu_s_per_sample": round(cpu / samples, 4),
        "wall_s": round(wall, 2), "peak_rss_MiB": bench_machine.peak_rss_mib(),
        "losses": [round(x, 6) for x in losses], "label_mean": round(float(labels_mean), 4),
        "load_average": bench_machine.load_average(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
