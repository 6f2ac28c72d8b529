"""FDMER (ACM MM 2022): what is new beside the contract suite, against hand computations.

Eq. 1 (post-LN transformers, heads per width), Eq. 4-5 (consistency), Eq. 6-7 (HSIC among
private representations), Eq. 8-11 (angular-margin discriminator, gradient reversal on the
common path only), Eq. 12-17 (CMAF with the four-token reading of Eq. 12, masks), Eq. 18, the
Table 4 switches beyond what the contract checks, the presets, and the paper rows labelled
"word-aligned" wherever they are shown.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from model_helpers import pad_batch, random_sequences
from rich.console import Console
from torch.nn import functional as F

from mea_cli import MODALITIES
from mea_cli.ablate.compare_table import build_tables
from mea_cli.ablate.rows import paper_table, table_rows
from mea_cli.models import config_for, create_model, get_entry
from mea_cli.models.fdmer.angular import (
    AngularModalityDiscriminator,
    adversarial_losses,
    angular_margin_logits,
)
from mea_cli.models.fdmer.cmaf import CMAF, CrossModalInteraction, simple_fusion
from mea_cli.models.fdmer.constraints import consistency_loss, private_disparity_loss, similarity
from mea_cli.models.fdmer.switches import parts
from mea_cli.models.layers.transformer import EncoderLayer, ModalityTransformer, heads_for
from mea_cli.train.evaluate import EvalResult, paper_rows, render_eval
from mea_cli.train.presets import training_preset

DIMS = {"text": 7, "vision": 5, "audio": 6}


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: tiny tensors, busy cores


def _tiny(**overrides: object):  # noqa: ANN202 - FDMERConfig
    """The tiny preset, where ``overrides`` may replace the tiny values themselves."""
    return config_for("fdmer", "mosi", input_dims=DIMS, **{**get_entry("fdmer").tiny, **overrides})


def _batch(lengths: dict[str, list[int]], seed: int = 0, labels: bool = True):  # noqa: ANN202
    n = len(lengths["text"])
    y = torch.randn(n, 1, generator=torch.Generator().manual_seed(seed + 1)) if labels else None
    return pad_batch(random_sequences(DIMS, lengths, seed), y)


FULL = {"text": [3, 4, 2, 5, 1, 3], "vision": [6, 2, 4, 3, 5, 2], "audio": [4, 5, 3, 2, 6, 4]}


# ------------------------------------------------------------------ Eq. 8-9: angular margin
def test_angular_margin_logits_match_a_hand_computation() -> None:
    s, m = 72.0, 0.5
    cos = torch.tensor([[0.6, 0.2, -0.5], [0.1, -0.95, 0.3]])
    got = angular_margin_logits(cos, torch.tensor([0, 1]), s, m)
    # sample 0: theta_y = acos(0.6) + 0.5 < pi, so cos(theta_y + m) for the true class
    true0 = s * math.cos(math.acos(0.6) + m)
    # sample 1: cos theta_y = -0.95 <= cos(pi - 0.5) = -0.878, past the threshold:
    # the linear penalty cos theta - m sin m keeps the logit decreasing in theta
    true1 = s * (-0.95 - m * math.sin(m))
    want = torch.tensor([[true0, s * 0.2, s * -0.5], [s * 0.1, true1, s * 0.3]])
    assert torch.allclose(got, want, atol=1e-4)
    assert math.cos(math.pi - m) >= -0.95  # the second sample really is past the threshold
    # no margin: plain scaled cosines
    assert torch.allclose(angular_margin_logits(cos, torch.tensor([0, 1]), s, 0.0), s * cos, atol=1e-4)


def test_true_class_logit_decreases_with_the_angle_across_the_threshold() -> None:
    theta = torch.linspace(0.0, math.pi, 400)
    logits = angular_margin_logits(torch.cos(theta)[:, None].repeat(1, 2), torch.zeros(400, dtype=torch.long), 72.0, 0.5)
    assert (logits[1:, 0] < logits[:-1, 0]).all()


def test_discriminator_cosines_and_loss_by_hand() -> None:
    disc = AngularModalityDiscriminator(d_k=2, d=2, n_modalities=3, scale=72.0, margin=0.5)
    with torch.no_grad():
        disc.f.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 2.0]]))
        disc.f.bias.zero_()
        disc.w.weight.copy_(torch.tensor([[3.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]))
    h = torch.tensor([[1.0, 1.0]])
    cos = disc.cosines(h)  # F(h) = (2, 2) -> (1, 1)/sqrt 2; columns e1, e2, -(1, 1)/sqrt 2
    r = 1 / math.sqrt(2)
    assert torch.allclose(cos, torch.tensor([[r, r, -1.0]]), atol=1e-6)
    logits = [72 * math.cos(math.pi / 4 + 0.5), 72 * r, -72.0]  # true class 0
    want = -logits[0] + math.log(sum(math.exp(v) for v in logits))
    assert disc.per_sample_loss(h, 0).item() == pytest.approx(want, rel=1e-5)
    # Eq. 8's plain cross-entropy (the "ce" switch): softmax(W_D^T F(h)), unnormalised
    raw = torch.tensor([[6.0, 2.0, -4.0]])
    assert disc.per_sample_loss(h, 0, margin=False).item() == pytest.approx(
        F.cross_entropy(raw, torch.tensor([0])).item(), rel=1e-6
    )
    assert torch.allclose(disc.probabilities(h), torch.softmax(raw, -1))


# ------------------------------------------------------------------ Eq. 10-11: reversal
def test_gradient_reversal_on_the_common_path_only() -> None:
    torch.manual_seed(0)
    disc = AngularModalityDiscriminator(d_k=4, d=3, n_modalities=3, scale=72.0, margin=0.5)
    common = {m: torch.randn(5, 4, requires_grad=True) for m in MODALITIES}
    private = {m: torch.randn(5, 4, requires_grad=True) for m in MODALITIES}
    losses = adversarial_losses(disc, common, private)
    assert set(losses) == {"ami", "ams"}
    # the same losses computed plainly (no reversal), on copies of the inputs
    plain_c = {m: c.detach().clone().requires_grad_(True) for m, c in common.items()}
    plain_p = {m: p.detach().clone().requires_grad_(True) for m, p in private.items()}
    ref_ami = sum(disc.per_sample_loss(plain_c[m], i).mean() for i, m in enumerate(MODALITIES))
    ref_ams = sum(disc.per_sample_loss(plain_p[m], i).mean() for i, m in enumerate(MODALITIES))
    assert losses["ami"].item() == pytest.approx(ref_ami.item(), rel=1e-6)  # identity forward
    assert losses["ams"].item() == pytest.approx(ref_ams.item(), rel=1e-6)

    disc.zero_grad()
    losses["ami"].backward()
    d_grad = [p.grad.clone() for p in disc.parameters()]
    disc.zero_grad()
    ref_ami.backward()
    for m in MODALITIES:  # common: the negated discriminator gradient
        assert torch.allclose(common[m].grad, -plain_c[m].grad, atol=1e-6)
        assert plain_c[m].grad.abs().sum() > 0
    for got, want in zip(d_grad, [p.grad for p in disc.parameters()], strict=True):
        assert torch.allclose(got, want, atol=1e-6)  # the discriminator itself learns plainly

    losses["ams"].backward()
    ref_ams.backward()
    for m in MODALITIES:  # private: not reversed
        assert torch.allclose(private[m].grad, plain_p[m].grad, atol=1e-6)


def test_grl_sign_inside_the_model() -> None:
    """In the model, d loss / d C_m carries beta * L_ami's gradient reversed and d loss / d P_m
    carries L_ams's plainly: flipping ``grl_lambda`` to -1 (an identity) changes the common
    gradient by exactly 2 beta times the plain discriminator gradient, and the private one not."""
    batch = _batch(FULL)  # every sample has every modality: L_am is a plain batch mean
    grads = {}
    for lam in (1.0, -1.0):
        torch.manual_seed(0)
        model = create_model("fdmer", _tiny(grl_lambda=lam, beta=0.5)).eval()
        out = model(batch)
        c, p = out.reps["agnostic"]["text"], out.reps["exclusive"]["text"]
        grads[lam] = torch.autograd.grad(out.loss, [c, p])
    plain = c.detach().requires_grad_(True)
    d = torch.autograd.grad(model.discriminator.per_sample_loss(plain, 0).mean(), plain)[0]
    assert d.abs().sum() > 0
    assert torch.allclose(grads[-1.0][0] - grads[1.0][0], 2 * 0.5 * d, atol=1e-5)
    assert torch.allclose(grads[-1.0][1], grads[1.0][1], atol=1e-6)


# ------------------------------------------------------------------ Eq. 4-5: consistency
def test_consistency_is_zero_for_identical_similarity_matrices() -> None:
    g = torch.Generator().manual_seed(0)
    c = torch.randn(6, 4, generator=g)
    q, _ = torch.linalg.qr(torch.randn(4, 4, generator=g))  # a rotation keeps every cosine
    same = {"text": c, "vision": 3.0 * c, "audio": c @ q}
    assert consistency_loss(same).item() == pytest.approx(0.0, abs=1e-9)
    other = {"text": c, "vision": torch.randn(6, 4, generator=g), "audio": c}
    assert consistency_loss(other).item() > 0.1


def test_consistency_by_hand() -> None:
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])  # S = I
    b = torch.tensor([[1.0, 0.0], [3.0, 0.0]])  # S = all ones
    assert torch.allclose(similarity(a), torch.eye(2)) and torch.allclose(similarity(b), torch.ones(2, 2))
    # ||I - 1||_F^2 = 2 (two off-diagonal entries of -1): a sum, not a mean
    assert consistency_loss({"text": a, "vision": b}).item() == pytest.approx(2.0)
    # three modalities: pairs (t, v) 2, (t, a) 0, (v, a) 2 -> 1/3 * 4
    assert consistency_loss({"text": a, "vision": b, "audio": a}).item() == pytest.approx(4 / 3)


def test_consistency_leaves_out_samples_absent_from_a_pair() -> None:
    g = torch.Generator().manual_seed(1)
    c = {m: torch.randn(5, 3, generator=g) for m in MODALITIES}
    valid = {m: torch.tensor([True, True, True, True, True]) for m in MODALITIES}
    valid["vision"] = torch.tensor([True, False, True, True, False])
    keep = torch.tensor([0, 2, 3])
    sub = {m: v[keep] for m, v in c.items()}
    pairs = [
        consistency_loss({"text": sub["text"], "vision": sub["vision"]}),
        consistency_loss({"text": c["text"], "audio": c["audio"]}),
        consistency_loss({"vision": sub["vision"], "audio": sub["audio"]}),
    ]
    assert consistency_loss(c, valid).item() == pytest.approx(sum(p.item() for p in pairs) / 3, rel=1e-6)


# ------------------------------------------------------------------ Eq. 6-7: disparity
def _hsic_numpy(x: np.ndarray, y: np.ndarray) -> float:
    n = len(x)
    u = np.eye(n) - np.ones((n, n)) / n
    return float(np.trace(u @ (x @ x.T) @ u @ (y @ y.T)) / (n - 1) ** 2)


def test_private_disparity_is_the_mean_pairwise_hsic() -> None:
    g = torch.Generator().manual_seed(2)
    p = {m: torch.randn(7, 3, generator=g) for m in MODALITIES}
    arr = {m: v.double().numpy() for m, v in p.items()}
    want = np.mean([_hsic_numpy(arr[a], arr[b]) for a, b in (("text", "vision"), ("text", "audio"), ("vision", "audio"))])
    assert private_disparity_loss(p).item() == pytest.approx(want, rel=1e-5)


def test_hsic_small_for_independent_large_for_identical_private_representations() -> None:
    g = torch.Generator().manual_seed(3)
    indep = {m: torch.randn(512, 8, generator=g) for m in MODALITIES}
    x = torch.randn(512, 8, generator=g)
    same = dict.fromkeys(MODALITIES, x)
    small, large = private_disparity_loss(indep).item(), private_disparity_loss(same).item()
    assert large > 50 * small and large > 1.0


# ------------------------------------------------------------------ Eq. 12-17: CMAF
def test_eq12_reads_the_source_as_four_tokens() -> None:
    torch.manual_seed(0)
    tokens = ("common", *MODALITIES)
    inter = CrossModalInteraction(tokens, d_k=6, ffn_mult=2, dropout=0.0)
    assert inter.q is not None and inter.q.weight.shape == (6, 6)  # W_Q in R^{d_k x d_k}, not 4d_k
    f = torch.randn(2, 4, 6)
    valid = torch.ones(2, 4, dtype=torch.bool)
    y, w = inter(f, valid)
    assert y.shape == (2, 4, 6) and w.shape == (2, 4, 4)  # a weight per (target, source token)
    assert torch.allclose(w.sum(-1), torch.ones(2, 4))
    # by hand for target 1 of sample 0 (Eq. 12-14)
    src = inter.source_norm(f[0])
    tgt = inter.norm[tokens[1]](f[0, 1])
    logits = inter.g[tokens[1]](tgt) @ inter.q(src).T  # no 1/sqrt(d_k): as printed
    attn = torch.softmax(logits, -1)
    assert torch.allclose(w[0, 1], attn, atol=1e-6)
    y13 = tgt + attn @ inter.u(src)
    y14 = inter.ffn(inter.ffn_norm(y13)) + y13
    assert torch.allclose(y[0, 1], y14, atol=1e-5)


def test_cmaf_adaptive_weights_by_hand_and_absent_tokens() -> None:
    torch.manual_seed(1)
    tokens = ("common", *MODALITIES)
    cmaf = CMAF(tokens, d_k=5, ffn_mult=2, dropout=0.0).eval()
    f = torch.randn(3, 4, 5)
    valid = torch.tensor([[True] * 4, [True, True, False, True], [False] * 4])
    fused, psi = cmaf(f, valid)
    assert fused.shape == (3, 5) and psi.shape == (3, 4)
    y, _ = cmaf.interaction(f, valid)
    mu = torch.stack([cmaf.attention.q(torch.tanh(cmaf.attention.proj[t](y[0, i]))) for i, t in enumerate(tokens)]).squeeze(-1)
    assert torch.allclose(psi[0], torch.softmax(mu, -1), atol=1e-6)  # Eq. 15-16
    assert torch.allclose(fused[0], (psi[0, :, None] * y[0]).sum(0), atol=1e-5)  # Eq. 17
    assert psi[1, 2] == 0 and torch.allclose(psi[1].sum(), torch.tensor(1.0))
    assert torch.equal(psi[2], torch.zeros(4)) and torch.equal(fused[2], torch.zeros(5))
    # an absent token's values change nothing (it is masked as a key and as a weight)
    g = f.clone()
    g[1, 2] = 100.0
    assert torch.allclose(cmaf(g, valid)[0][1], fused[1], atol=1e-6)


def test_cmaf_phase_switches_and_single_token() -> None:
    f = torch.randn(2, 4, 5)
    valid = torch.tensor([[True] * 4, [True, False, True, True]])
    no2 = CMAF(("common", *MODALITIES), 5, 2, 0.0, adaptive=False)
    _, psi = no2(f, valid)
    assert torch.allclose(psi[0], torch.full((4,), 0.25)) and torch.allclose(psi[1], torch.tensor([1 / 3, 0, 1 / 3, 1 / 3]))
    no1 = CMAF(("common", *MODALITIES), 5, 2, 0.0, interaction=False)
    fused, psi = no1(f, valid)
    assert torch.allclose(fused, (psi[..., None] * f).sum(1))  # Y_ta = F_ta
    one = CMAF(("common",), 5, 2, 0.0)
    assert one.attention is None and one.interaction.g is None and one.interaction.q is None
    fused, psi = one(f[:, :1], valid[:, :1])
    assert torch.equal(psi, torch.ones(2, 1))


def test_simple_fusions() -> None:
    f = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])
    valid = torch.tensor([[True, False, True]])
    assert torch.equal(simple_fusion("concat", f, valid), torch.tensor([[1.0, 2.0, 0.0, 0.0, 5.0, 6.0]]))
    assert torch.equal(simple_fusion("add", f, valid), torch.tensor([[6.0, 8.0]]))
    assert torch.equal(simple_fusion("mul", f, valid), torch.tensor([[5.0, 12.0]]))


# ------------------------------------------------------------------ Eq. 1: transformers
def test_heads_are_the_largest_divisor_of_the_width() -> None:
    assert [heads_for(d, 8) for d in (300, 35, 74, 768, 13, 7)] == [6, 7, 2, 8, 1, 7]
    assert heads_for(4, 1) == 1


def test_transformer_fused_and_explicit_attention_agree_and_maps_are_masked() -> None:
    torch.manual_seed(0)
    layer = EncoderLayer(6, 2, 2, 0.0).eval()
    x = torch.randn(3, 5, 6)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], dtype=torch.bool)
    a, _ = layer(x, mask)
    b, w = layer(x, mask, need_weights=True)
    assert torch.allclose(a, b, atol=1e-5) and torch.equal(b[2], torch.zeros(5, 6))
    assert w.shape == (3, 2, 5, 5)
    assert torch.allclose(w[0, :, :3, :3].sum(-1), torch.ones(2, 3), atol=1e-6)
    assert w[0, :, :, 3:].abs().sum() == 0 and w[2].abs().sum() == 0
    # post-LN (Vaswani et al.): every real output step is layer-normalised
    assert torch.allclose(b[1].mean(-1), layer.norm2.bias.mean().expand(5), atol=1e-5)


def test_encoder_layer_is_torchs_post_ln_transformer_layer() -> None:
    """Eq. 1's layer is [45]'s: the same weights in ``nn.TransformerEncoderLayer`` (post-LN,
    ReLU) give the same real steps under the same key-padding mask."""
    torch.manual_seed(0)
    ours = EncoderLayer(6, 2, 3, 0.0).eval()
    ref = torch.nn.TransformerEncoderLayer(6, 2, 18, 0.0, batch_first=True, norm_first=False).eval()
    with torch.no_grad():
        ref.self_attn.in_proj_weight.copy_(ours.qkv.weight)
        ref.self_attn.in_proj_bias.copy_(ours.qkv.bias)
        ref.self_attn.out_proj.load_state_dict(ours.out.state_dict())
        ref.linear1.load_state_dict(ours.ffn[0].state_dict())
        ref.linear2.load_state_dict(ours.ffn[2].state_dict())
        ref.norm1.load_state_dict(ours.norm1.state_dict())
        ref.norm2.load_state_dict(ours.norm2.state_dict())
    x = torch.randn(2, 4, 6)
    mask = torch.tensor([[True, True, True, False], [True, True, True, True]])
    got, _ = ours(x, mask)
    want = ref.train()(x, src_key_padding_mask=~mask)  # dropout 0; train mode: no fast path
    assert torch.allclose(got[mask], want[mask], atol=1e-5)
    assert torch.equal(got[0, 3], torch.zeros(6))


def test_transformer_layers_and_attention_names() -> None:
    cfg = config_for("fdmer", "mosi")
    assert cfg.layers == {"text": 5, "vision": 4, "audio": 4}  # n_t = 5, n_v = 4, n_a = 4
    model = create_model("fdmer", _tiny(transformer_layers=(2, 1, 3))).eval()
    out = model(_batch(FULL, labels=False), return_attention=True)
    assert sorted(out.attention) == sorted(
        ["trans/0/text", "trans/1/text", "trans/0/vision", "trans/0/audio", "trans/1/audio", "trans/2/audio"]
    )
    t = ModalityTransformer(7, 1, 1, 2, 0.0)
    assert len(t.layers) == 1


# ------------------------------------------------------------------ the model
def test_representations_and_losses_of_eq18() -> None:
    torch.manual_seed(0)
    cfg = _tiny(beta=0.5, gamma=0.25)
    model = create_model("fdmer", cfg).eval()
    out = model(_batch(FULL))
    assert set(out.reps) == {"exclusive", "agnostic"}
    assert set(out.losses) == {"task", "con", "dis", "ami", "ams"}
    t = out.losses
    want = t["task"] + 0.5 * (t["ami"] + t["ams"]) + 0.25 * (t["con"] + t["dis"])
    assert out.loss.item() == pytest.approx(want.item(), rel=1e-6)
    assert t["task"].item() == pytest.approx(F.mse_loss(out.pred, _batch(FULL).labels).item(), rel=1e-6)


def test_representation_switches_keep_the_representation_learning() -> None:
    """w/o Common / w/o Private keep every loss (Table 4: 'we keep the representation
    learning process but use only partial representations in the fusion')."""
    batch = _batch(FULL)
    for switch, tokens in (("common", MODALITIES), ("private", ("common",))):
        model = create_model("fdmer", _tiny(ablations=[switch])).eval()
        assert model.parts.tokens == tuple(tokens)
        out = model(batch)
        assert set(out.losses) == {"task", "con", "dis", "ami", "ams"}
        assert set(out.reps) == {"exclusive", "agnostic"}
    nd = create_model("fdmer", _tiny(ablations=["disentangle"])).eval()
    assert nd.parts.tokens == MODALITIES and nd.common is None and nd.private is None
    assert set(nd(batch).losses) == {"task"}


def test_modality_switch_reads_two_modalities() -> None:
    model = create_model("fdmer", _tiny(ablations=["text"])).eval()
    assert model.modalities == ("vision", "audio") and model.parts.tokens == ("common", "vision", "audio")
    assert model.discriminator.w.weight.shape[0] == 2
    batch = _batch(FULL)
    out = model(batch)
    batch.inputs["text"] = batch.inputs["text"] * 0 + 99.0  # not read at all
    assert torch.equal(model(batch).pred, out.pred)
    assert get_entry("fdmer").active_capabilities(model.cfg) == frozenset()


def test_ce_switch_replaces_the_angular_margin_by_plain_cross_entropy() -> None:
    assert parts(["ce"]).adversarial == "ce" and parts([]).adversarial == "am"
    out = create_model("fdmer", _tiny(ablations=["ce"])).eval()(_batch(FULL))
    assert {"ami_ce", "ams_ce"} <= set(out.losses) and "ami" not in out.losses


def test_absent_modality_token_does_not_enter_the_fusion() -> None:
    """A sample without audio: its P_a token is masked, so what the private audio encoder
    makes of an empty sequence cannot change the prediction."""
    torch.manual_seed(0)
    model = create_model("fdmer", _tiny()).eval()
    lengths = {"text": [3, 2], "vision": [4, 3], "audio": [0, 2]}
    batch = _batch(lengths, labels=False)
    before = model(batch).pred
    bias = model.private.enc["audio"].mlp[-1].bias
    with torch.no_grad():  # not a constant shift: CMAF's LayerNorms would cancel that
        bias.add_(torch.linspace(-5.0, 5.0, bias.numel()))
    after = model(batch).pred
    assert torch.allclose(before[0], after[0], atol=1e-6)
    assert not torch.allclose(before[1], after[1], atol=1e-3)


# ------------------------------------------------------------------ presets and paper rows
def test_presets_are_sec_4_2() -> None:
    mosi, mosei, iemocap = (config_for("fdmer", d) for d in ("mosi", "mosei", "iemocap"))
    assert (mosi.beta, mosi.gamma, mosei.beta, mosei.gamma) == (2e-2, 2e-2, 3e-2, 4e-2)
    assert (iemocap.beta, iemocap.gamma) == (2e-2, 3e-2)  # UR_FUNNY's: our choice
    assert (mosi.d_k, mosi.d_disc, mosi.am_scale, mosi.am_margin) == (256, 128, 72.0, 0.5)
    source = get_entry("fdmer").config_cls.PRESET_SOURCE
    assert "word-aligned" in source and "IEMOCAP: our choice" in source
    # the IEMOCAP preset has two sources, and says which lr differs from UR_FUNNY's
    assert "UR_FUNNY's beta, gamma" in source and "MEA Table I" in source
    assert "lr 1e-3, where UR_FUNNY used 2e-3" in source
    t = training_preset("fdmer", "iemocap").settings
    assert (t.batch_size, t.epochs, t.lr) == (32, 60, 1e-3)  # what the source says
    t = training_preset("fdmer", "mosi").settings
    assert (t.batch_size, t.epochs, t.lr) == (64, 120, 1e-3)
    t = training_preset("fdmer", "mosei").settings
    assert (t.batch_size, t.epochs, t.lr) == (16, 100, 1e-3)
    assert "no published value for fdmer on iemocap" in training_preset("fdmer", "iemocap").sources["lr"]


def test_fdmer_paper_rows_are_labelled_word_aligned_in_eval() -> None:
    for dataset in ("mosi", "mosei"):
        (row,) = [r for r in paper_rows(dataset) if r["model"] == "FDMER"]
        assert row["setting"] == "word-aligned" and "word-aligned" in row["source"]
        assert all("setting" not in r for r in paper_rows(dataset) if r["model"] != "FDMER")
    result = EvalResult(
        checkpoint="ckpt.pt", features="mine.h5", split="test", n=10, model="fdmer",
        dataset="mosi", task="regression", label_names=["sentiment"], metrics={"mae": 0.9},
        baseline={"mae": 1.2}, synthetic=False, paper=paper_rows("mosi"),
    )  # fmt: skip
    console = Console(width=400, record=True, markup=False)
    render_eval(result, console)
    text = console.export_text()
    assert "FDMER (paper, word-aligned)" in text and "MEA (paper)" in text
    assert "FDMER: measured on word-aligned sequences, not on unaligned ones as here" in text
    assert result.to_dict()["paper"][3]["setting"] == "word-aligned"


def test_eval_paper_prints_fdmers_deviations_under_the_table() -> None:
    """``mea eval --paper`` (``deviations`` filled by :func:`evaluate_checkpoint`): the block
    heading and one line per deviation that the run's configuration has, with its anchor."""
    from mea_cli.models.core.deviations import deviation_block

    lines = deviation_block({"fdmer": config_for("fdmer", "iemocap")})
    result = EvalResult(
        checkpoint="ckpt.pt", features="mine.h5", split="test", n=10, model="fdmer",
        dataset="iemocap", task="binary-multilabel", label_names=["happy"], metrics={},
        baseline={}, synthetic=False, deviations=lines,
    )  # fmt: skip
    console = Console(width=400, record=True, markup=False)
    render_eval(result, console)
    text = console.export_text()
    assert "Deviations from the papers" in text
    assert "FDMER: run on unaligned sequences with masks; its paper rows are word-aligned" in text
    assert "FDMER: IEMOCAP row (IEMOCAP, custom tasks that take it): UR_FUNNY's beta" in text
    assert "docs/models/fdmer.md#deviations-shown-with-results" in text
    assert result.to_dict()["deviations_from_paper"] == lines


def test_fdmer_paper_rows_are_labelled_word_aligned_in_compare() -> None:
    results = {"mea": {1: {"mae": 0.9}, 2: {"mae": 0.8}}, "fdmer": {1: {"mae": 1.0}, 2: {"mae": 0.9}}}
    paper = {"mea": {"mae": 0.844}, "fdmer": {"mae": 0.845}}
    t = build_tables("cmp", results, ["mae"], paper, {"fdmer": "word-aligned"})
    md = t.to_markdown()
    assert "0.845 (word-aligned)" in md and "0.844 |" in md
    assert "0.845 (word-aligned)" in t.to_latex()
    rows = {r["model"]: r for r in csv.DictReader(io.StringIO(t.to_csv()))}
    assert rows["fdmer"]["paper"] == "0.845" and rows["fdmer"]["paper_setting"] == "word-aligned"
    assert rows["mea"]["paper_setting"] == ""


def test_compare_paper_note_says_fdmer_rows_are_word_aligned(
    synth_mosi: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``mea compare --paper`` on a real benchmark store (the comparability check passed)."""
    import mea_cli.ablate.compare as compare
    from mea_cli.ablate.compare import _paper

    monkeypatch.setattr(compare, "benchmark_mismatch", lambda store, preset: None)
    values, note, settings = _paper(synth_mosi, "mosi", ["mea", "fdmer"])
    assert settings == {"fdmer": "word-aligned"}
    assert values is not None and values["fdmer"]["mae"] == 0.845
    assert "[measured on word-aligned sequences, not on unaligned ones as here]" in note
    assert note.count("word-aligned sequences") == 1  # MEA's row is unaligned


def test_table4_rows_follow_the_paper_and_carry_its_values() -> None:
    """``mea ablate --paper`` on an FDMER run: every switch is a Table 4 row, in its order."""
    switches = get_entry("fdmer").switches
    rows = table_rows(switches, None, "fdmer")
    assert [r.key for r in rows] == ["full", *switches]  # the switches are in Table 4's order
    assert all(r.group != "Other" for r in rows)
    by_key = {r.key: r for r in rows}
    assert by_key["full"].paper == {"mosi": {"mae": 0.845, "corr": 0.732}, "mosei": {"mae": 0.568, "corr": 0.736}}
    assert by_key["text"].paper["mosi"] == {"mae": 1.275, "corr": 0.345}
    assert by_key["mul"].paper["mosei"] == {"mae": 0.579, "corr": 0.726}
    table = paper_table("fdmer")
    assert table is not None and "word-aligned" in table["source"]["table"]
