"""Training settings (:class:`TrainSettings`) and the command line's ways to override them.

The values come from the training preset of the (model, dataset) pair
(:mod:`mea_cli.train.presets`), then ``--config FILE.toml``, then ``--set key=value`` and
``--epochs``, later sources winning. ``--set`` keys address the training settings with a
``train.`` prefix (``train.lr=5e-4``) and the model config otherwise (``d=32``, ``heads=4``,
``ablations=psa,wal``; ``model.d=32`` works too). A TOML file has the same two parts::

    [train]
    epochs = 20
    lr = 1e-3

    [model]
    d = 40

:func:`overrides_from_cli` turns all of it into two dicts, ``(train, model)``; from there on
every stage passes structured overrides (dicts), never ``--set`` strings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from mea_cli.config import Config, ConfigError, parse_text

NORMALISE_MODES = ("train", "group")
MAX_SEED = 2**63 - 1  # torch.manual_seed and numpy's SeedSequence take 0 .. 2**63 - 1


@dataclass(frozen=True)
class TrainSettings(Config):
    """What the trainer does (values and sources: :mod:`mea_cli.train.presets`).

    ``patience``: early stopping after this many epochs without a better validation selection
    metric. ``lr_patience`` / ``lr_factor``: ``ReduceLROnPlateau`` on the validation **task**
    loss (docs/training.md). ``eval_batch_size`` 0 means twice ``batch_size``.
    ``class_weights``: ``none`` or ``balanced`` (classification: each class's cross-entropy
    weighted by ``n / (C * n_c)`` on the train split, scikit-learn's "balanced").
    ``label_smoothing``: classification only, 0 is off; the training cross-entropy's target puts
    ``1 - label_smoothing`` on the true class and spreads ``label_smoothing`` evenly over all
    classes (PyTorch's ``cross_entropy(label_smoothing=)``); validation losses stay unsmoothed.
    ``input_noise`` / ``time_mask``: training-time augmentation of the real input steps
    (Gaussian noise std in standardised units; the fraction of each sequence masked as one
    span), 0 is off; ``mixup``: classification only, the ``alpha`` of input mixup's
    ``Beta(alpha, alpha)`` mixing weight, 0 is off: :mod:`mea_cli.train.augment`.
    ``ema_decay``: validate, select and keep a moving average of the weights (0: off;
    :mod:`mea_cli.train.ema`). ``normalise``:
    ``train`` (one mean/std per feature from the train split) or ``group`` (each group of the
    store, e.g. a speaker, standardised with its own statistics over all its unlabelled
    samples; :class:`mea_cli.data.dataset.GroupNorm`).
    """

    epochs: int = 60
    batch_size: int = 32
    lr: float = 1e-3
    grad_clip: float = 0.8
    patience: int = 10
    lr_patience: int = 5
    lr_factor: float = 0.5
    weight_decay: float = 0.0
    eval_batch_size: int = 0
    class_weights: str = "none"
    label_smoothing: float = 0.0
    input_noise: float = 0.0
    time_mask: float = 0.0
    mixup: float = 0.0
    ema_decay: float = 0.0
    normalise: str = "train"

    WHAT: ClassVar[str] = "training settings"

    def problems(self) -> list[str]:
        out = super().problems()
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1:
            out.append("epochs, batch_size and patience must be at least 1")
        if self.lr <= 0:
            out.append(f"lr must be positive, not {self.lr}")
        if self.grad_clip < 0 or self.weight_decay < 0 or self.lr_patience < 0:
            out.append("grad_clip (0: off), weight_decay and lr_patience must not be negative")
        if not 0.0 < self.lr_factor < 1.0:
            out.append(f"lr_factor must lie in (0, 1), not {self.lr_factor}")
        if self.class_weights not in ("none", "balanced"):
            out.append(f"class_weights must be none or balanced, not {self.class_weights!r}")
        if not 0.0 <= self.label_smoothing < 1.0:
            out.append(f"label_smoothing must lie in [0, 1) (0: off), not {self.label_smoothing}")
        if self.input_noise < 0 or not 0.0 <= self.time_mask < 1.0:
            out.append("input_noise must not be negative and time_mask must lie in [0, 1)")
        if self.mixup < 0:
            out.append(f"mixup must not be negative (0: off), not {self.mixup}")
        if not 0.0 <= self.ema_decay < 1.0:
            out.append(f"ema_decay must lie in [0, 1) (0: off), not {self.ema_decay}")
        if self.normalise not in NORMALISE_MODES:
            out.append(f"normalise must be train or group, not {self.normalise!r}")
        if self.eval_batch_size < 0:
            out.append("eval_batch_size must not be negative (0: twice batch_size)")
        return out

    @property
    def eval_batch(self) -> int:
        return self.eval_batch_size or 2 * self.batch_size


def parse_sets(items: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``--set`` items into (training overrides, model overrides).

    Values are read as JSON / TOML literals where they are one (``5e-4``, ``20``, ``true``),
    else kept as text (``psa,wal``, ``3/3/5``); each config types them by its fields.
    """
    train: dict[str, Any] = {}
    model: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError("--set", f"{item!r}: expected key=value (e.g. --set train.lr=5e-4)")
        if key.startswith("train."):
            train[key[len("train.") :]] = parse_text(value)
        else:
            model[key.removeprefix("model.")] = parse_text(value)
    return train, model


def load_toml(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(training overrides, model overrides) from a ``--config`` TOML file."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        raise ConfigError(str(path), "reading TOML needs Python 3.11 or newer") from None
    try:
        raw = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(str(path), "no such file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(str(path), f"not valid TOML ({err})") from None
    extra = sorted(set(raw) - {"train", "model"})
    if extra:
        raise ConfigError(str(path), f"unknown table(s) {extra}; use [train] and [model]")
    train, model = raw.get("train", {}), raw.get("model", {})
    if not isinstance(train, dict) or not isinstance(model, dict):
        raise ConfigError(str(path), "[train] and [model] must be tables")
    try:  # every check of a training setting is of its own value: the file's are checked here
        TrainSettings().override(train)
    except ConfigError as err:
        raise ConfigError(str(path), str(err)) from None
    return dict(train), dict(model)


def overrides_from_cli(
    sets: Sequence[str] = (),
    config: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None,
    epochs: int | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(train, model)`` overrides from ``--config`` (its two tables, read by
    :func:`load_toml`), then ``--set``, then ``--epochs``."""
    train: dict[str, Any] = {}
    model: dict[str, Any] = {}
    if config is not None:
        train.update(config[0])
        model.update(config[1])
    t, m = parse_sets(sets)
    train.update(t)
    model.update(m)
    if epochs is not None:
        train["epochs"] = epochs
    return train, model
