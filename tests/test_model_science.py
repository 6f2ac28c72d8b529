"""Model science that the other model tests cannot see: where the WAL weights act (Eq. 5-6),
Eq. 7-9 and Eq. 10's order by hand in numpy, Eq. 11-12 weight sharing, the Table V fusion
alternatives and MRU switches through what the model builds and computes.

Each test here fails under a specific wrong model (order of the MRUs swapped, ``add`` fusing by
a product, the ``mru-mixed`` / ``mru-coarse`` switches swapped, a per-modality agnostic encoder,
the last WAL's psi dropped); ``docs/model.md`` lists which test catches which.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from model_helpers import pad_batch, random_sequences

from mea_cli import MODALITIES
from mea_cli.models import config_for, create_model
from mea_cli.models.mea.hca import MRU, HCALayer
from mea_cli.models.mea.wal import carried_weights

DIMS = {"text": 5, "vision": 4, "audio": 3}
TINY = dict(d=8, heads=2, d_h=8, psa_layers=3, hca_layers=1, dropout=0.0, attn_dropout=0.0)
LENGTHS = {"text": [3, 0, 5, 2], "vision": [6, 4, 0, 2], "audio": [4, 5, 1, 0]}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _model(**overrides: object) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = config_for("mea", "mosi", input_dims=DIMS, **{**TINY, **overrides})
    return create_model("mea", cfg).eval()


def _batch(seed: int = 0):
    return pad_batch(random_sequences(DIMS, LENGTHS, seed=seed), torch.randn(4, 1), extra=2)


def _sharpen_wal(model: torch.nn.Module, factor: float = 3.0) -> None:
    """Scale every WAL's P so that psi is far from uniform (a stronger test than at init)."""
    with torch.no_grad():
        for wal in model.wal:
            for p in wal.P.values():
                p.weight.mul_(factor)


def _flatten_wal(model: torch.nn.Module, layers: list[int]) -> None:
    """Replace psi of the given layers by constants: P = 0 gives gamma = 0, psi = 1/3."""
    with torch.no_grad():
        for layer in layers:
            for p in model.wal[layer].P.values():
                p.weight.zero_()


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


def _exclusive_diff(a, b) -> float:
    return max(_max_diff(a.reps["exclusive"][m], b.reps["exclusive"][m]) for m in MODALITIES)


# ---------------------------------------------------------------- WAL: where psi acts (Eq. 5-6)
def test_paper_form_earlier_wal_layers_are_inert_the_last_is_not() -> None:
    """Eq. 3 starts every PSA layer with LN(Z) (attention input and residual), and a LayerNorm
    removes the per-sample scale psi: the WALs of layers 1..M-1 change nothing downstream (up
    to the LayerNorm's epsilon), while the last one's psi scales what the encoders see."""
    model = _model(wal_scaling="paper")
    _sharpen_wal(model)
    batch = _batch()
    with torch.no_grad():
        base = model(batch)
        _flatten_wal(model, [0, 1])
        early = model(batch)
        _flatten_wal(model, [2])
        late = model(batch)
    assert _max_diff(base.psi[0], early.psi[0]) > 0.1  # psi of layer 1 really changed ...
    assert torch.allclose(early.psi[0][0], torch.full((3,), 1 / 3))
    last_h, last_pred = _exclusive_diff(early, late), _max_diff(early.pred, late.pred)
    assert last_h > 1e-2 and last_pred > 1e-3  # the last WAL's psi acts ...
    assert _exclusive_diff(base, early) < 1e-3 * last_h  # ... the earlier ones do not
    assert _max_diff(base.pred, early.pred) < 1e-3 * last_pred


def _wal_grad_norms(model: torch.nn.Module) -> list[float]:
    model.zero_grad()
    out = model(_batch(seed=1))
    out.loss.backward()
    return [
        math.sqrt(sum(float(p.grad.pow(2).sum()) for p in wal.parameters())) for wal in model.wal
    ]


def test_paper_form_earlier_wal_parameters_get_almost_no_gradient() -> None:
    model = _model(wal_scaling="paper")
    _sharpen_wal(model)
    *early, last = _wal_grad_norms(model)
    assert last > 1e-4
    assert all(g < 1e-3 * last for g in early), (early, last)
    carried = _model(wal_scaling="carried")
    _sharpen_wal(carried)
    *early_c, last_c = _wal_grad_norms(carried)
    assert all(g > 1e-2 * last_c for g in early_c), (early_c, last_c)


def test_carried_form_every_layers_psi_changes_the_output() -> None:
    batch = _batch()
    for layer in range(3):
        model = _model(wal_scaling="carried")
        _sharpen_wal(model)
        with torch.no_grad():
            before = model(batch)
            _flatten_wal(model, [layer])
            after = model(batch)
        assert _exclusive_diff(before, after) > 1e-2, layer
        assert _max_diff(before.pred, after.pred) > 1e-4, layer


def _record_wal_inputs(model: torch.nn.Module) -> list[tuple[dict, torch.Tensor]]:
    """Wrap each WAL's scoring so that its input maps and scores gamma are recorded."""
    seen: list[tuple[dict, torch.Tensor]] = []
    for wal in model.wal:
        original = wal.scores

        def scores(zs, masks, _original=original):
            gamma = _original(zs, masks)
            seen.append(({m: z.detach().clone() for m, z in zs.items()}, gamma.detach()))
            return gamma

        wal.scores = scores
    return seen


@pytest.mark.parametrize("scaling", ["paper", "carried"])
def test_psi_scales_what_the_exclusive_encoders_see(scaling: str) -> None:
    """Eq. 6 by hand: the exclusive encoders receive psi_M * Z^e_M (paper form) or
    psi* * Z^e_M with psi* the normalised product of all layers' psi (carried form)."""
    model = _model(wal_scaling=scaling)
    _sharpen_wal(model)
    seen = _record_wal_inputs(model)
    received: dict[str, torch.Tensor] = {}
    model.exclusive.register_forward_pre_hook(lambda mod, args: received.update(args[0]))
    with torch.no_grad():
        out = model(_batch())
    assert len(seen) == 3
    psis = [torch.softmax(g, -1) for _, g in seen]
    for got, expect in zip(out.psi, psis, strict=True):
        assert torch.allclose(got, expect)
    if scaling == "paper":
        weights = psis[-1]
    else:
        prod = psis[0] * psis[1] * psis[2]
        weights = prod / prod.sum(-1, keepdim=True)
    last_input = seen[-1][0]
    for i, m in enumerate(MODALITIES):
        expect = last_input[m] * weights[:, i, None, None]
        assert torch.allclose(received[m], expect, atol=1e-6), m
        assert _max_diff(received[m], last_input[m]) > 1e-3  # psi is not the identity here


def test_one_psa_layer_makes_both_forms_the_same_model() -> None:
    batch = _batch()
    with torch.no_grad():
        paper = _model(wal_scaling="paper", psa_layers=1)(batch)
        carried = _model(wal_scaling="carried", psa_layers=1)(batch)
    assert torch.allclose(paper.pred, carried.pred, atol=1e-6)


def test_wal_switch_means_the_same_in_both_forms() -> None:
    """Table V's 'w/o WAL' removes every WAL whichever form is chosen: the same model."""
    batch = _batch()
    paper = _model(wal_scaling="paper", ablations="wal")
    carried = _model(wal_scaling="carried", ablations="wal")
    assert paper.wal is None and carried.wal is None
    assert paper.state_dict().keys() == carried.state_dict().keys()
    with torch.no_grad():
        a, b = paper(batch), carried(batch)
        full = _model(wal_scaling="paper")(batch)
    assert a.psi == [] and b.psi == []
    assert torch.equal(a.pred, b.pred)
    assert _max_diff(a.pred, full.pred) > 1e-4
    # both forms have the same parameters, so a checkpoint loads into either
    full_paper, full_carried = _model(wal_scaling="paper"), _model(wal_scaling="carried")
    full_carried.load_state_dict(full_paper.state_dict())


def test_carried_weights_are_the_normalised_product() -> None:
    g = torch.Generator().manual_seed(3)
    gammas = [torch.randn(5, 3, generator=g, requires_grad=True) for _ in range(3)]
    psis = [torch.softmax(x, -1) for x in gammas]
    prod = psis[0] * psis[1] * psis[2]
    assert torch.allclose(carried_weights(gammas), prod / prod.sum(-1, keepdim=True), atol=1e-6)
    assert torch.allclose(carried_weights(gammas[:1]), psis[0])
    # an empty modality (lowest score in every layer) keeps weight 0; no modality: uniform
    low = torch.finfo(torch.float32).min
    empty = [x.detach().clone() for x in gammas]
    for x in empty:
        x[1, 2] = low
        x[4, :] = low
    empty = [x.requires_grad_() for x in empty]
    w = carried_weights(empty)
    assert w[1, 2] == 0 and torch.allclose(w[1].sum(), torch.tensor(1.0))
    assert torch.allclose(w[4], torch.full((3,), 1 / 3))
    (w * torch.arange(3.0)).sum().backward()
    assert all(torch.isfinite(x.grad).all() for x in empty)


def test_wal_scaling_is_checked_and_parsed() -> None:
    from mea_cli.errors import MeaError

    assert config_for("mea", "mosi").wal_scaling == "paper"
    assert config_for("mea", "mosi", wal_scaling="carried").wal_scaling == "carried"
    with pytest.raises(MeaError, match="wal_scaling must be one of paper, carried"):
        config_for("mea", "mosi", wal_scaling="late")


# ---------------------------------------------------------------- numpy references (Eq. 7-10)
def _np_gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.vectorize(math.erf, otypes=[float])(x / math.sqrt(2.0)))


def _np_ln(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def _mru_weights(mru: MRU) -> dict[str, np.ndarray]:
    """The MRU's parameters as numpy arrays, under the names of Eq. 7-9."""
    return {
        "ln_t": (mru.ln_t.weight, mru.ln_t.bias),
        "ln_s": (mru.ln_s.weight, mru.ln_s.bias),
        "W_Q": mru.qkv.q.weight,
        "W_K": mru.qkv.k.weight,
        "W_V": mru.qkv.v.weight,
        "ln_ffn": (mru.ln_ffn.weight, mru.ln_ffn.bias),
        "fc1": (mru.ffn.fc1.weight, mru.ffn.fc1.bias),
        "fc2": (mru.ffn.fc2.weight, mru.ffn.fc2.bias),
    }


def _np(x):
    if isinstance(x, tuple):
        return tuple(_np(y) for y in x)
    return x.detach().double().numpy()


def _np_mru(mru: MRU, source: np.ndarray, target: np.ndarray, heads: int) -> np.ndarray:
    """Eq. 7-9 for one sample's *real* steps: ``source [Ts, d]``, ``target [Tt, d]``."""
    w = {k: _np(v) for k, v in _mru_weights(mru).items()}
    t = _np_ln(target, *w["ln_t"])
    s = _np_ln(source, *w["ln_s"])
    q, k, v = t @ w["W_Q"].T, s @ w["W_K"].T, s @ w["W_V"].T
    d = target.shape[1]
    dh = d // heads
    update = np.zeros_like(t)
    for h in range(heads):  # Eq. 7 per head, scaled by sqrt(d / K)
        sl = slice(h * dh, (h + 1) * dh)
        if len(source) == 0:
            continue  # no key: no update
        logits = q[:, sl] @ k[:, sl].T / math.sqrt(dh)
        a = np.exp(logits - logits.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        update[:, sl] = a @ v[:, sl]
    z = t + update  # Eq. 8
    hidden = _np_gelu(_np_ln(z, *w["ln_ffn"]) @ w["fc1"][0].T + w["fc1"][1])
    return z + hidden @ w["fc2"][0].T + w["fc2"][1]  # Eq. 9


def _randomise(module: torch.nn.Module, seed: int) -> None:
    """Fixed, non-trivial weights (LayerNorm gains and biases too, so that swapping ln_t and
    ln_s or dropping one is seen)."""
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            values = rng.normal(size=tuple(p.shape)) * 0.5
            if name.endswith("weight") and p.dim() == 1:
                values = 1.0 + values * 0.5
            p.copy_(torch.from_numpy(values))


def _seqs(lengths: list[int], d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    t = max(lengths) + 2
    x = torch.randn(len(lengths), t, d, generator=g)
    mask = torch.arange(t)[None, :] < torch.tensor(lengths)[:, None]
    return x.masked_fill(~mask[..., None], 7.0), mask  # garbage under the mask


@pytest.mark.parametrize("heads", [1, 2])
@pytest.mark.parametrize("fused", [False, True])
def test_mru_matches_numpy_eq_7_to_9(heads: int, fused: bool) -> None:
    d = 4
    mru = MRU(d, heads, 0.0, 0.0, 2).eval()
    _randomise(mru, seed=heads)
    src, sm = _seqs([5, 2, 0], d, seed=1)
    tgt, tm = _seqs([3, 4, 2], d, seed=2)
    with torch.no_grad():
        got, _ = mru(src, sm, tgt, tm, need_weights=not fused)
    for i in range(3):
        ns, nt = int(sm[i].sum()), int(tm[i].sum())
        expect = _np_mru(mru, _np(src[i, :ns]), _np(tgt[i, :nt]), heads)
        np.testing.assert_allclose(_np(got[i, :nt]), expect, atol=1e-5)
        assert torch.all(got[i, nt:] == 0)


def test_hca_layer_matches_numpy_eq_10_mixed_then_coarse_then_fine() -> None:
    """Eq. 10 for every target t: mixed MRU over [Z_L, Z_V, Z_A], then the coarse MRU over the
    two other modalities (queries from the mixed output), then the sum of the two fine MRUs
    (queries from the coarse output), all with their own weights, padding ignored."""
    d, heads = 4, 2
    hca = HCALayer(MODALITIES, d, heads, 0.0, 0.0, 2).eval()
    _randomise(hca, seed=5)
    lengths = {"text": [3, 1, 4], "vision": [5, 2, 0], "audio": [2, 4, 3]}
    zs, masks = {}, {}
    for j, m in enumerate(MODALITIES):
        zs[m], masks[m] = _seqs(lengths[m], d, seed=10 + j)
    with torch.no_grad():
        out = hca(zs, zs, masks)
    for i in range(3):
        real = {m: _np(zs[m][i, : lengths[m][i]]) for m in MODALITIES}
        for t in MODALITIES:
            others = [s for s in MODALITIES if s != t]
            z = _np_mru(hca.mixed[t], np.concatenate([real[m] for m in MODALITIES]), real[t], heads)
            z = _np_mru(hca.coarse[t], np.concatenate([real[s] for s in others]), z, heads)
            z = sum(_np_mru(hca.fine[t][s], real[s], z, heads) for s in others)
            n = lengths[t][i]
            np.testing.assert_allclose(_np(out[t][i, :n]), z, atol=1e-5, err_msg=f"{t} {i}")
            assert torch.all(out[t][i, n:] == 0)


# ---------------------------------------------------------------- Table V switches, by behaviour
@pytest.mark.parametrize("switch", ["", "mru-mixed", "mru-coarse", "mru-fine"])
def test_mru_switches_remove_the_unit_they_name(switch: str) -> None:
    """Which attention maps the HCA computes (and over which keys) under each MRU switch."""
    model = _model(ablations=switch)
    batch = _batch()
    with torch.no_grad():
        maps = model(batch, return_attention=True).attention
    width = {m: batch.inputs[m].shape[1] for m in MODALITIES}
    for t in MODALITIES:
        others = [s for s in MODALITIES if s != t]
        expect = {
            "mixed": sum(width.values()),
            "coarse": sum(width[s] for s in others),
            **{f"fine-{s}": width[s] for s in others},
        }
        if switch:
            unit = switch.removeprefix("mru-")
            expect = {k: v for k, v in expect.items() if not k.startswith(unit)}
        got = {
            k.split("/")[-1]: v.shape[-1] for k, v in maps.items() if k.startswith(f"hca/0/{t}/")
        }
        assert got == expect, (switch, t)


@pytest.mark.parametrize(
    ("switch", "fuse"),
    [
        ("add", lambda vs: torch.stack(vs).sum(0)),
        ("mul", lambda vs: torch.stack(vs).prod(0)),
        ("dgf", lambda vs: torch.cat(vs, dim=-1)),
    ],
)
def test_fusion_alternatives_feed_the_head_what_their_row_says(switch: str, fuse) -> None:
    """w/ Feature Addition sums each graph's three vectors, w/ Feature Multiplication multiplies
    them, w/o DGF concatenates all six: [fuse(h^e_L, h^e_V, h^e_A), fuse(h^a_L, ...)]."""
    model = _model(ablations=switch)
    seen: list[torch.Tensor] = []
    model.head.register_forward_pre_hook(lambda mod, args: seen.append(args[0]))
    with torch.no_grad():
        out = model(_batch())
    expect = torch.cat(
        [fuse([out.reps[g][m] for m in MODALITIES]) for g in ("exclusive", "agnostic")], dim=-1
    )
    assert seen[0].shape == expect.shape
    assert torch.allclose(seen[0], expect, atol=1e-6)


# ---------------------------------------------------------------- Eq. 11-12: encoder sharing
def test_one_agnostic_encoder_for_all_modalities_three_exclusive_ones() -> None:
    model = _model()
    g = torch.Generator().manual_seed(4)
    z = torch.randn(3, 6, TINY["d"], generator=g)
    mask = torch.arange(6)[None, :] < torch.tensor([6, 3, 1])[:, None]
    same = {m: z for m in MODALITIES}
    masks = {m: mask for m in MODALITIES}
    with torch.no_grad():
        h_a = model.agnostic(same, masks)
        h_e = model.exclusive(same, masks)
    # Eq. 12: the shared A maps the same sequence to the same vector, whatever its modality
    assert all(torch.equal(h_a["text"], h_a[m]) for m in MODALITIES)
    # Eq. 11: three S_m with their own parameters give three different vectors
    for a, b in (("text", "vision"), ("text", "audio"), ("vision", "audio")):
        assert _max_diff(h_e[a], h_e[b]) > 1e-3
    d, d_h = TINY["d"], TINY["d_h"]
    one_mlp = d * d_h + d_h + d_h * d_h + d_h
    assert sum(p.numel() for p in model.agnostic.parameters()) == one_mlp
    assert sum(p.numel() for p in model.exclusive.parameters()) == 3 * one_mlp
