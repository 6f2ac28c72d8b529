"""``mea compare`` on custom tasks (only the task's own metrics, no empty tables or panels) and
cross-validated over grouped folds (``--folds``: mean ± std and paired t-test over folds)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import tiny_model
from test_splits import write_store
from typer.testing import CliRunner

from mea_cli.ablate.compare import CompareError, compare, plan_compare
from mea_cli.ablate.compare_folds import fold_means
from mea_cli.ablate.compare_table import paired_p_value
from mea_cli.ablate.runner import Job
from mea_cli.ablate.table import present_metrics
from mea_cli.artifacts.features import FeatureStore
from mea_cli.cli import app
from mea_cli.data.splits import leaked_groups, store_groups
from mea_cli.train.setup import TrainRequest, read_store_facts, resolve_config

MEA_TINY = ["--set=mea.d=8", "--set=mea.heads=2", "--set=mea.d_h=8", "--set=mea.psa_layers=1",
            "--set=mea.hca_layers=1"]  # fmt: skip


def test_help_mentions_custom_tasks_and_folds() -> None:
    out = CliRunner().invoke(app, ["compare", "--help"], env={"COLUMNS": "200"}).stdout
    assert "custom" in out and "--folds" in out and "--split-by" in out


def test_metrics_no_model_has_are_left_out() -> None:
    nan = float("nan")
    results = {"a": {1: {"mae": 0.5, "acc7": nan}}, "b": {1: {"mae": 0.4}}}
    assert present_metrics(["mae", "acc7", "corr"], results) == ["mae"]
    assert fold_means({1: {"acc": 0.5, "corr": nan}, 2: {"acc": 0.7, "corr": 0.2}}) == {
        "acc": pytest.approx(0.6),
        "corr": pytest.approx(0.2),
    }


@pytest.mark.slow
def test_compare_folds_on_a_custom_classification_task(tmp_path: Path, mea, one_torch_thread) -> None:
    store = write_store(tmp_path / "cls.h5")  # 6 speakers, 3 classes, no splits of its own
    runs = tmp_path / "runs"
    with tiny_model.registered():
        code, out, err = mea(
            "compare", str(store), "--dataset", "custom", "--models", "mea,tiny", "--seeds", "2",
            "--epochs", "1", "--folds", "3", "--split-by", "speaker", *MEA_TINY,
            "--runs-dir", str(runs), "--name", "cv", "--device", "cpu", "--format", "md",
            "--preset", "small",
        )  # fmt: skip
    assert code == 0, err
    top = runs / "cv"
    md = (top / "compare.md").read_text()
    assert out == md
    assert "3 folds grouped by speaker, --preset small" in md
    # every fold's MEA run trained with --preset small (its batch size; d from --set mea.d=8)
    for k in ("1", "2", "3"):
        cfg = json.loads((top / "folds" / k / "mea" / "1111" / "config.json").read_text())
        assert cfg["preset"] == "small" and cfg["train"]["batch_size"] == 32
        assert cfg["model_config"]["d"] == 8 and cfg["model_config"]["ablations"] == ["dgf"]
    # the task's own metrics, and only those
    heads = [line for line in md.splitlines() if line.startswith("### ")]
    assert heads == [
        "### Acc (higher is better)",
        "### F1 (macro) (higher is better)",
        "### F1 (weighted) (higher is better)",
    ]
    means = [line.split(" | ")[1] for line in md.splitlines() if line.startswith("| mea |")]
    assert len(means) == 3 and all("±" in c for c in means)  # no all-n/a table
    assert "over folds" in md and "3 folds grouped by speaker" in md
    summary = json.loads((top / "folds.json").read_text())
    # each fold is a full comparison on its own split store, without a group in two splits
    per_model: dict[str, list[float]] = {"mea": [], "tiny": []}
    for f in summary["folds"]:
        fold = top / "folds" / f["fold"]
        with FeatureStore(fold / "features.h5") as fs:
            groups, _ = store_groups(fs, "speaker")
            assert leaked_groups(groups, fs.samples.split) == []
        for m in per_model:
            seeds = [json.loads((fold / m / str(s) / "metrics.json").read_text())["test"]["f1_macro"]
                     for s in (1111, 1112)]  # fmt: skip
            per_model[m].append(float(np.mean(seeds)))  # a fold's value: mean over its seeds
    rows = {r["model"]: r for r in csv.DictReader(io.StringIO((top / "compare.csv").read_text()))
            if r["metric"] == "f1_macro"}  # fmt: skip
    for m, vals in per_model.items():
        assert float(rows[m]["mean"]) == pytest.approx(np.mean(vals), abs=1e-5)
        assert float(rows[m]["std"] or "nan") == pytest.approx(np.std(vals, ddof=1), abs=1e-5, nan_ok=True)
        assert rows[m]["seeds"] == "1 2 3"  # the folds
    p = paired_p_value(per_model["mea"], per_model["tiny"])
    assert (rows["tiny"]["p_value"] == "") if np.isnan(p) else float(rows["tiny"]["p_value"]) == pytest.approx(p, rel=1e-4)
    assert (top / "compare.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_compare_on_a_custom_regression_task_lists_only_its_metrics(
    tmp_path: Path, mea, one_torch_thread
) -> None:
    store = write_store(tmp_path / "reg.h5", task="regression")  # labels -1, 0, 1
    runs = tmp_path / "runs"
    with tiny_model.registered():
        code, out, err = mea(
            "compare", str(store), "--dataset", "custom", "--models", "tiny,mea", "--seeds", "1",
            "--epochs", "1", "--split-by", "speaker", *MEA_TINY, "--runs-dir", str(runs),
            "--name", "reg", "--device", "cpu", "--format", "md",
        )  # fmt: skip
    assert code == 0, err
    heads = [line[4:].split(" (")[0] for line in out.splitlines() if line.startswith("### ")]
    assert heads == ["MAE", "Corr", "Acc-3", "Acc-2", "F1"]  # range -1..1: 3 classes
    assert "non0" not in out and "has0" not in out and "Acc-7" not in out
    with FeatureStore(runs / "reg" / "split.h5") as fs:
        assert leaked_groups(store_groups(fs, None)[0], fs.samples.split) == []
    spec = json.loads((runs / "reg" / "compare.json").read_text())
    assert spec["label_range"] == [-1.0, 1.0] and spec["dataset"] == "custom"


def test_preset_small_plans_each_model_as_mea_train_preset_small(synth_mosi: Path, tmp_path: Path) -> None:
    jobs, spec = plan_compare(synth_mosi, "mosi", ["mea", "mult"], [1], tmp_path, preset="small")
    paper, _ = plan_compare(synth_mosi, "mosi", ["mea", "mult"], [1], tmp_path)
    assert spec["preset"] == "small" and [j.preset for j in jobs] == ["small", "small"]
    facts = read_store_facts(synth_mosi, "mosi")
    for job, job_paper in zip(jobs, paper, strict=True):
        want = resolve_config(TrainRequest(synth_mosi, "mosi", job.model, preset="small"), facts, "x")
        assert dict(job.expected_model_config) == want.model_config
        assert dict(job.expected_train) == want.train
        assert job.expected_model_config != job_paper.expected_model_config  # smaller models
    assert jobs[0].expected_model_config["d"] == 32 and jobs[0].expected_train["batch_size"] == 32


def test_a_comparison_is_not_continued_under_another_preset(synth_mosi: Path, tmp_path: Path) -> None:
    def stub(job: Job) -> dict:
        return {"valid": {}, "test": {"mae": 1.0, "corr": 0.5}}

    compare(synth_mosi, "mosi", ["mea", "mult"], 1, tmp_path, "c", train_fn=stub)
    with pytest.raises(CompareError, match="another preset"):
        compare(synth_mosi, "mosi", ["mea", "mult"], 1, tmp_path, "c", train_fn=stub, preset="small")
    assert json.loads((tmp_path / "c" / "compare.json").read_text())["preset"] == "paper"


def test_compare_fold_requests_that_cannot_run_leave_nothing(tmp_path: Path, mea) -> None:
    store = write_store(tmp_path / "cls.h5")
    runs = tmp_path / "runs"
    base = ["compare", str(store), "--dataset", "custom", "--runs-dir", str(runs), "--name", "x"]
    for extra, message in (
        (["--models", "mea,mult", "--folds", "9"], "--folds 9 needs at least 9 groups"),
        (["--models", "mea,mult", "--folds", "3", "--paper"], "do not apply to cross-validated folds"),
        (["--models", "mea", "--folds", "3"], "at least two distinct models"),
        (["--models", "mea,mult", "--split-by", "session"], "groups by 'speaker'"),
        (["--models", "mea,mult", "--preset", "tiny"], "--preset: must be one of paper, small"),
        (["--models", "mea,mult", "--preset", "small", "--paper"], "not --preset small"),
    ):
        code, _, err = mea(*base, *extra)
        assert code == 2 and message in err and err.count("\n") == 1, (extra, err)
        assert not (runs / "x").exists()
