"""``mea train --procs N``: data-parallel CPU processes started by the command itself.

What it must be: the run ``torchrun --nproc-per-node N`` gives with the batch split among the
processes (the same logged epochs, to the bit), one run directory written by rank 0 only, one
clear message for a user error whichever rank meets it, and a failing rank reported by name
instead of a wait that never ends.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch.distributed as dist

from mea_cli.config import ConfigError
from mea_cli.data.synth import write_synthetic
from mea_cli.errors import MeaError
from mea_cli.runtime.procs import run_ranks
from mea_cli.train.config import TrainSettings
from mea_cli.train.runs import read_log
from mea_cli.train.setup import split_batch

TINY = [
    "--set", "d=8", "--set", "heads=2", "--set", "d_h=8",
    "--set", "psa_layers=1", "--set", "hca_layers=1",
]  # fmt: skip
TIMEOUT_S = 300  # a rank waiting forever fails the test instead of hanging the suite


def mea(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mea_cli", *args], capture_output=True, text=True, cwd=cwd,
        env=env, timeout=TIMEOUT_S, stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.fixture(scope="module")
def tiny_mosi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("procs") / "tiny.h5"
    write_synthetic(path, "mosi", n=48, seed=5, max_seconds=2.0)
    return path


def test_split_batch_divides_the_batch_among_the_processes() -> None:
    s = split_batch(TrainSettings(batch_size=32), 2)
    assert s.batch_size == 16 and s.eval_batch_size == 0  # 0: twice each process's batch
    s = split_batch(TrainSettings(batch_size=32, eval_batch_size=9), 4)
    assert s.batch_size == 8 and s.eval_batch_size == 3  # evaluation rounds up
    with pytest.raises(ConfigError, match=r"--procs: 3 processes cannot share a batch of 32"):
        split_batch(TrainSettings(batch_size=32), 3)


@pytest.mark.slow
def test_procs_is_torchrun_with_the_batch_split(tmp_path: Path, tiny_mosi: Path) -> None:
    train = ["train", str(tiny_mosi), "--dataset", "mosi", "--epochs", "2", "--device", "cpu"]
    r = mea([*train, "--name", "procs", "--procs", "2", *TINY, "--set", "train.batch_size=8"],
            tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("best on valid") == 1  # only rank 0 prints
    assert "Traceback" not in r.stderr
    cfg = json.loads((tmp_path / "runs" / "procs" / "config.json").read_text())
    assert cfg["world_size"] == 2 and cfg["train"]["batch_size"] == 4
    assert "split over --procs 2" in cfg["train_sources"]["batch_size"]
    # torchrun's processes with 4 per process, the same seed: the same training, bit for bit
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "mea_cli", *train, "--name", "ddp", *TINY, "--set", "train.batch_size=4"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=TIMEOUT_S,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    mine = read_log(tmp_path / "runs" / "procs" / "log.jsonl")
    theirs = read_log(tmp_path / "runs" / "ddp" / "log.jsonl")
    assert [(a["train"], a["valid"]) for a in mine] == [(b["train"], b["valid"]) for b in theirs]
    # a run of 2 processes resumes with 2, each with its share of the batch
    r = mea(["train", "--resume", "--name", "procs"], tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "resume it with as many (--procs 2), not 1" in r.stderr


@pytest.mark.slow
def test_a_user_error_is_reported_once_and_nothing_waits(tmp_path: Path, tiny_mosi: Path) -> None:
    taken = tmp_path / "runs" / "taken"
    taken.mkdir(parents=True)
    (taken / "config.json").write_text("{}")  # both ranks find the run directory taken
    args = ["train", str(tiny_mosi), "--dataset", "mosi", "--device", "cpu", *TINY]
    r = mea([*args, "--name", "taken", "--procs", "2"], tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.count("already exists") == 1, r.stderr
    # a batch the processes cannot share: refused, no run directory left
    r = mea([*args, "--name", "odd", "--procs", "3", "--set", "train.batch_size=8"], tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "--procs: 3 processes cannot share a batch of 8 evenly" in r.stderr
    assert not (tmp_path / "runs" / "odd").exists()


def test_procs_below_one_is_a_usage_error(tmp_path: Path, tiny_mosi: Path) -> None:
    r = mea(["train", str(tiny_mosi), "--dataset", "mosi", "--procs", "0"], tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "--procs" in r.stderr


# run_ranks itself: module-level functions, as spawn needs them
def _join_and_wait() -> str:
    dist.init_process_group("gloo")
    try:
        dist.barrier()  # the other rank never arrives: gloo sees it gone
    finally:
        dist.destroy_process_group()
    return "not reached"


def _crash() -> None:
    raise RuntimeError("a bug in rank 1")


def _user_error() -> None:
    raise MeaError("features.h5: something only rank 1 saw")


def _fine(box: list[int]) -> None:
    box.append(1)


def run_ranks_child(other: str) -> subprocess.CompletedProcess:
    """``run_ranks(2, _join_and_wait, <other>)`` in a process of its own: rank 0 may have to end
    its process when another rank fails before joining (mea_cli.runtime.procs._watch)."""
    code = (
        "import sys; from mea_cli.runtime.procs import run_ranks; import test_train_procs as t\n"
        f"sys.exit(run_ranks(2, t._join_and_wait, t.{other}))"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=TIMEOUT_S
    )


def test_a_rank_that_crashes_is_named_instead_of_a_wait() -> None:
    r = run_ranks_child("_crash")
    assert r.returncode == 1, r.stderr[-2000:]
    assert "a bug in rank 1" in r.stderr  # the crashed rank's own traceback
    assert "training process rank 1 of 2 failed (exit code 1)" in r.stderr


def test_a_user_error_of_another_rank_reaches_rank_0() -> None:
    r = run_ranks_child("_user_error")
    assert r.returncode == 2, r.stderr[-2000:]
    assert "failed (exit code 2): features.h5: something only rank 1 saw" in r.stderr
    assert "Traceback" not in r.stderr


def test_run_ranks_returns_rank_0s_result_and_restores_the_environment() -> None:
    before = {k: os.environ.get(k) for k in ("WORLD_SIZE", "RANK", "MASTER_PORT")}
    assert run_ranks(3, lambda: os.environ["WORLD_SIZE"], _fine, ([],)) == "3"
    assert {k: os.environ.get(k) for k in before} == before
    assert run_ranks(1, lambda: "alone", _crash) == "alone"  # one process starts nothing
