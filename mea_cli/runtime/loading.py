"""Checkpoint -> model: a model rebuilt from its saved config dict, with its saved weights.

Runs and checkpoints store a model's config as its ``to_dict()`` form, so that a checkpoint loads
with ``weights_only=True`` and ``config.json`` is readable; these helpers turn the dict back into
a model through the registry. Training (``mea_cli.train``), ``mea eval``, ``mea predict``,
``mea viz`` and ``mea ablate``'s parameter counts share them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from mea_cli.artifacts.checkpoint import Checkpoint, CheckpointError
from mea_cli.models import create_model
from mea_cli.runtime.targets import TargetScale, with_scale


def build_model(name: str, cfg: Mapping[str, Any]) -> nn.Module:
    """A fresh model ``name`` from its config dict (``to_dict()`` form)."""
    return create_model(name, dict(cfg))


def model_from_checkpoint(ckpt: Checkpoint, ckpt_path: str | Path) -> nn.Module:
    """The model a loaded checkpoint describes, with its weights (``CheckpointError`` if they
    do not fit the config the checkpoint records); a regression checkpoint with a target scale
    predicts in the label's units (:class:`mea_cli.runtime.targets.ScaledModel`)."""
    model = build_model(ckpt.model, ckpt.model_config)
    try:
        model.load_state_dict(ckpt.state_dict)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise CheckpointError(
            ckpt_path, f"weights do not fit the {ckpt.model} model config: {first}"
        ) from None
    return with_scale(model, TargetScale.from_dict(ckpt.target_scale))
