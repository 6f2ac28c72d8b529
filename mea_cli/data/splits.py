"""Grouped splits and cross-validation folds: no group (speaker, video) is ever in two splits.

Small custom data sets are many clips of a few speakers (or a few videos): a random split puts
the same speaker in train and test and measures how well the model recognises the speaker,
not the task. So ``mea train`` / ``mea compare`` can make the splits themselves:

* ``--split-by GROUP``: what is kept together. ``video`` is every sample's source video;
  ``group`` (or the name of the labels CSV's group column, e.g. ``speaker``, recorded as the
  store's ``group_by`` attribute) is the store's ``/samples/group`` column, where a sample
  with an empty group cell counts as its own video's group. Without ``--split-by`` the store's
  group column is used when it has one, else the video.
* ``--split-fractions a,b,c``: the train / valid / test shares **of the samples** (default
  0.7,0.15,0.15). Whole groups are assigned, so the shares are met as closely as whole groups
  allow: the groups, shuffled by the seed, are dealt one by one to the split furthest below its
  share (relative to it), after one group to each split first, so no split is ever empty.
* ``--folds K``: the groups are dealt the same way into K test folds of about N/K samples;
  ``--folds loo``: one fold per group (leave-one-group-out, folds in sorted group order). In
  every fold the groups outside the test fold are dealt into train and valid with the valid
  share ``b / (a + b)`` of ``--split-fractions`` (grouped too), using the seed and the fold
  number, so the valid split that chooses the checkpoint never holds a test group either.

Only labelled samples (every label finite) are assigned; unlabelled ones get split ``""``.
Everything is deterministic given the groups and the seed.

A fold's splits are written as a **split store** (:func:`write_split_store`): a small HDF5
file whose ``/samples`` is a copy of the source's with the new ``split`` column, whose other
groups (the features, words, failures) are HDF5 external links to the source store by its
absolute path, and whose root attribute ``split_of`` (JSON) records the source, its sha256,
the grouping, the fold and the seed (docs/feature-store.md). Every command reads it as an
ordinary store, so training, ``mea eval`` and ``mea predict`` need nothing new; it stops
opening if the source store is moved or deleted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from mea_cli.artifacts.features import FeatureStore
from mea_cli.artifacts.store_format import LABELLED_SPLITS
from mea_cli.errors import MeaError
from mea_cli.paths import atomic_output

DEFAULT_FRACTIONS: tuple[float, float, float] = (0.7, 0.15, 0.15)
LOO = "loo"


class SplitError(MeaError):
    """A grouped split or fold request that cannot be met."""


def check_split_name(split: str) -> str:
    """``split`` when it is one of :data:`LABELLED_SPLITS` (the ``--split`` of ``mea eval`` and
    ``mea viz``), else one clear error naming the choices."""
    if split not in LABELLED_SPLITS:
        raise SplitError(f"--split must be one of {', '.join(LABELLED_SPLITS)}, got {split!r}")
    return split


@dataclass(frozen=True)
class SplitPlan:
    """What the user asked: the grouping, the shares, the folds (``None``: one split) and seed."""

    by: str | None = None
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS
    folds: int | str | None = None  # K, "loo" or None
    seed: int = 0

    def describe(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "fractions": list(self.fractions),
            "folds": self.folds,
            "seed": self.seed,
        }


def parse_fractions(text: str | None) -> tuple[float, float, float]:
    """``"0.7,0.15,0.15"`` -> three positive shares summing to 1 (train, valid, test)."""
    if not text:
        return DEFAULT_FRACTIONS
    try:
        parts = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise SplitError(f"--split-fractions {text!r}: expected three numbers train,valid,test") from None
    if len(parts) != 3 or not all(np.isfinite(parts)) or min(parts) <= 0:
        raise SplitError(f"--split-fractions {text!r}: expected three positive numbers train,valid,test")
    if abs(sum(parts) - 1.0) > 1e-6:
        raise SplitError(f"--split-fractions {text!r}: the shares sum to {sum(parts):g}, not 1")
    return parts[0], parts[1], parts[2]


def parse_folds(text: str | None) -> int | str | None:
    """``"5"`` -> 5, ``"loo"`` -> ``"loo"``, ``None`` -> ``None``; K must be at least 2."""
    if text is None:
        return None
    t = text.strip().lower()
    if t == LOO:
        return LOO
    try:
        k = int(t)
    except ValueError:
        raise SplitError(f"--folds {text!r}: expected a number of folds K >= 2 or 'loo'") from None
    if k < 2:
        raise SplitError(f"--folds {text!r}: a cross-validation needs at least 2 folds")
    return k


def group_key(group: str | None, video: str) -> str:
    """One sample's group: its group cell, or its video when the cell is empty (the rule of
    :func:`store_groups`, shared by everything that groups a sample: splits, per-group
    normalisation, ``mea predict``)."""
    return group or video


def store_groups(store: FeatureStore, by: str | None) -> tuple[np.ndarray, str]:
    """Every sample's group and the name of the grouping (``video``, ``speaker``, ...).

    ``by=None``: the store's group column when it has one, else the video. A sample whose
    group cell is empty belongs to its video's group.
    """
    t = store.samples
    named = str(store.meta.attrs.get("group_by", "")) or "group"
    want = (by or "").strip().lower()
    if want == "video" or (not want and t.group is None):
        return np.asarray(t.video, dtype=object), "video"
    if t.group is None:
        raise SplitError(
            f"{store.name}: --split-by {by!r}: the store has no group column; give the labels "
            "CSV a group (or speaker) column and extract again, or use --split-by video"
        )
    if want not in ("", "group", named):
        raise SplitError(
            f"{store.name}: --split-by {by!r}: this store groups by {named!r} (or 'group') "
            "or 'video'"
        )
    groups = np.array(
        [group_key(g, v) for g, v in zip(t.group, t.video, strict=True)], dtype=object
    )
    return groups, named


def labelled_mask(store: FeatureStore) -> np.ndarray:
    """Samples that can take part in training or evaluation: every label finite."""
    lab = store.samples.label
    if lab.shape[1] == 0:
        raise SplitError(f"{store.name}: the store has no labels to split for training")
    return np.isfinite(lab).all(axis=1)


def _deal(
    names: Sequence[str], sizes: dict[str, int], shares: Sequence[float]
) -> list[int]:
    """Part of each group (in the order of ``names``): one group to each part first, then each
    group to the part furthest below its share of the samples, relative to that share."""
    total = float(sum(sizes[g] for g in names))
    targets = [s * total for s in shares]
    counts = [0] * len(shares)
    out: list[int] = []
    for i, g in enumerate(names):
        if i < len(shares):
            p = i
        else:
            p = max(range(len(shares)), key=lambda q: ((targets[q] - counts[q]) / targets[q], -q))
        counts[p] += sizes[g]
        out.append(p)
    return out


def _shuffled(names: Sequence[str], seed: int, *salt: int) -> list[str]:
    rng = np.random.default_rng([seed & 0xFFFFFFFF, *salt])
    order = sorted(names)
    return [order[i] for i in rng.permutation(len(order))]


def _sizes(groups: np.ndarray, mask: np.ndarray) -> dict[str, int]:
    names, counts = np.unique(groups[mask].astype(str), return_counts=True)
    return {str(g): int(c) for g, c in zip(names, counts, strict=True)}


def _need(sizes: dict[str, int], k: int, what: str) -> None:
    if len(sizes) < k:
        raise SplitError(
            f"{what} needs at least {k} groups with labelled samples, the store has "
            f"{len(sizes)}"
        )


def grouped_split(
    groups: np.ndarray,
    mask: np.ndarray,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
) -> np.ndarray:
    """One train / valid / test split of whole groups (samples outside ``mask`` get "")."""
    sizes = _sizes(groups, mask)
    _need(sizes, 3, "a train / valid / test split")
    names = _shuffled(list(sizes), seed)
    # test and valid are dealt first so that the smaller shares are never left empty
    part = dict(zip(names, _deal(names, sizes, [fractions[2], fractions[1], fractions[0]]), strict=True))
    label = ("test", "valid", "train")
    return np.array(
        [label[part[str(g)]] if m else "" for g, m in zip(groups, mask, strict=True)], dtype=object
    )


def group_folds(
    groups: np.ndarray,
    mask: np.ndarray,
    folds: int | str,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
) -> list[np.ndarray]:
    """One split column per fold: the fold's groups test, the others train / valid (grouped,
    valid share ``b / (a + b)``); see the module docstring."""
    sizes = _sizes(groups, mask)
    if folds == LOO:
        test_sets = [[g] for g in sorted(sizes)]
        _need(sizes, 3, "leave-one-group-out (one test, one valid and one train group per fold)")
    else:
        k = int(folds)
        _need(sizes, max(k, 3), f"--folds {k}")
        names = _shuffled(list(sizes), seed)
        parts = _deal(names, sizes, [1.0 / k] * k)
        test_sets = [[g for g, p in zip(names, parts, strict=True) if p == f] for f in range(k)]
    valid_share = fractions[1] / (fractions[0] + fractions[1])
    out = []
    for f, test in enumerate(test_sets):
        rest = [g for g in sizes if g not in set(test)]
        if len(rest) < 2:
            raise SplitError(
                f"fold {f + 1} leaves {len(rest)} group(s) outside its test groups; train and "
                "valid need one each: use fewer folds"
            )
        names = _shuffled(rest, seed, f + 1)
        sub = {g: sizes[g] for g in rest}
        part = dict(zip(names, _deal(names, sub, [valid_share, 1.0 - valid_share]), strict=True))
        role = {g: ("valid", "train")[p] for g, p in part.items()}
        role.update({g: "test" for g in test})
        out.append(
            np.array([role[str(g)] if m else "" for g, m in zip(groups, mask, strict=True)], dtype=object)
        )
    return out


def leaked_groups(groups: np.ndarray, split: np.ndarray) -> list[str]:
    """Groups found in more than one of train / valid / test (should always be empty)."""
    seen: dict[str, set[str]] = {}
    for g, s in zip(groups, split, strict=True):
        if s:
            seen.setdefault(str(g), set()).add(str(s))
    return sorted(g for g, parts in seen.items() if len(parts) > 1)


def split_counts(groups: np.ndarray, split: np.ndarray) -> dict[str, dict[str, int]]:
    """Samples and groups per split (for reports and ``split_of``)."""
    out = {}
    for name in LABELLED_SPLITS:
        sel = split == name
        out[name] = {"samples": int(sel.sum()), "groups": len(set(groups[sel].astype(str)))}
    return out


def missing_classes(
    task: str, labels: np.ndarray, label_names: Sequence[str], split: np.ndarray
) -> dict[str, list[str]]:
    """The classes each of train / valid / test lacks (only the splits that lack one), for a
    single-label (``multiclass``) store's one-hot ``labels``; ``{}`` for other tasks. Such a
    split still trains and scores, but a class it lacks cannot be learned (train), chosen on
    (valid) or tested (test): macro F1 averages over the classes present
    (:func:`mea_cli.train.metrics.multiclass_metrics`)."""
    if task != "multiclass" or not len(label_names):
        return {}
    labels = np.asarray(labels, dtype=np.float64)
    finite = np.isfinite(labels).all(axis=1)
    cls = np.where(finite, np.nan_to_num(labels).argmax(axis=1), -1)
    out = {}
    for name in LABELLED_SPLITS:
        sel = (np.asarray(split) == name) & finite
        if not sel.any():
            continue
        present = set(cls[sel].tolist())
        lacking = [str(c) for i, c in enumerate(label_names) if i not in present]
        if lacking:
            out[name] = lacking
    return out


def missing_text(missing: dict[str, dict[str, list[str]]]) -> str:
    """``fold 2 test: c; fold 3 valid: a, b`` for :func:`missing_classes` per fold (``split``
    for the one grouped split); "" when no split lacks a class."""
    parts = [
        f"{'' if fold == 'split' else f'fold {fold} '}{name}: {', '.join(classes)}"
        for fold, per in missing.items()
        for name, classes in per.items()
    ]
    return "; ".join(parts)


def missing_note(missing: dict[str, dict[str, list[str]]], planned: bool = True) -> str:
    """The one-line warning (and table note) for splits that lack a class ("" if none do);
    ``planned``: the splits were made by ``--split-by`` / ``--folds`` (say what may help)."""
    said = missing_text(missing)
    if not said:
        return ""
    fix = (
        "; fewer folds or another --split-fractions / --split-seed may give every split "
        "every class"
        if planned
        else ""
    )
    return (
        f"some splits lack a class ({said}): a class missing from train is never learned, "
        "from test never scored; macro F1 averages over the classes present in truth or "
        f"prediction, accuracy and weighted F1 are unaffected{fix}"
    )


def write_split_store(
    source: Path, out: Path, split: np.ndarray, provenance: dict[str, Any]
) -> Path:
    """Write the split store ``out`` (module docstring): ``source``'s samples with ``split``,
    its other groups linked; atomic (nothing at ``out`` unless it is complete)."""
    src = Path(source).resolve()
    with h5py.File(src, "r") as fin:
        n = fin["samples"]["id"].shape[0]
        if len(split) != n:
            raise ValueError(f"{len(split)} split values for {n} samples")
        with atomic_output(out, "split store") as tmp, h5py.File(tmp, "w") as fout:
            for key, value in fin.attrs.items():
                fout.attrs[key] = value
            fout.attrs["split_of"] = json.dumps({"source": str(src), **provenance}, sort_keys=True)
            s = fout.create_group("samples")
            for key in fin["samples"]:
                if key == "split":
                    s.create_dataset(
                        "split", data=np.asarray(split, dtype=object), dtype=h5py.string_dtype("utf-8")
                    )
                else:
                    fin.copy(fin["samples"][key], s, name=key)
            for name in fin:
                if name != "samples":
                    fout[name] = h5py.ExternalLink(str(src), "/" + name)
    return out


def read_split_of(store: FeatureStore) -> dict[str, Any] | None:
    """The ``split_of`` record of a split store (None for an ordinary store)."""
    raw = store.meta.attrs.get("split_of")
    return json.loads(raw) if raw else None
