"""A training step under bf16 autocast -- the trainer's precision on CUDA -- runs backward
through every model's hand-written autograd Functions (:mod:`mea_cli.models.core.amp`). CPU
autocast stands in for CUDA's here: before the fix, MEA's lean feed-forward recomputed
``fc1(x)`` in backward from a bf16 ``x`` and an fp32 weight and failed ("mat1 and mat2 must
have the same dtype"), so ``mea train --device cuda`` could not have taken one step."""

from __future__ import annotations

import pytest
import torch
from model_helpers import pad_batch, random_sequences

from mea_cli.models import config_for, create_model, list_models

DIMS = {"text": 16, "audio": 5, "vision": 20}


@pytest.mark.parametrize("name", sorted(list_models()))
def test_bf16_autocast_training_step_backward(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, config_for(name, "mosi", input_dims=DIMS)).train()
    lengths = {"text": [7, 3, 12], "audio": [40, 9, 25], "vision": [30, 50, 4]}
    batch = pad_batch(random_sequences(DIMS, lengths, seed=3), torch.randn(3, 1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        pred = model(batch).pred
    loss = (pred.float() - batch.labels).pow(2).mean()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert torch.isfinite(loss)
    assert sum(g is not None for g in grads) > 0.9 * len(grads)
    for g in grads:
        if g is not None:
            assert g.dtype == torch.float32 and torch.isfinite(g).all()
