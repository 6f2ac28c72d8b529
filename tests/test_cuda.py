"""Tests that need a CUDA GPU (marker ``cuda``): skipped without one, run by ``make bench-gpu``
(``benchmarks/bench_gpu.py``) whenever a GPU is lent. They check what CPU tests cannot: the
models on the card give the CPU's outputs, and a training step under the trainer's bf16
autocast runs there, with its memory counted by ``torch.cuda.max_memory_allocated``."""

from __future__ import annotations

import pytest
import torch
from model_helpers import pad_batch, random_sequences

from mea_cli.models import config_for, create_model
from mea_cli.runtime.engine import resolve_device

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU visible to torch"),
]
DIMS = {"text": 16, "audio": 5, "vision": 20}


def _batch() -> object:
    lengths = {"text": [7, 3, 12], "audio": [40, 9, 25], "vision": [30, 50, 4]}
    return pad_batch(random_sequences(DIMS, lengths, seed=3), torch.randn(3, 1))


@pytest.mark.parametrize("name", ["mea", "mult"])
def test_fp32_outputs_on_the_gpu_match_the_cpu(name: str) -> None:
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    model = create_model(name, config_for(name, "mosi", input_dims=DIMS)).eval()
    batch = _batch()
    with torch.no_grad():
        ref = model(batch).pred
        got = model.to("cuda")(batch.to(torch.device("cuda"))).pred.cpu()
    assert torch.allclose(got, ref, atol=1e-4, rtol=1e-3), (got - ref).abs().max()


@pytest.mark.parametrize("name", ["mea", "mult"])
def test_a_bf16_training_step_on_the_gpu(name: str) -> None:
    device = resolve_device("cuda")
    assert device.type == "cuda"
    torch.manual_seed(0)
    model = create_model(name, config_for(name, "mosi", input_dims=DIMS)).to(device).train()
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch = _batch().to(device)
    torch.cuda.reset_peak_memory_stats(device)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = (model(batch).pred.float() - batch.labels).pow(2).mean()
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(b, p.detach()) for b, p in zip(before, model.parameters(), strict=True))
    assert torch.cuda.max_memory_allocated(device) > 0
