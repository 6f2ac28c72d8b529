"""Models: a registry, the shared layers, and MEA (the first entry).

``create_model(name, cfg)`` builds a model, ``config_for(name, dataset, input_dims, task,
num_labels, **overrides)`` gives its Table I preset, ``list_models()`` the names. Table V
switches: :mod:`mea_cli.models.switches`. Every model maps a :class:`mea_cli.batch.Batch` to a
:class:`mea_cli.models.output.ModelOutput`.
"""

from __future__ import annotations

from mea_cli.models.output import ModelOutput
from mea_cli.models.registry import (
    config_for,
    config_from_dict,
    create_model,
    list_models,
    register_model,
)
from mea_cli.models.switches import SWITCHES, apply_switches

__all__ = [
    "SWITCHES",
    "ModelOutput",
    "apply_switches",
    "config_for",
    "config_from_dict",
    "create_model",
    "list_models",
    "register_model",
]
