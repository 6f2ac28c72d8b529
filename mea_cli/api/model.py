"""``load_model(ckpt)``: a trained checkpoint as a model to run on batches from Python.

The model is built exactly as ``mea predict`` / ``mea eval`` build it
(:func:`mea_cli.runtime.loading.model_from_checkpoint`: the recorded config and weights, a
regression model predicting in the label's units), inputs are normalised with the
checkpoint's training statistics (never refitted) and padded per batch with masks
(:func:`mea_cli.data.dataset.collate`), the samples' per-sample summaries go with them, and
outputs are read with the same :func:`mea_cli.train.predictions.readable` as ``mea predict``
prints. Samples whose modalities or widths differ from the checkpoint's are refused, naming
the modality, expected and found.

A model trained with ``train.normalise=group`` standardises each group (speaker) with that
group's own statistics, fitted on every sample of the group in the store being served, as
``mea predict STORE`` does (:meth:`LoadedModel.fit_groups`); without them it is refused, as
``mea predict`` refuses such a model on clips.
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
    from mea_cli.artifacts.features import FeatureStore, Sample
    from mea_cli.batch import Batch
    from mea_cli.data.dataset import GroupNorm, NormStats
    from mea_cli.models.core.output import ModelOutput


@dataclass
class LoadedModel:
    """A checkpoint's model in eval mode on ``device``, with what feeding and reading it needs.

    ``checkpoint`` is the typed file content (model name, config, task, label names, the
    store's schema and provenance, valid metrics); ``net`` the ``torch.nn.Module``;
    ``groups`` each group's statistics under ``train.normalise=group``
    (:meth:`fit_groups`; None until then, and for every other model).
    """

    path: Path
    checkpoint: Checkpoint
    net: torch.nn.Module
    stats: NormStats
    device: torch.device
    label_range: tuple[float, float] | None
    groups: GroupNorm | None = None

    def fit_groups(self, store: FeatureStore) -> None:
        """For a model trained with ``train.normalise=group``: fit each group of ``store``
        (the feature store the samples come from) its own statistics, as ``mea predict STORE``
        does; :meth:`batch` then standardises every sample with its group's. ``store`` must
        fit the checkpoint's schema (:func:`~mea_cli.artifacts.checkpoint.check_schema`, labels
        ignored) and hold finite values. Any other model keeps its training statistics: a
        no-op."""
        # start-up time: a command loads only its own code, after its cheap checks
        from mea_cli.artifacts.checkpoint import check_schema
        from mea_cli.data.dataset import GroupNorm

        if self.stats.mode != "group":
            return
        check_schema(self.checkpoint, store, self.path, labels=False)
        store.check_values()
        self.groups = GroupNorm.fit(store, self.stats)

    def batch(self, samples: Sequence[Sample]) -> Batch:
        """Normalise ``samples`` (feature-store samples: ``store[i]``) with the training
        statistics (each group's own after :meth:`fit_groups`) and pad them into one
        :class:`~mea_cli.batch.Batch` on the model's device, with their per-sample summaries;
        a model declaring ``gap_masks`` gets the samples' ``observed`` masks folded in.
        Samples without one of the modalities, or of other feature counts than the
        checkpoint's, raise :class:`~mea_cli.errors.MeaError`."""
        # start-up time: a command loads only its own code, after its cheap checks
        from mea_cli.data.dataset import collate, served
        from mea_cli.models.core.registry import get_entry

        gaps = get_entry(self.checkpoint.model).reads_gap_masks

        if not samples:
            raise MeaError("load_model(...).batch needs at least one sample")
        missing = sorted({m for s in samples for m in MODALITIES if m not in s.features})
        if missing:
            raise MeaError(f"{self.path}: the samples have no {', '.join(missing)} features")
        if self.stats.mode == "group" and self.groups is None:
            raise MeaError(
                f"{self.path}: this model standardises each speaker/group with its own "
                "statistics (train.normalise=group), fitted on every sample of the group, which "
                "a list of samples cannot give; call fit_groups(store) with the feature store "
                "the samples come from first (as mea predict does for a store), or use "
                "mea_cli.api.predict(store, ckpt)"
            )
        for s in samples:
            self._check_widths(s)
        items = []
        for k, s in enumerate(samples):
            feats, summary = served(s, self.stats, self.groups)
            items.append({
                "id": s.id, "index": k, "features": feats, "label": None,
                "observed": s.observed if gaps else {}, "summary": summary,
            })  # fmt: skip
        return collate(items).to(self.device)

    def _check_widths(self, s: Sample) -> None:
        """Refuse a sample whose feature counts differ from the checkpoint's (as
        :func:`~mea_cli.artifacts.checkpoint.check_schema` refuses a store) or, after
        :meth:`fit_groups`, whose group that store did not hold."""
        # start-up time: numpy only once a batch is made
        import numpy as np

        for m in MODALITIES:
            want = int(self.stats.mean[m].shape[0])
            shape = np.shape(s.features[m])
            found = shape[1] if len(shape) == 2 else f"an array of shape {shape}"
            if found != want:
                raise MeaError(
                    f"{self.path}: trained on {m} with {want} features, but sample {s.id!r} has "
                    f"{found} (samples of another store's schema?)"
                )
        if self.groups is not None and self._group(s) not in self.groups.mean:
            raise MeaError(
                f"{self.path}: sample {s.id!r} is of group {self._group(s)!r}, which the store "
                "given to fit_groups does not hold; fit the groups of the samples' own store"
            )
        if self.groups is not None:
            odd = sorted(set(s.summary) - set(self.groups.summary_mean[self._group(s)]))
            if odd:
                raise MeaError(f"{self.path}: sample {s.id!r} has summaries {odd} its store has not")

    @staticmethod
    def _group(s: Sample) -> str:
        """The sample's group, as :mod:`mea_cli.data.splits` and ``mea predict`` key it."""
        # start-up time: a command loads only its own code, after its cheap checks
        from mea_cli.data.splits import group_key

        return group_key(s.group, s.video)


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
    stats = NormStats.from_dict(ck.norm)
    for m in MODALITIES:  # as mea predict checks them (mea_cli.predict.api._runner)
        dim = ck.schema.get(m, {}).get("dim")
        if m not in stats.mean or (dim is not None and stats.mean[m].shape != (dim,)):
            raise MeaError(f"{path}: normalisation statistics do not fit the {m} schema")
    dev = resolve_device(device)
    net = model_from_checkpoint(ck, path).to(dev).eval()
    return LoadedModel(
        path=path,
        checkpoint=ck,
        net=net,
        stats=stats,
        device=dev,
        label_range=label_range_of(ck.task, ck.dataset, ck.label_range),
    )
