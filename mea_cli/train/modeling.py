"""The trainer's bridge to the model registry (``mea_cli.models``): configs as plain dicts.

Runs and checkpoints store a model's config as its ``to_dict()`` form, so that a checkpoint loads
with ``weights_only=True`` and ``config.json`` is readable; these helpers turn the dict back into
a model through the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

# Model-config fields that duplicate training settings (Table I rows); the trainer's values win
# and are written back so that the saved model config tells the truth.
SHARED_WITH_TRAINING: tuple[str, ...] = ("batch_size", "epochs", "lr")


def model_config(
    name: str,
    dataset: str,
    input_dims: Mapping[str, int],
    task: str,
    num_labels: int,
    overrides: Mapping[str, Any],
) -> dict[str, Any]:
    """Model ``name``'s ``dataset`` preset for this data shape with ``overrides``, as a dict."""
    from mea_cli.models import config_for

    cfg = config_for(name, dataset, dict(input_dims), task, num_labels, **dict(overrides))
    return cfg.to_dict()


def sync_training_fields(
    name: str, cfg: Mapping[str, Any], values: Mapping[str, Any]
) -> dict[str, Any]:
    """``cfg`` with the fields of :data:`SHARED_WITH_TRAINING` it has set to ``values``."""
    from mea_cli.models import config_from_dict

    out = dict(cfg)
    for key in SHARED_WITH_TRAINING:
        if key in out and key in values:
            out[key] = values[key]
    return config_from_dict(name, out).to_dict()


def build_model(name: str, cfg: Mapping[str, Any]) -> nn.Module:
    """A fresh model ``name`` from its config dict (``to_dict()`` form)."""
    from mea_cli.models import create_model

    return create_model(name, dict(cfg))


def model_from_checkpoint(ckpt: Any, ckpt_path: Any) -> nn.Module:
    """The model a loaded checkpoint describes, with its weights (``CheckpointError`` if they
    do not fit the config the checkpoint records)."""
    from mea_cli.artifacts.checkpoint import CheckpointError

    model = build_model(ckpt.model, ckpt.model_config)
    try:
        model.load_state_dict(ckpt.state_dict)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise CheckpointError(
            ckpt_path, f"weights do not fit the {ckpt.model} model config: {first}"
        ) from None
    return model
