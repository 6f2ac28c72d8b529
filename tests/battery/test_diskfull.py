"""Battery, disk full: every writer (HDF5 stores of synth / import / merge, the run's
config.json and checkpoint, the predictions CSV) turns a failed write into one line naming
the output, exit 2, and leaves no file behind (the temporary file is removed). A full disk
used to segfault synth / extract / import (exit 139 after thousands of HDF5 error lines).

Two ways to fill the disk:

* ``tmpfs``: a real, full file system (``ENOSPC``), a tmpfs mounted in a private user and
  mount namespace (``unshare``), filled up before the command runs; skipped where this system
  allows no such namespace;
* ``fsize``: everywhere, a file size limit (``RLIMIT_FSIZE``, with ``SIGXFSZ`` ignored, set by
  a ``sitecustomize`` on ``PYTHONPATH``): every write past the limit fails with ``EFBIG``,
  through the same C library calls (HDF5's included) a full disk fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from battery.harness import assert_refused, mea, snapshot
from battery.safety_data import TINY_SETS, mult_pickle, tiny_store, untrained_run

SITECUSTOMIZE = """\
import os, resource, signal
limit = os.environ.get("BATTERY_FSIZE")
if limit is not None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(limit), hard))
"""

# mount a small tmpfs on $1, fill it, run the rest, then list what is left there into $LEFT
FULL_DISK = """\
mount -t tmpfs -o size=64k tmpfs "$1" || exit 97
cat /dev/zero > "$1/filler" 2>/dev/null
dir="$1"; shift
"$@"; rc=$?
ls -A "$dir" > "$LEFT"
exit $rc
"""


def _namespaces_work(where: Path) -> bool:
    probe = where / "probe"
    probe.mkdir()
    try:
        r = subprocess.run(
            ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
             'mount -t tmpfs -o size=4k tmpfs "$0"', str(probe)],
            capture_output=True, timeout=60,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("diskfull")
    site = root / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    good = tiny_store(root / "good.h5")
    return {
        "root": root, "site": site, "good": good,
        "pkl": mult_pickle(root / "src.pkl"), "run": untrained_run(good, root / "runs"),
    }  # fmt: skip


def commands(w: dict[str, Path], out: Path) -> dict[str, tuple[list[str], Path]]:
    """Each writer: its arguments and the output the refusal must name."""
    return {
        "synth": (["synth", "--out", str(out / "s.h5"), "--n", "40"], out / "s.h5"),
        "import": (["import", "mult", str(w["pkl"]), "--out", str(out / "i.h5")], out / "i.h5"),
        "merge": (["merge", str(w["good"]), "--out", str(out / "m.h5")], out / "m.h5"),
        "eval-predictions": (["eval", str(w["run"]), "--predictions", str(out / "p.csv")],
                             out / "p.csv"),
        "train-config": (["train", str(w["good"]), "--dataset", "mosi", "--name", "r",
                          "--runs-dir", str(out / "runs"), "--epochs", "1", "--device", "cpu",
                          *TINY_SETS], out / "runs" / "r" / "config.json"),
    }  # fmt: skip


def fsize_env(w: dict[str, Path], limit: int) -> dict[str, str]:
    """The environment that limits every file the command writes to ``limit`` bytes.

    ``JOBLIB_MULTIPROCESSING=0``: scikit-learn's joblib probes shared memory at import with a
    write, and warns on a line of its own when that fails; no command here uses joblib."""
    path = os.pathsep.join([str(w["site"]), os.environ.get("PYTHONPATH", "")])
    return {"PYTHONPATH": path, "BATTERY_FSIZE": str(limit), "JOBLIB_MULTIPROCESSING": "0"}


SLOW = pytest.mark.slow  # these import torch before they write
CASES = ["synth", "import", "merge", pytest.param("eval-predictions", marks=SLOW),
         pytest.param("train-config", marks=SLOW)]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_full_file_system(world: dict[str, Path], case: str, tmp_path: Path) -> None:
    if not _namespaces_work(tmp_path):
        pytest.skip("no unprivileged user + mount namespace here to mount a small tmpfs")
    mount = tmp_path / "full"
    mount.mkdir()
    left = tmp_path / "left.txt"
    args, target = commands(world, mount)[case]
    before = snapshot(world["root"])
    r = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", FULL_DISK, "sh",
         str(mount), sys.executable, "-m", "mea_cli", *args],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "LEFT": str(left)},
    )  # fmt: skip
    assert_refused(r, (str(target), "no space left"), before, [world["root"]])
    assert left.read_text().split() == ["filler"], left.read_text()  # nothing else left there


@pytest.mark.parametrize("case", CASES)
def test_file_size_limit(world: dict[str, Path], case: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    args, target = commands(world, out)[case]
    before = snapshot(world["root"], out)
    env = fsize_env(world, 0)
    r = mea(*args, env=env)
    assert_refused(r, (str(target), "file too large"), before, [world["root"], out])


@pytest.mark.slow  # one epoch of a tiny model
def test_training_that_fills_the_disk_mid_run(world: dict[str, Path], tmp_path: Path) -> None:
    """config.json fits under the limit, the first checkpoint does not: one line naming it, the
    run folder keeps only what a later ``--resume`` needs, no temporary file is left."""
    runs = tmp_path / "runs"
    env = fsize_env(world, 16 * 1024)
    r = mea("train", str(world["good"]), "--dataset", "mosi", "--name", "r", "--runs-dir",
            str(runs), "--epochs", "1", "--device", "cpu", *TINY_SETS, env=env)  # fmt: skip
    lines = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert len(lines) == 1 and "file too large" in lines[0], r.stderr
    assert str(runs / "r") in lines[0]
    left = sorted(p.name for p in (runs / "r").iterdir())
    assert not [n for n in left if n.endswith(".tmp")], left
    assert "config.json" in left and "ckpt.pt" not in left, left
