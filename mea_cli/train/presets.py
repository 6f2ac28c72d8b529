"""Training presets: one per (model, dataset), every value with its source.

The training hyper-parameters (batch size, epochs, learning rate, gradient clipping, early
stopping, the learning-rate schedule) have this one home; model hyper-parameters live in each
model's config presets, dataset definitions in :mod:`mea_cli.data.presets`.

Where each value comes from:

================  =====================================  ========================================
model             batch size / epochs / lr                gradient clip
================  =====================================  ========================================
mea               MEA (IEEE TCSVT) Table I                our choice (the paper is silent)
mfsa              MFSA (ACM MM 2022) Sec. 4.2             our choice
mcr               MCR (KBS 2023) Table 1                  our choice
fdmer             FDMER (ACM MM 2022) Sec. 4.2            our choice
mult              MulT (ACL 2019) Table 5                 MulT (ACL 2019) Table 5
================  =====================================  ========================================

FDMER's third benchmark is UR-FUNNY, not IEMOCAP: on IEMOCAP (and for any model or dataset
without published values) the MEA Table I row is used and the source says so. Early-stopping
patience and the ``ReduceLROnPlateau`` settings are ours for every model (no paper gives them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mea_cli.train.config import TrainSettings

OURS = "our choice (the paper is silent)"

_OUR_DEFAULTS: dict[str, tuple[Any, str]] = {
    "grad_clip": (0.8, "our choice (the paper is silent; MulT Table 5's MOSI / IEMOCAP value)"),
    "patience": (10, OURS),
    "lr_patience": (5, OURS),
    "lr_factor": (0.5, OURS),
    "weight_decay": (0.0, OURS),
    "eval_batch_size": (0, "ours: 0 means twice the training batch size"),
    "class_weights": ("none", "ours: unweighted cross-entropy, as the papers train"),
}

# model -> (source, {dataset: {setting: value}}): the values each paper reports.
_PAPERS: dict[str, tuple[str, dict[str, dict[str, Any]]]] = {
    "mea": (
        "MEA (IEEE TCSVT) Table I",
        {
            "mosi": dict(batch_size=32, epochs=60, lr=1e-3),
            "mosei": dict(batch_size=64, epochs=100, lr=2e-3),
            "iemocap": dict(batch_size=32, epochs=60, lr=1e-3),
        },
    ),
    "mfsa": (
        "MFSA (ACM MM 2022) Sec. 4.2",
        {
            "mosi": dict(batch_size=64, epochs=100, lr=1e-3),
            "mosei": dict(batch_size=64, epochs=100, lr=3e-3),
            "iemocap": dict(batch_size=32, epochs=60, lr=1e-3),
        },
    ),
    "mcr": (
        "MCR (KBS 2023) Table 1",
        {
            "mosi": dict(batch_size=64, epochs=120, lr=1e-3),
            "mosei": dict(batch_size=16, epochs=30, lr=1e-3),
            "iemocap": dict(batch_size=32, epochs=60, lr=2e-3),
        },
    ),
    "fdmer": (
        "FDMER (ACM MM 2022) Sec. 4.2",
        {
            "mosi": dict(batch_size=64, epochs=120, lr=1e-3),
            "mosei": dict(batch_size=16, epochs=100, lr=1e-3),
        },
    ),
    "mult": (
        "MulT (Tsai et al., ACL 2019) Table 5",
        {
            "mosi": dict(batch_size=128, epochs=100, lr=1e-3, grad_clip=0.8),
            "mosei": dict(batch_size=16, epochs=20, lr=1e-3, grad_clip=1.0),
            "iemocap": dict(batch_size=32, epochs=30, lr=2e-3, grad_clip=0.8),
        },
    ),
}


@dataclass(frozen=True)
class TrainingPreset:
    """The training settings of ``model`` on ``dataset`` and the source of each value."""

    model: str
    dataset: str
    settings: TrainSettings
    sources: dict[str, str]


def training_preset(model: str, dataset: str) -> TrainingPreset:
    """The preset of ``model`` on ``dataset`` (a known dataset name; the model may be any
    registered one: without published values it gets MEA's, and the sources say so)."""
    values = {k: v for k, (v, _) in _OUR_DEFAULTS.items()}
    sources = {k: s for k, (_, s) in _OUR_DEFAULTS.items()}
    source, table = _PAPERS.get(model, ("", {}))
    row = table.get(dataset)
    if row is None:
        source, table = _PAPERS["mea"]
        row = table[dataset]
        source = (
            f"no published value for {model} on {dataset}: {source} (MEA's value, our choice)"
        )
    values.update(row)
    sources.update(dict.fromkeys(row, source))
    return TrainingPreset(model, dataset, TrainSettings(**values), sources)



# ----------------------------------------------------------------------------- --preset small
SMALL_SOURCE = "--preset small (ours: small custom stores; chosen on Emo-DB's valid split)"

SMALL_TRAIN: dict[str, Any] = dict(
    batch_size=16, epochs=40, lr=3e-3, patience=10, lr_patience=4, weight_decay=1e-4
)
"""Training settings of ``--preset small``: a few hundred clips; more, smaller steps per
epoch and a little weight decay."""

SMALL_MODELS: dict[str, dict[str, Any]] = {
    "mea": dict(d=32, heads=4, psa_layers=1, hca_layers=1, dropout=0.2),
    "mfsa": dict(d=32, heads=4),
    "mult": dict(d=32, heads=4, layers=2, memory_layers=2),
}
"""Model overrides of ``--preset small`` (smaller and shallower; the rest of the model's
dataset preset is kept). A model not listed keeps its own values."""

PRESETS: tuple[str, ...] = ("paper", "small")
"""``--preset`` values: ``paper`` (the default: the papers' values above), ``small``."""


def small_overrides(model: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(training settings, model overrides) of ``--preset small`` for ``model``."""
    return dict(SMALL_TRAIN), dict(SMALL_MODELS.get(model, {}))
