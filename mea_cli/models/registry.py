"""Model registry: ``register_model``, ``create_model``, ``list_models``, ``config_for``.

Each model registers its ``nn.Module`` class together with its config dataclass. A config class
provides ``preset(dataset, input_dims, task, num_labels)``, ``to_dict()`` and ``from_dict()``;
the model class is built as ``model_cls(cfg)``. Built-in models live in :data:`BUILTIN` and are
imported on first use, so ``mea_cli.models`` stays cheap to import.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from mea_cli.errors import MeaError
from mea_cli.models.config import override

BUILTIN: tuple[str, ...] = (
    "mea_cli.models.mea",
    "mea_cli.models.mult",
)
"""Modules that register the built-in models (one line per model)."""


@dataclass(frozen=True)
class ModelEntry:
    name: str
    model_cls: type[nn.Module]
    config_cls: type


_REGISTRY: dict[str, ModelEntry] = {}
_loaded = False


class UnknownModelError(MeaError):
    """A model name that is not registered."""


def register_model(name: str, config_cls: type) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: register ``model_cls`` under ``name`` with its config class."""

    def deco(model_cls: type[nn.Module]) -> type[nn.Module]:
        if name in _REGISTRY and _REGISTRY[name].model_cls is not model_cls:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = ModelEntry(name, model_cls, config_cls)
        return model_cls

    return deco


def _load_builtin() -> None:
    global _loaded
    if not _loaded:
        for module in BUILTIN:
            importlib.import_module(module)
        _loaded = True


def list_models() -> list[str]:
    """Registered model names, sorted."""
    _load_builtin()
    return sorted(_REGISTRY)


def entry(name: str) -> ModelEntry:
    """The registry entry for ``name`` (MeaError listing the valid names)."""
    _load_builtin()
    if name not in _REGISTRY:
        raise UnknownModelError(
            f"unknown model {name!r}; valid models: {', '.join(sorted(_REGISTRY))}"
        )
    return _REGISTRY[name]


def config_for(
    name: str,
    dataset: str,
    input_dims: Mapping[str, int] | None = None,
    task: str | None = None,
    num_labels: int | None = None,
    **overrides: Any,
) -> Any:
    """The ``dataset`` preset of model ``name`` for the given data shape, with overrides.

    ``overrides`` are ``field=value``; string values are parsed to the field's type (so the
    trainer's ``--set key=value`` can pass them straight through); an unknown field is a
    :class:`~mea_cli.errors.MeaError` that lists the valid fields.
    """
    cfg = entry(name).config_cls.preset(dataset, input_dims, task, num_labels)
    return override(cfg, overrides) if overrides else cfg


def config_from_dict(name: str, data: Mapping[str, Any]) -> Any:
    """Rebuild model ``name``'s config from ``to_dict()`` output (e.g. from a checkpoint)."""
    return entry(name).config_cls.from_dict(data)


def create_model(name: str, cfg: Any) -> nn.Module:
    """Build model ``name`` from its config (or from the config's ``to_dict()`` form)."""
    e = entry(name)
    if isinstance(cfg, Mapping):
        cfg = e.config_cls.from_dict(cfg)
    if not isinstance(cfg, e.config_cls):
        raise TypeError(f"model {name!r} needs a {e.config_cls.__name__}, got {type(cfg).__name__}")
    return e.model_cls(cfg)
