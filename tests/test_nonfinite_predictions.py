"""A model whose output is NaN or infinite (diverged weights, extreme inputs): ``mea eval`` says
so in one line naming the checkpoint (exit 2) instead of scikit-learn's ``ValueError``
traceback, and ``mea predict`` gives each such clip a failure row instead of a NaN
prediction. The literature's reference code would print NaN for MAE and Corr and score the
rest; a score of a model that returns no number is not a score."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from model_helpers import tiny_trained_run

from mea_cli import api
from mea_cli.artifacts.checkpoint import load_checkpoint, save_checkpoint
from mea_cli.train.metrics import MetricsError, compute_metrics


@pytest.mark.parametrize(
    ("task", "pred", "truth", "names"),
    [
        ("regression", [[0.5], [np.nan], [1.0]], [[1.0], [0.0], [-1.0]], ("sentiment",)),
        ("multiclass", [[1.0, np.inf], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]], ("a", "b")),
        (
            "binary-multilabel",
            [[[0.0, 1.0]], [[np.nan, 0.0]], [[1.0, 0.0]]],
            [[1.0], [0.0], [0.0]],
            ("happy",),
        ),
    ],
)
def test_a_non_finite_prediction_is_refused_with_its_count(
    task: str, pred: list, truth: list, names: tuple[str, ...]
) -> None:
    with pytest.raises(MetricsError, match=rf"^1 of {len(pred)} predictions are NaN or infinite"):
        compute_metrics(task, np.asarray(pred, np.float32), np.asarray(truth, np.float32), names)


@pytest.fixture(scope="module")
def diverged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny trained MEA and a copy of its checkpoint whose prediction head's bias is NaN."""
    tmp = tmp_path_factory.mktemp("nonfinite")
    store, trained = tiny_trained_run(tmp, n=24, seed=4)
    ckpt = load_checkpoint(trained)
    weights = dict(ckpt.state_dict)
    head_bias = [k for k in weights if k.startswith("head") and k.endswith("bias")][-1]
    weights[head_bias] = torch.full_like(weights[head_bias], float("nan"))
    bad = tmp / "nan.pt"
    save_checkpoint(dataclasses.replace(ckpt, state_dict=weights), bad)
    return store, bad


def test_eval_of_a_diverged_model_is_one_line_naming_the_checkpoint(
    diverged: tuple[Path, Path], mea
) -> None:
    store, bad = diverged
    code, out, err = mea("eval", str(bad), "--features", str(store), "--split", "test")
    assert code == 2 and "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert str(bad) in lines[0] and "predictions are NaN or infinite" in lines[0], err


def test_predict_gives_each_diverged_clip_a_failure_row(diverged: tuple[Path, Path]) -> None:
    store, bad = diverged
    report = api.predict(store, bad)
    assert report.clips and all(c.status == "failed" for c in report.clips)
    for clip in report.clips:
        assert clip.prediction is None
        assert clip.failures[-1]["stage"] == "model", clip.failures
        assert "NaN or infinite" in clip.failures[-1]["message"]


def test_fill_keeps_each_finite_prediction_with_its_own_clip() -> None:
    """Clips around a NaN output keep their own predictions (no shift by the failed row)."""
    from mea_cli.predict.api import ClipPrediction, fill

    clips = [ClipPrediction(clip=f"c{k}", path=f"c{k}.mp4", status="ok") for k in range(4)]
    pred = np.array([[1.5], [np.nan], [-2.0], [np.inf]], np.float32)
    fill([(c, None) for c in clips], pred, [], "regression", ("sentiment",), None)
    assert [c.status for c in clips] == ["ok", "failed", "ok", "failed"]
    assert clips[0].prediction["score"] == 1.5 and clips[2].prediction["score"] == -2.0
    assert clips[1].prediction is None and clips[1].failures[0]["stage"] == "model"


def test_training_whose_valid_predictions_diverge_stops_in_one_line(
    diverged: tuple[Path, Path], tmp_path: Path, mea, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trainer scores each epoch on valid: NaN predictions there end the run with one line
    saying which split and what to try, exit 2 (the training loss itself stayed finite)."""
    from mea_cli.train.trainer import Trainer

    predict = Trainer.predict

    def nan_predict(self: Trainer, split: str):  # noqa: ANN202 - the trainer's Predictions
        p = predict(self, split)
        return dataclasses.replace(p, pred=np.full_like(p.pred, np.nan))

    monkeypatch.setattr(Trainer, "predict", nan_predict)
    store, _ = diverged
    code, _, err = mea(
        "train", str(store), "--dataset", "mosi", "--epochs", "1", "--runs-dir", str(tmp_path),
        "--name", "nan", "--set", "d=8", "--set", "heads=2", "--set", "d_h=8",
        "--set", "psa_layers=1", "--set", "hca_layers=1", "--device", "cpu", "--threads", "1",
    )  # fmt: skip
    lines = [line for line in err.splitlines() if line.strip() and "Traceback" not in line]
    assert code == 2 and "Traceback" not in err, err
    assert any("the valid split:" in line and "NaN or infinite" in line for line in lines), err
    assert not (tmp_path / "nan" / "ckpt.pt").exists()
