"""``mea predict``'s outputs: the CSV file (``--out``), the JSON (``--json``) and the table.

CSV: one row per clip, failed clips included (``status`` ``failed`` and their failure rows,
prediction cells empty). Columns: ``clip, path, status``, the prediction as ``pred_*``
(:func:`mea_cli.train.predictions.flat`: ``pred_score, pred_polarity, pred_class`` or
``pred_class, pred_p_<class>...`` or ``pred_labels, pred_p_<label>...``; the regression
``pred_class`` only for an integer label range), the modality weights as ``psi_text,
psi_vision, psi_audio`` (only when the model has them), ``missing``
(``;``-joined modalities with an empty sequence), ``steps_<modality>``, ``duration_s``,
``words_source``, ``text`` (the words, space-joined) and ``failures``
(``stage: message`` joined by `` | ``). The columns follow from the model (task, label
names, label range, modality weights), never from which clips failed: a failed clip's
prediction and psi cells are empty, and a file of failures only has the same header.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from mea_cli import MODALITIES
from mea_cli.paths import write_text
from mea_cli.predict.api import ClipPrediction, PredictReport
from mea_cli.train.ensemble import averaged_line
from mea_cli.train.predictions import flat, readable

SHORT = {"text": "T", "vision": "V", "audio": "A"}


def csv_row(clip: ClipPrediction) -> dict[str, Any]:
    """One clip as a ``predictions.csv`` row: status, prediction columns, psi, missing
    modalities and step counts."""
    row: dict[str, Any] = {"clip": clip.clip, "path": clip.path, "status": clip.status}
    if clip.prediction is not None:
        row.update(flat(clip.prediction, "pred_"))
    if clip.modality_weights is not None:
        row.update({f"psi_{m}": f"{v:.6f}" for m, v in clip.modality_weights.items()})
    row["missing"] = ";".join(clip.missing)
    row.update({f"steps_{m}": clip.steps.get(m, "") for m in MODALITIES})
    row["duration_s"] = "" if clip.duration is None else f"{clip.duration:.3f}"
    row["words_source"] = clip.words_source
    row["text"] = " ".join(w["text"] for w in clip.words)
    row["failures"] = " | ".join(f"{f['stage']}: {f['message']}" for f in clip.failures)
    return row


def model_columns(report: PredictReport) -> list[str]:
    """The ``pred_*`` and ``psi_*`` columns of ``report``'s model, whatever its clips gave:
    those :func:`~mea_cli.train.predictions.readable` makes of one output of the task's shape
    (one score, one logit per class, two per label), and psi when the model has it."""
    k = len(report.label_names)
    shape = {"regression": (1, 1), "multiclass": (1, k), "binary-multilabel": (1, k, 2)}
    psi = [f"psi_{m}" for m in MODALITIES] if report.has_weights else []
    if not all(shape.get(report.task, [0])):  # nothing to go by: the rows say it
        return psi
    one = readable(report.task, np.zeros(shape[report.task]), report.label_names, report.label_range)
    return [*flat(one[0], "pred_"), *psi]


def write_csv(report: PredictReport, path: Path) -> Path:
    """The CSV described in the module docstring, written atomically."""
    rows = [csv_row(c) for c in report.clips]
    fields: list[str] = model_columns(report)
    for row in rows:  # the other columns, in the first-seen order
        fields += [k for k in row if k not in fields]
    order = ["clip", "path", "status"]
    order += [f for f in fields if f.startswith("pred_")]
    order += [f for f in fields if f.startswith("psi_")]
    order += [f for f in fields if f not in order]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=order, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return write_text(path, buf.getvalue(), "predictions file")


def _said(clip: ClipPrediction) -> str:
    p = clip.prediction
    if p is None:
        return "-"
    if "score" in p:
        extra = f", class {p['class']}" if "class" in p else ""
        return f"{p['score']:+.3f} ({p['polarity']}{extra})"
    if "class" in p:
        return f"{p['class']} ({100 * p['probabilities'][p['class']]:.0f}%)"
    on = ", ".join(p["labels"]) or "none"
    probs = " ".join(f"{n} {100 * v:.0f}%" for n, v in p["probabilities"].items())
    return f"{on} [{probs}]"


def render(report: PredictReport, console: Console) -> None:
    """One table row per clip, then the failures and notes."""
    title = f"{report.model} ({report.dataset}, {report.task}) on {len(report.clips)} clip(s)"
    t = Table(title=title, title_justify="left")
    t.add_column("clip")
    t.add_column("prediction")
    if report.has_weights:
        t.add_column("modality weights psi (T/V/A)")
    t.add_column("missing")
    t.add_column("words")
    for c in report.clips:
        cells = [c.clip, _said(c)]
        if report.has_weights:
            w = c.modality_weights
            cells.append(
                "-" if w is None else " ".join(f"{SHORT[m]} {w[m]:.2f}" for m in MODALITIES)
            )
        cells.append("failed" if c.status != "ok" else (", ".join(c.missing) or "none"))
        text = " ".join(x["text"] for x in c.words)
        cells.append(f"{text} ({c.words_source})" if text else f"({c.words_source})")
        t.add_row(*cells)
    console.print(t)
    if report.members:
        console.print(
            averaged_line(report.task, report.members, psi=report.has_weights),
            highlight=False,
            soft_wrap=True,
        )
    for c in report.clips:
        for f in c.failures:
            console.print(f"{c.clip}: {f['stage']}: {f['message']}", highlight=False)
    for note in report.notes:
        console.print(f"note: {note}", highlight=False)
    if not report.has_weights:
        console.print(
            "note: not every member has modality weights psi with the same number of layers, "
            "so the ensemble reports none"
            if report.members
            else f"note: model {report.model!r} (as built) provides no modality weights",
            highlight=False,
        )
