"""Models: the contract, the registry, the shared layers, and MEA (the first entry).

``create_model(name, cfg)`` builds a model, ``config_for(name, dataset, input_dims, task,
num_labels, **overrides)`` gives its preset, ``get_model(name, dataset, **overrides)`` both at
once, ``list_models()`` the names and ``get_entry(name)`` what a model declares (switches,
capabilities). The contract every model follows: :mod:`mea_cli.models.contract` and
``docs/models/contract.md``. Every model maps a :class:`mea_cli.batch.Batch` to a
:class:`mea_cli.models.output.ModelOutput`.
"""

from __future__ import annotations

from mea_cli.models.contract import ModelConfig, Switch, SwitchSet, apply_switches
from mea_cli.models.output import ModelOutput
from mea_cli.models.registry import (
    config_for,
    config_from_dict,
    create_model,
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
    "get_entry",
    "get_model",
    "list_models",
    "register_model",
]
