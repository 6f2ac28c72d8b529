"""LayerNorm, Q / K|V projections and the padded CPU flash kernel of an MRU as one autograd node.

An MRU (Eq. 7-8) computes ``t = LN_t(Z_t)``, ``s = LN_s(Z_s)``, ``Q = t W_Q``, ``K = s W_K``,
``V = s W_V`` and ``softmax(Q K^T / sqrt(d/K)) V``. Run as separate modules, autograd keeps for
the backward pass the LayerNorms' inputs, their outputs ``t`` and ``s`` (what the projections
save), ``Q``, ``K``, ``V`` and the kernel's output: six ``[B, T_t, d]``-sized or
``[B, T_s, d]``-sized tensors beside the inputs. This node keeps only the inputs ``Z_t, Z_s``
(a source is shared by every MRU that reads it), the merged output and the kernel's
log-sum-exp, and recomputes ``t, s, Q, K, V`` in the backward pass (two LayerNorms and two
``d``-wide products: small beside the attention itself). Same maths, same kernel:

* ``K`` and ``V`` come from one product with the two weights side by side, and each of ``Q``,
  ``K|V`` is padded to heads of :data:`~mea_cli.models.layers.flash.PAD_TO` columns with one
  copy, straight into the kernel's layout (the kernel reads strided views; no per-tensor
  ``transpose``/``contiguous``). Projecting straight into padded heads (weights with zero rows
  per head) was measured and not kept: the products 3.2 times wider cost more than the copies
  they save (``docs/performance.md``);
* the LayerNorms run through ``native_layer_norm`` / ``native_layer_norm_backward``, the
  kernels ``nn.LayerNorm`` runs, recomputed in backward from the kept input (bit for bit the
  forward's values).

Used on the path :func:`~mea_cli.models.layers.flash.thin_heads` selects (CPU, float32, no
attention dropout, no autocast); elsewhere the MRU runs its modules one by one.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from mea_cli.models.layers.flash import PAD_TO, additive_mask, kernel_keys


def _padded(x: torch.Tensor, b: int, n: int, heads: int) -> torch.Tensor:
    """``x [B * T, n * heads * dh]`` (``n`` tensors side by side) -> ``[B * T, n * heads *
    PAD_TO]``: zero columns after every head's ``dh`` (one copy)."""
    t, dh = x.shape[0] // b, x.shape[1] // (n * heads)
    out = x.new_zeros((b, t, n, heads, PAD_TO))
    out[..., :dh] = x.view(b, t, n, heads, dh)
    return out.view(b * t, n * heads * PAD_TO)


def _heads(x: torch.Tensor, b: int, n: int, heads: int) -> list[torch.Tensor]:
    """``x [B * T, n * heads * PAD_TO]`` -> ``n`` views ``[B, heads, T, PAD_TO]`` (no copy)."""
    t, width = x.shape[0] // b, n * heads * PAD_TO
    size, stride = (b, heads, t, PAD_TO), (t * width, PAD_TO, width, 1)
    return [x.as_strided(size, stride, i * heads * PAD_TO) for i in range(n)]


def _thin(x: torch.Tensor, dh: int) -> torch.Tensor:
    """``[B, heads, T, PAD_TO]`` -> ``[B, T, heads, dh]``: each head's first ``dh`` columns."""
    return x.transpose(1, 2)[..., :dh]


def _norm(
    x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, eps: float
) -> tuple[torch.Tensor, ...]:
    return torch.native_layer_norm(x, [x.shape[-1]], w, b, eps)


class _NormedFlash(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        x_t: torch.Tensor,
        x_s: torch.Tensor,
        w_t: torch.Tensor,
        b_t: torch.Tensor,
        w_s: torch.Tensor,
        b_s: torch.Tensor,
        w_q: torch.Tensor,
        w_k: torch.Tensor,
        w_v: torch.Tensor,
        mask: torch.Tensor | None,
        has_key: torch.Tensor | None,
        heads: int,
        eps: tuple[float, float],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        b, tt, d = x_t.shape
        dh = d // heads
        scale = 1.0 / math.sqrt(dh)
        t = _norm(x_t, w_t, b_t, eps[0])[0]
        s = _norm(x_s, w_s, b_s, eps[1])[0]
        (q,) = _heads(_padded(t.view(-1, d).mm(w_q.t()), b, 1, heads), b, 1, heads)
        kv = s.view(-1, d).mm(torch.cat((w_k, w_v)).t())  # K | V: one product
        k, v = _heads(_padded(kv, b, 2, heads), b, 2, heads)
        out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            q, k, v, 0.0, False, attn_mask=mask, scale=scale
        )
        merged = _thin(out, dh).reshape(b, tt, d)
        if has_key is not None:  # a sample without any real key: output 0 (fused_attention)
            merged.mul_(has_key[:, None, None])
        ctx.save_for_backward(x_t, x_s, w_t, b_t, w_s, b_s, w_q, w_k, w_v, merged, lse, mask)
        ctx.has_key, ctx.heads, ctx.eps, ctx.scale = has_key, heads, eps, scale
        return t, merged

    @staticmethod
    def backward(
        ctx: Any, g_t: torch.Tensor, g_out: torch.Tensor
    ) -> tuple[torch.Tensor | None, ...]:
        x_t, x_s, w_t, b_t, w_s, b_s, w_q, w_k, w_v, merged, lse, mask = ctx.saved_tensors
        heads, eps, has_key = ctx.heads, ctx.eps, ctx.has_key
        b, tt, d = x_t.shape
        ts = x_s.shape[1]
        dh = d // heads
        t, mean_t, rstd_t = _norm(x_t, w_t, b_t, eps[0])
        s, mean_s, rstd_s = _norm(x_s, w_s, b_s, eps[1])
        t2, s2 = t.view(b * tt, d), s.view(b * ts, d)
        (q,) = _heads(_padded(t2.mm(w_q.t()), b, 1, heads), b, 1, heads)
        k, v = _heads(_padded(s2.mm(torch.cat((w_k, w_v)).t()), b, 2, heads), b, 2, heads)
        if has_key is not None:
            g_out = g_out * has_key[:, None, None]
        (g_o,) = _heads(_padded(g_out.reshape(b * tt, d), b, 1, heads), b, 1, heads)
        (o,) = _heads(_padded(merged.view(b * tt, d), b, 1, heads), b, 1, heads)
        gq, gk, gv = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward(
            g_o, q, k, v, o, lse, 0.0, False, attn_mask=mask, scale=ctx.scale
        )
        gq = _thin(gq, dh).reshape(b * tt, d)
        gk = _thin(gk, dh).reshape(b * ts, d)
        gv = _thin(gv, dh).reshape(b * ts, d)
        g_wq, g_wk, g_wv = gq.t().mm(t2), gk.t().mm(s2), gv.t().mm(s2)
        g_t = g_t + gq.mm(w_q).view(b, tt, d)
        g_s = (gk.mm(w_k) + gv.mm(w_v)).view(b, ts, d)  # the sum autograd forms for s
        del t, s, t2, s2, q, k, v, gq, gk, gv
        gx_t, gw_t, gb_t = torch.ops.aten.native_layer_norm_backward(
            g_t, x_t, [d], mean_t, rstd_t, w_t, b_t, [True, True, True]
        )
        gx_s, gw_s, gb_s = torch.ops.aten.native_layer_norm_backward(
            g_s, x_s, [d], mean_s, rstd_s, w_s, b_s, [True, True, True]
        )
        return (
            gx_t, gx_s, gw_t, gb_t, gw_s, gb_s, g_wq, g_wk, g_wv,
            None, None, None, None,
        )  # fmt: skip


def normed_flash_attention(
    target: torch.Tensor,
    source: torch.Tensor,
    ln_t: nn.LayerNorm,
    ln_s: nn.LayerNorm,
    w_q: torch.Tensor,
    w_k: torch.Tensor,
    w_v: torch.Tensor,
    heads: int,
    key_mask: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(t, A)``: ``t = ln_t(target)`` and ``A = softmax(Q K^T / sqrt(d/K)) V`` heads merged,
    ``[B, T_t, d]``, with ``Q = t W_Q^T``, ``K, V = ln_s(source) W_{K,V}^T`` (bias-free) on the
    CPU flash kernel. ``key_mask [B, T_s]`` bool (``True`` = real key) or None (every key real);
    a sample with no real key gets ``A = 0``, as :func:`~mea_cli.models.layers.attention.
    fused_attention`. Rows of padded queries hold finite values (callers mask them)."""
    mask = has_key = None
    if key_mask is not None:
        keys, has = kernel_keys(key_mask)
        mask, has_key = additive_mask(keys, target.dtype), has.to(target.dtype)
    return _NormedFlash.apply(
        target, source, ln_t.weight, ln_t.bias, ln_s.weight, ln_s.bias, w_q, w_k, w_v,
        mask, has_key, heads, (ln_t.eps, ln_s.eps),
    )  # fmt: skip
