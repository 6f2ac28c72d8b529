"""The batch contract between the data stage and the models.

A :class:`Batch` holds one padded tensor and one boolean mask per modality. Padding is per batch
(to the batch's own longest sequence, at least one step so that a batch of empty sequences still
has a shape) and always trailing; padded steps are zero and ``mask`` is ``False`` there. A
zero-length sequence is a row whose mask is all ``False``: models must handle it (masked pooling
gives zeros), never crash. Only a model declaring the ``gap_masks`` capability gets masks
with gaps (``False`` inside a sequence: a ``mea align`` word no step reached); every other
model gets prefix masks (:mod:`mea_cli.data.dataset`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Batch:
    """Padded inputs with masks for one mini-batch.

    Attributes:
        inputs: modality -> ``[B, T_m, D_m]`` float32, zero at padded steps.
        masks: modality -> ``[B, T_m]`` bool, ``True`` for real steps.
        labels: ``[B, K]`` float32 (regression: K = 1; IEMOCAP: K = 4 binary 0/1), or None.
        ids: the samples' ids, in batch order.
        summary: name -> ``[B, D]`` float32 per-sample summaries the store keeps (``/summary``:
            openSMILE's audio Functionals), raw (not normalised), NaN where a sample had no
            signal; None when the store has none. Padding never touches them; models that do
            not use them ignore them.
    """

    inputs: dict[str, torch.Tensor]
    masks: dict[str, torch.Tensor]
    labels: torch.Tensor | None = None
    ids: list[str] = field(default_factory=list)
    summary: dict[str, torch.Tensor] | None = None

    def __len__(self) -> int:
        return next(iter(self.inputs.values())).shape[0]

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.inputs)

    def to(self, device: torch.device | str) -> Batch:
        return Batch(
            inputs={m: x.to(device, non_blocking=True) for m, x in self.inputs.items()},
            masks={m: x.to(device, non_blocking=True) for m, x in self.masks.items()},
            labels=None if self.labels is None else self.labels.to(device, non_blocking=True),
            ids=list(self.ids),
            summary=None
            if self.summary is None
            else {k: x.to(device, non_blocking=True) for k, x in self.summary.items()},
        )
