"""The multi-run commands (compare, sweep, tune, viz, train --folds) after an audit: nothing
reused that another command configured, no table overwritten by another kind, honest metrics
and labels. Fast: the closed-form ``functionals`` baseline or a stub trainer on tiny stores."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import optuna
import pytest
from rich.console import Console
from sklearn.metrics import f1_score
from test_splits import DIMS, write_store

from mea_cli.ablate.api import sweep
from mea_cli.ablate.compare import CompareError, compare, plan_compare
from mea_cli.ablate.compare_folds import compare_folds
from mea_cli.ablate.runner import Job, train_job
from mea_cli.artifacts.features import ExtractorInfo, FeatureStoreWriter, ModalitySchema, Sample
from mea_cli.data.splits import SplitPlan, missing_classes
from mea_cli.errors import MeaError
from mea_cli.models.core.registry import config_from_dict, get_entry
from mea_cli.train import trainer as trainer_module
from mea_cli.train.config import TrainSettings
from mea_cli.train.folds import missing_warning, plan_split_stores, train_folds
from mea_cli.train.metrics import multiclass_metrics
from mea_cli.train.setup import TrainRequest, read_store_facts, resolve_config
from mea_cli.train.trainer import train_run
from mea_cli.tune.space import SpaceError, build_space
from mea_cli.tune.study import ATTR, TuneError, TuneRequest, open_study, signature
from mea_cli.viz.api import make
from mea_cli.viz.curves import CHOSEN_GID, curves_figure, read_chosen, read_curves

CLASSES = ("a", "b", "c")


def speaker_classes(path: Path, n: int = 36, groups: int = 6) -> Path:
    """A store whose class is its speaker's (``spk<g>`` has class ``g % 3``): grouped folds of
    two speakers each lack a class in some split."""
    rng = np.random.default_rng(1)
    schemas = [
        ModalitySchema(m, tuple(f"{m}{i}" for i in range(d)), ExtractorInfo("test", "0", {}), 10.0)
        for m, d in DIMS.items()
    ]
    with FeatureStoreWriter(
        path, schemas, dataset="test", task="multiclass", label_names=CLASSES,
        attrs={"group_by": "speaker"},
    ) as w:  # fmt: skip
        for i in range(n):
            g = i % groups
            c = g % 3
            feats = {m: (rng.normal(size=(4, d)) + 2 * c).astype(np.float32) for m, d in DIMS.items()}
            w.add(Sample(id=f"s{i:02d}", features=feats, video=f"v{i // 2}",
                         label=np.eye(3, dtype=np.float32)[c], group=f"spk{g}"))  # fmt: skip
    return path


def stub(job: Job) -> dict:
    """A trainer that trains nothing: the same metrics for every job."""
    return {"valid": {"mae": 1.0}, "test": {"mae": 1.0, "corr": 0.5, "acc": 0.5, "f1_macro": 0.5}}


# ------------------------------------------------------------------ 1. train --folds reuse
def test_train_folds_refuses_folds_trained_with_other_settings(tmp_path: Path, mea) -> None:
    store = speaker_classes(tmp_path / "spk.h5")
    runs = tmp_path / "runs"
    args = ["train", str(store), "--task", "classification", "--model", "functionals",
            "--folds", "3", "--runs-dir", str(runs), "--name", "cv", "--device", "cpu"]  # fmt: skip
    code, out, err = mea(*args)
    assert code == 0, err
    # 4. the splits that lack a class: one warning line, a note in the table and folds.json
    assert err.count("warning: some splits lack a class") == 1
    assert "fold 1 test: c" in err
    md = (runs / "cv" / "folds.md").read_text()
    assert "Note: Some splits lack a class (fold 1 valid: a, b; fold 1 test: c" in md
    summary = json.loads((runs / "cv" / "folds.json").read_text())
    assert summary["folds"][0]["missing_classes"] == {"valid": ["a", "b"], "test": ["c"]}
    logs = {p: p.read_text() for p in (runs / "cv" / "folds").rglob("log.jsonl")}
    for extra, said in (
        (["--set", "max_iter=5"], "model.max_iter 2000, not 5"),
        (["--seeds", "7"], "--seeds [1111], not [7]"),
        (["--preset", "small"], "--preset paper, not small"),
    ):
        code, _, err = mea(*args, *extra)
        assert code == 2 and err.count("\n") == 1, err
        assert "runs/cv/folds/1 was trained with other settings" in err and said in err, err
    # an interrupted fold (no metrics.json) is not resumed under other settings either
    for done in (runs / "cv" / "folds").glob("*/metrics.json"):
        done.unlink()
    code, _, err = mea(*args, "--epochs", "3")
    assert code == 2 and "train.epochs" in err, err
    assert {p: p.read_text() for p in logs} == logs  # nothing trained, nothing rewritten
    code, _, err = mea(*args)  # the same settings resume
    assert code == 0 and all((runs / "cv" / "folds" / k / "metrics.json").is_file() for k in "123")
    # a fold written by an earlier version (before --preset, before a field existed) is read
    # as --resume reads it: the field at its default is the same setting, not another one
    saved = runs / "cv" / "folds" / "1" / "config.json"
    cfg = json.loads(saved.read_text())
    defaults = TrainSettings().to_dict()
    field = next(k for k, v in cfg["train"].items() if k in defaults and defaults[k] == v)
    del cfg["train"][field], cfg["preset"]
    saved.write_text(json.dumps(cfg))
    code, _, err = mea(*args)
    assert code == 0, err


def test_a_grouped_split_run_is_not_resumed_under_other_settings(tmp_path: Path, mea) -> None:
    store = write_store(tmp_path / "cls.h5")
    runs = tmp_path / "runs"
    args = ["train", str(store), "--task", "classification", "--model", "functionals",
            "--split-by", "speaker", "--runs-dir", str(runs), "--name", "g", "--device", "cpu"]  # fmt: skip
    assert mea(*args)[0] == 0
    (runs / "g" / "metrics.json").unlink()  # as if interrupted
    code, _, err = mea(*args, "--set", "max_iter=5")
    assert code == 2 and "model.max_iter 2000, not 5" in err, err


# ------------------------------------------------------------------ 2. compare: labels range
def test_compare_refuses_a_comparison_made_under_another_labels_range(
    synth_mosi: Path, tmp_path: Path
) -> None:
    compare(synth_mosi, "custom", ["mea", "mult"], 1, tmp_path, "c", train_fn=stub,
            label_range=(-3.0, 3.0))  # fmt: skip
    with pytest.raises(CompareError, match="another label_range"):
        compare(synth_mosi, "custom", ["mea", "mult"], 1, tmp_path, "c", train_fn=stub,
                label_range=(-4.0, 4.0))  # fmt: skip
    assert json.loads((tmp_path / "c" / "compare.json").read_text())["label_range"] == [-3.0, 3.0]


# ------------------------------------------------------------------ 3 and 10. sweep
@pytest.fixture
def functionals_run(synth_mosi: Path, tmp_path: Path) -> Path:
    train_run(TrainRequest(synth_mosi, "mosi", model="functionals", name="f",
                           runs_dir=tmp_path / "runs", live=False, device="cpu"))  # fmt: skip
    return tmp_path / "runs"


def test_sweep_of_a_closed_form_model_claims_no_effect_never(functionals_run: Path) -> None:
    (res,) = sweep(functionals_run, "f", ["max_iter=1,2000"], seeds=2, train_fn=stub)
    assert not any("NO EFFECT" in n for n in res.table.notes)  # its fields act in the fit


def test_a_narrower_sweep_keeps_the_earlier_rows_in_the_table(
    functionals_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep(functionals_run, "f", ["max_iter=2000,1"], seeds=2, train_fn=stub)
    (again,) = sweep(functionals_run, "f", ["max_iter=1"], seeds=1, train_fn=stub)
    assert [r.label for r in again.table.rows] == ["max_iter = 1", "max_iter = 2000"]
    assert [r.stats["mae"].n for r in again.table.rows] == [2, 2]
    rows = list(csv.DictReader((functionals_run / "f" / "sweep-max_iter.csv").open()))
    assert [r["key"] for r in rows] == ["max_iter=1", "max_iter=2000"]
    assert "the table also shows the earlier finished jobs of max_iter" in capsys.readouterr().err


# ------------------------------------------------------------------ 4. macro F1
def test_macro_f1_counts_only_the_classes_present() -> None:
    names = ["a", "b", "c"]
    truth = np.eye(3)[[0, 0, 1, 1]]  # class c absent from this split
    m = multiclass_metrics(truth * 5.0, truth, names)  # perfect predictions
    assert m["f1_macro"] == 1.0 and m["f1_weighted"] == 1.0 and m["acc"] == 1.0
    # a class predicted but absent from the truth still counts (those predictions are wrong)
    logits = np.eye(3)[[0, 2, 1, 1]]
    assert multiclass_metrics(logits, truth, names)["f1_macro"] == pytest.approx((2 / 3 + 1 + 0) / 3)


def test_macro_f1_with_every_class_present_is_unchanged() -> None:
    rng = np.random.default_rng(0)
    t = np.array([0, 1, 2] * 10)
    logits = rng.normal(size=(30, 3))
    every = [0, 1, 2]
    before = f1_score(t, logits.argmax(1), labels=every, average="macro", zero_division=0)
    assert multiclass_metrics(logits, np.eye(3)[t], ["a", "b", "c"])["f1_macro"] == before


def test_planned_folds_that_lack_a_class_make_one_warning_line(tmp_path: Path) -> None:
    stores, _, _ = plan_split_stores(speaker_classes(tmp_path / "spk.h5"), SplitPlan(folds=3), tmp_path / "cv")
    line = missing_warning(stores)
    assert line.startswith("warning: some splits lack a class (fold 1 valid: a, b; fold 1 test: c")
    assert "\n" not in line and all(ps.missing.get("test") for ps in stores)
    ok, _, _ = plan_split_stores(write_store(tmp_path / "all.h5"), SplitPlan(folds=3), tmp_path / "ok")
    assert missing_warning(ok) == "" and not any(ps.missing for ps in ok)  # every class each
    labels = np.eye(3)[[0, 1, 2, 0]]
    split = np.array(["train", "train", "train", "test"], dtype=object)
    assert missing_classes("multiclass", labels, CLASSES, split) == {"test": ["b", "c"]}
    assert missing_classes("regression", labels[:, :1], ("y",), split) == {}


# ------------------------------------------------------------------ 5. one kind per folder
def test_a_fold_comparison_and_a_single_split_one_never_share_a_folder(
    synth_mosi: Path, tmp_path: Path
) -> None:
    compare(synth_mosi, "mosi", ["mea", "mult"], 1, tmp_path, "one", train_fn=stub)
    store = write_store(tmp_path / "cls.h5")
    plan = SplitPlan(by="speaker", folds=3)
    with pytest.raises(MeaError, match=r"one holds a comparison on one split .*give another --name"):
        compare_folds(store, "custom", ["mea", "mult"], 1, plan, tmp_path, "one", train_fn=stub)
    assert not (tmp_path / "one" / "folds").exists()
    compare_folds(store, "custom", ["mea", "mult"], 1, plan, tmp_path, "cv", train_fn=stub)
    table = (tmp_path / "cv" / "compare.md").read_text()
    with pytest.raises(MeaError, match=r"cv holds a cross-validated comparison"):
        compare(synth_mosi, "mosi", ["mea", "mult"], 1, tmp_path, "cv", train_fn=stub)
    assert (tmp_path / "cv" / "compare.md").read_text() == table
    assert not (tmp_path / "cv" / "compare.json").exists()


# ------------------------------------------------------------------ 6. tune: the store's sha256
def test_a_study_is_not_joined_after_its_store_changed(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path}/s.db"
    req = TuneRequest(TrainRequest(tmp_path / "a.h5", "mosi"), build_space(
        get_entry("mea").config_cls, TrainSettings, ["mu=0:0.5"]), 1, "s", storage)  # fmt: skip
    open_study(req, "mae", False, "aaa")
    with pytest.raises(TuneError, match="changed since the study began"):
        open_study(req, "mae", False, "bbb")
    # a study made before the sha256 was recorded: refused, saying why
    old = optuna.create_study(storage=storage, study_name="old")
    old.set_user_attr(ATTR, {"model": "mea"})
    with pytest.raises(TuneError, match="did not record its store's sha256"):
        open_study(TuneRequest(req.request, req.params, 1, "old", storage), "mae", False, "aaa")
    # ... unless its trials' runs show which content they saw (their config.json records it)
    runs = tmp_path / "runs"
    early = TuneRequest(TrainRequest(tmp_path / "a.h5", "mosi", runs_dir=runs), req.params, 1,
                        "early", storage)  # fmt: skip
    study = optuna.create_study(storage=storage, study_name="early")
    made = signature(early, "mae", "aaa")
    del made["features_sha256"]
    study.set_user_attr(ATTR, made)
    for k in range(2):
        trial = study.ask()
        trial.set_user_attr("run", f"early-t{k}")
        study.tell(trial, 1.0)
        (runs / f"early-t{k}").mkdir(parents=True)
        (runs / f"early-t{k}" / "config.json").write_text(json.dumps({"features_sha256": "aaa"}))
    with pytest.raises(TuneError, match="do not show that they saw this store's content"):
        open_study(early, "mae", False, "bbb")
    joined = open_study(early, "mae", False, "aaa")
    assert joined.user_attrs[ATTR]["features_sha256"] == "aaa"  # recorded: checked from now on
    with pytest.raises(TuneError, match="changed since the study began"):
        open_study(early, "mae", False, "bbb")


# ------------------------------------------------------------------ 7. tune: the run's config
def test_tune_space_is_checked_against_the_runs_own_config(
    synth_mosi: Path, tmp_path: Path, mea
) -> None:
    facts = read_store_facts(synth_mosi, "mosi", False)
    cfg = resolve_config(TrainRequest(synth_mosi, "mosi", preset="small"), facts, "x")
    own = {"model": config_from_dict("mea", cfg.model_config)}
    cls = get_entry("mea").config_cls
    with pytest.raises(SpaceError, match="d=32 must be divisible by heads=5"):
        build_space(cls, TrainSettings, ["heads=5,10"], resolved=own)
    build_space(cls, TrainSettings, ["heads=4,8"], resolved=own)
    runs = tmp_path / "runs"
    code, _, err = mea("tune", str(synth_mosi), "--dataset", "mosi", "--preset", "small",
                       "--space", "heads=5,10", "--trials", "1", "--epochs", "1",
                       "--runs-dir", str(runs), "--device", "cpu")  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and "d=32" in err, err
    assert not runs.exists()


def test_a_trial_folder_left_by_another_study_says_pick_another_study(
    synth_mosi: Path, tmp_path: Path, mea
) -> None:
    runs = tmp_path / "runs"
    (runs / "sx-t0").mkdir(parents=True)
    (runs / "sx-t0" / "config.json").write_text("{}")
    code, _, err = mea("tune", str(synth_mosi), "--dataset", "mosi", "--space", "mu=0:0.5",
                       "--study", "sx", "--trials", "1", "--runs-dir", str(runs),
                       "--device", "cpu")  # fmt: skip
    assert code == 2 and "pick another --study" in err and "--resume" not in err, err


# ------------------------------------------------------------------ 8. Ctrl-C's hint
def test_ctrl_c_inside_compare_and_folds_says_rerun_the_command(
    synth_mosi: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def stop(self, resume: bool = False) -> dict:  # noqa: ANN001 - Trainer.fit's place
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer_module.Trainer, "fit", stop)
    jobs, _ = plan_compare(synth_mosi, "mosi", ["functionals", "mult"], [1112], tmp_path / "c")
    for run in (
        lambda console: train_job(jobs[0], "cpu", console=console),
        lambda console: train_folds(
            TrainRequest(write_store(tmp_path / "cls.h5"), None, "functionals",
                         task="classification", runs_dir=tmp_path, name="cv", device="cpu"),
            SplitPlan(folds=3), console,
        ),  # fmt: skip
    ):
        console = Console(record=True, width=300)
        with pytest.raises(KeyboardInterrupt):
            run(console)
        said = console.export_text()
        assert "stopped; the last completed epoch is kept: re-run the same command" in said
        assert "--resume" not in said


def test_ctrl_c_in_mea_train_names_a_runs_dir_that_is_not_the_default(
    synth_mosi: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`mea train --runs-dir other` said "continue with mea train --resume --name r1", which
    resumes runs/r1 (another run, or none)."""

    def stop(self, resume: bool = False) -> dict:  # noqa: ANN001 - Trainer.fit's place
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer_module.Trainer, "fit", stop)
    for runs_dir, said_dir in ((tmp_path / "my runs", f" --runs-dir '{tmp_path / 'my runs'}'"),
                               (Path("runs"), "")):  # fmt: skip
        monkeypatch.chdir(tmp_path)
        console = Console(record=True, width=400)
        request = TrainRequest(synth_mosi, "mosi", "functionals", runs_dir=runs_dir, name="r1",
                               device="cpu")  # fmt: skip
        with pytest.raises(KeyboardInterrupt):
            train_run(request, console=console)
        said = " ".join(console.export_text().split())
        assert f"continue with mea train --resume --name r1{said_dir}" in said, said
        assert said.rstrip().endswith(f"--name r1{said_dir}"), said


# ------------------------------------------------------------------ 9. a refused --split-by
def test_a_refused_compare_split_by_leaves_no_split_store(
    synth_mosi: Path, tmp_path: Path, mea
) -> None:
    compare(synth_mosi, "mosi", ["mea", "mult"], 1, tmp_path, "x", train_fn=stub)
    before = sorted(p.name for p in (tmp_path / "x").iterdir())
    code, _, err = mea("compare", str(synth_mosi), "--dataset", "mosi", "--models", "mea,mult",
                       "--seeds", "1", "--split-by", "video", "--name", "x",
                       "--runs-dir", str(tmp_path), "--device", "cpu")  # fmt: skip
    assert code == 2 and "holds a comparison with another features" in err, err
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == before  # no split.h5


# ------------------------------------------------------------------ 10. compare subsets
def test_a_compare_rerun_with_fewer_seeds_says_the_table_was_replaced(
    synth_mosi: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    compare(synth_mosi, "mosi", ["mea", "mult"], 2, tmp_path, "c", train_fn=stub)
    assert "replaced" not in capsys.readouterr().err
    compare(synth_mosi, "mosi", ["mea", "mult"], 2, tmp_path, "c", train_fn=stub)  # the same
    assert "replaced" not in capsys.readouterr().err
    compare(synth_mosi, "mosi", ["mea", "mult"], 1, tmp_path, "c", train_fn=stub)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "held a table of mea (seeds 1111 1112)" in err, err
    assert "replaced by this one of mea (seeds 1111)" in err


# ------------------------------------------------------------------ 11. curves of C
def test_curves_of_a_closed_form_model_are_drawn_against_c(functionals_run: Path) -> None:
    run = functionals_run / "f"
    log = run / "log.jsonl"
    grid = [r["train"]["c"] for r in map(json.loads, log.read_text().splitlines())]
    fig = curves_figure(read_curves(log), "t", read_chosen(log), closed_form=True)
    chosen_c = grid[read_chosen(log).epoch - 1]
    for ax in fig.axes:
        assert ax.get_xscale() == "log" and ax.get_xlabel() == "regularisation C (log scale)"
        (mark,) = [ln for ln in ax.lines if ln.get_gid() == CHOSEN_GID]
        assert list(mark.get_xdata()) == [chosen_c, chosen_c]
        texts = [t.get_text() for t in ax.get_legend().texts]
        assert any(t.startswith(f"chosen C = {chosen_c:g}") for t in texts)
        assert not any("epoch" in t or "weighted terms" in t for t in texts)
    (out,) = make(run / "ckpt.pt", ["curves"], run / "viz")
    assert f"over {len(grid)} values of C" in out.summary and out.numbers["closed_form"]


# ------------------------------------------------------------------ smaller
def test_viz_on_a_folder_of_runs_names_the_runs_inside(tmp_path: Path, mea) -> None:
    cmp = tmp_path / "c"
    (cmp / "mea" / "1111").mkdir(parents=True)
    (cmp / "mea" / "1111" / "ckpt.pt").write_bytes(b"")
    (cmp / "compare.json").write_text("{}")
    code, _, err = mea("viz", str(cmp), "--what", "curves")
    assert code == 2 and "give one of them: " + str(cmp / "mea" / "1111") in err, err
    cv = tmp_path / "cv"
    (cv / "folds" / "1").mkdir(parents=True)
    (cv / "folds.json").write_text(json.dumps({"format": "mea-folds"}))
    code, _, err = mea("viz", str(cv), "--what", "curves")
    assert code == 2 and "one run per fold" in err and str(cv / "folds" / "1") in err, err
