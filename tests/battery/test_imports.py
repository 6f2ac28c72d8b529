"""Battery, imports: a benchmark file that puts one segment in two splits (leakage) is refused
by ``mea import`` with both places named, before the store is written: one line, exit 2,
no output."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from battery.harness import assert_refused, mea, snapshot
from battery.safety_data import mmsa_pickle, mult_pickle


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("imports")


def test_mult_same_segment_in_train_and_test(root: Path) -> None:
    src = mult_pickle(root / "leak-mult.pkl", leak=True)
    before = snapshot(root)
    r = mea("import", "mult", str(src), "--out", str(root / "out.h5"))
    assert_refused(r, (str(src), "trainv2", "train[2]", "test[1]", "two splits"), before, [root])


def test_mmsa_same_segment_in_train_and_valid(root: Path) -> None:
    src = mmsa_pickle(root / "leak-mmsa.pkl", leak=True)
    before = snapshot(root)
    r = mea("import", "mmsa", str(src), "--out", str(root / "out.h5"))
    assert_refused(r, (str(src), "train[1]", "valid[0]", "two splits"), before, [root])


def _csd(path: Path, root_name: str, videos: list[str], dim: int) -> None:
    with h5py.File(path, "w") as f:
        g = f.create_group(root_name)
        data = g.create_group("data")
        for v in videos:
            d = data.create_group(v)
            d["features"] = np.ones((2, dim), np.float32)
            d["intervals"] = np.array([[0.0, 1.0], [1.0, 2.0]])
        g.create_group("metadata")


def test_csd_folds_with_a_video_in_two_splits(root: Path) -> None:
    src = root / "csd"
    src.mkdir()
    videos = ["v1", "v2", "v3"]
    for name, dim in (("text", 3), ("vision", 2), ("audio", 2), ("labels", 1)):
        _csd(src / f"{name}.csd", name, videos, dim)
    folds = root / "folds.json"
    folds.write_text(json.dumps({"train": ["v1", "v2"], "valid": [], "test": ["v2", "v3"]}))
    before = snapshot(root)
    r = mea("import", "csd", str(src), "--out", str(root / "out.h5"), "--folds", str(folds),
            "--text-csd", "text.csd", "--vision-csd", "vision.csd", "--audio-csd", "audio.csd",
            "--labels-csd", "labels.csd")  # fmt: skip
    assert_refused(r, (str(folds), "'v2'", "train", "test"), before, [root])
