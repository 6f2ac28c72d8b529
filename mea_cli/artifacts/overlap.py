"""Whether a checkpoint scored on another store is scored on samples it was trained on.

A checkpoint run on a store other than its training store (``mea eval --features``, ``mea viz
--features``) sees that store's split column. When the two stores hold the same samples split
differently (a fold's store of ``train --folds`` and the store it was cut from; a re-extraction
of the same videos), the split's samples can be ones the model was fitted on (``train``) or
chosen on (``valid``): figures and pictures that look held-out and are not. Both commands count
those samples (:func:`training_overlap`) and print the same warning (:func:`overlap_warning`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mea_cli.artifacts.features import FeatureStore
from mea_cli.errors import MeaError
from mea_cli.paths import file_sha256


def training_overlap(
    trained_on: Path, recorded_sha256: str, store: FeatureStore, idx: np.ndarray
) -> dict[str, int]:
    """How many of the samples at rows ``idx`` of ``store`` have the id of a sample of the
    ``train`` and of the ``valid`` split of the store the checkpoint was trained on
    (``trained_on``, which recorded ``recorded_sha256``); ``{}`` when that cannot be told: the
    training store changed since (its split column may no longer be the training's) or no
    longer opens."""
    wanted = {str(i) for i in store.samples.id[idx]}
    try:
        if recorded_sha256 and file_sha256(trained_on) != recorded_sha256:
            return {}
        with FeatureStore(trained_on) as trained:
            ids = trained.samples.id
            return {
                split: len(wanted.intersection(str(i) for i in ids[trained.split_indices(split)]))
                for split in ("train", "valid")
            }
    except (MeaError, OSError):
        return {}


def overlap_warning(
    features: Path, trained_on: Path, overlap: dict[str, int], split: str, n: int
) -> str:
    """The one-line warning for a :func:`training_overlap` result (``""`` when nothing overlaps)
    of ``n`` samples of ``split`` of ``features``."""
    if not sum(overlap.values()):
        return ""
    return (
        f"WARNING: {features}: {sum(overlap.values())} of the {n} {split!r} samples have the "
        f"ids of samples of {trained_on} that the model was trained on ({overlap['train']}, its "
        f"train split) or selected on ({overlap['valid']}, its valid split); if they are the "
        f"same samples, these results are not held-out, and the samples it never saw are that "
        f"store's 'test' split\n"
    )
