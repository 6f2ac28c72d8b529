"""Multi-head scaled dot-product attention pieces shared by PSA (Eq. 2-4) and MRU (Eq. 7-9).

The paper writes single-head formulas (``Q K^T / sqrt(d)``) and then uses ``K`` heads (Table I:
8 for MOSI and IEMOCAP, 10 for MOSEI). We split ``d`` into ``K`` heads of ``d / K`` channels and
scale by ``sqrt(d / K)`` as in the Transformer [24] that the paper follows. The projections are
bias-free (``Q = LN(Z) W_Q`` in the paper) and there is no output projection ``W_O``: the paper
has none, and Eq. 3 / Eq. 8 add the head outputs straight onto the normalised input.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from mea_cli.models.core.amp import keeps_autocast
from mea_cli.models.core.masking import masked_softmax, pair_mask
from mea_cli.models.layers.flash import kernel_keys, padded_flash_attention, thin_heads

_FUSED = True


def fused_enabled() -> bool:
    """Whether the fused attention paths are on (the default); see :func:`explicit_attention`."""
    return _FUSED


@contextlib.contextmanager
def explicit_attention(enabled: bool = True) -> Iterator[None]:
    """Within the block, use the original explicit attention code everywhere (reference / bench).

    The fused paths (``F.scaled_dot_product_attention`` in the MRUs, fewer passes over the maps
    in PSA) compute the same maths; this switch exists to compare the two in one process.
    """
    global _FUSED
    before = _FUSED
    _FUSED = not enabled
    try:
        yield
    finally:
        _FUSED = before


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``[B, T, d]`` -> ``[B, K, T, d/K]``."""
    b, t, d = x.shape
    return x.view(b, t, heads, d // heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """``[B, K, T, d/K]`` -> ``[B, T, d]``."""
    b, k, t, dh = x.shape
    return x.transpose(1, 2).reshape(b, t, k * dh)


class QKV(nn.Module):
    """The three bias-free ``d x d`` projections and the per-head logits ``Q K^T / sqrt(d/K)``."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(d, d, bias=False)
        self.k = nn.Linear(d, d, bias=False)
        self.v = nn.Linear(d, d, bias=False)

    def forward(
        self, target: torch.Tensor, source: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the logits ``[B, K, Tt, Ts]`` and the values ``[B, K, Ts, d/K]``."""
        q = split_heads(self.q(target), self.heads)
        k = split_heads(self.k(source), self.heads)
        v = split_heads(self.v(source), self.heads)
        logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        return logits, v

    def project(
        self, target: torch.Tensor, source: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-head ``Q [B, K, Tt, d/K]``, ``K, V [B, K, Ts, d/K]`` (no logits formed)."""
        return (
            split_heads(self.q(target), self.heads),
            split_heads(self.k(source), self.heads),
            split_heads(self.v(source), self.heads),
        )


def fused_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    key_mask: torch.Tensor | None,
    dropout_p: float,
) -> torch.Tensor:
    """``masked_softmax(Q K^T / sqrt(d/K)) V`` with dropout on the weights, fused, ``[B, K, Tq, d/K]``.

    ``key_mask [B, Ts]`` (``True`` = real key). Rows of padded *queries* are not zeroed here
    (every caller zeroes padded steps of its output, and all later operations are per step); a
    sample with no real key at all (empty source) gets an all-zero output, as the explicit masked
    softmax gives, never NaN: its keys are unmasked for the kernel and the result multiplied by 0.
    ``key_mask=None``: every key is real (no mask for the kernel).
    """
    thin = thin_heads(q, dropout_p)  # CPU flash kernel on heads padded to 16 (same maths)
    if key_mask is None:
        if thin:
            return padded_flash_attention(q, k, v, None)
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
    keys, has_key = kernel_keys(key_mask)
    if thin:
        out = padded_flash_attention(q, k, v, keys)
    else:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=keys, dropout_p=dropout_p)
    return out * has_key[:, None, None, None].to(out.dtype)


class _LeanDropout(torch.autograd.Function):
    """Inverted dropout that keeps its mask as booleans (torch's CPU dropout keeps a float mask)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, p: float) -> torch.Tensor:
        keep = torch.empty_like(x, dtype=torch.bool).bernoulli_(1.0 - p)
        ctx.p = p
        ctx.save_for_backward(keep)
        return x.mul(keep).mul_(1.0 / (1.0 - p))

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        (keep,) = ctx.saved_tensors
        return grad.mul(keep).mul_(1.0 / (1.0 - ctx.p)), None


def dropout(x: torch.Tensor, module: nn.Dropout) -> torch.Tensor:
    """``module(x)``; on the efficient path in training the mask is kept as booleans (4x less
    memory than torch's float mask on CPU; same distribution, a different random stream)."""
    if module.training and module.p > 0 and fused_enabled() and torch.is_grad_enabled():
        return _LeanDropout.apply(x, module.p)
    return module(x)


@keeps_autocast
class _LeanFFN(torch.autograd.Function):
    """``fc2(dropout(GeLU(fc1(x))))`` keeping only ``x`` and the dropout mask for backward."""

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        w1: torch.Tensor,
        b1: torch.Tensor,
        w2: torch.Tensor,
        b2: torch.Tensor,
        p: float,
        ln_w: torch.Tensor | None,
        ln_b: torch.Tensor | None,
        eps: float | None,
    ) -> torch.Tensor:
        z = x
        if eps is not None:  # x = LN(z), recomputed in backward from z (FeedForward.normed)
            x = torch.native_layer_norm(z, [z.shape[-1]], ln_w, ln_b, eps)[0]
        hidden = F.gelu(F.linear(x, w1, b1))
        keep = None
        if p > 0:
            keep = torch.empty_like(hidden, dtype=torch.bool).bernoulli_(1.0 - p)
            hidden = hidden.mul_(keep).mul_(1.0 / (1.0 - p))
        ctx.p, ctx.eps = p, eps
        ctx.save_for_backward(z, w1, b1, w2, keep, ln_w, ln_b)
        return F.linear(hidden, w2, b2)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, w1, b1, w2, keep, ln_w, ln_b = ctx.saved_tensors
        z = x
        if ctx.eps is not None:
            x, mean, rstd = torch.native_layer_norm(z, [z.shape[-1]], ln_w, ln_b, ctx.eps)
        pre = F.linear(x, w1, b1)  # recomputed: one d -> mult*d product
        hidden = F.gelu(pre)
        if keep is not None:
            hidden = hidden.mul_(keep).mul_(1.0 / (1.0 - ctx.p))
        g2 = grad.reshape(-1, grad.shape[-1])
        g_w2 = g2.t() @ hidden.reshape(-1, hidden.shape[-1])
        g_b2 = g2.sum(dim=0)
        g_hidden = grad @ w2
        del hidden
        if keep is not None:
            g_hidden = g_hidden.mul_(keep).mul_(1.0 / (1.0 - ctx.p))
        g_pre = torch.ops.aten.gelu_backward(g_hidden, pre)
        del pre, g_hidden
        g1 = g_pre.reshape(-1, g_pre.shape[-1])
        g_w1 = g1.t() @ x.reshape(-1, x.shape[-1])
        g_b1 = g1.sum(dim=0)
        g_x = g_pre @ w1
        if ctx.eps is None:
            return g_x, g_w1, g_b1, g_w2, g_b2, None, None, None, None
        g_z, g_lw, g_lb = torch.ops.aten.native_layer_norm_backward(
            g_x, z, [z.shape[-1]], mean, rstd, ln_w, ln_b, [True, True, True]
        )
        return g_z, g_w1, g_b1, g_w2, g_b2, None, g_lw, g_lb, None


class FeedForward(nn.Module):
    """Position-wise feed-forward network ``F_theta`` / ``F_delta`` of Eq. 4 and Eq. 9.

    The paper gives no width or activation; we use the Transformer's ``d -> 4d -> d`` with GeLU
    (the activation the paper uses everywhere else) and dropout after each layer.

    Efficient path (same maths, ``docs/performance.md``): the ``mult * d``-wide hidden layer is
    not kept for the backward pass but recomputed there from the input (one ``d -> mult*d``
    product and a GeLU), with the inner dropout's mask kept as booleans; this keeps 2 x 4 x d
    floats per time step out of the training memory of every PSA layer and MRU.
    """

    def __init__(self, d: int, mult: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d, mult * d)
        self.fc2 = nn.Linear(mult * d, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if fused_enabled() and torch.is_grad_enabled():
            return self._lean(x, None)
        return self.drop(self.fc2(self.drop(F.gelu(self.fc1(x)))))

    def _lean(self, x: torch.Tensor, ln: nn.LayerNorm | None) -> torch.Tensor:
        """The efficient path: one :class:`_LeanFFN` node (with ``ln`` inside it when given),
        then the output dropout."""
        p = self.drop.p if self.training else 0.0
        norm = (None, None, None) if ln is None else (ln.weight, ln.bias, ln.eps)
        inner = _LeanFFN.apply(
            x, self.fc1.weight, self.fc1.bias, self.fc2.weight, self.fc2.bias, p, *norm
        )
        return dropout(inner, self.drop)

    def normed(self, z: torch.Tensor, ln: nn.LayerNorm) -> torch.Tensor:
        """``self(ln(z))``; on the efficient path (training, no autocast) ``ln(z)`` is formed
        inside the feed-forward node and recomputed in its backward pass from ``z``: one
        ``[B, T, d]`` tensor kept for backward instead of two (``z`` for the LayerNorm and
        ``ln(z)`` for the first product); same maths, the kernels ``nn.LayerNorm`` runs."""
        if (
            fused_enabled()
            and torch.is_grad_enabled()
            and not torch.is_autocast_enabled(z.device.type)
            and ln.elementwise_affine
            and ln.bias is not None
        ):
            return self._lean(z, ln)
        return self(ln(z))


class SkipFeedForward(nn.Module):
    """``Z + FFN(LN(Z))``: the position-wise feed-forward layer with its pre-LN skip connection
    (the form of Eq. 4 / Eq. 9), as one block for the models that use it that way (MCR)."""

    def __init__(self, d: int, mult: int, dropout: float) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(d)
        self.ffn = FeedForward(d, mult, dropout)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z + self.ffn.normed(z, self.ln)


def attend(
    qkv: QKV,
    target: torch.Tensor,
    source: torch.Tensor,
    target_mask: torch.Tensor,
    source_mask: torch.Tensor,
    dropout: nn.Dropout,
    need_weights: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Masked multi-head attention of ``target`` over ``source``, heads merged: ``[B, Tt, d]``.

    With ``need_weights`` the explicit path also returns the maps ``[B, K, Tt, Ts]`` (padded
    pairs 0, ``dropout`` on the weights); without, the fused kernel runs (same maths) and no map
    is formed. Rows of padded targets hold finite values: callers mask their outputs.
    """
    if not need_weights and fused_enabled():
        q, k, v = qkv.project(target, source)
        p = dropout.p if dropout.training else 0.0
        return merge_heads(fused_attention(q, k, v, source_mask, p)), None
    logits, v = qkv(target, source)
    attn = masked_softmax(logits, pair_mask(target_mask, source_mask))
    return merge_heads(dropout(attn) @ v), attn
