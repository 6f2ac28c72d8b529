"""MCR's cross-mutual attention reinforcement unit (CMU, MCR paper Sec. 3.3.1, Eq. 2-5).

For a target ``t`` and its two sources ``s1``, ``s2`` (one layer)::

    Q_t = LN(Z_t W_Q),  K_* = LN(Z_* W_K*),  V_* = LN(Z_* W_V*)         * in {s1, s2}
    E_{*->t} = Q_t K_*^T / sqrt(d / K)                                    [Tt, T*] per head
    Ê_{s1->t} = Map_{s1->s2}(E_{s1->t})  [Tt, Ts2],  Ê_{s2->t} = Map_{s2->s1}(E_{s2->t})  [Tt, Ts1]
    alpha = softmax([Z_s1, Z_s2] 1)  over the real steps of both sources     Eq. 3
    Z_{s1->t} = softmax(E_{s1->t} + alpha_s1 ⊙ Ê_{s2->t}) V_s1              Eq. 4
    Z_{s2->t} = softmax(E_{s2->t} + alpha_s2 ⊙ Ê_{s1->t}) V_s2              Eq. 5
    Z_ta = LN(Z_t) + Z_{s1->t} + Z_{s2->t};  Z_ta <- Z_ta + FFN(LN(Z_ta))   (Sec. 3.3.1, last lines)

Decisions (``docs/models/mcr.md``):

* **The mutual map** ("both crossmodal interactions exchange dimensions in the direction of the
  source sequence via a 1D convolutional layer"). Literally, a ``Conv1d`` over the target time
  axis with ``T_s1`` input and ``T_s2`` output channels: its parameters are tied to fixed source
  lengths and to absolute step indices, which unaligned, variable-length sequences do not have.
  Default (length-agnostic, same role): the source axis of ``E_{s1->t}`` is resampled onto the
  other source's axis by *relative time* (both sources cover the same utterance: step ``j`` of
  ``n2`` real steps sits at the fraction ``(j + 0.5) / n2``), with a triangular (linear
  interpolation, anti-aliased when shrinking) kernel over the real steps of each sample
  (:func:`relative_resampling`), then a learnable ``k x k`` ``Conv2d`` over (target step, source
  step) with the ``K`` heads as channels maps the result (the learnable part; the same kind of
  layer as MEA's PSA prediction chain). ``cmu_literal=True`` builds the paper's ``Conv1d``
  (``T_s1 -> T_s2`` channels, kernel ``k`` over the target axis, shared by the heads) for fixed
  maximum lengths (:class:`LiteralMutualMap`); sequences longer than those are refused.
* ``alpha_s1 ⊙ Ê_{s2->t}``: ``alpha_s1`` is ``[T_s1, 1]`` and ``Ê_{s2->t}`` is ``[T_t, T_s1]``;
  we weigh each *column* (source step ``j``) by ``alpha_s1[j]``, the only product the shapes
  allow. ``alpha`` is one distribution over the ``T_s1 + T_s2`` real steps of both sources
  (Eq. 3), shared by the heads; padding takes no share.
* Multi-head: ``d`` is split into the Table 1 heads like everywhere else in the package
  (``E`` scaled by ``sqrt(d / K)``); ``LN`` after each projection normalises all ``d`` channels
  before the split; one query projection ``W_Q`` serves both sources (the paper writes one
  ``Q_t``), which is why MEA's :class:`~mea_cli.models.layers.attention.QKV` (one ``W_Q`` per pair,
  no normalisation after the projection) is not used here.
* The feed-forward layer with skip connection is MEA's pre-LN form ``Z + FFN(LN(Z))``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from mea_cli.errors import MeaError
from mea_cli.models.core.masking import apply_mask, masked_softmax, pair_mask
from mea_cli.models.layers.attention import SkipFeedForward, merge_heads, split_heads


def source_weights(
    z1: torch.Tensor, m1: torch.Tensor, z2: torch.Tensor, m2: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 3: ``alpha = softmax([Z_s1, Z_s2] 1)`` over the real steps of both sources.

    ``z* [B, T*, d]``, ``m* [B, T*]``. Each step scores the sum of its features (the all-ones
    vector ``I``); the softmax runs over the concatenated real steps of both sources, so the
    returned ``alpha_s1 [B, T1]`` and ``alpha_s2 [B, T2]`` together sum to 1 per sample (0 at
    padded steps; all zeros when both sources are empty). Parameter-free.
    """
    scores = torch.cat([z1.sum(dim=-1), z2.sum(dim=-1)], dim=1)
    alpha = masked_softmax(scores, torch.cat([m1, m2], dim=1))
    return alpha[:, : z1.shape[1]], alpha[:, z1.shape[1] :]


def relative_resampling(src_mask: torch.Tensor, dst_mask: torch.Tensor) -> torch.Tensor:
    """``R [B, T_src, T_dst]``: maps a source time axis onto another by relative time.

    For a sample with ``n`` real source and ``m`` real destination steps, destination step ``j``
    sits at source position ``c_j = (j + 0.5) n / m - 0.5``; its column holds the triangular
    weights ``max(0, 1 - |i - c_j| / w)`` over the real source steps ``i``, with
    ``w = max(1, n / m)``, normalised to sum to 1. ``n = m`` gives the identity, ``n < m``
    linear interpolation, ``n > m`` an anti-aliased (averaging) linear interpolation. Padded
    rows and columns are 0, and so is every column when ``n = 0`` (nothing to map).
    """
    dtype = torch.float32
    n = src_mask.sum(dim=1).to(dtype)[:, None, None]  # [B, 1, 1]
    m = dst_mask.sum(dim=1).to(dtype).clamp_min(1.0)[:, None, None]
    i = torch.arange(src_mask.shape[1], device=src_mask.device, dtype=dtype)[None, :, None]
    j = torch.arange(dst_mask.shape[1], device=dst_mask.device, dtype=dtype)[None, None, :]
    centre = (j + 0.5) * n / m - 0.5
    width = torch.clamp(n / m, min=1.0)
    w = torch.clamp(1.0 - (i - centre).abs() / width, min=0.0)
    w = w * src_mask[:, :, None].to(dtype)
    total = w.sum(dim=1, keepdim=True)
    # a column whose centre lies beyond the border (c_j < 0 or > n - 1) still reaches the
    # nearest real step unless n = 0; the clamp only guards the division
    w = w / total.clamp_min(1e-12)
    return w * dst_mask[:, None, :].to(dtype)


class MutualMap(nn.Module):
    """The length-agnostic mutual map: relative-time resampling, then a ``k x k`` Conv2d.

    ``forward(E [B, K, Tt, Ts], t_mask, src_mask, dst_mask) -> Ê [B, K, Tt, Td]``; padded
    (target, source) pairs are zeroed before the convolution (so it sees zeros there, as beyond
    the border) and padded (target, destination) pairs are zero in the result.
    """

    def __init__(self, heads: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(heads, heads, kernel, padding=kernel // 2)

    def forward(
        self,
        e: torch.Tensor,
        t_mask: torch.Tensor,
        src_mask: torch.Tensor,
        dst_mask: torch.Tensor,
    ) -> torch.Tensor:
        e = e.masked_fill(~pair_mask(t_mask, src_mask), 0.0)
        r = relative_resampling(src_mask, dst_mask).to(e.dtype)
        mapped = e @ r[:, None]  # [B, K, Tt, Td]
        return self.conv(mapped).masked_fill(~pair_mask(t_mask, dst_mask), 0.0)


class LiteralMutualMap(nn.Module):
    """The paper's mutual map: ``Conv1d`` over the target axis, ``T_src -> T_dst`` channels.

    The channels are the source steps ``0 .. src_len - 1`` and the destination steps
    ``0 .. dst_len - 1`` of a fixed-length sequence (padded with zeros up to that length); the
    kernel of ``k`` target steps is shared by the heads. A sample with more real steps than the
    fixed length is refused (:class:`~mea_cli.errors.MeaError`).
    """

    def __init__(self, kernel: int, src_len: int, dst_len: int, names: tuple[str, str]) -> None:
        super().__init__()
        self.src_len, self.dst_len, self.names = int(src_len), int(dst_len), names
        self.conv = nn.Conv1d(self.src_len, self.dst_len, kernel, padding=kernel // 2)

    def forward(
        self,
        e: torch.Tensor,
        t_mask: torch.Tensor,
        src_mask: torch.Tensor,
        dst_mask: torch.Tensor,
    ) -> torch.Tensor:
        for mask, limit, name in ((src_mask, self.src_len, self.names[0]),
                                  (dst_mask, self.dst_len, self.names[1])):  # fmt: skip
            longest = int(mask.sum(dim=1).max()) if mask.numel() else 0
            if longest > limit:
                raise MeaError(
                    f"the literal CMU convolution (cmu_literal) takes at most {limit} {name} "
                    f"steps, but a sample has {longest}; raise literal_lengths or use the "
                    f"default length-agnostic form"
                )
        b, k, tt, ts = e.shape
        e = e.masked_fill(~pair_mask(t_mask, src_mask), 0.0)
        e = F.pad(e[..., : self.src_len], (0, max(0, self.src_len - ts)))  # [B, K, Tt, src_len]
        x = e.reshape(b * k, tt, self.src_len).transpose(1, 2)  # channels = source steps
        out = self.conv(x).transpose(1, 2).reshape(b, k, tt, self.dst_len)
        td = dst_mask.shape[1]
        out = F.pad(out[..., :td], (0, max(0, td - self.dst_len)))
        return out.masked_fill(~pair_mask(t_mask, dst_mask), 0.0)


class CMU(nn.Module):
    """One cross-mutual attention reinforcement unit ``CMU_{s1,s2->t}`` (Eq. 2-5).

    ``mutual=False`` is Table 5's "w/o Mutual Attention": no maps, no ``alpha``, and Eq. 4-5
    reduce to ``softmax(E_{*->t}) V_*``. ``literal`` = ``(T_s1, T_s2)`` fixed lengths builds
    :class:`LiteralMutualMap` instead of :class:`MutualMap`.
    """

    def __init__(
        self,
        d: int,
        heads: int,
        dropout: float,
        attn_dropout: float,
        ffn_mult: int,
        mutual: bool = True,
        kernel: int = 3,
        literal: tuple[int, int] | None = None,
        source_names: tuple[str, str] = ("s1", "s2"),
    ) -> None:
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(d, d, bias=False)
        self.ln_query = nn.LayerNorm(d)
        self.key = nn.ModuleList(nn.Linear(d, d, bias=False) for _ in range(2))
        self.ln_key = nn.ModuleList(nn.LayerNorm(d) for _ in range(2))
        self.value = nn.ModuleList(nn.Linear(d, d, bias=False) for _ in range(2))
        self.ln_value = nn.ModuleList(nn.LayerNorm(d) for _ in range(2))
        self.mutual: nn.ModuleList | None = None
        if mutual:  # mutual[0]: s1's logits onto s2's axis; mutual[1]: s2's onto s1's
            if literal is None:
                self.mutual = nn.ModuleList(MutualMap(heads, kernel) for _ in range(2))
            else:
                a, b = source_names
                self.mutual = nn.ModuleList(
                    (
                        LiteralMutualMap(kernel, literal[0], literal[1], (a, b)),
                        LiteralMutualMap(kernel, literal[1], literal[0], (b, a)),
                    )
                )
        self.ln_target = nn.LayerNorm(d)
        self.attn_drop = nn.Dropout(attn_dropout)
        self.drop = nn.Dropout(dropout)
        self.ffn = SkipFeedForward(d, ffn_mult, dropout)

    def logits(
        self, sources: tuple[torch.Tensor, torch.Tensor], target: torch.Tensor
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """``E_{s1->t}, E_{s2->t}`` ``[B, K, Tt, T*]`` and the values ``V_* [B, K, T*, d/K]``."""
        q = split_heads(self.ln_query(self.query(target)), self.heads)
        scale = 1.0 / math.sqrt(q.shape[-1])
        es, vs = [], []
        for j, z in enumerate(sources):
            k = split_heads(self.ln_key[j](self.key[j](z)), self.heads)
            vs.append(split_heads(self.ln_value[j](self.value[j](z)), self.heads))
            es.append((q @ k.transpose(-1, -2)) * scale)
        return es, vs

    def forward(
        self,
        sources: tuple[torch.Tensor, torch.Tensor],
        source_masks: tuple[torch.Tensor, torch.Tensor],
        target: torch.Tensor,
        target_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Return ``Z_ta^{[i+1]} [B, Tt, d]`` and the two attention maps ``[B, K, Tt, T*]``."""
        es, vs = self.logits(sources, target)
        m1, m2 = source_masks
        if self.mutual is not None:
            a1, a2 = source_weights(sources[0], m1, sources[1], m2)  # Eq. 3
            hat1 = self.mutual[0](es[0], target_mask, m1, m2)  # Ê_{s1->t} [Tt, Ts2]
            hat2 = self.mutual[1](es[1], target_mask, m2, m1)  # Ê_{s2->t} [Tt, Ts1]
            es = [es[0] + a1[:, None, None, :] * hat2, es[1] + a2[:, None, None, :] * hat1]
        maps, out = [], 0.0
        for e, v, m in zip(es, vs, source_masks, strict=True):
            attn = masked_softmax(e, pair_mask(target_mask, m))  # Eq. 4 / Eq. 5
            maps.append(attn)
            out = out + merge_heads(self.attn_drop(attn) @ v)
        z = self.ln_target(target) + self.drop(out)
        return apply_mask(self.ffn(z), target_mask), maps
