"""Models: ``core/`` (the contract, the registry, outputs, losses, masks, paper metadata),
``layers/`` (layers several families share) and one package per family (``mea/`` with MEA and
MFSA, ``mult/``, ``mcr/``, ``fdmer/``, ``functionals/``), each holding its config, switches and
paper values (``paper_<model>.json``, ``ablation_<model>.json``).

``create_model(name, cfg)`` builds a model, ``config_for(name, dataset, input_dims, task,
num_labels, **overrides)`` gives its preset, ``get_model(name, dataset, **overrides)`` both at
once, ``list_models()`` the names and ``get_entry(name)`` what a model declares (switches,
capabilities, its paper's values), ``entries()`` every entry in registration order. The contract every model follows: :mod:`mea_cli.models.core.contract` and
``docs/models/contract.md``. Every model maps a :class:`mea_cli.batch.Batch` to a
:class:`mea_cli.models.core.output.ModelOutput`.
"""

from __future__ import annotations

from mea_cli.models.core.contract import ModelConfig, Switch, SwitchSet, apply_switches
from mea_cli.models.core.output import ModelOutput
from mea_cli.models.core.registry import (
    config_for,
    config_from_dict,
    create_model,
    entries,
    get_entry,
    get_model,
    list_models,
    register_model,
)

__all__ = [
    "ModelConfig",
    "ModelOutput",
    "Switch",
    "SwitchSet",
    "apply_switches",
    "config_for",
    "config_from_dict",
    "create_model",
    "entries",
    "get_entry",
    "get_model",
    "list_models",
    "register_model",
]
