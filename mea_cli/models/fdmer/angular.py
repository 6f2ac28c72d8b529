"""FDMER's modality discriminator with an additive angular margin (Sec. 3.3, Eq. 8-11).

* Eq. 8: ``D(h) = softmax(W_D^T F(h))``, ``F(h) = W_F h + b_F`` (``d_k -> d``), ``W_D in R^{d x M}``
  (one column per modality, no bias).
* Eq. 9 (ArcFace [10]): ``h_hat = F(h)`` and every column of ``W_D`` are L2-normalised, so
  ``cos theta_m = W_m^T h_hat``, and
  ``L_am = -log e^{alpha cos(theta_y + tau)} / (e^{alpha cos(theta_y + tau)} + sum_{m != y} e^{alpha cos theta_m})``:
  a cross-entropy over the logits ``alpha cos(theta_y + tau)`` (true modality) and
  ``alpha cos theta_m`` (the others), scale ``alpha = 72``, margin ``tau = 0.5``.
* Eq. 10: ``L_ami = 1/n sum_i sum_m L_am(C_m, y_m)`` through a gradient reversal layer [14]
  (MEA's :func:`~mea_cli.models.layers.discriminators.grad_reverse`): the discriminator learns to
  recognise the modality of a common representation while the encoders learn to hide it.
* Eq. 11: ``L_ams = 1/n sum_i sum_m L_am(P_m, y_m)``, no reversal: private representations
  become recognisable.

Decisions (``docs/models/fdmer.md``):

* **Margin beyond pi.** ``cos(theta + tau)`` stops decreasing in ``theta`` once
  ``theta + tau > pi``, so a worse sample would get a *larger* true-class logit. We use the
  non-"easy" rule of the ArcFace reference implementations: ``cos(theta_y + tau)`` while
  ``cos theta_y > cos(pi - tau)``, else ``cos theta_y - tau sin tau`` (a CosFace-style linear
  penalty that keeps the logit decreasing). ``sin theta`` is
  ``sqrt(max(1 - cos^2 theta, 1e-6))``, so the gradient stays finite at ``theta = 0, pi``.
* **Averages.** As printed: per modality the mean over the batch, summed over modalities. A
  sample whose sequence of modality ``m`` is empty has no representation of its own (only the
  encoders' response to zeros) and is left out of that modality's mean, as in MEA.
* The ``ce`` switch (Table 4's "Cross-Entropy Loss" row) trains the same discriminator with the
  plain cross-entropy of Eq. 8's softmax (no normalisation, margin or scale).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from mea_cli.models.core.masking import valid_mean
from mea_cli.models.layers.discriminators import grad_reverse

SIN_FLOOR = 1e-6
"""Lower bound on ``1 - cos^2`` under the square root (finite gradients at 0 and pi)."""


def angular_margin_logits(
    cos: torch.Tensor, target: torch.Tensor, scale: float, margin: float
) -> torch.Tensor:
    """Eq. 9's logits from cosines ``cos [n, M]`` and true classes ``target [n]``:
    ``scale * cos(theta_y + margin)`` for the true class (``scale * (cos theta_y - margin *
    sin margin)`` past the threshold ``cos theta_y <= cos(pi - margin)``), ``scale * cos
    theta_m`` for the others."""
    cos = cos.clamp(-1.0, 1.0)
    sin = torch.sqrt((1.0 - cos * cos).clamp_min(SIN_FLOOR))
    shifted = cos * math.cos(margin) - sin * math.sin(margin)  # cos(theta + margin)
    shifted = torch.where(cos > math.cos(math.pi - margin), shifted, cos - margin * math.sin(margin))
    true = F.one_hot(target, cos.shape[-1]).to(torch.bool)
    return scale * torch.where(true, shifted, cos)


class AngularModalityDiscriminator(nn.Module):
    """``D`` of Eq. 8 with the angular-margin loss of Eq. 9 (or plain cross-entropy)."""

    def __init__(self, d_k: int, d: int, n_modalities: int, scale: float, margin: float) -> None:
        super().__init__()
        self.f = nn.Linear(d_k, d)  # F(h) = W_F h + b_F
        self.w = nn.Linear(d, n_modalities, bias=False)  # W_D^T (row m = column m of W_D)
        self.scale = float(scale)
        self.margin = float(margin)

    def cosines(self, h: torch.Tensor) -> torch.Tensor:
        """``cos theta_m = W_m^T h_hat / (|W_m| |h_hat|)`` for every modality, ``[n, M]``."""
        return F.normalize(self.f(h), dim=-1) @ F.normalize(self.w.weight, dim=-1).transpose(0, 1)

    def probabilities(self, h: torch.Tensor) -> torch.Tensor:
        """Eq. 8: ``softmax(W_D^T F(h))``, ``[n, M]``."""
        return torch.softmax(self.w(self.f(h)), dim=-1)

    def per_sample_loss(self, h: torch.Tensor, modality: int, margin: bool = True) -> torch.Tensor:
        """``L_am(h, y = modality)`` of Eq. 9 per sample (``margin=False``: Eq. 8's plain
        cross-entropy), ``[n]``."""
        target = torch.full((h.shape[0],), modality, dtype=torch.long, device=h.device)
        if margin:
            logits = angular_margin_logits(self.cosines(h), target, self.scale, self.margin)
        else:
            logits = self.w(self.f(h))
        return F.cross_entropy(logits, target, reduction="none")


def adversarial_losses(
    disc: AngularModalityDiscriminator,
    common: dict[str, torch.Tensor],
    private: dict[str, torch.Tensor],
    valid: dict[str, torch.Tensor] | None = None,
    margin: bool = True,
    grl_lambda: float = 1.0,
) -> dict[str, torch.Tensor]:
    """``L_ami`` (Eq. 10, common representations through gradient reversal) and ``L_ams``
    (Eq. 11, private representations, plain), named ``ami`` / ``ams`` (``ami_ce`` / ``ams_ce``
    with ``margin=False``). The modality label ``y_m`` is ``m``'s position in ``common``."""
    suffix = "" if margin else "_ce"
    ami, ams = [], []
    for i, m in enumerate(common):
        ok = None if valid is None else valid[m]
        ami.append(valid_mean(disc.per_sample_loss(grad_reverse(common[m], grl_lambda), i, margin), ok))
        ams.append(valid_mean(disc.per_sample_loss(private[m], i, margin), ok))
    return {f"ami{suffix}": torch.stack(ami).sum(), f"ams{suffix}": torch.stack(ams).sum()}
