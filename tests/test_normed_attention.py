"""The fused MRU node (mea_cli.models.layers.normed_attention) and the LayerNorm folded into the
feed-forward node give the plain modules' outputs and gradients, with masks and padding, and
keep fewer tensors for the backward pass."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from mea_cli.models.core.masking import masked_softmax
from mea_cli.models.layers.attention import (
    FeedForward,
    explicit_attention,
    merge_heads,
    split_heads,
)
from mea_cli.models.layers.normed_attention import normed_flash_attention
from mea_cli.models.mea.hca import MRU


def _modules(
    d: int, seed: int
) -> tuple[nn.LayerNorm, nn.LayerNorm, nn.Linear, nn.Linear, nn.Linear]:
    torch.manual_seed(seed)
    mods = (nn.LayerNorm(d), nn.LayerNorm(d), *(nn.Linear(d, d, bias=False) for _ in range(3)))
    with torch.no_grad():  # LayerNorm affine parameters away from their (1, 0) start
        for ln in mods[:2]:
            ln.weight.uniform_(0.5, 1.5)
            ln.bias.uniform_(-0.5, 0.5)
    return mods


def _plain(target, source, mods, heads, key_mask):  # the modules one by one, explicit softmax
    ln_t, ln_s, wq, wk, wv = mods
    t, s = ln_t(target), ln_s(source)
    q, k, v = (split_heads(f(x), heads) for f, x in ((wq, t), (wk, s), (wv, s)))
    logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    mask = (
        torch.ones_like(logits, dtype=torch.bool) if key_mask is None else key_mask[:, None, None]
    )
    attn = masked_softmax(logits, mask.expand_as(logits))
    return t, merge_heads(attn @ v)


@pytest.mark.parametrize("heads,d", [(8, 40), (10, 40), (4, 24)])
@pytest.mark.parametrize("masked", [False, True])
def test_normed_flash_equals_the_modules_one_by_one(heads: int, d: int, masked: bool) -> None:
    g = torch.Generator().manual_seed(d + heads)
    target = torch.randn(3, 11, d, generator=g).requires_grad_()
    source = torch.randn(3, 19, d, generator=g).requires_grad_()
    mods = _modules(d, heads)
    key_mask = torch.arange(19)[None] < torch.tensor([19, 7, 0])[:, None] if masked else None
    got = normed_flash_attention(
        target, source, *mods[:2], *(m.weight for m in mods[2:]), heads, key_mask
    )
    want = _plain(target, source, mods, heads, key_mask)
    if masked:  # a sample with no real key: output 0 (as fused_attention), never NaN
        want = (want[0], torch.nan_to_num(want[1]) * (key_mask.any(1)[:, None, None]))
        assert got[1][2].abs().max() == 0
    grads = [torch.randn(x.shape, generator=g) for x in got]
    inputs = (target, source, *(p for m in mods for p in m.parameters()))
    g_got = torch.autograd.grad(got, inputs, grads)
    g_want = torch.autograd.grad(want, inputs, grads)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    for a, b in zip(g_got, g_want, strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-5)
    if masked:  # padded keys get no gradient
        assert g_got[1][1, 7:].abs().max() == 0 and g_got[1][2].abs().max() == 0


def test_feed_forward_normed_equals_ffn_of_layernorm() -> None:
    torch.manual_seed(3)
    ffn, ln = FeedForward(8, 4, 0.3).train(), nn.LayerNorm(8)
    with torch.no_grad():
        ln.weight.uniform_(0.5, 1.5)
        ln.bias.uniform_(-0.5, 0.5)
    z = torch.randn(2, 9, 8, requires_grad=True)
    params = (z, *ffn.parameters(), *ln.parameters())
    torch.manual_seed(5)
    got = ffn.normed(z, ln)
    g_got = torch.autograd.grad(got.square().sum(), params)
    torch.manual_seed(5)  # same dropout draws in the same order
    want = ffn(ln(z))
    g_want = torch.autograd.grad(want.square().sum(), params)
    torch.testing.assert_close(got, want, atol=0, rtol=0)
    for a, b in zip(g_got, g_want, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def _saved_bytes(fn) -> int:
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


def test_mru_fused_path_equals_explicit_path_and_keeps_less() -> None:
    """The MRU's efficient path (fused node, LayerNorm inside the FFN node) against its
    explicit path (maps formed): same outputs and gradients in eval; padding the batch further
    changes no real step; fewer bytes kept for backward in training."""
    torch.manual_seed(0)
    mru = MRU(40, 8, 0.1, 0.0, 4).eval()
    target = torch.randn(2, 13, 40, requires_grad=True)
    source = torch.randn(2, 21, 40, requires_grad=True)
    tm = torch.arange(13)[None] < torch.tensor([13, 6])[:, None]
    sm = torch.arange(21)[None] < torch.tensor([9, 21])[:, None]
    params = (target, source, *mru.parameters())
    got, _ = mru(source, sm, target, tm, need_weights=False)
    g_got = torch.autograd.grad(got.sum(), params)
    with explicit_attention():
        want, _ = mru(source, sm, target, tm, need_weights=False)
    g_want = torch.autograd.grad(want.sum(), params)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    for a, b in zip(g_got, g_want, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    pad_t = torch.cat([target, torch.randn(2, 5, 40)], 1)  # padding holds garbage, masked
    pad_s = torch.cat([source, torch.randn(2, 4, 40)], 1)
    padded, _ = mru(
        pad_s, torch.cat([sm, torch.zeros(2, 4, dtype=torch.bool)], 1),
        pad_t, torch.cat([tm, torch.zeros(2, 5, dtype=torch.bool)], 1), need_weights=False,
    )  # fmt: skip
    torch.testing.assert_close(padded[:, :13], got, atol=1e-5, rtol=1e-5)
    assert padded[:, 13:].abs().max() == 0
    mru.train()
    fused = _saved_bytes(lambda: mru(source, sm, target, tm, need_weights=False))
    with explicit_attention():
        explicit = _saved_bytes(lambda: mru(source, sm, target, tm, need_weights=False))
    assert fused < 0.5 * explicit


def test_normed_flash_gradcheck_double() -> None:
    """Finite differences in double precision through the node's own backward (masks, an
    empty source, LayerNorm parameters and the three weights)."""
    g = torch.Generator().manual_seed(7)
    d, heads = 8, 2
    key_mask = torch.arange(4)[None] < torch.tensor([4, 2, 0])[:, None]

    def leaf(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_()

    def fn(x_t, x_s, wt, bt, ws, bs, wq, wk, wv):  # LayerNorms as (weight, bias, eps)
        ln_t = SimpleNamespace(weight=wt, bias=bt, eps=1e-5)
        ln_s = SimpleNamespace(weight=ws, bias=bs, eps=1e-5)
        return normed_flash_attention(x_t, x_s, ln_t, ln_s, wq, wk, wv, heads, key_mask)

    args = (
        leaf(3, 3, d),
        leaf(3, 4, d),
        *(leaf(d) for _ in range(4)),
        *(leaf(d, d) for _ in range(3)),
    )
    assert torch.autograd.gradcheck(fn, args, atol=1e-6, fast_mode=True)
