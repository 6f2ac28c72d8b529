"""``load_model(ckpt)``: a trained checkpoint as a model to run on batches from Python.

The model is built exactly as ``mea predict`` / ``mea eval`` build it
(:func:`mea_cli.runtime.loading.model_from_checkpoint`: the recorded config and weights, a
regression model predicting in the label's units), inputs are normalised with the
checkpoint's training statistics (never refitted) and padded per batch with masks
(:func:`mea_cli.data.dataset.collate`), and outputs are read with the same
:func:`mea_cli.train.predictions.readable` as ``mea predict`` prints.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mea_cli import MODALITIES
from mea_cli.errors import MeaError

if TYPE_CHECKING:
    import torch

    from mea_cli.artifacts.checkpoint import Checkpoint
    from mea_cli.artifacts.features import Sample
    from mea_cli.batch import Batch
    from mea_cli.data.dataset import NormStats
    from mea_cli.models.core.output import ModelOutput


@dataclass
class LoadedModel:
    """A checkpoint's model in eval mode on ``device``, with what feeding and reading it needs.

    ``checkpoint`` is the typed file content (model name, config, task, label names, the
    store's schema and provenance, valid metrics); ``net`` the ``torch.nn.Module``.
    """

    path: Path
    checkpoint: Checkpoint
    net: torch.nn.Module
    stats: NormStats
    device: torch.device
    label_range: tuple[float, float] | None

    def batch(self, samples: Sequence[Sample]) -> Batch:
        """Normalise ``samples`` (feature-store samples: ``store[i]``) with the training
        statistics and pad them into one :class:`~mea_cli.batch.Batch` on the model's device;
        a model declaring ``gap_masks`` gets the samples' ``observed`` masks folded in."""
        # start-up time: a command loads only its own code, after its cheap checks
        from mea_cli.data.dataset import collate
        from mea_cli.models.core.registry import get_entry

        gaps = get_entry(self.checkpoint.model).reads_gap_masks

        if not samples:
            raise MeaError("load_model(...).batch needs at least one sample")
        missing = sorted({m for s in samples for m in MODALITIES if m not in s.features})
        if missing:
            raise MeaError(f"{self.path}: the samples have no {', '.join(missing)} features")
        items = [
            {
                "id": s.id,
                "index": k,
                "features": {m: self.stats.apply(m, s.features[m]) for m in MODALITIES},
                "label": None,
                "observed": s.observed if gaps else {},
            }
            for k, s in enumerate(samples)
        ]
        return collate(items).to(self.device)

    def __call__(self, batch: Batch) -> ModelOutput:
        """Run the model on ``batch`` without gradients; the raw :class:`ModelOutput`."""
        import torch

        with torch.no_grad():
            return self.net(batch)

    def predict(self, samples: Sequence[Sample]) -> list[dict[str, Any]]:
        """One readable prediction per sample, as ``mea predict`` reports it (regression:
        ``score``, ``polarity`` and the rounded ``class``; classification: class and
        probabilities)."""
        # start-up time: a command loads only its own code, after its cheap checks
        from mea_cli.train.predictions import readable

        out = self(self.batch(samples))
        ck = self.checkpoint
        return readable(ck.task, out.pred.float().cpu().numpy(), ck.label_names, self.label_range)


def load_model(ckpt: str | os.PathLike[str], *, device: str = "cpu") -> LoadedModel:
    """Load a checkpoint (``ckpt.pt`` or a run directory holding one) as a :class:`LoadedModel`
    on ``device`` (auto, cpu, cuda, cuda:N). A file that is not a mea-cli checkpoint, or whose
    weights do not fit its recorded config, raises :class:`~mea_cli.errors.MeaError`."""
    # start-up time: a command loads only its own code, after its cheap checks
    from mea_cli.artifacts.checkpoint import load_checkpoint
    from mea_cli.data.dataset import NormStats
    from mea_cli.runtime.engine import resolve_device
    from mea_cli.runtime.loading import model_from_checkpoint
    from mea_cli.train.predictions import label_range_of
    from mea_cli.train.runs import checkpoint_in

    path = checkpoint_in(Path(ckpt))
    ck = load_checkpoint(path)
    dev = resolve_device(device)
    net = model_from_checkpoint(ck, path).to(dev).eval()
    return LoadedModel(
        path=path,
        checkpoint=ck,
        net=net,
        stats=NormStats.from_dict(ck.norm),
        device=dev,
        label_range=label_range_of(ck.task, ck.dataset, ck.label_range),
    )
