"""Model ``fixture``: a per-modality linear layer, a masked mean over time and a linear head.

It registers the way a model inside ``mea_cli/models/<family>/`` does: its config, one ablation
switch, and its paper values read from the JSON beside it (``paper_fixture.json``: training
values and result rows; ``ablation_fixture.json``: an ablation table). The numbers in those
files are made up for the test; they cite no paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mea_cli import MODALITIES
from mea_cli.batch import Batch
from mea_cli.models import ModelConfig, ModelOutput, Switch, SwitchSet, register_model
from mea_cli.models.core.losses import task_loss
from mea_cli.models.core.output import prediction_size, shape_prediction
from mea_cli.models.core.paper import load_paper

NAME = "fixture"


@dataclass(frozen=True)
class FixtureConfig(ModelConfig):
    hidden: int = 8

    WHAT = "fixture model configuration"
    PRESETS = {"mosi": {}, "mosei": {}, "iemocap": {}}
    PRESET_SOURCE = "the fixture model (tests)"


SWITCHES = SwitchSet(
    (Switch("no-audio", "w/o audio", "ignore the audio modality", removes=("enc.audio.*",)),)
)


@register_model(
    NAME,
    FixtureConfig,
    switches=SWITCHES,
    tiny={"hidden": 4},
    description="fixture: a test model registered from outside mea_cli (MEA_MODELS)",
    paper=load_paper(__package__, NAME),
)
class Fixture(nn.Module):
    def __init__(self, cfg: FixtureConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.modalities = tuple(m for m in MODALITIES if not (m == "audio" and cfg.ablations))
        self.enc = nn.ModuleDict({m: nn.Linear(cfg.input_dims[m], cfg.hidden) for m in self.modalities})
        self.head = nn.Linear(cfg.hidden * len(self.modalities), prediction_size(cfg))

    def forward(self, batch: Batch) -> ModelOutput:
        pooled = []
        for m in self.modalities:
            mask = batch.masks[m].unsqueeze(-1).float()
            pooled.append((self.enc[m](batch.inputs[m]) * mask).sum(1) / mask.sum(1).clamp_min(1.0))
        pred = shape_prediction(self.head(torch.cat(pooled, dim=-1)), self.cfg)
        out = ModelOutput(pred=pred)
        if batch.labels is not None:
            task = task_loss(pred, batch.labels, self.cfg.task)
            out.loss, out.losses = task, {"task": task.detach()}
        return out
