"""Every command with every kind of bad path: exit 2, one line naming the path and the problem,
no traceback, and nothing created (a directory listing before and after is the same).

The cases run :func:`mea_cli.cli.main` in-process (the entry point of the ``mea`` script, so
the exit code is the one a shell sees; a few are repeated in a subprocess below). Unwritable
places are ``/sys`` (refused even to root, see ``tests/test_paths.py``) and ``/proc``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mea_cli import cli

UNWRITABLE = Path("/sys/mea-test")


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def place(tmp_path: Path) -> Path:
    """A folder with the things a user gets wrong: a text file, an empty file, a one-byte .pt, an
    empty folder, a run directory with a (dummy) checkpoint and a two-seed run with none at the
    top."""
    (tmp_path / "afile.txt").write_text("hello\n")
    (tmp_path / "empty.bin").write_bytes(b"")
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "dot.pt").write_bytes(b".")  # a one-byte legacy pickle: torch raises IndexError
    (tmp_path / "adir").mkdir()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "ckpt.pt").write_bytes(b"not used: an output check fails first")
    for seed in ("2", "10"):
        (tmp_path / "two-seeds" / "seeds" / seed).mkdir(parents=True)
        (tmp_path / "two-seeds" / "seeds" / seed / "ckpt.pt").write_bytes(b"x")
    return tmp_path


# (case id, arguments given the place, the path the message names, words of the problem)
Case = tuple[str, Callable[[Path], list[str]], Callable[[Path], str], str]
I = "no such"  # noqa: E741 - short names keep the table readable
CASES: list[Case] = [
    # info: input store missing / empty / a directory / not HDF5
    ("info-missing", lambda p: ["info", f"{p}/missing.h5"], lambda p: f"{p}/missing.h5", "no such feature store"),
    ("info-empty", lambda p: ["info", f"{p}/empty.bin"], lambda p: f"{p}/empty.bin", "is empty"),
    ("info-dir", lambda p: ["info", f"{p}/adir"], lambda p: f"{p}/adir", "is a directory"),
    ("info-text", lambda p: ["info", f"{p}/afile.txt"], lambda p: f"{p}/afile.txt", "not a readable HDF5"),
    ("info-model-features", lambda p: ["info", "--model", "mea", "--features", f"{p}/m.h5"], lambda p: f"{p}/m.h5", I),
    # synth: the output store
    ("synth-out-dir", lambda p: ["synth", "--out", f"{p}/adir"], lambda p: f"{p}/adir", "existing directory"),
    ("synth-parent-file", lambda p: ["synth", "--out", f"{p}/afile.txt/x.h5"], lambda p: f"{p}/afile.txt/x.h5", "is a file, not a directory"),
    ("synth-parent-missing", lambda p: ["synth", "--out", f"{p}/nope/deeper/x.h5"], lambda p: f"{p}/nope/deeper/x.h5", "does not exist"),
    ("synth-unwritable", lambda p: ["synth", "--out", f"{UNWRITABLE}.h5"], lambda p: f"{UNWRITABLE}.h5", "not writable"),
    # import: the source, the folds, the output store
    ("import-mult-missing", lambda p: ["import", "mult", f"{p}/x.pkl", "--out", f"{p}/o.h5"], lambda p: f"{p}/x.pkl", "no such mult pickle"),
    ("import-mult-empty", lambda p: ["import", "mult", f"{p}/empty.bin", "--out", f"{p}/o.h5"], lambda p: f"{p}/empty.bin", "is empty"),
    ("import-mmsa-dir", lambda p: ["import", "mmsa", f"{p}/adir", "--out", f"{p}/o.h5"], lambda p: f"{p}/adir", "is a directory"),
    ("import-mult-text", lambda p: ["import", "mult", f"{p}/afile.txt", "--out", f"{p}/o.h5"], lambda p: f"{p}/afile.txt", "not a readable pickle"),
    ("import-csd-missing", lambda p: ["import", "csd", f"{p}/csd", "--out", f"{p}/o.h5"], lambda p: f"{p}/csd", "no such directory"),
    ("import-csd-file", lambda p: ["import", "csd", f"{p}/afile.txt", "--out", f"{p}/o.h5"], lambda p: f"{p}/afile.txt", "is a file"),
    ("import-csd-folds", lambda p: ["import", "csd", f"{p}/adir", "--folds", f"{p}/f.json", "--out", f"{p}/o.h5"], lambda p: f"{p}/f.json", "no such folds file"),
    ("import-out-dir", lambda p: ["import", "mult", f"{p}/afile.txt", "--out", f"{p}/adir"], lambda p: f"{p}/adir", "existing directory"),
    ("import-csd-out-dir", lambda p: ["import", "csd", f"{p}/adir", "--out", f"{p}/adir"], lambda p: f"{p}/adir", "existing directory"),
    ("import-parent-file", lambda p: ["import", "mmsa", f"{p}/afile.txt", "--out", f"{p}/afile.txt/o.h5"], lambda p: f"{p}/afile.txt/o.h5", "is a file, not a directory"),
    ("import-parent-missing", lambda p: ["import", "mult", f"{p}/afile.txt", "--out", f"{p}/nope/deeper/o.h5"], lambda p: f"{p}/nope/deeper/o.h5", "does not exist"),
    ("import-unwritable", lambda p: ["import", "mult", f"{p}/afile.txt", "--out", f"{UNWRITABLE}.h5"], lambda p: f"{UNWRITABLE}.h5", "not writable"),
    # extract: videos, labels, model/vector files, output store, cache folder
    ("extract-missing", lambda p: ["extract", f"{p}/videos", "--out", f"{p}/e.h5"], lambda p: f"{p}/videos", "no such file or folder"),
    ("extract-empty-video", lambda p: ["extract", f"{p}/empty.mp4", "--out", f"{p}/e.h5"], lambda p: f"{p}/empty.mp4", "is empty"),
    ("extract-labels-missing", lambda p: ["extract", f"{p}/adir", "--labels", f"{p}/l.csv", "--out", f"{p}/e.h5"], lambda p: f"{p}/l.csv", "no such labels file"),
    ("extract-labels-dir", lambda p: ["extract", f"{p}/adir", "--labels", f"{p}/adir", "--out", f"{p}/e.h5"], lambda p: f"{p}/adir", "is a directory"),
    ("extract-glove-missing", lambda p: ["extract", f"{p}/adir", "--glove", f"{p}/g.kv", "--out", f"{p}/e.h5"], lambda p: f"{p}/g.kv", I),
    ("extract-face-model-empty", lambda p: ["extract", f"{p}/adir", "--face-model", f"{p}/empty.bin", "--out", f"{p}/e.h5"], lambda p: f"{p}/empty.bin", "is empty"),
    ("extract-face-model-text", lambda p: ["extract", f"{p}/adir", "--face-model", f"{p}/afile.txt", "--out", f"{p}/e.h5"], lambda p: f"{p}/afile.txt", "not a MediaPipe face landmarker model"),
    ("extract-out-dir", lambda p: ["extract", f"{p}/adir", "--out", f"{p}/adir"], lambda p: f"{p}/adir", "existing directory"),
    ("extract-parent-file", lambda p: ["extract", f"{p}/adir", "--out", f"{p}/afile.txt/e.h5"], lambda p: f"{p}/afile.txt/e.h5", "is a file, not a directory"),
    ("extract-parent-missing", lambda p: ["extract", f"{p}/adir", "--out", f"{p}/nope/dir/e.h5"], lambda p: f"{p}/nope/dir/e.h5", "does not exist"),
    ("extract-unwritable", lambda p: ["extract", f"{p}/adir", "--out", f"{UNWRITABLE}.h5"], lambda p: f"{UNWRITABLE}.h5", "not writable"),
    ("extract-cache-file", lambda p: ["extract", f"{p}/adir", "--out", f"{p}/e.h5", "--cache", f"{p}/afile.txt"], lambda p: f"{p}/afile.txt", "is a file, not a directory"),
    ("extract-cache-proc", lambda p: ["extract", f"{p}/adir", "--out", f"{p}/e.h5", "--cache", "/proc/nope"], lambda p: "/proc/nope", "not writable"),
    ("extract-cache-parent-missing", lambda p: ["extract", f"{p}/adir", "--out", f"{p}/e.h5", "--cache", f"{p}/nope/c"], lambda p: f"{p}/nope/c", "does not exist"),
    # merge: the input stores, the output store
    ("merge-missing", lambda p: ["merge", f"{p}/a.h5", "--out", f"{p}/o.h5"], lambda p: f"{p}/a.h5", "no such feature store"),
    ("merge-empty", lambda p: ["merge", f"{p}/empty.bin", "--out", f"{p}/o.h5"], lambda p: f"{p}/empty.bin", "is empty"),
    ("merge-dir", lambda p: ["merge", f"{p}/adir", "--out", f"{p}/o.h5"], lambda p: f"{p}/adir", "is a directory"),
    ("merge-text", lambda p: ["merge", f"{p}/afile.txt", "--out", f"{p}/o.h5"], lambda p: f"{p}/afile.txt", "not a readable HDF5"),
    ("merge-out-dir", lambda p: ["merge", f"{p}/afile.txt", "--out", f"{p}/adir"], lambda p: f"{p}/adir", "existing directory"),
    ("merge-parent-file", lambda p: ["merge", f"{p}/afile.txt", "--out", f"{p}/afile.txt/x.h5"], lambda p: f"{p}/afile.txt/x.h5", "is a file, not a directory"),
    ("merge-parent-missing", lambda p: ["merge", f"{p}/afile.txt", "--out", f"{p}/nope/x.h5"], lambda p: f"{p}/nope/x.h5", "does not exist"),
    ("merge-unwritable", lambda p: ["merge", f"{p}/afile.txt", "--out", f"{UNWRITABLE}.h5"], lambda p: f"{UNWRITABLE}.h5", "not writable"),
    ("align-missing", lambda p: ["align", f"{p}/a.h5", "--to", "words", "--out", f"{p}/o.h5"], lambda p: f"{p}/a.h5", "no such feature store"),
    ("align-empty", lambda p: ["align", f"{p}/empty.bin", "--to", "words", "--out", f"{p}/o.h5"], lambda p: f"{p}/empty.bin", "is empty"),
    ("align-dir", lambda p: ["align", f"{p}/adir", "--to", "words", "--out", f"{p}/o.h5"], lambda p: f"{p}/adir", "is a directory"),
    ("align-text", lambda p: ["align", f"{p}/afile.txt", "--to", "words", "--out", f"{p}/o.h5"], lambda p: f"{p}/afile.txt", "not a readable HDF5"),
    ("align-out-dir", lambda p: ["align", f"{p}/afile.txt", "--to", "words", "--out", f"{p}/adir"], lambda p: f"{p}/adir", "existing directory"),
    ("align-parent-missing", lambda p: ["align", f"{p}/afile.txt", "--to", "words", "--out", f"{p}/nope/x.h5"], lambda p: f"{p}/nope/x.h5", "does not exist"),
    ("align-out-is-input", lambda p: ["align", f"{p}/afile.txt", "--to", "words", "--out", f"{p}/afile.txt"], lambda p: f"{p}/afile.txt", "also an input"),
    # train: the store, the config file, the runs directory
    ("train-missing", lambda p: ["train", f"{p}/s.h5", "--dataset", "mosi", "--runs-dir", f"{p}/runs"], lambda p: f"{p}/s.h5", "no such feature store"),
    ("train-empty", lambda p: ["train", f"{p}/empty.bin", "--dataset", "mosi", "--runs-dir", f"{p}/runs"], lambda p: f"{p}/empty.bin", "is empty"),
    ("train-dir", lambda p: ["train", f"{p}/adir", "--dataset", "mosi", "--runs-dir", f"{p}/runs"], lambda p: f"{p}/adir", "is a directory"),
    ("train-text", lambda p: ["train", f"{p}/afile.txt", "--dataset", "mosi", "--runs-dir", f"{p}/runs", "--device", "cpu"], lambda p: f"{p}/afile.txt", "not a readable HDF5"),
    ("train-config-missing", lambda p: ["train", f"{p}/afile.txt", "--dataset", "mosi", "--config", f"{p}/c.toml"], lambda p: f"{p}/c.toml", "no such config file"),
    ("train-runs-file", lambda p: ["train", f"{p}/afile.txt", "--dataset", "mosi", "--runs-dir", f"{p}/afile.txt"], lambda p: f"{p}/afile.txt", "is a file, not a directory"),
    ("train-runs-parent-missing", lambda p: ["train", f"{p}/afile.txt", "--dataset", "mosi", "--runs-dir", f"{p}/nope/runs"], lambda p: f"{p}/nope/runs", "does not exist"),
    ("train-runs-unwritable", lambda p: ["train", f"{p}/afile.txt", "--dataset", "mosi", "--runs-dir", str(UNWRITABLE)], lambda p: str(UNWRITABLE), "not writable"),
    # eval: the checkpoint (file or run directory), the store
    ("eval-missing", lambda p: ["eval", f"{p}/ckpt.pt"], lambda p: f"{p}/ckpt.pt", "no such checkpoint file or run directory"),
    ("eval-empty", lambda p: ["eval", f"{p}/empty.bin"], lambda p: f"{p}/empty.bin", "is empty"),
    ("eval-dir-without-ckpt", lambda p: ["eval", f"{p}/adir"], lambda p: f"{p}/adir", "no checkpoint (ckpt.pt)"),
    ("eval-two-seeds", lambda p: ["eval", f"{p}/two-seeds"], lambda p: f"{p}/two-seeds/seeds/2, {p}/two-seeds/seeds/10", "one checkpoint per seed"),
    ("eval-text", lambda p: ["eval", f"{p}/afile.txt"], lambda p: f"{p}/afile.txt", "not a readable checkpoint"),
    ("eval-garbage", lambda p: ["eval", f"{p}/dot.pt"], lambda p: f"{p}/dot.pt", "not a readable checkpoint"),
    ("eval-features-missing", lambda p: ["eval", f"{p}/run", "--features", f"{p}/s.h5"], lambda p: f"{p}/s.h5", "no such feature store"),
    # ablate and sweep: the runs directory, the run
    ("ablate-runs-file", lambda p: ["ablate", "--runs-dir", f"{p}/afile.txt"], lambda p: f"{p}/afile.txt", "is a file, not a directory"),
    ("ablate-runs-parent-missing", lambda p: ["ablate", "--runs-dir", f"{p}/nope/runs"], lambda p: f"{p}/nope/runs", "does not exist"),
    ("ablate-runs-unwritable", lambda p: ["ablate", "--runs-dir", str(UNWRITABLE)], lambda p: str(UNWRITABLE), "not writable"),
    ("ablate-run-file", lambda p: ["ablate", "--run", f"{p}/afile.txt", "--runs-dir", str(p)], lambda p: f"{p}/afile.txt", "is a file, not a run directory"),
    ("ablate-run-missing", lambda p: ["ablate", "--run", "gone", "--runs-dir", str(p)], lambda p: f"{p}/gone", "no such run directory"),
    ("sweep-runs-file", lambda p: ["sweep", "mu=0,0.1", "--runs-dir", f"{p}/afile.txt"], lambda p: f"{p}/afile.txt", "is a file, not a directory"),
    ("sweep-run-not-a-run", lambda p: ["sweep", "mu=0,0.1", "--run", f"{p}/adir"], lambda p: f"{p}/adir", "not a training run"),
    # compare: the store, the runs directory
    ("compare-store-missing", lambda p: ["compare", f"{p}/s.h5", "--dataset", "mosi", "--models", "mea,mult"], lambda p: f"{p}/s.h5", "no such feature store"),
    ("compare-store-dir", lambda p: ["compare", f"{p}/adir", "--dataset", "mosi", "--models", "mea,mult"], lambda p: f"{p}/adir", "is a directory"),
    ("compare-runs-file", lambda p: ["compare", f"{p}/afile.txt", "--dataset", "mosi", "--models", "mea,mult", "--runs-dir", f"{p}/afile.txt"], lambda p: f"{p}/afile.txt", "is a file, not a directory"),
    ("compare-runs-parent-missing", lambda p: ["compare", f"{p}/afile.txt", "--dataset", "mosi", "--models", "mea,mult", "--runs-dir", f"{p}/nope/runs"], lambda p: f"{p}/nope/runs", "does not exist"),
    ("compare-runs-unwritable", lambda p: ["compare", f"{p}/afile.txt", "--dataset", "mosi", "--models", "mea,mult", "--runs-dir", str(UNWRITABLE)], lambda p: str(UNWRITABLE), "not writable"),
    # tune: the store, the space and config files, the runs directory
    ("tune-store-missing", lambda p: ["tune", f"{p}/s.h5", "--dataset", "mosi", "--space", "mu=0:0.5"], lambda p: f"{p}/s.h5", "no such feature store"),
    ("tune-store-dir", lambda p: ["tune", f"{p}/adir", "--dataset", "mosi", "--space", "mu=0:0.5"], lambda p: f"{p}/adir", "is a directory"),
    ("tune-space-file-missing", lambda p: ["tune", f"{p}/afile.txt", "--dataset", "mosi", "--space-file", f"{p}/space.toml"], lambda p: f"{p}/space.toml", "no such search space file"),
    ("tune-config-missing", lambda p: ["tune", f"{p}/afile.txt", "--dataset", "mosi", "--space", "mu=0:0.5", "--config", f"{p}/c.toml"], lambda p: f"{p}/c.toml", "no such config file"),
    ("tune-runs-file", lambda p: ["tune", f"{p}/afile.txt", "--dataset", "mosi", "--space", "mu=0:0.5", "--runs-dir", f"{p}/afile.txt"], lambda p: f"{p}/afile.txt", "is a file, not a directory"),
    ("tune-best-parent-file", lambda p: ["tune", f"{p}/afile.txt", "--dataset", "mosi", "--space", "mu=0:0.5", "--best", f"{p}/afile.txt/b.toml"], lambda p: f"{p}/afile.txt/b.toml", "is a file, not a directory"),
    ("tune-best-dir", lambda p: ["tune", f"{p}/afile.txt", "--dataset", "mosi", "--space", "mu=0:0.5", "--best", f"{p}/adir"], lambda p: f"{p}/adir", "existing directory"),
    # predict: the clip or folder, the checkpoint, moved model files, the CSV
    ("predict-missing", lambda p: ["predict", f"{p}/clip.mp4", "--ckpt", f"{p}/run"], lambda p: f"{p}/clip.mp4", "no such video or folder"),
    ("predict-empty-video", lambda p: ["predict", f"{p}/empty.mp4", "--ckpt", f"{p}/run"], lambda p: f"{p}/empty.mp4", "is empty"),
    ("predict-ckpt-missing", lambda p: ["predict", f"{p}/adir", "--ckpt", f"{p}/ckpt.pt"], lambda p: f"{p}/ckpt.pt", "no such checkpoint file or run directory"),
    ("predict-ckpt-dir", lambda p: ["predict", f"{p}/adir", "--ckpt", f"{p}/adir"], lambda p: f"{p}/adir", "no checkpoint (ckpt.pt)"),
    ("predict-two-seeds", lambda p: ["predict", f"{p}/adir", "--ckpt", f"{p}/two-seeds"], lambda p: f"{p}/two-seeds/seeds/2", "one checkpoint per seed"),
    ("predict-ckpt-text", lambda p: ["predict", f"{p}/adir", "--ckpt", f"{p}/afile.txt"], lambda p: f"{p}/afile.txt", "not a readable checkpoint"),
    ("predict-glove-missing", lambda p: ["predict", f"{p}/adir", "--ckpt", f"{p}/run", "--glove", f"{p}/g.kv"], lambda p: f"{p}/g.kv", I),
    ("predict-face-model-empty", lambda p: ["predict", f"{p}/adir", "--ckpt", f"{p}/run", "--face-model", f"{p}/empty.bin"], lambda p: f"{p}/empty.bin", "is empty"),
    ("predict-asr-model-missing", lambda p: ["predict", f"{p}/adir", "--ckpt", f"{p}/run", "--asr-model", f"{p}/asr"], lambda p: f"{p}/asr", "no such ASR model folder"),
    ("predict-asr-model-file", lambda p: ["predict", f"{p}/adir", "--ckpt", f"{p}/run", "--asr-model", f"{p}/afile.txt"], lambda p: f"{p}/afile.txt", "is a folder (CTranslate2's), not a file"),
    ("predict-out-dir", lambda p: ["predict", f"{p}/adir", "--ckpt", f"{p}/run", "--out", f"{p}/adir"], lambda p: f"{p}/adir", "existing directory"),
    ("predict-out-parent-missing", lambda p: ["predict", f"{p}/adir", "--ckpt", f"{p}/run", "--out", f"{p}/nope/o.csv"], lambda p: f"{p}/nope/o.csv", "does not exist"),
    ("predict-out-unwritable", lambda p: ["predict", f"{p}/adir", "--ckpt", f"{p}/run", "--out", f"{UNWRITABLE}.csv"], lambda p: f"{UNWRITABLE}.csv", "not writable"),
    ("predict-bad-checkpoint", lambda p: ["predict", f"{p}/adir", "--ckpt", f"{p}/run"], lambda p: f"{p}/run/ckpt.pt", "not a mea-cli checkpoint"),
    # viz: the checkpoint, the store, the output folder
    ("viz-missing", lambda p: ["viz", f"{p}/ckpt.pt", "--what", "wal"], lambda p: f"{p}/ckpt.pt", "no such checkpoint file or run directory"),
    ("viz-dir-without-ckpt", lambda p: ["viz", f"{p}/adir", "--what", "wal"], lambda p: f"{p}/adir", "no checkpoint (ckpt.pt)"),
    ("viz-two-seeds", lambda p: ["viz", f"{p}/two-seeds", "--what", "wal"], lambda p: f"{p}/two-seeds/seeds/2", "one checkpoint per seed"),
    ("viz-features-empty", lambda p: ["viz", f"{p}/run", "--what", "wal", "--features", f"{p}/empty.bin"], lambda p: f"{p}/empty.bin", "is empty"),
    ("viz-out-file", lambda p: ["viz", f"{p}/run", "--what", "wal", "--out", f"{p}/afile.txt"], lambda p: f"{p}/afile.txt", "is a file, not a directory"),
    ("viz-out-parent-missing", lambda p: ["viz", f"{p}/run", "--what", "wal", "--out", f"{p}/nope/viz"], lambda p: f"{p}/nope/viz", "does not exist"),
    ("viz-out-unwritable", lambda p: ["viz", f"{p}/run", "--what", "wal", "--out", str(UNWRITABLE)], lambda p: str(UNWRITABLE), "not writable"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "path", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_path_is_one_line_exit_2_and_creates_nothing(
    place: Path, mea, args: Callable, path: Callable, words: str
) -> None:
    before = tree(place)
    code, out, err = mea(*args(place))
    lines = [x for x in err.splitlines() if x.strip()]
    assert code == 2, (code, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert path(place) in lines[0] and words in lines[0], lines[0]
    assert out == ""
    assert tree(place) == before
    assert not UNWRITABLE.with_suffix(".h5").exists()


def test_every_command_is_covered() -> None:
    """A new command must come with its bad-path cases."""
    commands = {c.name or c.callback.__name__ for c in cli.app.registered_commands}
    covered = {args(Path("/x"))[0] for _, args, _, _ in CASES}
    assert commands <= covered, commands - covered


def _shell(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mea_cli", *args], capture_output=True, text=True, timeout=120
    )


def test_what_a_shell_sees(place: Path) -> None:
    """The same contract through the real ``mea`` process: exit 2, one line, nothing created."""
    before = tree(place)
    for args, path in (
        (["extract", str(place / "adir"), "--out", str(place / "nope/dir/e.h5")], place / "nope/dir/e.h5"),
        (["synth", "--out", str(place / "adir")], place / "adir"),
        (["eval", str(place / "two-seeds")], place / "two-seeds/seeds/10"),
    ):  # fmt: skip
        r = _shell(*args)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and str(path) in r.stderr, r.stderr
    assert tree(place) == before and not (place / "nope").exists()
