"""Battery, imports: a benchmark file that puts one segment in two splits (leakage) is refused
by ``mea import`` with both places named, before the store is written: one line, exit 2,
no output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
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


def test_mult_reversed_segment_is_kept_with_unknown_times(root: Path) -> None:
    """Not a refusal: a benchmark segment whose id says it ends before it starts keeps its
    features and label, with NaN start/end (a store may not hold reversed times), and the
    import report says so; the store written opens and passes the value checks."""
    import pickle

    from mea_cli.artifacts.features import FeatureStore
    from mea_cli.data.importers import import_mult

    src = mult_pickle(root / "reversed.pkl")
    data = pickle.loads(src.read_bytes())
    data["train"]["id"][0] = [b"trainv0", b"3.0", b"1.0"]
    src.write_bytes(pickle.dumps(data))
    report = import_mult(src, root / "reversed.h5", "mosi")
    with FeatureStore(root / "reversed.h5") as store:
        store.check_values()
        i = store.index_of("trainv0_3.0_1.0")
        assert np.isnan(store.samples.start[i]) and np.isnan(store.samples.end[i])
        j = store.index_of("trainv1_0.0_1.5")
        assert (store.samples.start[j], store.samples.end[j]) == (0.0, 1.5)
    assert any("end before they start" in n for n in report.notes), report.notes
