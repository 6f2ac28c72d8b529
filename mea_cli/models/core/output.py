"""The typed output of a model's forward pass, and the one place that says what shape the
prediction has for each task (shared by MEA and the peer models).

Every model ends in a layer of :func:`prediction_size` outputs and passes them through
:func:`shape_prediction`; :func:`mea_cli.models.core.losses.task_loss` then scores them. A new
task is added here and in ``task_loss``, and every model follows (docs/models/contract.md).

==================  =====================  ===============================================
task                ``pred``               read as
==================  =====================  ===============================================
regression          ``[B, 1]``             the score
multiclass          ``[B, C]``             one logit per class (softmax: probabilities)
binary-multilabel   ``[B, K, 2]``          two logits per label (absent, present)
==================  =====================  ===============================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


def prediction_size(cfg: Any) -> int:
    """How many numbers a model's last layer outputs for ``cfg.task`` / ``cfg.num_labels``:
    1 (regression), C (multiclass), 2K (binary multi-label)."""
    if cfg.task == "regression":
        return 1
    if cfg.task == "multiclass":
        return int(cfg.num_labels)
    if cfg.task == "binary-multilabel":
        return 2 * int(cfg.num_labels)
    raise ValueError(f"unknown task {cfg.task!r}")


def shape_prediction(raw: torch.Tensor, cfg: Any) -> torch.Tensor:
    """The last layer's ``[B, prediction_size(cfg)]`` output in the contract's shape (table
    in the module docstring)."""
    if raw.shape[-1] != prediction_size(cfg):
        raise ValueError(
            f"the prediction has {raw.shape[-1]} outputs, task {cfg.task} with "
            f"{cfg.num_labels} label(s) needs {prediction_size(cfg)}"
        )
    if cfg.task == "binary-multilabel":
        return raw.reshape(raw.shape[0], int(cfg.num_labels), 2)
    return raw


@dataclass
class ModelOutput:
    """What ``model(batch)`` returns.

    Attributes:
        pred: regression ``[B, 1]``; multiclass with ``C`` classes: logits ``[B, C]``; binary
            multi-label with ``K`` labels: logits ``[B, K, 2]`` (:func:`shape_prediction`).
        loss: the total loss (Eq. 20, plus the importance discriminator's own ``imp`` term, which
            has no gradient path into the rest of the model); ``None`` without labels.
        losses: named terms, detached 0-d tensors (``task``, ``dis`` or ``sep``, ``agn``,
            ``exc``, ``imp``, as the switches allow); empty without labels.
        reps: ``{"exclusive": {m: h^e_m [B, d_h]}, "agnostic": {m: h^a_m [B, d_h]}}`` (a
            branch removed by a switch is absent).
        psi: one ``[B, M]`` tensor of WAL modality weights per PSA layer (modality order
            ``mea_cli.MODALITIES``); empty when the WAL is switched off.
        xi: DGF transfer coefficients per graph (``exclusive`` / ``agnostic``), ``[B, M, M]``.
        attention: maps by name (``psa/<layer>/<m>``, ``hca/<layer>/<t>/<unit>``), each
            ``[B, K, T_query, T_key]``; only when requested.
    """

    pred: torch.Tensor
    loss: torch.Tensor | None = None
    losses: dict[str, torch.Tensor] = field(default_factory=dict)
    reps: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    psi: list[torch.Tensor] = field(default_factory=list)
    xi: dict[str, torch.Tensor] = field(default_factory=dict)
    attention: dict[str, torch.Tensor] | None = None
