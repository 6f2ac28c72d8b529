"""``mea train --log tensorboard``: the event file holds exactly the scalars of ``log.jsonl``
(read back with TensorBoard's own EventAccumulator), plus the valid split's mean WAL psi, and a
resumed run shows each epoch once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("tensorboard")  # the tensorboard extra (dev includes it)

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from mea_cli.data.synth import write_synthetic  # noqa: E402
from mea_cli.train.epoch_log import (  # noqa: E402
    EpochLogError,
    TensorBoardLog,
    parse_loggers,
    scalars,
)
from mea_cli.train.trainer import TrainRequest, train_run  # noqa: E402

TINY = {"d": 8, "heads": 2, "d_h": 8, "psa_layers": 2, "hca_layers": 1}


def _events(run: Path) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


def test_scalars_flatten_the_record() -> None:
    rec = {"epoch": 3, "lr": 1e-3, "train": {"loss": 2.0, "task": 1.5}, "valid": {"corr": float("nan")},
           "best": {"metric": "mae", "value": 0.9, "epoch": 2}, "early_stop": False}  # fmt: skip
    assert scalars(rec) == {"lr": 1e-3, "train/loss": 2.0, "train/task": 1.5,
                            "best/value": 0.9, "best/epoch": 2.0}  # fmt: skip
    assert parse_loggers(["tensorboard"]) == ("tensorboard",)
    with pytest.raises(EpochLogError, match="unknown logger; choose from tensorboard"):
        parse_loggers(["tensorboard,wandb"])


def test_tensorboard_events_equal_the_log(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    store = tmp_path / "synth.h5"
    write_synthetic(store, "mosi", n=24, seed=2, max_seconds=2.0)
    req = dict(features=store, dataset="mosi", seeds=[1], name="tb", live=False,
               model_overrides=TINY, runs_dir=tmp_path / "runs", log=("tensorboard",))  # fmt: skip
    train_run(TrainRequest(train_overrides={"epochs": 2, "patience": 5}, **req))
    run = tmp_path / "runs" / "tb"
    records = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    events = _events(run)
    want: dict[str, list[tuple[int, float]]] = {}
    for r in records:
        for tag, value in scalars(r).items():
            want.setdefault(tag, []).append((r["epoch"], value))
    assert {"train/loss", "train/task", "valid/mae", "valid/acc7", "lr"} <= set(want)
    for tag, points in want.items():  # every field of log.jsonl, float32 in the event file
        assert [s for s, _ in events[tag]] == [s for s, _ in points]
        assert [v for _, v in events[tag]] == pytest.approx([v for _, v in points], rel=1e-6)
    # MEA has a WAL: psi per PSA layer and modality, a distribution (sums to one) each epoch
    psi = {t: v for t, v in events.items() if t.startswith("psi/")}
    assert sorted(psi) == sorted(
        f"psi/layer{i}/{m}" for i in (1, 2) for m in ("text", "vision", "audio")
    )
    for layer in (1, 2):
        for epoch in (0, 1):
            total = sum(psi[f"psi/layer{layer}/{m}"][epoch][1] for m in ("text", "vision", "audio"))
            assert total == pytest.approx(1.0, abs=1e-5)
    assert set(events) == set(want) | set(psi)


def test_resume_purges_the_epochs_after_the_last_completed_one(tmp_path: Path) -> None:
    """A run killed after epoch 3 had written events of epoch 3 but saved state after epoch 2:
    the resumed writer drops the old epoch 3, so every epoch is shown once, with its new value."""
    first = TensorBoardLog(tmp_path / "tensorboard", last_epoch=0)
    for e in (1, 2, 3):
        first.epoch({"epoch": e, "train": {"loss": float(e)}})
    first.close()
    again = TensorBoardLog(tmp_path / "tensorboard", last_epoch=2)
    again.epoch({"epoch": 3, "train": {"loss": 30.0}})
    again.close()
    assert _events(tmp_path)["train/loss"] == [(1, 1.0), (2, 2.0), (3, 30.0)]
    fresh = TensorBoardLog(tmp_path / "tensorboard", last_epoch=0)  # a fresh start: old events go
    fresh.epoch({"epoch": 1, "train": {"loss": 5.0}})
    fresh.close()
    assert _events(tmp_path)["train/loss"] == [(1, 5.0)]


def test_cli_refuses_an_unknown_logger_before_making_anything(mea, tmp_path: Path) -> None:
    store = tmp_path / "s.h5"
    write_synthetic(store, "mosi", n=6, seed=1, max_seconds=2.0)
    code, _, err = mea("train", str(store), "--dataset", "mosi", "--log", "wandb",
                       "--runs-dir", str(tmp_path / "runs"))  # fmt: skip
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--log wandb: unknown logger; choose from tensorboard" in err
    assert not (tmp_path / "runs").exists()
