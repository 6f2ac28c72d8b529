"""Training settings: the dataset preset's values (Table I), then ``--config FILE.toml``, then
``--set key=value`` and explicit options, later sources winning.

``--set`` keys address the training settings with a ``train.`` prefix (``train.lr=5e-4``) and
the model config otherwise (``d=32``, ``heads=4``, ``ablations=psa,wal``). Training values are
parsed as TOML/JSON literals (``1e-3``, ``20``); model values are handed to the model config,
which parses them to each field's type. ``batch_size``, ``epochs`` and ``lr`` are both model
config fields (Table I) and training settings: set either way, they change training. A TOML
file has the same two parts::

    [train]
    epochs = 20
    lr = 1e-3

    [model]
    d = 40
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from mea_cli.errors import MeaError


class ConfigError(MeaError):
    """A bad ``--set`` item or ``--config`` file."""


@dataclass
class TrainSettings:
    """What the trainer does; defaults come from the dataset preset (Table I of the paper).

    ``patience`` is the early-stopping patience in epochs without a better validation metric;
    ``lr_patience`` / ``lr_factor`` drive ``ReduceLROnPlateau`` on the validation loss.
    """

    epochs: int = 60
    batch_size: int = 32
    lr: float = 1e-3
    grad_clip: float = 0.8
    patience: int = 10
    lr_patience: int = 5
    lr_factor: float = 0.5
    weight_decay: float = 0.0
    eval_batch_size: int = 0  # 0: twice the training batch size

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainSettings:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def update(self, overrides: dict[str, Any], source: str) -> None:
        """Apply ``overrides`` with type checks; unknown keys are an error naming ``source``."""
        types = {f.name: f.type for f in fields(self)}
        for key, value in overrides.items():
            if key not in types:
                raise ConfigError(
                    f"{source}: unknown training setting {key!r} (known: {', '.join(sorted(types))})"
                )
            want = types[key]
            try:
                if want in ("int", int):
                    if isinstance(value, bool) or float(value) != int(float(value)):
                        raise ValueError
                    value = int(float(value))
                elif want in ("float", float):
                    if isinstance(value, bool):
                        raise ValueError
                    value = float(value)
            except (TypeError, ValueError):
                raise ConfigError(f"{source}: {key} must be a number, got {value!r}") from None
            setattr(self, key, value)
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ConfigError(f"{source}: epochs, batch_size and lr must be positive")


def parse_value(text: str) -> Any:
    """A ``--set`` value as a TOML/JSON literal when it is one, else the string itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        import tomllib

        return tomllib.loads(f"v = {text}")["v"]
    except Exception:  # noqa: BLE001 - any TOML failure means "a plain string"
        return text


def parse_sets(items: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``--set`` items into (training overrides, model overrides)."""
    train: dict[str, Any] = {}
    model: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected key=value (e.g. --set train.lr=5e-4)")
        if key.startswith("train."):
            train[key[len("train.") :]] = parse_value(value.strip())
        else:
            # model values stay strings: the model config parses them to each field's type
            model[key.removeprefix("model.")] = value.strip()
    return train, model


def load_toml(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(training overrides, model overrides) from a ``--config`` TOML file."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        raise ConfigError(f"{path}: reading TOML needs Python 3.11 or newer") from None
    try:
        raw = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from None
    extra = sorted(set(raw) - {"train", "model"})
    if extra:
        raise ConfigError(f"{path}: unknown table(s) {extra}; use [train] and [model]")
    train, model = raw.get("train", {}), raw.get("model", {})
    if not isinstance(train, dict) or not isinstance(model, dict):
        raise ConfigError(f"{path}: [train] and [model] must be tables")
    return dict(train), dict(model)
