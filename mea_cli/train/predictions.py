"""Model outputs as answers a person reads: a score and its class, or class probabilities.

Shared by ``mea eval --predictions`` (per-sample predictions beside the truth) and
``mea predict`` (raw clips), so both say the same thing about the same output:

==================  =========================================================================
task                what one sample's prediction becomes
==================  =========================================================================
regression          ``score`` (the model's number), ``polarity`` (``positive`` when the
                    score is above the middle of the label range, else ``negative``: the
                    Acc-2 rule, 0 for MOSI/MOSEI) and ``class`` (the score clipped to the
                    range and rounded, the Acc-7 rule; only for integer ranges, e.g. -3..3)
multiclass          ``class`` (the most probable) and ``probabilities`` (softmax of the logits)
binary-multilabel   ``labels`` (those with probability > 0.5, the argmax of each label's two
                    logits, as the metrics count them) and ``probabilities`` (of "present")
==================  =========================================================================

:func:`label_range_of` gives the range a checkpoint's scores live on: a custom task's own,
[-3, 3] for the MOSI/MOSEI presets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mea_cli.data.presets import PRESETS
from mea_cli.train.metrics import range_classes


def label_range_of(
    task: str, dataset: str, label_range: Sequence[float] | None
) -> tuple[float, float] | None:
    """The range of a regression checkpoint's labels (custom: its own; presets: theirs)."""
    if task != "regression":
        return None
    if label_range is not None:
        return float(label_range[0]), float(label_range[1])
    preset = PRESETS.get(dataset)
    return preset.label_range if preset is not None else None


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def readable(
    task: str,
    pred: np.ndarray,
    label_names: Sequence[str],
    label_range: Sequence[float] | None = None,
) -> list[dict[str, Any]]:
    """One dict per row of ``pred`` (``[N, 1]``, ``[N, C]`` or ``[N, K, 2]``), see the module
    docstring; ``label_range`` is the regression range (:func:`label_range_of`)."""
    pred = np.asarray(pred, np.float64)
    names = [str(n) for n in label_names]
    out: list[dict[str, Any]] = []
    if task == "regression":
        lo, hi = label_range if label_range is not None else (float("nan"), float("nan"))
        mid = (lo + hi) / 2 if label_range is not None else 0.0
        classes = range_classes(label_range) if label_range is not None else 0
        for score in pred.reshape(len(pred), -1)[:, 0]:
            row: dict[str, Any] = {
                "score": float(score),
                "polarity": "positive" if score > mid else "negative",
            }
            if classes:
                row["class"] = int(np.round(np.clip(score, lo, hi)))
            out.append(row)
        return out
    if task == "multiclass":
        probs = _softmax(pred)
        for p in probs:
            out.append(
                {
                    "class": names[int(p.argmax())],
                    "probabilities": {n: float(v) for n, v in zip(names, p, strict=True)},
                }
            )
        return out
    if task == "binary-multilabel":
        present = _softmax(pred)[..., 1]  # [N, K]
        winner = pred.argmax(axis=-1)  # the metrics' rule (ties: absent)
        for p, w in zip(present, winner, strict=True):
            out.append(
                {
                    "labels": [n for n, on in zip(names, w, strict=True) if on == 1],
                    "probabilities": {n: float(v) for n, v in zip(names, p, strict=True)},
                }
            )
        return out
    raise ValueError(f"no reading of predictions for task {task!r}")


def truth_readable(
    task: str, labels: np.ndarray, label_names: Sequence[str]
) -> list[dict[str, Any]]:
    """The stored labels in the same words: ``score``, ``class`` or ``labels``."""
    labels = np.asarray(labels, np.float64)
    names = [str(n) for n in label_names]
    if task == "regression":
        return [{"score": float(y[0])} for y in labels]
    if task == "multiclass":
        return [{"class": names[int(y.argmax())]} for y in labels]
    return [{"labels": [n for n, v in zip(names, y, strict=True) if v == 1]} for y in labels]


def flat(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A readable dict as CSV cells: probabilities become ``p_<name>`` columns, label lists
    are joined with ``;``."""
    cells: dict[str, Any] = {}
    for key, value in row.items():
        if key == "probabilities":
            cells.update({f"{prefix}p_{n}": f"{v:.6f}" for n, v in value.items()})
        elif key == "labels":
            cells[f"{prefix}labels"] = ";".join(value)
        elif isinstance(value, float):
            cells[f"{prefix}{key}"] = f"{value:.6f}"
        else:
            cells[f"{prefix}{key}"] = value
    return cells
