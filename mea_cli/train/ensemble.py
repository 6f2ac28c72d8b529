"""Several checkpoints as one model: their predictions averaged (``mea eval CKPT CKPT ...``).

Seeds of one model disagree on small data (on Emo-DB's ten speakers, averaging three MEA
seeds' class probabilities raised the cross-validated test macro-F1 from 0.530 to 0.587,
docs/performance.md); the average of independently trained networks is the standard way to
remove that variance (Lakshminarayanan et al., "Simple and scalable predictive uncertainty
estimation using deep ensembles", NeurIPS 2017). How outputs are averaged follows the task:

* regression ``[N, 1]``: the mean of the predictions (each in the label's own units);
* single-label classification ``[N, C]`` logits: the mean of the softmax probabilities,
  returned as its logarithm, so the argmax is the class of highest mean probability and the
  metrics, which read logits, read log-probabilities (equal up to a per-row constant, which
  neither the argmax nor the softmax sees);
* binary multi-label ``[N, K, 2]`` logits: the same per label, over its two classes.

Averaging logits instead would let one over-confident member outvote the others; averaging
probabilities is what the deep-ensembles paper does.

Members must agree on what they predict (task, label names, range, dataset) and must have
been trained on the same feature store (its recorded SHA-256), so that one split means the
same samples for all of them: a test sample can never be another member's training sample.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mea_cli.errors import MeaError
from mea_cli.train.setup import open_checkpoint

CLASS_TASKS = ("multiclass", "binary-multilabel")


class EnsembleError(MeaError):
    """Checkpoints that cannot be averaged into one model."""


def average_predictions(task: str, preds: Sequence[np.ndarray]) -> np.ndarray:
    """One prediction array from the members' ``preds`` (same shape, same sample order), as
    the module docstring says for ``task``."""
    if not preds:
        raise ValueError("no predictions to average")
    shapes = {p.shape for p in preds}
    if len(shapes) != 1:
        raise ValueError(f"members' predictions differ in shape: {sorted(shapes)}")
    stack = np.stack([np.asarray(p, np.float64) for p in preds])
    if task == "regression":
        return stack.mean(0)
    if task in CLASS_TASKS:  # log of the mean probability, in log space: finite however confident
        shifted = stack - stack.max(axis=-1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        return np.logaddexp.reduce(log_probs, axis=0) - np.log(len(preds))
    raise ValueError(f"no ensemble rule for task {task!r}")


def check_members(members: Sequence[tuple[Path, Any]]) -> None:
    """Refuse checkpoints that predict different things or were trained on different stores;
    ``members`` are ``(path, checkpoint)`` pairs (:class:`mea_cli.artifacts.checkpoint`)."""
    first_path, first = members[0]

    def what(ckpt: Any) -> dict[str, Any]:
        return {
            "task": ckpt.task,
            "label names": tuple(ckpt.label_names),
            "label range": None if ckpt.label_range is None else tuple(ckpt.label_range),
            "dataset": ckpt.dataset,
            "training store (sha256)": ckpt.features.get("sha256", ""),
        }

    want = what(first)
    if not want["training store (sha256)"]:
        raise EnsembleError(f"{first_path}: records no training store digest; cannot check it")
    for path, ckpt in members[1:]:
        got = what(ckpt)
        for key, value in want.items():
            if got[key] != value:
                raise EnsembleError(
                    f"{path}: its {key} ({got[key]}) is not {first_path}'s ({value}); the "
                    "checkpoints of an ensemble must predict the same labels and be trained on "
                    "the same store"
                )


def open_members(given: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[tuple[Path, Any]]:
    """The ``(path, checkpoint)`` of each given checkpoint or run directory, loaded; several are
    checked to form one ensemble (:func:`check_members`)."""
    paths = [given] if isinstance(given, (str, os.PathLike)) else list(given)
    members = [open_checkpoint(p) for p in paths]
    if len(members) > 1:
        check_members(members)
    return members


def ensemble_models(members: Sequence[tuple[Path, Any]]) -> str:
    """The members' model names, each once, in the order given: ``mea`` or ``mea+mult``."""
    return "+".join(dict.fromkeys(ckpt.model for _, ckpt in members))


def names(members: Sequence[tuple[Path, Any]]) -> tuple[str, str, list[str]]:
    """How a result names what made it: ``(checkpoint, model, member paths)``; one member is
    itself (its path, its model, no member list), several are "ensemble of N"."""
    path, ckpt = members[0]
    if len(members) == 1:
        return str(path), ckpt.model, []
    n = len(members)
    return f"ensemble of {n} checkpoints", f"{ensemble_models(members)} (ensemble of {n})", [
        str(p) for p, _ in members
    ]


def averaged_line(task: str, members: Sequence[str], psi: bool = False) -> str:
    """The line printed under an ensemble's table: what was averaged, over which checkpoints."""
    what = "predictions" if task == "regression" else "class probabilities"
    return (
        f"ensemble: the {what}{' and the weights psi' if psi else ''} of {len(members)} "
        "checkpoints averaged: " + ", ".join(members)
    )
