"""The single operations behind the efficient paths, each timed beside the plain operation it
replaces, in one process (ratios: plain seconds / ours; above 1 means ours is faster).

Shapes are one MOSI-preset sample at full length (8 heads of 5 channels, vision T = 500; the
mixed MRU of the vision target attends over 50 + 500 + 375 = 925 keys):

* ``A V`` and its backward for a ``[K, T, T]`` map and ``[K, T, 5]`` values: ``A @ V`` vs
  ``(V^T A^T)^T`` (:func:`mea_cli.models.layers.mapops.map_matmul`);
* the prediction chain's 3x3, 8-channel convolution over ``[K, T, T]``, forward and backward:
  torch's ``convolution_backward`` vs the input gradient as a forward convolution
  (:func:`mea_cli.models.layers.mapops.same_conv2d`);
* an MRU's attention forward and backward: explicit masked softmax with attention dropout 0.1
  (what the code did before), SDPA's math path, SDPA's fused (flash) CPU kernel;
* the extractor's Bi-LSTM, forward and backward, batch 8 of lengths 50-500: packed vs two
  unpacked one-direction passes (:mod:`mea_cli.models.layers.extractor`).

    python benchmarks/bench_kernels.py [--threads N] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.append(str(Path(__file__).resolve().parent))  # sibling bench_* modules, after site-packages

import bench_machine

from mea_cli.models.layers.attention import explicit_attention
from mea_cli.models.layers.extractor import UnimodalExtractor
from mea_cli.models.layers.mapops import map_matmul, same_conv2d

HEADS, CH, T, T_KEYS = 8, 5, 500, 925


def best_of(fn: Callable[[], Any], repeats: int) -> float:
    """Fastest of ``repeats`` calls after one warm-up call, in seconds."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _leaf(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, requires_grad=True)


def map_times_values(repeats: int) -> dict[str, float]:
    a, v = _leaf(HEADS, T, T), _leaf(HEADS, T, CH)
    plain = best_of(lambda: (a @ v).sum().backward(), repeats)
    ours = best_of(lambda: map_matmul(a, v).sum().backward(), repeats)
    return {"plain_s": plain, "ours_s": ours}


def chain_convolution(repeats: int) -> dict[str, float]:
    conv = torch.nn.Conv2d(HEADS, HEADS, 3, padding=1)
    x = _leaf(1, HEADS, T, T)
    plain = best_of(lambda: conv(x).sum().backward(), repeats)
    ours = best_of(lambda: same_conv2d(x, conv).sum().backward(), repeats)
    return {"plain_s": plain, "ours_s": ours}


def mru_attention(repeats: int) -> dict[str, float]:
    q, k, v = _leaf(1, HEADS, T, CH), _leaf(1, HEADS, T_KEYS, CH), _leaf(1, HEADS, T_KEYS, CH)
    keys = torch.ones(1, 1, 1, T_KEYS, dtype=torch.bool)

    def explicit() -> None:
        logits = (q @ k.transpose(-1, -2)) / CH**0.5
        attn = torch.softmax(logits.masked_fill(~keys, torch.finfo(q.dtype).min), -1) * keys
        (F.dropout(attn, 0.1) @ v).sum().backward()

    def sdpa(backend: SDPBackend) -> Callable[[], None]:
        def run() -> None:
            with sdpa_kernel(backend):
                F.scaled_dot_product_attention(q, k, v, attn_mask=keys).sum().backward()

        return run

    return {
        "plain_s": best_of(explicit, repeats),
        "math_s": best_of(sdpa(SDPBackend.MATH), repeats),
        "ours_s": best_of(sdpa(SDPBackend.FLASH_ATTENTION), repeats),
    }


def bilstm(repeats: int) -> dict[str, float]:
    torch.manual_seed(0)
    ext = UnimodalExtractor(20, 40, 3, 0.0)
    x = torch.randn(8, T, 20)
    lengths = torch.randint(T // 10, T + 1, (8,))
    lengths[0] = T
    mask = torch.arange(T)[None, :] < lengths[:, None]

    def run() -> None:
        ext(x, mask).sum().backward()

    with explicit_attention():
        plain = best_of(run, repeats)
    return {"plain_s": plain, "ours_s": best_of(run, repeats)}


CASES: dict[str, tuple[str, Callable[[int], dict[str, float]]]] = {
    "map_matmul": ("A V, [8,500,500] x [8,500,5], fwd+bwd", map_times_values),
    "chain_conv": ("3x3 conv 8->8 over [1,8,500,500], fwd+bwd", chain_convolution),
    "mru_attention": ("MRU attention 500 x 925 keys, 8 heads, fwd+bwd", mru_attention),
    "bilstm": ("Bi-LSTM d=40, batch 8, T<=500, fwd+bwd", bilstm),
}


def run_all(repeats: int = 5) -> dict[str, dict[str, Any]]:
    """Every case: seconds of the plain and our operation and their ratio, load average."""
    out = {}
    for key, (what, fn) in CASES.items():
        rec: dict[str, Any] = {"what": what, **{k: round(v, 5) for k, v in fn(repeats).items()}}
        rec["ratio"] = round(rec["plain_s"] / rec["ours_s"], 2)
        rec["load_average"] = bench_machine.load_average()
        out[key] = rec
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    for key, rec in run_all(a.repeats).items():
        print(f"{key:<14} {rec['what']:<48} plain {rec['plain_s'] * 1e3:8.1f} ms  "
              f"ours {rec['ours_s'] * 1e3:8.1f} ms  x{rec['ratio']}")  # fmt: skip
    print(json.dumps({"machine": bench_machine.describe(torch)}))


if __name__ == "__main__":
    main()
