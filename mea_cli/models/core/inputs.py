"""The check every model runs first: does a batch carry the modalities and widths it was built for?"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mea_cli.batch import Batch
from mea_cli.errors import MeaError


class BatchShapeError(MeaError):
    """A batch whose modalities or feature dimensions do not match the model."""


def check_batch(
    batch: Batch, modalities: Sequence[str], input_dims: Mapping[str, int], model: str
) -> None:
    """Raise :class:`BatchShapeError` naming what is missing or of the wrong width."""
    missing = [m for m in modalities if m not in batch.inputs or m not in batch.masks]
    if missing:
        raise BatchShapeError(
            f"the batch lacks modality {', '.join(missing)}; {model} needs {', '.join(modalities)}"
        )
    for m in modalities:
        dim = batch.inputs[m].shape[-1]
        if dim != input_dims[m]:
            raise BatchShapeError(
                f"modality {m} has {dim} features per step but the model was built for "
                f"{input_dims[m]}"
            )
