"""Presets: all of Table I (model and training presets), the peers' training values, the
dataset definitions, ``check_store_fits`` and ``benchmark_mismatch``."""

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
    BENCHMARK_DIMS,
    DatasetMismatchError,
    PresetError,
    benchmark_mismatch,
    check_store_fits,
    get_preset,
    list_presets,
)
from mea_cli.models import config_for
from mea_cli.train.presets import training_preset

# MEA Table I, transcribed row by row from mea_tcsvt.md (MOSI, MOSEI, IEMOCAP)
TABLE_I = {
    "batch_size": (32, 64, 32),
    "epochs": (60, 100, 60),
    "d": (40, 40, 40),
    "d_h": (64, 64, 64),
    "lr": (1e-3, 2e-3, 1e-3),
    "heads": (8, 10, 8),
    "kernel_sizes": ((3, 3, 3), (3, 3, 3), (3, 3, 5)),
    "mu": (0.25, 0.15, 0.2),
    "alpha": (2e-2, 3e-2, 1e-2),
    "beta": (3e-2, 5e-2, 2e-2),
}
TRAINING_ROWS = ("batch_size", "epochs", "lr")


def test_presets_reproduce_table_i() -> None:
    """Every cell of Table I: the training rows from the MEA training preset, the model rows
    from MEA's config preset (plus M = 3 PSA and N = 2 HCA layers, Sec. IV-B)."""
    for col, dataset in enumerate(("mosi", "mosei", "iemocap")):
        train = training_preset("mea", dataset)
        model = config_for("mea", dataset)
        for row, values in TABLE_I.items():
            got = getattr(train.settings if row in TRAINING_ROWS else model, row)
            assert got == values[col], (dataset, row, got)
            if row in TRAINING_ROWS:
                assert train.sources[row] == "MEA (IEEE TCSVT) Table I"
            else:  # one home per hyper-parameter: no training row in the model config
                assert not set(TRAINING_ROWS) & set(model.to_dict())
        assert (model.psa_layers, model.hca_layers) == (3, 2)
        assert "our choice" in train.sources["grad_clip"] and "our choice" in train.sources["patience"]


def test_peer_training_presets_and_their_sources() -> None:
    mcr = training_preset("mcr", "mosei")
    assert (mcr.settings.batch_size, mcr.settings.epochs, mcr.settings.lr) == (16, 30, 1e-3)
    assert mcr.sources["lr"] == "MCR (KBS 2023) Table 1"
    assert training_preset("mfsa", "mosei").settings.lr == 3e-3
    assert training_preset("fdmer", "mosi").settings.epochs == 120
    mult = {ds: training_preset("mult", ds).settings for ds in ("mosi", "mosei", "iemocap")}
    assert [(m.batch_size, m.epochs, m.lr, m.grad_clip) for m in mult.values()] == [
        (128, 100, 1e-3, 0.8), (16, 20, 1e-3, 1.0), (32, 30, 2e-3, 0.8),
    ]  # fmt: skip
    assert "Table 5" in training_preset("mult", "mosei").sources["grad_clip"]
    # FDMER has no IEMOCAP values (its third set is UR-FUNNY): MEA's, and the source says so
    fdmer = training_preset("fdmer", "iemocap")
    assert fdmer.settings == training_preset("mea", "iemocap").settings
    assert "no published value for fdmer on iemocap" in fdmer.sources["batch_size"]


def test_dataset_presets() -> None:
    assert list_presets() == ["mosi", "mosei", "iemocap"]
    mosi, iemo = get_preset("mosi"), get_preset("iemocap")
    assert iemo.task == "binary-multilabel" and iemo.label_names == (
        "happy",
        "sad",
        "angry",
        "neutral",
    )
    assert mosi.task == "regression" and mosi.num_labels == 1 and "acc7" in mosi.metrics
    assert "f1_angry" in iemo.metrics and dict(mosi.benchmark_dims) == BENCHMARK_DIMS
    with pytest.raises(PresetError, match="valid presets: mosi, mosei, iemocap"):
        get_preset("sims")


def test_benchmark_mismatch_says_why_a_store_is_not_the_benchmark(
    tmp_path: Path, synth_mosi: Path
) -> None:
    with FeatureStore(synth_mosi) as s:
        assert "synthetic data, not MOSI" in benchmark_mismatch(s, get_preset("mosi"))
    dims = {"text": 300, "vision": 35, "audio": 74}

    def store(name: str, extractor: str, vision: int, dataset: str) -> Path:
        path = tmp_path / name
        schemas = [
            ModalitySchema(m, tuple(f"f{i}" for i in range(vision if m == "vision" else d)),
                           ExtractorInfo(extractor))
            for m, d in dims.items()
        ]  # fmt: skip
        with FeatureStoreWriter(path, schemas, dataset=dataset, task="regression",
                                label_names=("sentiment",)) as w:  # fmt: skip
            w.add(Sample("s0", {m: np.zeros((1, s.dim), np.float32) for m, s in
                                zip(dims, schemas, strict=True)}, split="train",
                         label=np.array([0.5], np.float32)))  # fmt: skip
        return path

    cases = [
        (store("bench.h5", "import-mult", 35, "mosi"), "mosi", None),
        (store("bench2.h5", "import-mult", 35, "mosi"), "mosei", "not mosei"),
        (store("videos.h5", "mediapipe-blendshapes", 35, "mosi"), "mosi", "not the imported"),
        (store("dims.h5", "import-mmsa", 20, "mosi"), "mosi", "vision has 20 features"),
    ]
    for path, dataset, words in cases:
        with FeatureStore(path) as s:
            why = benchmark_mismatch(s, get_preset(dataset))
        assert (why is None) if words is None else (words in why), (path, why)


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
