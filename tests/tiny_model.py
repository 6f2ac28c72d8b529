"""A second model, registered the obvious way (the public ``register_model``), for the tests.

Each modality: a linear layer with GELU and a masked mean over time; the three vectors are
concatenated and a two-layer head predicts. One ablation switch (``no-audio``) and no optional
outputs, so it also shows how ``mea ablate`` / ``mea viz`` answer for a model that lacks MEA's
switches and capabilities. :func:`registered` registers it for the duration of a block.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from mea_cli import MODALITIES
from mea_cli.batch import Batch
from mea_cli.models import ModelConfig, ModelOutput, Switch, SwitchSet, register_model
from mea_cli.models.core.losses import task_loss
from mea_cli.models.core.output import prediction_size, shape_prediction
from mea_cli.models.core.registry import unregister_model

NAME = "tiny"


@dataclass(frozen=True)
class TinyConfig(ModelConfig):
    hidden: int = 8

    WHAT = "tiny model configuration"
    PRESETS = {"mosi": {}, "mosei": {}, "iemocap": {"hidden": 6}}
    PRESET_SOURCE = "a test model"

    def problems(self) -> list[str]:
        return super().problems() + ([] if self.hidden > 0 else ["hidden must be positive"])


SWITCHES = SwitchSet(
    (Switch("no-audio", "w/o audio", "ignore the audio modality", removes=("enc.audio.*",)),)
)


class Tiny(nn.Module):
    def __init__(self, cfg: TinyConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.modalities = tuple(m for m in MODALITIES if not (m == "audio" and cfg.ablations))
        self.enc = nn.ModuleDict({m: nn.Linear(cfg.input_dims[m], cfg.hidden) for m in self.modalities})
        self.head = nn.Sequential(
            nn.Linear(cfg.hidden * len(self.modalities), cfg.hidden),
            nn.GELU(),
            nn.Linear(cfg.hidden, prediction_size(cfg)),  # the contract's shared output size
        )

    def forward(self, batch: Batch) -> ModelOutput:
        pooled = []
        for m in self.modalities:
            mask = batch.masks[m].unsqueeze(-1).float()
            h = F.gelu(self.enc[m](batch.inputs[m])) * mask
            pooled.append(h.sum(1) / mask.sum(1).clamp_min(1.0))
        pred = shape_prediction(self.head(torch.cat(pooled, dim=-1)), self.cfg)
        out = ModelOutput(pred=pred)
        if batch.labels is not None:
            task = task_loss(pred, batch.labels, self.cfg.task)
            out.loss, out.losses = task, {"task": task.detach()}
        return out


@contextlib.contextmanager
def registered() -> Iterator[str]:
    """Model ``tiny`` is registered inside the block (and only there)."""
    register_model(NAME, TinyConfig, switches=SWITCHES, tiny={"hidden": 16})(Tiny)
    try:
        yield NAME
    finally:
        unregister_model(NAME)
