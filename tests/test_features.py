"""The feature-store artifact: round trip, invariants, atomic writes, random access."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

from mea_cli.artifacts.features import (
    ExtractorInfo,
    FeatureStore,
    FeatureStoreWriter,
    ModalitySchema,
    Sample,
    Word,
)
from mea_cli.errors import FeatureStoreError

SCHEMAS = [
    ModalitySchema("text", ("w0", "w1", "w2"), ExtractorInfo("glove", "6B.50d", {"oov": "zero"})),
    ModalitySchema("vision", ("jawOpen", "mouthSmileLeft"), ExtractorInfo("mp", "1.2", {}), 30.0),
    ModalitySchema(
        "audio", ("loudness",), ExtractorInfo("opensmile", "2.6", {"set": "eGeMAPSv02"}), 100.0
    ),
]


def _samples(rng: np.random.Generator) -> list[Sample]:
    out = []
    for i, (lt, lv, la) in enumerate([(3, 5, 7), (0, 4, 2), (2, 0, 0), (1, 1, 1)]):
        out.append(
            Sample(
                id=f"vid{i}_0",
                video=f"vid{i}",
                start=float(i),
                end=float(i) + 1.5,
                split=["train", "valid", "test", ""][i],
                label=np.array([i - 1.5, 1.0], np.float32) if i != 3 else None,
                features={
                    "text": rng.normal(size=(lt, 3)),
                    "vision": rng.normal(size=(lv, 2)),
                    "audio": rng.normal(size=(la, 1)),
                },
                times={"vision": np.stack([np.arange(lv) / 30, np.arange(1, lv + 1) / 30], 1)},
            )
        )
    return out


def _write(path: Path, samples: list[Sample], **kw) -> None:
    kw.setdefault("label_names", ["valence", "arousal"])
    with FeatureStoreWriter(
        path,
        SCHEMAS,
        dataset="unit",
        task="regression",
        attrs={"note": "x", "params": {"a": 1}},
        **kw,
    ) as w:
        for s in samples:
            w.add(s)
        w.add_failure("bad.mp4", "decode", "truncated file")


@pytest.fixture()
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "s.h5"
    _write(path, _samples(np.random.default_rng(0)))
    return path


def test_round_trip_every_field(tmp_path: Path) -> None:
    samples = _samples(np.random.default_rng(0))
    path = tmp_path / "s.h5"
    _write(path, samples)
    with FeatureStore(path) as st:
        assert len(st) == 4
        assert st.meta.dataset == "unit" and st.meta.task == "regression"
        assert st.meta.label_names == ("valence", "arousal")
        assert st.meta.attrs["note"] == "x" and json.loads(st.meta.attrs["params"]) == {"a": 1}
        assert not st.meta.synthetic
        for schema in SCHEMAS:
            assert st.modalities[schema.name].same_as(schema)
        assert np.isnan(st.modalities["text"].nominal_rate_hz)
        for i, want in enumerate(samples):
            got = st[i]
            assert (got.id, got.video, got.split) == (want.id, want.video, want.split)
            assert (got.start, got.end) == (want.start, want.end)
            if want.label is None:
                assert np.isnan(got.label).all()
            else:
                np.testing.assert_array_equal(got.label, want.label)
            for m in ("text", "vision", "audio"):
                np.testing.assert_array_equal(got.features[m], want.features[m].astype(np.float32))
                assert got.features[m].dtype == np.float32
                assert got.times[m].shape == (len(want.features[m]), 2)
            np.testing.assert_array_equal(got.times["vision"], want.times["vision"])
            assert np.isnan(got.times["text"]).all()
        assert st.failures[0].video == "bad.mp4" and st.failures[0].stage == "decode"
        np.testing.assert_array_equal(st.lengths("audio"), [7, 2, 0, 1])
        data, offsets = st.array("vision")
        assert data.shape == (10, 2) and list(offsets) == [0, 5, 9, 9, 10]
        assert list(st.split_indices("valid")) == [1]
        assert st.index_of("vid2_0") == 2


def test_words_round_trip(tmp_path: Path) -> None:
    samples = _samples(np.random.default_rng(0))
    samples[0].words = [Word("Hello,", 0.5, 0.9), Word("wörld", 0.9, 1.4)]
    samples[0].words_source = "sidecar.txt"
    samples[1].words_source = "asr"  # ASR heard nothing
    path = tmp_path / "w.h5"
    _write(path, samples)
    with FeatureStore(path) as st:
        assert st.version == 2 and st.has_words
        assert st.words(0) == samples[0].words and st.words_source(0) == "sidecar.txt"
        assert st.words(1) == [] and st.words_source(1) == "asr"
        assert st.words(2) == [] and st.words_source(2) == ""  # not recorded
        assert st[0].words == samples[0].words and st[0].words_source == "sidecar.txt"
    with h5py.File(path) as f:
        assert list(f["words/offsets"][:]) == [0, 2, 2, 2, 2]


def test_version_1_store_still_opens() -> None:
    """``tests/data/store_v1.h5`` was written by the version-1 writer (mea-cli 0.1.0, before
    words were kept); it must open, read and summarise as before, with no words."""
    from mea_cli.artifacts.store_info import describe_sample, summarize

    with FeatureStore(Path(__file__).parent / "data" / "store_v1.h5") as st:
        assert st.version == 1 and not st.has_words and len(st) == 3
        assert list(st.samples.id) == ["clip0_1", "clip1_1", "clip2_1"]
        assert st.lengths("text").tolist() == [3, 0, 2]
        assert st[0].features["text"].shape == (3, 2) and st[0].words == []
        assert st.words_source(2) == "" and st.failures[0].stage == "decode"
        assert summarize(st)["format_version"] == 1
        d = describe_sample(st, "clip0_1")
        assert d["words_source"] is None and d["modalities"]["text"]["steps"] == 3


def test_stores_get_umask_permissions(tmp_path: Path) -> None:
    path = tmp_path / "perm.h5"
    mask = os.umask(0o022)
    try:
        _write(path, _samples(np.random.default_rng(0)))
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644


def test_zero_length_sequences_round_trip(tmp_path: Path) -> None:
    s = Sample(
        id="empty",
        features={"text": np.zeros((0, 3)), "vision": np.zeros((0, 2)), "audio": np.zeros((0, 1))},
        split="test",
    )
    path = tmp_path / "e.h5"
    _write(path, [s])
    with FeatureStore(path) as st:
        got = st[0]
        for m in ("text", "vision", "audio"):
            assert got.features[m].shape == (0, st.modalities[m].dim)
            assert got.times[m].shape == (0, 2)


def test_single_label_stored_one_dimensional(tmp_path: Path) -> None:
    path = tmp_path / "one.h5"
    s = _samples(np.random.default_rng(1))[0]
    s.label = np.array([0.5], np.float32)
    _write(path, [s], label_names=["sentiment"])
    with h5py.File(path) as f:
        assert f["samples/label"].shape == (1,)
    with FeatureStore(path) as st:
        assert st.samples.label.shape == (1, 1) and st.samples.label[0, 0] == 0.5


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.attrs.__setitem__("format", "other"), "attribute 'format'"),
        (lambda f: f.attrs.__setitem__("version", 99), "format version 99"),
        (lambda f: f.attrs.__setitem__("task", "ranking"), "attribute 'task'"),
        (lambda f: f["audio/offsets"].__setitem__(2, 1), "not monotone"),
        (lambda f: f["audio/offsets"].__setitem__(0, 1), "does not start at 0"),
        (lambda f: f["audio/offsets"].__setitem__(4, 9), "offsets ends at 9"),
        (
            lambda f: (
                f["audio"].__delitem__("times"),
                f["audio"].create_dataset("times", data=np.zeros((10, 3))),
            ),
            "times has shape",
        ),
        (lambda f: f["text"].attrs.__setitem__("feature_names", '["a"]'), "1 feature_names"),
        (lambda f: f["samples/id"].__setitem__(1, "vid0_0"), "not unique"),
        (lambda f: f["samples/split"].__setitem__(0, "training"), "/samples/split has values"),
        (
            lambda f: f.attrs.__setitem__("label_names", '["a", "b", "c"]'),
            "/samples/label has shape",
        ),
        (lambda f: f["samples"].__delitem__("video"), "missing dataset /samples/video"),
        (lambda f: f["vision"].__delitem__("offsets"), "missing dataset /vision/offsets"),
        (lambda f: f["audio"].attrs.__setitem__("extractor", "{not json"), "extractor"),
        (lambda f: f.__delitem__("words"), "missing group /words"),
        (lambda f: f["words/offsets"].__setitem__(4, 7), "/words/offsets must run"),
        (lambda f: f["words"].__delitem__("source"), "missing dataset /words/source"),
    ],
)
def test_each_invariant_has_its_error(store_path: Path, mutate, message: str) -> None:
    with h5py.File(store_path, "r+") as f:
        mutate(f)
    with pytest.raises(FeatureStoreError) as info:
        FeatureStore(store_path)
    assert message in str(info.value)
    assert str(store_path) in str(info.value)


def test_missing_text_and_truncated_files(tmp_path: Path, store_path: Path) -> None:
    with pytest.raises(FeatureStoreError, match="no such file"):
        FeatureStore(tmp_path / "nope.h5")
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    with pytest.raises(FeatureStoreError, match="not a readable HDF5"):
        FeatureStore(txt)
    cut = tmp_path / "cut.h5"
    cut.write_bytes(store_path.read_bytes()[: store_path.stat().st_size // 2])
    with pytest.raises(FeatureStoreError):
        FeatureStore(cut)


def test_exception_inside_writer_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "x.h5"
    with pytest.raises(RuntimeError), FeatureStoreWriter(path, SCHEMAS) as w:
        w.add(_samples(np.random.default_rng(0))[3])
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_bad_samples(tmp_path: Path) -> None:
    with FeatureStoreWriter(tmp_path / "y.h5", SCHEMAS, label_names=["a", "b"]) as w:
        good = _samples(np.random.default_rng(0))[0]
        w.add(good)
        with pytest.raises(ValueError, match="duplicate sample id"):
            w.add(good)
        bad = _samples(np.random.default_rng(0))[1]
        bad.features["text"] = np.zeros((2, 4))
        with pytest.raises(ValueError, match=r"expected \[T, 3\]"):
            w.add(bad)


def test_writer_killed_half_way_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "killed.h5"
    script = textwrap.dedent(f"""
        import os, signal, numpy as np
        from mea_cli.artifacts.features import *
        schema = [ModalitySchema("a", ("x",), ExtractorInfo("t"))]
        w = FeatureStoreWriter({str(out)!r}, schema)
        w.open()
        for i in range(50):
            w.add(Sample(id=str(i), features={{"a": np.ones((100, 1))}}))
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -9
    assert not out.exists()


class CountingFile(io.RawIOBase):
    """A read-only file object that counts the bytes h5py reads through it."""

    def __init__(self, path: Path) -> None:
        self._f = open(path, "rb")  # noqa: SIM115
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def readinto(self, b) -> int:
        n = self._f.readinto(b)
        self.bytes_read += n
        return n

    def close(self) -> None:
        self._f.close()
        super().close()


def test_one_sample_from_a_5k_store_reads_a_small_part(tmp_path: Path) -> None:
    path = tmp_path / "big.h5"
    schema = [ModalitySchema("audio", tuple(f"f{j}" for j in range(16)), ExtractorInfo("t"))]
    rng = np.random.default_rng(0)
    with FeatureStoreWriter(path, schema) as w:
        for i in range(5_000):
            w.add(Sample(id=f"s{i}", features={"audio": rng.normal(size=(20, 16))}))
    size = path.stat().st_size
    fobj = CountingFile(path)
    with FeatureStore(fobj) as st:
        opened = fobj.bytes_read
        x = st.sequence(3_777, "audio")
    assert x.shape == (20, 16)
    np.testing.assert_array_equal(x, FeatureStore(path).sequence(3_777, "audio"))
    one_sample = fobj.bytes_read - opened
    assert one_sample < size / 20, (one_sample, size)
    assert fobj.bytes_read < size / 2, (fobj.bytes_read, size)
