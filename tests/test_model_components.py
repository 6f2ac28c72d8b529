"""One test (or more) per equation of the MEA paper, against hand computations or properties."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from mea_cli import MODALITIES
from mea_cli.errors import MeaError
from mea_cli.models import apply_switches, config_for, create_model, list_models
from mea_cli.models.core.deviations import deviation_block, deviations_of
from mea_cli.models.core.losses import batch_separation_loss, task_loss
from mea_cli.models.core.masking import masked_mean, masked_softmax, masked_std
from mea_cli.models.core.registry import get_entry
from mea_cli.models.layers.attention import merge_heads, split_heads
from mea_cli.models.layers.discriminators import DoubleDiscriminator, grad_reverse
from mea_cli.models.layers.encoders import SequenceEncoder
from mea_cli.models.layers.extractor import UnimodalExtractor
from mea_cli.models.layers.hsic import disparity_loss, hsic
from mea_cli.models.mea.config import MEAConfig
from mea_cli.models.mea.dgf import GraphFusion
from mea_cli.models.mea.hca import MRU
from mea_cli.models.mea.psa import PSALayer
from mea_cli.models.mea.wal import WeightedAttentionLayer

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ROOT = Path(__file__).resolve().parents[1]


def _lengths_mask(lengths: list[int], t: int) -> torch.Tensor:
    return torch.arange(t)[None, :] < torch.tensor(lengths)[:, None]


# ---------------------------------------------------------------- masks
def test_masked_softmax_ignores_padding_and_empty_rows_are_zero() -> None:
    logits = torch.randn(3, 6, requires_grad=True)
    mask = _lengths_mask([4, 1, 0], 6)
    p = masked_softmax(logits, mask)
    ref = torch.softmax(logits[0, :4], -1)
    assert torch.allclose(p[0, :4], ref)
    assert torch.all(p[0, 4:] == 0) and torch.all(p[2] == 0)
    assert torch.allclose(p[1, 0], torch.tensor(1.0))
    # changing what sits under the mask changes nothing
    other = logits.detach().clone()
    other[~mask] = 1e4
    assert torch.equal(masked_softmax(other, mask), p.detach())
    p.sum().backward()
    assert torch.isfinite(logits.grad).all()


def test_masked_mean_over_real_steps() -> None:
    x = torch.arange(12.0).view(2, 3, 2)
    m = _lengths_mask([2, 0], 3)
    out = masked_mean(x, m)
    assert torch.allclose(out[0], x[0, :2].mean(0))
    assert torch.all(out[1] == 0)


def test_masked_std_by_hand_and_blind_to_padding() -> None:
    x = torch.tensor([[[1.0], [3.0], [99.0]], [[2.0], [-7.0], [0.0]], [[5.0], [5.0], [5.0]]])
    m = _lengths_mask([2, 1, 0], 3)
    # population form over the real steps: [1, 3] -> 1; one step -> sqrt(eps); empty -> 0
    assert torch.allclose(masked_std(x, m, eps=0.0), torch.tensor([[1.0], [0.0], [0.0]]))
    assert torch.allclose(masked_std(x, m, eps=1e-4)[1], torch.tensor([0.01]))
    other = x.clone()
    other[~m] = 1e4
    assert torch.equal(masked_std(other, m), masked_std(x, m))
    leaf = x.clone().requires_grad_(True)
    masked_std(leaf, m).sum().backward()
    assert torch.isfinite(leaf.grad).all()
    assert torch.all(leaf.grad[~m] == 0)


def test_stats_pooling_is_mean_then_std_and_sees_spread_the_mean_cannot() -> None:
    mean_enc = SequenceEncoder(2, 4, 0.0)
    stats_enc = SequenceEncoder(2, 4, 0.0, pooling="stats")
    assert mean_enc.mlp[0].in_features == 2 and stats_enc.mlp[0].in_features == 4
    # the same level, a different spread: mean pooling maps both to one vector
    calm = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 0.0]]])
    wild = torch.tensor([[[3.0, 2.0], [-1.0, -2.0], [1.0, 0.0], [0.0, 0.0]]])
    mask = _lengths_mask([3], 4)
    assert torch.equal(mean_enc.pool(calm, mask), mean_enc.pool(wild, mask))
    pooled = stats_enc.pool(wild, mask)
    expected_std = torch.sqrt(torch.tensor([8.0 / 3, 8.0 / 3]) + 1e-5)
    assert torch.allclose(pooled[0, :2], torch.tensor([1.0, 0.0]))
    assert torch.allclose(pooled[0, 2:], expected_std)
    assert not torch.allclose(stats_enc.pool(calm, mask), pooled)
    assert torch.equal(stats_enc(torch.zeros(1, 4, 2), _lengths_mask([0], 4)),
                       stats_enc.mlp(torch.zeros(1, 4)))  # fmt: skip
    with pytest.raises(ValueError, match="pooling"):
        SequenceEncoder(2, 4, 0.0, pooling="max")
    with pytest.raises(MeaError, match="pooling must be one of mean, stats"):
        MEAConfig(pooling="max")


def test_extractor_keeps_zero_length_sequences_at_zero() -> None:
    ext = UnimodalExtractor(5, 8, 3, 0.0)
    x = torch.randn(3, 4, 5, requires_grad=True)
    mask = _lengths_mask([4, 0, 2], 4)
    z = ext(x, mask)
    assert z.shape == (3, 4, 8)
    assert torch.all(z[1] == 0) and torch.all(z[2, 2:] == 0)
    z.sum().backward()
    assert torch.isfinite(x.grad).all()


# ---------------------------------------------------------------- PSA (Eq. 2-4)
def _plain_attention_layer(layer: PSALayer, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Reference: standard multi-head attention with the layer's own weights (Eq. 3-4)."""
    h = layer.ln(z)
    heads = layer.qkv.heads
    q, k, v = (split_heads(f(h), heads) for f in (layer.qkv.q, layer.qkv.k, layer.qkv.v))
    a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])
    out = h + merge_heads(a)
    out = out + layer.ffn(layer.ln_ffn(out))
    return out * mask[..., None]


def test_mu_zero_equals_plain_attention() -> None:
    torch.manual_seed(0)
    layer = PSALayer(8, 2, mu=0.0, predict=True, dropout=0.0, attn_dropout=0.0, ffn_mult=2)
    z = torch.randn(2, 5, 8)
    mask = _lengths_mask([5, 3], 5)
    prev = torch.randn(2, 2, 5, 5) * 3
    out, _, _ = layer(z, mask, prev)
    assert torch.allclose(out, _plain_attention_layer(layer, z, mask), atol=1e-5)


def test_chain_first_layer_has_no_prediction_later_layers_do() -> None:
    cfg = config_for(
        "mea", "mosi", input_dims={"text": 4, "vision": 3, "audio": 2}, d=8, heads=2, psa_layers=3
    )
    model = create_model("mea", cfg)
    for m in MODALITIES:
        assert model.psa[0][m].chain is None
        assert all(isinstance(model.psa[i][m].chain, torch.nn.Conv2d) for i in (1, 2))
        assert model.psa[1][m].chain.in_channels == cfg.heads == model.psa[1][m].chain.out_channels
        assert model.psa[1][m].chain.kernel_size == (3, 3)
    torch.manual_seed(1)
    z = torch.randn(2, 5, 8)
    mask = _lengths_mask([5, 4], 5)
    p1, p2 = torch.randn(2, 2, 5, 5), torch.randn(2, 2, 5, 5)
    first, later = model.psa[0]["text"].eval(), model.psa[1]["text"].eval()
    # the first layer ignores any previous map; a later layer's output depends on it
    assert torch.equal(first(z, mask, p1)[0], first(z, mask, p2)[0])
    assert not torch.allclose(later(z, mask, p1)[0], later(z, mask, p2)[0])


def test_chain_passes_pre_softmax_logits_zeroed_at_padding() -> None:
    torch.manual_seed(2)
    layer = PSALayer(8, 2, mu=0.5, predict=True, dropout=0.0, attn_dropout=0.0, ffn_mult=2)
    z = torch.randn(2, 6, 8)
    mask = _lengths_mask([6, 3], 6)
    prev = torch.randn(2, 2, 6, 6)
    _, logits, attn = layer(z, mask, prev)
    assert torch.all(logits[1, :, 3:, :] == 0) and torch.all(logits[1, :, :, 3:] == 0)
    # the attention is the masked softmax of the handed-on logits (they are pre-softmax)
    pairs = mask[:, None, :, None] & mask[:, None, None, :]
    assert torch.allclose(attn, masked_softmax(logits, pairs))
    # Eq. 2 with logit mixing, by hand for the full-length sample
    h = layer.ln(z)
    q, k = split_heads(layer.qkv.q(h), 2), split_heads(layer.qkv.k(h), 2)
    cur = q @ k.transpose(-1, -2) / (4**0.5)
    expect = 0.5 * F.gelu(layer.chain(prev)) + 0.5 * cur
    assert torch.allclose(logits[0], expect[0], atol=1e-5)


def test_literal_eq2_mixes_the_prediction_with_softmax_of_current_map() -> None:
    torch.manual_seed(10)
    kw = dict(predict=True, dropout=0.0, attn_dropout=0.0, ffn_mult=2)
    layer = PSALayer(8, 2, mu=0.25, literal=True, **kw)
    z = torch.randn(2, 6, 8)
    mask = _lengths_mask([6, 4], 6)
    pairs = mask[:, None, :, None] & mask[:, None, None, :]
    prev = torch.randn(2, 2, 6, 6).masked_fill(~pairs, 0.0)
    _, logits, attn = layer(z, mask, prev)
    h = layer.ln(z)
    q, k = split_heads(layer.qkv.q(h), 2), split_heads(layer.qkv.k(h), 2)
    cur = q @ k.transpose(-1, -2) / (4**0.5)
    for i, n in enumerate((6, 4)):  # Eq. 2 to the letter, on each sample's real block
        cnn = F.gelu(layer.chain(prev[i : i + 1]))[0, :, :n, :n]
        inner = 0.25 * cnn + 0.75 * torch.softmax(cur[i, :, :n, :n], -1)
        assert torch.allclose(logits[i, :, :n, :n], inner, atol=1e-5)
        assert torch.allclose(attn[i, :, :n, :n], torch.softmax(inner, -1), atol=1e-5)
    assert torch.all(attn[1, :, 4:] == 0) and torch.all(attn[1, :, :, 4:] == 0)
    # the default form differs (it mixes logits), and the flag reaches the model's layers
    plain = PSALayer(8, 2, mu=0.25, **kw)
    plain.load_state_dict(layer.state_dict())
    assert not torch.allclose(plain(z, mask, prev)[2], attn)
    cfg = config_for(
        "mea", "mosi", input_dims={"text": 4, "vision": 3, "audio": 2}, d=8, heads=2,
        psa_literal_eq2="true",
    )  # fmt: skip
    assert create_model("mea", cfg).psa[1]["audio"].literal is True


# ---------------------------------------------------------------- WAL (Eq. 5-6)
@pytest.mark.parametrize("literal", [False, True])
def test_psi_sums_to_one_and_empty_modality_gets_none(literal: bool) -> None:
    torch.manual_seed(3)
    wal = WeightedAttentionLayer(MODALITIES, 4, literal=literal, max_len=6)
    zs = {m: torch.randn(3, 5, 4) for m in MODALITIES}
    masks = {m: _lengths_mask([5, 2, 3], 5) for m in MODALITIES}
    masks["vision"] = _lengths_mask([5, 0, 3], 5)
    zs = {m: zs[m] * masks[m][..., None] for m in MODALITIES}
    out, psi = wal(zs, masks)
    assert psi.shape == (3, 3)
    assert torch.allclose(psi.sum(-1), torch.ones(3))
    assert psi[1, 1] == 0
    assert torch.allclose(out["text"], zs["text"] * psi[:, 0, None, None])


def test_wal_default_is_masked_mean_of_step_scores() -> None:
    torch.manual_seed(4)
    wal = WeightedAttentionLayer(("text",), 4)
    z = torch.randn(1, 5, 4)
    mask = _lengths_mask([3], 5)
    gamma = wal.score("text", z, mask)
    by_hand = (wal.P["text"](torch.tanh(wal.W["text"](z[0, :3])))).mean()
    assert torch.allclose(gamma[0], by_hand)


def test_wal_literal_has_full_matrix_and_rejects_long_sequences() -> None:
    wal = WeightedAttentionLayer(MODALITIES, 4, literal=True, max_len=6)
    assert wal.W["audio"].weight.shape == (24, 24)
    z = {m: torch.zeros(1, 7, 4) for m in MODALITIES}
    masks = {m: torch.ones(1, 7, dtype=torch.bool) for m in MODALITIES}
    with pytest.raises(MeaError, match="wal_max_len=6"):
        wal(z, masks)


# ---------------------------------------------------------------- MRU (Eq. 7-9)
def test_mru_ignores_padded_source_steps() -> None:
    torch.manual_seed(5)
    mru = MRU(8, 2, 0.0, 0.0, 2).eval()
    src = torch.randn(2, 6, 8)
    tgt = torch.randn(2, 4, 8)
    sm, tm = _lengths_mask([6, 2], 6), _lengths_mask([4, 4], 4)
    a, attn = mru(src, sm, tgt, tm)
    src2 = src.clone()
    src2[1, 2:] = 100.0
    b, _ = mru(src2, sm, tgt, tm)
    assert torch.allclose(a, b)
    assert torch.allclose(attn.sum(-1), torch.ones(2, 2, 4))


# ---------------------------------------------------------------- HSIC (Eq. 13-14)
def _hsic_numpy(x: np.ndarray, y: np.ndarray) -> float:
    n = x.shape[0]
    u = np.eye(n) - np.ones((n, n)) / n
    return float(np.trace(u @ (x @ x.T) @ u @ (y @ y.T)) / (n - 1) ** 2)


def test_hsic_matches_numpy_trace_form() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(17, 5)), rng.normal(size=(17, 3))
    got = hsic(torch.from_numpy(x), torch.from_numpy(y))
    assert got.item() == pytest.approx(_hsic_numpy(x, y), rel=1e-9)


def test_hsic_near_zero_when_independent_positive_when_dependent() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4000, 4, generator=g)
    independent = hsic(x, torch.randn(4000, 4, generator=g))
    dependent = hsic(x, x @ torch.randn(4, 4, generator=g))
    assert independent < 0.02
    assert dependent > 1.0
    assert hsic(x[:1], x[:1]) == 0


def test_disparity_is_the_mean_over_modalities() -> None:
    g = torch.Generator().manual_seed(1)
    he = {m: torch.randn(9, 3, generator=g) for m in MODALITIES}
    ha = {m: torch.randn(9, 3, generator=g) for m in MODALITIES}
    expect = sum(hsic(he[m], ha[m]) for m in MODALITIES) / 3
    assert torch.allclose(disparity_loss(he, ha), expect)


def test_hsic_and_disparity_leave_out_samples_without_the_modality() -> None:
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(7, 3, generator=g), torch.randn(7, 4, generator=g)
    valid = torch.tensor([True, False, True, True, False, True, True])
    x[~valid], y[~valid] = 0.3, -0.2  # what the encoders give an empty sequence: a constant
    got = hsic(x, y, valid)
    assert got.item() == pytest.approx(_hsic_numpy(x[valid].numpy(), y[valid].numpy()), rel=1e-5)
    assert hsic(x, y, torch.tensor([True] + [False] * 6)) == 0
    he = {m: x for m in MODALITIES}
    ha = {m: y for m in MODALITIES}
    ok = {m: valid for m in MODALITIES}
    assert torch.allclose(disparity_loss(he, ha, ok), got)
    assert torch.allclose(
        batch_separation_loss(he, ha, ok),
        batch_separation_loss({m: x[valid] for m in MODALITIES}, {m: y[valid] for m in MODALITIES}),
    )


def test_discriminator_losses_leave_out_samples_without_the_modality() -> None:
    torch.manual_seed(9)
    disc = DoubleDiscriminator(MODALITIES, 4, 0.0, importance=True)
    he = {m: torch.randn(6, 4) for m in MODALITIES}
    ha = {m: torch.randn(6, 4) for m in MODALITIES}
    valid = {m: torch.ones(6, dtype=torch.bool) for m in MODALITIES}
    valid["audio"] = torch.tensor([True, True, False, True, False, True])
    valid["text"] = torch.zeros(6, dtype=torch.bool)  # no sample has text: no text term
    got = disc(he, ha, valid)
    expect = {"agn": 0.0, "exc": 0.0, "imp": 0.0}
    for i, m in enumerate(MODALITIES):
        keep = valid[m]
        if not keep.any():
            continue  # no sample has this modality: it adds nothing
        e, a = he[m][keep], ha[m][keep]
        target = torch.full((int(keep.sum()),), i)
        omega = 1 - torch.softmax(disc.importance(a), -1)[:, i]
        logp = F.log_softmax(disc.modality(a), -1)[:, i]
        expect["agn"] += -(omega * logp).mean()  # Eq. 15 over the valid samples
        expect["exc"] += F.cross_entropy(disc.modality(e), target)  # Eq. 16
        expect["imp"] += F.cross_entropy(disc.importance(a), target)
    for key, value in expect.items():
        assert torch.allclose(got[key], torch.as_tensor(value), atol=1e-6), key
    assert torch.isfinite(got["agn"])


def test_batch_separation_loss_zero_for_orthogonal_positive_for_equal() -> None:
    # soft orthogonality of the batch matrices: E^T A = sum_i e_i a_i^T vanishes when the
    # exclusive and agnostic features vary in uncorrelated patterns over the batch
    e = torch.tensor([[1.0, 0, 0, 0], [-1.0, 0, 0, 0], [1.0, 0, 0, 0], [-1.0, 0, 0, 0]])
    a = torch.tensor([[0, 0, 1.0, 0], [0, 0, 1.0, 0], [0, 0, -1.0, 0], [0, 0, -1.0, 0]])
    assert batch_separation_loss({"text": e}, {"text": a}) == 0
    assert batch_separation_loss({"text": e}, {"text": e}) > 0


def test_batch_separation_loss_value_by_hand() -> None:
    """MEA's ``sep`` row (DSN / MISA form): centre over the batch, L2-normalise each row, mean
    of the squared entries of ``E^T A``, summed over modalities.

    e = [[1, 0], [0, 1], [-1, -1]] (mean 0), rows normalised: [1, 0], [0, 1], -[1, 1]/sqrt2;
    a = [[1, 0], [1, 0], [-2, 0]] (mean 0), rows normalised: [1, 0], [1, 0], [-1, 0].
    E^T A = [[1 + 1/sqrt2, 0], [1 + 1/sqrt2, 0]]: mean of squares (1 + 1/sqrt2)^2 / 2
    = (3 + 2 sqrt2) / 4. Adding a constant to every row changes nothing (centring); a second
    modality adds its own term.
    """
    e = torch.tensor([[1.0, 0], [0, 1], [-1, -1]])
    a = torch.tensor([[1.0, 0], [1, 0], [-2, 0]])
    want = (3 + 2 * 2**0.5) / 4
    assert batch_separation_loss({"text": e}, {"text": a}).item() == pytest.approx(want, rel=1e-6)
    shifted = batch_separation_loss({"text": e + 5.0}, {"text": a - 2.0})
    assert shifted.item() == pytest.approx(want, rel=1e-5)
    two = batch_separation_loss({"text": e, "audio": e}, {"text": a, "audio": a})
    assert two.item() == pytest.approx(2 * want, rel=1e-6)


# ---------------------------------------------------------------- discriminators (Eq. 15-16)
def test_grad_reverse_flips_the_gradient() -> None:
    x = torch.randn(4, requires_grad=True)
    (grad_reverse(x, 0.5) * torch.arange(4.0)).sum().backward()
    assert torch.allclose(x.grad, -0.5 * torch.arange(4.0))


def test_reversal_only_for_agnostic_features() -> None:
    torch.manual_seed(6)
    disc = DoubleDiscriminator(MODALITIES, 6, 0.0, importance=True)
    he = {m: torch.randn(5, 6, requires_grad=True) for m in MODALITIES}
    ha = {m: torch.randn(5, 6, requires_grad=True) for m in MODALITIES}
    losses = disc(he, ha)
    (losses["agn"] + losses["exc"]).backward()
    omega = disc.omega(ha)
    for i, m in enumerate(MODALITIES):
        # the same expressions without any reversal
        he_ref = he[m].detach().requires_grad_()
        ha_ref = ha[m].detach().requires_grad_()
        target = torch.full((5,), i)
        F.cross_entropy(disc.modality(he_ref), target).backward()
        logp = F.log_softmax(disc.modality(ha_ref), -1)[:, i]
        (-(omega[m] * logp).mean()).backward()
        assert torch.allclose(he[m].grad, he_ref.grad, atol=1e-6)  # exclusive: unchanged
        assert torch.allclose(ha[m].grad, -ha_ref.grad, atol=1e-6)  # agnostic: flipped
        assert ha[m].grad.abs().sum() > 0


def test_omega_is_one_minus_importance_and_detached() -> None:
    torch.manual_seed(7)
    disc = DoubleDiscriminator(MODALITIES, 4, 0.0, importance=True)
    ha = {m: torch.randn(3, 4, requires_grad=True) for m in MODALITIES}
    om = disc.omega(ha)
    p = torch.softmax(disc.importance(ha["vision"]), -1)[:, 1]
    assert torch.allclose(om["vision"], 1 - p)
    assert not om["vision"].requires_grad
    losses = disc(None, ha)
    assert set(losses) == {"agn", "imp"}
    # L_imp trains D_i only: no gradient reaches the agnostic features through it
    losses["imp"].backward()
    assert all(ha[m].grad is None for m in MODALITIES)
    assert disc.importance.weight.grad is not None


# ---------------------------------------------------------------- DGF (Eq. 17-19)
def test_dgf_xi_sums_to_one_over_neighbours_and_matches_eq19() -> None:
    torch.manual_seed(8)
    g = GraphFusion(5)
    nodes = torch.randn(2, 3, 5)
    h, xi = g(nodes)
    assert torch.allclose(xi.sum(-1), torch.ones(2, 3))
    assert torch.all(xi.diagonal(dim1=1, dim2=2) == 0)  # neighbours are the other modalities
    p = g.W(nodes[0])
    by_hand = torch.zeros(5)
    for i in range(3):
        nbr = [j for j in range(3) if j != i]
        delta = torch.stack([g.Q(torch.cat([p[i], p[j]])).squeeze() for j in nbr])
        w = torch.softmax(F.gelu(delta), 0)
        by_hand += torch.sigmoid(sum(w[k] * p[j] for k, j in enumerate(nbr)))
    assert torch.allclose(h[0], by_hand, atol=1e-6)
    _, xi_self = GraphFusion(5, self_loops=True)(nodes)
    assert torch.allclose(xi_self.sum(-1), torch.ones(2, 3)) and torch.all(xi_self > 0)


def test_dgf_without_absent_nodes_by_hand() -> None:
    """fusion_absent="drop": an absent node is nobody's neighbour and adds no term to Eq. 19;
    a node left alone attends to itself; all present (or none) is the paper's graph."""
    torch.manual_seed(9)
    g = GraphFusion(5)
    nodes = torch.randn(4, 3, 5)
    present = torch.tensor([[False, False, True], [True, False, True], [True] * 3, [True] * 3])
    h, xi = g(nodes, present)
    p = g.W(nodes)
    assert torch.allclose(h[0], torch.sigmoid(p[0, 2]), atol=1e-6)  # one node: itself
    assert xi[0, 2, 2] == 1 and torch.all(xi[0, :, :2] == 0)
    # two nodes: each the other's only neighbour (xi = 1), the absent one contributes nothing
    assert torch.allclose(h[1], torch.sigmoid(p[1, 2]) + torch.sigmoid(p[1, 0]), atol=1e-6)
    h_paper, xi_paper = g(nodes)
    assert torch.equal(h[2:], h_paper[2:]) and torch.equal(xi[2:], xi_paper[2:])
    # changing what an absent node holds changes nothing
    other = nodes.clone()
    other[0, :2] += 3.0
    other[1, 1] -= 2.0
    assert torch.allclose(g(other, present)[0][:2], h[:2], atol=1e-6)


# ---------------------------------------------------------------- task losses (Eq. 20)
def test_task_losses_mse_l1_and_per_emotion_cross_entropy() -> None:
    pred = torch.tensor([[1.0], [2.0], [0.0]])
    y = torch.tensor([[0.0], [float("nan")], [2.0]])
    assert task_loss(pred, y, "regression", "mse").item() == pytest.approx((1 + 4) / 2)
    assert task_loss(pred, y, "regression", "l1").item() == pytest.approx(1.5)
    logits = torch.randn(2, 4, 2)
    labels = torch.tensor([[1.0, 0, 0, 0], [0, 0, 1, 0]])
    expect = F.cross_entropy(logits.reshape(-1, 2), labels.reshape(-1).long())
    assert torch.allclose(task_loss(logits, labels, "binary-multilabel"), expect)


# ---------------------------------------------------------------- config and registry
def test_config_round_trips_through_json_and_overrides_parse_strings() -> None:
    cfg = config_for(
        "mea", "mosi", mu="0.4", kernel_sizes="3/5/3", wal_literal="true", ablations="psa,wal"
    )
    assert cfg.mu == 0.4 and cfg.kernel_sizes == (3, 5, 3) and cfg.wal_literal is True
    assert cfg.ablations == ("psa", "wal")
    back = MEAConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg
    assert apply_switches(cfg, ["hca"]).ablations == ("psa", "wal", "hca")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bogus": 1}, "valid fields: dataset"),
        ({"heads": "3"}, "divisible by heads=3"),
        ({"mu": "1.5"}, "mu must lie in"),
        ({"mu": "abc"}, "mu must be a number, not 'abc'"),
        ({"kernel_sizes": "3/4/3"}, "odd"),
        ({"ablations": "nope"}, "valid switches: dis"),
        ({"ablations": "dgf,add"}, "cannot be combined"),
        ({"fusion_absent": "skip"}, "fusion_absent must be one of"),
    ],
)
def test_bad_overrides_are_user_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(MeaError, match=message):
        config_for("mea", "mosi", **kwargs)


def test_registry_lists_mea_and_rejects_unknown_names() -> None:
    assert "mea" in list_models()
    with pytest.raises(MeaError, match="valid models: .*mea"):
        create_model("nope", {})
    with pytest.raises(MeaError, match="valid: mosi, mosei, iemocap"):
        config_for("mea", "cmu")


# ---------------------------------------------------------------- deviations from the papers
def _doc_deviations(doc: Path) -> dict[str, str]:
    """The ``- `key`: text`` items of a model doc's "Deviations shown with results" list."""
    lines = doc.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.endswith(" Deviations shown with results"))
    items = {}
    for line in lines[start + 1 :]:
        if line.startswith("#"):
            break
        m = re.fullmatch(r"- `([^`]+)`: (.+)", line)
        if m:
            items[m.group(1)] = m.group(2)
    return items


def _slug(heading: str) -> str:
    """GitHub's anchor of a markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip("# ").strip().lower())
    return text.replace(" ", "-")


@pytest.mark.parametrize("name", ["mea", "mfsa", "mcr", "fdmer", "mult"])
def test_declared_deviations_are_the_docs_list_and_their_anchors_exist(name: str) -> None:
    """Each built-in model declares its deviations in its registration; its doc's Decisions
    section lists exactly those (key and text), and every doc anchor is a heading there."""
    entry = get_entry(name)
    assert entry.deviations, f"{name} declares no deviation from its paper"
    docs = {d.doc.split("#")[0] for d in entry.deviations}
    assert len(docs) == 1
    doc = ROOT / docs.pop()
    assert _doc_deviations(doc) == {d.key: d.text for d in entry.deviations}
    anchors = {_slug(line) for line in doc.read_text().splitlines() if line.startswith("#")}
    assert {d.doc.split("#")[1] for d in entry.deviations} <= anchors


def test_a_model_without_deviations_needs_to_declare_none() -> None:
    """The registration's field has a default: a new model may declare nothing."""
    from tiny_model import registered

    with registered() as name:
        entry = get_entry(name)
        assert entry.deviations == ()
        assert deviation_block({name: entry.tiny_config()}) == []


def test_deviations_follow_the_configuration() -> None:
    """Conditional deviations print only for the configurations that have them: MulT says
    which future-mask setting it ran; MCR which mutual map; FDMER's mixed preset on IEMOCAP
    only; MFSA's scaled L_sep unless the printed sum is asked for."""

    def keys(model: str, dataset: str = "mosi", **fields: object) -> set[str]:
        return {d["key"] for d in deviations_of(model, config_for(model, dataset, **fields))}

    assert {"causal", "pre-ln"} <= keys("mult") and "non-causal" not in keys("mult")
    assert "non-causal" in keys("mult", causal=False) and "causal" not in keys("mult", causal=False)
    assert "mutual-map" in keys("mcr") and "mutual-map" not in keys("mcr", cmu_literal=True)
    assert "iemocap-preset" in keys("fdmer", "iemocap") and "iemocap-preset" not in keys("fdmer")
    assert "sep-batch" in keys("mfsa") and "sep-batch" not in keys("mfsa", sep_batch=0)
    lines = deviation_block({"mcr": config_for("mcr", "mosi"), "mult": config_for("mult", "mosi")})
    assert lines[0].startswith("Deviations from the papers")
    assert lines[1].startswith("MCR: mutual map resampled") and "docs/models/mcr.md#" in lines[1]
    assert any(line.startswith("MulT: future mask on") for line in lines)


def test_info_lists_the_models_deviations_and_takes_model_fields() -> None:
    from typer.testing import CliRunner

    from mea_cli.cli import app

    r = CliRunner().invoke(app, ["info", "--model", "mult", "--set", "causal=false", "--json"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    assert got["config"]["causal"] is False
    assert {d["key"] for d in got["deviations"]} == {"non-causal", "pre-ln", "embed-scale"}
    assert all(", no future mask, " in v for v in got["blocks"].values())
    r = CliRunner().invoke(app, ["info", "--model", "mcr"], env={"COLUMNS": "300"})
    assert r.exit_code == 0, r.output
    assert "deviations from the paper:" in r.stdout and "mutual-map: mutual map resampled" in r.stdout
    r = CliRunner().invoke(app, ["info", "--model", "mult", "--set", "train.lr=1"])
    assert isinstance(r.exception, MeaError) and "model config fields only" in str(r.exception)


def test_mea_sep_row_is_described_as_the_batch_form() -> None:
    """MEA's ``sep`` row computes :func:`batch_separation_loss` (DSN / MISA), not MFSA's
    per-sample Eq. 13; its description says so."""
    from mea_cli.models.mea.switches import SWITCHES

    text = SWITCHES["sep"].description
    assert "DSN / MISA" in text and "not MFSA's per-sample" in text
