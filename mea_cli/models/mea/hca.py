"""Modality Reinforcement Unit and Hierarchical Cross-modal Attention (Sec. III-D, Eq. 7-10).

MRU (Eq. 7-9), source ``s`` into target ``t``::

    Z_{s->t} = softmax(Q_t K_s^T / sqrt(d / K)) V_s     Q_t = LN(Z_t) W_Q, K_s, V_s = LN(Z_s) W_{K,V}
    Z_t^a    = LN(Z_t) + Z_{s->t}                       Eq. 8
    Z_t^a    = F(LN(Z_t^a)) + Z_t^a                     Eq. 9

HCA for target ``t`` (Eq. 10, written for ``t = L`` in the paper)::

    mixed:   Zh = MRU(Z_LVA, Z_t)          Z_LVA = [Z_L, Z_V, Z_A] concatenated in time
    coarse:  Zc = MRU(Z_{others}, Zh)      e.g. Z_VA = [Z_V, Z_A] for t = L
    fine:    Z^a_t = MRU(Z_s1, Zc) + MRU(Z_s2, Zc)   over the two other modalities

Decisions (``docs/model.md``): the attention is multi-head with the PSA head count; every MRU
has its own parameters (per target, per granularity, per source); concatenated sources carry
their masks, so interior padding between ``Z_V`` and ``Z_A`` is ignored by the masked softmax.
When ``N`` HCA layers are stacked, the *sources* stay the uni-modal extractor outputs ``Z_m``
at every layer and only the target is carried from layer to layer (the cross-modal transformer
convention of MulT [12]; Eq. 10 only defines one layer). The Table V switches ``mru-mixed``,
``mru-coarse`` and ``mru-fine`` remove that unit (its input passes straight through).

Efficient execution (same maths; ``docs/performance.md``): without requested maps every MRU runs
Eq. 7 through ``scaled_dot_product_attention`` (the fused kernel on CPU and GPU when there is no
attention dropout), and an HCA layer built with ``group_budget > 0`` runs on length groups of
samples (:mod:`mea_cli.models.layers.grouping`), each trimmed to its own longest sequences, so that the
kernels skip most padded (query, key) pairs. A stack of layers (:func:`run_grouped`) is cut
into the groups of one plan once and put back once, not once per layer. On CPU with thin
heads an MRU's LayerNorms, projections and attention kernel are one autograd node that
recomputes ``LN(Z), Q, K, V`` in backward, and the FFN's LayerNorm is folded into the FFN node
(:mod:`mea_cli.models.layers.normed_attention`, ``FeedForward.normed``: fewer saved tensors).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint as activation_checkpoint

from mea_cli.models.core.masking import apply_mask, masked_softmax, pair_mask
from mea_cli.models.layers.attention import (
    QKV,
    FeedForward,
    dropout,
    fused_attention,
    fused_enabled,
    merge_heads,
)
from mea_cli.models.layers.flash import thin_heads
from mea_cli.models.layers.grouping import Plan, plan_groups, put_back, take_groups
from mea_cli.models.layers.normed_attention import normed_flash_attention


class MRU(nn.Module):
    """Modality Reinforcement Unit, Eq. 7-9."""

    def __init__(self, d: int, heads: int, dropout: float, attn_dropout: float, ffn_mult: int):
        super().__init__()
        self.ln_t = nn.LayerNorm(d)
        self.ln_s = nn.LayerNorm(d)
        self.qkv = QKV(d, heads)
        self.attn_drop = nn.Dropout(attn_dropout)
        self.drop = nn.Dropout(dropout)
        self.ln_ffn = nn.LayerNorm(d)
        self.ffn = FeedForward(d, ffn_mult, dropout)

    def forward(
        self,
        source: torch.Tensor,
        source_mask: torch.Tensor,
        target: torch.Tensor,
        target_mask: torch.Tensor,
        need_weights: bool = True,
        full: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return ``(Z_t^a [B, Tt, d], attention [B, K, Tt, Ts])``.

        With ``need_weights=False`` the map is not formed (``None`` is returned in its place) and
        Eq. 7 runs through the fused ``scaled_dot_product_attention`` kernel: same maths, same
        attention dropout, far fewer passes over the ``[B, K, Tt, Ts]`` map. ``full=True`` says
        that no step of source or target is padding (a full length group): no mask is applied.
        """
        if not need_weights and fused_enabled():
            p = self.attn_drop.p if self.training else 0.0
            heads = self.qkv.heads
            if thin_heads(target, p, target.shape[-1] // heads):  # one node, fewer saved
                t, mixed = normed_flash_attention(
                    target, source, self.ln_t, self.ln_s, self.qkv.q.weight,
                    self.qkv.k.weight, self.qkv.v.weight, heads, None if full else source_mask,
                )  # fmt: skip  # Eq. 7
            else:
                t = self.ln_t(target)
                q, k, v = self.qkv.project(t, self.ln_s(source))
                mixed = merge_heads(fused_attention(q, k, v, None if full else source_mask, p))
            z = t + dropout(mixed, self.drop)  # Eq. 8
            z = z + self.ffn.normed(z, self.ln_ffn)  # Eq. 9
            return (z if full else apply_mask(z, target_mask)), None
        t = self.ln_t(target)
        s = self.ln_s(source)
        logits, v = self.qkv(t, s)
        attn = masked_softmax(logits, pair_mask(target_mask, source_mask))  # Eq. 7
        z = t + self.drop(merge_heads(self.attn_drop(attn) @ v))  # Eq. 8
        z = z + self.ffn(self.ln_ffn(z))  # Eq. 9
        return apply_mask(z, target_mask), attn


def _concat(
    zs: dict[str, torch.Tensor], masks: dict[str, torch.Tensor], names: tuple[str, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cat([zs[m] for m in names], dim=1), torch.cat([masks[m] for m in names], dim=1)


class HCALayer(nn.Module):
    """One HCA layer for every target modality (Eq. 10), with optional units removed."""

    def __init__(
        self,
        modalities: tuple[str, ...],
        d: int,
        heads: int,
        dropout: float,
        attn_dropout: float,
        ffn_mult: int,
        mixed: bool = True,
        coarse: bool = True,
        fine: bool = True,
        group_budget: int = 0,
        checkpoint: bool = False,
    ) -> None:
        super().__init__()
        self.modalities = tuple(modalities)
        self.heads = heads
        self.group_budget = int(group_budget)
        self.checkpoint = bool(checkpoint)

        def mru() -> MRU:
            return MRU(d, heads, dropout, attn_dropout, ffn_mult)

        self.mixed = nn.ModuleDict({t: mru() for t in self.modalities}) if mixed else None
        self.coarse = nn.ModuleDict({t: mru() for t in self.modalities}) if coarse else None
        self.fine = (
            nn.ModuleDict(
                {
                    t: nn.ModuleDict({s: mru() for s in self.modalities if s != t})
                    for t in self.modalities
                }
            )
            if fine
            else None
        )

    def forward(
        self,
        sources: dict[str, torch.Tensor],
        targets: dict[str, torch.Tensor],
        masks: dict[str, torch.Tensor],
        attention: dict[str, torch.Tensor] | None = None,
        prefix: str = "",
    ) -> dict[str, torch.Tensor]:
        """Reinforce every target; store maps in ``attention`` under ``prefix`` when given."""
        if attention is not None or not grouped((self,)):
            return self._reinforce(sources, targets, masks, attention, prefix)
        return run_grouped((self,), sources, targets, masks)

    def plan(self, masks: dict[str, torch.Tensor]) -> Plan:
        """The length groups of a batch under ``group_budget`` (the cost of a sample: the
        entries of the layer's largest map, the mixed one, ``K x T_t x sum T_s``)."""
        names, heads = self.modalities, self.heads

        def cost(n: Mapping[str, int]) -> int:
            return heads * max(n[m] for m in names) * sum(n[m] for m in names)

        return plan_groups({m: masks[m] for m in names}, cost, self.group_budget)

    def _reinforce(
        self,
        sources: dict[str, torch.Tensor],
        targets: dict[str, torch.Tensor],
        masks: dict[str, torch.Tensor],
        attention: dict[str, torch.Tensor] | None,
        prefix: str,
        full: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Eq. 10 for every target on one (padded or trimmed) batch; ``full``: no padding."""
        out: dict[str, torch.Tensor] = {}
        need = attention is not None
        every = _concat(sources, masks, self.modalities) if self.mixed is not None else None
        for t in self.modalities:
            others = tuple(s for s in self.modalities if s != t)
            z = targets[t]
            tm = masks[t]
            if self.mixed is not None:
                src, sm = every
                z, a = self.mixed[t](src, sm, z, tm, need, full)
                if attention is not None:
                    attention[f"{prefix}{t}/mixed"] = a
            if self.coarse is not None:
                src, sm = _concat(sources, masks, others)
                z, a = self.coarse[t](src, sm, z, tm, need, full)
                if attention is not None:
                    attention[f"{prefix}{t}/coarse"] = a
            if self.fine is not None:
                parts = []
                for s in others:
                    zs, a = self.fine[t][s](sources[s], masks[s], z, tm, need, full)
                    parts.append(zs)
                    if attention is not None:
                        attention[f"{prefix}{t}/fine-{s}"] = a
                z = torch.stack(parts).sum(dim=0)
            out[t] = z
        return out


def grouped(layers: Sequence[HCALayer]) -> bool:
    """Whether ``layers`` run on length groups: fused attention on, every layer built with the
    same positive ``group_budget``, heads and modalities (so one plan serves them all)."""
    if not layers or not fused_enabled():
        return False
    keys = {(x.group_budget, x.heads, x.modalities) for x in layers}
    return len(keys) == 1 and layers[0].group_budget > 0


def run_grouped(
    layers: Sequence[HCALayer],
    sources: dict[str, torch.Tensor],
    targets: dict[str, torch.Tensor],
    masks: dict[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """``layers`` one after the other (sources fixed, targets carried), on length groups.

    The batch is cut into the groups of one plan once, every layer runs on every group (layer
    by layer, groups in plan order, as a loop over the layers' own forward passes would: the
    same random draws in the same order), and the outputs are put back once. Same numbers as
    running each layer on the padded batch through :meth:`HCALayer.forward`; what it saves is
    the per-layer cutting and putting back (and their backward passes) between layers.
    """
    names = layers[0].modalities
    plan = layers[0].plan(masks)
    src = {m: take_groups(sources[m], plan, m) for m in names}
    msk = {m: take_groups(masks[m], plan, m) for m in names}
    same = all(targets[m] is sources[m] for m in names)  # the first layer's targets are Z_m
    tgt = src if same else {m: take_groups(targets[m], plan, m) for m in names}
    keep_inputs = torch.is_grad_enabled()
    for layer in layers:
        step = {t: [] for t in names}
        for i, group in enumerate(plan.groups):
            args = (
                {m: src[m][i] for m in names},
                {m: tgt[m][i] for m in names},
                {m: msk[m][i] for m in names},
                None,
                "",
                group.full,
            )
            if layer.checkpoint and keep_inputs:
                out = activation_checkpoint(layer._reinforce, *args, use_reentrant=False)
            else:
                out = layer._reinforce(*args)
            for t in names:
                step[t].append(out[t])
        tgt = step
    return {t: put_back(tgt[t], plan, targets[t].shape[1]) for t in names}
