"""``mea import mmsa``: MMSA pickles written here in MMSA's layout, checked element by element."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from mea_cli.artifacts.features import FeatureStore
from mea_cli.data.importers import ImportFormatError, import_mmsa

DIMS = {"text": 8, "vision": 4, "audio": 5}
PADDED = {"text": 6, "vision": 10, "audio": 9}
SIZES = {"train": 6, "valid": 2, "test": 3}


def make_mmsa(rng: np.random.Generator, with_bert: bool) -> tuple[dict, dict]:
    data, real = {}, {}
    for split, n in SIZES.items():
        part: dict = {
            "id": np.array([f"{split}Vid$_${i}" for i in range(n)], dtype=object),
            "raw_text": np.array([f"words of {split} {i}" for i in range(n)], dtype=object),
            "regression_labels": rng.uniform(-3, 3, n).astype(np.float32),
            "classification_labels": np.zeros(n, np.float32),
        }
        real[split] = {}
        for m, d in DIMS.items():
            t = PADDED[m]
            x = np.zeros((n, t, d), np.float32)
            lens = np.array([0, t] + [int(rng.integers(1, t)) for _ in range(n - 2)])
            seqs = []
            for i, length in enumerate(lens):
                seq = rng.normal(size=(length, d)).astype(np.float32)
                if m == "audio" and length:
                    seq[-1, 1] = -np.inf
                if length > 1:
                    seq[-1, 0] = 0.0  # zero values are data, lengths decide
                x[i, :length] = seq
                seqs.append(seq)
            part[m] = x
            real[split][m] = seqs
            if m != "text":
                part[f"{m}_lengths"] = lens.astype(np.int64)
            elif with_bert:
                mask = (np.arange(t)[None, :] < lens[:, None]).astype(np.float32)
                part["text_bert"] = np.stack([np.ones_like(mask), mask, np.zeros_like(mask)], 1)
        data[split] = part
    return data, real


def write_pickle(path: Path, obj: object) -> Path:
    with path.open("wb") as fh:
        pickle.dump(obj, fh)
    return path


@pytest.mark.parametrize("with_bert", [True, False])
def test_mmsa_values_lengths_labels_text(tmp_path: Path, with_bert: bool) -> None:
    rng = np.random.default_rng(11)
    data, real = make_mmsa(rng, with_bert)
    if not with_bert:  # no mask: trailing zero rows are stripped, so no real row may be zero
        for split in real.values():
            for seq in split["text"]:
                seq[np.all(seq == 0, axis=1)] = 0.5
        for s, part in data.items():
            for i, seq in enumerate(real[s]["text"]):
                part["text"][i, : len(seq)] = seq
    src = write_pickle(tmp_path / "unaligned_50.pkl", data)
    report = import_mmsa(src, tmp_path / "o.h5", "mosi")
    assert report.splits == SIZES
    method = "text_bert mask" if with_bert else "trailing zero rows stripped"
    assert report.modalities["text"]["lengths_from"] == method
    n_bad = sum(int(np.isinf(s).sum()) for p in real.values() for s in p["audio"])
    assert report.modalities["audio"]["nonfinite_fixed"] == n_bad > 0
    with FeatureStore(tmp_path / "o.h5") as store, h5py.File(tmp_path / "o.h5") as f:
        raw_text = [x.decode() for x in f["samples/raw_text"][:]]
        for split, n in SIZES.items():
            for i in range(n):
                k = store.index_of(f"{split}Vid$_${i}")
                assert store.samples.video[k] == f"{split}Vid"
                assert store.samples.split[k] == split
                assert store.samples.label[k, 0] == data[split]["regression_labels"][i]
                assert raw_text[k] == f"words of {split} {i}"
                for m in DIMS:
                    want = np.where(np.isfinite(real[split][m][i]), real[split][m][i], 0)
                    np.testing.assert_array_equal(store.sequence(k, m), want)


def test_mmsa_reports_values_past_length_and_errors(tmp_path: Path) -> None:
    rng = np.random.default_rng(12)
    data, _ = make_mmsa(rng, True)
    data["train"]["vision"][2, -1, 0] = 7.0  # past a stated length (sample 2 is shorter than T)
    assert data["train"]["vision_lengths"][2] < PADDED["vision"]
    src = write_pickle(tmp_path / "u.pkl", data)
    report = import_mmsa(src, tmp_path / "o.h5")
    assert report.modalities["vision"]["nonzero_values_past_length"] == 1
    assert any("past the stated lengths" in x for x in report.notes)
    with pytest.raises(ImportFormatError, match="iemocap needs four binary emotion"):
        import_mmsa(src, tmp_path / "x.h5", "iemocap")
    data["test"]["audio_lengths"][0] = 99
    bad = write_pickle(tmp_path / "bad.pkl", data)
    with pytest.raises(ImportFormatError, match=r"test/audio_lengths\[0\] = 99 is outside"):
        import_mmsa(bad, tmp_path / "x.h5", "mosi")
    assert not (tmp_path / "x.h5").exists()


def test_cli_mmsa_refuses_mult_layout(tmp_path: Path) -> None:
    mult = {s: {"labels": np.zeros((2, 1, 1))} for s in ("train", "valid", "test")}
    src = write_pickle(tmp_path / "mult.pkl", mult)
    out = tmp_path / "o.h5"
    r = subprocess.run(
        [sys.executable, "-m", "mea_cli", "import", "mmsa", str(src), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "use `mea import mult`" in r.stderr and "mult.pkl" in r.stderr
    assert not out.exists()


def test_mmsa_dropped_sample_is_a_failure_row(tmp_path: Path) -> None:
    """A sample whose label is not finite is dropped, counted and a ``/failures`` row."""
    data, _ = make_mmsa(np.random.default_rng(13), True)
    data["test"]["regression_labels"][1] = np.inf
    report = import_mmsa(write_pickle(tmp_path / "u.pkl", data), tmp_path / "o.h5", "mosi")
    assert report.dropped == {"label is not finite": 1}
    with FeatureStore(tmp_path / "o.h5") as store:
        assert "testVid$_$1" not in set(store.samples.id)
        assert [(f.video, f.stage, f.message) for f in store.failures] == [
            ("testVid$_$1", "import", "sample testVid$_$1: label is not finite")
        ]
