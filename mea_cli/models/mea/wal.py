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

**Where psi acts** (config ``wal_scaling``; ``docs/model.md`` decision 5b). The paper puts a WAL
after every PSA layer and writes ``Z^e_m <- psi_m Z^e_m`` (Eq. 6). The next PSA layer starts
with ``LN(Z^e_m)`` for the attention input *and* the residual (Eq. 3), and a LayerNorm removes
any positive per-sample scale: ``LN(psi Z) = LN(Z)`` up to its epsilon. So with ``M`` layers the
``psi`` of layers ``1..M-1`` change nothing downstream (their parameters get gradients 1e-6 to
1e-4 of the last WAL's); only the last ``psi`` scales what the exclusive encoders see.

* ``wal_scaling="paper"`` (default): exactly that, Eq. 3-6 to the letter, inert WALs included.
  Default because it is the model the paper writes down, the one its numbers are to be compared
  with, and because a configuration saved before the field existed means this form.
* ``wal_scaling="carried"``: every layer's ``psi_l`` acts. Each WAL scores the output of its PSA
  layer as above, but instead of scaling the stream (where the next LayerNorm would undo it),
  the weights are carried to the end of the PSA branch, where no LayerNorm follows, and their
  normalised product ``psi* = prod_l psi_l / sum_m prod_l psi_l = softmax(sum_l gamma_l)``
  scales ``Z^e_m`` before the exclusive encoders (:func:`carried_weights`). This reads Eq. 6 as
  the paper's text intends (Sec. III-C: the WAL after *each* layer "adjusts the contribution of
  each modality"; Fig. 6 shows one such weight triple per sample, summing to one). With one PSA
  layer both forms are the same model.

Both forms have the same parameters; the ``wal`` switch (Table V, w/o WAL) removes every WAL in
both, giving the same model either way.
"""

from __future__ import annotations

import torch
from torch import nn

from mea_cli.errors import MeaError
from mea_cli.models.core.masking import masked_mean

WAL_SCALINGS: tuple[str, ...] = ("paper", "carried")
"""Where the WAL weights act: after every layer (Eq. 6 as written) or carried to the branch end."""


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
            z = z.masked_fill(~mask.to(torch.bool)[..., None], 0.0)  # padded steps score as absent
            flat = torch.cat([z, z.new_zeros(b, self.max_len - t, d)], dim=1).reshape(b, -1)
            return self.P[m](torch.tanh(self.W[m](flat))).squeeze(-1)
        per_step = self.P[m](torch.tanh(self.W[m](z)))  # [B, T, 1]
        return masked_mean(per_step, mask).squeeze(-1)

    def scores(self, zs: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> torch.Tensor:
        """``gamma [B, M]`` (Eq. 5) in ``self.modalities`` order; an empty sequence scores lowest."""
        gammas = []
        for m in self.modalities:
            g = self.score(m, zs[m], masks[m])
            empty = ~masks[m].any(dim=1)
            gammas.append(g.masked_fill(empty, torch.finfo(g.dtype).min))
        return torch.stack(gammas, dim=-1)

    def forward(
        self, zs: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Return ``({m: psi_m Z^e_m}, psi [B, M])`` with ``psi`` in ``self.modalities`` order."""
        psi = torch.softmax(self.scores(zs, masks), dim=-1)  # Eq. 6
        return weigh(zs, psi, self.modalities), psi


def weigh(
    zs: dict[str, torch.Tensor], weights: torch.Tensor, modalities: tuple[str, ...]
) -> dict[str, torch.Tensor]:
    """``{m: w_m Z_m}`` for per-sample weights ``weights [B, M]`` in ``modalities`` order."""
    return {m: zs[m] * weights[:, i, None, None] for i, m in enumerate(modalities)}


def carried_weights(gammas: list[torch.Tensor]) -> torch.Tensor:
    """``psi* [B, M]`` of the carried form: the normalised product of every layer's ``psi``.

    ``prod_l softmax(gamma_l)`` renormalised over modalities is ``softmax(sum_l gamma_l)``; it is
    computed as ``softmax(sum_l log_softmax(gamma_l))`` so that an empty modality (score at the
    dtype's minimum in every layer) keeps weight 0 and a sample with no modality at all gets
    uniform weights, never NaN.
    """
    total = torch.stack([torch.log_softmax(g, dim=-1) for g in gammas]).sum(dim=0)
    return torch.softmax(total, dim=-1)
