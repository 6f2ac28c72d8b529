"""CPU flash attention for thin heads: the same kernel, run on head dimensions padded to 16.

MEA's and MulT's heads are thin (``d / K`` = 5 at MEA's MOSI preset, 4 at MOSEI, 6 for MMSA's
MulT). torch's CPU flash-attention kernel (``_scaled_dot_product_flash_attention_for_cpu``, what
``F.scaled_dot_product_attention`` runs on CPU without dropout) is vectorised over the head
dimension; a head of 5 floats runs it far below its speed on a full vector. Padding ``q``, ``k``
and ``v`` with zero columns up to :data:`PAD_TO` changes no number of the maths:

* ``q . k`` gains only ``0 * 0`` terms, so the scores, the softmax and the log-sum-exp are those
  of the thin heads (the scale is passed as ``1 / sqrt(d_head)`` of the *thin* head);
* the output's extra columns are weighted sums of zeros, and are cut off;
* in the backward pass the output gradient is padded with zeros, so the kernel's row sums
  ``D = rowsum(dO * O)`` are unchanged, and the gradients' extra columns are cut off.

Measured (``docs/performance.md``, one thread): forward + backward of one MRU's attention,
8 heads of 5, 275 x 510 and 500 x 925: 11.3 -> 6.9 ms and 40.5 -> 23.3 ms. Padding to 8 gained
little on this AVX-512 machine, so 16 (a multiple of both AVX2's and AVX-512's float vectors).

Memory: the autograd node keeps the *thin* ``q, k, v``, output and log-sum-exp (what the plain
kernel keeps) and pads again in the backward pass, so the saved tensors do not grow; only the
padded copies of one call live at a time.
"""

from __future__ import annotations

import math
from typing import Any

import torch

PAD_TO = 16
"""Head dimensions below this are padded to it on CPU (see the module docstring)."""


def _pad(x: torch.Tensor, width: int) -> torch.Tensor:
    """``x [..., c]`` with zero columns appended up to ``width``, contiguous."""
    out = x.new_zeros((*x.shape[:-1], width))
    out[..., : x.shape[-1]] = x
    return out


class _PaddedFlash(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        mask: torch.Tensor | None,
    ) -> torch.Tensor:
        dh = q.shape[-1]
        scale = 1.0 / math.sqrt(dh)
        out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            _pad(q, PAD_TO), _pad(k, PAD_TO), _pad(v, PAD_TO), 0.0, False,
            attn_mask=mask, scale=scale,
        )  # fmt: skip
        out = out[..., :dh].contiguous()
        ctx.save_for_backward(q, k, v, out, lse, mask)
        ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        q, k, v, out, lse, mask = ctx.saved_tensors
        dh = q.shape[-1]
        gq, gk, gv = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward(
            _pad(grad, PAD_TO), _pad(q, PAD_TO), _pad(k, PAD_TO), _pad(v, PAD_TO),
            _pad(out, PAD_TO), lse, 0.0, False, attn_mask=mask, scale=ctx.scale,
        )  # fmt: skip
        return gq[..., :dh], gk[..., :dh], gv[..., :dh], None


def thin_heads(q: torch.Tensor, dropout_p: float, head_dim: int | None = None) -> bool:
    """Whether :func:`padded_flash_attention` applies: a CPU float32 call without dropout whose
    heads (``head_dim``, default ``q``'s last dimension) are thinner than :data:`PAD_TO` (with
    dropout SDPA runs its math path anyway)."""
    return (
        q.device.type == "cpu"
        and q.dtype == torch.float32
        and dropout_p == 0.0
        and (q.shape[-1] if head_dim is None else head_dim) < PAD_TO
        and not torch.is_autocast_enabled("cpu")
    )


def padded_flash_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor | None
) -> torch.Tensor:
    """``softmax(Q K^T / sqrt(d_head)) V`` (``[B, K, Tq, d_head]``) through the CPU flash kernel
    on heads padded to :data:`PAD_TO`; ``key_mask [B, 1, 1, Ts]`` bool (``True`` = attend) or
    None. Every sample needs at least one real key (callers handle empty sources)."""
    mask = None if key_mask is None else additive_mask(key_mask, q.dtype)
    return _PaddedFlash.apply(q, k, v, mask)


def kernel_keys(key_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(keys [B, 1, 1, Ts], has_key [B])`` for a kernel from ``key_mask [B, Ts]`` (``True`` =
    real key): a sample without any real key has all its keys unmasked (no NaN row), and its
    output must be multiplied by ``has_key`` (0), as the explicit masked softmax gives."""
    has_key = key_mask.any(dim=1)
    return (key_mask | ~has_key[:, None])[:, None, None, :], has_key


def additive_mask(keys: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """What SDPA makes of a boolean mask (``True`` = attend): 0 to attend, -inf not to."""
    return torch.zeros(keys.shape, dtype=dtype).masked_fill_(~keys, -math.inf)
