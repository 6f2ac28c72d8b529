"""MCR's self-cross attention reinforcement unit (SCU, MCR paper Sec. 3.3.2, Eq. 6-11).

For a target ``t`` and the concatenated sources ``Z_ds = [Z_s1, Z_s2]`` (one layer)::

    Z_{ds->t} = CA^mul(LN(Z_ds), LN(Z_t))                              Eq. 7
    Z'_t      = SA^mul(LN(Z_t))                                        Eq. 8
    beta_*    = U^T (W_* vec(Z_*) + b_*)        * in {ds->t, t}         Eq. 9
    gamma_*   = exp(beta_*) / sum_* exp(beta_*)                        Eq. 10
    Z_tb      = sum_* gamma_* Z_*                                      Eq. 11
    Z_tb     <- Z_tb + FFN(LN(Z_tb))            (the FFN with skip connection after Eq. 11)

Decisions (``docs/models/mcr.md``):

* **The attention layer (Eq. 9).** Literally ``W_* in R^{T_t d x T_t d}``, ``b_*, U in R^{T_t d}``:
  parameters tied to a fixed ``T_t`` (and 4 x 10^8 of them per matrix for vision at
  ``T = 500``, ``d = 40``). Default (length-agnostic, same role, as MEA's WAL does here):
  ``W_*`` block-diagonal with one shared ``d x d`` block, ``b_*`` one ``d`` bias repeated per step,
  ``U`` one ``d`` vector repeated per step and divided by the number of real target steps, i.e.
  ``beta_* = mean_t u^T (W_* z_t + b_*)`` over the real steps. As printed there is no
  nonlinearity between ``W_*`` and ``U`` (unlike MEA's WAL, Eq. 5, which has a ``tanh``); we keep
  the printed form. No literal form is offered: without a nonlinearity ``U^T W_*`` collapses to
  one ``T_t d`` vector, so the ``(T_t d)^2`` matrix adds parameters (10^8 to 10^9 at the
  benchmark lengths) but no function; see the docs.
* ``gamma_*`` is one scalar per sample and branch (Eq. 10 normalises over the two branches), so
  ``⊙`` in Eq. 11 is a scalar product.
* ``CA^mul`` / ``SA^mul`` are MEA's bias-free multi-head attention (:class:`QKV` and
  :func:`~mea_cli.models.layers.attention.attend`, no output projection), with one LayerNorm for ``Z_t`` shared by both branches and one for ``Z_ds``;
  concatenated sources keep their masks, so padding between ``Z_s1`` and ``Z_s2`` is ignored.
"""

from __future__ import annotations

import torch
from torch import nn

from mea_cli.models.core.masking import apply_mask, masked_mean
from mea_cli.models.layers.attention import QKV, SkipFeedForward, attend


class BranchAttention(nn.Module):
    """Eq. 9-11 in the length-agnostic form: ``beta_* = mean_t u^T (W_* z_t + b_*)``."""

    def __init__(self, d: int, branches: int = 2) -> None:
        super().__init__()
        self.W = nn.ModuleList(nn.Linear(d, d) for _ in range(branches))  # W_*, b_*
        self.U = nn.Linear(d, 1, bias=False)  # U, shared by the branches

    def forward(
        self, zs: list[torch.Tensor], mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``sum_* gamma_* Z_*`` and ``gamma [B, branches]``."""
        beta = torch.cat(
            [masked_mean(self.U(w(z)), mask) for w, z in zip(self.W, zs, strict=True)], dim=-1
        )  # Eq. 9
        gamma = torch.softmax(beta, dim=-1)  # Eq. 10
        mixed = sum(gamma[:, i, None, None] * z for i, z in enumerate(zs))  # Eq. 11
        return mixed, gamma


class SCU(nn.Module):
    """One self-cross attention reinforcement unit ``SCU_{[s1,s2]->t}`` (Eq. 6-11).

    ``attention_layer=False`` is Table 5's "w/o Attention Layer": the two branches are added
    (Eq. 11 with ``gamma = 1`` each, the element-wise sum the paper uses for its other merges).
    """

    def __init__(
        self,
        d: int,
        heads: int,
        dropout: float,
        attn_dropout: float,
        ffn_mult: int,
        attention_layer: bool = True,
    ) -> None:
        super().__init__()
        self.ln_sources = nn.LayerNorm(d)
        self.ln_target = nn.LayerNorm(d)
        self.cross = QKV(d, heads)
        self.self_attn = QKV(d, heads)
        self.branch = BranchAttention(d) if attention_layer else None
        self.attn_drop = nn.Dropout(attn_dropout)
        self.drop = nn.Dropout(dropout)
        self.ffn = SkipFeedForward(d, ffn_mult, dropout)

    def forward(
        self,
        sources: torch.Tensor,
        source_mask: torch.Tensor,
        target: torch.Tensor,
        target_mask: torch.Tensor,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Return ``Z_tb^{[i+1]} [B, Tt, d]``, the cross map ``[B, K, Tt, Ts1+Ts2]`` and the
        self map ``[B, K, Tt, Tt]`` (maps only with ``need_weights``)."""
        t = self.ln_target(target)
        s = self.ln_sources(sources)
        cross, a_cross = attend(
            self.cross, t, s, target_mask, source_mask, self.attn_drop, need_weights
        )  # Eq. 7
        own, a_self = attend(
            self.self_attn, t, t, target_mask, target_mask, self.attn_drop, need_weights
        )  # Eq. 8
        branches = [apply_mask(self.drop(cross), target_mask), apply_mask(self.drop(own), target_mask)]
        if self.branch is not None:
            z, _ = self.branch(branches, target_mask)  # Eq. 9-11
        else:
            z = branches[0] + branches[1]
        return apply_mask(self.ffn(z), target_mask), a_cross, a_self
