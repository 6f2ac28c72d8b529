"""The bad-input battery, processes: what a user's kill, a second command on the same run, a
stale file of a killed run, a name too long for the file system, a broken ``.csd`` link or a
``state.pt`` from another run do.

Refusals go through the harness (exit 2, one line, nothing changed). Commands are stopped at a
known point with the test gates (``tests/gates.py``: a video or an epoch is held until the
test signals), never after a sleep, so no case depends on the machine's speed.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from gates import children, gate_env, wait_blocked, wait_for, wait_gone
from sampleclips import require_media, talking_astronaut
from test_import_csd import make_dir

from battery.harness import assert_refused, mea, snapshot
from mea_cli.data.importers.csd import standard_folds
from mea_cli.data.synth import write_synthetic
from mea_cli.locks import LOCK_NAME
from mea_cli.train.runs import read_log
from mea_cli.train.trainer import TrainRequest, train_run

TINY = {"d": 8, "heads": 2, "d_h": 8, "psa_layers": 1, "hca_layers": 1}
TINY_SET = [x for k, v in TINY.items() for x in ("--set", f"{k}={v}")] + ["--set", "train.batch_size=8"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NO_COLOR": "1"}
LONG = "n" * 300  # over the 255 bytes every common file system allows in one name


def _popen(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mea_cli", *args], cwd=cwd, env=env, text=True,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def _finish(proc: subprocess.Popen[str]) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=300)
    finally:
        proc.kill()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("procs") / "tiny.h5"
    write_synthetic(path, "mosi", n=40, seed=5, max_seconds=2.0)
    return path


@pytest.fixture(scope="module")
def two_runs(store: Path) -> Path:
    """Runs ``a`` (d=8) and ``b`` (d=16) of one epoch each, same seed."""
    runs = store.parent / "runs"
    torch.set_num_threads(1)
    for name, d in (("a", 8), ("b", 16)):
        train_run(TrainRequest(
            features=store, dataset="mosi", model_overrides={**TINY, "d": d},
            train_overrides={"epochs": 1, "batch_size": 8}, name=name, runs_dir=runs, live=False,
        ))  # fmt: skip
    return runs


def _unfinished_copy(runs: Path, src: str, dst: str) -> Path:
    """A copy of run ``src`` that ``--resume`` would continue (no metrics.json)."""
    target = runs / dst
    shutil.copytree(runs / src, target)
    (target / "metrics.json").unlink()
    (target / LOCK_NAME).unlink(missing_ok=True)
    return target


# ---------------------------------------------------------------- one process per run
@pytest.mark.slow
def test_second_resume_is_refused_sigterm_is_143_and_a_dead_holder_is_taken_over(
    store: Path, tmp_path: Path
) -> None:
    """Before: both ``--resume`` trained, their epochs interleaved in one log (1,1,2,2,3,3)."""
    gate = tmp_path / "gate"
    args = ["train", str(store), "--dataset", "mosi", "--epochs", "3", "--device", "cpu",
            "--name", "r", *TINY_SET]  # fmt: skip
    holder = _popen(args, tmp_path, gate_env(gate, "epoch", 0, ENV))  # held after epoch 1
    run = tmp_path / "runs" / "r"
    try:
        wait_blocked(gate, holder)
        before = snapshot(tmp_path / "runs")
        second = mea("train", "--resume", "--name", "r", cwd=tmp_path, env=ENV)
        line = assert_refused(second, ["runs/r", f"process {holder.pid}", "in use"], before,
                              [tmp_path / "runs"])  # fmt: skip
        assert line.startswith("error: ")
        holder.send_signal(signal.SIGTERM)  # what a scheduler sends at its time limit
        _, err = _finish(holder)
    finally:
        holder.kill()
    assert holder.returncode == 143, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "terminated (SIGTERM)"
    assert [r["epoch"] for r in read_log(run / "log.jsonl")] == [1]
    assert (run / LOCK_NAME).read_text().split()[0] == str(holder.pid)  # left by a dead holder
    done = mea("train", "--resume", "--name", "r", cwd=tmp_path, env=ENV)  # takes it over
    assert done.returncode == 0, done.stderr
    assert [r["epoch"] for r in read_log(run / "log.jsonl")] == [1, 2, 3]


def test_a_held_comparison_folder_is_refused(store: Path, tmp_path: Path) -> None:
    folder = tmp_path / "runs" / "cmp"
    folder.mkdir(parents=True)
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, b"4242 somehost\n")
        before = snapshot(tmp_path)
        r = mea("compare", str(store), "--dataset", "mosi", "--models", "mea,mult", "--seeds", "1",
                "--epochs", "1", "--name", "cmp", cwd=tmp_path, env=ENV)  # fmt: skip
        assert_refused(r, ["runs/cmp", "process 4242 on somehost"], before, [tmp_path])
    finally:
        os.close(fd)


@pytest.mark.slow
def test_compare_sigterm_is_143_and_the_rerun_cleans_a_killed_runs_temporary_files(
    store: Path, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    small = {f"mea.{k}": v for k, v in TINY.items()} | {
        "mult.d": 16, "mult.heads": 2, "mult.layers": 1, "mult.memory_layers": 1}
    args = ["compare", str(store), "--dataset", "mosi", "--models", "mea,mult", "--seeds", "1",
            "--epochs", "2", "--name", "cmp", "--format", "md",
            *[x for k, v in small.items() for x in ("--set", f"{k}={v}")]]  # fmt: skip
    proc = _popen(args, tmp_path, gate_env(gate, "epoch", 0, ENV))
    try:
        wait_blocked(gate, proc)
        proc.send_signal(signal.SIGTERM)
        _, err = _finish(proc)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    job = tmp_path / "runs" / "cmp" / "mea" / "1111"
    assert json.loads((job / "log.jsonl").read_text().splitlines()[-1])["epoch"] == 1
    # what a kill -9 while writing leaves: our temporary files, beside a user's look-alikes
    ours = [job / ".state.pt.0123abcd.tmp", tmp_path / "runs" / "cmp" / ".compare.json.89abcdef.tmp"]
    theirs = [job / "notes.tmp", job / ".state.pt.tmp", job / ".state.pt.0123abcz.tmp"]
    for p in ours + theirs:
        p.write_text("x")
    r = mea(*args, cwd=tmp_path, env=ENV)
    assert r.returncode == 0, r.stderr
    assert [p for p in ours if p.exists()] == [] and all(p.exists() for p in theirs)


# ---------------------------------------------------------------- state.pt of another run
def test_state_of_another_run_is_refused(two_runs: Path) -> None:
    """Before: a RuntimeError traceback from load_state_dict (size mismatch)."""
    run = _unfinished_copy(two_runs, "a", "a-foreign")
    shutil.copy(two_runs / "b" / "state.pt", run / "state.pt")
    before = snapshot(two_runs)
    r = mea("train", "--resume", "--name", "a-foreign", "--runs-dir", str(two_runs), env=ENV)
    assert_refused(r, [str(run / "state.pt"), "another run"], before, [two_runs])


def test_old_state_without_a_run_digest_of_another_model_is_refused(two_runs: Path) -> None:
    run = _unfinished_copy(two_runs, "a", "a-old")
    state = torch.load(two_runs / "b" / "state.pt", weights_only=True)
    del state["config_sha256"]  # a state.pt written before the digest was recorded
    torch.save(state, run / "state.pt")
    before = snapshot(two_runs)
    r = mea("train", "--resume", "--name", "a-old", "--runs-dir", str(two_runs), env=ENV)
    assert_refused(r, [str(run / "state.pt"), "another model"], before, [two_runs])


def test_own_state_resumes(two_runs: Path) -> None:
    run = _unfinished_copy(two_runs, "a", "a-own")
    r = mea("train", "--resume", "--name", "a-own", "--runs-dir", str(two_runs), env=ENV)
    assert r.returncode == 0, r.stderr
    assert "resuming after epoch 1" in r.stderr + r.stdout
    assert (run / "metrics.json").is_file()


# ---------------------------------------------------------------- names, links
@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["info", f"{LONG}.h5"], ["feature store", "303 bytes"]),
        (["synth", "--like", "mosi", "--n", "8", "--out", f"{LONG}.h5"], ["feature store", "303 bytes"]),
        (["eval", f"{LONG}.pt"], ["checkpoint", "303 bytes"]),
        (["extract", LONG, "--out", "o.h5"], ["video", "300 bytes"]),
        (["predict", f"{LONG}.mp4", "--ckpt", "x.pt"], ["video", "304 bytes"]),
        (["import", "mult", f"{LONG}.pkl", "--out", "o.h5"], ["304 bytes"]),
        (["train", "STORE", "--dataset", "mosi", "--name", LONG], ["run name", "300 bytes"]),
        # fits the file system, but not with the temporary file written beside it
        (["synth", "--like", "mosi", "--n", "8", "--out", "s" * 245 + ".h5"], ["+14", "255"]),
    ],
    ids=["info", "synth-out", "eval", "extract", "predict", "import", "train-name", "temp-room"],
)
def test_names_over_the_file_system_limit_are_one_line(
    args: list[str], words: list[str], store: Path, tmp_path: Path
) -> None:
    """Before: an OSError (ENAMETOOLONG) traceback from the first Path.exists()."""
    args = [str(store) if a == "STORE" else a for a in args]
    before = snapshot(tmp_path)
    assert_refused(mea(*args, cwd=tmp_path, env=ENV), words, before, [tmp_path])


@pytest.fixture
def csd_dir(tmp_path: Path) -> Path:
    folds = standard_folds("mosi")
    d, _ = make_dir(tmp_path, [folds[s][0] for s in ("train", "valid", "test")],
                    np.random.default_rng(0))  # fmt: skip
    return d


def test_a_broken_csd_link_is_one_line(csd_dir: Path, tmp_path: Path) -> None:
    audio = csd_dir / "CMU_MOSI_COVAREP.csd"
    audio.unlink()
    audio.symlink_to(tmp_path / "moved" / "CMU_MOSI_COVAREP.csd")  # the dataset was moved
    before = snapshot(tmp_path)
    r = mea("import", "csd", str(csd_dir), "--dataset", "mosi", "--out", str(tmp_path / "o.h5"))
    assert_refused(r, [str(audio), "broken symbolic link", str(tmp_path / "moved")], before, [tmp_path])
    r = mea("import", "csd", str(csd_dir), "--dataset", "mosi", "--out", str(tmp_path / "o.h5"),
            "--audio-csd", audio.name)  # fmt: skip
    assert_refused(r, [str(audio), "broken symbolic link"], before, [tmp_path])


def test_a_csd_link_loop_is_one_line(csd_dir: Path, tmp_path: Path) -> None:
    (csd_dir / "loop_a.csd").symlink_to("loop_b.csd")
    (csd_dir / "loop_b.csd").symlink_to("loop_a.csd")
    before = snapshot(tmp_path)
    r = mea("import", "csd", str(csd_dir), "--dataset", "mosi", "--out", str(tmp_path / "o.h5"),
            "--audio-csd", "loop_a.csd")  # fmt: skip
    assert_refused(r, ["loop_a.csd", "broken symbolic link"], before, [tmp_path])


# ---------------------------------------------------------------- extraction workers
def _clips(root: Path, n: int) -> Path:
    for k in range(n):
        talking_astronaut(root / f"clip{k}.mp4", "one two", lead=0.2, tail=0.2)
        (root / f"clip{k}.txt").write_text("one two")
    return root


@pytest.mark.slow
def test_kill_9_of_extract_ends_its_workers_and_the_rerun_cleans_up(tmp_path: Path) -> None:
    """Before: both workers stayed alive (idle, models loaded) after their parent's kill -9."""
    require_media()
    videos = _clips(tmp_path / "videos", 3)
    gate = tmp_path / "gate"
    out, cache = tmp_path / "out.h5", tmp_path / "out.h5.cache"
    args = ["extract", str(videos), "--out", str(out), "--no-asr"]
    proc = _popen([*args, "--workers", "2"], tmp_path, gate_env(gate, "video", 2, ENV))
    try:
        held = wait_blocked(gate, proc)  # one worker held at the third video ...
        wait_for(lambda: len(list(cache.glob("*.npz"))) == 2)  # ... the other idle
        workers = children(proc.pid)
        assert set(held.values()) <= set(workers) and len(workers) >= 2, (held, workers)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert wait_gone(workers) == []  # every child: both workers and multiprocessing's helper
    # what a kill -9 can leave: a half-written cache entry and store; and a user's look-alikes
    ours = [cache / ".0123456789abcdef0123.npz.0badf00d.tmp", tmp_path / ".out.h5.12345678.tmp"]
    theirs = [cache / "notes.tmp", tmp_path / ".other.h5.12345678.tmp", tmp_path / ".out.h5.tmp"]
    for p in ours + theirs:
        p.write_text("x")
    r = mea(*args, cwd=tmp_path, env=ENV)
    assert r.returncode == 0, r.stderr
    assert [p for p in ours if p.exists()] == [] and all(p.exists() for p in theirs)
    assert "1 / 2" in r.stdout  # extracted now / from cache


@pytest.mark.slow
def test_sigterm_of_extract_is_143_and_stops_its_workers(tmp_path: Path) -> None:
    """Before: exit 130, as for Ctrl-C."""
    require_media()
    videos = _clips(tmp_path / "videos", 2)
    gate = tmp_path / "gate"
    out = tmp_path / "out.h5"
    proc = _popen(["extract", str(videos), "--out", str(out), "--no-asr", "--workers", "2"],
                  tmp_path, gate_env(gate, "video", 0, ENV))  # fmt: skip
    try:
        held = wait_blocked(gate, proc, count=2)
        proc.send_signal(signal.SIGTERM)
        _, err = _finish(proc)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "no store was written" in err
    assert wait_gone(list(held.values())) == []
    assert not out.exists() and not [p for p in tmp_path.rglob("*.tmp")]
