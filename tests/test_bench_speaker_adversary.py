"""benchmarks/bench_speaker_adversary.py: the adversary reverses its gradient into the model,
leaves evaluation alone, and a training run with it logs and optimises its term."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from model_helpers import GROUPED_DIMS, grouped_class_store, pad_batch, random_sequences

from mea_cli.models.core.registry import create_model, get_entry
from mea_cli.train import trainer
from mea_cli.train.setup import TrainRequest
from mea_cli.train.trainer import train_run

sys.path.append(str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_speaker_adversary as bench  # noqa: E402

DIMS = GROUPED_DIMS
LENGTHS = {"text": [3, 5, 2, 4], "vision": [4, 2, 5, 3], "audio": [6, 3, 4, 5]}


def _model_and_batch() -> tuple[torch.nn.Module, object]:
    cfg = get_entry("mea").tiny_config("iemocap", input_dims=DIMS).override(
        {"task": "multiclass", "num_labels": 3, "dropout": 0.0, "attn_dropout": 0.0}
    )
    torch.manual_seed(0)
    model = create_model("mea", cfg)
    labels = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 1]), 3).float()
    batch = pad_batch(random_sequences(DIMS, LENGTHS, 0), labels)
    batch.ids = ["a", "b", "c", "d"]
    return model, batch


def _grads(net: torch.nn.Module, model: torch.nn.Module, batch: object) -> list[torch.Tensor]:
    model.zero_grad(set_to_none=True)
    net.train()
    net(batch).loss.backward()
    return [p.grad.clone() for p in model.parameters() if p.grad is not None]


def test_the_adversary_reverses_its_gradient_into_the_model() -> None:
    """The model's gradient with the adversary at lambda is its own gradient minus lambda times
    the adversary's plain gradient (measured with lambda = -1, which passes it unreversed)."""
    model, batch = _model_and_batch()
    groups = {"a": 0, "b": 1, "c": 0, "d": 1}

    def wrapped(lam: float) -> bench.SpeakerAdversary:
        torch.manual_seed(1)  # the same adversary every time
        return bench.SpeakerAdversary(model, model.head, groups, 2, 0.0, lam)

    own = _grads(model, model, batch)
    plain = _grads(wrapped(-1.0), model, batch)
    reversed_ = _grads(wrapped(0.5), model, batch)
    moved = [(p - o).abs().max() for p, o in zip(plain, own, strict=True)]
    assert max(moved) > 1e-6  # the adversary does reach the model
    for r, p, o in zip(reversed_, plain, own, strict=True):
        torch.testing.assert_close(r, o - 0.5 * (p - o), rtol=1e-4, atol=1e-6)


def test_evaluation_is_the_models_own_and_training_adds_the_term() -> None:
    model, batch = _model_and_batch()
    net = bench.SpeakerAdversary(model, model.head, {"a": 0, "b": 1, "c": 0, "d": 1}, 2, 0.0, 1.0)
    net.eval(), model.eval()
    with torch.no_grad():
        got, own = net(batch), model(batch)
    assert torch.equal(got.pred, own.pred) and "speaker_adv" not in got.losses
    net.train()
    with torch.no_grad():
        own_loss = float(model(batch).loss)  # (the head's hook fires for the model alone too)
        out = net(batch)
    assert float(out.loss) == pytest.approx(own_loss + float(out.losses["speaker_adv"]))
    assert not net.seen  # the head's input is not held past the wrapper's forward


def test_a_training_run_with_the_adversary_logs_and_optimises_it(tmp_path: Path) -> None:
    build = trainer.Trainer.__init__
    seen: list[trainer.Trainer] = []
    original_attach = bench.attach

    def attach(t: trainer.Trainer, lam: float) -> None:
        original_attach(t, lam)
        seen.append(t)

    bench.attach = attach
    try:
        with bench.adversary_in_trainer(0.5):
            result = train_run(
                TrainRequest(
                    features=grouped_class_store(tmp_path / "s.h5"), dataset=None, task="multiclass",
                    runs_dir=tmp_path, name="adv", live=False,
                    model_overrides={"d": 8, "heads": 2, "d_h": 8, "psa_layers": 1, "hca_layers": 1},
                    train_overrides={"epochs": 2, "batch_size": 8},
                )
            )  # fmt: skip
    finally:
        bench.attach = original_attach
    assert trainer.Trainer.__init__ is build  # restored
    (t,) = seen
    assert t.net.adv.parameters().__next__() is t.opt.param_groups[-1]["params"][0]
    assert t.net.group_of == {f"s{i:02d}": i % 4 for i in range(24)}  # train split only
    rows = [json.loads(line) for line in (result.run_dir / "log.jsonl").read_text().splitlines()]
    terms = [r["train"]["speaker_adv"] for r in rows if "train" in r]
    assert len(terms) == 2 and all(np.isfinite(terms))
