"""MulT (Tsai et al., ACL 2019): crossmodal attention direction, pooling, masks, presets, CLI."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import warm
from model_helpers import assert_bf16_close, pad_batch, random_sequences, store_batch
from scipy import stats
from torch.nn import functional as F
from typer.testing import CliRunner

from mea_cli import MODALITIES
from mea_cli.batch import Batch
from mea_cli.cli import app
from mea_cli.errors import MeaError
from mea_cli.models import config_for, config_from_dict, create_model, list_models
from mea_cli.models.layers.extractor import sinusoidal_positions
from mea_cli.models.mult.config import DROPOUTS, MulTConfig
from mea_cli.models.mult.crossmodal import (
    EncoderLayer,
    MulTEncoder,
    MultiheadAttention,
    _dropped_attention,
    _softmax_attention,
    attention_plan,
    chunked_dropout_attention,
    future_mask,
    last_real_step,
)
from mea_cli.models.mult.switches import SWITCHES

DIMS = {"text": 7, "vision": 5, "audio": 6}
SMALL = dict(d=8, heads=2, layers=2, memory_layers=1)
LENGTHS = {"text": [3, 0, 5, 1], "vision": [8, 4, 0, 2], "audio": [6, 6, 1, 0]}


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny tensors: one intra-op thread is faster and immune to a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _model(dataset: str = "mosi", **overrides: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(
        "mult", config_for("mult", dataset, input_dims=DIMS, **{**SMALL, **overrides})
    )


def _close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-5) -> bool:
    return torch.allclose(a, b, atol=tol, rtol=tol)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# ---------------------------------------------------------------- crossmodal attention (Eq. 1)
def test_crossmodal_attention_takes_queries_from_the_target_and_keys_values_from_the_source() -> (
    None
):
    """One head, d = 3, fixed weights: Y = softmax(Q_t K_s^T / sqrt(d)) V_s W_o + b_o in numpy."""
    d = 3
    att = MultiheadAttention(d, heads=1, dropout=0.0).eval()
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3 * d, d))
    b = rng.normal(size=3 * d)
    wo, bo = rng.normal(size=(d, d)), rng.normal(size=d)
    with torch.no_grad():
        att.in_proj.weight.copy_(torch.tensor(w))
        att.in_proj.bias.copy_(torch.tensor(b))
        att.out_proj.weight.copy_(torch.tensor(wo))
        att.out_proj.bias.copy_(torch.tensor(bo))
    target = rng.normal(size=(1, 4, d))  # T_t = 4
    source = rng.normal(size=(1, 6, d))  # T_s = 6, the last two steps padding
    key_mask = torch.tensor([[True] * 4 + [False] * 2])
    args = (
        torch.tensor(target, dtype=torch.float32),
        torch.tensor(source, dtype=torch.float32),
        torch.ones(1, 4, dtype=torch.bool),
        key_mask,
    )
    with torch.no_grad():
        out, maps = att(*args, need_weights=True)
        fused, _ = att(*args)
    q = target[0] @ w[:d].T + b[:d]
    k = source[0, :4] @ w[d : 2 * d].T + b[d : 2 * d]
    v = source[0, :4] @ w[2 * d :].T + b[2 * d :]
    a = _softmax(q @ k.T / math.sqrt(d))  # [T_t, real T_s]
    want = a @ v @ wo.T + bo
    assert out.shape == (1, 4, d) and maps.shape == (1, 1, 4, 6)
    assert np.allclose(maps[0, 0, :, :4].numpy(), a, atol=1e-5)
    assert torch.all(maps[0, 0, :, 4:] == 0)
    assert np.allclose(out[0].numpy(), want, atol=1e-5)
    assert np.allclose(fused[0].numpy(), want, atol=1e-5)


def test_model_map_v_to_l_is_text_queries_over_vision_keys() -> None:
    """In the full model the first V -> L map is softmax(Q(LN(Z^0_L)) K(LN(Z^0_V))^T / sqrt(d/K))
    (without the future mask, which :func:`test_the_causal_option_really_hides_the_future`
    covers)."""
    model = _model(heads=1, causal=False).eval()
    seqs = random_sequences(DIMS, {"text": [3, 5], "vision": [7, 2], "audio": [4, 4]})
    batch = pad_batch(seqs, None)
    with torch.no_grad():
        out = model(batch, return_attention=True)
        enc = model.crossmodal["vision_to_text"]
        layer = enc.layers[0]

        def low(m: str) -> torch.Tensor:
            x = batch.inputs[m] * batch.masks[m][..., None]
            z = model.proj[m](x.transpose(1, 2)).transpose(1, 2) * batch.masks[m][..., None]
            z = math.sqrt(8) * z + sinusoidal_positions(z.shape[1], 8, z.device, z.dtype)
            return layer.norm_attn(z)

        w, b = layer.attn.in_proj.weight, layer.attn.in_proj.bias
        q = low("text") @ w[:8].T + b[:8]
        k = low("vision") @ w[8:16].T + b[8:16]
    amap = out.attention["crossmodal/0/text/vision"]
    assert amap.shape == (2, 1, 5, 7)  # [B, K, T_text, T_vision]
    for i in range(2):
        lt, lv = int(batch.masks["text"][i].sum()), int(batch.masks["vision"][i].sum())
        want = torch.softmax(q[i, :lt] @ k[i, :lv].T / math.sqrt(8), dim=-1)
        assert _close(amap[i, 0, :lt, :lv], want)
        assert torch.all(amap[i, 0, :, lv:] == 0) and torch.all(amap[i, 0, lt:] == 0)
    expected = {
        f"crossmodal/{i}/{t}/{s}"
        for t in MODALITIES
        for s in MODALITIES
        if s != t
        for i in range(2)
    }
    expected |= {f"memory/0/{t}" for t in MODALITIES}
    assert set(out.attention) == expected
    assert out.attention["memory/0/audio"].shape == (2, 1, 4, 4)


def test_encoder_layer_matches_the_pre_ln_block_by_hand() -> None:
    """Ẑ = Z + CM(LN Z, LN S);  Z' = Ẑ + FC2(ReLU(FC1(LN Ẑ))) (eval mode, no dropout)."""
    torch.manual_seed(1)
    layer = EncoderLayer(4, 2, 0.0, 0.0, 0.0).eval()
    z, s = torch.randn(2, 3, 4), torch.randn(2, 5, 4)
    qm, km = torch.ones(2, 3, dtype=torch.bool), torch.ones(2, 5, dtype=torch.bool)
    with torch.no_grad():
        got, _ = layer(z, qm, s, km, None, False)
        ln = layer.norm_attn
        zh = z + layer.attn(ln(z), ln(s), qm, km)[0]
        want = zh + layer.fc2(F.relu(layer.fc1(layer.norm_ffn(zh))))
    assert _close(got, want)


def test_an_empty_source_gives_no_attention_sublayer() -> None:
    """A sample whose source has no real step: Ẑ = Z, then the FFN (no bias, no NaN)."""
    torch.manual_seed(2)
    layer = EncoderLayer(4, 2, 0.0, 0.0, 0.0).eval()
    z, s = torch.randn(2, 3, 4), torch.randn(2, 5, 4)
    qm = torch.ones(2, 3, dtype=torch.bool)
    km = torch.tensor([[True] * 5, [False] * 5])
    for need in (False, True):
        with torch.no_grad():
            got, maps = layer(z, qm, s, km, None, need)
            want = z[1] + layer.fc2(F.relu(layer.fc1(layer.norm_ffn(z[1]))))
        assert torch.isfinite(got).all()
        assert _close(got[1], want)
        if need:
            assert torch.all(maps[1] == 0)


# ---------------------------------------------------------------- pooling
def test_last_real_step_on_right_padding_equals_last_step_on_left_padding() -> None:
    """The code's h[-1] is right only on left-padded data; ours reads the mask instead."""
    torch.manual_seed(3)
    lengths = [4, 1, 0, 6]
    seqs = [torch.randn(n, 5) for n in lengths]
    right = torch.zeros(4, 6, 5)
    left = torch.zeros(4, 6, 5)
    mask = torch.zeros(4, 6, dtype=torch.bool)
    for i, s in enumerate(seqs):
        right[i, : len(s)] = s
        mask[i, : len(s)] = True
        if len(s):
            left[i, -len(s) :] = s
    assert torch.equal(last_real_step(right + 9.0 * ~mask[..., None], mask), left[:, -1])


def test_memory_pooled_in_a_batch_equals_the_last_step_of_each_sample_alone() -> None:
    """MulT's pooling ``h[-1]`` on an unpadded sample = our last-real-step pooling in a batch."""
    torch.manual_seed(4)
    enc = MulTEncoder(8, 2, 2, 0.1, 0.1, 0.1, 0.1, causal=False).eval()
    lengths = [5, 2, 7]
    seqs = [torch.randn(n, 8) for n in lengths]
    x = torch.full((3, 9, 8), -3.0)
    mask = torch.zeros(3, 9, dtype=torch.bool)
    for i, s in enumerate(seqs):
        x[i, : len(s)] = s
        mask[i, : len(s)] = True
    with torch.no_grad():
        pooled = last_real_step(enc(x, mask)[0], mask)
        for i, s in enumerate(seqs):
            alone = enc(s[None], torch.ones(1, len(s), dtype=torch.bool))[0]
            assert _close(pooled[i], alone[0, -1])


# ---------------------------------------------------------------- masks
@pytest.mark.parametrize(
    "overrides",
    [{}, {"pool": "mean"}, {"causal": True}, {"ablations": "only-audio"}],
    ids=["last", "mean", "causal", "only-audio"],
)
def test_padding_to_a_longer_batch_changes_nothing(overrides: dict) -> None:
    """Empty sequences included (sample 1 has no text, 2 no vision, 3 no audio)."""
    model = _model(**overrides).eval()
    seqs = random_sequences(DIMS, LENGTHS)
    y = torch.randn(4, 1)
    with torch.no_grad():
        a = model(pad_batch(seqs, y), return_attention=True)
        b = model(pad_batch(seqs, y, extra=7, garbage=5.0), return_attention=True)
        c = model(pad_batch(seqs, y, extra=3, garbage=-2.0))  # fused path
    assert torch.isfinite(a.pred).all()
    assert _close(a.pred, b.pred) and _close(a.pred, c.pred)
    assert _close(a.loss, b.loss) and _close(a.loss, c.loss)
    for t, h in a.reps["memory"].items():
        assert _close(h, b.reps["memory"][t]) and _close(h, c.reps["memory"][t])
    ba, bb = pad_batch(seqs, y), pad_batch(seqs, y, extra=7)
    for name, amap in a.attention.items():
        parts = name.split("/")  # crossmodal/<layer>/<target>/<source>, memory/<layer>/<target>
        t, s = parts[2], parts[-1]
        for i in range(4):
            qa, qb = ba.masks[t][i], bb.masks[t][i]
            ka, kb = ba.masks[s][i], bb.masks[s][i]
            assert _close(amap[i][:, qa][:, :, ka], b.attention[name][i][:, qb][:, :, kb]), name
            assert torch.all(b.attention[name][i][:, :, ~kb] == 0)


def test_an_empty_target_pools_to_zeros_and_backpropagates_without_nan() -> None:
    model = _model()
    seqs = random_sequences(DIMS, LENGTHS)
    out = model(pad_batch(seqs, torch.randn(4, 1)))
    out.loss.backward()
    assert torch.all(out.reps["memory"]["text"][1] == 0)  # sample 1 has no text
    assert torch.all(out.reps["memory"]["vision"][2] == 0)
    assert torch.all(out.reps["memory"]["audio"][3] == 0)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert all(p.grad is not None for p in model.parameters())


def test_future_mask_is_triangular_for_self_attention_and_proportional_across_modalities() -> None:
    qm = torch.tensor([[True] * 4 + [False] * 2])
    self_mask = future_mask(qm, qm)[0, 0]
    assert torch.equal(self_mask[:4, :4], torch.tril(torch.ones(4, 4, dtype=torch.bool)))
    assert not self_mask[:, 4:].any()
    km = torch.tensor([[True] * 8 + [False]])  # 8 real source steps for 4 target steps
    cross = future_mask(qm, km)[0, 0]
    for i in range(4):
        assert cross[i].nonzero().flatten().tolist() == list(range(2 * i + 1))


@pytest.mark.parametrize("source_len", [None, 9], ids=["self", "crossmodal"])
def test_the_causal_option_really_hides_the_future(source_len: int | None) -> None:
    torch.manual_seed(5)
    enc = MulTEncoder(8, 2, 2, 0.0, 0.0, 0.0, 0.0, causal=True).eval()
    free = MulTEncoder(8, 2, 2, 0.0, 0.0, 0.0, 0.0, causal=False).eval()
    free.load_state_dict(enc.state_dict())
    x, mask = torch.randn(1, 6, 8), torch.ones(1, 6, dtype=torch.bool)
    s = None if source_len is None else torch.randn(1, source_len, 8)
    smask = None if s is None else torch.ones(1, source_len, dtype=torch.bool)
    lk = 6 if s is None else source_len
    i = 2  # query step; keys j with j * 6 <= i * lk are its past
    future = [j for j in range(lk) if j * 6 > i * lk]
    past = [j for j in range(lk) if j * 6 <= i * lk]
    base = enc(x, mask, s, smask)[0]
    if s is None:
        x2 = x.clone()
        x2[0, future] += 5 * torch.randn(len(future), 8)
        moved, moved_free = enc(x2, mask)[0], free(x2, mask)[0]
    else:
        s2 = s.clone()
        s2[0, future] += 5 * torch.randn(len(future), 8)
        moved, moved_free = enc(x, mask, s2, smask)[0], free(x, mask, s2, smask)[0]
    assert _close(base[0, : i + 1], moved[0, : i + 1])  # steps <= i cannot see the change
    assert not _close(free(x, mask, s, smask)[0][0, : i + 1], moved_free[0, : i + 1])
    # and the past does reach step i
    if s is None:
        x3 = x.clone()
        x3[0, past[-1]] += 5 * torch.randn(8)
        assert not _close(base[0, i], enc(x3, mask)[0][0, i])
    else:
        s3 = s.clone()
        s3[0, past[-1]] += 5 * torch.randn(8)
        assert not _close(base[0, i], enc(x, mask, s3, smask)[0][0, i])


def test_explicit_maps_and_the_fused_path_agree_in_train_mode_without_dropout() -> None:
    zero = dict.fromkeys(DROPOUTS, 0.0)
    model = _model(causal=True, **zero).train()
    batch = pad_batch(random_sequences(DIMS, LENGTHS), torch.randn(4, 1))
    a = model(batch, return_attention=True)
    b = model(batch)
    assert _close(a.pred, b.pred)


def test_attention_dropout_is_active_in_training_only() -> None:
    rates = {k: 0.5 if k.startswith("attn_") else 0.0 for k in DROPOUTS}
    model = _model(**rates)
    batch = pad_batch(random_sequences(DIMS, LENGTHS), None)
    torch.manual_seed(0)
    a = model.train()(batch).pred
    b = model(batch).pred
    assert not _close(a, b)
    model.eval()
    assert _close(model(batch).pred, model(batch).pred)


def test_chunked_dropout_attention_backward_reuses_the_forward_dropout_mask() -> None:
    """Blocks of 2 queries under checkpointing: analytic gradients (rebuilt maps and masks)
    match finite differences of the same draws; the mean over draws is the undropped output."""
    torch.manual_seed(6)
    q = torch.randn(2, 2, 5, 3, dtype=torch.float64, requires_grad=True)
    k = torch.randn(2, 2, 4, 3, dtype=torch.float64, requires_grad=True)
    v = torch.randn(2, 2, 4, 3, dtype=torch.float64, requires_grad=True)
    allowed = torch.tensor([[True] * 4, [True, True, False, False]])[:, None, None, :]

    def f(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(0)
        return chunked_dropout_attention(q, k, v, allowed, 0.3, budget=2 * 2 * 4 * 2)

    assert torch.autograd.gradcheck(f, (q, k, v))
    plain = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    assert not torch.allclose(f(q, k, v), plain)
    n = 4000
    rep = [t.detach().repeat(n, 1, 1, 1) for t in (q, k, v)]
    draws = chunked_dropout_attention(*rep, allowed.repeat(n, 1, 1, 1), 0.3, budget=64)
    mean = draws.view(n, 2, 2, 5, 3).mean(dim=0)
    assert torch.allclose(mean, plain.detach(), atol=0.08)


# ---------------------------------------------------------------- execution: groups, saved maps
def _grads(model: torch.nn.Module, batch: Batch, seed: int = 0) -> tuple[torch.Tensor, list]:
    model.zero_grad()
    torch.manual_seed(seed)
    out = model(batch)
    out.loss.backward()
    return out.pred.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]


@pytest.mark.parametrize("causal", [False, True])
def test_length_groups_change_no_prediction_or_gradient(causal: bool) -> None:
    """Attention on length groups (one sample per group, a few, or the padded batch as one)
    gives the padded batch's predictions and gradients: groups trim only padded queries and
    keys, which the masks already ignore. Lengths include an empty source and full groups."""
    lengths = {"text": [3, 0, 5, 1, 5], "vision": [8, 4, 0, 2, 8], "audio": [6, 6, 1, 0, 6]}
    batch = pad_batch(random_sequences(DIMS, lengths), torch.randn(5, 1), extra=2)
    zero = dict.fromkeys(DROPOUTS, 0.0)
    ref = None
    for budget in (0, 1, 2 * 8 * 8, 1 << 20):
        model = _model(causal=causal, attn_group_budget=budget, **zero).train()
        pred, grads = _grads(model, batch)
        if ref is None:
            ref = (pred, grads)
            continue
        assert _close(pred, ref[0])
        assert all(_close(a, b) for a, b in zip(grads, ref[1], strict=True))


def test_explicit_reference_path_gives_the_same_predictions() -> None:
    """``explicit_attention()`` (the benchmarks' baseline: plain SDPA, no groups) and the default
    path agree in evaluation."""
    from mea_cli.models.layers.attention import explicit_attention

    model = _model().eval()
    batch = pad_batch(random_sequences(DIMS, LENGTHS), None, extra=3)
    with torch.no_grad():
        fast = model(batch).pred
        with explicit_attention():
            ref = model(batch).pred
    assert _close(fast, ref)


def test_bf16_autocast_stays_within_tolerance_of_fp32() -> None:
    """bf16, the CUDA trainer's precision, on the grouped path: within 0.05 of fp32."""
    assert_bf16_close(_model(), pad_batch(random_sequences(DIMS, LENGTHS), None, extra=3))


def test_attention_plan_puts_every_sample_in_one_group_under_the_budget() -> None:
    q = torch.tensor([[True] * 6, [True] * 2 + [False] * 4, [True] * 6])
    k = torch.tensor([[True] * 3, [True] * 3, [True] + [False] * 2])
    plan = attention_plan(q, k, heads=2, budget=2 * 6 * 3 * 2)
    members = sorted(i for g in plan.groups for i in g.index.tolist())
    assert members == [0, 1, 2]
    for g in plan.groups:
        assert len(g.index) * 2 * g.lengths["q"] * g.lengths["k"] <= 2 * 6 * 3 * 2
    lq, lk = q.sum(dim=1).tolist(), k.sum(dim=1).tolist()
    for g in plan.groups:  # "full" (no mask needed) exactly when every member fills the group
        exact = all(lq[i] == g.lengths["q"] and lk[i] == g.lengths["k"] for i in g.index.tolist())
        assert g.full == exact
    assert {g.full for g in plan.groups} == {True, False}


def test_dropped_attention_without_a_mask_equals_an_all_true_mask() -> None:
    q, k, v = torch.randn(2, 2, 5, 3), torch.randn(2, 2, 4, 3), torch.randn(2, 2, 4, 3)
    torch.manual_seed(1)
    a = _dropped_attention(q, k, v, None, 0.3)
    torch.manual_seed(1)
    b = _dropped_attention(q, k, v, torch.ones(2, 1, 1, 4, dtype=torch.bool), 0.3)
    assert torch.equal(a, b)


def test_own_softmax_attention_matches_sdpa_and_zeroes_rows_without_keys() -> None:
    """The CPU training path without dropout (thin-left products) against SDPA's math, values
    and gradients; a query row that may see no key gives 0, not a uniform average."""
    torch.manual_seed(2)
    q, k, v = (torch.randn(2, 2, n, 3, dtype=torch.float64, requires_grad=True) for n in (5, 4, 4))
    allowed = torch.ones(2, 1, 5, 4, dtype=torch.bool)
    allowed[1, :, :, 2:] = False
    allowed[0, :, 3] = False  # query 3 of sample 0 may see nothing
    ours = _softmax_attention(q, k, v, allowed)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed | ~allowed.any(-1, True))
    ref = ref * allowed.any(-1, True)
    assert torch.allclose(ours, ref, atol=1e-10)
    assert torch.equal(ours[0, :, 3], torch.zeros(2, 3, dtype=torch.float64))
    assert torch.autograd.gradcheck(lambda *t: _softmax_attention(*t, allowed), (q, k, v))
    assert torch.autograd.gradcheck(lambda *t: _softmax_attention(*t, None), (q, k, v))


def test_training_path_matches_the_explicit_reference_without_dropout() -> None:
    """CPU training forms its own maps; with the dropouts at 0 its predictions and gradients
    are those of plain SDPA (``explicit_attention()``), causal mask included."""
    from mea_cli.models.layers.attention import explicit_attention

    zero = dict.fromkeys(DROPOUTS, 0.0)
    batch = pad_batch(random_sequences(DIMS, LENGTHS), torch.randn(4, 1), extra=2)
    model = _model(causal=True, **zero).train()
    ours = _grads(model, batch)
    with explicit_attention():
        ref = _grads(model, batch)
    assert _close(ours[0], ref[0])
    assert all(_close(a, b) for a, b in zip(ours[1], ref[1], strict=True))


def test_saved_attention_bytes_by_hand() -> None:
    """heads x layers x sum over samples of T_target x T_source, times 12 bytes for every
    transformer with attention dropout and 4 for the others; zero in evaluation and without
    gradients."""
    rates = dict.fromkeys(DROPOUTS, 0.0) | {"attn_dropout": 0.1, "attn_dropout_audio": 0.2}
    model = _model(**rates).train()  # text sources and all memories (attn_dropout), audio sources
    batch = pad_batch(random_sequences(DIMS, LENGTHS), None)
    lt, lv, la = (np.array(LENGTHS[m]) for m in ("text", "vision", "audio"))
    dropped = 2 * ((lv * lt).sum() + (la * lt).sum())  # text -> vision, text -> audio, 2 layers
    dropped += 2 * ((lt * la).sum() + (lv * la).sum())  # audio -> text, audio -> vision
    dropped += 1 * ((lt**2).sum() + (lv**2).sum() + (la**2).sum())  # memories, 1 layer
    plain = 2 * ((lt * lv).sum() + (la * lv).sum())  # from vision: no dropout, weights only
    assert model.saved_attention_bytes(batch.masks) == 2 * (12 * dropped + 4 * plain)
    with torch.no_grad():
        assert model.saved_attention_bytes(batch.masks) == 0
    assert model.eval().saved_attention_bytes(batch.masks) == 0


def test_recomputed_and_saved_dropout_maps_give_the_same_step(monkeypatch) -> None:
    """Over the ``attn_saved_mib`` budget the CPU dropout attention is checkpointed
    (recomputed in the backward pass, with the forward's dropout mask); under it autograd keeps
    the maps. Same seed: the same predictions and gradients either way."""
    import mea_cli.models.mult.crossmodal as crossmodal

    calls = {"chunked": 0}
    chunked = crossmodal.chunked_dropout_attention

    def counting(*args, **kwargs):
        calls["chunked"] += 1
        return chunked(*args, **kwargs)

    monkeypatch.setattr(crossmodal, "chunked_dropout_attention", counting)
    rates = {k: 0.3 if k.startswith("attn_") else 0.0 for k in DROPOUTS}
    batch = pad_batch(random_sequences(DIMS, LENGTHS), torch.randn(4, 1))
    saved = _grads(_model(attn_saved_mib=1, **rates).train(), batch, seed=3)
    assert calls["chunked"] == 0
    recomputed = _grads(_model(attn_saved_mib=0, **rates).train(), batch, seed=3)
    assert calls["chunked"] > 0
    assert _close(saved[0], recomputed[0])
    assert all(_close(a, b) for a, b in zip(saved[1], recomputed[1], strict=True))


# ---------------------------------------------------------------- the public code's wiring
CODE_NAMES = {"la": ("audio", "text"), "lv": ("vision", "text"), "al": ("text", "audio"),
              "av": ("vision", "audio"), "vl": ("text", "vision"), "va": ("audio", "vision")}  # fmt: skip
"""The public code's ``trans_<target>_with_<source>`` names (``get_network(self_type=...)``)
as (source, target)."""


def test_attention_dropout_is_keyed_by_the_source_modality_as_in_the_public_code() -> None:
    """``get_network``: 'la', 'va' (from audio) take ``attn_dropout_a``; 'lv', 'av' (from vision)
    ``attn_dropout_v``; 'al', 'vl' (from text) and the three memories ``attn_dropout``. Unequal
    rates (MMSA's MOSI row is 0.3 / 0.2 / 0) show which transformer gets which."""
    rates = {"attn_dropout": 0.3, "attn_dropout_audio": 0.2, "attn_dropout_vision": 0.05}
    model = _model(**rates)
    code_rate = {"l": 0.3, "a": 0.2, "v": 0.05}  # by the *second* letter: the source
    for name, (source, target) in CODE_NAMES.items():
        enc = model.crossmodal[f"{source}_to_{target}"]
        assert {layer.attn.dropout for layer in enc.layers} == {code_rate[name[1]]}, name
    for t in MODALITIES:
        assert {layer.attn.dropout for layer in model.memory[t].layers} == {0.3}
    assert model.block_settings()["crossmodal audio -> text"].startswith("attention dropout 0.2")


def test_memory_concatenates_the_streams_in_the_public_codes_order() -> None:
    """``h_ls = cat([l_with_a, l_with_v])``, ``h_as = cat([a_with_l, a_with_v])``,
    ``h_vs = cat([v_with_l, v_with_a])``: the memory's first d channels are the first stream."""
    model = _model().eval()
    seen: dict[str, torch.Tensor] = {}
    hooks = [
        enc.register_forward_hook(lambda _m, _a, out, n=n: seen.__setitem__(n, out[0]))
        for n, enc in model.crossmodal.items()
    ]
    hooks += [
        enc.register_forward_pre_hook(lambda _m, args, t=t: seen.__setitem__(f"memory/{t}", args[0]))
        for t, enc in model.memory.items()
    ]
    with torch.no_grad():
        model(pad_batch(random_sequences(DIMS, LENGTHS), None))
    for h in hooks:
        h.remove()
    d = SMALL["d"]
    for t, (first, second) in {"text": ("audio", "vision"), "audio": ("text", "vision"),
                               "vision": ("text", "audio")}.items():  # fmt: skip
        assert torch.equal(seen[f"memory/{t}"][..., :d], seen[f"{first}_to_{t}"])
        assert torch.equal(seen[f"memory/{t}"][..., d:], seen[f"{second}_to_{t}"])


def test_the_future_mask_is_on_by_default_and_both_settings_run() -> None:
    """The public code's default (``--attn_mask``, MMSA's ``attn_mask: true``): every transformer
    causal; ``causal=false`` builds none (both settings are covered by the padding, length-group
    and reference-path tests)."""
    causal, free = _model(), _model(causal=False)
    assert all(e.causal for e in [*causal.crossmodal.values(), *causal.memory.values()])
    assert not any(e.causal for e in [*free.crossmodal.values(), *free.memory.values()])
    batch = pad_batch(random_sequences(DIMS, LENGTHS), None)
    with torch.no_grad():
        a, b = causal.eval()(batch).pred, free.eval()(batch).pred
    assert not torch.allclose(a, b)


# ---------------------------------------------------------------- presets and config
def test_presets_are_the_papers_table_5() -> None:
    """Tsai et al. (2019), Table 5, columns CMU-MOSEI / CMU-MOSI / IEMOCAP: the model rows in
    the config presets, the training rows in the training presets (one home each)."""
    want = {
        # batch, lr, d, blocks, heads, kernels L/V/A, text emb. drop, CM attn drop, out drop, clip, epochs
        "mosei": (16, 1e-3, 40, 4, 8, (3, 3, 3), 0.3, 0.1, 0.1, 1.0, 20),
        "mosi": (128, 1e-3, 40, 4, 10, (3, 3, 3), 0.2, 0.2, 0.1, 0.8, 100),
        "iemocap": (32, 2e-3, 40, 4, 10, (3, 3, 5), 0.3, 0.25, 0.1, 0.8, 30),
    }
    from mea_cli.train.presets import training_preset

    for ds, (bs, lr, d, blocks, heads, ks, tdrop, adrop, odrop, clip, ep) in want.items():
        cfg = config_for("mult", ds)
        assert (cfg.d, cfg.layers, cfg.heads, cfg.kernel_sizes) == (d, blocks, heads, ks)
        assert cfg.text_dropout == cfg.embed_dropout == tdrop and cfg.out_dropout == odrop
        assert cfg.attn_dropout == cfg.attn_dropout_vision == cfg.attn_dropout_audio == adrop
        assert cfg.memory_layers == max(blocks, 3) and cfg.task_loss == "l1"
        assert cfg.causal and cfg.pool == "last"  # the public code's --attn_mask default
        assert not {"batch_size", "epochs", "lr", "grad_clip"} & set(cfg.to_dict())
        train = training_preset("mult", ds)  # what mea train --model mult uses
        s = train.settings
        assert (s.batch_size, s.epochs, s.lr, s.grad_clip) == (bs, ep, lr, clip)
        assert all("MulT" in train.sources[k] and "Table 5" in train.sources[k]
                   for k in ("batch_size", "epochs", "lr", "grad_clip"))  # fmt: skip
    assert "Table 5" in MulTConfig.PRESET_SOURCE
    assert config_for("mult", "iemocap").task == "binary-multilabel"
    assert config_for("mult", "iemocap").num_labels == 4


def test_mmsa_mult_parameter_count_is_reproduced() -> None:
    """MMSA 2.2.1's mult on mosi: d 50, 10 heads, 4 levels, kernels 5; text 768 / audio 5 / vision 20."""
    cfg = config_for(
        "mult", "mosi", input_dims={"text": 768, "vision": 20, "audio": 5},
        d="50", heads="10", layers="4", memory_layers="4", kernel_sizes="5/5/5",
    )  # fmt: skip
    assert create_model("mult", cfg).num_parameters() == 2_571_551


def test_config_lists_every_problem_and_round_trips() -> None:
    with pytest.raises(MeaError) as err:
        config_for(
            "mult", "mosi", d="30", heads="4", kernel_sizes="2/3/3", pool="max", attn_dropout="1.5"
        )
    msg = str(err.value)
    for part in ("d=30", "kernel_sizes", "pool", "attn_dropout must lie"):
        assert part in msg, part
    with pytest.raises(MeaError, match="invalid MulT configuration: unknown field mu"):
        config_for("mult", "mosi", mu="0.2")
    with pytest.raises(MeaError, match="no preset for dataset 'urfunny'"):
        config_for("mult", "urfunny")
    cfg = config_for(
        "mult", "iemocap", input_dims=DIMS, causal="true", pool="mean", ablations="only-vision"
    )
    back = config_from_dict("mult", json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg


def test_rebuilt_from_config_dict_gives_the_same_outputs() -> None:
    model = _model().eval()
    again = create_model("mult", model.cfg.to_dict())
    again.load_state_dict(model.state_dict())
    batch = pad_batch(random_sequences(DIMS, LENGTHS), None)
    with torch.no_grad():
        assert torch.equal(model(batch).pred, again.eval()(batch).pred)


# ---------------------------------------------------------------- switches
@pytest.mark.parametrize("switch", list(SWITCHES))
def test_each_crossmodal_only_switch_keeps_one_target_and_removes_the_rest(switch: str) -> None:
    full, cut = _model(), _model(ablations=switch)
    target = switch.removeprefix("only-")
    assert set(cut.memory) == {target}
    assert set(cut.crossmodal) == {f"{s}_to_{target}" for s in MODALITIES if s != target}
    assert cut.num_parameters() < full.num_parameters()
    assert set(cut.component_parameters()) < set(full.component_parameters())
    out = cut(pad_batch(random_sequences(DIMS, LENGTHS), torch.randn(4, 1)))
    assert set(out.reps["memory"]) == {target} and out.pred.shape == (4, 1)
    assert "mult" in list_models()
    with pytest.raises(MeaError, match="cannot be combined"):
        _model(ablations=f"{switch},only-text" if switch != "only-text" else "only-text,only-audio")
    with pytest.raises(MeaError, match=r"valid switches: only-text, only-vision, only-audio\)"):
        _model(ablations="psa")


# ---------------------------------------------------------------- task heads and training
def test_iemocap_gives_two_logits_per_emotion_and_per_emotion_cross_entropy() -> None:
    model = _model("iemocap").eval()
    labels = torch.tensor(
        [[1, 0, 0, 1], [0, 1, 1, 0], [1, 1, 0, 0], [0, 0, 1, 1]], dtype=torch.float32
    )
    out = model(pad_batch(random_sequences(DIMS, LENGTHS), labels))
    assert out.pred.shape == (4, 4, 2)
    want = F.cross_entropy(out.pred.reshape(-1, 2), labels.reshape(-1).long())
    assert _close(out.loss, want) and set(out.losses) == {"task"}


def test_regression_loss_is_l1() -> None:
    model = _model().eval()
    y = torch.randn(4, 1)
    out = model(pad_batch(random_sequences(DIMS, LENGTHS), y))
    assert _close(out.loss, (out.pred - y).abs().mean())


def test_batch_that_does_not_fit_is_a_user_error() -> None:
    model = _model()
    batch = pad_batch(random_sequences({**DIMS, "text": 9}, LENGTHS), None)
    with pytest.raises(MeaError, match="modality text has 9 features"):
        model(batch)
    with pytest.raises(MeaError, match="lacks modality audio"):
        model(Batch({m: batch.inputs[m] for m in ("text", "vision")}, batch.masks))


def test_overfits_32_synthetic_samples(tmp_path: Path) -> None:
    from mea_cli.data.synth import write_synthetic

    path = tmp_path / "m32.h5"
    write_synthetic(path, "mosi", n=32, seed=1, max_seconds=2.0)
    batch, dims, _, _ = store_batch(path, 32, crop=24)
    torch.manual_seed(0)
    zero = dict.fromkeys(DROPOUTS, "0")
    model = create_model(
        "mult",
        config_for(
            "mult",
            "mosi",
            input_dims=dims,
            d="16",
            heads="2",
            layers="2",
            memory_layers="1",
            **zero,
        ),
    )
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first, step = None, 0
    # stops once the loss is under a tenth of its start (step 13 of 150 here; the training
    # labels' mean would leave it near the labels' variance, about its start)
    for step in range(150):  # noqa: B007 - reported below
        out = model(batch)
        loss = float(out.loss.detach())
        first = loss if first is None else first
        if loss < 0.1 * first:
            break
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    assert loss < 0.1 * first, f"loss {first:.3f} -> {loss:.3f} after {step} steps"


def test_cli_info_prints_the_mult_size() -> None:
    r = CliRunner().invoke(app, ["info", "--model", "mult", "--dataset", "mosi", "--json"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    assert got["model"] == "mult" and got["parameters"] == sum(got["components"].values())
    assert got["parameters"] == create_model("mult", config_for("mult", "mosi")).num_parameters()
    assert got["config"]["heads"] == 10
    r = CliRunner().invoke(app, ["info", "--model", "mult", "--drop", "only-text"])
    assert r.exit_code == 0, r.output
    assert "crossmodal vision -> text" in r.stdout and "memory of audio" not in r.stdout


def _mea(cwd: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    """``mea ARGS`` as a user runs it (a subprocess, tests/warm.py), asserting its exit code."""
    r = warm.run(list(args), cwd=cwd, env={**os.environ, "COLUMNS": "200"})
    assert r.returncode == code, (args, r.stdout[-3000:], r.stderr[-3000:])
    return r


@pytest.fixture(scope="module")
def synth_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``mea synth --like mosi`` store: synthetic data shaped like MOSI, not MOSI."""
    store = tmp_path_factory.mktemp("mult-e2e") / "synth.h5"
    _mea(store.parent, "synth", "--like", "mosi", "--n", "60", "--seed", "2",
         "--max-seconds", "2", "--out", str(store))  # fmt: skip
    return store


@pytest.mark.slow
def test_mea_train_model_mult_end_to_end(synth_store: Path, tmp_path: Path) -> None:
    def mea(*args: str) -> subprocess.CompletedProcess[str]:
        return _mea(tmp_path, *args)

    store = synth_store
    mea("train", str(store), "--dataset", "mosi", "--model", "mult", "--epochs", "2", "--name", "m",
        "--set", "d=8", "--set", "heads=2", "--set", "layers=1", "--set", "memory_layers=1",
        "--set", "train.batch_size=16")  # fmt: skip
    run = tmp_path / "runs" / "m"
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "mult" and config["model_config"]["d"] == 8
    assert config["train"]["lr"] == 1e-3 and config["train"]["batch_size"] == 16
    assert config["train_sources"]["lr"] == "MulT (Tsai et al., ACL 2019) Table 5"
    metrics = json.loads((run / "metrics.json").read_text())
    assert np.isfinite(metrics["test"]["mae"])
    out = json.loads(mea("eval", str(run / "ckpt.pt"), "--json").stdout)
    assert out["metrics"]["mae"] == pytest.approx(metrics["test"]["mae"], abs=1e-6)
    # --paper says which future-mask setting the run used, and the other deviations
    table = mea("eval", str(run / "ckpt.pt"), "--paper").stdout
    assert "MulT: future mask on in every transformer, as the public code" in table
    assert "MulT: pre-LN residuals as the public code" in table and "future mask off" not in table


@pytest.mark.slow
def test_mea_compare_mea_and_mult_end_to_end(synth_store: Path, tmp_path: Path) -> None:
    """``mea compare --models mea,mult --seeds 2`` from the command line: the MulT rows' paired
    t-test p-values are scipy's on the per-seed metrics.json files; then MulT refuses MEA's
    switches and the WAL picture in one line, and draws its own self-attention maps. (Tables,
    files, reuse and resume are tests/test_compare.py's, with a test model.)"""
    tiny = {
        "mea": dict(d=8, heads=2, d_h=8, psa_layers=1, hca_layers=1),
        "mult": dict(d=8, heads=2, layers=1, memory_layers=1),
    }
    sets = [f"--set={m}.{k}={v}" for m, kv in tiny.items() for k, v in kv.items()]
    runs = tmp_path / "runs"
    _mea(tmp_path, "compare", str(synth_store), "--dataset", "mosi", "--models", "mea,mult",
         "--seeds", "2", "--epochs", "1", "--set", "train.batch_size=16", *sets,
         "--runs-dir", str(runs), "--device", "cpu", "--format", "csv")  # fmt: skip
    out = runs / "compare-mosi-synth"
    seeds = (1111, 1112)
    per_seed = {
        m: [json.loads((out / m / str(s) / "metrics.json").read_text())["test"] for s in seeds]
        for m in ("mea", "mult")
    }
    cfg = json.loads((out / "mult" / "1111" / "config.json").read_text())
    assert cfg["model_config"]["d"] == 8 and cfg["train"]["lr"] == 1e-3  # MulT's Table 5 lr
    rows = [r for r in csv.DictReader(io.StringIO((out / "compare.csv").read_text()))]
    mult_rows = [r for r in rows if r["model"] == "mult"]
    assert {r["metric"] for r in mult_rows} >= {"mae", "corr", "acc7", "acc2_has0", "f1_has0"}
    checked = 0
    for r in mult_rows:
        a = [m[r["metric"]] for m in per_seed["mea"]]
        b = [m[r["metric"]] for m in per_seed["mult"]]
        assert float(r["mean"]) == pytest.approx(np.mean(b), rel=1e-5), r["metric"]
        want = stats.ttest_rel(b, a).pvalue
        d = np.subtract(b, a)
        if np.isfinite(want) and not np.allclose(d, d[0], rtol=1e-9, atol=1e-12):
            assert float(r["p_value"]) == pytest.approx(want, rel=1e-5), r["metric"]
            assert r["significant"] == ("1" if want <= 0.05 else "0"), r["metric"]
            checked += 1
        else:
            assert r["p_value"] == "", r["metric"]
    assert checked, "no metric gave a defined p-value to check"
    # the same comparison again with --paper (reused runs): each model's deviations under it
    md = _mea(tmp_path, "compare", str(synth_store), "--dataset", "mosi", "--models", "mea,mult",
              "--seeds", "2", "--epochs", "1", "--set", "train.batch_size=16", *sets,
              "--runs-dir", str(runs), "--device", "cpu", "--format", "md", "--paper").stdout  # fmt: skip
    assert "Deviations from the papers" in md and "- MEA: Eq. 2 mixes two logits" in md
    assert "- MulT: future mask on in every transformer" in md
    assert "- MulT: future mask on" in (out / "compare.md").read_text()

    run = out / "mult" / "1111"
    err = _mea(tmp_path, "ablate", "--run", str(run), "--drop", "psa", code=2).stderr.strip()
    assert "model 'mult' has no ablation switch 'psa'" in err, err
    assert "only-text, only-vision, only-audio" in err and len(err.splitlines()) == 1, err
    err = _mea(tmp_path, "viz", str(run), "--what", "wal", "--out", str(tmp_path / "v"),
               code=2).stderr.strip()  # fmt: skip
    assert "model 'mult' provides no modality weights" in err and len(err.splitlines()) == 1, err
    _mea(tmp_path, "viz", str(run), "--what", "attention", "--out", str(tmp_path / "v"))
    assert (tmp_path / "v" / "attention.png").read_bytes()[:4] == b"\x89PNG"
