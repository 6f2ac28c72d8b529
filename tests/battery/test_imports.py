"""Battery, imports: a benchmark file that puts one segment in two splits (leakage) is refused
by ``mea import`` with both places named, before the store is written: one line, exit 2,
no output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from battery.harness import assert_refused, mea, snapshot
from battery.safety_data import csd_folder, mmsa_pickle, mult_pickle


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


def test_csd_folds_with_a_video_in_two_splits(root: Path) -> None:
    src = csd_folder(root / "csd")
    folds = root / "folds.json"
    folds.write_text(json.dumps({"train": ["v1", "v2"], "valid": [], "test": ["v2", "v3"]}))
    before = snapshot(root)
    r = mea("import", "csd", str(src), "--out", str(root / "out.h5"), "--folds", str(folds),
            "--text-csd", "text.csd", "--vision-csd", "vision.csd", "--audio-csd", "audio.csd",
            "--labels-csd", "labels.csd")  # fmt: skip
    assert_refused(r, (str(folds), "'v2'", "train", "test"), before, [root])
