"""The CPU flash kernel on padded thin heads (mea_cli.models.layers.flash) gives the plain
kernel's outputs and gradients: padding with zero columns changes no number of the maths."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from mea_cli.models.layers.attention import fused_attention
from mea_cli.models.layers.flash import PAD_TO, padded_flash_attention, thin_heads


def _qkv(b: int, h: int, tq: int, ts: int, dh: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(dh)
    return tuple(
        torch.randn(b, h, t, dh, generator=g).requires_grad_() for t in (tq, ts, ts)
    )


@pytest.mark.parametrize("dh", [4, 5, 6])
@pytest.mark.parametrize("masked", [False, True])
def test_padded_flash_matches_plain_kernel(dh: int, masked: bool) -> None:
    q, k, v = _qkv(3, 8, 11, 19, dh)
    keys = (torch.arange(19)[None] < torch.tensor([19, 7, 1])[:, None])[:, None, None, :]
    mask = keys if masked else None
    out = padded_flash_attention(q, k, v, mask)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert out.shape == ref.shape == (3, 8, 11, dh)
    grad = torch.randn_like(out)
    got = torch.autograd.grad(out, (q, k, v), grad)
    want = torch.autograd.grad(ref, (q, k, v), grad)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-5)
    for a, b in zip(got, want, strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    if masked:  # keys past a sample's length get no gradient
        assert got[1][2, :, 1:].abs().max() == 0 and got[2][1, :, 7:].abs().max() == 0


def test_thin_heads_only_where_the_flash_kernel_runs() -> None:
    q = torch.zeros(1, 1, 2, 5)
    assert thin_heads(q, 0.0)
    assert not thin_heads(q, 0.1)  # dropout: SDPA's math path
    assert not thin_heads(torch.zeros(1, 1, 2, PAD_TO), 0.0)
    assert not thin_heads(q.double(), 0.0)


def test_fused_attention_pads_and_keeps_empty_sources_zero() -> None:
    q, k, v = _qkv(2, 8, 6, 9, 5)
    mask = torch.arange(9)[None] < torch.tensor([9, 0])[:, None]
    out = fused_attention(q, k, v, mask, 0.0)
    assert out[1].abs().max() == 0  # an empty source: a zero update, never NaN
    ref = F.scaled_dot_product_attention(q[:1], k[:1], v[:1])
    torch.testing.assert_close(out[:1], ref, atol=1e-6, rtol=1e-5)
