"""The feature store's format: its name and versions, the values its columns and attributes
may hold, and how its strings are read back (docs/feature-store.md). Shared by the writer
(:mod:`mea_cli.artifacts.store_writer`), the checks run on open
(:mod:`mea_cli.artifacts.store_checks`) and the reader (:mod:`mea_cli.artifacts.features`)."""

from __future__ import annotations

import numpy as np

FORMAT = "mea-features"
VERSION = 2
READABLE_VERSIONS: tuple[int, ...] = (1, 2)
LABELLED_SPLITS: tuple[str, str, str] = ("train", "valid", "test")
SPLITS: tuple[str, ...] = (*LABELLED_SPLITS, "")
"""A sample's ``/samples/split``: one of the labelled splits, or ``""`` (unlabelled)."""
TASKS: tuple[str, ...] = ("regression", "multiclass", "binary-multilabel")
"""The tasks a labelled store (and a model trained on it) can hold."""
STORE_TASKS: tuple[str, ...] = (*TASKS, "")
"""The root attribute ``task``: one of :data:`TASKS`, or ``""`` (a store without labels)."""
RESERVED_ATTRS: tuple[str, ...] = (
    "format",
    "version",
    "created",
    "mea_cli_version",
    "dataset",
    "task",
    "label_names",
)
"""Root attributes the format itself writes; every other root attribute is free provenance."""


def decode_strings(arr: np.ndarray) -> np.ndarray:
    """An HDF5 string column as a numpy object array of ``str`` (h5py may hand back bytes)."""
    return np.array([x.decode("utf-8") if isinstance(x, bytes) else x for x in arr], dtype=object)
