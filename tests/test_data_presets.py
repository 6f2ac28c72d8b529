"""Dataset presets: Table I values, per-model values, and ``check_store_fits``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mea_cli.artifacts.features import (
    ExtractorInfo,
    FeatureStore,
    FeatureStoreWriter,
    ModalitySchema,
    Sample,
)
from mea_cli.data.presets import (
    DatasetMismatchError,
    PresetError,
    check_store_fits,
    get_preset,
    list_presets,
)


def test_table_one_values_and_models() -> None:
    assert list_presets() == ["mosi", "mosei", "iemocap"]
    mosi, mosei, iemo = (get_preset(x) for x in ("mosi", "mosei", "iemocap"))
    assert (mosi.batch_size, mosi.epochs, mosi.lr) == (32, 60, 1e-3)
    assert (mosei.batch_size, mosei.epochs, mosei.lr) == (64, 100, 2e-3)
    assert (iemo.batch_size, iemo.epochs, iemo.lr) == (32, 60, 1e-3)
    assert iemo.task == "binary-multilabel" and iemo.label_names == (
        "happy",
        "sad",
        "angry",
        "neutral",
    )
    assert mosi.task == "regression" and mosi.num_labels == 1 and "acc7" in mosi.metrics
    assert "f1_angry" in iemo.metrics and mosi.grad_clip > 0 and mosi.patience > 0
    mcr = get_preset("mosei", model="mcr")
    assert (mcr.batch_size, mcr.epochs, mcr.lr) == (16, 30, 1e-3) and "MCR" in mcr.hparams_source
    assert get_preset("mosei", "mfsa").lr == 3e-3
    fdmer = get_preset("iemocap", "fdmer")  # FDMER has no IEMOCAP values: MEA's are used
    assert fdmer.batch_size == iemo.batch_size and "our choice" in fdmer.hparams_source
    with pytest.raises(PresetError, match="valid presets: mosi, mosei, iemocap"):
        get_preset("sims")


def test_synthetic_stores_fit_their_presets(synth_mosi: Path, synth_iemocap: Path) -> None:
    with FeatureStore(synth_mosi) as s:
        check_store_fits(s, get_preset("mosi"))
        check_store_fits(s, get_preset("mosei"))
        with pytest.raises(DatasetMismatchError, match="iemocap needs 'binary-multilabel'") as err:
            check_store_fits(s, get_preset("iemocap"))
        assert "mosi.h5" in str(err.value)
    with FeatureStore(synth_iemocap) as s:
        check_store_fits(s, get_preset("iemocap"))
        with pytest.raises(DatasetMismatchError, match="needs 'regression'"):
            check_store_fits(s, get_preset("mosi"))


def _store(
    path: Path,
    task: str,
    names: tuple[str, ...],
    labels: list,
    splits: list[str],
    mods=("text", "vision", "audio"),
) -> FeatureStore:
    info = ExtractorInfo("test")
    schemas = [ModalitySchema(m, ("f0", "f1"), info) for m in mods]
    with FeatureStoreWriter(path, schemas, dataset="x", task=task, label_names=names) as w:
        for i, (y, sp) in enumerate(zip(labels, splits, strict=True)):
            w.add(
                Sample(
                    f"s{i}",
                    {m: np.zeros((2, 2), np.float32) for m in mods},
                    split=sp,
                    label=np.array(y, np.float32),
                )
            )
    return FeatureStore(path)


def test_store_mismatches_are_named(tmp_path: Path) -> None:
    iemo, mosi = get_preset("iemocap"), get_preset("mosi")
    cases = [
        (
            ("regression", ("sentiment",), [[4.5], [0.0]], ["train", "valid"]),
            mosi,
            "sample 's0' has 4.5",
        ),
        (("regression", ("sentiment",), [[1.0], [0.0]], ["train", "test"]), mosi, "'valid' split"),
        (
            (
                "binary-multilabel",
                ("happy", "sad", "angry", "neutral"),
                [[1, 0, 0, 0], [0, 0.5, 0, 0]],
                ["train", "valid"],
            ),
            iemo,
            "sad = 0.5",
        ),
        (
            (
                "binary-multilabel",
                ("happy", "sad", "angry"),
                [[1, 0, 0], [0, 1, 0]],
                ["train", "valid"],
            ),
            iemo,
            "the store has ['happy', 'sad', 'angry']",
        ),
        (
            ("binary-multilabel", ("happy", "sad"), [[1, 0], [0, 1]], ["train", "valid"]),
            mosi,
            "needs 'regression'",
        ),
    ]
    for k, (args, preset, words) in enumerate(cases):
        with _store(tmp_path / f"s{k}.h5", *args) as s, pytest.raises(DatasetMismatchError) as err:
            check_store_fits(s, preset)
        assert words in str(err.value) and f"s{k}.h5" in str(err.value)
    with _store(
        tmp_path / "m.h5",
        "regression",
        ("sentiment",),
        [[1.0], [0.0]],
        ["train", "valid"],
        mods=("text",),
    ) as s, pytest.raises(DatasetMismatchError, match="lacks vision, audio"):
        check_store_fits(s, mosi)
