"""A checkpoint written before the run layer moved (mea-cli at commit c9fd07b, with
``mea_cli.train.modeling``) still loads through :mod:`mea_cli.runtime.loading` and predicts
exactly what it predicted then. ``tests/data/ckpt_c9fd07b.pt`` is a tiny regression MEA (random
initial weights, target scale mean 0.5 / std 1.5); ``ckpt_c9fd07b.json`` holds its predictions
on the batch below, computed by that commit's code."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from model_helpers import pad_batch, random_sequences

from mea_cli.artifacts.checkpoint import load_checkpoint
from mea_cli.runtime.loading import model_from_checkpoint
from mea_cli.runtime.targets import ScaledModel

DATA = Path(__file__).parent / "data"


def test_a_checkpoint_from_before_loads_and_predicts_the_same() -> None:
    path = DATA / "ckpt_c9fd07b.pt"
    model = model_from_checkpoint(load_checkpoint(path), path).eval()
    assert isinstance(model, ScaledModel)  # the recorded target scale is applied
    dims = {"text": 4, "vision": 3, "audio": 5}
    lengths = {"text": [3, 1, 2], "vision": [2, 4, 1], "audio": [5, 0, 3]}
    batch = pad_batch(random_sequences(dims, lengths, 0), None)
    with torch.no_grad():
        pred = model(batch).pred
    want = torch.tensor(json.loads((DATA / "ckpt_c9fd07b.json").read_text())["pred"])
    assert pred.shape == want.shape == (3, 1)
    torch.testing.assert_close(pred, want, rtol=1e-5, atol=1e-6)
