"""``mea import csd`` on files written exactly the way the CMU-MultimodalSDK writes them.

The SDK (``mmsdk/mmdatasdk/computational_sequence/file_ops.py``, ``write_CSD``, called by
``computational_sequence.deploy``) writes: one root group named by the ``root name``; under it
``data/<video>/features`` and ``data/<video>/intervals`` (gzip level 9 by default in
``deploy``), and ``metadata/<key>``: a ``(1,)`` dataset of variable-length ``str`` holding
``json.dumps(value)``. ``deploy`` adds ``uuid`` (a string) and ``md5`` (``None``); the metadata
template names ``alignment compatible``, versions, creator, citations and ``dimension names``.
Real files therefore hold JSON text of every type: strings, numbers, booleans, null, lists.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from mea_cli.artifacts.features import FeatureStore
from mea_cli.data.importers import ImportFormatError, import_csd
from mea_cli.data.importers.csd import standard_folds


def write_csd_like_sdk(
    path: Path, root: str, data: dict[str, dict[str, np.ndarray]], metadata: dict
) -> None:
    """h5py calls in the order and with the arguments of the SDK's ``write_CSD`` (deploy's
    default compression), plus the two entries ``deploy`` adds."""
    metadata = {**metadata, "root name": root, "uuid": "0b3c9e0e-4f3b-4b8e-9d7e-1d1c2f9a7c55"}
    metadata["md5"] = None
    with h5py.File(path, "w") as f:
        root_group = f.create_group(root)
        data_group = root_group.create_group("data")
        for vid, entry in data.items():
            g = data_group.create_group(vid)
            g.create_dataset("features", data=entry["features"], compression="gzip", compression_opts=9)
            g.create_dataset("intervals", data=entry["intervals"], compression="gzip", compression_opts=9)
        meta = root_group.create_group("metadata")
        for key in metadata:
            meta.create_dataset(key, (1,), dtype=h5py.special_dtype(vlen=str))
            meta[key][0] = str(json.dumps(metadata[key]))


def template(description: str, names: list[str] | None) -> dict:
    """The SDK's featureset metadata template, filled with every JSON type a real file has."""
    meta = {
        "computational sequence description": description,
        "computational sequence version": 1.0,
        "alignment compatible": True,
        "dataset name": "CMU-MOSI",
        "dataset version": 1,
        "creator": "test",
        "contact": "nobody@example.org",
        "featureset bib citation": "@article{x, title={A very long citation " + "x" * 400 + "}}",
        "dataset bib citation": "@article{y}",
        "extra": {"nested": [1, 2.5, None, False]},
    }
    if names is not None:
        meta["dimension names"] = names
    return meta


def regular(rng: np.random.Generator, seconds: float, rate: float, dim: int) -> dict:
    start = np.arange(0, seconds, 1 / rate)
    return {
        "features": rng.normal(size=(len(start), dim)),  # float64, as numpy makes it
        "intervals": np.stack([start, start + 1 / rate], axis=1),
    }


def sdk_dir(tmp_path: Path, videos: list[str], labels: dict, label_names: list[str] | None) -> Path:
    rng = np.random.default_rng(11)
    d = tmp_path / "sdk"
    d.mkdir()
    words = np.array([[0.0, 0.4], [0.4, 1.1], [1.1, 1.9], [2.2, 3.0]])
    write_csd_like_sdk(
        d / "CMU_MOSI_Opinion_Labels.csd", "Opinion Segment Labels", labels,
        template("labels", label_names),
    )  # fmt: skip
    write_csd_like_sdk(
        d / "CMU_MOSI_TimestampedWordVectors.csd", "glove_vectors",
        {v: {"features": rng.normal(size=(4, 5)), "intervals": words} for v in videos},
        template("word vectors", None),
    )  # fmt: skip
    write_csd_like_sdk(
        d / "CMU_MOSI_TimestampedWords.csd", "words",
        {v: {"features": np.array([[b"a"], [b"b"], [b"sp"], [b"c"]]), "intervals": words} for v in videos},
        template("words", ["word"]),
    )  # fmt: skip
    write_csd_like_sdk(
        d / "CMU_MOSI_Visual_Facet_42.csd", "FACET 4.2",
        {v: regular(rng, 3.0, 30.0, 3) for v in videos},
        template("facet", ["Joy", "Anger", "Contempt"]),
    )  # fmt: skip
    write_csd_like_sdk(
        d / "CMU_MOSI_COVAREP.csd", "COVAREP",
        {v: regular(rng, 3.0, 100.0, 2) for v in videos},
        template("covarep", ["F0", "VUV"]),
    )  # fmt: skip
    return d


def test_real_sdk_file_imports_with_every_json_type(tmp_path: Path) -> None:
    folds = standard_folds("mosi")
    videos = [folds["train"][0], folds["valid"][0], folds["test"][0]]
    segs = np.array([[0.0, 1.5], [1.5, 3.0]])
    labels = {v: {"features": np.array([[1.4], [-2.0]]), "intervals": segs} for v in videos}
    d = sdk_dir(tmp_path, videos, labels, ["sentiment"])
    out = tmp_path / "mosi.h5"
    r = subprocess.run(
        [sys.executable, "-m", "mea_cli", "import", "csd", str(d), "--out", str(out),
         "--dataset", "mosi", "--json"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["splits"] == {"train": 2, "valid": 2, "test": 2}
    with FeatureStore(out) as store:
        assert store.modalities["vision"].feature_names == ("Joy", "Anger", "Contempt")
        meta = store.modalities["vision"].extractor.parameters["metadata"]
        assert meta["alignment compatible"] is True
        assert meta["md5"] is None
        assert meta["computational sequence version"] == 1.0
        assert meta["dataset version"] == 1 and isinstance(meta["dataset version"], int)
        assert meta["root name"] == "FACET 4.2"
        assert json.loads(meta["extra"]) == {"nested": [1, 2.5, None, False]}
        assert meta["featureset bib citation"].startswith("@article{x") and len(
            meta["featureset bib citation"]
        ) == 300
        i = store.index_of(f"{videos[0]}[1]")
        assert store.samples.label[i, 0] == pytest.approx(-2.0)
        assert len(store.sequence(i, "vision")) == 45  # 30 Hz over [1.5, 3.0)


def test_metadata_that_is_not_json_is_kept_as_text(tmp_path: Path) -> None:
    folds = standard_folds("mosi")
    videos = [folds["train"][0], folds["valid"][0], folds["test"][0]]
    labels = {v: {"features": np.array([[0.5]]), "intervals": np.array([[0.0, 3.0]])} for v in videos}
    d = sdk_dir(tmp_path, videos, labels, None)
    with h5py.File(d / "CMU_MOSI_COVAREP.csd", "a") as f:
        f["COVAREP/metadata/creator"][0] = "plain text, not JSON"
    import_csd(d, tmp_path / "o.h5", "mosi")
    with FeatureStore(tmp_path / "o.h5") as store:
        meta = store.modalities["audio"].extractor.parameters["metadata"]
        assert meta["creator"] == "plain text, not JSON"


def iemocap_labels(videos: list[str], order: list[str]) -> dict:
    """Two segments per video; segment k of video i shows emotion ``("happy", "sad", "angry",
    "neutral")[(2 i + k) % 4]`` only, written in the file's column ``order``."""
    out = {}
    for i, v in enumerate(videos):
        rows = np.zeros((2, 4))
        for k in range(2):
            rows[k, order.index(("happy", "sad", "angry", "neutral")[(2 * i + k) % 4])] = 1
        out[v] = {"features": rows, "intervals": np.array([[0.0, 1.5], [1.5, 3.0]])}
    return out


@pytest.mark.parametrize("named", ["dimension names", "--emotions"])
def test_iemocap_columns_follow_their_names(tmp_path: Path, named: str) -> None:
    videos = ["Ses01F_a", "Ses01F_b", "Ses02M_c"]
    order = ["neutral", "happy", "sad", "angry"]  # not the store's order
    file_names = ["Neutral", "Happiness", "Sadness", "Anger"]
    labels = iemocap_labels(videos, order)
    d = sdk_dir(tmp_path, videos, labels, file_names if named == "dimension names" else None)
    folds = tmp_path / "folds.json"
    folds.write_text(json.dumps({"train": videos[:1], "valid": videos[1:2], "test": videos[2:]}))
    emotions = order if named == "--emotions" else None
    report = import_csd(d, tmp_path / "o.h5", "iemocap", folds=folds, emotions=emotions)
    assert any("happy = column 1" in n and "neutral = column 0" in n for n in report.notes)
    with FeatureStore(tmp_path / "o.h5") as store:
        assert store.meta.label_names == ("happy", "sad", "angry", "neutral")
        for i, v in enumerate(videos):
            for k in range(2):
                row = store.samples.label[store.index_of(f"{v}[{k}]")]
                shown = [e for e, x in zip(store.meta.label_names, row, strict=True) if x == 1]
                assert shown == [("happy", "sad", "angry", "neutral")[(2 * i + k) % 4]]


def test_iemocap_columns_unnamed_or_ambiguous_are_refused(tmp_path: Path) -> None:
    videos = ["Ses01F_a", "Ses01F_b", "Ses02M_c"]
    labels = iemocap_labels(videos, ["happy", "sad", "angry", "neutral"])
    d = sdk_dir(tmp_path, videos, labels, None)
    folds = tmp_path / "folds.json"
    folds.write_text(json.dumps({"train": videos[:1], "valid": videos[1:2], "test": videos[2:]}))
    with pytest.raises(ImportFormatError, match="no 'dimension names' metadata"):
        import_csd(d, tmp_path / "o.h5", "iemocap", folds=folds)
    with pytest.raises(ImportFormatError, match="name 2 'happy' columns"):
        import_csd(d, tmp_path / "o.h5", "iemocap", folds=folds, emotions=["happy", "joy", "sad", "angry"])
    with pytest.raises(ImportFormatError, match="names 3 columns, the labels have 4"):
        import_csd(d, tmp_path / "o.h5", "iemocap", folds=folds, emotions=["happy", "sad", "angry"])
    assert not (tmp_path / "o.h5").exists()


def test_options_of_another_layout_are_refused_not_ignored(tmp_path: Path) -> None:
    pkl = tmp_path / "x.pkl"
    pkl.write_bytes(b"not read: the options are checked first")
    r = subprocess.run(
        [sys.executable, "-m", "mea_cli", "import", "mmsa", str(pkl), "--out", str(tmp_path / "o.h5"),
         "--emotions", "happy,sad,angry,neutral", "--padding", "left"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 2 and r.stderr.strip() == (
        "error: mea import mmsa does not take --emotions, --padding "
        "(options of mea import csd, mea import mult)"
    )
    folds = standard_folds("mosi")
    videos = [folds["train"][0], folds["valid"][0], folds["test"][0]]
    labels = {v: {"features": np.array([[0.5]]), "intervals": np.array([[0.0, 3.0]])} for v in videos}
    d = sdk_dir(tmp_path, videos, labels, None)
    with pytest.raises(ImportFormatError, match="--emotions names IEMOCAP label columns"):
        import_csd(d, tmp_path / "o.h5", "mosi", emotions=["happy", "sad", "angry", "neutral"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sdk", "x.pkl"]
