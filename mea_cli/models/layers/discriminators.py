"""Double-discriminator adversarial strategy (Sec. III-E3, Eq. 15-16) and gradient reversal.

* **Importance discriminator** ``D_i(h^a_m) = softmax(h^a_m^T W_i)``, ``W_i in R^{d_h x 3}``
  (bias-free, literally). It gives ``omega^a_m = 1 - D_i(h^a_m)[m]``: an agnostic vector that
  ``D_i`` easily attributes to its modality carries little shared information and is weighted
  down in ``L_agn``. The paper does not say how ``D_i`` is trained; we train it with its own
  cross-entropy ``L_imp`` on *detached* ``h^a`` (so it only learns to recognise modalities and
  never pushes the encoders), and ``omega`` is detached inside ``L_agn`` (it is a weight, not a
  path for gradients). ``L_imp`` is added to the total loss; since its input is detached it
  changes no gradient of any other parameter, so Eq. 20 is unchanged for the rest of the model.
* **Modality discriminator** ``D_m``: a two-layer GeLU perceptron ``d_h -> d_h -> 3`` (the paper
  gives no architecture), shared by exclusive and agnostic inputs.
* ``L_agn = -(1/n) sum_m sum_k omega_{m,k} log D_m(GRL(h^a_{m,k}))[m]`` (Eq. 15): a gradient
  reversal layer [68] sits between the agnostic features and ``D_m`` only, so ``D_m`` learns to
  tell the modalities apart while the agnostic encoder learns to make them indistinguishable.
* ``L_exc = -(1/n) sum_m sum_k log D_m(h^e_{m,k})[m]`` (Eq. 16): plain cross-entropy, no
  reversal, so the exclusive features become modality-identifiable.

Both losses sum over the modalities and average over the batch, as written.

Masks: a sample whose sequence of modality ``m`` is empty (no face, no speech) has no
representation of its own, only the encoders' response to a zero vector (for the shared agnostic
encoder, the *same* vector for all three modalities). It carries no modality information for
``D_m`` or ``D_i`` to find or hide, so ``valid[m]`` (``True`` = at least one real step) leaves it
out of ``L_agn``, ``L_exc`` and ``L_imp`` for that modality: each average runs over the ``n_m``
valid samples (0 when there is none, still connected to the graph).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from mea_cli.models.core.masking import valid_mean


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, lambd: float) -> torch.Tensor:  # noqa: ANN001
        ctx.lambd = lambd
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: ANN001
        return -ctx.lambd * grad, None


def grad_reverse(x: torch.Tensor, lambd: float = 1.0) -> torch.Tensor:
    """Identity in the forward pass; multiplies the gradient by ``-lambd`` in the backward."""
    return _GradReverse.apply(x, lambd)


class ModalityDiscriminator(nn.Module):
    """``D_m``: ``d_h -> d_h -> 3`` logits."""

    def __init__(self, d_h: int, n_modalities: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d_h, d_h), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_h, n_modalities)
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


class DoubleDiscriminator(nn.Module):
    """``D_i`` (optional: the ``omega`` switch removes it) and ``D_m``, and their losses."""

    def __init__(
        self,
        modalities: tuple[str, ...],
        d_h: int,
        dropout: float,
        importance: bool = True,
        grl_lambda: float = 1.0,
    ) -> None:
        super().__init__()
        self.modalities = tuple(modalities)
        self.grl_lambda = float(grl_lambda)
        self.modality = ModalityDiscriminator(d_h, len(self.modalities), dropout)
        self.importance = nn.Linear(d_h, len(self.modalities), bias=False) if importance else None

    def _target(self, i: int, h: torch.Tensor) -> torch.Tensor:
        return torch.full((h.shape[0],), i, dtype=torch.long, device=h.device)

    def omega(self, h_a: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``omega^a_m = 1 - D_i(h^a_m)[m]`` per sample (detached); ones without ``D_i``."""
        out = {}
        for i, m in enumerate(self.modalities):
            if self.importance is None:
                out[m] = h_a[m].new_ones(h_a[m].shape[0])
            else:
                p = torch.softmax(self.importance(h_a[m].detach()), dim=-1)[:, i]
                out[m] = (1.0 - p).detach()
        return out

    def forward(
        self,
        h_e: dict[str, torch.Tensor] | None,
        h_a: dict[str, torch.Tensor] | None,
        valid: dict[str, torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Return the loss terms that apply: ``agn`` and ``imp`` (with ``h_a``), ``exc``.

        ``valid[m] [n]`` (optional) marks the samples with a non-empty sequence of ``m``.
        """
        losses: dict[str, torch.Tensor] = {}

        def ok(m: str) -> torch.Tensor | None:
            return None if valid is None else valid[m]

        if h_a is not None:
            omega = self.omega(h_a)
            agn = []
            for i, m in enumerate(self.modalities):
                logp = F.log_softmax(self.modality(grad_reverse(h_a[m], self.grl_lambda)), -1)
                agn.append(valid_mean(-(omega[m] * logp[:, i]), ok(m)))  # Eq. 15
            losses["agn"] = torch.stack(agn).sum()
            if self.importance is not None:
                imp = [
                    valid_mean(
                        F.cross_entropy(
                            self.importance(h_a[m].detach()),
                            self._target(i, h_a[m]),
                            reduction="none",
                        ),
                        ok(m),
                    )
                    for i, m in enumerate(self.modalities)
                ]
                losses["imp"] = torch.stack(imp).sum()
        if h_e is not None:
            exc = [
                valid_mean(
                    F.cross_entropy(
                        self.modality(h_e[m]), self._target(i, h_e[m]), reduction="none"
                    ),
                    ok(m),
                )  # Eq. 16
                for i, m in enumerate(self.modalities)
            ]
            losses["exc"] = torch.stack(exc).sum()
        return losses
