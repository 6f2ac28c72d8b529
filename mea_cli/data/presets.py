"""Dataset presets: what each benchmark asks of a store (task, labels, metrics, label range)
and what its CMU benchmark features look like.

Training hyper-parameters (batch size, epochs, learning rate, ...) are not here: they depend on
the model too and live in one training preset per (model, dataset),
:mod:`mea_cli.train.presets`; model hyper-parameters live in each model's config presets.

:func:`check_store_fits` is what ``--dataset`` runs: it checks the store's task, label names,
label values, splits and modalities (not its ``dataset`` attribute, so a synthetic store made
with ``mea synth --like mosi`` fits the ``mosi`` preset) and raises :class:`DatasetMismatchError`
saying what is wrong. :func:`benchmark_mismatch` says whether a store holds the benchmark's own
features, which is what makes our numbers comparable with the papers' (``--paper``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mea_cli import MODALITIES
from mea_cli.artifacts.features import FeatureStore
from mea_cli.errors import MeaError

IEMOCAP_EMOTIONS: tuple[str, ...] = ("happy", "sad", "angry", "neutral")
REGRESSION_METRICS: tuple[str, ...] = (
    "mae",
    "corr",
    "acc7",
    "acc5",
    "acc2_non0",
    "f1_non0",
    "acc2_has0",
    "f1_has0",
)
IEMOCAP_METRICS: tuple[str, ...] = tuple(
    f"{kind}_{e}" for e in IEMOCAP_EMOTIONS for kind in ("acc", "f1")
)
BENCHMARK_DIMS: dict[str, int] = {"text": 300, "vision": 35, "audio": 74}
"""The CMU benchmark features: GloVe 300 / Facet 35 / COVAREP 74 (MEA Sec. IV-B)."""


class PresetError(MeaError):
    """An unknown preset name."""


class DatasetMismatchError(MeaError):
    """A feature store that does not fit the requested dataset preset."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True)
class DatasetPreset:
    """A benchmark: task, labels, metrics, label range and its benchmark features.

    ``label_range`` bounds regression labels. ``benchmark_dims`` and ``benchmark_splits``
    describe the CMU feature sets (GloVe 300 / Facet 35 / COVAREP 74, Sec. IV-A/B); stores with
    other features fit the preset too, but their numbers are not the benchmark's.
    """

    name: str
    task: str
    label_names: tuple[str, ...]
    metrics: tuple[str, ...]
    label_range: tuple[float, float] | None
    benchmark_dims: tuple[tuple[str, int], ...]
    benchmark_splits: tuple[tuple[str, int], ...]

    @property
    def num_labels(self) -> int:
        return len(self.label_names)


def _preset(
    name: str, task: str, labels: tuple[str, ...], splits: tuple[int, ...]
) -> DatasetPreset:
    return DatasetPreset(
        name=name,
        task=task,
        label_names=labels,
        metrics=REGRESSION_METRICS if task == "regression" else IEMOCAP_METRICS,
        label_range=(-3.0, 3.0) if task == "regression" else None,
        benchmark_dims=tuple(BENCHMARK_DIMS.items()),
        benchmark_splits=tuple(zip(("train", "valid", "test"), splits, strict=False)),
    )


PRESETS: dict[str, DatasetPreset] = {
    # split sizes: MEA Sec. IV-A (MOSI, MOSEI); the papers give none for IEMOCAP
    "mosi": _preset("mosi", "regression", ("sentiment",), (1284, 229, 686)),
    "mosei": _preset("mosei", "regression", ("sentiment",), (16326, 1871, 4659)),
    "iemocap": _preset("iemocap", "binary-multilabel", IEMOCAP_EMOTIONS, ()),
}


def get_preset(name: str) -> DatasetPreset:
    """The preset called ``name`` (:class:`PresetError` listing the valid names)."""
    key = name.strip().lower()
    if key not in PRESETS:
        raise PresetError(f"unknown dataset preset {name!r}; valid presets: {', '.join(PRESETS)}")
    return PRESETS[key]


def list_presets() -> list[str]:
    return list(PRESETS)


def check_store_fits(store: FeatureStore, preset: DatasetPreset) -> None:
    """Raise :class:`DatasetMismatchError` unless ``store`` can train/evaluate ``preset``.

    Checks, in order: the three modalities are present; the task matches; the label names
    match (IEMOCAP: the four emotions, in order; regression: exactly one label); every present
    label value is legal (regression: finite and inside ``label_range``; IEMOCAP: 0 or 1); the
    train and valid splits each hold at least one labelled sample. The store's ``dataset``
    attribute is not compared, so ``synth-mosi`` stores fit ``mosi``.
    """
    name = store.name
    fail = lambda problem: DatasetMismatchError(name, problem)  # noqa: E731
    missing = [m for m in MODALITIES if m not in store.modalities]
    if missing:
        raise fail(
            f"the {preset.name} preset needs modalities {', '.join(MODALITIES)}; "
            f"the store lacks {', '.join(missing)}"
        )
    meta = store.meta
    if meta.task != preset.task:
        shown = meta.task or "unlabelled"
        raise fail(
            f"store task is {shown!r} but {preset.name} needs {preset.task!r} with labels "
            f"{', '.join(preset.label_names)}"
        )
    if preset.task == "regression":
        if len(meta.label_names) != 1:
            raise fail(
                f"{preset.name} needs exactly one regression label; the store has "
                f"{len(meta.label_names)} ({', '.join(meta.label_names)})"
            )
    elif tuple(meta.label_names) != preset.label_names:
        raise fail(
            f"{preset.name} needs the labels {list(preset.label_names)} (in this order); "
            f"the store has {list(meta.label_names)}"
        )
    labels = store.samples.label
    ids = store.samples.id
    present = np.isfinite(labels)
    if preset.task == "regression" and preset.label_range is not None:
        lo, hi = preset.label_range
        bad = present & ((labels < lo) | (labels > hi))
        if bad.any():
            i = int(np.flatnonzero(bad.any(axis=1))[0])
            raise fail(
                f"{preset.name} labels lie in [{lo:g}, {hi:g}]; sample {ids[i]!r} has "
                f"{float(labels[i, 0]):g} ({int(bad.any(axis=1).sum())} samples out of range)"
            )
    if preset.task == "binary-multilabel":
        bad = present & (labels != 0) & (labels != 1)
        if bad.any():
            i, k = (int(x) for x in np.argwhere(bad)[0])
            raise fail(
                f"{preset.name} labels are binary (0 or 1); sample {ids[i]!r} has "
                f"{meta.label_names[k]} = {float(labels[i, k]):g}"
            )
    labelled = present.all(axis=1) if labels.shape[1] else np.zeros(len(ids), bool)
    for split in ("train", "valid"):
        count = int((labelled & (store.samples.split == split)).sum())
        if count == 0:
            raise fail(
                f"{preset.name} training needs labelled samples in the {split!r} split; "
                f"the store has none"
            )


def benchmark_mismatch(store: FeatureStore, preset: DatasetPreset) -> str | None:
    """Why ``store`` does not hold ``preset``'s benchmark features (None when it does).

    Our numbers are comparable with the papers' only on the benchmark's own data: the CMU
    features imported with ``mea import`` (extractor ``import-*``), of the benchmark's
    dimensions, for the same dataset. A synthetic store, or one extracted from videos with
    other features, is not (``--paper`` then says so instead of printing the papers' rows).
    """
    meta = store.meta
    if meta.synthetic:
        return f"{store.name} holds synthetic data, not {preset.name.upper()}"
    if meta.dataset.strip().lower() != preset.name:
        return f"{store.name} says it holds dataset {meta.dataset or '(none)'!r}, not {preset.name}"
    dims = dict(preset.benchmark_dims)
    for m in MODALITIES:
        schema = store.modalities.get(m)
        if schema is None:
            return f"{store.name} has no {m} modality"
        if not schema.extractor.name.startswith("import-"):
            return (
                f"{store.name}: the {m} features come from {schema.extractor.name!r}, not the "
                f"imported CMU benchmark features"
            )
        if schema.dim != dims[m]:
            return f"{store.name}: {m} has {schema.dim} features, the benchmark's have {dims[m]}"
    return None
