"""A torch ``Dataset`` over a feature store, normalisation, collate with masks, loaders.

* :class:`NormStats` holds a per-modality, per-feature mean and standard deviation fitted on the
  **train** split only (never valid or test, so nothing about held-out data leaks into the
  inputs). A feature whose train standard deviation is below ``floor`` (constant, e.g. an
  always-zero COVAREP channel) is divided by 1 instead, so it stays finite and unscaled.
  Its ``mode`` is ``"train"`` (those statistics serve every sample) or ``"group"``
  (``train.normalise=group``): then :class:`GroupNorm` standardises each group of the store
  being served (``/samples/group``, e.g. a speaker) with that group's own mean and std over
  all its samples, whatever their split, never their labels (per-speaker z-normalisation of
  speech emotion recognition: Busso et al. 2013, IEEE TAC 4(4), "Iterative feature
  normalization scheme for automatic emotion detection from speech"). It is transductive over
  each group's unlabelled samples. A feature whose group has fewer than two steps, or whose
  group std is below ``floor``, takes the train split's statistics instead (the fallback).
  In group mode the store's per-sample summaries (``Batch.summary``) are standardised per
  group the same way (their train-split statistics, the fallback, are kept too); in train
  mode they are served raw, as before.
* :class:`FeatureDataset` serves one split. It loads each modality's rows of that split into
  memory once, compacted (``preload=True``, the default: one sequential HDF5 read of the whole
  modality, of which the split's rows are kept; then items are numpy slices, which is fast and
  safe with DataLoader worker processes); with
  ``preload=False`` it reads every item through the store's random access instead (for stores
  larger than memory; use ``num_workers=0`` then, an h5py handle does not survive a fork).
* :func:`collate` pads each modality to the batch's own longest sequence (at least one step)
  with trailing zeros and returns boolean masks (True = real step): the
  :class:`mea_cli.batch.Batch` contract. A zero-length sequence gives an all-False mask row.
  Items that carry ``observed`` masks (``FeatureDataset(..., gap_masks=True)``, for a model
  declaring the ``gap_masks`` capability) get ``mask = prefix & observed``: an unobserved
  step of a ``mea align`` store is a gap in the mask; every other model gets the prefix mask.
* :func:`make_loader` combines them with :class:`~mea_cli.data.sampler.BucketBatchSampler`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from mea_cli import MODALITIES
from mea_cli.artifacts.features import FeatureStore, Sample
from mea_cli.batch import Batch
from mea_cli.data.sampler import BucketBatchSampler
from mea_cli.data.splits import group_key, store_groups
from mea_cli.errors import MeaError

__all__ = [
    "BucketBatchSampler",
    "FeatureDataset",
    "GroupNorm",
    "NormStats",
    "NormStatsError",
    "collate",
    "make_loader",
    "sample_groups",
]
STD_FLOOR = 1e-6


class NormStatsError(MeaError):
    """Normalisation statistics that are malformed or do not fit a store."""


@dataclass
class NormStats:
    """Per-modality feature mean and std, fitted on one split (the train split).

    ``mode`` says how they are used (module docstring); ``summary_mean`` / ``summary_std``
    (group mode only) are the train split's statistics of the per-sample summaries.
    """

    mean: dict[str, np.ndarray]
    std: dict[str, np.ndarray]
    count: dict[str, int]
    split: str = "train"
    floor: float = STD_FLOOR
    mode: str = "train"
    summary_mean: dict[str, np.ndarray] = field(default_factory=dict)
    summary_std: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        store: FeatureStore,
        split: str = "train",
        floor: float = STD_FLOOR,
        mode: str = "train",
    ) -> NormStats:
        """Mean and std of every feature over all steps of ``split``'s samples.

        Sums run in float64, one sample's rows at a time (no whole-store load). Steps a
        store marks unobserved (``mea align``'s zero rows for words no step reached) are left
        out: the statistics are those of measured steps. A modality with no step in ``split``
        gets mean 0 and std 1 (identity). A std below ``floor`` becomes 1 (see the module
        docstring). ``mode="group"`` needs a store with groups (else :class:`NormStatsError`)
        and adds the summaries' statistics.
        """
        if mode == "group":
            sample_groups(store)  # refused here, before anything is fitted
        elif mode != "train":
            raise NormStatsError(f"unknown normalisation mode {mode!r} (train or group)")
        idx = store.split_indices(split)
        if len(idx) == 0:
            raise NormStatsError(
                f"{store.name}: cannot fit normalisation statistics: the {split!r} split is empty"
            )
        mean: dict[str, np.ndarray] = {}
        std: dict[str, np.ndarray] = {}
        count: dict[str, int] = {}
        for m, schema in store.modalities.items():
            s = np.zeros(schema.dim, np.float64)
            ss = np.zeros(schema.dim, np.float64)
            n = 0
            for i in idx:
                x = _measured(store, int(i), m, store.sequence(int(i), m)).astype(np.float64)
                s += x.sum(axis=0)
                ss += np.square(x).sum(axis=0)
                n += len(x)
            if n == 0:
                mu, sd = np.zeros(schema.dim), np.ones(schema.dim)
            else:
                mu = s / n
                sd = np.sqrt(np.maximum(ss / n - mu**2, 0.0))
                sd = np.where(sd < floor, 1.0, sd)
            mean[m], std[m], count[m] = mu.astype(np.float32), sd.astype(np.float32), n
        stats = cls(mean, std, count, split, floor, mode)
        if mode == "group":
            for name in store.summaries:
                mu, sd = _moments(store.summary(name)[idx].astype(np.float64))
                stats.summary_mean[name] = mu.astype(np.float32)
                stats.summary_std[name] = np.where(sd < floor, 1.0, sd).astype(np.float32)
        return stats

    def apply(self, modality: str, x: np.ndarray) -> np.ndarray:
        """``(x - mean) / std`` for one modality, float32."""
        return ((x - self.mean[modality]) / self.std[modality]).astype(np.float32, copy=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (lists of floats), stored in checkpoints."""
        out: dict[str, Any] = {
            "split": self.split,
            "floor": self.floor,
            "mode": self.mode,
            "modalities": {
                m: {
                    "mean": [float(v) for v in self.mean[m]],
                    "std": [float(v) for v in self.std[m]],
                    "count": int(self.count[m]),
                }
                for m in self.mean
            },
        }
        if self.mode == "group":
            out["summary"] = {
                k: {
                    "mean": [float(v) for v in self.summary_mean[k]],
                    "std": [float(v) for v in self.summary_std[k]],
                }
                for k in self.summary_mean
            }
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NormStats:
        """Inverse of :meth:`to_dict`; raises :class:`NormStatsError` on a malformed dict."""
        try:
            mods = d["modalities"]
            mean = {m: np.asarray(v["mean"], np.float32) for m, v in mods.items()}
            std = {m: np.asarray(v["std"], np.float32) for m, v in mods.items()}
            count = {m: int(v.get("count", 0)) for m, v in mods.items()}
            split, floor = str(d.get("split", "train")), float(d.get("floor", STD_FLOOR))
            mode = str(d.get("mode", "train"))  # checkpoints from before the option: train
            summ = d.get("summary", {})
            summary_mean = {k: np.asarray(v["mean"], np.float32) for k, v in summ.items()}
            summary_std = {k: np.asarray(v["std"], np.float32) for k, v in summ.items()}
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise NormStatsError(f"malformed normalisation statistics: {err!r}") from None
        for m in mean:
            if mean[m].ndim != 1 or mean[m].shape != std[m].shape:
                raise NormStatsError(
                    f"malformed normalisation statistics for {m}: mean {mean[m].shape}, "
                    f"std {std[m].shape}"
                )
            if not (
                np.isfinite(mean[m]).all() and np.isfinite(std[m]).all() and (std[m] > 0).all()
            ):
                raise NormStatsError(f"normalisation statistics for {m} are not finite/positive")
        if mode not in ("train", "group"):
            raise NormStatsError(f"malformed normalisation statistics: mode {mode!r}")
        return cls(mean, std, count, split, floor, mode, summary_mean, summary_std)

    def check_fits(self, store: FeatureStore) -> None:
        """Raise :class:`NormStatsError` unless every modality of ``store`` has stats of its D."""
        for m, schema in store.modalities.items():
            if m not in self.mean:
                raise NormStatsError(f"{store.name}: no normalisation statistics for {m}")
            if self.mean[m].shape != (schema.dim,):
                raise NormStatsError(
                    f"{store.name}: {m} has {schema.dim} features but the normalisation "
                    f"statistics have {self.mean[m].shape[0]}"
                )


def sample_groups(store: FeatureStore) -> np.ndarray:
    """Each sample's group as ``str [N]`` (:func:`mea_cli.data.splits.store_groups`: an empty
    cell is the sample's video); :class:`NormStatsError` when the store has no group column."""
    if store.samples.group is None:
        raise NormStatsError(
            f"{store.name}: train.normalise=group needs groups, and this store has none "
            f"(extract it with a labels file that has a group column, e.g. the speaker)"
        )
    return np.asarray([str(g) for g in store_groups(store, None)[0]], dtype=object)


def _measured(store: FeatureStore, i: int, m: str, x: np.ndarray) -> np.ndarray:
    """``x`` (sample ``i``'s rows of ``m``) without the steps the store marks unobserved
    (``mea align``'s zero rows for words no step reached): what the statistics are fitted on."""
    observed = store.observed(i, m)
    return x if observed is None else x[observed]


def _moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population std over the rows of ``x`` ([n, D] float64, n >= 1)."""
    mu = x.mean(axis=0)
    return mu, np.sqrt(np.maximum(np.square(x).mean(axis=0) - mu**2, 0.0))


@dataclass
class GroupNorm:
    """Each group's own per-feature mean and std (``train.normalise=group``).

    Fitted on the store being served: every sample of a group, any split, observed steps
    only; labels are never read. A feature whose group has fewer than two steps (samples,
    for a summary) or a std below the floor takes ``base`` (the train split's statistics)
    for that feature; ``fallbacks`` counts those (group, feature) pairs per modality (and per
    ``summary:NAME``).
    """

    mean: dict[str, dict[str, np.ndarray]]  # group -> modality -> [D]
    std: dict[str, dict[str, np.ndarray]]
    summary_mean: dict[str, dict[str, np.ndarray]]  # group -> summary name -> [D]
    summary_std: dict[str, dict[str, np.ndarray]]
    fallbacks: dict[str, int]

    @classmethod
    def fit(cls, store: FeatureStore, base: NormStats) -> GroupNorm:
        """The statistics of every group of ``store`` (``base``: the fallback)."""
        base.check_fits(store)
        missing = sorted(set(store.summaries) - set(base.summary_mean))
        if missing:
            raise NormStatsError(f"{store.name}: no normalisation statistics for summary {missing}")
        groups = sample_groups(store)
        keys = [*store.modalities, *(f"summary:{k}" for k in store.summaries)]
        out = cls({}, {}, {}, {}, dict.fromkeys(keys, 0))
        summaries = {k: store.summary(k).astype(np.float64) for k in store.summaries}
        data = {m: store.array(m) for m in store.modalities}
        for g in sorted(set(groups)):
            idx = np.flatnonzero(groups == g)
            out.mean[g], out.std[g] = {}, {}
            for m, (rows, offsets) in data.items():
                parts = [_measured(store, int(i), m, rows[offsets[i] : offsets[i + 1]]) for i in idx]
                x = np.concatenate(parts).astype(np.float64)
                out.mean[g][m], out.std[g][m] = out._or_base(
                    m, x, base.mean[m], base.std[m], base.floor
                )
            out.summary_mean[g], out.summary_std[g] = {}, {}
            for k, x in summaries.items():
                out.summary_mean[g][k], out.summary_std[g][k] = out._or_base(
                    f"summary:{k}", x[idx], base.summary_mean[k], base.summary_std[k], base.floor
                )
        return out

    def _or_base(
        self, key: str, x: np.ndarray, mean: np.ndarray, std: np.ndarray, floor: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """The group's (mean, std) of ``x`` [n, D]; ``mean``/``std`` where it has none."""
        if len(x) < 2:
            self.fallbacks[key] += len(mean)
            return mean, std
        mu, sd = _moments(x)
        bad = sd < floor
        self.fallbacks[key] += int(bad.sum())
        return (
            np.where(bad, mean, mu).astype(np.float32),
            np.where(bad, std, sd).astype(np.float32),
        )

    def apply(self, group: str, modality: str, x: np.ndarray) -> np.ndarray:
        """``(x - mean) / std`` with ``group``'s statistics for ``modality``, float32."""
        return ((x - self.mean[group][modality]) / self.std[group][modality]).astype(
            np.float32, copy=False
        )

    def apply_summary(self, group: str, name: str, x: np.ndarray) -> np.ndarray:
        """The same for the per-sample summary ``name``."""
        return ((x - self.summary_mean[group][name]) / self.summary_std[group][name]).astype(
            np.float32, copy=False
        )


def served(
    sample: Sample, stats: NormStats, groups: GroupNorm | None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A sample's features and summaries as a trained model reads them outside training
    (``mea predict``, :func:`mea_cli.api.load_model`): the features standardised with the
    training statistics, or, with ``groups`` (``train.normalise=group``, fitted on the store
    being served), both with its group's; summaries otherwise raw, as the model standardises
    them itself."""
    if groups is None:
        feats = {m: stats.apply(m, np.asarray(sample.features[m], np.float32)) for m in MODALITIES}
        return feats, dict(sample.summary)
    g = group_key(sample.group, sample.video)
    feats = {m: groups.apply(g, m, np.asarray(sample.features[m], np.float32)) for m in MODALITIES}
    return feats, {k: groups.apply_summary(g, k, x) for k, x in sample.summary.items()}


class FeatureDataset(Dataset):
    """One split of a feature store as a torch ``Dataset`` of normalised items.

    ``split=None`` serves every sample. ``stats=None`` serves raw features. An item is a dict
    ``{"id", "index", "features": {m: float32 [T_m, D_m]}, "label": float32 [K] | None,
    "summary": {name: float32 [D]}}`` (``label`` is None for an unlabelled store; ``summary``
    the store's raw per-sample summaries, empty when it has none). ``gap_masks=True`` (for a
    model declaring that capability) adds ``"observed": {m: bool [T_m]}`` for the modalities
    the store keeps an observed mask of, which :func:`collate` folds into the masks.
    :meth:`lengths` gives the bucketing key. Stats in group mode standardise each sample with its group's statistics
    (``group_norm``, fitted on ``store`` when not given), summaries included.
    """

    def __init__(
        self,
        store: FeatureStore,
        split: str | None = None,
        stats: NormStats | None = None,
        preload: bool = True,
        gap_masks: bool = False,
        group_norm: GroupNorm | None = None,
    ) -> None:
        self.store = store
        self.split = split
        self.stats = stats
        self.gap_masks = gap_masks
        if stats is not None:
            stats.check_fits(store)
        self.indices = (
            np.arange(len(store)) if split is None else store.split_indices(split)
        ).astype(np.int64)
        self.group_norm: GroupNorm | None = None
        if stats is not None and stats.mode == "group":
            self.group_norm = group_norm or GroupNorm.fit(store, stats)
            self._groups = [str(g) for g in sample_groups(store)[self.indices]]
        self.modalities = tuple(store.modalities)
        self.ids = [str(x) for x in store.samples.id[self.indices]]
        self.labelled = len(store.meta.label_names) > 0
        self.labels = store.samples.label[self.indices].astype(np.float32)
        self._lengths = {m: store.lengths(m)[self.indices] for m in self.modalities}
        self._summary = {k: store.summary(k)[self.indices] for k in store.summaries}
        self.preload = preload
        # read once here (one byte per step), so that items never touch the HDF5 file for them;
        # only for a model that reads them (the others never look)
        masked = [m for m in self.modalities if gap_masks and store.has_observed(m)]
        self._observed = (
            [{m: store.observed(int(i), m) for m in masked} for i in self.indices]
            if gap_masks
            else []
        )
        self._data: dict[str, np.ndarray] = {}
        self._offsets: dict[str, np.ndarray] = {}
        if preload:
            for m in self.modalities:
                data, offsets = store.array(m)
                rows = [np.arange(offsets[i], offsets[i + 1]) for i in self.indices]
                take = np.concatenate(rows) if rows else np.zeros(0, np.int64)
                self._data[m] = data[take]
                self._offsets[m] = np.concatenate([[0], np.cumsum(self._lengths[m])]).astype(
                    np.int64
                )

    def __len__(self) -> int:
        return len(self.indices)

    def lengths(self, modality: str | None = None) -> np.ndarray:
        """Per-item length of ``modality``, or the sum over modalities (bucketing key)."""
        if modality is not None:
            return self._lengths[modality]
        return np.sum([self._lengths[m] for m in self.modalities], axis=0).astype(np.int64)

    def _sequence(self, k: int, m: str) -> np.ndarray:
        if self.preload:
            a, b = self._offsets[m][k : k + 2]
            x = self._data[m][a:b]
        else:
            x = self.store.sequence(int(self.indices[k]), m)
        if self.group_norm is not None:
            return self.group_norm.apply(self._groups[k], m, x)
        return x if self.stats is None else self.stats.apply(m, x)

    def _summary_of(self, k: int) -> dict[str, np.ndarray]:
        if self.group_norm is None:
            return {name: x[k] for name, x in self._summary.items()}
        g = self._groups[k]
        return {name: self.group_norm.apply_summary(g, name, x[k]) for name, x in self._summary.items()}

    def __getitem__(self, k: int) -> dict[str, Any]:
        if not 0 <= k < len(self):
            raise IndexError(k)
        item = {
            "id": self.ids[k],
            "index": int(self.indices[k]),
            "features": {m: np.asarray(self._sequence(k, m), np.float32) for m in self.modalities},
            "label": self.labels[k] if self.labelled else None,
            "summary": self._summary_of(k),
        }
        if self.gap_masks:
            item["observed"] = self._observed[k]
        return item


def collate(items: Sequence[Mapping[str, Any]], pad_to: Mapping[str, int] | None = None) -> Batch:
    """Stack items into a :class:`Batch`: trailing zero padding plus boolean masks.

    Each modality is padded to the batch's longest sequence (at least 1 step), or to
    ``pad_to[m]`` when given (used by the loader benchmark to mimic fixed-length padding).
    """
    if not items:
        raise ValueError("cannot collate an empty batch")
    modalities = list(items[0]["features"])
    inputs: dict[str, torch.Tensor] = {}
    masks: dict[str, torch.Tensor] = {}
    b = len(items)
    for m in modalities:
        seqs = [it["features"][m] for it in items]
        lens = [len(x) for x in seqs]
        t = max(1, max(lens))
        if pad_to is not None and m in pad_to:
            t = max(t, int(pad_to[m]))
        d = seqs[0].shape[1]
        x = np.zeros((b, t, d), np.float32)
        for i, s in enumerate(seqs):
            x[i, : len(s)] = s
        inputs[m] = torch.from_numpy(x)
        masks[m] = torch.arange(t)[None, :] < torch.tensor(lens)[:, None]
        for i, it in enumerate(items):  # gap_masks: an unobserved step is a gap in the mask
            observed = it.get("observed", {}).get(m)
            if observed is not None:
                masks[m][i, : len(observed)] &= torch.from_numpy(np.asarray(observed, bool))
    labels = None
    if all(it["label"] is not None for it in items):
        labels = torch.from_numpy(np.stack([it["label"] for it in items]).astype(np.float32))
    summary = None
    if items[0].get("summary"):
        summary = {
            k: torch.from_numpy(np.stack([it["summary"][k] for it in items]).astype(np.float32))
            for k in items[0]["summary"]
        }
    return Batch(
        inputs=inputs,
        masks=masks,
        labels=labels,
        ids=[str(it["id"]) for it in items],
        summary=summary,
    )


def make_loader(
    dataset: FeatureDataset,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    num_replicas: int = 1,
    rank: int = 0,
    num_workers: int = 0,
    drop_last: bool = False,
    pad_to: Mapping[str, int] | None = None,
) -> DataLoader:
    """A DataLoader of length-bucketed, per-batch-padded :class:`Batch` es.

    Call ``loader.batch_sampler.set_epoch(epoch)`` before each epoch for a new (deterministic)
    order. With ``num_replicas``/``rank`` each rank sees a disjoint, equal-count share.
    """
    sampler = BucketBatchSampler(
        dataset.lengths(),
        batch_size,
        shuffle=shuffle,
        seed=seed,
        num_replicas=num_replicas,
        rank=rank,
        drop_last=drop_last,
    )
    fn = collate if pad_to is None else partial(collate, pad_to=dict(pad_to))
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=fn, num_workers=num_workers)
