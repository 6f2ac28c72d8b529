"""``mea eval CKPT --features OTHER`` (and ``mea viz``'s): when the other store holds samples the checkpoint learned
from (a fold's source store, a re-extraction split differently), the result counts them and a
warning says the metrics are not held-out; the training store itself, or a copy split the same
way, gives no warning."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from model_helpers import tiny_trained_run

from mea_cli.artifacts.features import FeatureStore
from mea_cli.train.evaluate import evaluate_checkpoint


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return tiny_trained_run(tmp_path_factory.mktemp("overlap"), n=30, seed=3)


def _splits(path: Path) -> np.ndarray:
    with FeatureStore(path) as s:
        return np.asarray(s.samples.split).astype(str)


def _resplit(store: Path, other: Path) -> Path:
    """A copy of ``store`` with the same samples and another split column."""
    shutil.copy(store, other)
    after = np.roll(_splits(store), 7)
    with h5py.File(other, "r+") as f:
        del f["samples/split"]
        f["samples"].create_dataset("split", data=after.astype(object), dtype=h5py.string_dtype())
    return other


def test_a_store_split_otherwise_is_counted_and_warned(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, ckpt = trained
    other = _resplit(store, tmp_path / "resplit.h5")
    before, after = _splits(store), _splits(other)
    want = {s: int(((after == "test") & (before == s)).sum()) for s in ("train", "valid")}
    assert sum(want.values()) > 0  # the fixture really overlaps
    result = evaluate_checkpoint(ckpt, features=other)
    assert result.overlap == want
    err = capsys.readouterr().err
    n_test = int((after == "test").sum())
    assert f"{sum(want.values())} of the {n_test} 'test' samples" in err
    assert f"trained on ({want['train']}, its train split)" in err
    assert f"selected on ({want['valid']}, its valid split)" in err and "not held-out" in err
    assert result.to_dict()["overlap_with_training"] == want


def test_no_count_from_a_training_store_changed_or_unreadable_since(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The check reads the training store's split column only while the store still has the
    SHA-256 the checkpoint recorded; a store that changed or no longer opens leaves the overlap
    unchecked (``{}``) and the evaluation of the other store goes on."""
    store, ckpt = trained
    kept = tmp_path / "as-trained.h5"
    shutil.copy(store, kept)  # the training splits, in another file
    moved = shutil.move(store, tmp_path / "moved.h5")
    try:
        shutil.copy(moved, store)
        with h5py.File(store, "r+") as f:  # re-split in place after training
            split = np.roll(np.asarray(f["samples/split"][:]).astype(str), 7)
            del f["samples/split"]
            f["samples"].create_dataset("split", data=split.astype(object),
                                        dtype=h5py.string_dtype())  # fmt: skip
        changed = evaluate_checkpoint(ckpt, features=kept)
        store.write_text("not a store any more")
        unreadable = evaluate_checkpoint(ckpt, features=kept)
    finally:
        shutil.move(moved, store)
    assert changed.overlap == {} and unreadable.overlap == {}
    assert unreadable.metrics == changed.metrics and unreadable.n == changed.n
    assert "WARNING" not in capsys.readouterr().err


def test_the_training_store_or_a_copy_split_the_same_gives_no_warning(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, ckpt = trained
    same = evaluate_checkpoint(ckpt)
    copy = tmp_path / "copy.h5"
    shutil.copy(store, copy)
    other = evaluate_checkpoint(ckpt, features=copy)
    assert same.overlap == {} and other.overlap == {"train": 0, "valid": 0}
    assert "WARNING" not in capsys.readouterr().err
    assert same.to_dict()["overlap_with_training"] is None  # not checked: the store itself
    assert json.loads(json.dumps(other.to_dict()))["overlap_with_training"] == other.overlap
    assert other.metrics == same.metrics


def test_viz_on_a_store_split_otherwise_warns_too(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``mea viz --features OTHER`` draws that store's split: the same count and warning as
    ``mea eval``; none for the training store itself."""
    from mea_cli.viz.collect import load

    store, ckpt = trained
    other = _resplit(store, tmp_path / "resplit.h5")
    before, after = _splits(store), _splits(other)
    overlapping = int(((after == "test") & (before != "test")).sum())
    for features in (other, None, store):
        loaded, opened = load(ckpt, features, "test")
        opened.close()
        err = capsys.readouterr().err
        if features == other:
            assert f"{overlapping} of the {int((after == 'test').sum())} 'test' samples" in err
            assert "not held-out" in err and str(store) in err
        else:
            assert "WARNING" not in err
