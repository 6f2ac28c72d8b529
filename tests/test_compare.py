"""``mea compare``: per-metric tables, paired t-tests (checked against scipy), files, reuse;
and a second model registered the obvious way working with compare, ablate and viz."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tiny_model
import torch
from scipy import stats
from typer.testing import CliRunner

from mea_cli.ablate.api import ablate
from mea_cli.ablate.compare import CompareError, compare, parse_compare_sets, plan_compare
from mea_cli.ablate.compare_table import MARK, build_tables, paired_p_value
from mea_cli.ablate.errors import AblationError
from mea_cli.cli import app
from mea_cli.config import ConfigError
from mea_cli.data.synth import write_synthetic
from mea_cli.errors import MeaError
from mea_cli.models.core.registry import CapabilityError
from mea_cli.viz.api import make

MEA_TINY = {"d": 8, "heads": 2, "d_h": 8, "psa_layers": 1, "hca_layers": 1}


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------ tables and statistics
def test_paired_t_test_is_scipys_and_undefined_cases_are_nan() -> None:
    a, b = [0.40, 0.42, 0.39, 0.45], [0.35, 0.41, 0.30, 0.40]
    assert paired_p_value(a, b) == pytest.approx(stats.ttest_rel(b, a).pvalue, rel=1e-12)
    assert np.isnan(paired_p_value([0.4], [0.3]))  # one pair: no test
    assert np.isnan(paired_p_value([0.4, 0.5], [0.3, 0.4]))  # constant difference: undefined
    assert paired_p_value([0.4, np.nan, 0.5, 0.45], [0.3, 0.2, 0.41, 0.2]) == pytest.approx(
        stats.ttest_rel([0.3, 0.41, 0.2], [0.4, 0.5, 0.45]).pvalue
    )


def test_tables_mark_significance_and_say_n_1() -> None:
    results = {
        "mea": {1: {"acc7": 0.40, "mae": 0.9}, 2: {"acc7": 0.42, "mae": 0.8}, 3: {"acc7": 0.41, "mae": 0.85}},
        "other": {1: {"acc7": 0.30, "mae": 0.91}, 2: {"acc7": 0.33, "mae": 0.79}, 3: {"acc7": 0.31, "mae": 0.86}},
        "single": {1: {"acc7": 0.5, "mae": 0.7}},
    }  # fmt: skip
    t = build_tables("cmp", results, ["acc7", "mae"], paper={"mea": {"acc7": 42.5}})
    acc7, mae = t.tables
    p = stats.ttest_rel([0.30, 0.33, 0.31], [0.40, 0.42, 0.41]).pvalue
    assert acc7.rows[1].p_value == pytest.approx(p) and p <= 0.05
    assert mae.rows[1].p_value > 0.05
    md = t.to_markdown()
    assert f"| other | 31.3 ± 1.5{MARK} | -9.7 | {p:.3g} | 1,2,3 | - |" in md
    assert "| mea | 41.0 ± 1.0 | - | - | 1,2,3 | 42.5 |" in md
    assert "| single | 50.0 (n=1) | +9.0 | n/a (n=1) | 1 | - |" in md
    assert "± 0.0 |" not in md and "± 0.000 |" not in md and "MAE (lower is better)" in md
    rows = list(csv.DictReader(io.StringIO(t.to_csv())))
    other = next(r for r in rows if r["metric"] == "acc7" and r["model"] == "other")
    assert float(other["p_value"]) == pytest.approx(p, rel=1e-5) and other["significant"] == "1"
    single = next(r for r in rows if r["model"] == "single")
    assert single["std"] == "" and single["n"] == "1" and single["p_value"] == ""
    tex = t.to_latex()
    assert "$^{\\dagger}$" in tex and tex.count("\\begin{tabular}") == 2


def test_compare_refuses_what_it_cannot_do(synth_mosi: Path, tmp_path: Path) -> None:
    with pytest.raises(CompareError, match="at least two distinct models"):
        plan_compare(synth_mosi, "mosi", ["mea", "mea"], [1], tmp_path)
    with pytest.raises(MeaError, match="unknown model .nope."):
        plan_compare(synth_mosi, "mosi", ["mea", "nope"], [1], tmp_path)
    with (
        pytest.raises(CompareError, match="overrides for mult, which is not in --models"),
        tiny_model.registered(),
    ):
        plan_compare(synth_mosi, "mosi", ["mea", "tiny"], [1], tmp_path, {"mult": {"d": 1}})
    assert parse_compare_sets(["train.lr=1e-3", "mea.d=8"], ["mea", "tiny"]) == (
        {"lr": 1e-3},
        {"mea": {"d": 8}},
    )
    with pytest.raises(ConfigError, match="<model>.<field>=value with a model of --models"):
        parse_compare_sets(["d=8"], ["mea", "tiny"])


# ------------------------------------------------------------------ end to end
@pytest.mark.slow
def test_compare_mea_with_a_second_model_end_to_end(tmp_path: Path) -> None:
    store = tmp_path / "synth.h5"
    write_synthetic(store, "mosi", n=36, seed=9, max_seconds=2.0)
    runs = tmp_path / "runs"
    with tiny_model.registered():
        # the command line, in process (the test model is registered in this process only)
        sets = [f"--set=mea.{k}={v}" for k, v in MEA_TINY.items()]
        cli = CliRunner().invoke(
            app,
            ["compare", str(store), "--dataset", "mosi", "--models", "mea,tiny", "--seeds", "2",
             "--epochs", "1", "--set", "train.batch_size=12", *sets, "--runs-dir", str(runs),
             "--device", "cpu", "--format", "md", "--paper"],
        )  # fmt: skip
        assert cli.exit_code == 0, (cli.output, cli.exception)
        out = runs / "compare-mosi-synth"
        assert cli.stdout == (out / "compare.md").read_text()
        assert "### MAE (lower is better)" in cli.stdout and "| tiny |" in cli.stdout
        assert "synthetic data, not MOSI, so they are not comparable" in cli.stdout
        for f in ("compare.csv", "compare.tex", "compare.json"):
            assert (out / f).is_file()
        assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG"
        # every model on the same store, splits and seeds, each with its own config
        for model in ("mea", "tiny"):
            for seed in (1111, 1112):
                cfg = json.loads((out / model / str(seed) / "config.json").read_text())
                assert cfg["model"] == model and cfg["seeds"] == [seed]
                assert cfg["features"] == str(store.resolve()) and cfg["train"]["epochs"] == 1
        assert json.loads((out / "mea" / "1111" / "config.json").read_text())["model_config"]["d"] == 8

        # the p-values are scipy's paired t-test on the per-seed test metrics
        per_seed = {
            m: {s: json.loads((out / m / str(s) / "metrics.json").read_text())["test"]
                for s in (1111, 1112)}
            for m in ("mea", "tiny")
        }  # fmt: skip
        rows = list(csv.DictReader(io.StringIO((out / "compare.csv").read_text())))
        for r in rows:
            if r["model"] != "tiny":
                continue
            a = [per_seed["mea"][s][r["metric"]] for s in (1111, 1112)]
            b = [per_seed["tiny"][s][r["metric"]] for s in (1111, 1112)]
            want = stats.ttest_rel(b, a).pvalue
            d = np.subtract(b, a)
            if np.allclose(d, d[0], rtol=1e-9, atol=1e-12):  # t = 0/0: undefined, left empty
                assert r["p_value"] == "", r["metric"]
            elif np.isfinite(want):
                assert float(r["p_value"]) == pytest.approx(want, rel=1e-5), r["metric"]
            assert float(r["mean"]) == pytest.approx(np.mean(b), rel=1e-5)

        # the same command again: nothing retrained, same tables
        again = compare(store, "mosi", ["mea", "tiny"], 2, runs, with_paper=True,
                        model_overrides={"mea": MEA_TINY},
                        train_overrides={"epochs": 1, "batch_size": 12})  # fmt: skip
        events = [json.loads(x) for x in (out / "events.jsonl").read_text().splitlines()]
        assert [e["event"] for e in events] == ["trained"] * 4 + ["cached"] * 4
        assert again.tables.to_markdown() == (out / "compare.md").read_text()
        with pytest.raises(CompareError, match="another train_overrides"):
            compare(store, "mosi", ["mea", "tiny"], 1, runs, train_overrides={"epochs": 2})

        # the second model with ablate and viz: its own switches, its own capabilities
        tiny_run = out / "tiny" / "1111"
        with pytest.raises(AblationError, match="model 'tiny' has no ablation switch 'psa'; its switches: no-audio"):
            ablate(runs, tiny_run, ["psa"])
        result = ablate(runs, tiny_run, ["no-audio"])
        assert [r.key for r in result.table.rows] == ["full", "no-audio"]
        row_cfg = json.loads((tiny_run / "ablation" / "no-audio" / "1111" / "config.json").read_text())
        assert row_cfg["model_config"]["ablations"] == ["no-audio"]
        # valid beside test: the row's valid metrics come from its job's metrics.json
        assert result.table.metrics[:2] == ["valid_acc7", "acc7"]
        row = json.loads((tiny_run / "ablation" / "no-audio" / "1111" / "metrics.json").read_text())
        assert result.table.rows[1].stats["valid_mae"].mean == pytest.approx(row["valid"]["mae"])
        assert "valid Acc-7" in result.files["md"].read_text()
        with pytest.raises(CapabilityError, match=r"mea viz --what wal: model 'tiny' provides no modality weights"):
            make(tiny_run / "ckpt.pt", ["wal"], tmp_path / "viz")
        assert make(tiny_run / "ckpt.pt", ["curves"], tmp_path / "viz")[0].png.is_file()
        assert make(out / "mea" / "1111" / "ckpt.pt", ["wal"], tmp_path / "viz")[0].png.is_file()
