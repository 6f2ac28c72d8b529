"""MulT's transformers (Tsai et al., ACL 2019, Sec. 3.1-3.2) with key-padding masks.

One encoder layer, with target sequence ``Z`` and source ``S`` (``S = Z`` for self-attention)::

    Ẑ  = Z + Drop_res(CM(LN(Z), LN(S)))                           crossmodal attention, Eq. 1
    Z' = Ẑ + Drop_res(FC2(Drop_relu(ReLU(FC1(LN(Ẑ))))))           position-wise FFN (d -> 4d -> d)

``CM`` is multi-head attention with *queries from the target* and *keys and values from the
source*: ``softmax(Q_Z K_S^T / sqrt(d/K)) V_S`` per head, then an output projection. A
crossmodal transformer ``S -> Z`` (Eq. 4) stacks D layers whose source is always the low-level
source sequence ``Z^[0]_S`` (the public code's reading of "low-level features"); the
self-attention transformer (the per-target "memory") uses the running sequence itself. Each
transformer first embeds its inputs as ``sqrt(d) * X + PE`` (sinusoidal, Vaswani et al.) with
embedding dropout, and ends with a LayerNorm.

Decisions (all listed in ``docs/models/mult.md``):

* Residuals are pre-LN as in the public code (``Z + CM(LN(Z), ...)``); the same LayerNorm
  normalises the queries and the source of one layer, as in the code.
* Masks: every attention ignores padded keys (boolean key-padding masks); padded queries are
  computed but never read (no later step uses them as keys and pooling skips them). A sample
  whose source has no real step at all gets *no* attention sublayer (``Ẑ = Z``): attending over
  nothing contributes nothing, and no NaN can appear.
* The optional future (causal) mask lets query step ``i`` of a target with ``L_q`` real steps
  see key step ``j`` of a source with ``L_k`` real steps iff ``j * L_q <= i * L_k``: both
  sequences span the same clip, so key ``j`` starts (at ``j / L_k``) no later than query ``i``
  (at ``i / L_q``). For self-attention this is the usual ``j <= i``. It depends only on real
  lengths, so padding changes nothing (the public code's mask depends on padded lengths).
* Attention runs through ``F.scaled_dot_product_attention`` with boolean masks and the
  attention dropout as its ``dropout_p``; maps ``[B, K, T_q, T_k]`` are formed only when asked
  for (``need_weights``). Without attention dropout SDPA takes its fused kernel on CPU and GPU,
  and on CUDA its fused kernels apply the dropout too.
* Length groups (``group_budget > 0``, :func:`attention_plan`): each transformer cuts its batch
  into groups of samples of similar target and source lengths and attends per group, trimmed
  to the group's longest lengths; a group whose members all have exactly those lengths needs
  no mask (the kernels' unmasked paths). Audio and vision lengths are independent in MMSA's
  MOSI-shaped benchmark pickle, so a length-sorted batch still computes about 2x the real
  ``T_q x T_k`` entries; groups bring that close to 1x. Same maths: padded queries and keys
  never reach a real output (tested: predictions and gradients with and without groups).
* On CPU, SDPA's dropout forces its math path, which keeps every map, its mask and the
  dropped map for the backward pass (22 GB at MulT's MOSI preset, batch 128) and samples the
  mask with ``bernoulli_`` (43 % of the CPU time of a MOSI-preset step at batch 32). So on
  CPU, training with attention dropout computes ``Drop(softmax(.)) V`` itself
  (:func:`_dropped_attention`), the dropout mask drawn as 16-bit uniform integers, four from
  each 64-bit draw (about 8x cheaper per element than ``bernoulli_``; the drop rate is ``p``
  rounded to a multiple of 2^-16, kept weights scaled by the exact keep rate). Autograd keeps
  12 bytes per map entry for the backward pass; when a step would keep more than the model's
  budget, the step runs :func:`chunked_dropout_attention` instead: the same maths in blocks of
  queries under activation checkpointing (one block's maps alive at a time, the forward's
  mask rebuilt in the backward pass). Under :func:`~mea_cli.models.layers.attention.explicit_attention`
  (the benchmarks' reference path) neither groups nor these CPU paths are used: plain SDPA
  with its own dropout, as before any of this.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from mea_cli.models.core.masking import masked_softmax, pair_mask
from mea_cli.models.layers.attention import fused_attention, fused_enabled, merge_heads, split_heads
from mea_cli.models.layers.extractor import sinusoidal_positions
from mea_cli.models.layers.grouping import Plan, plan_groups, put_back, take
from mea_cli.models.layers.mapops import map_matmul, mixed_scores


def future_mask(query_mask: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
    """``[B, 1, T_q, T_k]`` bool: key ``j`` is real and ``j * L_q <= i * L_k`` (module docstring)."""
    lq = query_mask.sum(dim=1)[:, None, None]
    lk = key_mask.sum(dim=1)[:, None, None]
    i = torch.arange(query_mask.shape[1], device=query_mask.device)[None, :, None]
    j = torch.arange(key_mask.shape[1], device=key_mask.device)[None, None, :]
    return ((j * lq <= i * lk) & key_mask[:, None, :])[:, None]


def _attention_with_mask(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor, dropout_p: float
) -> torch.Tensor:
    """SDPA under a full ``[B, 1, T_q, T_k]`` boolean mask; a query row with no allowed key
    gives zeros (its keys are unmasked for the kernel and the result multiplied by 0)."""
    has_key = allowed.any(dim=-1, keepdim=True)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed | ~has_key, dropout_p=dropout_p)
    return out * has_key.to(out.dtype)


CHUNK_ELEMENTS = 1 << 23
"""Attention-map elements per query block of :func:`chunked_dropout_attention` (32 MB fp32)."""


def _keep_mask(
    shape: torch.Size, dropout_p: float, allowed: torch.Tensor | None, device: torch.device
) -> tuple[torch.Tensor, float]:
    """The attention-dropout keep mask (bool, ``shape``) and its exact keep rate.

    16-bit uniform integers, four lanes from each 64-bit draw (a quarter of the generator
    calls), compared with ``round(p * 2^16)``: the drop rate is ``p`` to within 2^-17. A key
    that ``allowed`` forbids is never kept (this also zeroes a row with no allowed key).
    """
    cut = round(dropout_p * 65536)
    n = math.prod(shape)
    draws = torch.empty((n + 3) // 4, dtype=torch.int64, device=device)
    draws = draws.random_(-(2**63), None).view(torch.int16)[:n].view(shape)
    keep = draws >= cut - 32768
    if allowed is not None:
        keep &= allowed
    return keep, 1.0 - cut / 65536


def _softmax_logits(q: torch.Tensor, k: torch.Tensor, allowed: torch.Tensor | None) -> torch.Tensor:
    """``softmax(Q K^T / sqrt(d/K))`` ``[B, K, T_q, T_k]`` with forbidden keys at a -1e9 bias (an
    addition: ``masked_fill`` is several times slower on CPU); ``allowed=None``: nothing masked.
    The product runs through :func:`~mea_cli.models.layers.mapops.mixed_scores`, whose backward pass
    uses the thin-left products that CPU BLAS handles far faster."""
    b, h, tq, dh = q.shape
    logits = mixed_scores(None, _flat(q), _flat(k), 0.0, 1.0 / math.sqrt(dh))
    logits = logits.view(b, h, tq, k.shape[2])
    if allowed is not None:
        bias = torch.zeros(allowed.shape, dtype=q.dtype, device=q.device)
        logits = logits + bias.masked_fill_(~allowed, -1e9)
    return torch.softmax(logits, dim=-1)


def _flat(x: torch.Tensor) -> torch.Tensor:
    """``[B, K, T, c]`` -> ``[B K, T, c]``."""
    return x.reshape(-1, x.shape[2], x.shape[3])


def _dropped_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    allowed: torch.Tensor | None,
    dropout_p: float,
) -> torch.Tensor:
    """``Drop(masked_softmax(Q K^T / sqrt(d/K))) V``; rows with no allowed key give 0.
    ``allowed [B, 1, T_q or 1, T_k]``, or None when every key is real. Kept weights are divided
    by the exact keep rate, so the expected output is the undropped one. ``weights V`` is
    :func:`~mea_cli.models.layers.mapops.map_matmul` (a map times thin values: about 4x faster as
    ``(V^T W^T)^T`` on CPU, in both passes; ``docs/performance.md``)."""
    weights = _softmax_logits(q, k, allowed)
    keep, rate = _keep_mask(weights.shape, dropout_p, allowed, weights.device)
    dropped = _flat(weights * keep.to(weights.dtype))
    return map_matmul(dropped, _flat(v)).reshape(q.shape) / rate


def _softmax_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor | None
) -> torch.Tensor:
    """``masked_softmax(Q K^T / sqrt(d/K)) V`` with the thin-left products of
    :mod:`~mea_cli.models.layers.mapops` (no dropout); a query row with no allowed key gives 0.
    Autograd keeps the weights, 4 bytes per map entry."""
    weights = _softmax_logits(q, k, allowed)
    out = map_matmul(_flat(weights), _flat(v)).reshape(q.shape)
    if allowed is None:
        return out
    return out * allowed.any(dim=-1, keepdim=True).to(out.dtype)


def chunked_dropout_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    allowed: torch.Tensor | None,
    dropout_p: float,
    budget: int = CHUNK_ELEMENTS,
) -> torch.Tensor:
    """:func:`_dropped_attention` in blocks of queries, each checkpointed (CPU training path).

    ``allowed [B, 1, T_q or 1, T_k]``, or None when every key is real. A block's maps are freed
    after its forward and rebuilt in the backward pass; checkpointing restores the RNG state
    first, so the rebuilt dropout mask is the one the forward pass used (tested with
    ``gradcheck``)."""
    b, h, tq, _ = q.shape
    step = max(1, budget // max(1, b * h * k.shape[2]))
    out = []
    for start in range(0, tq, step):
        block = allowed
        if allowed is not None and allowed.shape[2] > 1:
            block = allowed[:, :, start : start + step]
        out.append(
            checkpoint(
                _dropped_attention,
                q[:, :, start : start + step],
                k,
                v,
                block,
                dropout_p,
                use_reentrant=False,
            )
        )
    return torch.cat(out, dim=2)


def attention_plan(
    query_mask: torch.Tensor, key_mask: torch.Tensor, heads: int, budget: int
) -> Plan:
    """Length groups for one transformer's attention (the masks are the same in every layer).

    A group's cost is its size times ``heads x T_q x T_k`` at its longest lengths, at most
    ``budget`` map entries (at least one sample per group); see :mod:`mea_cli.models.layers.grouping`.
    """
    return plan_groups({"q": query_mask, "k": key_mask}, lambda n: heads * n["q"] * n["k"], budget)


class MultiheadAttention(nn.Module):
    """Multi-head attention with biased Q/K/V and output projections (MulT, Eq. 1).

    The three input projections are one packed ``d x 3d`` linear map (one matrix product for
    self-attention; for crossmodal attention its query rows act on the target and its key/value
    rows on the source). Xavier-uniform weights and zero biases, as in the public code.
    """

    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.d, self.heads, self.dropout = d, heads, dropout
        self.in_proj = nn.Linear(d, 3 * d)
        self.out_proj = nn.Linear(d, d)
        for lin in (self.in_proj, self.out_proj):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(
        self,
        x: torch.Tensor,
        source: torch.Tensor | None,
        query_mask: torch.Tensor,
        key_mask: torch.Tensor,
        allowed: torch.Tensor | None = None,
        need_weights: bool = False,
        plan: Plan | None = None,
        recompute: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Queries from ``x [B, T_q, d]``, keys and values from ``source [B, T_k, d]`` (or from
        ``x`` when ``source`` is None). Returns ``[B, T_q, d]`` and, with ``need_weights``, the
        maps ``[B, K, T_q, T_k]`` (zero on padded queries and keys, before dropout). With a
        length-group ``plan`` (:func:`attention_plan`) each group of samples attends trimmed to
        its own longest query and key lengths; the maps are never formed that way."""
        d = self.d
        if source is None:
            q, k, v = self.in_proj(x).chunk(3, dim=-1)
        else:
            w, b = self.in_proj.weight, self.in_proj.bias
            q = F.linear(x, w[:d], b[:d])
            k, v = F.linear(source, w[d:], b[d:]).chunk(2, dim=-1)
        p = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            q, k, v = (split_heads(t, self.heads) for t in (q, k, v))
            keep = pair_mask(query_mask, key_mask)
            if allowed is not None:
                keep = keep & allowed
            logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
            weights = masked_softmax(logits, keep)
            out = merge_heads(F.dropout(weights, p, self.training) @ v)
        elif plan is None:
            out = self._attend(q, k, v, key_mask, allowed, p, recompute)
        else:
            parts = []
            for g in plan.groups:
                tq, tk = g.lengths["q"], g.lengths["k"]
                sub = None if allowed is None else allowed.index_select(0, g.index)
                parts.append(
                    self._attend(
                        take(q, g, "q"),
                        take(k, g, "k"),
                        take(v, g, "k"),
                        None if g.full else take(key_mask, g, "k"),
                        None if sub is None else sub[:, :, :tq, :tk],
                        p,
                        recompute,
                    )
                )
            out = put_back(parts, plan, x.shape[1])
        out = self.out_proj(out)
        # a sample with no real source step at all gets no attention sublayer (not the bias)
        has_source = key_mask.any(dim=1)
        if not bool(has_source.all()):
            out = out * has_source[:, None, None].to(out.dtype)
        return out, weights

    def _attend(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        key_mask: torch.Tensor | None,
        allowed: torch.Tensor | None,
        p: float,
        recompute: bool,
    ) -> torch.Tensor:
        """Attention of projected ``q [B, T_q, d]`` over ``k, v [B, T_k, d]``, ``[B, T_q, d]``.

        ``key_mask=None`` and ``allowed=None``: every key is real and nothing is masked (a full
        length group: the kernels' unmasked paths). CPU training (not under
        ``explicit_attention()``) forms the maps itself: with dropout
        (:func:`_dropped_attention`) and without (:func:`_softmax_attention`, about twice as
        fast as SDPA's fused kernel, forward and backward, at MulT's head widths of 5-10).
        ``recompute``: keep no map for the backward pass instead (dropout:
        :func:`chunked_dropout_attention`; none: the fused kernel)."""
        q, k, v = (split_heads(t, self.heads) for t in (q, k, v))
        own = q.device.type == "cpu" and torch.is_grad_enabled() and fused_enabled()
        if own and (p > 0 or not recompute):
            keep = allowed
            if keep is None and key_mask is not None:
                keep = key_mask[:, None, None, :]
            if p == 0:
                out = _softmax_attention(q, k, v, keep)
            elif recompute:
                out = chunked_dropout_attention(q, k, v, keep, p)
            else:
                out = _dropped_attention(q, k, v, keep, p)
        elif allowed is None:
            out = fused_attention(q, k, v, key_mask, p)
        else:
            out = _attention_with_mask(q, k, v, allowed, p)
        return merge_heads(out)


class EncoderLayer(nn.Module):
    """One pre-LN layer: (crossmodal or self) attention and a ReLU FFN, each with a residual."""

    def __init__(
        self, d: int, heads: int, attn_dropout: float, relu_dropout: float, res_dropout: float
    ) -> None:
        super().__init__()
        self.attn = MultiheadAttention(d, heads, attn_dropout)
        self.norm_attn = nn.LayerNorm(d)
        self.norm_ffn = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)
        for lin in (self.fc1, self.fc2):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)
        self.drop_relu = nn.Dropout(relu_dropout)
        self.drop_res = nn.Dropout(res_dropout)

    def forward(
        self,
        x: torch.Tensor,
        query_mask: torch.Tensor,
        source: torch.Tensor | None,
        key_mask: torch.Tensor,
        allowed: torch.Tensor | None,
        need_weights: bool,
        plan: Plan | None = None,
        recompute: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.norm_attn(x)
        src = None if source is None else self.norm_attn(source)
        a, weights = self.attn(h, src, query_mask, key_mask, allowed, need_weights, plan, recompute)
        x = x + self.drop_res(a)
        h = self.fc2(self.drop_relu(F.relu(self.fc1(self.norm_ffn(x)))))
        return x + self.drop_res(h), weights


class MulTEncoder(nn.Module):
    """A crossmodal transformer (``source`` given) or a self-attention transformer (not).

    ``forward`` embeds its inputs (``sqrt(d) X + PE``, embedding dropout), runs the layers and
    normalises the result; it returns ``[B, T, d]`` and one map per layer when asked.
    """

    def __init__(
        self,
        d: int,
        heads: int,
        layers: int,
        attn_dropout: float,
        relu_dropout: float,
        res_dropout: float,
        embed_dropout: float,
        causal: bool,
        group_budget: int = 0,
    ) -> None:
        super().__init__()
        self.d, self.heads, self.causal, self.group_budget = d, heads, causal, group_budget
        self.layers = nn.ModuleList(
            EncoderLayer(d, heads, attn_dropout, relu_dropout, res_dropout) for _ in range(layers)
        )
        self.embed_drop = nn.Dropout(embed_dropout)
        self.norm = nn.LayerNorm(d)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        pe = sinusoidal_positions(x.shape[1], self.d, x.device, x.dtype)
        return self.embed_drop(math.sqrt(self.d) * x + pe)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        source: torch.Tensor | None = None,
        source_mask: torch.Tensor | None = None,
        need_weights: bool = False,
        recompute_attention: bool = False,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``x [B, T, d]`` with ``mask [B, T]``; crossmodal: ``source [B, T_s, d]`` and
        ``source_mask [B, T_s]`` (the queries come from ``x``, keys and values from ``source``).
        ``recompute_attention``: see :meth:`MultiheadAttention._attend`."""
        z = self._embed(x)
        src = None if source is None else self._embed(source)
        key_mask = mask if source_mask is None else source_mask
        allowed = future_mask(mask, key_mask) if self.causal else None
        plan = None
        if self.group_budget > 0 and not need_weights and fused_enabled():
            plan = attention_plan(mask, key_mask, self.heads, self.group_budget)
        maps: list[torch.Tensor] = []
        for layer in self.layers:
            z, w = layer(z, mask, src, key_mask, allowed, need_weights, plan, recompute_attention)
            if w is not None:
                maps.append(w)
        return self.norm(z), maps


def last_real_step(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``x [B, T, D]`` at each sample's last real step (``mask [B, T]``); zeros if it has none.

    The public code takes ``h[-1]``, the last *padded* position, which is the last real step
    only because its data are left-padded; this picks the last ``True`` of the mask instead.
    """
    steps = torch.arange(1, mask.shape[1] + 1, device=mask.device)
    last = (steps * mask).argmax(dim=1)
    out = x[torch.arange(x.shape[0], device=x.device), last]
    return out * mask.any(dim=1, keepdim=True).to(out.dtype)
