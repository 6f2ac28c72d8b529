"""The whole MEA model: mask invariance, every Table V switch, overfitting, checkpoints, CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from model_helpers import pad_batch, random_sequences, store_batch
from typer.testing import CliRunner

from mea_cli import MODALITIES
from mea_cli.cli import app
from mea_cli.errors import MeaError
from mea_cli.models import config_for, create_model
from mea_cli.models.mea.switches import SWITCHES, parts

DIMS = {"text": 7, "vision": 5, "audio": 6}
SMALL = dict(d=16, heads=2, d_h=12, psa_layers=2, hca_layers=1)
LENGTHS = {"text": [3, 0, 5, 1], "vision": [8, 4, 0, 2], "audio": [6, 6, 1, 0]}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _model(**overrides: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("mea", config_for("mea", "mosi", input_dims=DIMS, **{**SMALL, **overrides}))


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.allclose(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("literal", "scaling", "absent", "pooling"),
    [
        (False, "paper", "keep", "mean"),
        (True, "paper", "keep", "mean"),
        (False, "carried", "drop", "mean"),
        (False, "paper", "keep", "stats"),
    ],
)
def test_padding_to_a_longer_batch_changes_nothing(
    literal: bool, scaling: str, absent: str, pooling: str
) -> None:
    model = _model(
        wal_literal=literal, wal_max_len=20, psa_literal_eq2=literal, wal_scaling=scaling,
        fusion_absent=absent, pooling=pooling,
    ).eval()  # fmt: skip
    seqs = random_sequences(DIMS, LENGTHS)
    y = torch.randn(4, 1)
    with torch.no_grad():
        a = model(pad_batch(seqs, y), return_attention=True)
        b = model(pad_batch(seqs, y, extra=7, garbage=5.0), return_attention=True)
    assert _close(a.pred, b.pred)
    for kind in a.reps:
        for m in MODALITIES:
            assert _close(a.reps[kind][m], b.reps[kind][m])
    assert all(_close(x, z) for x, z in zip(a.psi, b.psi, strict=True))
    assert a.losses.keys() == b.losses.keys()
    for k in a.losses:
        assert _close(a.losses[k], b.losses[k]), k
    # attention maps agree on the real (query, key) pairs; keys of the mixed / coarse MRUs are
    # concatenations [Z_L, Z_V, Z_A] with padding inside, so compare key by real key
    ba, bb = pad_batch(seqs, y), pad_batch(seqs, y, extra=7)
    for name, amap in a.attention.items():
        bmap = b.attention[name]
        parts_ = name.split("/")
        if parts_[0] == "psa":
            sources = [parts_[2]]
        elif parts_[3] == "mixed":
            sources = list(MODALITIES)
        elif parts_[3] == "coarse":
            sources = [m for m in MODALITIES if m != parts_[2]]
        else:
            sources = [parts_[3].removeprefix("fine-")]
        target = parts_[2]
        for i in range(4):
            qa, qb = ba.masks[target][i], bb.masks[target][i]
            ka = torch.cat([ba.masks[m][i] for m in sources])
            kb = torch.cat([bb.masks[m][i] for m in sources])
            assert _close(amap[i][:, qa][:, :, ka], bmap[i][:, qb][:, :, kb]), name
            assert torch.all(bmap[i][:, ~qb] == 0) and torch.all(bmap[i][:, :, ~kb] == 0)


@pytest.mark.parametrize("switch", ["", "sep", "omega"])
def test_a_sample_with_no_data_changes_no_loss_term(switch: str) -> None:
    """A sample whose three sequences are empty (and whose label is absent) has no h^e / h^a
    of its own: it must not enter HSIC (Eq. 13-14), L_sep or the discriminator losses
    (Eq. 15-16), so adding it to the batch changes no loss term and no other prediction."""
    model = _model(ablations=switch).eval()
    seqs = random_sequences(DIMS, LENGTHS)
    y = torch.randn(4, 1)
    more = {m: [*seqs[m], torch.zeros(0, DIMS[m])] for m in MODALITIES}
    y_more = torch.cat([y, torch.full((1, 1), float("nan"))])
    with torch.no_grad():
        a = model(pad_batch(seqs, y))
        b = model(pad_batch(more, y_more))
    assert _close(a.pred, b.pred[:4])
    assert a.losses.keys() == b.losses.keys()
    for k in a.losses:
        assert _close(a.losses[k], b.losses[k]), k


@pytest.mark.parametrize("switch", ["", "dgf", "mul"])  # DGF, concatenation, product
def test_fusion_absent_drop_ignores_an_empty_modality(switch: str) -> None:
    """With fusion_absent="drop" a sample without text does not read the text node (the text
    encoder's response to nothing): changing that encoder changes none of its predictions; it
    does change them in the paper's graph ("keep"), and those of samples with text either way."""
    seqs = random_sequences(DIMS, LENGTHS)  # sample 1 has no text
    batch = pad_batch(seqs, torch.randn(4, 1))
    for absent, moves in (("drop", False), ("keep", True)):
        model = _model(ablations=switch, fusion_absent=absent).eval()
        with torch.no_grad():
            a = model(batch).pred
            for w in model.exclusive.enc["text"].parameters():
                w.add_(0.5)
            b = model(batch).pred
        assert (not _close(a[1], b[1])) is moves, absent
        assert not _close(a[0], b[0])


def test_outputs_shapes_psi_and_attention_on_request() -> None:
    model = _model()
    batch = pad_batch(random_sequences(DIMS, LENGTHS), torch.randn(4, 1))
    out = model(batch)
    assert out.pred.shape == (4, 1) and out.attention is None
    assert set(out.reps) == {"exclusive", "agnostic"}
    assert all(out.reps[k][m].shape == (4, 12) for k in out.reps for m in MODALITIES)
    assert len(out.psi) == 2 and all(torch.allclose(p.sum(-1), torch.ones(4)) for p in out.psi)
    assert set(out.losses) == {"task", "dis", "agn", "imp", "exc"}
    cfg = model.cfg
    expect = out.losses["task"] + cfg.alpha * out.losses["dis"]
    expect = expect + cfg.beta * (out.losses["agn"] + out.losses["exc"]) + out.losses["imp"]
    assert torch.allclose(out.loss.detach(), expect)  # Eq. 20 (+ D_i's own term)
    with_maps = model(batch, return_attention=True).attention
    assert with_maps["psa/1/vision"].shape == (4, 2, 8, 8)
    assert with_maps["hca/0/text/mixed"].shape == (4, 2, 5, 5 + 8 + 6)
    assert with_maps["hca/0/audio/fine-text"].shape == (4, 2, 6, 5)
    no_labels = model(pad_batch(random_sequences(DIMS, LENGTHS), None))
    assert no_labels.loss is None and no_labels.losses == {}


FULL_TERMS = {"task", "dis", "agn", "imp", "exc"}
EXPECTED_TERMS = {
    "dis": FULL_TERMS - {"dis"},
    "sep": FULL_TERMS - {"dis"} | {"sep"},
    "adv": {"task", "dis"},
    "omega": FULL_TERMS - {"imp"},
    "exclusive": {"task", "agn", "imp"},
    "agnostic": {"task", "exc"},
}
REMOVES_PARAMETERS = {"adv", "omega", "exclusive", "agnostic", "psa", "chain", "wal", "hca",
                      "mru-mixed", "mru-coarse", "mru-fine"}  # fmt: skip


@pytest.mark.parametrize("switch", list(SWITCHES))
def test_every_switch_builds_runs_and_changes_the_model(switch: str) -> None:
    full = _model()
    model = _model(ablations=switch)
    assert model.cfg.ablations == (switch,)
    batch = pad_batch(random_sequences(DIMS, LENGTHS), torch.randn(4, 1))
    out = model(batch)
    out.loss.backward()
    assert torch.isfinite(out.loss)
    # nothing built is left unused (DistributedDataParallel would refuse unused parameters)
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert not unused, unused
    n_full, n_abl = full.num_parameters(), model.num_parameters()
    assert set(out.losses) == EXPECTED_TERMS.get(switch, FULL_TERMS)
    assert set(out.losses) == {"task", *parts(model.cfg.ablations).loss_terms} - {"task"} | {"task"}
    if switch in REMOVES_PARAMETERS:
        assert n_abl < n_full
    elif switch in ("dis", "sep"):
        assert n_abl == n_full  # a loss term, not a module
    else:
        assert n_abl != n_full  # another fusion: another head width / no graph parameters
    if switch in ("wal", "psa", "exclusive"):
        assert out.psi == []
    if switch == "chain":
        k = model.cfg.heads
        convs = (model.cfg.psa_layers - 1) * len(MODALITIES) * (k * k * 9 + k)
        assert n_full - n_abl == convs
    if switch in ("exclusive", "agnostic"):
        assert set(out.reps) == {"exclusive", "agnostic"} - {switch}


def test_switch_combinations_are_checked() -> None:
    with pytest.raises(MeaError, match="cannot be combined"):
        _model(ablations="exclusive,agnostic")
    model = _model(ablations="psa,hca,dgf")
    out = model(pad_batch(random_sequences(DIMS, LENGTHS), torch.randn(4, 1)))
    out.loss.backward()
    assert model.psa is None and model.hca is None and model.fusion.mode == "concat"


def test_rebuilt_from_config_dict_gives_the_same_outputs() -> None:
    model = _model(ablations="wal").eval()
    batch = pad_batch(random_sequences(DIMS, LENGTHS), torch.randn(4, 1))
    saved = json.loads(json.dumps(model.cfg.to_dict()))
    clone = create_model("mea", saved)
    clone.load_state_dict(model.state_dict())
    clone.eval()
    with torch.no_grad():
        assert torch.equal(model(batch).pred, clone(batch).pred)


def test_batch_that_does_not_fit_is_a_user_error() -> None:
    model = _model()
    batch = pad_batch(random_sequences({**DIMS, "vision": 9}, LENGTHS), None)
    with pytest.raises(
        MeaError, match="vision has 9 features per step but the model was built for 5"
    ):
        model(batch)


def test_overfits_32_synthetic_samples(tmp_path: Path) -> None:
    """The full model (every component on, small width) fits 32 samples: task loss -> ~0."""
    from mea_cli.data.synth import write_synthetic

    path = tmp_path / "m32.h5"
    write_synthetic(path, "mosi", n=32, seed=1, max_seconds=2.0)
    batch, dims, _, _ = store_batch(path, 32, crop=24)
    torch.manual_seed(0)
    cfg = config_for(
        "mea", "mosi", input_dims=dims, dropout=0.0, attn_dropout=0.0, **{**SMALL, "d_h": 16}
    )
    assert cfg.ablations == ()
    model = create_model("mea", cfg)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    start = time.perf_counter()
    first = None
    steps = 0
    for _ in range(120):
        steps += 1
        out = model(batch)
        opt.zero_grad()
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        task = float(out.losses["task"])
        first = task if first is None else first
        if task < 0.02:
            break
    seconds = time.perf_counter() - start
    print(f"overfit: task MSE {first:.3f} -> {task:.4f} in {steps} steps, {seconds:.1f} s CPU")
    assert first > 1.0
    assert task < 0.02, f"task loss still {task:.4f} after {steps} steps"


def test_cli_info_prints_the_model_size(tmp_path: Path, synth_mosi: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["info", "--model", "mea", "--dataset", "mosi", "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    expect = create_model("mea", config_for("mea", "mosi")).num_parameters()
    assert info["parameters"] == expect == sum(info["components"].values())
    assert info["config"]["heads"] == 8
    text = runner.invoke(app, ["info", "--model", "mea", "--dataset", "mosi"])
    assert text.exit_code == 0 and f"{expect:,}" in text.output
    assert "PSA layers" in text.output
    from_store = runner.invoke(
        app,
        ["info", "--model", "mea", "--dataset", "mosi", "--features", str(synth_mosi), "--json"],
    )
    assert from_store.exit_code == 0, from_store.output
    neither = runner.invoke(app, ["info"])
    both = runner.invoke(app, ["info", str(synth_mosi), "--model", "mea"])
    assert isinstance(neither.exception, MeaError) and isinstance(both.exception, MeaError)


# ---------------------------------------------------------------- fused vs explicit attention
@pytest.mark.parametrize("literal", [False, True])
def test_fused_attention_matches_explicit_path(literal: bool) -> None:
    """The fused paths (SDPA in the MRUs, one-pass PSA maps) give the explicit code's numbers,
    with padding, garbage under the masks and empty sequences, forward and backward."""
    from mea_cli.models.layers.attention import explicit_attention

    model = _model(hca_layers=2, psa_layers=3, psa_literal_eq2=literal).eval()
    seqs = random_sequences(DIMS, LENGTHS, seed=3)
    batch = pad_batch(seqs, torch.randn(4, 1), extra=3, garbage=7.0)
    fused = model(batch)
    fused.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    with explicit_attention():
        ref = model(batch)
        ref.loss.backward()
    assert torch.isfinite(fused.pred).all()
    assert _close(fused.pred, ref.pred) and _close(fused.loss, ref.loss)
    for kind in ref.reps:
        for m in MODALITIES:
            assert _close(fused.reps[kind][m], ref.reps[kind][m])
    assert all(_close(x, z) for x, z in zip(fused.psi, ref.psi, strict=True))
    for n, p in model.named_parameters():
        if p.grad is not None:
            assert torch.allclose(grads[n], p.grad, atol=1e-4, rtol=1e-4), n
    # maps requested: the same maps from both paths (padded query rows zero in both)
    with torch.no_grad():
        a = model(batch, return_attention=True).attention
        with explicit_attention():
            b = model(batch, return_attention=True).attention
    assert a.keys() == b.keys() and any(k.startswith("hca/") for k in a)
    for k in a:
        assert _close(a[k], b[k]), k


def test_fused_mru_empty_source_gives_zeros_not_nan() -> None:
    from mea_cli.models.layers.attention import explicit_attention
    from mea_cli.models.mea.hca import MRU

    torch.manual_seed(6)
    mru = MRU(8, 2, 0.0, 0.0, 2).eval()
    src, tgt = torch.randn(3, 5, 8), torch.randn(3, 4, 8)
    sm = torch.arange(5)[None, :] < torch.tensor([5, 0, 2])[:, None]
    tm = torch.arange(4)[None, :] < torch.tensor([4, 3, 0])[:, None]
    fused, none = mru(src, sm, tgt, tm, need_weights=False)
    assert none is None
    with explicit_attention():
        ref, _ = mru(src, sm, tgt, tm, need_weights=False)
    assert torch.isfinite(fused).all() and _close(fused, ref)
    # an empty source adds nothing: Z_t^a = F(LN(LN(Z_t))) + LN(Z_t) at the real steps
    t = mru.ln_t(tgt[1])
    expect = (t + mru.ffn(mru.ln_ffn(t))) * tm[1, :, None]
    assert _close(fused[1], expect)
