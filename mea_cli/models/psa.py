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
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from mea_cli.models.attention import QKV, FeedForward, fused_enabled, merge_heads
from mea_cli.models.masking import apply_mask, masked_softmax, pair_mask


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
    ) -> None:
        super().__init__()
        self.mu = float(mu)
        self.literal = bool(literal)
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
        prev_logits: torch.Tensor | None,
        need_weights: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return ``(Z^e [B,T,d], logits handed to the next layer [B,K,T,T], A [B,K,T,T])``.

        ``need_weights=False`` (the model passes it when no attention maps were requested) lets
        the rows of padded queries in ``A`` hold any finite values instead of zeros: they only
        reach padded output steps, which are zeroed. ``Z^e`` and the logits are unchanged.
        """
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
        z = z + self.ffn(self.ln_ffn(z))  # Eq. 4
        return apply_mask(z, mask), logits, attn

    def _fused(
        self,
        z: torch.Tensor,
        mask: torch.Tensor,
        prev_logits: torch.Tensor | None,
        need_weights: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The default (logit-mixing) form of :meth:`forward` with fewer passes over the maps.

        ``A_logit = mu GeLU(Conv2d(A_pre)) + (1 - mu) Q K^T / sqrt(d/K)`` is one ``baddbmm``
        (the scale folded into its ``alpha``; no division of the map), the padding is zeroed in
        place, and the masked softmax fills padded keys in one pass.
        """
        h = self.ln(z)
        q, k, v = self.qkv.project(h, h)
        b, heads, t, dh = q.shape
        scale = 1.0 / math.sqrt(dh)
        q3 = q.reshape(b * heads, t, dh)
        kt = k.reshape(b * heads, t, dh).transpose(1, 2)
        pairs = pair_mask(mask, mask)
        if self.chain is not None and prev_logits is not None:
            predicted = F.gelu(self.chain(prev_logits))
            logits = torch.baddbmm(
                predicted.reshape(b * heads, t, t),
                q3,
                kt,
                beta=self.mu,
                alpha=(1.0 - self.mu) * scale,
            )
        else:
            logits = torch.bmm(q3 * scale, kt)
        logits = logits.view(b, heads, t, t).masked_fill_(~pairs, 0.0)
        attn = torch.softmax(logits.masked_fill(~pairs, torch.finfo(logits.dtype).min), dim=-1)
        if need_weights:
            attn = attn * pairs.to(attn.dtype)
        out = merge_heads(self.attn_drop(attn) @ v)
        z = h + self.drop(out)  # Eq. 3
        z = z + self.ffn(self.ln_ffn(z))  # Eq. 4
        return apply_mask(z, mask), logits, attn
