"""MFSA (ACM MM 2022, MEA's conference version): what is its own, against hand computations.

The contract suite (``test_model_contract.py``) covers masks, gradients, checkpoints, switches
and capabilities for every model; this file checks what MFSA adds to MEA's modules: the
per-sample L_sep of Eq. 13, the transformer fusion of the six vectors, the L1 task loss and the
weights of Eq. 16, Eq. 10's coarse step as MEA corrects it, the Sec. 4.2 presets and the Table 4
switches, and ``mea train --model mfsa`` end to end.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import warm
from model_helpers import pad_batch, random_sequences
from torch.nn import functional as F
from typer.testing import CliRunner

from mea_cli import MODALITIES
from mea_cli.ablate.api import ablate
from mea_cli.ablate.errors import AblationError
from mea_cli.ablate.rows import paper_table, table_rows
from mea_cli.ablate.table import build_table
from mea_cli.artifacts.features import FeatureStore
from mea_cli.cli import app
from mea_cli.data.synth import write_synthetic
from mea_cli.models import config_for, create_model
from mea_cli.models.core.losses import batch_separation_loss, sample_separation_loss
from mea_cli.models.mea.mfsa_switches import SWITCHES, parts
from mea_cli.train.evaluate import paper_rows
from mea_cli.train.metrics import regression_metrics
from mea_cli.train.presets import training_preset
from mea_cli.train.trainer import TrainRequest, train_run

DIMS = {"text": 7, "vision": 5, "audio": 6}
SMALL = dict(d=16, heads=2, d_h=12, fusion_heads=2, psa_layers=2, hca_layers=1)
LENGTHS = {"text": [3, 0, 5, 1], "vision": [8, 4, 0, 2], "audio": [6, 6, 1, 0]}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _model(**overrides: object) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = config_for("mfsa", "mosi", input_dims=DIMS, **{**SMALL, **overrides})
    return create_model("mfsa", cfg)


def _batch(labels: bool = True, seed: int = 0):  # noqa: ANN202
    y = torch.randn(4, 1, generator=torch.Generator().manual_seed(seed + 1)) if labels else None
    return pad_batch(random_sequences(DIMS, LENGTHS, seed), y)


def _t(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


# ---------------------------------------------------------------- L_sep, Eq. 13
H_S = {
    "text": _t([[1, 2], [0, 1], [2, 0]]),
    "vision": _t([[1, 1], [3, 0], [0, 0]]),
    "audio": _t([[0, 2], [1, 1], [1, -1]]),
}
H_A = {
    "text": _t([[3, -1], [2, 2], [1, 5]]),
    "vision": _t([[1, -1], [1, 1], [4, 4]]),
    "audio": _t([[1, 1], [2, -1], [1, 1]]),
}


def test_per_sample_separation_loss_matches_a_hand_computation() -> None:
    """Eq. 13: sum over modalities and samples of ((h^s_{m,i})^T h^a_{m,i})^2, no 1/n.

    text:   (1*3 + 2*-1)^2 + (0*2 + 1*2)^2 + (2*1 + 0*5)^2 = 1 + 4 + 4 = 9
    vision: (1 - 1)^2      + (3 + 0)^2     + 0^2           = 0 + 9 + 0 = 9
    audio:  (0 + 2)^2      + (2 - 1)^2     + (1 - 1)^2     = 4 + 1 + 0 = 5
    """
    assert sample_separation_loss(H_S, H_A).item() == 23.0
    # a sample without audio (empty sequence) adds nothing to the audio term: 23 - 4
    valid = {m: torch.ones(3, dtype=torch.bool) for m in MODALITIES}
    valid["audio"] = torch.tensor([False, True, True])
    assert sample_separation_loss(H_S, H_A, valid).item() == 19.0
    # its gradient w.r.t. h^s_{m,i} is 2 (h^s . h^a) h^a: text sample 1 -> 2 * 2 * (2, 2)
    hs = {m: v.clone().requires_grad_(True) for m, v in H_S.items()}
    sample_separation_loss(hs, H_A).backward()
    assert torch.equal(hs["text"].grad[1], _t([[8, 8]])[0])
    assert torch.equal(hs["vision"].grad[0], torch.zeros(2))  # orthogonal: no push


def test_scaled_separation_loss_is_the_reference_batch_times_the_per_sample_mean() -> None:
    """``reference_batch = B``: each modality's sum over its samples / its sample count x B.

    B = 6, three samples: text 9 / 3 * 6 = 18, vision 9 / 3 * 6 = 18, audio 5 / 3 * 6 = 10 -> 46;
    audio of sample 0 absent: audio (1 + 0) / 2 * 6 = 3 -> 39. B = 3 (the batch's own size)
    gives the printed sum, 23.
    """
    assert sample_separation_loss(H_S, H_A, reference_batch=6).item() == pytest.approx(46.0)
    assert sample_separation_loss(H_S, H_A, reference_batch=3).item() == pytest.approx(23.0)
    valid = {m: torch.ones(3, dtype=torch.bool) for m in MODALITIES}
    valid["audio"] = torch.tensor([False, True, True])
    assert sample_separation_loss(H_S, H_A, valid, 6).item() == pytest.approx(39.0)


@pytest.mark.parametrize("sep_batch", [64, 0])
def test_sep_weight_beside_the_task_loss_does_not_depend_on_the_batch_size(sep_batch: int) -> None:
    """The same samples twice in one batch: the mean task loss, the mean discriminator losses
    and (``sep_batch > 0``) L_sep are unchanged, so alpha weighs L_sep the same at any batch
    size. ``sep_batch = 0`` (Eq. 13's sum as printed) doubles instead: its weight grows with
    the batch."""
    model = _model(dropout=0.0, attn_dropout=0.0, sep_batch=sep_batch).eval()
    seqs = random_sequences(DIMS, LENGTHS)
    y = torch.randn(4, 1, generator=torch.Generator().manual_seed(5))
    twice = {m: [*seqs[m], *seqs[m]] for m in MODALITIES}
    with torch.no_grad():
        one, two = model(pad_batch(seqs, y)), model(pad_batch(twice, torch.cat([y, y])))
    assert torch.allclose(two.losses["task"], one.losses["task"], atol=1e-6)
    ratio = (two.losses["sep"] / one.losses["sep"]).item()
    if sep_batch:
        assert ratio == pytest.approx(1.0, rel=1e-5)
        assert torch.allclose(two.loss, one.loss, atol=1e-5)  # the whole of Eq. 16
    else:
        assert ratio == pytest.approx(2.0, rel=1e-5)


def test_per_sample_and_batch_forms_are_different_functionals() -> None:
    """MFSA's Eq. 13 (per sample) vs the batch-matrix form of MEA's ``sep`` row."""
    # each sample's two vectors orthogonal, but they co-vary over the batch
    e, a = _t([[1, 0], [-1, 0]]), _t([[0, 1], [0, -1]])
    assert sample_separation_loss({"text": e}, {"text": a}) == 0
    assert batch_separation_loss({"text": e}, {"text": a}) > 0
    # identical vectors that do not vary over the batch: centring removes them
    c = _t([[1, 2], [1, 2], [1, 2]])
    assert sample_separation_loss({"text": c}, {"text": c}).item() == 3 * 25
    assert batch_separation_loss({"text": c}, {"text": c}) == 0


# ---------------------------------------------------------------- presets and reuse
def test_presets_are_section_4_2() -> None:
    # heads, mu, alpha, beta; batch, epochs, lr (MFSA Sec. 4.2)
    paper = {
        "mosi": ((8, 0.25, 1e-2, 3e-2), (64, 100, 1e-3)),
        "mosei": ((10, 0.15, 3e-2, 5e-2), (64, 100, 3e-3)),
        "iemocap": ((8, 0.2, 1e-2, 2e-2), (32, 60, 1e-3)),
    }
    for dataset, (model_row, train_row) in paper.items():
        cfg = config_for("mfsa", dataset)
        assert (cfg.heads, cfg.mu, cfg.alpha, cfg.beta) == model_row
        assert (cfg.d, cfg.d_h, cfg.psa_layers, cfg.hca_layers) == (40, 128, 5, 2)
        assert cfg.task_loss == "l1" and cfg.d_h % cfg.fusion_heads == 0
        s = training_preset("mfsa", dataset).settings
        assert (s.batch_size, s.epochs, s.lr) == train_row
        assert cfg.sep_batch == s.batch_size  # L_sep is Eq. 13's sum at the paper's batch size
    # MFSA gives no kernel sizes: MEA's Table I values, said in the source
    assert config_for("mfsa", "iemocap").kernel_sizes == (3, 3, 5)
    with pytest.raises(Exception, match="d_h=128 must be divisible by fusion_heads=10"):
        config_for("mfsa", "mosei", fusion_heads=10)


def test_paper_rows_are_tables_1_to_3_under_the_models_name() -> None:
    """``mea eval --paper`` / ``mea compare --paper`` find MFSA's printed rows by model name."""
    printed = {
        "mosi": dict(acc7=41.4, acc2=83.3, f1=83.7, mae=0.856, corr=0.722),
        "mosei": dict(acc7=53.2, acc2=83.8, f1=83.6, mae=0.574, corr=0.724),
        "iemocap": dict(acc_happy=87.2, f1_happy=84.3, acc_sad=80.7, f1_sad=76.8,
                        acc_angry=76.5, f1_angry=73.2, acc_neutral=64.4, f1_neutral=62.5),
    }  # fmt: skip
    for dataset, metrics in printed.items():
        rows = [r for r in paper_rows(dataset) if r["model"].lower() == "mfsa"]
        assert len(rows) == 1 and rows[0]["metrics"] == metrics, dataset
        assert "ACM MM 2022" in rows[0]["source"]


def test_ablate_paper_values_are_table_4_matched_to_mfsas_own_switches() -> None:
    """``mea ablate --paper`` on an mfsa run: every switch finds its Table 4 row (by name, none
    under "Other"), in the paper's order, with the printed MOSI values; MAE / Corr keep three
    decimals."""
    table = paper_table("mfsa")
    assert "ACM MM 2022" in table["source"]["paper"] and "Table 4" in table["source"]["table"]
    assert table["metrics"] == ["acc7", "acc2", "f1", "mae", "corr"]
    rows = table_rows(SWITCHES, None, model="mfsa")
    assert [r.key for r in rows] == ["full", *TABLE_4]
    assert all(r.group != "Other" and set(r.paper) == {"mosi"} for r in rows)
    by_key = {r.key: r.paper["mosi"] for r in rows}
    assert by_key["full"] == dict(acc7=41.4, acc2=83.3, f1=83.7, mae=0.856, corr=0.722)
    assert by_key["psa"] == dict(acc7=37.9, acc2=80.7, f1=81.3, mae=0.917, corr=0.698)
    assert by_key["mru-fine"] == dict(acc7=40.2, acc2=82.7, f1=83.2, mae=0.862, corr=0.715)
    # Table 4 is MFSA's, not MEA's: MEA's 'sep' row (w/ L_sep) has other numbers
    assert by_key["sep"] == dict(acc7=40.9, acc2=82.6, f1=83.5, mae=0.864, corr=0.718)
    shown = build_table("t", [("full", "MFSA (Full)", "", {})], ["mae"], {"full": by_key["full"]},
                        table["metrics"])  # fmt: skip
    assert "| 41.4 | 83.3 | 83.7 | 0.856 | 0.722 |" in shown.to_markdown()


def test_mfsa_computes_what_meas_shared_modules_compute() -> None:
    """Behaviour, not types: an MEA and an MFSA of the same sizes, the MEA's extractor, PSA,
    WAL, HCA, encoder and discriminator weights loaded into the MFSA (strictly: the same
    parameters), give the same h^s / h^a, the same WAL weights psi and the same adversarial
    losses (MFSA's L_spe is MEA's L_exc) on a batch with empty sequences."""
    shared = dict(SMALL, dropout=0.0, attn_dropout=0.0)
    shared.pop("fusion_heads")
    mfsa = _model(**shared).eval()
    torch.manual_seed(1)
    mea = create_model("mea", config_for("mea", "mosi", input_dims=DIMS, **shared)).eval()
    pairs = [("extractors", "extractors"), ("psa", "psa"), ("wal", "wal"), ("hca", "hca"),
             ("exclusive", "specific"), ("agnostic", "agnostic"),
             ("discriminators", "discriminators")]  # fmt: skip
    for ours, theirs in pairs:
        getattr(mfsa, theirs).load_state_dict(getattr(mea, ours).state_dict(), strict=True)
    batch = _batch()
    with torch.no_grad():
        a, b = mea(batch), mfsa(batch)
    for kind in ("exclusive", "agnostic"):
        for m in MODALITIES:
            assert torch.allclose(a.reps[kind][m], b.reps[kind][m], atol=1e-6), (kind, m)
    assert all(torch.allclose(x, y, atol=1e-6) for x, y in zip(a.psi, b.psi, strict=True))
    assert torch.allclose(a.losses["agn"], b.losses["agn"], atol=1e-6)
    assert torch.allclose(a.losses["exc"], b.losses["spe"], atol=1e-6)
    assert torch.allclose(a.losses["imp"], b.losses["imp"], atol=1e-6)
    # and the part that is MFSA's own differs: its fusion, not MEA's DGF
    assert not torch.allclose(a.pred, b.pred)


# ---------------------------------------------------------------- Eq. 10, MEA's correction
def test_coarse_mru_refines_the_mixed_output_not_its_own() -> None:
    """MFSA prints the coarse step as MRU(Z_VA, Z-check) (its own output); MEA's Eq. 10 feeds
    it the mixed-grained output Z-hat, and so does this model: the coarse MRU's target input is
    exactly what the mixed MRU returned, for every target modality."""
    model = _model().eval()
    layer = model.hca[0]
    seen: dict[str, dict[str, torch.Tensor]] = {"mixed": {}, "coarse": {}}
    hooks = []
    for t in MODALITIES:
        hooks.append(
            layer.mixed[t].register_forward_hook(
                lambda _m, _a, out, t=t: seen["mixed"].__setitem__(t, out[0])
            )
        )
        hooks.append(
            layer.coarse[t].register_forward_pre_hook(
                lambda _m, args, t=t: seen["coarse"].__setitem__(t, args[2])
            )
        )
    with torch.no_grad():
        model(_batch())
    for h in hooks:
        h.remove()
    for t in MODALITIES:
        assert torch.equal(seen["coarse"][t], seen["mixed"][t]), t


# ---------------------------------------------------------------- fusion, Sec. 3.6
def _transformer_layer_by_hand(layer: torch.nn.TransformerEncoderLayer, x: torch.Tensor) -> torch.Tensor:
    """A vanilla post-norm encoder layer [Vaswani et al.] written out with the layer's weights."""
    d = x.shape[-1]
    k = layer.self_attn.num_heads
    q, key, v = (x @ layer.self_attn.in_proj_weight.T + layer.self_attn.in_proj_bias).split(d, -1)

    def heads(t: torch.Tensor) -> torch.Tensor:
        return t.view(x.shape[0], x.shape[1], k, d // k).transpose(1, 2)

    w = torch.softmax(heads(q) @ heads(key).transpose(-1, -2) / math.sqrt(d // k), dim=-1)
    att = (w @ heads(v)).transpose(1, 2).reshape(x.shape)
    att = att @ layer.self_attn.out_proj.weight.T + layer.self_attn.out_proj.bias
    x1 = F.layer_norm(x + att, (d,), layer.norm1.weight, layer.norm1.bias, layer.norm1.eps)
    ff = layer.linear2(torch.relu(layer.linear1(x1)))
    return F.layer_norm(x1 + ff, (d,), layer.norm2.weight, layer.norm2.bias, layer.norm2.eps)


def test_fusion_is_one_transformer_layer_over_the_six_vectors_then_fc() -> None:
    model = _model().eval()
    captured = {}
    hook = model.fusion.register_forward_hook(
        lambda _m, args, out: captured.update(tokens=args[0], fused=out)
    )
    with torch.no_grad():
        out = model(_batch())
    hook.remove()
    order = [out.reps["exclusive"][m] for m in MODALITIES] + [
        out.reps["agnostic"][m] for m in MODALITIES
    ]  # h_fin = [h^s_L, h^s_V, h^s_A, h^a_L, h^a_V, h^a_A]
    assert torch.equal(captured["tokens"], torch.stack(order, dim=1))
    with torch.no_grad():
        expect = _transformer_layer_by_hand(model.fusion.layer, captured["tokens"]).flatten(1)
        assert torch.allclose(captured["fused"], expect, atol=1e-5)
        assert torch.allclose(out.pred, model.head(expect), atol=1e-5)
    assert model.head[0].in_features == 6 * 12  # h_fin in R^{6 d_h}


def test_the_six_vectors_interact_in_the_fusion() -> None:
    """Changing one vector (h^a_V) changes the fused slots of the others: the transformer
    attends across the six tokens (the one-token reading would be a fixed linear map)."""
    model = _model().eval()
    tokens = torch.randn(2, 6, 12)
    moved = tokens.clone()
    moved[:, 4] += 1.0
    with torch.no_grad():
        a, b = model.fusion(tokens).view(2, 6, 12), model.fusion(moved).view(2, 6, 12)
    others = [0, 1, 2, 3, 5]
    assert not torch.allclose(a[:, others], b[:, others], atol=1e-4)


# ---------------------------------------------------------------- losses, Eq. 16
def test_total_loss_is_eq_16_with_l1_task_and_per_sample_sep() -> None:
    model = _model(dropout=0.0, attn_dropout=0.0)
    batch = _batch()
    out = model(batch)
    assert set(out.losses) == {"task", "sep", "agn", "spe", "imp"}
    assert torch.allclose(out.losses["task"], (out.pred - batch.labels).abs().mean().detach())
    present = {m: batch.masks[m].any(dim=1) for m in MODALITIES}
    sep = sample_separation_loss(
        out.reps["exclusive"], out.reps["agnostic"], present, model.cfg.sep_batch
    )
    assert torch.allclose(out.losses["sep"], sep.detach())
    cfg, t = model.cfg, out.losses
    expect = t["task"] + cfg.alpha * t["sep"] + cfg.beta * (t["agn"] + t["spe"]) + t["imp"]
    assert torch.allclose(out.loss.detach(), expect)  # Eq. 16 (+ D_i's own term)
    assert model(_batch(labels=False)).loss is None


def test_a_sample_with_no_data_changes_no_loss_term() -> None:
    model = _model().eval()
    seqs = random_sequences(DIMS, LENGTHS)
    y = torch.randn(4, 1)
    more = {m: [*seqs[m], torch.zeros(0, DIMS[m])] for m in MODALITIES}
    y_more = torch.cat([y, torch.full((1, 1), float("nan"))])
    with torch.no_grad():
        a, b = model(pad_batch(seqs, y)), model(pad_batch(more, y_more))
    assert torch.allclose(a.pred, b.pred[:4], atol=1e-5)
    assert a.losses.keys() == b.losses.keys()
    for k in a.losses:
        assert torch.allclose(a.losses[k], b.losses[k], atol=1e-5), k


# ---------------------------------------------------------------- Table 4 switches
FULL = {"task", "sep", "agn", "spe", "imp"}
TABLE_4 = {
    "sep": ("w/o L_sep", FULL - {"sep"}),
    "adv": ("w/o L_agn + L_spe", {"task", "sep"}),
    "specific": ("w/o Modality-Specific", {"task", "agn", "imp"}),
    "agnostic": ("w/o Modality-Agnostic", {"task", "spe"}),
    "psa": ("w/o PSA Module", FULL),
    "chain": ("w/o Prediction Chain", FULL),
    "wal": ("w/o Weighted Attention Layer", FULL),  # Table 4 abbreviates it "w/o WAL"
    "hca": ("w/o HCA Module", FULL),
    "mru-mixed": ("w/o MRU (Mixed-grained)", FULL),
    "mru-coarse": ("w/o MRU (Coarse-grained)", FULL),
    "mru-fine": ("w/o MRU (Fine-grained)", FULL),
}


def test_the_switches_are_table_4_in_order() -> None:
    assert [(s.name, s.table_row) for s in SWITCHES.switches] == [
        (name, row) for name, (row, _) in TABLE_4.items()
    ]


@pytest.mark.parametrize("switch", list(TABLE_4))
def test_each_table_4_row_computes_what_it_says(switch: str) -> None:
    model = _model(ablations=switch)
    out = model(_batch())
    assert set(out.losses) == TABLE_4[switch][1]
    p = parts(model.cfg.ablations)
    assert model.head[0].in_features == p.tokens * 12
    if switch in ("specific", "agnostic"):  # only the other representation is fused
        assert p.tokens == 3 and set(out.reps) == {"exclusive", "agnostic"} - {
            "exclusive" if switch == "specific" else "agnostic"
        }
    if switch == "agnostic":
        assert model.discriminators.importance is None  # no h^a, no omega


def test_cli_info_prints_the_model_size() -> None:
    res = CliRunner().invoke(app, ["info", "--model", "mfsa", "--dataset", "mosi", "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    model = create_model("mfsa", config_for("mfsa", "mosi"))
    assert info["parameters"] == sum(p.numel() for p in model.parameters())
    assert info["config"]["d_h"] == 128 and info["config"]["psa_layers"] == 5
    assert "fusion transformer layer (Sec. 3.6)" in info["components"]
    assert info["training"]["batch_size"]["source"] == "MFSA (ACM MM 2022) Sec. 4.2"


# ---------------------------------------------------------------- end to end
def _mea(*args: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    r = warm.run(list(args), cwd=cwd, env=env)
    assert r.returncode == 0, (args, r.stdout[-3000:], r.stderr[-3000:])
    return r.stdout


@pytest.mark.slow
def test_mea_train_model_mfsa_from_the_command_line(tmp_path: Path) -> None:
    """``mea synth --like mosi`` -> ``mea train --model mfsa`` (every component on, narrow and
    shallow via --set) -> ``mea eval``: the baseline it prints is the training-mean predictor's,
    and ``--paper`` shows MFSA's printed row marked not comparable, with its deviations. That
    MFSA learns (clearly below the training mean) is shown once for every model by
    test_compare_models.py."""
    store = tmp_path / "mosi.h5"
    _mea("synth", "--like", "mosi", "--n", "48", "--seed", "1", "--max-seconds", "2",
         "--out", str(store), cwd=tmp_path)  # fmt: skip
    _mea("train", str(store), "--dataset", "mosi", "--model", "mfsa", "--epochs", "2",
         "--name", "mfsa", "--seeds", "1111",
         "--set", "d=16", "--set", "heads=2", "--set", "d_h=16", "--set", "fusion_heads=2",
         "--set", "psa_layers=1", "--set", "hca_layers=1",
         "--set", "train.batch_size=16", cwd=tmp_path)  # fmt: skip
    run = tmp_path / "runs" / "mfsa"
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "mfsa" and config["model_config"]["task_loss"] == "l1"
    out = json.loads(_mea("eval", str(run / "ckpt.pt"), "--json", cwd=tmp_path))
    with FeatureStore(store) as s:
        train = s.samples.label[s.split_indices("train"), 0]
        test = s.samples.label[s.split_indices("test"), 0]
    base = regression_metrics(np.full_like(test, train.mean()), test)
    assert out["baseline_train_mean"]["mae"] == pytest.approx(base["mae"])
    table = _mea("eval", str(run), "--paper", cwd=tmp_path)
    assert "MFSA (paper, not comparable)" in table
    # the model's declared deviations from its paper, under the table
    assert "Deviations from the papers" in table
    assert "MFSA: Eq. 10's coarse step refines the mixed-grained output" in table
    assert "MFSA: L_sep = sep_batch x the per-sample mean of Eq. 13" in table


@pytest.mark.slow
def test_mea_ablate_on_an_mfsa_run_uses_table_4(tmp_path: Path) -> None:
    """``mea ablate --paper`` on an ``mfsa`` run retrains MFSA's own switches (not MEA's Table V
    rows) and prints Table 4's MOSI values beside them; an MEA-only switch is refused."""
    store = tmp_path / "synth.h5"
    write_synthetic(store, "mosi", n=30, seed=5, max_seconds=2.0)
    train_run(
        TrainRequest(features=store, dataset="mosi", model="mfsa", seeds=[1],
                     model_overrides={**SMALL, "d_h": 8, "psa_layers": 1},
                     train_overrides={"epochs": 1}, name="base", runs_dir=tmp_path / "runs",
                     live=False)
    )  # fmt: skip
    runs = str(tmp_path / "runs")
    md = _mea("ablate", "--runs-dir", runs, "--run", "base", "--drop", "sep", "--drop", "specific",
              "--paper", "--format", "md", cwd=tmp_path)  # fmt: skip
    assert "Ablation of mfsa on mosi (synthetic data)" in md
    for label in ("MFSA (Full)", "w/o L_sep", "w/o Modality-Specific"):
        assert f"| {label} |" in md, label
    assert "| 41.4 | 83.3 | 83.7 | 0.856 | 0.722 |" in md  # Table 4, full model
    assert "| 38.6 | 81.2 | 81.5 | 0.898 | 0.708 |" in md  # Table 4, w/o Modality-Specific
    assert "Table 4" in md and "ACM MM 2022" in md
    assert "Deviations from the papers" in md
    assert "- MFSA: Eq. 10's coarse step refines the mixed-grained output" in md
    for row, switch in (("sep", ["sep"]), ("specific", ["specific"])):
        cfg = json.loads((tmp_path / "runs/base/ablation" / row / "1/config.json").read_text())
        assert cfg["model"] == "mfsa" and cfg["model_config"]["ablations"] == switch
    with pytest.raises(AblationError, match="model 'mfsa' has no ablation switch 'dgf'.*mru-fine"):
        ablate(tmp_path / "runs", "base", ["dgf"])  # MEA's DGF row is not MFSA's
