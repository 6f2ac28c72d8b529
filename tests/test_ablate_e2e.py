"""End to end on synthetic data: train -> mea ablate (killed and resumed) -> tables; mea sweep.

Tiny model and data (d=8, one epoch) so that every training takes a few seconds on one CPU
thread; the numbers are meaningless, the plumbing is what is tested.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import warm
from gates import gate_env, wait_blocked

from mea_cli.ablate.api import ablate, load_run, plan_ablation, run_job, sweep
from mea_cli.ablate.errors import AblationError, SweepError
from mea_cli.ablate.runner import RunInfo
from mea_cli.data.synth import write_synthetic
from mea_cli.models.core.registry import CapabilityError
from mea_cli.models.mea.switches import SWITCHES
from mea_cli.train.setup import read_store_facts, resolve_config
from mea_cli.train.trainer import TrainRequest, train_run
from mea_cli.viz.api import make

TINY = {"d": 8, "heads": 2, "d_h": 8, "psa_layers": 2, "hca_layers": 1}
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Two cores shared by everything: one torch thread is several times faster here."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-seed run of the tiny MEA on a small synthetic MOSI-shaped store."""
    root = tmp_path_factory.mktemp("ablate")
    store = root / "synth.h5"
    write_synthetic(store, "mosi", n=30, seed=5, max_seconds=2.0)
    train_run(
        TrainRequest(
            features=store,
            dataset="mosi",
            seeds=[1, 2],
            model_overrides=TINY,
            train_overrides={"epochs": 1},
            name="base",
            runs_dir=root / "runs",
            live=False,
        )
    )
    return root


def _mea(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return warm.run(args, cwd=cwd, env=ENV, timeout=300)


def _events(run: Path) -> list[dict]:
    path = run / "ablation" / "events.jsonl"
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.endswith("}")]


@pytest.mark.slow
def test_ablate_killed_after_first_row_resumes_without_retraining(trained: Path) -> None:
    run = trained / "runs" / "base"
    cmd = [
        sys.executable,
        "-m",
        "mea_cli",
        "ablate",
        "--drop",
        "psa",
        "--drop",
        "wal",
        "--seeds",
        "2",
    ]
    gate = trained / "gate"  # both psa seeds train (one epoch each), wal's first is held
    proc = subprocess.Popen(
        cmd,
        cwd=trained,
        env=gate_env(gate, "epoch", 2, ENV),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    first_row = [run / "ablation" / "psa" / s / "metrics.json" for s in ("1", "2")]
    try:
        wait_blocked(gate, proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the ablation's own process group only
        proc.wait()
    assert not (run / "ablation" / "wal" / "2" / "metrics.json").exists()
    assert not (run / "ablation.md").exists()
    mtimes = {p: p.stat().st_mtime_ns for p in first_row}
    before = _events(run)
    assert [(e["event"], e["row"]) for e in before[:4]] == [
        ("reused", "full"),
        ("reused", "full"),
        ("trained", "psa"),
        ("trained", "psa"),
    ]

    done = _mea(
        ["ablate", "--drop", "psa", "--drop", "wal", "--seeds", "2", "--format", "md"], trained
    )
    assert done.returncode == 0, done.stderr
    after = _events(run)[len(before) :]
    assert {(e["row"], e["seed"]) for e in after if e["event"] == "cached"} >= {
        ("psa", 1),
        ("psa", 2),
    }
    assert not [e for e in after if e["event"] == "trained" and e["row"] != "wal"]
    assert {p: p.stat().st_mtime_ns for p in first_row} == mtimes
    assert "psa seed 1: already done, not retrained" in done.stderr

    md = (run / "ablation.md").read_text()
    assert md == done.stdout
    lines = [x for x in md.splitlines() if x.startswith("| ") and "±" in x]
    assert [x.split(" | ")[0] for x in lines] == [
        "| MEA (Full Model)",
        "| w/o PSA Module",
        "| w/o Weighted Attention Layer",
    ]
    assert all(x.rstrip(" |").endswith("1,2") for x in lines)  # both seeds in every row
    # the full row is the run's own per-seed metrics
    own = json.loads((run / "seeds" / "1" / "metrics.json").read_text())["test"]["acc7"]
    full = json.loads((run / "ablation" / "full" / "1" / "metrics.json").read_text())
    assert full["test"]["acc7"] == own and full["reused_from"].endswith("seeds/1/metrics.json")
    # same config as the run except the switch
    base_cfg = json.loads((run / "config.json").read_text())
    row_cfg = json.loads((run / "ablation" / "wal" / "2" / "config.json").read_text())
    diff = {
        k
        for k in base_cfg["model_config"]
        if base_cfg["model_config"][k] != row_cfg["model_config"][k]
    }
    assert diff == {"ablations"} and row_cfg["model_config"]["ablations"] == ["wal"]
    assert row_cfg["train"] == base_cfg["train"] and row_cfg["features"] == base_cfg["features"]
    assert (trained / "runs" / "latest").resolve() == run.resolve()
    csv_text = (run / "ablation.csv").read_text()
    assert (
        csv_text.splitlines()[0].startswith("key,label,group,seeds,mae_mean")
        or "acc7_mean" in csv_text
    )
    assert "\\begin{tabular}" in (run / "ablation.tex").read_text()


def test_errors_are_one_line(trained: Path, tmp_path: Path) -> None:
    bad = _mea(["ablate", "--drop", "psa", "--drop", "bogus"], trained)
    assert bad.returncode == 2 and "model 'mea' has no ablation switch 'bogus'" in bad.stderr
    assert "mru-fine" in bad.stderr and "Traceback" not in bad.stderr
    empty = tmp_path / "runs" / "nockpt"
    empty.mkdir(parents=True)
    cfg = json.loads((trained / "runs" / "base" / "config.json").read_text())
    (empty / "config.json").write_text(json.dumps(cfg))
    res = _mea(["ablate", "--run", str(empty), "--drop", "psa"], tmp_path)
    assert res.returncode == 2 and "no checkpoint (ckpt.pt)" in res.stderr
    res = _mea(["sweep", "not_a_field=1,2"], trained)
    assert (
        res.returncode == 2
        and "'not_a_field' is not a field" in res.stderr
        and "psa_layers" in res.stderr
    )
    with pytest.raises(SweepError, match="holds int values"):
        sweep(trained / "runs", None, ["psa_layers=1.5"])
    with pytest.raises(AblationError, match="nothing to ablate"):
        ablate(trained / "runs", None, [])


def test_sweep_trains_each_value_table_and_plot(trained: Path) -> None:
    results = sweep(trained / "runs", "base", ["mu=0,0.5", "psa_layers=1,2"], seeds=1)
    run = trained / "runs" / "base"
    assert [r.key for r in results] == ["mu", "psa_layers"]
    mu = results[0]
    assert [row.label for row in mu.table.rows] == ["mu = 0", "mu = 0.5"]
    for value in ("0", "0.5"):
        cfg = json.loads((run / "sweep" / f"mu={value}" / "1" / "config.json").read_text())
        assert cfg["model_config"]["mu"] == float(value)
    png = mu.files["png"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    md = (run / "sweep-mu.md").read_text()
    assert md.count("(n=1)") >= 8 and "± 0.0" not in md  # one seed: no std to show
    layers = json.loads((run / "sweep" / "psa_layers=1" / "1" / "config.json").read_text())
    assert layers["model_config"]["psa_layers"] == 1
    # valid beside test: each metric's valid column (from the job's metrics.json) before its test one
    assert mu.table.metrics[:2] == ["valid_acc7", "acc7"]
    assert "| valid Acc-7 | Δ valid Acc-7 | test Acc-7 |" in md
    job = json.loads((run / "sweep" / "mu=0.5" / "1" / "metrics.json").read_text())
    assert mu.table.rows[1].stats["valid_mae"].mean == pytest.approx(job["valid"]["mae"])
    assert mu.table.rows[1].stats["mae"].mean == pytest.approx(job["test"]["mae"])
    # with two PSA layers mu mixes the layers' attention: no NO EFFECT flag
    assert "NO EFFECT" not in md and not mu.table.notes
    # with one PSA layer it has nothing to mix: the sweep says so
    (one,) = sweep(trained / "runs", run / "sweep" / "psa_layers=1" / "1", ["mu=0,0.5"], seeds=1)
    assert one.table.notes and one.table.notes[0].startswith("NO EFFECT: mu=0 and mu=0.5")
    assert "**NO EFFECT: mu=0 and mu=0.5 build the same model" in one.files["md"].read_text()
    rows = one.table.rows
    assert rows[0].stats["acc7"].mean == rows[1].stats["acc7"].mean  # and indeed: same training


def test_sweep_over_a_training_setting_trains_with_each_value(trained: Path) -> None:
    """Issue 16: ``mea sweep train.lr=...`` ignored the value, then refused the job."""
    run = trained / "runs" / "base"
    base = json.loads((run / "config.json").read_text())
    (result,) = sweep(trained / "runs", "base", ["train.lr=5e-4,2e-3"], seeds=1)
    assert [row.label for row in result.table.rows] == ["train.lr = 5e-4", "train.lr = 2e-3"]
    for text, value in (("5e-4", 5e-4), ("2e-3", 2e-3)):
        job = run / "sweep" / f"train.lr={text}" / "1"
        cfg = json.loads((job / "config.json").read_text())
        assert cfg["train"] == {**base["train"], "lr": value}  # only lr changed
        assert cfg["model_config"] == base["model_config"]
        assert cfg["train_sources"]["lr"] == "override"
        first_epoch = json.loads((job / "log.jsonl").read_text().splitlines()[0])
        assert first_epoch["lr"] == value  # the optimizer really used it


@pytest.mark.slow
def test_drop_all_covers_every_table_v_row(trained: Path) -> None:
    result = ablate(trained / "runs", "base", ["all"], seeds=1, with_paper=True)
    keys = [r.key for r in result.table.rows]
    assert keys == ["full", *SWITCHES]  # Table V order
    assert all(r.stats["acc7"].n == 1 for r in result.table.rows)
    md = result.files["md"].read_text()
    for sw in SWITCHES.values():
        assert sw.table_row in md
    assert "| MEA (Full Model) |" in md and "42.5" in md and "84.6" in md  # --paper, MOSI
    assert "(n=1)" in md and "± 0.0" not in md  # one seed: no made-up std
    source = next(line for line in md.splitlines() if line.startswith("Paper values:"))
    assert "TABLE V" in source and "Modality-Exclusive and -Agnostic" in source
    assert "/" not in source.replace("w/o", "") and ".md" not in source  # no file path
    info = load_run(trained / "runs", "base")
    assert info.seeds == (1, 2)
    # a picture the ablated model cannot give is refused by asking the registry, in one line
    wal_ckpt = trained / "runs" / "base" / "ablation" / "wal" / "1" / "ckpt.pt"
    with pytest.raises(CapabilityError, match="built with ablations wal, which remove its modality weights"):
        make(wal_ckpt, ["wal"], trained / "viz")


def test_a_row_of_a_small_preset_run_is_trained_and_recorded_as_small(synth_mosi: Path, tmp_path: Path) -> None:
    """A run trained with ``--preset small`` is ablated with its own sizes, and each row's
    config says ``preset: small`` (not the paper preset it would otherwise be labelled with)."""
    facts = read_store_facts(synth_mosi, "mosi")
    cfg = resolve_config(TrainRequest(synth_mosi, "mosi", preset="small"), facts, "base")
    run = RunInfo(tmp_path, cfg, synth_mosi, "mosi", cfg.task, tuple(cfg.label_names), "mea",
                  dict(cfg.model_config), (1,))  # fmt: skip
    job = run_job(run, "w/o PSA", 1, tmp_path / "row", switches=("psa",))
    assert job.preset == "small"
    req = TrainRequest(synth_mosi, "mosi", "mea", seeds=[1], train_overrides=dict(job.train_overrides),
                       model_overrides=dict(job.model_overrides), preset=job.preset)  # fmt: skip
    got = resolve_config(req, facts, "row")  # what train_job resolves before it trains
    assert got.preset == "small" and got.model_config == job.expected_model_config
    assert got.train == job.expected_train
    assert got.model_config["d"] == cfg.model_config["d"] and "psa" in got.model_config["ablations"]


def test_a_small_preset_run_is_refused_with_what_to_do(synth_mosi: Path, tmp_path: Path) -> None:
    """MEA's small preset fuses by concatenation (``ablations=dgf``): ``mea ablate`` refused
    such a run with "ablate the full model's run instead", though the user never ablated
    anything; the refusal names the preset and the way to train an ablatable run."""
    facts = read_store_facts(synth_mosi, "mosi")
    cfg = resolve_config(TrainRequest(synth_mosi, "mosi", preset="small"), facts, "base")
    assert cfg.model_config["ablations"] == ["dgf"]  # the case this test is about
    run = RunInfo(tmp_path, cfg, synth_mosi, "mosi", cfg.task, tuple(cfg.label_names), "mea",
                  dict(cfg.model_config), (1,))  # fmt: skip
    with pytest.raises(AblationError, match=r"\(dgf: part of --preset small\); to ablate, train it "
                       r"with --preset small --set ablations= "):  # fmt: skip
        plan_ablation(run, ["psa"], [1])
