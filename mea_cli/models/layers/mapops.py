"""Products and the prediction-chain convolution over ``[N, T, T]`` attention maps, with forward
and backward passes written in the formulation that is fastest on CPU (same maths).

Two measured facts (``docs/performance.md``; oneDNN / MKL in torch 2.13 on x86 CPUs) motivate
this module:

* A map times a thin matrix, ``A [N, Tq, Tk] @ X [N, Tk, c]`` with ``c = d / K`` (5 at the MOSI
  preset), is about five times faster computed as ``(X^T @ A^T)^T``: the BLAS kernels handle a
  thin *left* operand far better than a thin right one. The results are the same sums.
* ``torch``'s convolution backward for a 3x3, 8-channel convolution over a ``T x T`` map is
  about three times slower than computing the input gradient as the forward convolution of the
  output gradient with the flipped, transposed kernel (the textbook identity for stride 1 and
  'same' padding), the kernel gradient alone, and the bias gradient as a sum.

Each function here is an autograd ``Function`` whose forward and backward use these forms.
They are only used on the efficient path; ``explicit_attention()`` runs the plain ops.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F

from mea_cli.models.core.amp import keeps_autocast


def _map_times_thin(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``a [N, Tq, Tk] @ x [N, Tk, c]``, computed as ``(x^T @ a^T)^T`` (a view, ``[N, Tq, c]``)."""
    return torch.bmm(x.transpose(1, 2), a.transpose(1, 2)).transpose(1, 2)


@keeps_autocast
class _MapMatmul(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(a, x)
        return _map_times_thin(a, x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        a, x = ctx.saved_tensors
        ga = torch.bmm(grad, x.transpose(1, 2)) if ctx.needs_input_grad[0] else None
        gx = _map_times_thin(a.transpose(1, 2), grad) if ctx.needs_input_grad[1] else None
        return ga, gx


def map_matmul(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``a [N, Tq, Tk] @ x [N, Tk, c]`` (attention weights times values) -> ``[N, Tq, c]``."""
    return _MapMatmul.apply(a, x)


@keeps_autocast
class _MixedScores(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        base: torch.Tensor | None,
        q: torch.Tensor,
        k: torch.Tensor,
        beta: float,
        alpha: float,
    ) -> torch.Tensor:
        ctx.save_for_backward(q, k)
        ctx.beta, ctx.alpha = beta, alpha
        if base is None:
            return torch.bmm(q * alpha, k.transpose(1, 2))
        return torch.baddbmm(base, q, k.transpose(1, 2), beta=beta, alpha=alpha)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        q, k = ctx.saved_tensors
        beta, alpha = ctx.beta, ctx.alpha
        gbase = gq = gk = None
        if ctx.needs_input_grad[0]:
            gbase = grad * beta
        if ctx.needs_input_grad[1]:
            gq = _map_times_thin(grad, k) * alpha
        if ctx.needs_input_grad[2]:
            gk = _map_times_thin(grad.transpose(1, 2), q) * alpha
        return gbase, gq, gk, None, None


def mixed_scores(
    base: torch.Tensor | None, q: torch.Tensor, k: torch.Tensor, beta: float, alpha: float
) -> torch.Tensor:
    """``beta * base + alpha * q @ k^T`` (``base`` may be None: then ``alpha * q @ k^T``).

    ``q [N, Tq, c]``, ``k [N, Tk, c]``, ``base [N, Tq, Tk]``; the result is a new
    ``[N, Tq, Tk]`` tensor (safe to modify in place).
    """
    return _MixedScores.apply(base, q, k, float(beta), float(alpha))


def _conv_grads(
    grad: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    has_bias: bool,
    needs: tuple[bool, bool, bool],
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Gradients of a stride-1 'same' ``conv2d(x, weight, bias)`` for the requested inputs."""
    pad = weight.shape[-1] // 2
    gx = gw = gb = None
    if needs[0]:  # the forward convolution of the gradient with the flipped, transposed kernel
        gx = F.conv2d(grad, weight.flip(2, 3).transpose(0, 1), padding=pad)
    if needs[1]:
        gw = torch.ops.aten.convolution_backward(
            grad, x, weight, None, [1, 1], [pad, pad], [1, 1], False, [0, 0], 1,
            [False, True, False],
        )[1]  # fmt: skip
    if has_bias and needs[2]:
        gb = grad.sum(dim=(0, 2, 3))
    return gx, gw, gb


@keeps_autocast
class _SameConv2d(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return F.conv2d(x, weight, bias, padding=weight.shape[-1] // 2)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        return _conv_grads(grad, x, weight, ctx.has_bias, ctx.needs_input_grad[:3])


def same_conv2d(x: torch.Tensor, conv: torch.nn.Conv2d) -> torch.Tensor:
    """``conv(x)`` for a stride-1, odd-square-kernel, 'same'-padded, ungrouped ``Conv2d``."""
    return _SameConv2d.apply(x, conv.weight, conv.bias)


def _per_head(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``[B*K, Tq, Tk]`` -> ``[B, K, Tq, Tk]`` (a view), to broadcast a ``[B, 1, Tq, Tk]`` mask."""
    n, tq, tk = x.shape
    return x.view(n // heads, heads, tq, tk)


def _softmax_padded_keys(
    logits: torch.Tensor, pairs: torch.Tensor | None, heads: int
) -> torch.Tensor:
    """Softmax over keys giving padded (query, key) pairs zero weight (rows of padded queries
    are left as they come: they only reach padded, zeroed outputs)."""
    if pairs is None:
        return torch.softmax(logits, dim=-1)
    filled = _per_head(logits, heads).masked_fill(~pairs, torch.finfo(logits.dtype).min)
    return torch.softmax(filled, dim=-1).view_as(logits)


@dataclass(frozen=True)
class ScoreStep:
    """How one PSA layer formed its pre-softmax maps, kept so that a later backward pass can
    form them again: ``q, k [B*K, T, c]`` (detached), the chain convolution's weight and bias
    (None for a layer without prediction), ``mu`` and the scale ``1 / sqrt(d/K)``."""

    q: torch.Tensor
    k: torch.Tensor
    weight: torch.Tensor | None
    bias: torch.Tensor | None
    mu: float
    scale: float


def _scores(
    prev: torch.Tensor | None, step: ScoreStep, pairs: torch.Tensor | None, heads: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(A_logit [B*K, T, T] zero at padded pairs, Conv2d(prev) or None)`` for one layer."""
    n, t, _ = step.q.shape
    kt = step.k.transpose(1, 2)
    conv = None
    if step.weight is not None and prev is not None:
        conv = F.conv2d(prev, step.weight, step.bias, padding=step.weight.shape[-1] // 2)
        alpha = (1.0 - step.mu) * step.scale
        logits = torch.baddbmm(F.gelu(conv).view(n, t, t), step.q, kt, beta=step.mu, alpha=alpha)
    else:
        logits = torch.bmm(step.q * step.scale, kt)
    if pairs is not None:
        _per_head(logits, heads).masked_fill_(~pairs, 0.0)
    return logits, conv


@keeps_autocast
class _PSAMaps(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        prev: torch.Tensor | None,
        weight: torch.Tensor | None,
        bias: torch.Tensor | None,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        pairs: torch.Tensor | None,
        heads: int,
        mu: float,
        scale: float,
        history: tuple[ScoreStep, ...] | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        step = ScoreStep(q, k, weight, bias, mu, scale)
        logits, conv = _scores(prev, step, pairs, heads)
        attn = _softmax_padded_keys(logits, pairs, heads)
        out = _map_times_thin(attn, v).contiguous()
        ctx.heads, ctx.mu, ctx.scale, ctx.history = heads, mu, scale, history
        ctx.chain = conv is not None
        if history is not None:  # keep no map: every map is formed again in backward
            ctx.save_for_backward(weight, bias, q, k, v, pairs)
        else:
            ctx.save_for_backward(weight, bias, q, k, v, pairs, prev, logits, conv, attn)
        return out, _per_head(logits, heads)

    @staticmethod
    def backward(
        ctx: Any, g_out: torch.Tensor, g_logits: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, ...]:
        heads, mu = ctx.heads, ctx.mu
        weight, bias, q, k, v, pairs, *kept = ctx.saved_tensors
        if ctx.history is not None:
            with torch.no_grad():
                prev = None
                for step in ctx.history if ctx.chain else ():  # earlier maps, as in forward
                    prev, _ = _scores(prev, step, pairs, heads)
                    prev = _per_head(prev, heads)
                step = ScoreStep(q, k, weight, bias, mu, ctx.scale)
                logits, conv = _scores(prev if ctx.chain else None, step, pairs, heads)
                attn = _softmax_padded_keys(logits, pairs, heads)
        else:
            prev, logits, conv, attn = kept
        alpha = (1.0 - mu) * ctx.scale if ctx.chain else ctx.scale
        g_attn = torch.bmm(g_out, v.transpose(1, 2))
        g_v = _map_times_thin(attn.transpose(1, 2), g_out)
        g_s = torch._softmax_backward_data(g_attn, attn, -1, attn.dtype)
        del g_attn, attn, logits
        if g_logits is not None:
            g_s.add_(g_logits.reshape_as(g_s))
        if pairs is not None:  # the forward overwrote padded pairs with 0: no gradient there
            _per_head(g_s, heads).masked_fill_(~pairs, 0.0)
        g_q = _map_times_thin(g_s, k) * alpha
        g_k = _map_times_thin(g_s.transpose(1, 2), q) * alpha
        g_prev = g_w = g_b = None
        if ctx.chain:
            g_c = torch.ops.aten.gelu_backward(g_s.view_as(conv).mul_(mu), conv)
            del conv, g_s
            needs = (ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.needs_input_grad[2])
            g_prev, g_w, g_b = _conv_grads(g_c, prev, weight, bias is not None, needs)
        return g_prev, g_w, g_b, g_q, g_k, g_v, None, None, None, None, None


def psa_maps(
    prev: torch.Tensor | None,
    chain: torch.nn.Conv2d | None,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    pairs: torch.Tensor | None,
    heads: int,
    mu: float,
    scale: float,
    history: tuple[ScoreStep, ...] | None,
) -> tuple[torch.Tensor, torch.Tensor, ScoreStep]:
    """The map part of a PSA layer (Eq. 2 and ``A V`` of Eq. 3, logit-mixing form) in one node.

    ``q, k, v [B*K, T, c]``; ``prev [B, K, T, T]`` (the previous layer's pre-softmax maps, or
    None); ``chain`` the layer's Conv2d predictor (None: no prediction); ``pairs [B, 1, T, T]``
    bool (None: no padding). Returns ``(A V [B*K, T, c], A_logit [B, K, T, T], step)`` with
    ``A_logit`` zero at padded pairs and ``step`` the recipe of this layer's maps::

        A_logit = mu GeLU(Conv2d(prev)) + (1 - mu) scale Q K^T    (scale Q K^T without prediction)
        A       = softmax over the real keys of A_logit

    With ``history=None`` the backward pass uses the convolution output, ``A_logit``, ``A`` and
    ``prev`` kept from the forward pass (fastest). With ``history`` (the steps of the earlier
    layers, ``checkpoint_psa``), no map is kept at all: the backward pass forms ``prev`` again
    from those steps (their ``Q``, ``K`` and kernels are small) and then this layer's maps, so
    PSA's training memory holds no ``T x T`` map between the forward and the backward pass.
    """
    weight = chain.weight if chain is not None and prev is not None else None
    bias = chain.bias if weight is not None else None
    out, logits = _PSAMaps.apply(
        prev if weight is not None else None,
        weight,
        bias,
        q,
        k,
        v,
        pairs,
        heads,
        mu,
        scale,
        history,
    )
    step = ScoreStep(
        q.detach(),
        k.detach(),
        None if weight is None else weight.detach(),
        None if bias is None else bias.detach(),
        mu,
        scale,
    )
    return out, logits, step
