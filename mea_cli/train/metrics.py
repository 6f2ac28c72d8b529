"""The literature's metrics for MOSI / MOSEI (regression) and IEMOCAP (four binary emotions).

These follow the evaluation code that the MEA paper's tables (and MulT, MFSA, MCR, FDMER) share,
so that numbers are comparable with Tables II-IV of the MEA paper (Yang et al., IEEE TCSVT):

Regression (sentiment score in [-3, 3]):

* ``mae``: mean absolute error of the raw (unclipped) prediction.
* ``corr``: Pearson correlation of prediction and truth (NaN when either is constant).
* ``acc7``: both prediction and truth clipped to [-3, 3] and rounded to the nearest integer
  (numpy's round-half-to-even, as in the reference code), then exact-match accuracy over the
  seven classes -3..3.
* ``acc5``: the same with clipping to [-2, 2] (five classes).
* ``acc2_non0`` / ``f1_non0``: samples whose truth is exactly 0 are dropped; positive (> 0)
  vs negative (< 0) for truth, > 0 vs <= 0 for the prediction; accuracy and *weighted* F1.
* ``acc2_has0`` / ``f1_has0``: all samples; negative (< 0) vs non-negative (>= 0), for both
  truth and prediction; accuracy and weighted F1.

The papers print a single "Acc-2 / F1" column; which convention they used is not stated in the
MEA paper, so we report both, always labelled. The values equal MMSA's ``metricsTop.py``;
MulT's ``eval_metrics.py`` gives the same except its F1 (non0), whose ``f1_score`` call passes
the prediction in the truth's place (so the classes are weighted by predicted, not true,
frequency); we keep scikit-learn's order (docs/training.md "Metrics").

Binary multi-label classification (IEMOCAP happy/sad/angry/neutral): per emotion, the class is
the argmax of that emotion's two logits; ``acc_<emotion>`` is accuracy and ``f1_<emotion>`` the
weighted F1 (scikit-learn ``average="weighted"``), as in Table IV. ``acc_mean`` / ``f1_mean``
average them over emotions (our addition, used for model selection; not a paper column).

Custom tasks (``mea train --task ...``, the ``custom`` preset; docs/training.md "Custom
tasks"). The paper presets above keep their metrics; a store with other labels gets these:

* Regression on a range ``[a, b]`` (``--labels-range``, else the range recorded by
  ``mea extract --label-range``, else the smallest and largest label of the store):
  ``mae`` and ``corr`` as above; ``acc<K>`` when ``a`` and ``b`` are integers at least two
  apart (K = b - a + 1 <= 21 classes): prediction and truth clipped to ``[a, b]`` and rounded
  (the Acc-7 rule on that range: a 1-5 rating gives ``acc5``); ``acc2`` / ``f1``: above vs
  below the middle of the range ``(a + b) / 2``, samples whose truth is exactly the middle
  dropped (the non0 rule with 0 replaced by the middle), accuracy and weighted F1.
* Single-label classification (``multiclass``, one-hot truth ``[N, C]``, logits
  ``[N, C]``): ``acc`` (the argmax class), ``f1_macro`` (unweighted mean of the per-class
  F1 over the classes present in the truth or the predictions, so rare classes count as much
  as common ones and a class a split lacks is not scored 0; the selection metric) and
  ``f1_weighted`` (scikit-learn ``average="weighted"``), plus the confusion matrix
  (:func:`confusion`, rows = truth, columns = prediction) that ``mea eval`` draws.
* Binary multi-label with any label names: the IEMOCAP metrics above, per label.

All numbers are fractions in [0, 1] (the papers print percentages); :func:`format_metric`
renders them the papers' way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, mean_absolute_error

from mea_cli.data.presets import (
    REGRESSION_METRICS,  # keys of regression_metrics(), in display order
)
from mea_cli.errors import MeaError

MULTICLASS_METRICS: tuple[str, ...] = ("acc", "f1_macro", "f1_weighted")
"""Keys of :func:`multiclass_metrics`, in display order."""
MAX_RANGE_CLASSES = 21
LOWER_IS_BETTER: frozenset[str] = frozenset({"mae", "loss"})


class MetricsError(MeaError):
    """Predictions that cannot be scored: some are NaN or infinite."""


def finite_rows(pred: np.ndarray) -> np.ndarray:
    """``[N]`` bool: which samples' predictions (``[N, ...]``) are all finite numbers."""
    return np.isfinite(np.asarray(pred, np.float64)).reshape(len(pred), -1).all(axis=1)


@dataclass(frozen=True)
class Selection:
    """The validation metric that drives early stopping and model selection."""

    name: str
    higher_is_better: bool

    def better(self, new: float, best: float | None) -> bool:
        """Whether ``new`` improves on ``best`` (``None``: nothing yet). NaN never improves."""
        if not np.isfinite(new):
            return False
        if best is None or not np.isfinite(best):
            return True
        return new > best if self.higher_is_better else new < best


def selection_metric(task: str) -> Selection:
    """MAE (lower is better) for regression, mean weighted F1 over labels for binary
    multi-label (IEMOCAP), macro F1 for single-label classification."""
    if task == "regression":
        return Selection("mae", higher_is_better=False)
    if task == "multiclass":
        return Selection("f1_macro", higher_is_better=True)
    return Selection("f1_mean", higher_is_better=True)


def _flat(x: np.ndarray | Sequence[float]) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).reshape(-1)


def _mae_corr(
    pred: np.ndarray | Sequence[float], truth: np.ndarray | Sequence[float]
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Flattened prediction and truth, with MAE (unclipped) and Pearson Corr (NaN when either
    is constant)."""
    p, y = _flat(pred), _flat(truth)
    if p.shape != y.shape:
        raise ValueError(f"prediction has {p.size} values, truth {y.size}")
    if p.size == 0:
        raise ValueError("no samples to evaluate")
    out: dict[str, float] = {"mae": float(mean_absolute_error(y, p))}
    if np.ptp(p) > 0 and np.ptp(y) > 0:
        out["corr"] = float(np.corrcoef(p, y)[0, 1])
    else:
        out["corr"] = float("nan")
    return p, y, out


def regression_metrics(
    pred: np.ndarray | Sequence[float], truth: np.ndarray | Sequence[float]
) -> dict[str, float]:
    """MAE, Corr, Acc-7, Acc-5, Acc-2/F1 in the non0 and has0 conventions (module docstring)."""
    p, y, out = _mae_corr(pred, truth)
    for key, bound in (("acc7", 3.0), ("acc5", 2.0)):
        out[key] = float(
            accuracy_score(np.round(np.clip(y, -bound, bound)), np.round(np.clip(p, -bound, bound)))
        )
    nz = y != 0
    if nz.any():
        t, q = y[nz] > 0, p[nz] > 0
        out["acc2_non0"] = float(accuracy_score(t, q))
        out["f1_non0"] = float(f1_score(t, q, average="weighted", zero_division=0))
    else:
        out["acc2_non0"] = out["f1_non0"] = float("nan")
    t, q = y >= 0, p >= 0
    out["acc2_has0"] = float(accuracy_score(t, q))
    out["f1_has0"] = float(f1_score(t, q, average="weighted", zero_division=0))
    return out


def multilabel_metrics(
    logits: np.ndarray, truth: np.ndarray, label_names: Sequence[str]
) -> dict[str, float]:
    """Per-emotion Acc and weighted F1 from ``logits [N, K, 2]`` and 0/1 ``truth [N, K]``."""
    logits = np.asarray(logits, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    k = len(label_names)
    if logits.ndim != 3 or logits.shape[1:] != (k, 2):
        raise ValueError(f"logits have shape {logits.shape}, expected [N, {k}, 2]")
    if truth.shape != logits.shape[:2]:
        raise ValueError(f"truth has shape {truth.shape}, expected {logits.shape[:2]}")
    if len(truth) == 0:
        raise ValueError("no samples to evaluate")
    pred = logits.argmax(axis=-1)
    out: dict[str, float] = {}
    for j, name in enumerate(label_names):
        t = truth[:, j].astype(np.int64)
        out[f"acc_{name}"] = float(accuracy_score(t, pred[:, j]))
        out[f"f1_{name}"] = float(f1_score(t, pred[:, j], average="weighted", zero_division=0))
    out["acc_mean"] = float(np.mean([out[f"acc_{n}"] for n in label_names]))
    out["f1_mean"] = float(np.mean([out[f"f1_{n}"] for n in label_names]))
    return out


def range_classes(value_range: Sequence[float]) -> int:
    """K of ``acc<K>`` for a regression range (0: no integer-class accuracy, see the module
    docstring)."""
    a, b = (float(x) for x in value_range)
    if a.is_integer() and b.is_integer() and 2 <= b - a <= MAX_RANGE_CLASSES - 1:
        return int(b - a) + 1
    return 0


def range_regression_metrics(
    pred: np.ndarray | Sequence[float],
    truth: np.ndarray | Sequence[float],
    value_range: Sequence[float],
) -> dict[str, float]:
    """MAE, Corr, Acc-K and Acc-2/F1 about the middle, for regression on ``[a, b]``."""
    p, y, out = _mae_corr(pred, truth)
    a, b = (float(x) for x in value_range)
    k = range_classes(value_range)
    if k:
        out[f"acc{k}"] = float(
            accuracy_score(np.round(np.clip(y, a, b)), np.round(np.clip(p, a, b)))
        )
    mid = (a + b) / 2
    off = y != mid
    if off.any():
        t, q = y[off] > mid, p[off] > mid
        out["acc2"] = float(accuracy_score(t, q))
        out["f1"] = float(f1_score(t, q, average="weighted", zero_division=0))
    else:
        out["acc2"] = out["f1"] = float("nan")
    return out


def _classes(logits: np.ndarray, truth: np.ndarray, label_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    logits = np.asarray(logits, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    c = len(label_names)
    if logits.ndim != 2 or logits.shape[1] != c:
        raise ValueError(f"logits have shape {logits.shape}, expected [N, {c}]")
    if truth.shape != logits.shape:
        raise ValueError(f"truth has shape {truth.shape}, expected {logits.shape}")
    if len(truth) == 0:
        raise ValueError("no samples to evaluate")
    return truth.argmax(axis=1), logits.argmax(axis=1)


def multiclass_metrics(
    logits: np.ndarray, truth: np.ndarray, label_names: Sequence[str]
) -> dict[str, float]:
    """Accuracy, macro and weighted F1 from ``logits [N, C]`` and one-hot ``truth [N, C]``.

    Macro F1 averages over the classes present in the truth or the predictions (scikit-learn's
    default for ``average="macro"``): a class that a split (a small fold's test part) neither
    holds nor is predicted would otherwise count as F1 = 0, so perfect predictions of two of
    three classes read 0.667. Weighted F1 weighs each class by its support, so an absent class
    counts for nothing either way; with every class present both are what they always were."""
    t, q = _classes(logits, truth, label_names)
    every = list(range(len(label_names)))
    return {
        "acc": float(accuracy_score(t, q)),
        "f1_macro": float(f1_score(t, q, average="macro", zero_division=0)),
        "f1_weighted": float(f1_score(t, q, labels=every, average="weighted", zero_division=0)),
    }


def confusion(logits: np.ndarray, truth: np.ndarray, label_names: Sequence[str]) -> np.ndarray:
    """``[C, C]`` counts, rows = true class, columns = predicted class (label order)."""
    t, q = _classes(logits, truth, label_names)
    return confusion_matrix(t, q, labels=list(range(len(label_names))))


def compute_metrics(
    task: str,
    pred: np.ndarray,
    truth: np.ndarray,
    label_names: Sequence[str],
    value_range: Sequence[float] | None = None,
) -> dict[str, float]:
    """Dispatch on the store's task: ``pred`` is ``[N, 1]`` (regression), ``[N, C]``
    (multiclass) or ``[N, K, 2]`` (binary multi-label). ``value_range`` is a custom
    regression task's range; ``None`` keeps the papers' MOSI/MOSEI metrics. A non-finite
    prediction is a :class:`MetricsError` (scikit-learn would stop with its own ``ValueError``;
    the reference code would print NaN for some metrics and score the rest)."""
    finite = finite_rows(pred)
    if not finite.all():
        raise MetricsError(
            f"{int((~finite).sum())} of {len(pred)} predictions are NaN or infinite: the model's "
            "weights or its inputs hold extreme values, so nothing can be scored"
        )
    if task == "regression":
        if value_range is None:
            return regression_metrics(pred, truth)
        return range_regression_metrics(pred, truth, value_range)
    if task == "multiclass":
        return multiclass_metrics(pred, truth, label_names)
    if task == "binary-multilabel":
        return multilabel_metrics(pred, truth, label_names)
    raise ValueError(f"no metrics for task {task!r}")


def metric_keys(
    task: str, label_names: Sequence[str], value_range: Sequence[float] | None = None
) -> list[str]:
    """The metric names of ``task`` in display order."""
    if task == "regression":
        if value_range is None:
            return list(REGRESSION_METRICS)
        k = range_classes(value_range)
        return ["mae", "corr", *([f"acc{k}"] if k else []), "acc2", "f1"]
    if task == "multiclass":
        return list(MULTICLASS_METRICS)
    keys: list[str] = []
    for name in label_names:
        keys += [f"acc_{name}", f"f1_{name}"]
    return [*keys, "acc_mean", "f1_mean"]


def headline_metrics(task: str, value_range: Sequence[float] | None = None) -> list[str]:
    """The few metrics a comparison table shows (MEA Table V's columns for the papers'
    tasks; the main ones of a custom task)."""
    if task == "regression":
        if value_range is None:
            return ["acc7", "f1_non0", "f1_has0", "mae"]
        k = range_classes(value_range)
        return [*([f"acc{k}"] if k else []), "f1", "mae", "corr"]
    if task == "multiclass":
        return ["acc", "f1_macro", "f1_weighted"]
    return ["acc_mean", "f1_mean"]


def format_metric(key: str, value: float | None) -> str:
    """Papers' style: MAE and Corr with three decimals, accuracies and F1 as percentages."""
    if value is None or not np.isfinite(value):
        return "n/a"
    if key in ("mae", "corr", "loss"):
        return f"{value:.3f}"
    return f"{100 * value:.1f}"


def mean_std(runs: Sequence[dict[str, float]]) -> dict[str, dict[str, float | int | None]]:
    """Mean, sample standard deviation (ddof=1) and count ``n`` of each metric over seeds.

    Non-finite values (a NaN correlation) are left out and not counted. The sample std of one
    value is undefined, so with ``n < 2`` it is ``None`` (``null`` in JSON), never 0: a single
    seed is printed "n=1" (:func:`format_mean_std`), not "± 0.0".
    """
    keys = [k for k in runs[0] if all(k in r for r in runs)]
    out: dict[str, dict[str, float | int | None]] = {}
    for k in keys:
        vals = np.array([np.nan if r[k] is None else r[k] for r in runs], dtype=np.float64)
        vals = vals[np.isfinite(vals)]
        out[k] = {
            "mean": float(np.mean(vals)) if len(vals) else None,
            "std": float(np.std(vals, ddof=1)) if len(vals) > 1 else None,
            "n": int(len(vals)),
        }
    return out


def format_mean_std(key: str, mean: float | None, std: float | None, n: int) -> str:
    """``"42.0 ± 2.8"`` over several seeds, ``"42.0 (n=1)"`` for one, ``"n/a"`` for none."""
    if n == 0 or mean is None:
        return "n/a"
    if n == 1 or std is None:
        return f"{format_metric(key, mean)} (n={n})"
    return f"{format_metric(key, mean)} ± {format_metric(key, std)}"
