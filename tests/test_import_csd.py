"""``mea import csd``: computational sequences written here in the CMU-MultimodalSDK layout."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import pytest

from mea_cli.artifacts.features import FeatureStore
from mea_cli.data.importers import ImportFormatError, import_csd
from mea_cli.data.importers.csd import standard_folds


def write_csd(
    path: Path, root: str, videos: dict[str, tuple[np.ndarray, np.ndarray]], names=None
) -> None:
    """The SDK's layout: /<root>/data/<video>/{features,intervals}, /<root>/metadata/<key>[0] JSON."""
    with h5py.File(path, "w") as f:
        g = f.create_group(root)
        data = g.create_group("data")
        for vid, (feats, iv) in videos.items():
            v = data.create_group(vid)
            v.create_dataset("features", data=feats)
            v.create_dataset("intervals", data=iv)
        meta = g.create_group("metadata")
        entries = {"root name": root, "computational sequence description": f"test {root}"}
        if names is not None:
            entries["dimension names"] = names
        for key, value in entries.items():
            ds = meta.create_dataset(key, (1,), dtype=h5py.string_dtype())
            ds[0] = json.dumps(value)


def steps(
    rng: np.random.Generator, duration: float, rate: float, dim: int
) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(0, duration, 1 / rate)
    iv = np.stack([t, t + 1 / rate], axis=1)
    return rng.normal(size=(len(t), dim)).astype(np.float32), iv


def make_dir(tmp_path: Path, videos: list[str], rng: np.random.Generator) -> tuple[Path, dict]:
    d = tmp_path / "csd"
    d.mkdir()
    segs = {v: np.array([[0.5, 2.0], [2.0, 3.7], [4.0, 4.0]]) for v in videos}  # last: empty span
    labels = {v: (rng.uniform(-3, 3, (3, 1)).astype(np.float32), segs[v]) for v in videos}
    labels[videos[1]][0][1, 0] = np.nan
    text, vision, audio = {}, {}, {}
    for v in videos:
        words = np.array([[0.1, 0.6], [0.6, 1.9], [1.9, 2.4], [2.4, 2.4], [3.0, 3.9]])
        text[v] = (rng.normal(size=(len(words), 3)).astype(np.float32), words)
        vision[v] = steps(rng, 5.0, 15.0, 4)
        a = steps(rng, 5.0, 12.5, 6)
        a[0][10, 2] = -np.inf  # at 0.8 s: inside the first segment
        audio[v] = a
    write_csd(d / "CMU_MOSI_Opinion_Labels.csd", "Opinion Segment Labels", labels)
    write_csd(d / "CMU_MOSI_TimestampedWordVectors.csd", "glove_vectors", text)
    write_csd(
        d / "CMU_MOSI_TimestampedWords.csd",
        "words",
        {v: (np.array([[b"w"]] * 2), np.zeros((2, 2))) for v in videos},
    )
    write_csd(
        d / "CMU_MOSI_Visual_Facet_42.csd",
        "FACET",
        {v: vision[v] for v in videos if v != videos[2]},
        [f"au{j}" for j in range(4)],
    )
    write_csd(d / "CMU_MOSI_COVAREP.csd", "COVAREP", audio)
    return d, {"labels": labels, "text": text, "vision": vision, "audio": audio}


def in_segment(iv: np.ndarray, start: float, end: float) -> np.ndarray:
    return ((iv[:, 0] < end) & (iv[:, 1] > start)) | (
        (iv[:, 0] == iv[:, 1]) & (iv[:, 0] >= start) & (iv[:, 0] < end)
    )


def test_csd_standard_folds_slicing_and_report(tmp_path: Path) -> None:
    folds = standard_folds("mosi")
    assert (len(folds["train"]), len(folds["valid"]), len(folds["test"])) == (52, 10, 31)
    videos = [folds["train"][0], folds["valid"][0], folds["test"][0], "not-in-any-fold"]
    rng = np.random.default_rng(3)
    d, src = make_dir(tmp_path, videos, rng)
    report = import_csd(d, tmp_path / "o.h5", "mosi")
    assert report.splits == {"train": 3, "valid": 2, "test": 3}
    assert report.dropped == {"video is in no fold": 3, "label is not finite": 1}
    with FeatureStore(tmp_path / "o.h5") as store:  # each dropped segment is a failure row
        rows = Counter((f.stage, f.message.split(": ", 1)[1]) for f in store.failures)
        assert rows == {("import", "video is in no fold"): 3, ("import", "label is not finite"): 1}
        assert {f.video for f in store.failures} == {
            sid for sids in report.dropped_examples.values() for sid in sids
        }
    assert report.modalities["vision"]["videos_missing"] == 1  # the test video has no Facet
    assert report.modalities["audio"]["nonfinite_fixed"] == 3  # one -inf per video, 3 kept videos
    with FeatureStore(tmp_path / "o.h5") as store:
        assert store.modalities["vision"].feature_names == ("au0", "au1", "au2", "au3")
        assert abs(store.modalities["vision"].nominal_rate_hz - 15.0) < 1e-6
        assert np.isnan(store.modalities["text"].nominal_rate_hz)
        for v, split in zip(videos[:3], ("train", "valid", "test"), strict=True):
            ys, segs = src["labels"][v]
            for k, (start, end) in enumerate(segs):
                sid = f"{v}[{k}]"
                if not np.isfinite(ys[k, 0]):
                    assert sid not in set(store.samples.id)
                    continue
                i = store.index_of(sid)
                assert store.samples.split[i] == split and store.samples.video[i] == v
                assert (store.samples.start[i], store.samples.end[i]) == (start, end)
                assert store.samples.label[i, 0] == ys[k, 0]
                for m in ("text", "vision", "audio"):
                    if m == "vision" and v == videos[2]:  # missing video: empty, legal
                        assert store.sequence(i, m).shape == (0, 4)
                        continue
                    feats, iv = src[m][v]
                    sel = in_segment(iv, start, end)
                    want = np.where(np.isfinite(feats[sel]), feats[sel], 0)
                    np.testing.assert_array_equal(store.sequence(i, m), want)
                    np.testing.assert_array_equal(store.times(i, m), iv[sel])
        # hand-checked slicing of the words: [0.5, 2.0) overlaps words 0, 1, 2; [2.0, 3.7) words 2, 3, 4
        i = store.index_of(f"{videos[0]}[0]")
        np.testing.assert_array_equal(store.times(i, "text")[:, 0], [0.1, 0.6, 1.9])
        i = store.index_of(f"{videos[0]}[1]")
        np.testing.assert_array_equal(store.times(i, "text")[:, 0], [1.9, 2.4, 3.0])
        assert store.lengths("text")[store.index_of(f"{videos[0]}[2]")] == 0


def test_csd_user_folds_iemocap_and_errors(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    d, _ = make_dir(tmp_path, ["a", "b", "c", "e"], rng)
    folds = tmp_path / "folds.json"
    folds.write_text(json.dumps({"train": ["a", "e"], "valid": ["b"], "test": ["c"]}))
    report = import_csd(d, tmp_path / "o.h5", folds=folds)
    assert report.splits == {"train": 6, "valid": 2, "test": 3} and report.dataset == ""
    with pytest.raises(ImportFormatError, match="no folds"):
        import_csd(d, tmp_path / "x.h5")
    with pytest.raises(ImportFormatError, match="no .dimension names. metadata"):
        import_csd(d, tmp_path / "x.h5", "iemocap", folds=folds)
    (d / "CMU_MOSI_Visual_OpenFace_2.csd").write_bytes(
        (d / "CMU_MOSI_Visual_Facet_42.csd").read_bytes()
    )
    with pytest.raises(ImportFormatError, match="several .csd files could be vision"):
        import_csd(d, tmp_path / "x.h5", folds=folds)
    report = import_csd(d, tmp_path / "x.h5", folds=folds, vision="CMU_MOSI_Visual_OpenFace_2.csd")
    assert report.modalities["vision"]["source"] == "CMU_MOSI_Visual_OpenFace_2.csd"
    (d / "CMU_MOSI_COVAREP.csd").write_bytes(b"not hdf5 at all")
    out = tmp_path / "y.h5"
    r = subprocess.run(
        [sys.executable, "-m", "mea_cli", "import", "csd", str(d), "--out", str(out),
         "--folds", str(folds), "--vision-csd", "CMU_MOSI_Visual_Facet_42.csd"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "CMU_MOSI_COVAREP.csd" in r.stderr and "not a readable .csd" in r.stderr
    assert not out.exists()
