"""Predictive Self-Attention (Sec. III-C, Eq. 2-4).

One PSA layer for one modality::

    Q, K, V = LN(Z) W_Q, LN(Z) W_K, LN(Z) W_V                  (K heads)
    A_cur   = Q K^T / sqrt(d / K)                              [B, K, T, T] pre-softmax maps
    A_logit = mu * GeLU(Conv2d_3x3(A_pre)) + (1 - mu) * A_cur  (layers 2..M; layer 1: A_cur)
    A       = masked softmax(A_logit)                          Eq. 2
    Z^e     = LN(Z) + A V                                      Eq. 3
    Z^e     = F(LN(Z^e)) + Z^e                                 Eq. 4

The prediction chain treats the ``K`` maps of the previous layer as a ``T x T`` image with
``K`` channels and predicts this layer's maps with a 3x3 Conv2d (``K`` in, ``K`` out) and GeLU.
``A_pre`` is the previous layer's *pre-softmax* map ``A_logit`` (the chain passes logits on, as
in the predictive attention transformer that PSA follows, [65] in the paper: Wang et al.,
"Predictive attention transformer: improving transformer with attention map prediction"); the
first layer has no predictor at all (no Conv2d parameters), and every later layer has one.

Where we depart from the letter of Eq. 2 (documented in ``docs/model.md``): the paper writes
``softmax(mu CNN(A_pre) + (1 - mu) softmax(A_cur))``. Taken literally, ``mu = 0`` would give
``softmax(softmax(A_cur))``, a near-uniform map (a softmax of numbers in [0, 1] varies by at
most a factor e), and the two terms would live on different scales (logits vs probabilities).
We mix the two *logit* maps, so that ``mu = 0`` is exactly plain multi-head attention (tested)
and ``mu`` balances two quantities of the same kind, which is the paper's stated intent.
``psa_literal_eq2=True`` (config; ``literal=True`` here) computes Eq. 2 to the letter instead,
``A = softmax(mu GeLU(Conv2d(A_pre)) + (1 - mu) softmax(A_cur))`` with masked softmaxes, and hands
on the argument of the outer softmax as this layer's pre-softmax map; the first layer (no
prediction) is plain ``softmax(A_cur)`` in both forms.

Masks: padded (query, key) pairs are set to zero in the map handed on (so the next layer's
convolution sees zeros there, the same zeros as beyond the image border), the padding mask is
re-applied after the convolution, and the softmax gives padded keys zero weight.

Efficient execution (same maths; ``docs/performance.md``): when no attention maps are requested,
a layer built with ``group_budget > 0`` runs on length groups of samples
(:mod:`mea_cli.models.layers.grouping`): each group is trimmed to its own longest sequence, so the
``[g, K, t, t]`` maps hold few padded pairs, and the maps handed to the next layer stay grouped
(:class:`GroupedMaps`). With ``checkpoint=True`` each group is an activation checkpoint: only
its inputs and handed-on maps are kept for the backward pass, and the rest (the convolution and
GeLU outputs, the softmax, ``A V``) is recomputed there, which bounds PSA's training memory by
one group's working set at the price of a second forward pass of PSA.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint as activation_checkpoint

from mea_cli.models.core.masking import apply_mask, masked_softmax, pair_mask
from mea_cli.models.layers.attention import QKV, FeedForward, dropout, fused_enabled, merge_heads
from mea_cli.models.layers.grouping import Plan, plan_groups, put_back, take_groups
from mea_cli.models.layers.mapops import ScoreStep, map_matmul, mixed_scores, psa_maps, same_conv2d


@dataclass(frozen=True)
class GroupedMaps:
    """Pre-softmax maps handed on by a length-grouped PSA layer: ``maps[i] [g_i, K, t_i, t_i]``
    for the samples of ``plan.groups[i]``, trimmed to that group's length."""

    plan: Plan
    maps: tuple[torch.Tensor, ...]
    history: tuple[tuple[ScoreStep, ...], ...]  # per group: how maps were formed (checkpoint_psa)


class PSALayer(nn.Module):
    """One PSA layer (Eq. 2-4) for one modality; ``predict=False`` for the first layer."""

    def __init__(
        self,
        d: int,
        heads: int,
        mu: float,
        predict: bool,
        dropout: float,
        attn_dropout: float,
        ffn_mult: int,
        literal: bool = False,
        group_budget: int = 0,
        checkpoint: bool = False,
    ) -> None:
        super().__init__()
        self.mu = float(mu)
        self.literal = bool(literal)
        self.heads = heads
        self.group_budget = int(group_budget)
        self.checkpoint = bool(checkpoint)
        self.ln = nn.LayerNorm(d)
        self.qkv = QKV(d, heads)
        self.chain = nn.Conv2d(heads, heads, kernel_size=3, padding=1) if predict else None
        self.attn_drop = nn.Dropout(attn_dropout)
        self.drop = nn.Dropout(dropout)
        self.ln_ffn = nn.LayerNorm(d)
        self.ffn = FeedForward(d, ffn_mult, dropout)

    def forward(
        self,
        z: torch.Tensor,
        mask: torch.Tensor,
        prev_logits: torch.Tensor | GroupedMaps | None,
        need_weights: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | GroupedMaps, torch.Tensor | None]:
        """Return ``(Z^e [B,T,d], logits handed to the next layer [B,K,T,T], A [B,K,T,T])``.

        ``need_weights=False`` (the model passes it when no attention maps were requested) lets
        the rows of padded queries in ``A`` hold any finite values instead of zeros: they only
        reach padded output steps, which are zeroed. ``Z^e`` and the logits are unchanged. With
        ``group_budget > 0`` it also selects length-grouped execution: the handed-on logits are
        then a :class:`GroupedMaps` and ``A`` is ``None`` (not formed for the whole batch).
        """
        if isinstance(prev_logits, GroupedMaps) or (
            prev_logits is None and not need_weights and self.group_budget > 0 and fused_enabled()
        ):
            return self._grouped(z, mask, prev_logits)
        return self._dense(z, mask, prev_logits, need_weights)

    def _dense(
        self,
        z: torch.Tensor,
        mask: torch.Tensor,
        prev_logits: torch.Tensor | None,
        need_weights: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The layer on the padded batch: the explicit code, or :meth:`_fused`."""
        if not self.literal and fused_enabled():
            return self._fused(z, mask, prev_logits, need_weights)
        h = self.ln(z)
        cur, v = self.qkv(h, h)
        pairs = pair_mask(mask, mask)
        if self.chain is not None and prev_logits is not None:
            predicted = F.gelu(self.chain(prev_logits)).masked_fill(~pairs, 0.0)
            # Eq. 2: logit mixing (default) or, literally, mixing with softmax(A_cur)
            current = masked_softmax(cur, pairs) if self.literal else cur
            logits = self.mu * predicted + (1.0 - self.mu) * current
        else:
            logits = cur
        logits = logits.masked_fill(~pairs, 0.0)
        attn = masked_softmax(logits, pairs)
        out = merge_heads(self.attn_drop(attn) @ v)
        z = h + self.drop(out)  # Eq. 3
        z = z + self.ffn.normed(z, self.ln_ffn)  # Eq. 4
        return apply_mask(z, mask), logits, attn

    def _group_step(
        self,
        z: torch.Tensor,
        mask: torch.Tensor,
        prev_logits: torch.Tensor | None,
        full: bool,
        history: tuple[ScoreStep, ...] | None,
    ) -> tuple[torch.Tensor, torch.Tensor, ScoreStep | None]:
        """The layer on one length group: :func:`~mea_cli.models.layers.mapops.psa_maps` for the maps
        (logit-mixing form, no attention dropout), else the dense code (no step returned)."""
        if self._dense_groups():
            out, logits, _ = self._dense(z, mask, prev_logits, need_weights=False)
            return out, logits, None
        h = self.ln(z)
        q, k, v = self.qkv.project(h, h)
        b, heads, t, dh = q.shape
        mixed, logits, step = psa_maps(
            prev_logits,
            self.chain,
            q.reshape(b * heads, t, dh),
            k.reshape(b * heads, t, dh),
            v.reshape(b * heads, t, dh),
            None if full else pair_mask(mask, mask),
            heads,
            self.mu,
            1.0 / math.sqrt(dh),
            history,
        )
        z = h + dropout(merge_heads(mixed.view(b, heads, t, dh)), self.drop)  # Eq. 3
        z = z + self.ffn.normed(z, self.ln_ffn)  # Eq. 4
        return (z if full else apply_mask(z, mask)), logits, step

    def _dense_groups(self) -> bool:
        """Whether groups run the dense code: literal Eq. 2, or attention dropout in training."""
        return self.literal or (self.training and self.attn_drop.p > 0)

    def _grouped(
        self, z: torch.Tensor, mask: torch.Tensor, prev: GroupedMaps | None
    ) -> tuple[torch.Tensor, GroupedMaps, None]:
        """The layer on each length group of the batch (see the module docstring)."""
        heads = self.heads
        plan = (
            prev.plan
            if prev is not None
            else plan_groups({"m": mask}, lambda n: heads * n["m"] ** 2, self.group_budget)
        )
        dense = self._dense_groups()
        # checkpoint_psa: psa_maps keeps no map (given the earlier layers' steps); the dense
        # fallback is wrapped in a plain activation checkpoint instead
        recompute = self.checkpoint and torch.is_grad_enabled()
        outs, maps, histories = [], [], []
        zs, ms = take_groups(z, plan, "m"), take_groups(mask, plan, "m")
        for i, (group, zg, mg) in enumerate(zip(plan.groups, zs, ms, strict=True)):
            pg = prev.maps[i] if prev is not None else None
            past = prev.history[i] if prev is not None else ()
            history = past if recompute and not dense else None
            if recompute and dense:
                out, logits, step = activation_checkpoint(
                    self._group_step, zg, mg, pg, group.full, None, use_reentrant=False
                )
            else:
                out, logits, step = self._group_step(zg, mg, pg, group.full, history)
            outs.append(out)
            maps.append(logits)
            histories.append((*past, step) if history is not None else ())
        grouped = GroupedMaps(plan, tuple(maps), tuple(histories))
        return put_back(outs, plan, z.shape[1]), grouped, None

    def _fused(
        self,
        z: torch.Tensor,
        mask: torch.Tensor,
        prev_logits: torch.Tensor | None,
        need_weights: bool,
        padded: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The default (logit-mixing) form of :meth:`forward` with fewer passes over the maps.

        ``A_logit = mu GeLU(Conv2d(A_pre)) + (1 - mu) Q K^T / sqrt(d/K)`` is one ``baddbmm``
        (the scale folded into its ``alpha``; no division of the map), the padding is zeroed in
        place, and the masked softmax fills padded keys in one pass. The products with the maps
        and the convolution use :mod:`mea_cli.models.layers.mapops` (faster backward formulations). ``padded=False`` (a length
        group whose samples all have the group's length) skips the masking altogether.
        """
        h = self.ln(z)
        q, k, v = self.qkv.project(h, h)
        b, heads, t, dh = q.shape
        scale = 1.0 / math.sqrt(dh)
        q3 = q.reshape(b * heads, t, dh)
        k3 = k.reshape(b * heads, t, dh)
        if self.chain is not None and prev_logits is not None:
            predicted = F.gelu(same_conv2d(prev_logits, self.chain))
            logits = mixed_scores(
                predicted.view(b * heads, t, t), q3, k3, self.mu, (1.0 - self.mu) * scale
            )
        else:
            logits = mixed_scores(None, q3, k3, 1.0, scale)
        logits = logits.view(b, heads, t, t)
        if not padded:  # every step of every sample is real: nothing to mask
            attn = torch.softmax(logits, dim=-1)
        else:
            pairs = pair_mask(mask, mask)
            logits.masked_fill_(~pairs, 0.0)
            attn = torch.softmax(logits.masked_fill(~pairs, torch.finfo(logits.dtype).min), dim=-1)
            if need_weights:
                attn = attn * pairs.to(attn.dtype)
        weights = self.attn_drop(attn).view(b * heads, t, t)
        out = merge_heads(map_matmul(weights, v.reshape(b * heads, t, dh)).view(b, heads, t, dh))
        z = h + self.drop(out)  # Eq. 3
        z = z + self.ffn.normed(z, self.ln_ffn)  # Eq. 4
        return (apply_mask(z, mask) if padded else z), logits, attn
