"""MCR (Yang et al., KBS 2023): one test or more per equation, against hand computations or
properties, plus the wiring of its units and its Table 5 switches.

The model contract (padding, gradients, checkpoints, switches' declared changes) is checked by
``tests/test_model_contract.py``; this file checks what is new in MCR.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import warm
from model_helpers import pad_batch, random_sequences
from torch.nn import functional as F

from mea_cli import MODALITIES
from mea_cli.errors import MeaError
from mea_cli.models import config_for, create_model
from mea_cli.models.mcr.cmu import (
    CMU,
    LiteralMutualMap,
    MutualMap,
    relative_resampling,
    source_weights,
)
from mea_cli.models.mcr.scu import SCU, BranchAttention
from mea_cli.models.mcr.sum import SourceUpdate

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DIMS = {"text": 5, "vision": 4, "audio": 3}


def _mask(lengths: list[int], t: int | None = None) -> torch.Tensor:
    t = max(max(lengths), 1) if t is None else t
    return torch.arange(t)[None, :] < torch.tensor(lengths)[:, None]


def _pad(x: torch.Tensor, t: int, value: float = 0.0) -> torch.Tensor:
    """Pad ``x [B, T, ...]`` along dim 1 to ``t`` with ``value``."""
    extra = t - x.shape[1]
    return torch.cat([x, x.new_full((x.shape[0], extra, *x.shape[2:]), value)], dim=1)


def _no_ffn(block: torch.nn.Module) -> None:
    """Zero the last layer of a SkipFeedForward's FFN: the block then passes its input on."""
    with torch.no_grad():
        block.ffn.fc2.weight.zero_()
        block.ffn.fc2.bias.zero_()


# ------------------------------------------------------------------ Eq. 3: source weights
def test_source_weights_by_hand_sum_to_one_over_real_steps_and_ignore_padding() -> None:
    z1 = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [9.0, 9.0]]])  # third step is padding
    z2 = torch.tensor([[[1.0, 1.0], [-5.0, 7.0]]])  # second step is padding
    m1, m2 = _mask([2], 3), _mask([1], 2)
    a1, a2 = source_weights(z1, m1, z2, m2)
    e = math.exp
    total = e(1) + e(2) + e(2)  # feature sums 1, 2 (s1) and 2 (s2)
    assert torch.allclose(a1, torch.tensor([[e(1) / total, e(2) / total, 0.0]]))
    assert torch.allclose(a2, torch.tensor([[e(2) / total, 0.0]]))
    assert torch.allclose(a1.sum() + a2.sum(), torch.tensor(1.0))
    # garbage under the masks and longer padding change nothing
    g1, g2 = _pad(z1, 6, 50.0), _pad(z2, 4, -50.0)
    b1, b2 = source_weights(g1, _mask([2], 6), g2, _mask([1], 4))
    assert torch.equal(b1[:, :3], a1) and torch.equal(b2[:, :2], a2)
    assert torch.all(b1[:, 3:] == 0) and torch.all(b2[:, 2:] == 0)


def test_source_weights_with_empty_sources() -> None:
    z1, z2 = torch.randn(3, 4, 2), torch.randn(3, 5, 2)
    m1, m2 = _mask([0, 3, 0], 4), _mask([2, 0, 0], 5)
    a1, a2 = source_weights(z1, m1, z2, m2)
    assert torch.all(a1[0] == 0) and torch.allclose(a2[0].sum(), torch.tensor(1.0))
    assert torch.all(a2[1] == 0) and torch.allclose(a1[1].sum(), torch.tensor(1.0))
    assert torch.all(a1[2] == 0) and torch.all(a2[2] == 0)  # both empty: zeros, not NaN


# ------------------------------------------------------------------ the mutual map
def test_relative_resampling_by_hand() -> None:
    up = relative_resampling(_mask([2]), _mask([4]))[0]  # 2 source steps onto 4
    want_up = torch.tensor([[1.0, 0.75, 0.25, 0.0], [0.0, 0.25, 0.75, 1.0]])
    assert torch.allclose(up, want_up)
    down = relative_resampling(_mask([4]), _mask([2]))[0]  # 4 onto 2: width 2, averaging
    want_down = torch.tensor([[3, 0], [3, 1], [1, 3], [0, 3]], dtype=torch.float32) / 7
    assert torch.allclose(down, want_down)
    assert torch.equal(relative_resampling(_mask([5]), _mask([5]))[0], torch.eye(5))


LENGTH_PAIRS = [(1, 1), (1, 10), (10, 1), (3, 30), (30, 3), (4, 7), (7, 4), (6, 6), (50, 500),
                (500, 50)]  # fmt: skip


@pytest.mark.parametrize(("n", "m"), LENGTH_PAIRS)
def test_relative_resampling_properties(n: int, m: int) -> None:
    r = relative_resampling(_mask([n, 0, n], n + 3), _mask([m, m, 0], m + 2))
    assert r.shape == (3, n + 3, m + 2)
    real = r[0, :n, :m]
    assert (real >= 0).all() and torch.allclose(real.sum(0), torch.ones(m))  # convex columns
    assert torch.all(r[0, n:] == 0) and torch.all(r[0, :, m:] == 0)  # padding: nothing
    assert torch.all(r[1] == 0) and torch.all(r[2] == 0)  # empty source or destination
    # a ramp in relative time stays inside the ramp's range and keeps its order
    ramp = (torch.arange(n, dtype=torch.float32) + 0.5) / n
    mapped = ramp @ real
    assert torch.all(mapped[1:] >= mapped[:-1] - 1e-6)
    assert mapped.min() >= ramp.min() - 1e-6 and mapped.max() <= ramp.max() + 1e-6


@pytest.mark.parametrize(("t", "n1", "n2"), [(3, 1, 10), (1, 10, 1), (4, 30, 3), (2, 5, 50), (5, 6, 6)])
@pytest.mark.parametrize("literal", [False, True])
def test_mutual_map_maps_one_time_axis_onto_the_other(
    t: int, n1: int, n2: int, literal: bool
) -> None:
    """Any pair of lengths: ``[Tt, Ts1] -> [Tt, Ts2]``, the same real block however padded."""
    torch.manual_seed(0)
    heads = 2
    mapper = (
        LiteralMutualMap(3, 60, 60, ("s1", "s2")) if literal else MutualMap(heads, kernel=3)
    ).eval()
    e = torch.randn(1, heads, t, n1)
    out = mapper(e, _mask([t]), _mask([n1]), _mask([n2]))
    assert out.shape == (1, heads, t, n2) and torch.isfinite(out).all()
    # pad every axis with garbage, next to a second sample of other lengths: same real block
    big = torch.full((2, heads, t + 2, n1 + 3), 7.0)
    big[0, :, :t, :n1] = e[0]
    big[1, :, :1, :2] = 1.0
    out2 = mapper(big, _mask([t, 1], t + 2), _mask([n1, 2], n1 + 3), _mask([n2, 1], n2 + 4))
    assert out2.shape == (2, heads, t + 2, n2 + 4)
    assert torch.allclose(out2[0, :, :t, :n2], out[0], atol=1e-6)
    assert torch.all(out2[0, :, t:] == 0) and torch.all(out2[0, :, :, n2:] == 0)


def test_mutual_map_by_hand() -> None:
    mapper = MutualMap(1, kernel=3)
    with torch.no_grad():
        mapper.conv.weight.zero_()
        mapper.conv.weight[0, 0, 1, 1] = 2.0  # centre tap only
        mapper.conv.bias.fill_(0.5)
    e = torch.tensor([[[[1.0, 3.0]]]])  # one target step, two source steps
    out = mapper(e, _mask([1]), _mask([2]), _mask([4]))
    # linear interpolation onto 4 steps (1, 1.5, 2.5, 3), times 2, plus 0.5
    assert torch.allclose(out, torch.tensor([[[[2.5, 3.5, 5.5, 6.5]]]]))


def test_literal_mutual_map_by_hand_and_refuses_long_sequences() -> None:
    mapper = LiteralMutualMap(kernel=1, src_len=3, dst_len=2, names=("vision", "audio"))
    with torch.no_grad():
        # out channel j = sum_i W[j, i] E[:, i] + b[j]
        mapper.conv.weight.copy_(torch.tensor([[[1.0], [2.0], [3.0]], [[0.0], [1.0], [-1.0]]]))
        mapper.conv.bias.copy_(torch.tensor([0.0, 10.0]))
    e = torch.tensor([[[[1.0, 1.0], [2.0, 0.0]]]])  # two target steps, two source steps (of 3)
    out = mapper(e, _mask([2]), _mask([2]), _mask([2]))
    assert torch.allclose(out, torch.tensor([[[[3.0, 11.0], [2.0, 10.0]]]]))
    with pytest.raises(MeaError, match="at most 3 vision steps, but a sample has 4"):
        mapper(torch.randn(1, 1, 2, 4), _mask([2]), _mask([4]), _mask([2]))


# ------------------------------------------------------------------ CMU, Eq. 2-5
def _cmu_by_hand(unit: CMU, z1: torch.Tensor, z2: torch.Tensor, zt: torch.Tensor,
                 r12: torch.Tensor, r21: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """Eq. 2-5 for one unpadded sample with one head, written out with the unit's weights."""
    d = zt.shape[-1]
    q = unit.ln_query(zt @ unit.query.weight.T)
    k = [unit.ln_key[j](z @ unit.key[j].weight.T) for j, z in enumerate((z1, z2))]
    v = [unit.ln_value[j](z @ unit.value[j].weight.T) for j, z in enumerate((z1, z2))]
    e1, e2 = q @ k[0].T / math.sqrt(d), q @ k[1].T / math.sqrt(d)
    alpha = torch.softmax(torch.cat([z1.sum(-1), z2.sum(-1)]), dim=0)  # Eq. 3
    a1, a2 = alpha[: len(z1)], alpha[len(z1) :]

    def conv(x: torch.Tensor, mapper: MutualMap) -> torch.Tensor:
        return mapper.conv(x[None, None])[0, 0]

    hat1 = conv(e1 @ r12, unit.mutual[0])  # Ê_{s1->t}: on s2's axis
    hat2 = conv(e2 @ r21, unit.mutual[1])  # Ê_{s2->t}: on s1's axis
    z_s1 = torch.softmax(e1 + a1[None, :] * hat2, dim=-1) @ v[0]  # Eq. 4
    z_s2 = torch.softmax(e2 + a2[None, :] * hat1, dim=-1) @ v[1]  # Eq. 5
    za = unit.ln_target(zt) + z_s1 + z_s2
    return za + unit.ffn.ffn(unit.ffn.ln(za))


def test_cmu_by_hand_and_padding() -> None:
    torch.manual_seed(1)
    unit = CMU(4, 1, dropout=0.0, attn_dropout=0.0, ffn_mult=2, kernel=3).eval()
    z1, z2, zt = torch.randn(2, 4), torch.randn(4, 4), torch.randn(3, 4)
    r12 = torch.tensor([[1.0, 0.75, 0.25, 0.0], [0.0, 0.25, 0.75, 1.0]])  # 2 -> 4 by hand
    r21 = torch.tensor([[3, 0], [3, 1], [1, 3], [0, 3]], dtype=torch.float32) / 7  # 4 -> 2
    want = _cmu_by_hand(unit, z1, z2, zt, r12, r21)
    got, maps = unit((z1[None], z2[None]), (_mask([2]), _mask([4])), zt[None], _mask([3]))
    assert torch.allclose(got[0], want, atol=1e-5)
    assert maps[0].shape == (1, 1, 3, 2) and maps[1].shape == (1, 1, 3, 4)
    # the alpha-weighted mutual term matters: without it the output differs
    plain = CMU(4, 1, dropout=0.0, attn_dropout=0.0, ffn_mult=2, mutual=False).eval()
    plain.load_state_dict(unit.state_dict(), strict=False)
    alone, _ = plain((z1[None], z2[None]), (_mask([2]), _mask([4])), zt[None], _mask([3]))
    assert not torch.allclose(alone, got, atol=1e-4)
    # padded with garbage: the same output at the real steps, zeros elsewhere
    p1, p2, pt = _pad(z1[None], 5, 3.0), _pad(z2[None], 6, -3.0), _pad(zt[None], 7, 9.0)
    padded, _ = unit((p1, p2), (_mask([2], 5), _mask([4], 6)), pt, _mask([3], 7))
    assert torch.allclose(padded[0, :3], got[0], atol=1e-5) and torch.all(padded[0, 3:] == 0)


def test_cmu_without_mutual_attention_is_plain_crossmodal_attention() -> None:
    torch.manual_seed(2)
    unit = CMU(4, 2, dropout=0.0, attn_dropout=0.0, ffn_mult=2, mutual=False).eval()
    assert unit.mutual is None
    z1, z2, zt = torch.randn(1, 3, 4), torch.randn(1, 5, 4), torch.randn(1, 2, 4)
    got, maps = unit((z1, z2), (_mask([3]), _mask([5])), zt, _mask([2]))
    es, _ = unit.logits((z1, z2), zt)
    for e, amap in zip(es, maps, strict=True):
        assert torch.allclose(amap, torch.softmax(e, dim=-1))


# ------------------------------------------------------------------ SCU, Eq. 6-11
def test_branch_attention_by_hand() -> None:
    layer = BranchAttention(1)
    with torch.no_grad():
        layer.W[0].weight.fill_(2.0)
        layer.W[0].bias.fill_(0.0)
        layer.W[1].weight.fill_(1.0)
        layer.W[1].bias.fill_(1.0)
        layer.U.weight.fill_(1.0)
    cross = torch.tensor([[[1.0], [3.0], [100.0]]])  # third step is padding
    own = torch.tensor([[[0.0], [2.0], [-100.0]]])
    mixed, gamma = layer([cross, own], _mask([2], 3))
    # beta_cross = mean(2*1, 2*3) = 4, beta_self = mean(0+1, 2+1) = 2 (Eq. 9)
    g = torch.softmax(torch.tensor([4.0, 2.0]), dim=0)  # Eq. 10
    assert torch.allclose(gamma[0], g)
    assert torch.allclose(mixed[0, :2], g[0] * cross[0, :2] + g[1] * own[0, :2])  # Eq. 11


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return torch.softmax(q @ k.T / math.sqrt(q.shape[-1]), dim=-1) @ v


def test_scu_by_hand() -> None:
    torch.manual_seed(3)
    unit = SCU(4, 1, dropout=0.0, attn_dropout=0.0, ffn_mult=2).eval()
    zds, zt = torch.randn(5, 4), torch.randn(3, 4)
    s, t = unit.ln_sources(zds), unit.ln_target(zt)
    c, a = unit.cross, unit.self_attn
    cross = _attend(t @ c.q.weight.T, s @ c.k.weight.T, s @ c.v.weight.T)  # Eq. 7
    own = _attend(t @ a.q.weight.T, t @ a.k.weight.T, t @ a.v.weight.T)  # Eq. 8
    u = unit.branch.U.weight[0]
    beta = torch.stack([
        ((z @ w.weight.T + w.bias) @ u).mean() for z, w in zip((cross, own), unit.branch.W, strict=True)
    ])  # Eq. 9  # fmt: skip
    g = torch.softmax(beta, dim=0)  # Eq. 10
    zb = g[0] * cross + g[1] * own  # Eq. 11
    want = zb + unit.ffn.ffn(unit.ffn.ln(zb))
    got, a_cross, a_self = unit(zds[None], _mask([5]), zt[None], _mask([3]), need_weights=True)
    assert torch.allclose(got[0], want, atol=1e-5)
    assert a_cross.shape == (1, 1, 3, 5) and a_self.shape == (1, 1, 3, 3)
    fused, _, _ = unit(zds[None], _mask([5]), zt[None], _mask([3]), need_weights=False)
    assert torch.allclose(fused, got, atol=1e-5)


def test_scu_without_attention_layer_adds_the_branches() -> None:
    torch.manual_seed(4)
    full = SCU(4, 2, dropout=0.0, attn_dropout=0.0, ffn_mult=2).eval()
    bare = SCU(4, 2, dropout=0.0, attn_dropout=0.0, ffn_mult=2, attention_layer=False).eval()
    bare.load_state_dict(full.state_dict(), strict=False)
    _no_ffn(full.ffn)
    _no_ffn(bare.ffn)
    zds, zt = torch.randn(1, 6, 4), torch.randn(1, 3, 4)
    m_ds, m_t = _mask([6]), _mask([3])
    out, _, _ = bare(zds, m_ds, zt, m_t)
    with torch.no_grad():  # gamma = (1, 1) is what the sum means: beta cannot give it, so
        full.branch.W[0].weight.zero_()  # check instead that equal betas give half the sum
        full.branch.W[1].weight.zero_()
        full.branch.W[0].bias.zero_()
        full.branch.W[1].bias.zero_()
    half, _, _ = full(zds, m_ds, zt, m_t)
    assert torch.allclose(half, out / 2, atol=1e-6)


# ------------------------------------------------------------------ SUM, Eq. 12-16
def _sum_unit(mode: str = "smm", literal: dict[str, int] | None = None) -> SourceUpdate:
    unit = SourceUpdate({"text": ("vision", "audio")}, 1, 2, 0.0, mode=mode,
                        literal_lengths=literal)  # fmt: skip
    for block in unit.update.values():
        _no_ffn(block)  # Ẑ_s = Z_s
    return unit


def test_selective_memory_gate_by_hand() -> None:
    """Eq. 13: mu = sigma(Ẑ Ŵ + Z_t W_t + b̂ + b_t); Eq. 14 interpolates tanh(Z_t) and Ẑ."""
    unit = _sum_unit()
    gate = unit.gate["vision"]
    with torch.no_grad():
        gate.w_source.weight.fill_(2.0)
        gate.w_target.weight.fill_(-1.0)
        gate.b_source.bias.fill_(0.5)
        gate.b_target.bias.fill_(-0.25)
    zs = torch.tensor([[[0.5], [-1.0]]])
    zt = torch.tensor([[[1.0], [2.0]]])
    mask = _mask([2])
    mu = gate.gate(zs, zt, mask)
    want_mu = torch.sigmoid(torch.tensor([2 * 0.5 - 1.0 + 0.25, 2 * -1.0 - 2.0 + 0.25]))
    assert torch.allclose(mu[0, :, 0], want_mu)
    new, _ = unit({"vision": zs, "audio": zs, "text": zt}, {"vision": zt, "audio": zt, "text": zt},
                  {m: mask for m in MODALITIES})  # fmt: skip
    want = (1 - want_mu) * torch.tanh(zt[0, :, 0]) + want_mu * zs[0, :, 0]
    assert torch.allclose(new["vision"][0, :, 0], want)


def test_selective_memory_interpolates_between_its_two_inputs() -> None:
    unit = _sum_unit()
    gate = unit.gate["audio"]
    zs, zt, mask = torch.randn(2, 3, 1), torch.randn(2, 3, 1) * 2, _mask([3, 2])
    with torch.no_grad():
        gate.w_source.weight.zero_()
        gate.w_target.weight.zero_()
        for bias in (math.log(1 / 3), 30.0, -30.0):  # mu = 0.25, ~1, ~0
            gate.b_source.bias.fill_(bias)
            gate.b_target.bias.zero_()
            mu = torch.sigmoid(torch.tensor(bias))
            new, _ = unit({"vision": zs, "audio": zs}, {"vision": zt, "audio": zt},
                          {"vision": mask, "audio": mask, "text": mask})  # fmt: skip
            want = ((1 - mu) * torch.tanh(zt) + mu * zs) * mask[..., None]
            assert torch.allclose(new["audio"], want, atol=1e-6)
            lo, hi = torch.minimum(torch.tanh(zt), zs), torch.maximum(torch.tanh(zt), zs)
            assert torch.all((new["audio"] >= lo - 1e-6) & (new["audio"] <= hi + 1e-6))


def test_combination_gate_eq15_16_by_hand() -> None:
    unit = _sum_unit()
    comb = unit.combine["text"]
    with torch.no_grad():
        comb.w.weight.fill_(1.0)
        comb.b[0].bias.fill_(0.0)
        comb.b[1].bias.fill_(1.0)
    zv, za = torch.tensor([[[0.5], [9.0]]]), torch.tensor([[[-1.0]]])
    out = comb(zv, _mask([1], 2), za, _mask([1]))
    # phi = sigma(z W + b) per step, b = 0 for the vision block and 1 for the audio block
    want = torch.tensor([
        torch.sigmoid(torch.tensor(0.5)) * math.tanh(0.5),
        torch.sigmoid(torch.tensor(9.0)) * math.tanh(9.0),
        torch.sigmoid(torch.tensor(0.0)) * math.tanh(-1.0),
    ])  # fmt: skip
    assert torch.allclose(out[0, :, 0], want)


def test_sum_modes_without_selective_memory() -> None:
    zs, zt, mask = torch.randn(1, 3, 1), torch.randn(1, 3, 1), _mask([3])
    srcs, tgts = {"vision": zs, "audio": zs}, {"vision": zt, "audio": zt}
    masks = {m: mask for m in MODALITIES}
    added, _ = _sum_unit("add")(srcs, tgts, masks)
    assert torch.allclose(added["vision"], zs + zt)  # "merged by the element-wise sum"
    ffl, ds = _sum_unit("ffl")(srcs, tgts, masks)
    assert torch.equal(ffl["vision"], zs) and torch.equal(ds["text"], torch.cat([zs, zs], 1))


def test_literal_position_biases_are_per_step_and_refuse_long_sequences() -> None:
    unit = _sum_unit(literal={"text": 2, "vision": 3, "audio": 3})
    gate = unit.gate["vision"]
    with torch.no_grad():
        gate.w_source.weight.zero_()
        gate.w_target.weight.zero_()
        gate.b_source.bias.copy_(torch.tensor([[30.0], [-30.0], [0.0]]))
        gate.b_target.bias.zero_()
    zs, zt = torch.full((1, 3, 1), 0.5), torch.full((1, 3, 1), 1.0)
    mu = gate.gate(zs, zt, _mask([3]))[0, :, 0]
    assert torch.allclose(mu, torch.tensor([1.0, 0.0, 0.5]), atol=1e-6)
    # a batch padded beyond the fixed length is fine as long as the real steps fit
    assert gate.gate(_pad(zs, 5), _pad(zt, 5), _mask([3], 5)).shape == (1, 5, 1)
    with pytest.raises(MeaError, match="at most 3 vision steps, but a sample has 4"):
        gate.gate(torch.zeros(1, 4, 1), torch.zeros(1, 4, 1), _mask([4]))


# ------------------------------------------------------------------ the model's wiring
def _tiny(**overrides: object) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = config_for("mcr", "mosi", input_dims=DIMS, d=8, heads=2, layers=2, dropout=0.0,
                     attn_dropout=0.0, **overrides)  # fmt: skip
    return create_model("mcr", cfg).eval()


def _batch(lengths: dict[str, list[int]] | None = None, seed: int = 0, **pad: object):  # noqa: ANN202
    lengths = lengths or {"text": [3, 5], "vision": [6, 2], "audio": [4, 7]}
    return pad_batch(random_sequences(DIMS, lengths, seed), torch.randn(2, 1), **pad)


def _record(module: torch.nn.Module, store: list) -> None:
    """Keep each call's (args, output); dict arguments are copied (the model updates them)."""

    def hook(_m: torch.nn.Module, args: tuple, out: object) -> None:
        store.append((tuple(dict(a) if isinstance(a, dict) else a for a in args), out))

    module.register_forward_hook(hook)


def test_table_1_presets() -> None:
    for dataset, heads, layers, kernels in (
        ("mosi", 10, 3, (3, 3, 3)), ("mosei", 8, 4, (3, 3, 3)), ("iemocap", 10, 3, (3, 3, 5))
    ):  # fmt: skip
        cfg = config_for("mcr", dataset)
        assert (cfg.d, cfg.heads, cfg.layers, cfg.kernel_sizes) == (40, heads, layers, kernels)
        model = create_model("mcr", cfg)
        assert len(model.layers) == layers and len(model.sum) == layers - 1
        assert model.front["audio"].conv.kernel_size == (kernels[2],)
        assert model.front["text"].lstm is None  # Sec. 3.2: Conv1d + positions, no recurrence


def test_sum_is_supervised_by_the_same_modalitys_target_and_feeds_the_next_layer() -> None:
    model = _tiny()
    cmu_calls, sum_calls, scu_calls = [], [], []
    _record(model.layers[1].cmu["text"], cmu_calls)
    _record(model.layers[1].scu["text"], scu_calls)
    _record(model.sum[0], sum_calls)
    layer0 = {t: [] for t in MODALITIES}
    for t in MODALITIES:
        _record(model.layers[0].cmu[t], layer0[t])
        _record(model.layers[0].scu[t], layer0[t])
    with torch.no_grad():
        model(_batch())
    (sources, targets, _masks), (new_sources, new_ds) = sum_calls[0]
    for t in MODALITIES:  # Z_t^{[1]} = Z_ta^{[1]} + Z_tb^{[1]} (parallel structure)
        (_, (za, _)), (_, (zb, _, _)) = layer0[t]
        assert torch.allclose(targets[t], za + zb)
    (cmu_args, _), (scu_args, _) = cmu_calls[0], scu_calls[0]
    assert torch.equal(cmu_args[0][0], new_sources["vision"])  # CMU^{[1]} reads Z_s^{[1]}
    assert torch.equal(cmu_args[0][1], new_sources["audio"])
    assert torch.equal(scu_args[0], new_ds["text"])  # SCU^{[1]} reads Z_ds^{[1]}
    assert torch.equal(cmu_args[2], targets["text"])  # both units reinforce Z_t^{[1]}
    assert torch.equal(scu_args[2], targets["text"])


def test_serial_structure_feeds_the_cmu_output_to_the_scu() -> None:
    model = _tiny(serial=True)
    cmu_calls, scu_calls, layer1 = [], [], []
    _record(model.layers[0].cmu["vision"], cmu_calls)
    _record(model.layers[0].scu["vision"], scu_calls)
    _record(model.layers[1].cmu["vision"], layer1)
    with torch.no_grad():
        model(_batch())
    (_, (za, _)), ((_, _, scu_target, _), (zb, _, _)) = cmu_calls[0], scu_calls[0]
    assert torch.equal(scu_target, za)
    assert torch.equal(layer1[0][0][2], zb)  # Z_t^{[1]} = SCU(Z_ds, CMU(...)), no sum


def test_low_level_sources_stay_the_preprocessed_sequences() -> None:
    model = _tiny(ablations=["low-level"])
    front, later = [], []
    _record(model.front["audio"], front)
    _record(model.layers[1].cmu["text"], later)
    with torch.no_grad():
        model(_batch())
    assert model.sum is None and torch.equal(later[0][0][0][1], front[0][1])


def test_single_target_row_keeps_the_other_streams_preprocessed() -> None:
    model = _tiny(ablations=["only-text"])
    assert set(model.layers[0].cmu) == {"text"} and set(model.sum[0].update) == {"vision", "audio"}
    front, sums = [], []
    _record(model.front["vision"], front)
    _record(model.sum[0], sums)
    with torch.no_grad():
        model(_batch())
    assert torch.equal(sums[0][0][1]["vision"], front[0][1])


def test_unimodal_row_reads_only_its_modality() -> None:
    model = _tiny(ablations=["unimodal-text"])
    assert set(model.front) == {"text"} and model.layers[0].cmu["text"].mutual is not None
    batch = _batch()
    other = _batch(seed=5)
    other.inputs["text"], other.masks["text"] = batch.inputs["text"], batch.masks["text"]
    only_text = pad_batch(random_sequences({"text": DIMS["text"]}, {"text": [3, 5]}, 0), None)
    with torch.no_grad():
        a, b, c = model(batch).pred, model(other).pred, model(only_text).pred
    assert torch.allclose(a, b) and torch.allclose(a, c)


def test_attention_maps_rows_sum_to_one_over_real_steps() -> None:
    model = _tiny()
    batch = _batch()
    with torch.no_grad():
        out = model(batch, return_attention=True)
    keys = set(out.attention)
    assert {f"scu/{i}/{m}" for i in (0, 1) for m in MODALITIES} <= keys
    assert {"cmu/0/text/vision", "cmu/0/text/audio", "scu/1/audio/cross"} <= keys
    for m in MODALITIES:
        amap, n = out.attention[f"scu/1/{m}"], batch.masks[m].sum(1)
        for b in range(2):
            rows = amap[b, :, : n[b], : n[b]].sum(-1)
            assert torch.allclose(rows, torch.ones_like(rows), atol=1e-5)


def test_literal_forms_are_padding_invariant_and_refuse_long_sequences() -> None:
    model = _tiny(cmu_literal=True, sum_literal=True, literal_lengths=(8, 8, 8))
    assert isinstance(model.layers[0].cmu["text"].mutual[0], LiteralMutualMap)
    with torch.no_grad():
        a = model(_batch()).pred
        b = model(_batch(extra=5, garbage=4.0)).pred
    assert torch.allclose(a, b, atol=1e-5)
    with pytest.raises(MeaError, match="literal_lengths"):
        model(_batch({"text": [3, 9], "vision": [6, 2], "audio": [4, 7]}))


def test_literal_conv_parameters_at_the_benchmark_lengths() -> None:
    """The paper's T_s1 -> T_s2 convolutions at MOSI's unaligned lengths (50/500/375)."""
    default = create_model("mcr", config_for("mcr", "mosi"))
    literal = create_model("mcr", config_for("mcr", "mosi", cmu_literal=True))
    conv = sum(p.numel() for n, p in literal.named_parameters() if ".mutual." in n)
    pairs = ((500, 375), (50, 375), (50, 500))  # sources of text, vision, audio
    assert conv == 3 * sum(2 * a * b * 3 + a + b for a, b in pairs)
    assert sum(p.numel() for n, p in default.named_parameters() if ".mutual." in n) == 3 * 3 * 2 * (
        10 * 10 * 9 + 10
    )


def test_mcr_checks_its_batch() -> None:
    model = _tiny()
    batch = _batch()
    del batch.inputs["audio"]
    with pytest.raises(MeaError, match="lacks modality audio; MCR needs"):
        model(batch)


def test_regression_task_loss_is_l1_by_default() -> None:
    model = _tiny()
    batch = _batch()
    out = model(batch)
    assert set(out.losses) == {"task"}
    assert torch.allclose(out.loss, F.l1_loss(out.pred, batch.labels))


# ------------------------------------------------------------------ Table 5 in mea ablate
def test_table_5_transcribed_and_matched_to_every_switch() -> None:
    from mea_cli.ablate.rows import paper_table, table_rows
    from mea_cli.ablate.table import build_table
    from mea_cli.models import get_entry

    table = paper_table("mcr")
    assert "Target and Source Modality Co-Reinforcement" in table["source"]["paper"]
    rows = {r["key"]: r for r in table["rows"]}
    assert len(rows) == 15 and table["metrics"] == ["acc2", "f1", "mae"]
    assert rows["full"]["mosi"] == {"acc2": 84.8, "f1": 84.6, "mae": 0.824}
    assert rows["no-mutual"]["mosei"] == {"acc2": 83.8, "f1": 83.4, "mae": 0.562}
    assert rows["unimodal-audio"]["mosi"] == {"acc2": 76.2, "f1": 75.8, "mae": 0.914}
    switches = get_entry("mcr").switches
    specs = table_rows(switches, model="mcr")
    assert [s.key for s in specs] == ["full", *switches]  # the paper's order, no "Other"
    assert all(s.paper for s in specs)
    built = build_table("t", [("full", "MCR", "", {1: {"mae": 0.9}})], ["mae"],
                        {"full": rows["full"]["mosi"]}, table["metrics"])  # fmt: skip
    assert "0.824" in built.to_markdown()  # MAE as printed, not rounded to one decimal


# ------------------------------------------------------------------ end to end
@pytest.mark.slow
def test_mea_train_and_eval_mcr_from_the_command_line(tmp_path: Path) -> None:
    """``mea synth`` -> ``mea train --model mcr`` -> ``mea eval --paper``, at a tiny size. That
    MCR learns (clearly below the training-mean predictor) is shown once for every model by
    test_compare_models.py; here the command-line path and the paper table."""
    import json

    from test_train_e2e import mea

    store = tmp_path / "mosi.h5"
    mea("synth", "--like", "mosi", "--n", "48", "--seed", "1", "--max-seconds", "2",
        "--out", str(store), cwd=tmp_path)  # fmt: skip
    r = mea("train", str(store), "--dataset", "mosi", "--model", "mcr", "--epochs", "2",
            "--name", "mcr", "--seeds", "1111", "--set", "d=16", "--set", "heads=2",
            "--set", "layers=2", "--set", "train.lr=3e-3", "--set", "train.batch_size=16",
            cwd=tmp_path)  # fmt: skip
    assert "best on valid" in r.stdout
    config = json.loads((tmp_path / "runs" / "mcr" / "config.json").read_text())
    assert config["model"] == "mcr" and config["model_config"]["layers"] == 2
    out = json.loads(mea("eval", str(tmp_path / "runs" / "mcr"), "--json", cwd=tmp_path).stdout)
    assert out["split"] == "test" and set(out["metrics"]) == set(out["baseline_train_mean"])
    table = mea("eval", str(tmp_path / "runs" / "mcr"), "--paper", cwd=tmp_path).stdout
    assert "MCR (paper, not comparable)" in table


@pytest.mark.slow
def test_mea_ablate_an_mcr_run_with_its_own_switches_and_table_5(tmp_path: Path) -> None:
    """``mea ablate --paper`` on a tiny MCR run: MCR's switches, Table 5's labels and numbers
    (MAE with three decimals), an unknown switch refused in one line naming MCR's own."""
    from test_train_e2e import mea

    from mea_cli.data.synth import write_synthetic
    from mea_cli.train.trainer import TrainRequest, train_run

    store = tmp_path / "synth.h5"
    write_synthetic(store, "mosi", n=30, seed=5, max_seconds=2.0)
    tiny = {"d": 8, "heads": 2, "layers": 2}
    train_run(
        TrainRequest(features=store, dataset="mosi", model="mcr", seeds=[1],
                     model_overrides=tiny, train_overrides={"epochs": 1}, name="base",
                     runs_dir=tmp_path / "runs", live=False)  # fmt: skip
    )
    r = mea("ablate", "--run", "base", "--drop", "unimodal-audio", "--drop", "no-mutual",
            "--paper", "--format", "md", cwd=tmp_path)  # fmt: skip
    md = (tmp_path / "runs" / "base" / "ablation.md").read_text()
    header, *lines = [line for line in md.splitlines() if line.startswith("| ")]
    assert "| test Acc-2 (non0) |" in header and "| test Acc-2 (has0) |" in header  # beside the paper's
    assert "| paper Acc-2 | paper F1 | paper MAE |" in header
    rows = [line for line in lines if not line.startswith("| **")]  # group headings apart
    labels = [line.split("|")[1].strip() for line in rows]
    assert labels == ["MCR (Full model)", "Audio Only", "w/o Mutual Attention"]  # Table 5 order
    assert "| **Importance of modality** |" in md
    full, audio, mutual = rows
    assert "84.8" in full and "84.6" in full and "0.824" in full  # MOSI, as printed
    assert "76.2" in audio and "0.914" in audio and "0.827" in mutual
    assert "Table 5" in md and "Co-Reinforcement" in md and "(synthetic data)" in md
    assert "Audio Only" in r.stdout
    # mea viz --what attention draws the SCU's self-attention maps (Eq. 8) and says so
    v = mea("viz", "runs/base/ckpt.pt", "--what", "attention", cwd=tmp_path)
    assert "2 SCU attention layers" in v.stdout + v.stderr, v.stdout + v.stderr
    bad = warm.run(["ablate", "--run", "base", "--drop", "psa"], cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "no ablation switch 'psa'" in bad.stderr and "no-mutual" in bad.stderr
