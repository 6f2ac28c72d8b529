"""An exponential moving average of the weights (``train.ema_decay``; 0: off).

Small data makes the epoch-to-epoch validation score noisy: with a few hundred clips and two
validation speakers the best epoch is partly chance. Averaging the weights over the recent
optimiser steps (Polyak averaging, as ``torch.optim.swa_utils`` and timm's ``ModelEmaV2`` do)
smooths the trajectory, so the model that is validated, selected and saved is the average, not
the last step's weights. After step ``t`` (1, 2, ...) every floating tensor of the model's
``state_dict`` is updated as

    ema <- r ema + (1 - r) w,    r = min(decay, (1 + t) / (10 + t))

(the warm-up ``(1 + t) / (10 + t)`` of TensorFlow's ``ExponentialMovingAverage`` with
``num_updates``, so the random initial weights fade out within the first steps instead of
weighing ``decay ** t``); integer buffers are copied. Training itself is unchanged: the
optimiser keeps stepping the raw weights.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn


class WeightAverage:
    """The moving average of ``model``'s weights (see the module docstring)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.steps = 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def rate(self) -> float:
        """The weight ``r`` of the old average at the current step count."""
        return min(self.decay, (1.0 + self.steps) / (10.0 + self.steps))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the model's current weights into the average (after an optimiser step)."""
        self.steps += 1
        r = self.rate()
        for k, v in model.state_dict().items():
            if v.is_floating_point():
                self.shadow[k].mul_(r).add_(v.detach(), alpha=1.0 - r)
            else:
                self.shadow[k].copy_(v)

    @contextlib.contextmanager
    def swapped_in(self, model: nn.Module) -> Iterator[None]:
        """Within the block the model holds the averaged weights; its own come back after."""
        own = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.shadow)
        try:
            yield
        finally:
            model.load_state_dict(own)

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "shadow": self.shadow}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = int(state["steps"])
        self.shadow = {k: v.clone() for k, v in state["shadow"].items()}
