"""Dataset presets: what each benchmark asks of a store and how the papers trained on it.

A :class:`DatasetPreset` names a benchmark's task, label names and metric set, and the training
hyper-parameters of Table I of the MEA paper (batch size, epoch number, learning rate). The
peer models' papers give their own values (MFSA Sec. 4.2, MCR Table 1, FDMER Sec. 4.2, MulT
Table 5); :meth:`DatasetPreset.for_model` returns the preset with those values. Where a paper is
silent (gradient clipping, early-stopping patience, FDMER on IEMOCAP) the values are our choice
and say so in ``hparams_source``. The model-architecture hyper-parameters of Table I
(d, d_h, heads, kernel sizes, mu, alpha, beta, M, N) live in the model configs, not here.

:func:`check_store_fits` is what ``--dataset`` runs: it checks the store's task, label names,
label values, splits and modalities (not its ``dataset`` attribute, so a synthetic store made
with ``mea synth --like mosi`` fits the ``mosi`` preset) and raises :class:`DatasetMismatchError`
saying what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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
# Our choices where every paper is silent (documented in docs/data.md).
GRAD_CLIP = 0.8  # max global grad norm; the value MulT's public training script uses
PATIENCE = 10  # epochs without a better validation score before early stopping


class PresetError(MeaError):
    """An unknown preset name."""


class DatasetMismatchError(MeaError):
    """A feature store that does not fit the requested dataset preset."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True)
class ModelHParams:
    """One model's training hyper-parameters on one benchmark, as its paper reports them."""

    model: str
    batch_size: int
    epochs: int
    lr: float
    source: str


@dataclass(frozen=True)
class DatasetPreset:
    """A benchmark: task, labels, metrics and training hyper-parameters (MEA Table I).

    ``batch_size``, ``epochs`` and ``lr`` are the MEA values of Table I; ``grad_clip`` and
    ``patience`` are ours (the paper is silent). ``label_range`` bounds regression labels.
    ``benchmark_dims`` and ``benchmark_splits`` describe the CMU feature sets (GloVe 300 /
    Facet 35 / COVAREP 74, Sec. IV-A/B) for information only; stores with other features fit.
    """

    name: str
    task: str
    label_names: tuple[str, ...]
    metrics: tuple[str, ...]
    batch_size: int
    epochs: int
    lr: float
    grad_clip: float
    patience: int
    label_range: tuple[float, float] | None
    benchmark_dims: tuple[tuple[str, int], ...]
    benchmark_splits: tuple[tuple[str, int], ...]
    model: str = "mea"
    hparams_source: str = ""
    models: tuple[ModelHParams, ...] = ()

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def for_model(self, model: str) -> DatasetPreset:
        """The preset with ``model``'s own batch size / epochs / lr from its paper.

        A model without published values for this benchmark keeps the MEA ones (Table I), and
        ``hparams_source`` says so.
        """
        for hp in self.models:
            if hp.model == model:
                return replace(
                    self,
                    model=model,
                    batch_size=hp.batch_size,
                    epochs=hp.epochs,
                    lr=hp.lr,
                    hparams_source=hp.source,
                )
        return replace(
            self,
            model=model,
            hparams_source=f"no published values for {model} on {self.name}: "
            f"MEA Table I values used (our choice)",
        )


def _hp(
    model: str, table: dict[str, tuple[int, int, float]], source: str
) -> dict[str, ModelHParams]:
    return {ds: ModelHParams(model, b, e, lr, source) for ds, (b, e, lr) in table.items()}


# (batch size, epochs, lr) per dataset, from each paper.
_MEA = _hp(
    "mea",
    {"mosi": (32, 60, 1e-3), "mosei": (64, 100, 2e-3), "iemocap": (32, 60, 1e-3)},
    "MEA (TCSVT) Table I",
)
_MFSA = _hp(
    "mfsa",
    {"mosi": (64, 100, 1e-3), "mosei": (64, 100, 3e-3), "iemocap": (32, 60, 1e-3)},
    "MFSA (ACM MM 2022) Sec. 4.2",
)
_MCR = _hp(
    "mcr",
    {"mosi": (64, 120, 1e-3), "mosei": (16, 30, 1e-3), "iemocap": (32, 60, 2e-3)},
    "MCR (KBS 2023) Table 1",
)
_FDMER = _hp(
    "fdmer",
    {"mosi": (64, 120, 1e-3), "mosei": (16, 100, 1e-3)},  # its third set is UR-FUNNY
    "FDMER (ACM MM 2022) Sec. 4.2",
)
_MULT = _hp(
    "mult",
    {"mosi": (128, 100, 1e-3), "mosei": (16, 20, 1e-3), "iemocap": (32, 30, 2e-3)},
    "MulT (ACL 2019) Table 5",
)
_BENCH_DIMS = (("text", 300), ("vision", 35), ("audio", 74))


def _preset(
    name: str, task: str, labels: tuple[str, ...], splits: tuple[int, ...]
) -> DatasetPreset:
    mea = _MEA[name]
    models = tuple(table[name] for table in (_MEA, _MFSA, _MCR, _FDMER, _MULT) if name in table)
    return DatasetPreset(
        name=name,
        task=task,
        label_names=labels,
        metrics=REGRESSION_METRICS if task == "regression" else IEMOCAP_METRICS,
        batch_size=mea.batch_size,
        epochs=mea.epochs,
        lr=mea.lr,
        grad_clip=GRAD_CLIP,
        patience=PATIENCE,
        label_range=(-3.0, 3.0) if task == "regression" else None,
        benchmark_dims=_BENCH_DIMS,
        benchmark_splits=tuple(zip(("train", "valid", "test"), splits, strict=False)),
        model="mea",
        hparams_source=mea.source,
        models=models,
    )


PRESETS: dict[str, DatasetPreset] = {
    # split sizes: MEA Sec. IV-A (MOSI, MOSEI); the papers give none for IEMOCAP
    "mosi": _preset("mosi", "regression", ("sentiment",), (1284, 229, 686)),
    "mosei": _preset("mosei", "regression", ("sentiment",), (16326, 1871, 4659)),
    "iemocap": _preset("iemocap", "binary-multilabel", IEMOCAP_EMOTIONS, ()),
}


def get_preset(name: str, model: str | None = None) -> DatasetPreset:
    """The preset called ``name`` (optionally with ``model``'s own training values)."""
    key = name.strip().lower()
    if key not in PRESETS:
        raise PresetError(f"unknown dataset preset {name!r}; valid presets: {', '.join(PRESETS)}")
    preset = PRESETS[key]
    return preset if model is None else preset.for_model(model)


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
