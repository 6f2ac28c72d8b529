"""The model registry (timm / torchvision style): ``register_model``, ``list_models``,
``get_entry``, ``config_for``, ``create_model``, ``get_model``.

A model registers its ``nn.Module`` class with its :class:`~mea_cli.models.core.contract.ModelConfig`
subclass and declares its ablation switches, capabilities, unused parameters, tiny test
config and deviations from its paper (see :mod:`mea_cli.models.core.contract` and ``docs/models/contract.md``)::

    @register_model("mea", MEAConfig, switches=SWITCHES, capabilities=(...), tiny={...})
    class MEA(nn.Module): ...

Built-in models live in :data:`BUILTIN` and are imported on first use, so ``mea_cli.models``
stays cheap to import. Stages ask the registry what a model can do (``mea ablate`` its
switches, ``mea viz`` its capabilities) and refuse in one line naming the model and what it
lacks.
"""

from __future__ import annotations

import fnmatch
import importlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from mea_cli.errors import MeaError
from mea_cli.models.core.contract import (
    CAPABILITIES,
    Deviation,
    ModelConfig,
    SwitchSet,
    set_switch_lookup,
)
from mea_cli.models.core.paper import PaperInfo

BUILTIN: tuple[str, ...] = (
    "mea_cli.models.mea.model",
    "mea_cli.models.mea.mfsa",
    "mea_cli.models.mcr.model",
    "mea_cli.models.fdmer.model",
    "mea_cli.models.mult.model",
    "mea_cli.models.functionals.model",
)
"""Modules that register the built-in models (one line per model), in the order their paper
rows are listed (:func:`entries`)."""

PLUGINS_ENV = "MEA_MODELS"
"""Environment variable: comma-separated modules imported after :data:`BUILTIN`, each
registering its models (a model kept outside this package; docs/models/contract.md)."""


class UnknownModelError(MeaError):
    """A model name that is not registered."""


class CapabilityError(MeaError):
    """A command asked a model for something it does not provide (a picture, a switch)."""


@dataclass(frozen=True)
class ModelEntry:
    """What the registry knows of one model (see :func:`register_model`)."""

    name: str
    model_cls: type[nn.Module]
    config_cls: type[ModelConfig]
    switches: SwitchSet = field(default_factory=SwitchSet)
    capabilities: frozenset[str] = frozenset()
    capabilities_for: Callable[[Any], Iterable[str]] | None = None
    unused_parameters: tuple[str, ...] = ()
    tiny: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    deviations: tuple[Deviation, ...] = ()
    paper: PaperInfo = field(default_factory=PaperInfo)
    small: Mapping[str, Any] = field(default_factory=dict)

    def deviations_for(self, cfg: Any, setting: str | None = None) -> tuple[Deviation, ...]:
        """The declared deviations from the paper that a model built from ``cfg`` has, run on
        a store of ``setting`` (``"unaligned"`` / ``"word-aligned"``; None: any)."""
        return tuple(d for d in self.deviations if d.holds(cfg, setting))

    def active_capabilities(self, cfg: Any) -> frozenset[str]:
        """The capabilities a model built from ``cfg`` has (its switches may remove some)."""
        if self.capabilities_for is None:
            return self.capabilities
        return frozenset(self.capabilities_for(cfg)) & self.capabilities

    @property
    def reads_gap_masks(self) -> bool:
        """Whether the model reads masks with gaps (``gap_masks``): only then does a dataset
        build the per-step observed masks for it (aligned stores' unreached words)."""
        return "gap_masks" in self.capabilities

    def is_unused(self, parameter: str) -> bool:
        """Whether parameter ``parameter`` is declared to receive no gradient."""
        return any(fnmatch.fnmatchcase(parameter, p) for p in self.unused_parameters)

    def tiny_config(self, dataset: str = "mosi", **kwargs: Any) -> Any:
        """The ``dataset`` preset with the model's tiny override (fast tests)."""
        return config_for(self.name, dataset, **kwargs, **dict(self.tiny))

    def require(self, capability: str, cfg: Any, purpose: str) -> None:
        """Raise :class:`CapabilityError` (one line) unless ``cfg``'s model has ``capability``."""
        what = capability.replace("_", " ")
        if capability not in self.capabilities:
            offers = ", ".join(sorted(self.capabilities)) or "none"
            raise CapabilityError(
                f"{purpose}: model {self.name!r} provides no {what} (its capabilities: {offers})"
            )
        if capability not in self.active_capabilities(cfg):
            raise CapabilityError(
                f"{purpose}: this {self.name} model was built with ablations "
                f"{', '.join(cfg.ablations) or 'none'}, which remove its {what}"
            )


_REGISTRY: dict[str, ModelEntry] = {}
_BY_CONFIG: dict[type, ModelEntry] = {}
_loaded = False


def register_model(
    name: str,
    config_cls: type[ModelConfig],
    *,
    switches: SwitchSet | None = None,
    capabilities: Iterable[str] = (),
    capabilities_for: Callable[[Any], Iterable[str]] | None = None,
    unused_parameters: Iterable[str] = (),
    tiny: Mapping[str, Any] | None = None,
    description: str = "",
    deviations: Iterable[Deviation] = (),
    paper: PaperInfo | None = None,
    small: Mapping[str, Any] | None = None,
) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: register ``model_cls`` under ``name``.

    Args:
        config_cls: the model's :class:`ModelConfig` subclass (``model_cls(cfg)`` builds it).
        switches: its ablation switches (``mea ablate --drop NAME``); none by default.
        capabilities: names from :data:`~mea_cli.models.core.contract.CAPABILITIES` it provides.
        capabilities_for: ``cfg -> capabilities`` when switches remove some (default: all).
        unused_parameters: fnmatch patterns of parameters that receive no gradient.
        tiny: field overrides giving a small, fast configuration (contract tests).
        description: one line for ``mea info --model``.
        deviations: its departures from its paper (:class:`~mea_cli.models.core.contract.Deviation`),
            printed under result tables and by ``mea info --model``; none by default.
        paper: what its paper published (:class:`~mea_cli.models.core.paper.PaperInfo`:
            training values, test result rows, ablation table), usually
            ``load_paper(__package__, name)``; none by default.
        small: field overrides of ``--preset small`` (smaller and shallower); none by default.
    """
    caps = frozenset(capabilities)
    unknown = sorted(caps - set(CAPABILITIES))
    if unknown:
        raise ValueError(f"model {name!r}: unknown capabilities {unknown}; valid: {list(CAPABILITIES)}")
    if not (isinstance(config_cls, type) and issubclass(config_cls, ModelConfig)):
        raise TypeError(f"model {name!r}: the config class must subclass ModelConfig")
    devs = tuple(deviations)
    keys = [d.key for d in devs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"model {name!r}: deviation keys must be unique: {keys}")

    def deco(model_cls: type[nn.Module]) -> type[nn.Module]:
        old = _REGISTRY.get(name)
        same = old is not None and (old.model_cls.__module__, old.model_cls.__qualname__) == (
            model_cls.__module__,
            model_cls.__qualname__,
        )
        if old is not None and not same:
            raise ValueError(f"model {name!r} is already registered")
        owner = _BY_CONFIG.get(config_cls)
        if owner is not None and owner.name != name:
            raise ValueError(f"{config_cls.__name__} already belongs to model {owner.name!r}")
        e = ModelEntry(
            name=name,
            model_cls=model_cls,
            config_cls=config_cls,
            switches=switches or SwitchSet(),
            capabilities=caps,
            capabilities_for=capabilities_for,
            unused_parameters=tuple(unused_parameters),
            tiny=dict(tiny or {}),
            description=description,
            deviations=devs,
            paper=paper or PaperInfo(),
            small=dict(small or {}),
        )
        _REGISTRY[name] = e
        _BY_CONFIG[config_cls] = e
        return model_cls

    return deco


def unregister_model(name: str) -> None:
    """Remove model ``name`` (models registered for a while, e.g. inside a test)."""
    e = _REGISTRY.pop(name, None)
    if e is not None:
        _BY_CONFIG.pop(e.config_cls, None)


def _load_builtin() -> None:
    global _loaded
    if not _loaded:
        _loaded = True  # before the imports: a builtin module may build a config at import
        for module in BUILTIN:
            importlib.import_module(module)
        for module in filter(None, os.environ.get(PLUGINS_ENV, "").split(",")):
            _import_plugin(module.strip())


def _import_plugin(module: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as err:
        raise UnknownModelError(
            f"{PLUGINS_ENV}: cannot import model module {module!r} ({err})"
        ) from None


def entries() -> list[ModelEntry]:
    """Every registered model's entry: the built-in models in the order of :data:`BUILTIN`
    (whichever was imported first), then the others in registration order."""
    _load_builtin()
    rank = {module: i for i, module in enumerate(BUILTIN)}
    return sorted(_REGISTRY.values(), key=lambda e: rank.get(e.model_cls.__module__, len(rank)))


def list_models() -> list[str]:
    """Registered model names, sorted."""
    _load_builtin()
    return sorted(_REGISTRY)


def get_entry(name: str) -> ModelEntry:
    """The registry entry for ``name`` (:class:`UnknownModelError` listing the valid names)."""
    _load_builtin()
    if name not in _REGISTRY:
        raise UnknownModelError(
            f"unknown model {name!r}; valid models: {', '.join(sorted(_REGISTRY))}"
        )
    return _REGISTRY[name]


def switches_of(config_cls: type) -> SwitchSet | None:
    """The switches of the model that ``config_cls`` configures (None: not registered)."""
    _load_builtin()
    e = _BY_CONFIG.get(config_cls)
    return None if e is None else e.switches


def config_for(
    name: str,
    dataset: str,
    input_dims: Mapping[str, int] | None = None,
    task: str | None = None,
    num_labels: int | None = None,
    **overrides: Any,
) -> Any:
    """Model ``name``'s ``dataset`` preset for this data shape, with ``overrides`` applied
    (``field=value``, typed or command-line text); every problem is one
    :class:`~mea_cli.config.ConfigError`, a model too big for this machine one
    :class:`ModelSizeError` (:func:`check_size`)."""
    cfg = get_entry(name).config_cls.preset(dataset, input_dims, task, num_labels)
    if not overrides:
        return cfg
    cfg = cfg.override(overrides)
    check_size(name, cfg)
    return cfg


def config_from_dict(name: str, data: Mapping[str, Any]) -> Any:
    """Rebuild model ``name``'s config from ``to_dict()`` output (e.g. from a checkpoint)."""
    return get_entry(name).config_cls.from_dict(data)


class ModelSizeError(MeaError):
    """A configuration whose model would not fit in this machine's memory to train."""


TRAINING_BYTES_PER_PARAMETER = 16
"""float32 weight, gradient and Adam's two moments: what training holds per parameter at least
(activations come on top)."""


_SIZES: dict[tuple[type, str], tuple[int, int]] = {}


def model_size(name: str, cfg: Any) -> tuple[int, int]:
    """``(parameters, buffer elements)`` of model ``name`` built from ``cfg``, counted on torch's
    ``meta`` device: nothing is allocated, so a configuration far too big for memory is measured
    without building it. Counted once per configuration (building the modules takes ~20 ms)."""
    model_cls = get_entry(name).model_cls
    key = (model_cls, json.dumps(cfg.to_dict(), sort_keys=True))
    if key not in _SIZES:
        with torch.device("meta"):
            model = model_cls(cfg)
        _SIZES[key] = (
            sum(p.numel() for p in model.parameters()),
            sum(b.numel() for b in model.buffers()),
        )
    return _SIZES[key]


def _machine_memory() -> int:
    """This machine's physical memory in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_size(name: str, cfg: Any, memory: int | None = None) -> None:
    """Refuse (:class:`ModelSizeError`, one line) a configuration whose weights, gradients and
    Adam moments alone (:data:`TRAINING_BYTES_PER_PARAMETER` a parameter, 4 bytes a buffer
    element) exceed ``memory`` bytes (default: this machine's physical memory). Run on
    configurations a user changed (``--set``, ``--config``, a tuning range), before any is built:
    an oversized one would otherwise end in an allocator traceback or the kernel's OOM killer.
    A model whose constructor cannot run on the meta device (a plug-in reading a tensor's value,
    ``.item()``) is not counted: the check lets it through."""
    try:
        params, buffers = model_size(name, cfg)
    except (RuntimeError, NotImplementedError):  # meta tensors have no values to read
        return
    need = params * TRAINING_BYTES_PER_PARAMETER + buffers * 4
    have = _machine_memory() if memory is None else memory
    if need > have:
        gib = 2**30
        raise ModelSizeError(
            f"model {name!r} with this configuration has {params:,} parameters: training it "
            f"needs at least {need / gib:.1f} GiB (float32 weights, gradients and Adam's two "
            f"moments), more than this machine's {have / gib:.1f} GiB; choose smaller sizes"
        )


def check_config_size(cfg: Any) -> None:
    """:func:`check_size` for the registered model that ``cfg``'s class configures (nothing for
    a config class no model registered, such as the training settings)."""
    _load_builtin()
    e = _BY_CONFIG.get(type(cfg))
    if e is not None:
        check_size(e.name, cfg)


def create_model(name: str, cfg: Any) -> nn.Module:
    """Build model ``name`` from its config (or from the config's ``to_dict()`` form)."""
    e = get_entry(name)
    if isinstance(cfg, Mapping):
        cfg = e.config_cls.from_dict(cfg)
    if not isinstance(cfg, e.config_cls):
        raise TypeError(f"model {name!r} needs a {e.config_cls.__name__}, got {type(cfg).__name__}")
    return e.model_cls(cfg)


def get_model(name: str, dataset: str = "mosi", **overrides: Any) -> nn.Module:
    """torchvision's ``get_model``: model ``name`` built from its ``dataset`` preset."""
    return create_model(name, config_for(name, dataset, **overrides))


set_switch_lookup(switches_of)
