"""Checkpoints written before the models moved into one folder per family (issue 25) still load
and predict what they predicted then.

``tests/data/checkpoints_v0/<model>.pt`` hold every built-in model in its tiny configuration on
narrow inputs (:data:`DIMS`), seeded weights, saved with ``save_checkpoint`` by the code of commit
c9fd07b; ``expected.json`` holds each one's predictions on :func:`probe_batch`, computed by that
commit's code. Both were written with ``PYTHONPATH=<c9fd07b tree> python
tests/test_checkpoints_v0.py --write`` and are not rewritten by the tests.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from mea_cli.artifacts.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from mea_cli.batch import Batch
from mea_cli.models import create_model, get_entry, list_models

HERE = Path(__file__).parent / "data" / "checkpoints_v0"
EXPECTED = HERE / "expected.json"
DIMS = {"text": 7, "vision": 5, "audio": 6}
"""Input widths of the stored models (small: the files stay a few tens of KB)."""
LENGTHS = {"text": (6, 2, 4), "vision": (5, 5, 1), "audio": (3, 7, 2)}
"""Per-sample sequence lengths of the probe batch (padding in every modality)."""


def probe_batch(input_dims: dict[str, int]) -> Batch:
    """Three seeded samples of the checkpoint's widths, padded per modality with zeros."""
    gen = torch.Generator().manual_seed(0)
    inputs, masks = {}, {}
    for m, lengths in LENGTHS.items():
        steps = torch.arange(max(lengths))
        masks[m] = steps[None, :] < torch.tensor(lengths)[:, None]
        x = torch.randn(len(lengths), max(lengths), input_dims[m], generator=gen)
        inputs[m] = x * masks[m][..., None]
    return Batch(inputs=inputs, masks=masks, ids=["a", "b", "c"])


def predict(path: Path) -> list[Any]:
    """The raw model predictions of checkpoint ``path`` on :func:`probe_batch`."""
    ckpt = load_checkpoint(path)
    model = create_model(ckpt.model, ckpt.model_config)
    model.load_state_dict(ckpt.state_dict)
    model.eval()
    with torch.no_grad():
        out = model(probe_batch(dict(ckpt.model_config["input_dims"])))
    return out.pred.tolist()


def write_checkpoint(name: str) -> None:
    """Model ``name``'s tiny config on :data:`DIMS` with weights seeded by 0, as a checkpoint."""
    torch.manual_seed(0)
    cfg = get_entry(name).tiny_config("mosi", input_dims=DIMS)
    model = create_model(name, cfg)
    ckpt = Checkpoint(
        model=name,
        model_config=cfg.to_dict(),
        dataset="mosi",
        task=cfg.task,
        label_names=["sentiment"],
        schema={},
        norm={},
        state_dict={k: v.detach().clone() for k, v in model.state_dict().items()},
    )
    save_checkpoint(ckpt, HERE / f"{name}.pt")


def checkpoints() -> list[Path]:
    return sorted(HERE.glob("*.pt"))


def test_every_builtin_model_has_a_v0_checkpoint() -> None:
    assert sorted(p.stem for p in checkpoints()) == list_models()
    assert sorted(json.loads(EXPECTED.read_text())) == list_models()


@pytest.mark.parametrize("path", checkpoints(), ids=lambda p: p.stem)
def test_v0_checkpoint_loads_and_predicts_as_before(path: Path) -> None:
    expected = torch.tensor(json.loads(EXPECTED.read_text())[path.stem])
    got = torch.tensor(predict(path))
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    HERE.mkdir(parents=True, exist_ok=True)
    for model_name in list_models():
        write_checkpoint(model_name)
    EXPECTED.write_text(json.dumps({p.stem: predict(p) for p in checkpoints()}, indent=1) + "\n")
