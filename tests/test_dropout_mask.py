"""The lean dropout's keep mask (mea_cli.models.layers.attention.keep_mask): the drop rate, the
exact scale of the kept values, and the same mask in the forward and backward passes."""

from __future__ import annotations

import torch
from torch import nn

from mea_cli.models.layers.attention import dropout, keep_mask


def test_keep_rate_and_scale() -> None:
    torch.manual_seed(0)
    x = torch.ones(400, 501)  # not a multiple of 4 elements per draw: the tail is covered
    keep, scale = keep_mask(x, 0.1)
    assert keep.dtype == torch.bool and keep.shape == x.shape
    cut = round(0.1 * 65536)
    assert scale == 65536 / (65536 - cut)  # 1 / the exact keep rate of the 16-bit comparison
    assert abs(keep.float().mean().item() - 0.9) < 0.003  # 200,400 draws: sd 0.0007
    assert keep_mask(x, 0.0)[0].all()


def test_lean_dropout_backward_uses_the_forward_mask() -> None:
    torch.manual_seed(1)
    x = torch.randn(6, 7, 5, requires_grad=True)
    drop = nn.Dropout(0.3).train()
    y = dropout(x, drop)
    (g,) = torch.autograd.grad(y.sum(), x)
    kept = y != 0
    assert 0.5 < kept.float().mean() < 0.9
    scale = 65536 / (65536 - round(0.3 * 65536))
    torch.testing.assert_close(y[kept], x[kept] * scale)
    torch.testing.assert_close(g, kept.float() * scale)
