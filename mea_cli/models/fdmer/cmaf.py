"""FDMER's cross-modal attention fusion, CMAF (Sec. 3.4, Eq. 12-17), and Table 4's simple fusions.

Tokens: ``C = sum_m C_m`` and the private ``P_t, P_a, P_v``, each ``d_k`` wide (the ablation
switches may leave fewer, or fuse the pooled transformer features instead).

*Phase 1, cross-modal interaction* (Eq. 12-14), for every target token ``F_ta``::

    G_ta = LN_ta(F_ta) W_G_ta,   Q_so = LN_so(F_so) W_Q,   U_so = LN_so(F_so) W_U
    F_so->ta = softmax(G_ta Q_so^T) U_so                                   Eq. 12
    Y_ta = LN_ta(F_ta) + F_so->ta                                          Eq. 13
    Y_ta = f_delta(LN(Y_ta)) + Y_ta                                        Eq. 14

*Phase 2, adaptive attention* (Eq. 15-17)::

    mu_ta = q^T tanh(W_ta Y_ta + b_ta),  psi = softmax_ta(mu),  Y_fin = sum_ta psi_ta Y_ta

Decisions (``docs/models/fdmer.md``):

* **Eq. 12 does not type-check as printed**: ``F_so = [C, P_t, P_a, P_v] in R^{4 d_k}`` with
  ``W_Q, W_U in R^{4d_k x 4d_k}`` makes ``Q_so`` a ``4 d_k`` vector, which cannot multiply the
  ``d_k``-wide ``G_ta``, and a softmax over one scalar would be 1. We read the source as **four
  tokens** ``F_so in R^{4 x d_k}`` with ``W_Q, W_U in R^{d_k x d_k}``: ``G_ta Q_so^T`` is then a
  score per source token, the softmax chooses among the four representations, and
  ``F_so->ta in R^{d_k}`` as Eq. 12 states. ``LN(F_so)`` is one LayerNorm applied to each token.
* **No ``1/sqrt(d_k)``**: Eq. 12 has none (the Transformer [45] it is inspired by has one); we
  keep the printed form. One head, as printed.
* ``W_G``, ``LN(F_ta)`` (used in Eq. 12 and 13), ``W_ta`` and ``b_ta`` are per target (their
  subscripts); ``W_Q``, ``W_U``, ``LN(F_so)``, ``f_delta`` with its LayerNorm and ``q`` are
  shared. ``f_delta``: ``d_k -> ffn_mult d_k -> d_k`` with GeLU (MEA's
  :class:`~mea_cli.models.layers.attention.FeedForward`).
* **Absent tokens.** A sample whose sequence of modality ``m`` is empty has no ``P_m`` of its
  own (only the encoder's response to zeros): that token is masked, as a key in Eq. 12 and in
  the softmax of Eq. 16, so it neither informs the other tokens nor enters ``Y_fin``. ``C`` sums
  the common representations of the modalities present, and is masked when none is. A sample
  with nothing at all fuses to zeros. The simple fusions zero absent tokens (the product skips
  them).
* With a **single token** (Table 4's "w/o Private"), both softmaxes are over one item and equal
  1: the projections that only feed them (``W_G``, ``W_Q``, phase 2) would have no effect, so
  they are not built.
* **w/o Phase 1**: ``Y_ta = F_ta``. **w/o Phase 2**: equal weights over the tokens present
  (the mean). **w/o CMAF**: concatenation. **Addition / Multiplication**: element-wise sum /
  product of the tokens (the paper cites [33] for multiplicative fusion, whose loss-level
  combination it does not describe; we take the element-wise product, like MEA's Table V row).
"""

from __future__ import annotations

import torch
from torch import nn

from mea_cli.models.core.masking import masked_softmax
from mea_cli.models.layers.attention import FeedForward


class CrossModalInteraction(nn.Module):
    """Phase 1 (Eq. 12-14) for tokens ``[B, K, d_k]``; ``valid [B, K]`` marks present tokens."""

    def __init__(self, tokens: tuple[str, ...], d_k: int, ffn_mult: int, dropout: float) -> None:
        super().__init__()
        self.tokens = tuple(tokens)
        self.norm = nn.ModuleDict({t: nn.LayerNorm(d_k) for t in self.tokens})  # LN(F_ta)
        attend = len(self.tokens) > 1
        self.g = (
            nn.ModuleDict({t: nn.Linear(d_k, d_k, bias=False) for t in self.tokens})
            if attend
            else None
        )
        self.q = nn.Linear(d_k, d_k, bias=False) if attend else None
        self.source_norm = nn.LayerNorm(d_k)  # LN(F_so), per token
        self.u = nn.Linear(d_k, d_k, bias=False)
        self.ffn_norm = nn.LayerNorm(d_k)
        self.ffn = FeedForward(d_k, ffn_mult, dropout)

    def forward(
        self, f: torch.Tensor, valid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``Y [B, K, d_k]`` and the Eq. 12 weights ``[B, K_target, K_source]``."""
        source = self.source_norm(f)
        normed = torch.stack([self.norm[t](f[:, i]) for i, t in enumerate(self.tokens)], dim=1)
        keys = valid[:, None, :]
        if self.g is not None and self.q is not None:
            g = torch.stack([self.g[t](normed[:, i]) for i, t in enumerate(self.tokens)], dim=1)
            weights = masked_softmax(g @ self.q(source).transpose(1, 2), keys)  # Eq. 12
        else:  # one token: the softmax over it is 1 (0 when it is absent)
            weights = keys.to(f.dtype)
        y = normed + weights @ self.u(source)  # Eq. 13
        y = self.ffn(self.ffn_norm(y)) + y  # Eq. 14
        return y, weights


class AdaptiveAttention(nn.Module):
    """Phase 2 (Eq. 15-17): a weight per token from one shared vector ``q``."""

    def __init__(self, tokens: tuple[str, ...], d_k: int) -> None:
        super().__init__()
        self.tokens = tuple(tokens)
        self.proj = nn.ModuleDict({t: nn.Linear(d_k, d_k) for t in self.tokens})  # W_ta, b_ta
        self.q = nn.Linear(d_k, 1, bias=False)

    def forward(self, y: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """``psi [B, K]`` (Eq. 16): a distribution over the present tokens (zeros if none)."""
        mu = torch.cat(
            [self.q(torch.tanh(self.proj[t](y[:, i]))) for i, t in enumerate(self.tokens)], dim=1
        )  # Eq. 15
        return masked_softmax(mu, valid)


class CMAF(nn.Module):
    """Eq. 12-17 (either phase may be switched off): tokens -> ``Y_fin [B, d_k]``."""

    def __init__(
        self,
        tokens: tuple[str, ...],
        d_k: int,
        ffn_mult: int,
        dropout: float,
        interaction: bool = True,
        adaptive: bool = True,
    ) -> None:
        super().__init__()
        self.interaction = (
            CrossModalInteraction(tokens, d_k, ffn_mult, dropout) if interaction else None
        )
        self.attention = AdaptiveAttention(tokens, d_k) if adaptive and len(tokens) > 1 else None
        self.out_dim = d_k

    def forward(self, f: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``f [B, K, d_k]``, ``valid [B, K]`` -> ``Y_fin [B, d_k]`` and ``psi [B, K]``."""
        y = f if self.interaction is None else self.interaction(f, valid)[0]
        if self.attention is not None:
            psi = self.attention(y, valid)
        else:  # equal weights over the present tokens
            w = valid.to(f.dtype)
            psi = w / w.sum(dim=1, keepdim=True).clamp_min(1.0)
        return (psi.unsqueeze(-1) * y).sum(dim=1), psi  # Eq. 17


def simple_fusion(kind: str, f: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Table 4's alternatives to CMAF: ``concat`` ``[B, K d_k]``, ``add`` / ``mul`` ``[B, d_k]``
    (absent tokens are zeros in the concatenation and the sum, and skipped by the product)."""
    keep = valid.unsqueeze(-1)
    if kind == "concat":
        return (f * keep.to(f.dtype)).flatten(1)
    if kind == "add":
        return (f * keep.to(f.dtype)).sum(dim=1)
    if kind == "mul":
        return torch.where(keep, f, torch.ones_like(f)).prod(dim=1)
    raise ValueError(f"unknown fusion {kind!r}")
