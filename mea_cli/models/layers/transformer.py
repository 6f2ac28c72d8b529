"""FDMER's per-modality Transformer encoders (Sec. 3.2, Eq. 1) with key-padding masks.

``Z_m = Transformer(X_m; theta^trans_m) in R^{L_m x d_m}``: ``n_m`` layers of the
Transformer encoder of Vaswani et al. [45], "a multi-head self-attention module and a
position-wise feed-forward layer, where residual connections are adopted, followed by layer
normalization", i.e. the original post-LN layer::

    X <- LN(X + Drop(MHA(X)))          MHA with biased Q/K/V projections and W_O, softmax(QK^T/sqrt(d/K))
    X <- LN(X + Drop(FFN(X)))          FFN: d -> ffn_mult*d -> d with ReLU, as in [45]

Decisions where the paper only points to [45] (``docs/models/fdmer.md``):

* **Width.** Eq. 1 keeps the input width ``d_m`` (300 / 35 / 74 on the benchmark); the fixed
  width ``d_k`` comes after, from a fully connected layer. So the encoder runs at ``d_m``.
* **Heads.** Not given; [45] uses 8. ``d_m`` is whatever the features are (35, 74, 768, ...),
  so a modality gets the largest divisor of ``d_m`` not above ``heads`` (:func:`heads_for`;
  benchmark: text 6, vision 7, audio 2 for ``heads = 8``); ``mea info`` prints them.
* **Positions.** The fixed sinusoidal encoding of [45] is added to the features (they are
  z-scored features, not learned embeddings, so without [45]'s ``sqrt(d)`` scaling), then
  dropout, as [45] does on the sum of embeddings and encodings. No attention-weight dropout:
  [45] applies dropout to the sum, to each sub-layer output and nowhere else.
* **Masks.** Padded steps are zeroed before the encoding and after every layer; every
  attention ignores padded keys. A sequence with no real step gets no attention at all (its
  output is zero), never NaN. Padding a batch to any length therefore changes no real step.

Attention runs through ``F.scaled_dot_product_attention`` (fused, no maps kept); with
``need_weights`` the same maths is formed explicitly and each layer's ``[B, K, T, T]`` map is
returned (rows of padded queries and columns of padded keys are zero; a real row sums to 1).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mea_cli.models.core.masking import apply_mask, masked_softmax, pair_mask
from mea_cli.models.layers.attention import fused_attention, merge_heads, split_heads
from mea_cli.models.layers.extractor import sinusoidal_positions


def heads_for(d: int, cap: int) -> int:
    """The largest divisor of ``d`` that is at most ``cap`` (at least 1)."""
    return max(k for k in range(1, max(1, min(cap, d)) + 1) if d % k == 0)


class EncoderLayer(nn.Module):
    """One post-LN Transformer encoder layer [45] with a key-padding mask."""

    def __init__(self, d: int, heads: int, ffn_mult: int, dropout: float) -> None:
        super().__init__()
        if d % heads:
            raise ValueError(f"width {d} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.norm1 = nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, ffn_mult * d), nn.ReLU(), nn.Linear(ffn_mult * d, d))
        self.norm2 = nn.LayerNorm(d)
        self.drop = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x [B, T, d]``, ``mask [B, T]`` -> (``[B, T, d]`` zero at padded steps, map or None)."""
        q, k, v = (split_heads(t, self.heads) for t in self.qkv(x).chunk(3, dim=-1))
        weights = None
        if need_weights:
            logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
            weights = masked_softmax(logits, pair_mask(mask, mask))
            h = weights @ v
        else:
            h = fused_attention(q, k, v, mask, 0.0)
        x = self.norm1(x + self.drop(self.out(merge_heads(h))))
        x = self.norm2(x + self.drop(self.ffn(x)))
        return apply_mask(x, mask), weights


class ModalityTransformer(nn.Module):
    """Eq. 1 for one modality: sinusoidal positions, then ``layers`` post-LN encoder layers."""

    def __init__(self, d: int, layers: int, heads: int, ffn_mult: int, dropout: float) -> None:
        super().__init__()
        self.d = d
        self.heads = heads
        self.layers = nn.ModuleList(EncoderLayer(d, heads, ffn_mult, dropout) for _ in range(layers))
        self.drop = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        attention: dict[str, torch.Tensor] | None = None,
        name: str = "trans/{layer}",
    ) -> torch.Tensor:
        """``X_m [B, T, d_m]`` -> ``Z_m [B, T, d_m]``; with ``attention`` (a dict) each layer's
        map is stored under ``name.format(layer=i)``."""
        pe = sinusoidal_positions(x.shape[1], self.d, x.device, x.dtype)
        h = self.drop(apply_mask(apply_mask(x, mask) + pe, mask))
        for i, layer in enumerate(self.layers):
            h, weights = layer(h, mask, need_weights=attention is not None)
            if attention is not None and weights is not None:
                attention[name.format(layer=i)] = weights
        return h
