"""The efficient execution paths compute the same numbers as the explicit code (issue 15).

Length-grouped PSA and HCA, the map products and convolution of ``mapops``, the PSA map node
with and without recomputation (``checkpoint_psa``), checkpointed HCA groups, the lean FFN and
the unpacked Bi-LSTM are each compared with the explicit reference path
(``explicit_attention()``): forward values to 1e-5 in eval mode, gradients to 1e-4; in train
mode (dropout on), checkpointed and plain runs from the same seed agree. bf16 autocast is held
to a stated tolerance. Speed is measured in ``benchmarks/``, never here.
"""

from __future__ import annotations

import pytest
import torch
from model_helpers import assert_bf16_close, pad_batch, random_sequences
from torch.nn import functional as F

from mea_cli import MODALITIES
from mea_cli.models import config_for, create_model
from mea_cli.models.layers.attention import FeedForward, explicit_attention
from mea_cli.models.layers.extractor import UnimodalExtractor
from mea_cli.models.layers.grouping import plan_groups, put_back, take
from mea_cli.models.layers.mapops import map_matmul, mixed_scores, psa_maps, same_conv2d

DIMS = {"text": 7, "vision": 5, "audio": 6}
LENGTHS = {  # empty sequences, equal lengths (mask-free groups) and ragged ones
    "text": [3, 0, 5, 1, 5, 9],
    "vision": [8, 4, 0, 2, 8, 12],
    "audio": [6, 6, 1, 0, 9, 9],
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _model(**overrides: object) -> torch.nn.Module:
    torch.manual_seed(0)
    small = dict(d=16, heads=2, d_h=12, psa_layers=3, hca_layers=2)
    return create_model("mea", config_for("mea", "mosi", input_dims=DIMS, **{**small, **overrides}))


def _batch(seed: int = 3):
    return pad_batch(random_sequences(DIMS, LENGTHS, seed=seed), torch.randn(6, 1), 3, 7.0)


def _run(model: torch.nn.Module, batch) -> tuple[object, dict[str, torch.Tensor]]:
    model.zero_grad()
    out = model(batch)
    out.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out, grads


def _assert_same(a, ga, b, gb, atol: float = 1e-5, gtol: float = 1e-4) -> None:
    assert torch.isfinite(a.pred).all()
    torch.testing.assert_close(a.pred, b.pred, atol=atol, rtol=atol)
    torch.testing.assert_close(a.loss, b.loss, atol=atol, rtol=atol)
    for kind in b.reps:
        for m in MODALITIES:
            torch.testing.assert_close(a.reps[kind][m], b.reps[kind][m], atol=atol, rtol=atol)
    assert ga.keys() == gb.keys()
    for name in gb:
        torch.testing.assert_close(ga[name], gb[name], atol=gtol, rtol=gtol, msg=name)


# --------------------------------------------------------------------- whole model
@pytest.mark.parametrize(
    "overrides",
    [
        dict(attn_group_budget=1),  # one sample per group: no padding inside any group
        dict(attn_group_budget=300),  # a few ragged groups
        dict(attn_group_budget=300, checkpoint_psa=False, checkpoint_hca=True),
        dict(attn_group_budget=0),  # the padded batch, no grouping
        dict(attn_group_budget=300, ablations=("chain",)),
        dict(attn_group_budget=300, psa_literal_eq2=True),
    ],
    ids=["per-sample", "groups", "keep-maps+ckpt-hca", "ungrouped", "no-chain", "literal"],
)
def test_efficient_paths_match_explicit_in_eval_mode(overrides: dict) -> None:
    model = _model(**overrides).eval()
    batch = _batch()
    fast, g_fast = _run(model, batch)
    with explicit_attention():
        ref, g_ref = _run(model, batch)
    _assert_same(fast, g_fast, ref, g_ref)


def test_checkpointing_changes_nothing_in_train_mode() -> None:
    """Dropout on: from the same seed, checkpointed PSA and HCA give the same values and
    gradients as keeping every activation (same random masks, same arithmetic)."""
    batch = _batch(seed=5)
    runs = []
    for psa, hca in ((True, True), (False, False)):
        model = _model(attn_group_budget=300, checkpoint_psa=psa, checkpoint_hca=hca).train()
        torch.manual_seed(11)
        runs.append(_run(model, batch))
    (a, ga), (b, gb) = runs
    _assert_same(a, ga, b, gb, atol=1e-6, gtol=1e-5)


def test_bf16_autocast_stays_within_tolerance_of_fp32() -> None:
    """bf16 (8 bits of mantissa) on the efficient path: predictions within 0.05 of fp32 on
    outputs of order 0.1-1 (the CUDA trainer's precision; on CPU training stays fp32)."""
    assert_bf16_close(_model(attn_group_budget=300), _batch())


# --------------------------------------------------------------------- grouping
def test_plan_covers_every_sample_once_within_budget_and_round_trips() -> None:
    masks = {
        m: torch.arange(12)[None, :] < torch.tensor(v + [12])[:, None] for m, v in LENGTHS.items()
    }

    def cost(n: dict[str, int]) -> int:
        return max(n.values()) ** 2

    plan = plan_groups(masks, cost, budget=300)
    members = sorted(i for g in plan.groups for i in g.index.tolist())
    assert members == list(range(7))
    for g in plan.groups:
        lens = {m: masks[m][g.index].sum(1) for m in masks}
        assert all(g.lengths[m] == max(1, int(lens[m].max())) for m in masks)
        assert len(g.index) == 1 or len(g.index) * cost(g.lengths) <= 300
        assert g.full == all(bool((lens[m] == g.lengths[m]).all()) for m in masks)
    x = torch.randn(7, 12, 3) * masks["vision"][..., None]
    back = put_back([take(x, g, "vision") for g in plan.groups], plan, 12)
    assert torch.equal(back, x)


# --------------------------------------------------------------------- map operations
def test_map_ops_match_torch_in_double_precision() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(3, 6, 7, dtype=torch.float64, generator=g, requires_grad=True)
    x = torch.randn(3, 7, 2, dtype=torch.float64, generator=g, requires_grad=True)
    base = torch.randn(3, 6, 6, dtype=torch.float64, generator=g, requires_grad=True)
    q = torch.randn(3, 6, 2, dtype=torch.float64, generator=g, requires_grad=True)
    k = torch.randn(3, 6, 2, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(map_matmul, (a, x))
    assert torch.allclose(map_matmul(a, x), a @ x)
    assert torch.autograd.gradcheck(lambda b, q, k: mixed_scores(b, q, k, 0.3, 0.7), (base, q, k))
    assert torch.allclose(mixed_scores(base, q, k, 0.3, 0.7), 0.3 * base + 0.7 * q @ k.mT)
    assert torch.autograd.gradcheck(lambda q, k: mixed_scores(None, q, k, 1.0, 0.5), (q, k))
    conv = torch.nn.Conv2d(3, 3, 3, padding=1).double()
    maps = torch.randn(2, 3, 5, 5, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.allclose(same_conv2d(maps, conv), conv(maps))
    # the kernel is read from the module, which gradcheck perturbs in place
    assert torch.autograd.gradcheck(
        lambda m, w, b: same_conv2d(m, conv), (maps, conv.weight, conv.bias)
    )


@pytest.mark.parametrize("recompute", [False, True])
def test_psa_maps_node_gradients_and_chain_recompute(recompute: bool) -> None:
    """Two chained PSA map nodes (Eq. 2-3, logit mixing) with padding, in double precision:
    gradcheck through both, the second one rebuilding the first one's maps from its step."""
    g = torch.Generator().manual_seed(1)
    heads, b, t, c = 2, 2, 5, 3
    mask = torch.arange(t)[None, :] < torch.tensor([5, 3])[:, None]
    pairs = mask[:, None, :, None] & mask[:, None, None, :]
    conv = torch.nn.Conv2d(heads, heads, 3, padding=1).double()

    def qkv() -> list[torch.Tensor]:
        return [
            torch.randn(b * heads, t, c, dtype=torch.float64, generator=g, requires_grad=True)
            for _ in range(3)
        ]

    first, second = qkv(), qkv()

    def two_layers(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        q1, k1, v1, q2, k2, v2, _, _ = tensors  # the kernel is read from ``conv``
        history = () if recompute else None
        out1, maps1, step = psa_maps(None, None, q1, k1, v1, pairs, heads, 0.3, 0.5, history)
        out2, maps2, _ = psa_maps(
            maps1, conv, q2, k2, v2, pairs, heads, 0.3, 0.5, (step,) if recompute else None
        )
        return out1, out2, maps2

    inputs = (*first, *second, conv.weight, conv.bias)
    assert torch.autograd.gradcheck(two_layers, inputs)
    out1, out2, maps2 = two_layers(*inputs)
    # the explicit Eq. 2 for the second layer
    cur = (first[0] @ first[1].mT * 0.5).view(b, heads, t, t).masked_fill(~pairs, 0)
    logits = 0.3 * F.gelu(conv(cur)) + 0.7 * (second[0] @ second[1].mT * 0.5).view(b, heads, t, t)
    logits = logits.masked_fill(~pairs, 0)
    assert torch.allclose(maps2, logits)
    attn = torch.softmax(logits.masked_fill(~pairs, float("-inf")), -1).nan_to_num(0.0)
    expect = attn.view(b * heads, t, t) @ second[2]
    keep = mask.repeat_interleave(heads, 0)[..., None]
    assert torch.allclose(out2 * keep, expect * keep)


def test_lean_ffn_matches_plain_ffn_with_and_without_dropout() -> None:
    torch.manual_seed(2)
    ffn = FeedForward(4, 2, 0.3).double()
    x = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    ffn.eval()
    assert torch.autograd.gradcheck(ffn, (x,))
    with explicit_attention():
        assert torch.allclose(ffn(x), ffn.fc2(F.gelu(ffn.fc1(x))))
    ffn.train()  # the same random masks each call, so that gradcheck sees one function

    def seeded(inp: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(3)
        return ffn(inp)

    assert torch.autograd.gradcheck(seeded, (x,))
    out = seeded(x)
    assert (out == 0).any()  # the outer dropout really drops


def test_unpacked_bilstm_matches_the_packed_one() -> None:
    torch.manual_seed(4)
    ext = UnimodalExtractor(5, 8, 3, 0.0)
    x = torch.randn(4, 7, 5)
    mask = torch.arange(7)[None, :] < torch.tensor([7, 3, 0, 5])[:, None]
    x.requires_grad_(True)
    fast = ext(x, mask)
    (g_fast,) = torch.autograd.grad(fast.square().sum(), x)
    with explicit_attention():
        ref = ext(x, mask)
        (g_ref,) = torch.autograd.grad(ref.square().sum(), x)
    torch.testing.assert_close(fast, ref, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(g_fast, g_ref, atol=1e-6, rtol=1e-5)
    assert torch.all(fast[2] == 0) and torch.all(fast[1, 3:] == 0)
