"""Training-time augmentation of a batch's inputs (small data: ``--preset small``).

Three general, modality-agnostic perturbations of the standardised input sequences, applied to
each training batch before the forward pass and never at validation, test or prediction:

* ``input_noise`` (``train.input_noise``, default 0: off): Gaussian noise of this standard
  deviation added to every **real** step (the store's features are standardised on the train
  split, so the value is in units of each feature's train standard deviation);
* ``time_mask`` (``train.time_mask``, default 0: off): SpecAugment-style time masking; in each
  sequence one contiguous span of ``round(time_mask x length)`` real steps, at a random place,
  is set to zero (the train mean after standardisation). The mask is kept: the model still
  sees the steps as present, as SpecAugment keeps its masked frames;
* ``mixup`` (``train.mixup``, default 0: off; classification only): input mixup (Zhang et
  al., "mixup: Beyond Empirical Risk Minimization", ICLR 2018). One ``lam ~ Beta(a, a)`` per
  batch and a random pairing ``perm`` of its rows; every input becomes
  ``lam x_i + (1 - lam) x_perm(i)`` and the trainer's task term becomes
  ``lam L(pred, y_i) + (1 - lam) L(pred, y_perm(i))`` (:func:`mixup`; the model's other loss
  terms see the mixed inputs). Sequences of different lengths: a step is real in the mixed
  sequence when it is real in either (the union of the masks); where only one of the two is
  real the other contributes its padding, zero, so the step is that sample's value scaled by
  its weight. The store's per-sample summaries are mixed the same way (NaN where either
  sample has none).

Padded steps (``mask`` false) stay exactly zero and empty sequences stay empty, so padding
never changes what the model sees (tested); mixup keeps padding zero where both samples are
padded. With every value 0 the batch is returned as it is (the same object), so a run without
augmentation is bit-for-bit the run before this module.
The random draws come from torch's generator, which the trainer reseeds every epoch from
``(seed, epoch)``: a run is reproducible and ``--resume`` ends where an uninterrupted run ends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
    return Batch(
        inputs=inputs, masks=batch.masks, labels=batch.labels, ids=batch.ids, summary=batch.summary
    )


@dataclass(frozen=True)
class Mix:
    """How a batch was mixed: row ``i`` is ``lam`` of sample ``i`` and ``1 - lam`` of sample
    ``perm[i]``."""

    lam: float
    perm: torch.Tensor  # [B] long


def mixup(batch: Batch, alpha: float) -> tuple[Batch, Mix | None]:
    """``batch`` with its inputs (and summaries) mixed pairwise, and how (module docstring);
    the batch itself and None when ``alpha`` is 0. The labels are left as they are: the
    trainer weighs the two samples' task losses with :class:`Mix` (:func:`mixed_task_loss`)."""
    if alpha <= 0.0:
        return batch, None
    a = torch.tensor(float(alpha))
    lam = float(torch.distributions.Beta(a, a).sample())
    perm = torch.randperm(len(batch)).to(next(iter(batch.inputs.values())).device)
    inputs = {m: lam * x + (1.0 - lam) * x[perm] for m, x in batch.inputs.items()}
    masks = {m: mask | mask[perm] for m, mask in batch.masks.items()}
    summary = (
        None
        if batch.summary is None
        else {k: lam * s + (1.0 - lam) * s[perm] for k, s in batch.summary.items()}
    )
    mixed = Batch(inputs=inputs, masks=masks, labels=batch.labels, ids=batch.ids, summary=summary)
    return mixed, Mix(lam, perm)


def mixed_task_loss(
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    pred: torch.Tensor,
    labels: torch.Tensor,
    mix: Mix | None,
) -> torch.Tensor:
    """The task term of a mixed batch, ``lam loss(pred, y) + (1 - lam) loss(pred, y[perm])``
    (``loss(pred, y)`` alone when the batch was not mixed)."""
    if mix is None:
        return loss(pred, labels)
    return mix.lam * loss(pred, labels) + (1.0 - mix.lam) * loss(pred, labels[mix.perm])


def _span_mask(mask: torch.Tensor, fraction: float) -> torch.Tensor:
    """``[B, T]`` bool: per row one span of ``round(fraction x real length)`` real steps (the
    real steps are the leading ones: padding is trailing), at a uniform random start."""
    lengths = mask.sum(dim=1)  # [B]
    width = torch.round(lengths.to(torch.float32) * fraction).to(lengths.dtype)
    room = (lengths - width + 1).clamp(min=1)
    start = (torch.rand(lengths.shape, device=mask.device) * room).floor().to(lengths.dtype)
    steps = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0)  # [1, T]
    return (steps >= start.unsqueeze(1)) & (steps < (start + width).unsqueeze(1)) & mask
