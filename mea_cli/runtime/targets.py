"""Regression targets in the model's range: standardised inside training, in the label's own
units everywhere else.

A model's output layer starts near 0 with a spread near 1; labels on 0-100 (or 1-5) used raw
make the first hundreds of steps spend themselves on moving the output's offset and scale,
and a loss in the thousands swamps the auxiliary terms. So a regression run fits the train
split's label mean ``mu`` and standard deviation ``sd`` (:meth:`TargetScale.fit`); the model
learns ``(y - mu) / sd``, and :class:`ScaledModel` turns its output back into ``pred * sd + mu``.
Metrics, ``predictions.csv``, ``mea eval`` and ``mea predict`` therefore see the label's own
units, and a store with labels ``37 * y + 500`` trains like the one with ``y``.

The scale is stored in the checkpoint (``target_scale``); a checkpoint without one (written
before this existed, or a classification run) is the identity. Class labels are never scaled; ``train.class_weights=balanced`` weights their cross-entropy
instead and ``train.label_smoothing`` smooths its targets (:func:`balanced_class_weights`,
:func:`weighted_task_loss`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mea_cli.batch import Batch


@dataclass(frozen=True)
class TargetScale:
    """``y_model = (y - mean) / std`` per label column (regression only)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, labels: np.ndarray) -> TargetScale:
        """Mean and standard deviation (population) of each label column, NaN left out; a
        column without spread (or without values) keeps std 1, a column without values mean 0."""
        y = np.asarray(labels, np.float64)
        y = y.reshape(len(y), -1)
        finite = np.isfinite(y)
        n = finite.sum(axis=0)
        total = np.where(finite, y, 0.0).sum(axis=0)
        mean = np.divide(total, n, out=np.zeros(y.shape[1]), where=n > 0)
        var = np.divide(
            np.where(finite, (y - mean) ** 2, 0.0).sum(axis=0), n, out=np.zeros(y.shape[1]), where=n > 0
        )
        std = np.sqrt(var)
        std = np.where(std > 1e-12, std, 1.0)
        return cls(tuple(float(v) for v in mean), tuple(float(v) for v in std))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> TargetScale | None:
        """The scale a checkpoint records (``None``: none recorded, the identity)."""
        if not data:
            return None
        return cls(tuple(float(v) for v in data["mean"]), tuple(float(v) for v in data["std"]))

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "std": list(self.std)}

    def scale(self, labels: torch.Tensor) -> torch.Tensor:
        """Labels in the label's units -> the model's standardised targets."""
        mean, std = self._tensors(labels)
        return (labels - mean) / std

    def unscale(self, pred: torch.Tensor) -> torch.Tensor:
        """The model's standardised output -> the label's units."""
        mean, std = self._tensors(pred)
        return pred * std + mean

    def _tensors(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        kw = {"dtype": like.dtype, "device": like.device}
        return torch.tensor(self.mean, **kw), torch.tensor(self.std, **kw)


def scale_for(task: str, train_labels: np.ndarray) -> TargetScale | None:
    """The target scale a run of ``task`` trains with: fitted on the train labels for
    regression, none for classes."""
    return TargetScale.fit(train_labels) if task == "regression" else None


class ScaledModel(nn.Module):
    """A model that learns standardised targets, seen from outside in the label's units.

    ``forward`` scales ``batch.labels`` before the inner model computes its losses (so the
    losses are in standardised units) and unscales ``out.pred``; everything else of the output
    (representations, modality weights, attention) is the inner model's. ``cfg`` is the inner
    model's config; the weights (``state_dict``) are the inner model's under ``inner.``, so
    checkpoints save and load :attr:`inner`.
    """

    def __init__(self, inner: nn.Module, scale: TargetScale) -> None:
        super().__init__()
        self.inner = inner
        self.target_scale = scale
        self.cfg = inner.cfg

    def forward(self, batch: Batch, **kwargs: Any) -> Any:
        if batch.labels is not None:
            batch = replace(batch, labels=self.target_scale.scale(batch.labels))
        out = self.inner(batch, **kwargs)
        out.pred = self.target_scale.unscale(out.pred)
        return out


def with_scale(model: nn.Module, scale: TargetScale | None) -> nn.Module:
    """``model`` seen in the label's units (:class:`ScaledModel`), or itself without a scale."""
    return model if scale is None else ScaledModel(model, scale)


def balanced_class_weights(task: str, train_labels: np.ndarray) -> torch.Tensor | None:
    """scikit-learn's "balanced" weights ``n / (C * n_c)`` from the train labels: ``[C]`` for
    multiclass (one-hot rows; a class absent from train gets weight 0), ``[K, 2]`` for binary
    multi-label (per label, absent / present); ``None`` for regression."""
    y = np.asarray(train_labels, np.float64)
    if task == "multiclass":
        rows = np.isfinite(y).all(axis=1)
        counts = np.bincount(y[rows].argmax(axis=1), minlength=y.shape[1]).astype(np.float64)
        present = counts > 0
        w = np.zeros(y.shape[1])
        w[present] = counts.sum() / (present.sum() * counts[present])
        return torch.tensor(w, dtype=torch.float32)
    if task == "binary-multilabel":
        w = np.zeros((y.shape[1], 2))
        for k in range(y.shape[1]):
            v = y[np.isfinite(y[:, k]), k].round().astype(int)
            counts = np.bincount(v, minlength=2).astype(np.float64)
            present = counts > 0
            w[k, present] = counts.sum() / (present.sum() * counts[present])
        return torch.tensor(w, dtype=torch.float32)
    return None


def weighted_task_loss(
    pred: torch.Tensor,
    labels: torch.Tensor,
    task: str,
    weights: torch.Tensor | None,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """The classification task loss with class weights (``None``: every weight 1) and label
    smoothing ``eps`` (0: off), PyTorch's ``cross_entropy`` convention: each labelled row
    ``i`` of true class ``y`` adds ``(1 - eps) w_y nll_y + eps / C * sum_c w_c nll_c``, and
    the sum is divided by the sum of ``w_y`` (the weighted mean). Unlabelled rows / entries are
    left out, as in :func:`mea_cli.models.core.losses.task_loss`, which it equals when every
    weight is 1 and ``eps`` is 0. Binary multi-label: each label's two logits are one row
    (``C = 2``) with that label's weights."""
    labels = labels.to(pred.dtype)
    if task == "multiclass":
        rows = ~torch.isnan(labels).any(dim=-1)
        if not bool(rows.any()):
            return pred.sum() * 0.0
        w = None if weights is None else weights.to(device=pred.device, dtype=torch.float32)
        return F.cross_entropy(
            pred[rows].float(), labels[rows].argmax(dim=-1), weight=w,
            label_smoothing=label_smoothing,
        )  # fmt: skip
    valid = ~torch.isnan(labels)  # [B, K]
    if not bool(valid.any()):
        return pred.sum() * 0.0
    if weights is None:
        weights = torch.ones(labels.shape[1], 2)
    w = weights.to(device=pred.device, dtype=torch.float32)
    target = torch.where(valid, labels, torch.zeros((), dtype=labels.dtype)).round().long()
    nll_all = -torch.log_softmax(pred.float(), dim=-1)  # [B, K, 2]
    nll = nll_all.gather(-1, target[..., None])[..., 0]  # [B, K]
    wk = w[torch.arange(labels.shape[1], device=pred.device)[None, :].expand_as(target), target]
    wk = wk * valid.float()
    smooth = (nll_all * w[None]).sum(dim=-1) / 2.0 * valid.float()  # [B, K]: sum_c w_c nll_c / C
    total = (1.0 - label_smoothing) * (wk * nll) + label_smoothing * smooth
    return total.sum() / wk.sum().clamp(min=1e-12)
