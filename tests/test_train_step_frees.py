"""A training step's output, loss and graph are freed before the next step's forward begins
(``Trainer._train_step``): held in the epoch's loop, they lived through the next forward and
raised the peak memory of every step (docs/performance.md#memory-where-it-goes)."""

from __future__ import annotations

import json
import weakref
from pathlib import Path
from typing import Any

import pytest
import torch

from mea_cli.data.synth import write_synthetic
from mea_cli.train import trainer
from mea_cli.train.trainer import TrainRequest, train_run

TINY = {"d": 8, "heads": 2, "d_h": 8, "psa_layers": 2, "hca_layers": 1}


def test_previous_step_is_freed_before_the_next_forward(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.set_num_threads(1)
    store = tmp_path / "synth.h5"
    write_synthetic(store, "mosi", n=24, seed=2, max_seconds=2.0)
    alive: list[weakref.ref] = []  # the training outputs' predictions and losses
    forwards = []

    def watched(*args: Any, **kwargs: Any) -> torch.nn.Module:
        model = build(*args, **kwargs)

        def before(module: torch.nn.Module, inputs: Any) -> None:
            if module.training:
                forwards.append([r() is not None for r in alive])

        def after(module: torch.nn.Module, inputs: Any, out: Any) -> None:
            if module.training:
                alive.extend([weakref.ref(out.pred), weakref.ref(out.loss)])

        model.register_forward_pre_hook(before)
        model.register_forward_hook(after)
        return model

    build = trainer.build_model
    monkeypatch.setattr(trainer, "build_model", watched)
    train_run(TrainRequest(
        features=store, dataset="mosi", seeds=[1], name="freed", live=False,
        model_overrides=TINY, runs_dir=tmp_path / "runs",
        train_overrides={"epochs": 2, "patience": 5, "batch_size": 4},
    ))  # fmt: skip
    lines = (tmp_path / "runs" / "freed" / "log.jsonl").read_text().splitlines()
    log = [json.loads(x) for x in lines]
    assert len(log) == 2 and all(r["train"]["loss"] > 0 for r in log)
    assert len(forwards) >= 4  # several steps per epoch
    assert all(not any(before) for before in forwards), "a step's output outlived it"
