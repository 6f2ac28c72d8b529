"""Determinism and ``--resume``: a run killed after epoch k and resumed ends exactly where an
uninterrupted run with the same seed ends (CPU); two processes with the same seed log identical
epochs. Also multi-seed runs (mean ± std) and the 2-process gloo ``torchrun`` run.
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

from mea_cli.artifacts.features import FeatureStore
from mea_cli.data.synth import write_synthetic
from mea_cli.train.runs import read_log

TINY = [
    "--set", "d=8", "--set", "heads=2", "--set", "d_h=8",
    "--set", "psa_layers=1", "--set", "hca_layers=1", "--set", "train.batch_size=8",
]  # fmt: skip


def cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "mea_cli", *args]


def run_ok(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    r = subprocess.run(args, capture_output=True, text=True, cwd=cwd, env=env)
    assert r.returncode == 0, (args, r.stdout[-3000:], r.stderr[-3000:])
    return r.stdout


def warm_ok(cwd: Path, *args: str) -> str:
    """``mea ARGS`` in a child of the tests' warm interpreter (tests/warm.py): a process of its
    own, without paying torch's import again (start-up is not what these tests are about)."""
    r = warm.run(list(args), cwd=cwd)
    assert r.returncode == 0, (args, r.stdout[-3000:], r.stderr[-3000:])
    return r.stdout


@pytest.fixture(scope="module")
def tiny_mosi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("resume") / "tiny.h5"
    write_synthetic(path, "mosi", n=48, seed=5, max_seconds=2.0)
    return path


@pytest.mark.slow
def test_kill_then_resume_matches_uninterrupted_run(tmp_path: Path, tiny_mosi: Path) -> None:
    epochs = "6"
    train = ["train", str(tiny_mosi), "--dataset", "mosi", "--epochs", epochs, "--device", "cpu"]
    # the weight average and the augmentation's draws resume too (train/ema.py, augment.py)
    train += ["--set", "train.ema_decay=0.9", "--set", "train.input_noise=0.1"]
    train += ["--set", "train.time_mask=0.2"]
    # the uninterrupted run in a child of the warm interpreter, the cut one in a fresh one: two
    # processes that share nothing but the seed
    warm_ok(tmp_path, *train, "--name", "whole", *TINY)

    gate = tmp_path / "gate"  # the run is held after epoch 2's state is saved
    proc = subprocess.Popen(
        cmd(*train, "--name", "cut", *TINY),
        cwd=tmp_path,
        env=gate_env(gate, "epoch", 1),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    log = tmp_path / "runs" / "cut" / "log.jsonl"
    try:
        wait_blocked(gate, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        proc.kill()
    state = torch.load(tmp_path / "runs" / "cut" / "state.pt", weights_only=True)
    assert state["epoch"] == 2 and [r["epoch"] for r in read_log(log)] == [1, 2]
    assert not (tmp_path / "runs" / "cut" / "metrics.json").exists()

    warm_ok(tmp_path, "train", "--resume", "--name", "cut")
    whole = json.loads((tmp_path / "runs" / "whole" / "metrics.json").read_text())
    cut = json.loads((tmp_path / "runs" / "cut" / "metrics.json").read_text())
    assert cut == whole  # bit-identical valid and test metrics, best epoch included
    log_whole = read_log(tmp_path / "runs" / "whole" / "log.jsonl")
    log_cut = read_log(log)
    assert [r["epoch"] for r in log_cut] == [r["epoch"] for r in log_whole]
    for a, b in zip(log_whole, log_cut, strict=True):  # same seed, two processes: same epochs
        assert a["train"] == b["train"] and a["valid"] == b["valid"]
    # a finished run resumed again does nothing new
    warm_ok(tmp_path, "train", "--resume", "--name", "cut")
    assert json.loads((tmp_path / "runs" / "cut" / "metrics.json").read_text()) == whole


@pytest.mark.slow
def test_multi_seed_run_reports_mean_and_std(tmp_path: Path, tiny_mosi: Path) -> None:
    out = warm_ok(tmp_path, "train", str(tiny_mosi), "--dataset", "mosi", "--epochs", "2",
                  "--seeds", "7,8", "--name", "two", *TINY)  # fmt: skip
    assert "mean ± std" in out
    run = tmp_path / "runs" / "two"
    for seed in ("7", "8"):
        assert (run / "seeds" / seed / "ckpt.pt").is_file()
        assert (run / "seeds" / seed / "log.jsonl").is_file()
    m = json.loads((run / "metrics.json").read_text())
    maes = [m["seeds"][s]["test"]["mae"] for s in ("7", "8")]
    assert maes[0] != maes[1]
    assert m["test_mean_std"]["mae"]["mean"] == pytest.approx(sum(maes) / 2)
    assert m["test_mean_std"]["mae"]["std"] == pytest.approx(abs(maes[0] - maes[1]) / 2**0.5)


@pytest.mark.slow
def test_torchrun_two_gloo_processes_train_one_run(tmp_path: Path, tiny_mosi: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "mea_cli", "train", str(tiny_mosi), "--dataset", "mosi", "--epochs", "2",
        "--device", "cpu", "--name", "ddp", *TINY,
    ]  # fmt: skip
    out = run_ok(args, tmp_path, env)
    assert out.count("best on valid") == 1  # only rank 0 prints and writes
    runs = [p.name for p in (tmp_path / "runs").iterdir() if p.name != "latest"]
    assert runs == ["ddp"]
    cfg = json.loads((tmp_path / "runs" / "ddp" / "config.json").read_text())
    assert cfg["world_size"] == 2
    assert len(read_log(tmp_path / "runs" / "ddp" / "log.jsonl")) == 2
    ev = json.loads(warm_ok(tmp_path, "eval", "runs/ddp/ckpt.pt", "--json"))
    saved = json.loads((tmp_path / "runs" / "ddp" / "metrics.json").read_text())
    with FeatureStore(tiny_mosi) as store:  # gathered from both ranks, each sample once
        assert ev["samples"] == len(store.split_indices("test"))
    assert ev["metrics"]["mae"] == pytest.approx(saved["test"]["mae"], abs=1e-6)
