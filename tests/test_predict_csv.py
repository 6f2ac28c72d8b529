"""``mea predict --out``'s CSV header follows from the model (task, label names, label range,
modality weights), never from which clips failed."""

from __future__ import annotations

import csv
from pathlib import Path

from mea_cli.predict.api import ClipPrediction, PredictReport
from mea_cli.predict.report import write_csv


def _report(task: str, names: list[str], has_weights: bool, clips: list[ClipPrediction],
            label_range: tuple[float, float] | None = None) -> PredictReport:  # fmt: skip
    return PredictReport(
        checkpoint="runs/x/ckpt.pt", model="mea", dataset="custom", task=task, label_names=names,
        label_range=label_range, has_weights=has_weights, extraction={}, clips=clips,
    )  # fmt: skip


def _failed(name: str) -> ClipPrediction:
    return ClipPrediction(name, f"{name}.mp4", "failed", failures=[{"stage": "open", "message": "x"}])


def _header(report: PredictReport, path: Path) -> list[str]:
    write_csv(report, path)
    with path.open() as f:
        return next(csv.reader(f))


def test_every_clip_failed_keeps_the_models_columns(tmp_path: Path) -> None:
    reg = _report("regression", ["sentiment"], True, [_failed("a"), _failed("b")], (-3.0, 3.0))
    head = _header(reg, tmp_path / "reg.csv")
    assert head[:9] == [
        "clip", "path", "status", "pred_score", "pred_polarity", "pred_class",
        "psi_text", "psi_vision", "psi_audio",
    ]  # fmt: skip
    assert head[9] == "missing" and head[-1] == "failures"
    cls = _report("multiclass", ["happy", "sad"], False, [_failed("a")])
    head = _header(cls, tmp_path / "cls.csv")
    assert head[3:6] == ["pred_class", "pred_p_happy", "pred_p_sad"]
    assert not [h for h in head if h.startswith("psi_")]  # the model has no psi
    multi = _report("binary-multilabel", ["a", "b"], False, [_failed("a")])
    assert _header(multi, tmp_path / "ml.csv")[3:6] == ["pred_labels", "pred_p_a", "pred_p_b"]
    wide = _report("regression", ["score"], False, [_failed("a")], (0.0, 0.5))  # no classes
    assert [h for h in _header(wide, tmp_path / "w.csv") if h.startswith("pred_")] == [
        "pred_score", "pred_polarity",
    ]  # fmt: skip


def test_an_ok_clip_fills_the_same_columns(tmp_path: Path) -> None:
    ok = ClipPrediction("a", "a.mp4", "ok", prediction={"score": 1.25, "polarity": "positive",
                                                       "class": 1})  # fmt: skip
    report = _report("regression", ["sentiment"], False, [_failed("b"), ok], (-3.0, 3.0))
    path = tmp_path / "p.csv"
    failed_only = _header(_report("regression", ["sentiment"], False, [_failed("b")], (-3.0, 3.0)),
                          tmp_path / "f.csv")  # fmt: skip
    assert _header(report, path) == failed_only
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["pred_score"] == "" and rows[1]["pred_score"] == "1.250000"
