"""Seconds per training step (forward + backward) of MEA, explicit vs fused attention.

Builds the Table I MOSI model (d=40, 8 heads, M=3 PSA, N=2 HCA) and one random batch of MOSI
size (batch 32; text 30, vision 360, audio 300 steps, some samples shorter so that padding is
exercised), then times forward + backward of that batch in train mode twice per repetition in
the same process, alternating:

* ``explicit``: the original code (attention maps formed, masked and dropped out explicitly),
  selected with :func:`mea_cli.models.attention.explicit_attention`;
* ``fused``: the default path (``scaled_dot_product_attention`` in the MRUs, fewer passes over
  the PSA maps).

It prints the median seconds of each, their ratio, the eval-mode max difference of the
predictions, and the load average (another job on the machine skews CPU timings).

    python benchmarks/bench_model_step.py [--batch 32] [--repeats 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from mea_cli.batch import Batch
from mea_cli.data.presets import BENCHMARK_DIMS as PAPER_INPUT_DIMS
from mea_cli.models import config_for, create_model
from mea_cli.models.attention import explicit_attention

LENGTHS = {"text": 30, "vision": 360, "audio": 300}


def make_batch(n: int, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    inputs, masks = {}, {}
    for m, t in LENGTHS.items():
        lengths = torch.randint(t // 2, t + 1, (n,), generator=g)
        lengths[0] = t
        inputs[m] = torch.randn(n, t, PAPER_INPUT_DIMS[m], generator=g)
        masks[m] = torch.arange(t)[None, :] < lengths[:, None]
        inputs[m] = inputs[m] * masks[m][..., None]  # zero at padded steps, as the loader does
    labels = torch.randn(n, 1, generator=g)
    return Batch(inputs, masks, labels, [str(i) for i in range(n)])


def step(model: torch.nn.Module, batch: Batch) -> float:
    model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    out = model(batch)
    out.loss.backward()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = create_model("mea", config_for("mea", "mosi", input_dims=dict(PAPER_INPUT_DIMS)))
    batch = make_batch(args.batch)
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}, {LENGTHS}")
    print(f"load average before: {os.getloadavg()}")

    model.eval()
    with torch.no_grad():
        fused_pred = model(batch).pred
        with explicit_attention():
            ref_pred = model(batch).pred
    print(f"eval max |fused - explicit| of pred: {(fused_pred - ref_pred).abs().max().item():.2e}")

    model.train()
    step(model, make_batch(2, seed=1))  # warm-up on a tiny batch
    times: dict[str, list[float]] = {"explicit": [], "fused": []}
    for r in range(args.repeats):
        with explicit_attention():
            times["explicit"].append(step(model, batch))
        times["fused"].append(step(model, batch))
        print(
            f"repeat {r}: explicit {times['explicit'][-1]:.2f} s, fused {times['fused'][-1]:.2f} s"
        )
    old, new = (statistics.median(times[k]) for k in ("explicit", "fused"))
    print(
        f"median forward+backward: explicit {old:.2f} s, fused {new:.2f} s, ratio {old / new:.2f}x"
    )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
