"""``mea tune``: the search space (typed by the config fields, every mistake one line, exit 2),
the best-config file (a TOML that ``mea train --config`` reads back to the same overrides), the
ranking of trials, the trainer's per-epoch hook, and end to end two ``mea tune`` processes on
one SQLite study, then the best configuration retrained to the trial's valid metric."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import warm

from mea_cli.config import Config
from mea_cli.data.synth import write_synthetic
from mea_cli.models.core.contract import data_fields
from mea_cli.models.core.registry import get_entry
from mea_cli.train.config import TrainSettings, load_toml
from mea_cli.tune.report import config_toml, ranked, trial_value
from mea_cli.tune.space import Param, SpaceError, build_space, suggest

MEA = get_entry("mea").config_cls


def space(*items: str, file: Path | None = None) -> list[Param]:
    return build_space(MEA, TrainSettings, items, file, data_fields())


def test_space_is_typed_by_the_fields() -> None:
    mu, lr, layers, heads, loss = space(
        "mu=0:0.5", "lr=log:1e-4:3e-3", "psa_layers=1:3", "heads=2,4", "task_loss=mse,l1"
    )
    assert mu == Param("mu", "model", "float", 0.0, 0.5)
    assert lr == Param("lr", "train", "float", 1e-4, 3e-3, log=True)
    assert layers == Param("psa_layers", "model", "int", 1, 3)
    assert heads == Param("heads", "model", "choice", choices=(2, 4))
    assert loss.choices == ("mse", "l1") and loss.key == "model.task_loss"
    (explicit,) = space("train.batch_size=log:8:32")
    assert explicit == Param("batch_size", "train", "int", 8, 32, log=True)


def test_space_file_matches_the_strings(tmp_path: Path) -> None:
    f = tmp_path / "space.toml"
    f.write_text('[model]\nmu = "0:0.5"\nheads = [2, 4]\n\n[train]\nlr = {low = 1e-4, high = 3e-3, log = true}\n')
    assert space(file=f) == space("mu=0:0.5", "heads=2,4", "lr=log:1e-4:3e-3")


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("nope=0:1", "'nope' is not a searchable field"),
        ("num_labels=1:3", "'num_labels' is not a searchable field"),  # a data field
        ("mu=0.5:0.1", "needs low < high"),
        ("lr=log:0:1e-3", "positive low bound"),
        ("psa_layers=1.5:3", "must be an integer"),
        ("task_loss=0:1", "not a number field"),
        ("heads=4,4", "two distinct choices"),
        ("kernel_sizes=1,2", "cannot be searched"),
        ("lr=-1:1", "lr=-1.0 is refused"),  # the config's own check (lr > 0)
        ("d_h=8:10000000", "d_h=10000000 is refused: model 'mea' with this configuration has"),
        ("psa_layers=1:100", "psa_layers=100 is refused: psa_layers must be between 1 and 64"),
        ("mu", "expected key=SPEC"),
        ("mu=1:2:3:4", "is not a range"),
    ],
)
def test_space_errors(item: str, message: str) -> None:
    with pytest.raises(SpaceError, match=re.escape(message)):
        space(item)


def test_space_key_in_both_configs_needs_its_prefix() -> None:
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Both(Config):
        lr: float = 1.0

    with pytest.raises(SpaceError, match="write model.lr or train.lr"):
        build_space(Both, TrainSettings, ["lr=0.1:1"])
    assert build_space(Both, TrainSettings, ["model.lr=0.1:1"])[0].target == "model"


def test_suggest_draws_inside_the_space() -> None:
    params = space("mu=0:0.5", "lr=log:1e-4:3e-3", "psa_layers=1:3", "heads=2,4")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        train, model = suggest(study.ask(), params)
        assert 1e-4 <= train["lr"] <= 3e-3 and 0 <= model["mu"] <= 0.5
        assert model["psa_layers"] in (1, 2, 3) and model["heads"] in (2, 4)
        assert isinstance(model["psa_layers"], int)


def test_best_config_reads_back_exactly(tmp_path: Path) -> None:
    train = {"lr": 0.00012345678901234567, "epochs": 1, "class_weights": "balanced"}
    model = {"mu": 1 / 3, "psa_layers": 2, "wal_literal": True, "ablations": ["psa", "wal"]}
    f = tmp_path / "best.toml"
    f.write_text(config_toml(train, model, header=["a comment"]))
    assert load_toml(f) == (train, model)


def test_ranked_orders_completed_by_direction_then_the_rest() -> None:
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    S = optuna.trial.TrialState
    trials = [
        optuna.trial.create_trial(value=v, params={"x": 0.5}, distributions=dist, state=S.COMPLETE)
        for v in (0.3, 0.1, 0.2)
    ] + [optuna.trial.create_trial(params={"x": 0.5}, distributions=dist, state=S.PRUNED,
                                   intermediate_values={1: 0.9})]  # fmt: skip
    for i, t in enumerate(trials):
        t.number = i
    low = [(r, t.number) for r, t in ranked(trials, higher_is_better=False)]
    assert low == [(1, 1), (2, 2), (3, 0), (None, 3)]
    high = [(r, t.number) for r, t in ranked(trials, higher_is_better=True)]
    assert high == [(1, 0), (2, 2), (3, 1), (None, 3)]
    assert trial_value(trials[0]) == "0.3" and trial_value(trials[3]) == "0.9 (epoch 1)"


def test_joining_a_study_with_other_settings_is_refused(tmp_path: Path) -> None:
    from mea_cli.train.trainer import TrainRequest
    from mea_cli.tune.study import TuneError, TuneRequest, open_study

    storage = f"sqlite:///{tmp_path}/j.db"
    req = TuneRequest(TrainRequest(tmp_path / "a.h5", "mosi"), space("mu=0:0.5"), 1, "j", storage)
    first = open_study(req, "mae", False, "abc")
    again = open_study(req, "mae", False, "abc")  # the same settings join
    assert again._study_id == first._study_id and first.direction.name == "MINIMIZE"
    other = TuneRequest(TrainRequest(tmp_path / "a.h5", "mosi"), space("mu=0:0.4"), 1, "j", storage)
    with pytest.raises(TuneError, match=r"searches other settings \(space\)"):
        open_study(other, "mae", False, "abc")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "mosi", "--space", "nope=0:1"], "'nope' is not a searchable field"),
        (["--space", "mu=0:0.5"], "give --dataset"),
        (["--dataset", "mosi", "--space", "mu=0:0.5", "--storage", "sqlite:///{tmp}/no/s.db"],
         "does not exist"),  # fmt: skip
        (["--dataset", "mosi", "--space", "mu=0:0.5", "--study", "a/b"], "'a/b' is not allowed"),
    ],
)
def test_refusals_are_one_line_and_create_nothing(
    tmp_path: Path, mea, synth_mosi: Path, args: list[str], message: str
) -> None:
    runs = tmp_path / "runs"
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code, _, err = mea("tune", str(synth_mosi), *args, "--runs-dir", str(runs))
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    assert list(tmp_path.iterdir()) == []


def test_a_storage_that_is_not_a_database_is_one_line_and_leaves_no_lock(
    tmp_path: Path, mea, synth_mosi: Path
) -> None:
    """SQLAlchemy's message runs over three lines (SQL, a link); its lock file stayed behind."""
    (tmp_path / "db").mkdir()
    text = tmp_path / "db" / "text.h5"
    text.write_text("not a database")
    code, _, err = mea("tune", str(synth_mosi), "--dataset", "mosi", "--space", "mu=0:0.5",
                       "--storage", f"sqlite:///{text}", "--runs-dir", str(tmp_path / "runs"))  # fmt: skip
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "cannot open (DatabaseError: file is not a database)" in err, err
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["db", "text.h5"]


# ----------------------------------------------------------------------------- end to end
TINY = [
    "--set", "d=8", "--set", "heads=2", "--set", "d_h=8", "--set", "psa_layers=1",
    "--set", "hca_layers=1", "--set", "train.batch_size=8",
]  # fmt: skip


def mea_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "mea_cli", *args]


@pytest.mark.slow
def test_two_processes_share_one_sqlite_study_and_best_retrains_equal(tmp_path: Path) -> None:
    store = tmp_path / "tiny.h5"
    write_synthetic(store, "mosi", n=48, seed=5, max_seconds=2.0)
    tune = mea_cmd(
        "tune", str(store), "--dataset", "mosi", "--epochs", "1", "--device", "cpu",
        "--space", "mu=0:0.5 lr=log:1e-4:3e-3", "--trials", "2", "--study", "s",
        "--threads", "1", *TINY,
    )  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(tune, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)  # fmt: skip
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    mine = [
        {int(n) for n in re.findall(r"^trial (\d+) \w+", err, flags=re.M)} for _, err in outs
    ]
    assert len(mine[0]) == len(mine[1]) == 2 and not mine[0] & mine[1]  # both ran their two

    study = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path}/runs/s.db")
    trials = study.get_trials()
    assert sorted(t.number for t in trials) == [0, 1, 2, 3] == sorted(mine[0] | mine[1])
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    for t in trials:  # each trial a normal run with its drawn values and the fixed ones
        cfg = json.loads((tmp_path / "runs" / f"s-t{t.number}" / "config.json").read_text())
        assert cfg["model_config"]["mu"] == t.params["model.mu"]
        assert cfg["train"]["lr"] == t.params["train.lr"] and cfg["train"]["epochs"] == 1
        metrics = json.loads((tmp_path / "runs" / f"s-t{t.number}" / "metrics.json").read_text())
        assert metrics["valid"]["mae"] == t.value  # the objective is the valid split's MAE

    best = tmp_path / "runs" / "s.best.toml"
    assert f"run s-t{study.best_trial.number}" in best.read_text()
    # the retraining in a child of the tests' warm interpreter (tests/warm.py): a process of its
    # own like the two above, without a third import of torch
    r = warm.run(
        ["train", str(store), "--dataset", "mosi", "--seed", "1111", "--device", "cpu",
         "--config", str(best), "--name", "again", "--threads", "1"],
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    again = json.loads((tmp_path / "runs" / "again" / "metrics.json").read_text())
    trial = json.loads(
        (tmp_path / "runs" / f"s-t{study.best_trial.number}" / "metrics.json").read_text()
    )
    assert again["valid"] == trial["valid"] and again["valid"]["mae"] == study.best_value


@pytest.mark.slow
def test_a_trial_worse_than_the_median_is_pruned_and_resumable(
    tmp_path: Path, synth_mosi: Path, one_torch_thread
) -> None:
    from mea_cli.train.runs import read_log
    from mea_cli.train.trainer import TrainRequest, train_run
    from mea_cli.tune.study import TuneRequest, run_study

    storage = f"sqlite:///{tmp_path}/p.db"
    queued = optuna.create_study(study_name="p", storage=storage)
    queued.enqueue_trial({"train.lr": 3e-3})  # trial 0: learns
    queued.enqueue_trial({"train.lr": 1e-6})  # trial 1: hardly moves: worse at epoch 1
    model = {"d": 8, "heads": 2, "d_h": 8, "psa_layers": 1, "hca_layers": 1}
    req = TrainRequest(
        features=synth_mosi, dataset="mosi", train_overrides={"epochs": 3, "batch_size": 8},
        model_overrides=model, device="cpu", runs_dir=tmp_path / "runs", live=False,
    )  # fmt: skip
    seen = []
    run_study(TuneRequest(req, space("lr=log:1e-6:1e-2"), 2, "p", storage, startup_trials=1,
                          on_trial=seen.append))  # fmt: skip
    assert [t.state.name for t in seen] == ["COMPLETE", "PRUNED"]
    assert list(seen[1].intermediate_values) == [1]
    assert seen[1].intermediate_values[1] > seen[0].intermediate_values[1]
    pruned = tmp_path / "runs" / "p-t1"
    assert [r["epoch"] for r in read_log(pruned / "log.jsonl")] == [1]
    assert not (pruned / "metrics.json").exists()
    done = train_run(TrainRequest(None, None, name="p-t1", resume=True, runs_dir=tmp_path / "runs",
                                  live=False))  # fmt: skip
    assert [r["epoch"] for r in read_log(pruned / "log.jsonl")] == [1, 2, 3]
    assert done.seeds[1111]["epochs_run"] == 3


def test_a_drawn_model_too_big_fails_its_trial_and_the_search_goes_on(
    tmp_path: Path,
    synth_mosi: Path,
    one_torch_thread,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A combination too big that the space's bounds check let through (it checks each bound
    with the defaults' other values; test_space_errors covers it, switched off here) fails as
    its trial, a row of the study with its one-line reason; no traceback is logged for it
    (optuna's own warning of a failed trial carries one)."""
    import mea_cli.tune.space

    monkeypatch.setattr(mea_cli.tune.space, "_check_bounds", lambda *args: None)
    from mea_cli.train.trainer import TrainRequest
    from mea_cli.tune.study import TuneRequest, run_study

    storage = f"sqlite:///{tmp_path}/big.db"
    queued = optuna.create_study(study_name="big", storage=storage)
    queued.enqueue_trial({"model.d_h": 10**7})  # 10**14 parameters: refused, never built
    queued.enqueue_trial({"model.d_h": 8})
    model = {"d": 8, "heads": 2, "psa_layers": 1, "hca_layers": 1}
    req = TrainRequest(
        features=synth_mosi, dataset="mosi", train_overrides={"epochs": 1, "batch_size": 8},
        model_overrides=model, device="cpu", runs_dir=tmp_path / "runs", live=False,
    )  # fmt: skip
    seen = []
    run_study(TuneRequest(req, space("d_h=8,10000000"), 2, "big", storage, on_trial=seen.append))
    assert [t.state.name for t in seen] == ["FAIL", "COMPLETE"]
    assert "parameters" in seen[0].user_attrs["error"]
    assert not (tmp_path / "runs" / "big-t0").exists()
    assert not [r.getMessage() for r in caplog.records if r.exc_info]
