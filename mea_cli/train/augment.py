"""Training-time augmentation of a batch's inputs (small data: ``--preset small``).

Two general, modality-agnostic perturbations of the standardised input sequences, applied to
each training batch before the forward pass and never at validation, test or prediction:

* ``input_noise`` (``train.input_noise``, default 0: off): Gaussian noise of this standard
  deviation added to every **real** step (the store's features are standardised on the train
  split, so the value is in units of each feature's train standard deviation);
* ``time_mask`` (``train.time_mask``, default 0: off): SpecAugment-style time masking; in each
  sequence one contiguous span of ``round(time_mask x length)`` real steps, at a random place,
  is set to zero (the train mean after standardisation). The mask is kept: the model still
  sees the steps as present, as SpecAugment keeps its masked frames.

Padded steps (``mask`` false) stay exactly zero and empty sequences stay empty, so padding
never changes what the model sees (tested). With both values 0 the batch is returned as it is
(the same object), so a run without augmentation is bit-for-bit the run before this module.
The random draws come from torch's generator, which the trainer reseeds every epoch from
``(seed, epoch)``: a run is reproducible and ``--resume`` ends where an uninterrupted run ends.
"""

from __future__ import annotations

import torch

from mea_cli.batch import Batch


def augment(batch: Batch, input_noise: float = 0.0, time_mask: float = 0.0) -> Batch:
    """``batch`` with noise on its real steps and one masked span per sequence (see the
    module docstring); the batch itself when both values are 0."""
    if input_noise <= 0.0 and time_mask <= 0.0:
        return batch
    inputs = {}
    for m, x in batch.inputs.items():
        real = batch.masks[m].unsqueeze(-1).to(x.dtype)  # [B, T, 1]
        if input_noise > 0.0:
            x = x + input_noise * torch.randn_like(x) * real
        if time_mask > 0.0:
            x = x * (1.0 - _span_mask(batch.masks[m], time_mask).unsqueeze(-1).to(x.dtype))
        inputs[m] = x
    return Batch(inputs=inputs, masks=batch.masks, labels=batch.labels, ids=batch.ids)


def _span_mask(mask: torch.Tensor, fraction: float) -> torch.Tensor:
    """``[B, T]`` bool: per row one span of ``round(fraction x real length)`` real steps (the
    real steps are the leading ones: padding is trailing), at a uniform random start."""
    lengths = mask.sum(dim=1)  # [B]
    width = torch.round(lengths.to(torch.float32) * fraction).to(lengths.dtype)
    room = (lengths - width + 1).clamp(min=1)
    start = (torch.rand(lengths.shape, device=mask.device) * room).floor().to(lengths.dtype)
    steps = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0)  # [1, T]
    return (steps >= start.unsqueeze(1)) & (steps < (start + width).unsqueeze(1)) & mask
