"""The trainer's pieces: pure config resolution, the LR schedule's signal, no global side
effects in a library call, the ``Trainer`` class."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from mea_cli.batch import Batch
from mea_cli.config import ConfigError
from mea_cli.data.presets import PresetError
from mea_cli.models import ModelConfig, ModelOutput, register_model
from mea_cli.models.core.registry import UnknownModelError, unregister_model
from mea_cli.train.setup import StoreFacts, TrainError, TrainRequest, resolve_config
from mea_cli.train.trainer import enable_determinism, train_run

FACTS = StoreFacts(
    features="/data/mosi.h5",
    sha256="abc",
    task="regression",
    label_names=("sentiment",),
    input_dims={"text": 300, "vision": 35, "audio": 74},
    schema={},
)


def _req(**kw: object) -> TrainRequest:
    return TrainRequest(features=Path("/data/mosi.h5"), dataset="mosi", **kw)


def test_resolution_is_a_pure_function_of_request_facts_and_presets() -> None:
    cfg = resolve_config(
        _req(train_overrides={"lr": "5e-4", "epochs": 3}, model_overrides={"d": 16, "heads": 4}),
        FACTS,
        "run",
    )
    assert cfg == resolve_config(  # same inputs, same output; nothing read or written
        _req(train_overrides={"lr": "5e-4", "epochs": 3}, model_overrides={"d": 16, "heads": 4}),
        FACTS,
        "run",
    )
    assert cfg.train["lr"] == 5e-4 and cfg.train["epochs"] == 3
    assert cfg.train["batch_size"] == 32  # MEA Table I, MOSI
    assert cfg.train_sources["lr"] == "override"
    assert cfg.train_sources["batch_size"] == "MEA (IEEE TCSVT) Table I"
    model = cfg.model_config
    assert (model["d"], model["heads"], model["mu"]) == (16, 4, 0.25)
    assert model["input_dims"] == FACTS.input_dims and "lr" not in model
    json.dumps(cfg.to_dict(), allow_nan=False)  # config.json is strict JSON
    mosei = resolve_config(TrainRequest(features=None, dataset="MOSEI"), FACTS, "r")
    assert (mosei.dataset, mosei.train["batch_size"], mosei.model_config["heads"]) == (
        "mosei",
        64,
        10,
    )


def test_resolution_refuses_bad_requests_in_one_error() -> None:
    with pytest.raises(ConfigError) as err:
        resolve_config(_req(train_overrides={"lr": -1, "batch_size": "x", "bogus": 1}), FACTS, "r")
    assert len(err.value.problems) == 3 and "bogus" in err.value.problems[0]
    with pytest.raises(ConfigError, match="input_dims comes from the store"):
        resolve_config(_req(model_overrides={"input_dims": {"text": 1}}), FACTS, "r")
    with pytest.raises(ConfigError, match="unknown ablation switch nope"):
        resolve_config(_req(model_overrides={"ablations": "psa,nope"}), FACTS, "r")
    with pytest.raises(UnknownModelError, match="valid models: .*mea"):
        resolve_config(_req(model="nope"), FACTS, "r")
    with pytest.raises(PresetError):
        resolve_config(TrainRequest(features=None, dataset="sims"), FACTS, "r")
    with pytest.raises(TrainError, match="distinct"):
        resolve_config(_req(seeds=[1, 1]), FACTS, "r")


# ------------------------------------------------------------------ ReduceLROnPlateau signal
@dataclass(frozen=True)
class DriftConfig(ModelConfig):
    PRESETS = {"mosi": {}, "mosei": {}, "iemocap": {}}
    PRESET_SOURCE = "a test model"


class Drift(nn.Module):
    """Validation task loss falls with every training step, its auxiliary term grows, so the
    total grows: which of the two the scheduler watches decides whether the LR drops."""

    def __init__(self, cfg: DriftConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.w = nn.Linear(cfg.input_dims["text"], 1)
        self.register_buffer("steps", torch.zeros(()))

    def forward(self, batch: Batch) -> ModelOutput:
        x = batch.inputs["text"].sum(1)
        pred = self.w(x)
        out = ModelOutput(pred=pred)
        if batch.labels is not None:
            if self.training:
                self.steps += 1
            task = 0.0 * F.mse_loss(pred, batch.labels) + 1.0 / (1.0 + self.steps)
            aux = self.steps + 0.0 * pred.sum()
            out.loss = task + aux
            out.losses = {"task": task.detach(), "aux": aux.detach()}
        return out


@pytest.fixture
def drift() -> Iterator[str]:
    register_model("drift", DriftConfig)(Drift)
    yield "drift"
    unregister_model("drift")


def test_lr_schedule_steps_on_the_validation_task_loss(
    drift: str, synth_mosi: Path, tmp_path: Path
) -> None:
    """docs/training.md: ReduceLROnPlateau follows the task loss, not the total loss (which
    adds adversarial / discriminator terms); here the total rises every epoch and the task
    loss falls, so with lr_patience 0 the LR must stay put."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    cublas = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    result = train_run(
        TrainRequest(
            features=synth_mosi,
            dataset="mosi",
            model=drift,
            train_overrides={"epochs": 4, "lr_patience": 0, "patience": 10, "batch_size": 16},
            runs_dir=tmp_path,
            name="drift",
            live=False,
        )
    )
    log = [json.loads(x) for x in (result.run_dir / "log.jsonl").read_text().splitlines()]
    tasks = [r["valid"]["task_loss"] for r in log]
    totals = [r["valid"]["loss"] for r in log]
    assert tasks == sorted(tasks, reverse=True) and totals == sorted(totals)  # the setting
    assert [r["lr"] for r in log] == [1e-3] * 4
    assert "aux" in log[0]["train"]  # every term the model names is logged, none filtered
    # a library call leaves the process-wide switches alone (the CLI sets them)
    assert torch.are_deterministic_algorithms_enabled() == deterministic
    assert os.environ.get("CUBLAS_WORKSPACE_CONFIG") == cublas


def test_weight_average_is_what_is_validated_and_kept(
    drift: str, synth_mosi: Path, tmp_path: Path
) -> None:
    """train.ema_decay: the checkpoint holds the moving average (here of Drift's step counter,
    a float buffer: below the raw count, not a whole number); off, the raw weights."""
    from mea_cli.artifacts.checkpoint import load_checkpoint

    kept = {}
    for decay in (0.0, 0.5):
        result = train_run(
            TrainRequest(
                features=synth_mosi, dataset="mosi", model=drift, runs_dir=tmp_path,
                name=f"ema{decay}", live=False,
                train_overrides={"epochs": 1, "batch_size": 16, "ema_decay": decay},
            )
        )  # fmt: skip
        kept[decay] = float(load_checkpoint(result.run_dir / "ckpt.pt").state_dict["steps"])
    raw = kept[0.0]
    assert raw >= 2 and raw == int(raw)  # the number of training batches
    assert 0 < kept[0.5] < raw and kept[0.5] != int(kept[0.5])


def test_enable_determinism_sets_the_process_wide_switches() -> None:
    before = torch.are_deterministic_algorithms_enabled()
    had = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    try:
        enable_determinism()
        assert torch.are_deterministic_algorithms_enabled()
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"]
    finally:
        torch.use_deterministic_algorithms(before)
        if had is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
