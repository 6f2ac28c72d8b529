"""benchmarks/bench_saved_tensors.py's census: each saved storage counted once, parameters left
out, charged to the innermost module running when it was first saved (hand-counted bytes)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.append(str(BENCH))

import bench_saved_tensors  # noqa: E402


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(256, 128, bias=False)  # saves its input [1024, 256]: 1 MiB

    def forward(self, x: torch.Tensor) -> SimpleNamespace:
        h = self.lin(x)
        y = h * h  # saves h twice: one storage [1024, 128], 0.5 MiB, charged to the model
        return SimpleNamespace(loss=y.sum())


def test_census_counts_each_storage_once_without_parameters() -> None:
    model = _Tiny()
    x = torch.randn(1024, 256)
    out = bench_saved_tensors.census(model, x, depth=2)
    assert out["per_module_MiB"] == {"(model)": 0.5, "lin": 1.0}
    assert out["total_MiB"] == 1.5
    assert out["storages"] == 2
    assert model.lin.weight.grad is not None  # the backward pass ran
