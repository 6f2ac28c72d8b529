"""Training presets: one per (model, dataset), every value with its source.

The training hyper-parameters (batch size, epochs, learning rate, gradient clipping, early
stopping, the learning-rate schedule) are resolved here; the values a paper published travel
with its model (``mea_cli/models/<family>/paper_<model>.json``, carried by the model's
registration as ``get_entry(model).paper``), our own defaults are below. Model
hyper-parameters live in each model's config presets, dataset definitions in
:mod:`mea_cli.data.presets`.

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

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mea_cli.config import ConfigError
from mea_cli.models import get_entry
from mea_cli.train.config import TrainSettings

OURS = "our choice (the paper is silent)"

FALLBACK = "mea"
"""The model whose published training values a model without its own takes."""

_OUR_DEFAULTS: dict[str, tuple[Any, str]] = {
    "grad_clip": (0.8, "our choice (the paper is silent; MulT Table 5's MOSI / IEMOCAP value)"),
    "patience": (10, OURS),
    "lr_patience": (5, OURS),
    "lr_factor": (0.5, OURS),
    "weight_decay": (0.0, OURS),
    "eval_batch_size": (0, "ours: 0 means twice the training batch size"),
    "class_weights": ("none", "ours: unweighted cross-entropy, as the papers train"),
    "label_smoothing": (0.0, "ours: hard class targets, as the papers train"),
    "input_noise": (0.0, "ours: no augmentation, as the papers train"),
    "time_mask": (0.0, "ours: no augmentation, as the papers train"),
    "mixup": (0.0, "ours: no augmentation, as the papers train"),
    "ema_decay": (0.0, "ours: the last step's weights, as the papers train"),
    "normalise": ("train", "ours: one mean/std from the train split, as the papers train"),
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
    paper = get_entry(model).paper
    source, row = paper.training_source, paper.training.get(dataset)
    if row is None:
        fallback = get_entry(FALLBACK).paper
        row = fallback.training[dataset]
        source = (
            f"no published value for {model} on {dataset}: {fallback.training_source} "
            "(MEA's value, our choice)"
        )
    values.update(row)
    sources.update(dict.fromkeys(row, source))
    return TrainingPreset(model, dataset, TrainSettings(**values), sources)



# ----------------------------------------------------------------------------- --preset small
SMALL_SOURCE = "--preset small (ours: small custom stores; chosen on Emo-DB's valid split)"

SMALL_TRAIN: dict[str, Any] = dict(
    batch_size=16, epochs=40, lr=3e-3, patience=10, lr_patience=4, weight_decay=1e-4,
    ema_decay=0.98,
)  # fmt: skip
"""Training settings of ``--preset small``: a few hundred clips; more, smaller steps per
epoch, a little weight decay, and a moving average of the weights (``ema_decay``,
:mod:`mea_cli.train.ema`) that is validated and kept, because one epoch's weights score
noisily on a small valid split (docs/training.md)."""


SMALL_TRAIN_MODEL: dict[str, dict[str, Any]] = {
    "mea": dict(class_weights="balanced", batch_size=32),
}
"""Training settings of ``--preset small`` for one model only, on top of :data:`SMALL_TRAIN`:
chosen for that model on Emo-DB's valid split (docs/performance.md: class weights in the fourth
session, batch size 32 in the fifth). The other
models were not tuned with them and keep :data:`SMALL_TRAIN` as it is."""


PRESETS: tuple[str, ...] = ("paper", "small")
"""``--preset`` values: ``paper`` (the default: the papers' values above), ``small``."""


def check_preset(preset: str) -> None:
    """Refuse a ``--preset`` that is not one of :data:`PRESETS` (one line, exit 2)."""
    if preset not in PRESETS:
        raise ConfigError("--preset", f"must be one of {', '.join(PRESETS)}, not {preset!r}")


def small_overrides(model: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(training settings, model overrides) of ``--preset small`` for ``model`` (the model's
    registered ``small`` overrides: smaller and shallower, the rest of its dataset preset kept;
    a model without them keeps its own values; the training settings add the model's own
    :data:`SMALL_TRAIN_MODEL` entry)."""
    return {**SMALL_TRAIN, **SMALL_TRAIN_MODEL.get(model, {})}, dict(get_entry(model).small)


SMALL_HINT_BELOW = 1000
"""Training samples under which :func:`small_data_note` suggests ``--preset small``: the papers'
presets were set on 1284 (CMU-MOSI) to 16 326 (CMU-MOSEI) training segments."""


def small_data_note(
    model: str,
    dataset: str,
    preset: str,
    n_train: int,
    model_overrides: Mapping[str, Any] | None = None,
) -> str:
    """One line for ``mea train`` on a custom store of fewer than :data:`SMALL_HINT_BELOW`
    training samples with the papers' preset, when ``model`` has a ``--preset small`` form and
    ``model_overrides`` set none of the fields it shrinks (whoever sets ``d`` chose a size);
    ``""`` otherwise. Nothing is changed: the note only says what the preset is for."""
    if dataset != "custom" or preset != "paper" or n_train >= SMALL_HINT_BELOW:
        return ""
    small = get_entry(model).small
    if not small or set(small) & set(model_overrides or {}):
        return ""
    return (
        f"note: {n_train} training samples; {model}'s paper sizes are for thousands of segments. "
        "--preset small trains a smaller model for a few hundred "
        "(docs/training.md#--preset-small-a-few-hundred-clips)"
    )


def preset_table(model: str, dataset: str) -> dict[str, tuple[Any, str]]:
    """``{setting: (value, source)}`` of :func:`training_preset` (what ``mea info --model``
    shows)."""
    tp = training_preset(model, dataset)
    return {k: (v, tp.sources[k]) for k, v in tp.settings.to_dict().items()}
