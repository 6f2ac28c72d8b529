"""The CMU benchmarks an import can be: their names, what their features are when the
dimensions match (MEA Sec. IV-B), and how their labels sit in the store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mea_cli.data.importers.errors import ImportFormatError
from mea_cli.data.presets import IEMOCAP_EMOTIONS

DATASETS: tuple[str, ...] = ("mosi", "mosei", "iemocap")
# What the CMU benchmark features are when their dimension matches (MEA Sec. IV-B).
BENCHMARK_FEATURES = {
    ("text", 300): "GloVe 840B 300-d word vectors",
    ("vision", 35): "Facet 35 facial action units",
    ("audio", 74): "COVAREP 74 acoustic features",
}


def check_dataset(path: Path, dataset: str | None) -> None:
    """``dataset`` is None (not named) or one of :data:`DATASETS`."""
    if dataset is not None and dataset not in DATASETS:
        raise ImportFormatError(
            path, f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}"
        )


@dataclass(frozen=True)
class DatasetLabels:
    """What a dataset's labels are in the store."""

    dataset: str
    task: str
    label_names: tuple[str, ...]


def label_spec(dataset: str) -> DatasetLabels:
    """The label layout of a CMU benchmark: IEMOCAP's four binary emotions, else one sentiment
    score (MOSI, MOSEI)."""
    if dataset == "iemocap":
        return DatasetLabels("iemocap", "binary-multilabel", IEMOCAP_EMOTIONS)
    return DatasetLabels(dataset, "regression", ("sentiment",))


def iemocap_from_pairs(raw: np.ndarray) -> tuple[np.ndarray, int]:
    """``[N, 4, 2]`` one-hot pairs -> ``[N, 4]`` binary labels by argmax of the last axis
    (index 1 = emotion present, as MulT reads them), columns still in the source's order;
    also the count of pairs that are not exactly one-hot (still mapped by argmax, reported)."""
    raw = np.asarray(raw, np.float64)
    onehot = np.isin(raw, (0.0, 1.0)).all(axis=2) & (raw.sum(axis=2) == 1)
    return np.argmax(raw, axis=2).astype(np.float32), int((~onehot).sum())


def to_store_emotion_order(y: np.ndarray, source_order: Sequence[str]) -> np.ndarray:
    """``[N, 4]`` emotion columns in ``source_order`` -> the store's canonical order
    :data:`~mea_cli.data.presets.IEMOCAP_EMOTIONS`, each column moved under its own name."""
    if sorted(source_order) != sorted(IEMOCAP_EMOTIONS):
        raise ValueError(f"{list(source_order)} is not an order of {list(IEMOCAP_EMOTIONS)}")
    return np.asarray(y)[:, [list(source_order).index(e) for e in IEMOCAP_EMOTIONS]]
