"""Every refusal of ``FeatureStore`` on open, word for word (``test_features`` checks a key
phrase of the common ones): one broken invariant per case on the store of ``test_features``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
from test_features import _samples, _write

from mea_cli.artifacts.features import FeatureStore
from mea_cli.errors import FeatureStoreError


def _replace(name: str, data: object) -> Callable[[h5py.File], None]:
    def change(f: h5py.File) -> None:
        del f[name]
        f.create_dataset(name, data=data)

    return change


def _attr(key: str, value: object) -> Callable[[h5py.File], None]:
    return lambda f: f.attrs.__setitem__(key, value)


def _delete(name: str) -> Callable[[h5py.File], None]:
    return lambda f: f.__delitem__(name)


def _only_samples(f: h5py.File) -> None:
    for name in ("text", "vision", "audio", "failures"):
        del f[name]


CASES = [
    (_attr("format", b"other"), "attribute 'format' is 'other', expected 'mea-features'"),
    (
        lambda f: f.attrs.__delitem__("format"),
        "not a mea-cli feature store (an HDF5 file without the 'mea-features' format attribute)",
    ),
    (_attr("version", 3), "format version 3 is not supported (this mea-cli reads 1, 2)"),
    (_attr("version", True), "format version True is not supported (this mea-cli reads 1, 2)"),
    (_attr("version", "2"), "format version '2' is not supported (this mea-cli reads 1, 2)"),
    (_attr("label_names", "[not json"), "attribute 'label_names' is not a JSON list"),
    (
        _attr("task", "ranking"),
        "attribute 'task' is 'ranking', expected one of ('regression', 'multiclass', "
        "'binary-multilabel', '')",
    ),
    (_delete("samples"), "missing group /samples"),
    (_delete("samples/label"), "missing dataset /samples/label"),
    (_replace("samples/start", np.zeros(3)), "/samples/start has shape (3,), expected (4,)"),
    (
        _replace("samples/label", np.zeros(4)),
        "/samples/label has shape (4,), expected (4, 2) for 2 label name(s)",
    ),
    (
        lambda f: f["samples/id"].__setitem__(2, "vid0_0"),
        "sample ids are not unique (e.g. 'vid0_0')",
    ),
    (
        lambda f: f["samples/split"].__setitem__(1, "dev"),
        "/samples/split has values ['dev'], allowed: train, valid, test or empty",
    ),
    (
        _replace("samples/start", np.array([b"0", b"1", b"2", b"3"])),
        "/samples/start has dtype |S1 (strings), expected real numeric values",
    ),
    (
        _replace("samples/label", np.zeros((4, 2), np.complex64)),
        "/samples/label has dtype complex64 (complex numbers), expected real numeric values",
    ),
    (
        lambda f: f["samples/label"].__setitem__((1, 0), np.inf),
        "sample 'vid1_0' has an infinite label (NaN marks a missing one)",
    ),
    (
        lambda f: f["samples/end"].__setitem__(2, -1.0),
        "sample 'vid2_0' ends before it starts (start 2.0, end -1.0); 1 such sample(s)",
    ),
    (
        lambda f: f["samples"].create_dataset("group", data=np.array([b"g"] * 3)),
        "/samples/group has shape (3,), expected (4,)",
    ),
    (_only_samples, "no modality groups"),
    (_delete("vision/times"), "missing dataset /vision/times"),
    (
        lambda f: f["vision"].attrs.__delitem__("feature_names"),
        "/vision lacks valid 'feature_names'/'extractor' attributes",
    ),
    (
        lambda f: f["text"].attrs.__setitem__("feature_names", '["a", "b"]'),
        "/text/data has shape (6, 3) but 2 feature_names",
    ),
    (
        _replace("audio/offsets", np.array([0, 7, 9, 9])),
        "/audio/offsets has shape (4,), expected (5,)",
    ),
    (lambda f: f["audio/offsets"].__setitem__(0, 1), "/audio/offsets does not start at 0"),
    (
        lambda f: f["audio/offsets"].__setitem__(2, 1),
        "/audio/offsets is not monotone (non-decreasing)",
    ),
    (
        lambda f: f["audio/offsets"].__setitem__(4, 9),
        "/audio/offsets ends at 9 but /audio/data has 10 rows",
    ),
    (
        _replace("audio/times", np.zeros((10, 3))),
        "/audio/times has shape (10, 3), expected (10, 2)",
    ),
    (
        _replace("audio/offsets", np.array([0, 7, 9.5, 9.5, 10])),
        "/audio/offsets has dtype float64 with fractional values (e.g. 9.5), expected integers",
    ),
    (
        _replace("audio/offsets", np.array([0, 7, 9, 9, 10], np.float64)),
        "/audio/offsets has dtype float64, expected integers",
    ),
    (
        _replace("audio/times", np.zeros((10, 2), np.int64)),
        "/audio/times has dtype int64, expected floating-point values",
    ),
    (
        _replace("audio/data", np.array([[b"x"]] * 10)),
        "/audio/data has dtype |S1 (strings), expected real numeric values",
    ),
    (
        lambda f: f["audio"].create_dataset("observed", data=np.ones(9, bool)),
        "/audio/observed has shape (9,), expected (10,) (one per step)",
    ),
    (
        lambda f: f["audio"].create_dataset("observed", data=np.ones(10, np.uint8)),
        "/audio/observed must be boolean, not uint8",
    ),
    (_delete("words"), "missing group /words (required from format version 2)"),
    (_delete("words/times"), "missing dataset /words/times"),
    (
        _replace("words/offsets", np.zeros(3, np.int64)),
        "/words/offsets has shape (3,), expected (5,)",
    ),
    (
        lambda f: f["words/offsets"].__setitem__(4, 7),
        "/words/offsets must run monotonically from 0 to the 0 word rows",
    ),
    (_replace("words/times", np.zeros((0, 3))), "/words/times has shape (0, 3), expected (0, 2)"),
    (_replace("words/source", np.array([b""] * 3)), "/words/source has shape (3,), expected (4,)"),
    (
        _replace("words/offsets", np.zeros(5, np.float32)),
        "/words/offsets has dtype float32, expected integers",
    ),
    (
        _replace("words/times", np.zeros((0, 2), np.int32)),
        "/words/times has dtype int32, expected floating-point values",
    ),
]


@pytest.mark.parametrize(("change", "message"), CASES)
def test_each_refusal_word_for_word(
    tmp_path: Path, change: Callable[[h5py.File], None], message: str
) -> None:
    path = tmp_path / "s.h5"
    _write(path, _samples(np.random.default_rng(0)))
    with h5py.File(path, "r+") as f:
        change(f)
    with pytest.raises(FeatureStoreError) as err:
        FeatureStore(path)
    assert str(err.value) == f"{path}: {message}"


def test_unreadable_structure_is_one_error(tmp_path: Path) -> None:
    """A dataset that h5py cannot read as expected (a group where a dataset belongs) is named."""
    path = tmp_path / "s.h5"
    _write(path, _samples(np.random.default_rng(0)))
    with h5py.File(path, "r+") as f:
        del f["samples/id"]
        f["samples"].create_group("id")
    with pytest.raises(FeatureStoreError) as err:
        FeatureStore(path)
    assert str(err.value).startswith(f"{path}: unreadable store structure: ")
