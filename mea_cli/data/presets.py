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

**Custom tasks** (``mea train STORE --task ...`` or ``--dataset custom``): any labelled store,
whatever its labels -- regression on any range, single-label classification over any class
names (``multiclass``), binary multi-label over any label names. :func:`resolve_preset` builds
the ``custom`` preset from the store itself: its task and label names are the store's (a
``--task`` that disagrees is an error, never a silent change of task), and a regression task
gets a range (``--labels-range``, else the range ``mea extract --label-range`` recorded, else
the smallest and largest label in the store) that decides its metrics
(:mod:`mea_cli.train.metrics`). A custom task has no paper hyper-parameters of its own: it
borrows those of the nearest paper preset, ``mosi`` for regression and ``iemocap`` for
classification (:attr:`DatasetPreset.hyperparameters`), and says so in the run's sources.
"""

from __future__ import annotations

import json
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
"""Keys of the regression metrics (``train.metrics.regression_metrics``), in display order."""
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
    borrows: str = ""  # custom: the paper preset whose hyper-parameters it uses
    range_source: str = ""  # custom regression: where label_range came from

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @property
    def custom(self) -> bool:
        return self.name == CUSTOM

    @property
    def hyperparameters(self) -> str:
        """The paper preset whose model and training hyper-parameters this preset uses."""
        return self.borrows or self.name

    @property
    def metric_range(self) -> tuple[float, float] | None:
        """The range a custom regression task's metrics use (``None``: the papers' metrics)."""
        return self.label_range if self.custom and self.task == "regression" else None


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


CUSTOM = "custom"
BORROWS: dict[str, str] = {"regression": "mosi", "multiclass": "iemocap", "binary-multilabel": "iemocap"}
"""Custom task -> the paper preset whose hyper-parameters it uses."""
TASK_WORDS: dict[str, tuple[str, ...]] = {
    "regression": ("regression",),
    "classification": ("multiclass", "binary-multilabel"),
    "multiclass": ("multiclass",),
    "binary-multilabel": ("binary-multilabel",),
}
"""``mea train --task`` words -> the store tasks each accepts."""


def get_preset(name: str) -> DatasetPreset:
    """The paper preset called ``name`` (:class:`PresetError` listing the valid names)."""
    key = name.strip().lower()
    if key == CUSTOM:
        raise PresetError("the custom preset is made from a store: use resolve_preset")
    if key not in PRESETS:
        raise PresetError(
            f"unknown dataset preset {name!r}; valid presets: {', '.join(PRESETS)}, {CUSTOM}"
        )
    return PRESETS[key]


def list_presets() -> list[str]:
    """The paper presets (every model has hyper-parameters for each)."""
    return list(PRESETS)


def parse_range(text: str | None) -> tuple[float, float] | None:
    """``"1,5"`` -> ``(1.0, 5.0)`` (``--labels-range``); ``None`` stays ``None``."""
    if text is None:
        return None
    try:
        a, b = (float(x) for x in str(text).split(","))
    except ValueError:
        raise PresetError(f"--labels-range {text!r}: expected two numbers a,b, e.g. 1,5") from None
    if not (np.isfinite(a) and np.isfinite(b) and a < b):
        raise PresetError(f"--labels-range {text!r}: need finite numbers a < b")
    return a, b


def _describe_task(store: FeatureStore) -> str:
    meta = store.meta
    if meta.task == "regression":
        return "regression labels"
    return f"{meta.task} labels ({', '.join(meta.label_names)})"


def resolve_preset(
    dataset: str | None,
    store: FeatureStore,
    task: str | None = None,
    label_range: tuple[float, float] | None = None,
) -> DatasetPreset:
    """The preset a training run on ``store`` uses (module docstring).

    ``dataset`` is a paper preset, ``custom``, or ``None`` (custom, when ``task`` is given).
    ``task`` (``regression``, ``classification``, ``multiclass``, ``binary-multilabel``)
    must agree with the store's labels; ``label_range`` is only for custom regression.
    Raises a :class:`~mea_cli.errors.MeaError` naming the disagreement.
    """
    if task is not None and task.strip().lower() not in TASK_WORDS:
        raise PresetError(f"--task {task!r} is not one of {', '.join(TASK_WORDS)}")
    key = (dataset or (CUSTOM if task is not None else "")).strip().lower()
    if not key:
        raise PresetError(
            f"give --dataset ({', '.join(PRESETS)}: the papers' presets, or {CUSTOM}) or "
            "--task regression|classification for a custom task"
        )
    meta = store.meta
    wanted = TASK_WORDS[task.strip().lower()] if task is not None else None
    if key != CUSTOM:
        preset = get_preset(key)
        if wanted is not None and preset.task not in wanted:
            raise PresetError(f"--task {task} does not fit --dataset {key} ({preset.task})")
        if label_range is not None:
            raise PresetError(
                f"--labels-range is for custom tasks; {key} labels lie in "
                f"{preset.label_range[0]:g},{preset.label_range[1]:g}"
                if preset.label_range
                else f"--labels-range is for custom regression tasks, not {key}"
            )
        return preset
    if not meta.task or not meta.label_names:
        raise DatasetMismatchError(store.name, "has no labels (task unset): nothing to train on")
    if wanted is not None and meta.task not in wanted:
        raise DatasetMismatchError(
            store.name, f"holds {_describe_task(store)}, not a {task} task; the store's labels "
            "decide the task (re-extract with --task to read them otherwise)",
        )  # fmt: skip
    if label_range is not None and meta.task != "regression":
        raise PresetError(f"--labels-range is for regression; {store.name} holds {_describe_task(store)}")
    source = ""
    if meta.task == "regression":
        source = "--labels-range"
        recorded = meta.attrs.get("label_range")
        if label_range is None and recorded is not None:
            if isinstance(recorded, str):
                recorded = json.loads(recorded)
            label_range = (float(recorded[0]), float(recorded[1]))
            source = "recorded by mea extract --label-range"
        if label_range is None:
            y = store.samples.label[:, 0] if store.samples.label.shape[1] else np.zeros(0)
            y = y[np.isfinite(y)]
            if y.size == 0 or y.min() == y.max():
                raise DatasetMismatchError(
                    store.name, "regression labels with no spread: give --labels-range a,b"
                )
            label_range, source = (float(y.min()), float(y.max())), "smallest and largest label"
    return DatasetPreset(
        name=CUSTOM,
        task=meta.task,
        label_names=tuple(meta.label_names),
        metrics=(),
        label_range=label_range,
        benchmark_dims=(),
        benchmark_splits=(),
        borrows=BORROWS[meta.task],
        range_source=source,
    )


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
    if preset.task in ("binary-multilabel", "multiclass"):
        bad = present & (labels != 0) & (labels != 1)
        if bad.any():
            i, k = (int(x) for x in np.argwhere(bad)[0])
            raise fail(
                f"{preset.name} labels are binary (0 or 1); sample {ids[i]!r} has "
                f"{meta.label_names[k]} = {float(labels[i, k]):g}"
            )
    if preset.task == "multiclass":
        rows = present.all(axis=1)
        bad_rows = rows & (labels.sum(axis=1, where=present) != 1)
        if bad_rows.any():
            i = int(np.flatnonzero(bad_rows)[0])
            raise fail(
                f"single-label classes are one-hot; sample {ids[i]!r} has "
                f"{int(labels[i].sum())} classes set"
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
