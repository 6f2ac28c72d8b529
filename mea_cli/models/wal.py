"""Weighted Attention Layer (Sec. III-C, Eq. 5-6), applied after every PSA layer.

Eq. 5 flattens ``Z^e_m [T_m, d]`` into a ``T_m d`` vector and scores it with
``gamma_m = P_m^T tanh(W_m vec(Z^e_m) + b_m)``; Eq. 6 takes a softmax over the three modalities,
``psi_m = exp(gamma_m) / sum exp(gamma_m')``, and ``Z^e_m <- psi_m Z^e_m``.

The literal ``W_m`` is ``(T_m d) x (T_m d)``: 4 x 10^8 parameters for vision at ``T = 500``,
``d = 40``, and it needs a fixed ``T_m``, which unaligned, variable-length data do not have.

* **Default (length-agnostic)**: ``W_m`` is block-diagonal with one shared ``d x d`` block,
  ``b_m`` repeats one ``d`` bias, and ``P_m`` repeats one ``d`` vector divided by the number of
  real steps. Eq. 5 then reads ``gamma_m = mean_t p_m^T tanh(W_m z_t + b_m)`` over the real steps
  only: the same functional form, per-modality parameters, any length, masks respected.
* **Literal** (``wal_literal=True``): the full matrices for a fixed ``wal_max_len`` ``T``; every
  sequence is zero-padded to ``T`` before flattening (a longer one is an error). Only sensible
  for short fixed lengths (``T = 50``: 4 x 10^6 parameters per modality and layer).

A modality with no real step in a sample (zero-length sequence) takes no share of ``psi``: its
score is the most negative number, so the other modalities' weights still sum to 1 (if all three
are empty the weights are uniform and multiply zeros).
"""

from __future__ import annotations

import torch
from torch import nn

from mea_cli.errors import MeaError
from mea_cli.models.masking import masked_mean


class WeightedAttentionLayer(nn.Module):
    """Eq. 5-6 over all modalities at one PSA depth; returns the weighted maps and ``psi``."""

    def __init__(
        self,
        modalities: tuple[str, ...],
        d: int,
        literal: bool = False,
        max_len: int = 50,
    ) -> None:
        super().__init__()
        self.modalities = tuple(modalities)
        self.literal = literal
        self.max_len = int(max_len)
        width = d * self.max_len if literal else d
        self.W = nn.ModuleDict({m: nn.Linear(width, width) for m in self.modalities})
        self.P = nn.ModuleDict({m: nn.Linear(width, 1, bias=False) for m in self.modalities})

    def score(self, m: str, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``gamma_m [B]`` of Eq. 5 for modality ``m``."""
        if self.literal:
            b, t, d = z.shape
            if t > self.max_len:
                raise MeaError(
                    f"the literal weighted attention layer (wal_literal) takes at most "
                    f"wal_max_len={self.max_len} steps, but {m} has {t}; raise wal_max_len or "
                    f"use the default length-agnostic form"
                )
            flat = torch.cat([z, z.new_zeros(b, self.max_len - t, d)], dim=1).reshape(b, -1)
            return self.P[m](torch.tanh(self.W[m](flat))).squeeze(-1)
        per_step = self.P[m](torch.tanh(self.W[m](z)))  # [B, T, 1]
        return masked_mean(per_step, mask).squeeze(-1)

    def forward(
        self, zs: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Return ``({m: psi_m Z^e_m}, psi [B, M])`` with ``psi`` in ``self.modalities`` order."""
        gammas = []
        for m in self.modalities:
            g = self.score(m, zs[m], masks[m])
            empty = ~masks[m].any(dim=1)
            gammas.append(g.masked_fill(empty, torch.finfo(g.dtype).min))
        psi = torch.softmax(torch.stack(gammas, dim=-1), dim=-1)
        out = {m: zs[m] * psi[:, i, None, None] for i, m in enumerate(self.modalities)}
        return out, psi
