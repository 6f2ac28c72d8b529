"""The typed output of a model's forward pass (shared by MEA and the peer models)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class ModelOutput:
    """What ``model(batch)`` returns.

    Attributes:
        pred: regression ``[B, 1]``; binary multi-label with ``K`` labels: logits ``[B, K, 2]``.
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
