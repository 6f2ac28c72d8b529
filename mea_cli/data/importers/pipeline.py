"""The one import path of the padded-pickle layouts (MulT, MMSA): :func:`import_padded`.

Both layouts hold ``{split: {key: array}}`` with zero-padded ``[N, T, D]`` feature arrays, and
their import runs the same steps: check the options, load the pickle safely, find the three
splits, refuse the other layout's pickle with a hint, read and check every feature array, read
the labels and the real lengths, name each sample (refusing one found in two splits, making
repeats unique), and stream the unpadded samples into an atomic store write. What differs is
small and comes from a :class:`PaddedReader` (``mult.py``, ``mmsa.py``). Every check runs
before anything is written, so a file that does not fit leaves no output.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mea_cli import MODALITIES
from mea_cli.artifacts.features import Sample
from mea_cli.artifacts.store_format import LABELLED_SPLITS
from mea_cli.data.importers.cleaning import strip
from mea_cli.data.importers.datasets import DatasetLabels, check_dataset, label_spec
from mea_cli.data.importers.errors import ImportFormatError
from mea_cli.data.importers.padded import (
    check_counts,
    check_dims,
    check_no_leak,
    feature_array,
    get_splits,
    id_rows,
    unique,
)
from mea_cli.data.importers.pickles import load_pickle
from mea_cli.data.importers.report import ImportReport
from mea_cli.data.importers.store import modality_schema, write_import
from mea_cli.paths import file_sha256


@dataclass(frozen=True)
class Layout:
    """How a format's pickle is told from the other's, and how errors name it."""

    title: str
    """The format in error messages (``"MulT"``)."""
    name: str
    """The format in the report and the provenance (``"mult"``)."""
    label_key: str
    """The array every split of this layout holds (``"labels"``)."""
    missing: str
    """The refusal of a split without it; ``{split}`` is replaced by the split's name."""
    other_key: str
    """The other layout's label key: when a split holds it, :attr:`hint` is added."""
    hint: str


@dataclass
class Pickle:
    """A padded pickle read and checked: its splits, feature arrays and feature dimensions."""

    path: Path
    splits: dict[str, Mapping[str, Any]]
    arrays: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    dims: dict[str, int] = field(default_factory=dict)

    def count(self, split: str) -> int:
        """Samples in ``split`` (all its arrays agree, :func:`load_arrays` checked)."""
        return len(self.arrays[split]["text"])

    def padded_length(self, modality: str) -> int:
        return int(self.arrays["train"][modality].shape[1])


@dataclass
class Row:
    """One sample before it is cut from the arrays: its name, place, and extra text columns."""

    id: str
    video: str
    split: str
    index: int
    start: float = math.nan
    end: float = math.nan
    extra: dict[str, str] = field(default_factory=dict)


class PaddedReader(ABC):
    """What one padded-pickle format adds to :func:`import_padded`'s steps."""

    layout: ClassVar[Layout]
    extra_columns: ClassVar[tuple[str, ...]] = ()
    """Text columns stored as ``/samples/<name>`` (from :attr:`Row.extra`)."""

    def __init__(self, dataset: str | None) -> None:
        self.dataset = dataset

    def check_options(self, path: Path) -> None:
        """Refuse options that do not fit, before the file is read."""
        check_dataset(path, self.dataset)

    @abstractmethod
    def dataset_name(self, path: Path, splits: Mapping[str, Mapping[str, Any]]) -> str:
        """The dataset whose labels the file holds (given, inferred, or refused)."""

    @abstractmethod
    def labels(self, pk: Pickle, split: str, dataset: str) -> np.ndarray:
        """``[N, K]`` float32 labels of ``split``, checked."""

    @abstractmethod
    def lengths(self, pk: Pickle) -> dict[str, dict[str, np.ndarray]]:
        """Real length of every sample, ``{split: {modality: [N]}}``, checked."""

    @abstractmethod
    def side(self, modality: str) -> str:
        """The padding side of ``modality`` (``left``, ``right`` or ``none``), once known."""

    @abstractmethod
    def modality_entry(
        self, pk: Pickle, modality: str, lengths: Mapping[str, Mapping[str, np.ndarray]]
    ) -> dict[str, Any]:
        """The report's entry for ``modality`` (what the format knows of its padding)."""

    def notes(self, spec: DatasetLabels, report: ImportReport) -> list[str]:
        """Notes on the labels and the padding, after the modality entries."""
        return []

    @abstractmethod
    def rows(self, pk: Pickle, split: str, ids: list[list[str]] | None) -> list[Row]:
        """The samples of ``split`` named from the pickle's ``id`` rows (None: no ids)."""

    def row_notes(self) -> list[str]:
        """Notes on what naming the samples found."""
        return []

    @abstractmethod
    def provenance(self, modality: str, entry: Mapping[str, Any]) -> dict[str, Any]:
        """What the store's provenance of ``modality`` adds to the source file and its hash."""


def check_layout(path: Path, splits: Mapping[str, Mapping[str, Any]], layout: Layout) -> None:
    """Every split holds the layout's label key; the other layout's pickle is named as such."""
    for split, part in splits.items():
        if layout.label_key not in part:
            hint = layout.hint if layout.other_key in part else ""
            raise ImportFormatError(path, layout.missing.format(split=repr(split)) + hint)


def load_arrays(pk: Pickle) -> None:
    """Fill ``pk.arrays`` with every split's feature arrays as ``[N, T, D]`` floats, one D per
    modality, one N per split (read and checked before anything is written)."""
    for split, part in pk.splits.items():
        pk.arrays[split] = {m: feature_array(pk.path, part, split, m) for m in MODALITIES}
        for m in MODALITIES:
            check_dims(pk.path, pk.dims, split, m, pk.arrays[split][m])
        check_counts(pk.path, split, pk.arrays[split])


def name_rows(pk: Pickle, reader: PaddedReader, report: ImportReport) -> list[Row]:
    """Every sample named, in split order; an id in two splits is refused, repeats within one
    made unique with a ``#k`` suffix (counted in a note)."""
    rows: list[Row] = []
    for split in LABELLED_SPLITS:
        ids = id_rows(pk.path, pk.splits[split], split, pk.count(split))
        rows += reader.rows(pk, split, ids)
    report.notes += reader.row_notes()
    check_no_leak(pk.path, [r.id for r in rows], [r.split for r in rows])
    unique_ids, renamed = unique([r.id for r in rows])
    if renamed:
        report.notes.append(f"{renamed} repeated sample ids were made unique with a #k suffix")
    for row, sid in zip(rows, unique_ids, strict=True):
        row.id = sid
    return rows


def stream_samples(
    pk: Pickle,
    reader: PaddedReader,
    rows: list[Row],
    labels: Mapping[str, np.ndarray],
    lengths: Mapping[str, Mapping[str, np.ndarray]],
    report: ImportReport,
    columns: dict[str, list[str]],
) -> Iterator[Sample]:
    """The unpadded samples, as the store writer asks for them; a sample whose label is not
    finite is dropped (counted); kept lengths and fixed values are counted in ``report``, and
    an import left with no train or no valid sample is refused at the end
    (:meth:`ImportReport.finish`: nothing is written)."""
    for row in rows:
        y = labels[row.split][row.index]
        if not np.isfinite(y).all():
            report.drop(row.id, "label is not finite")
            continue
        feats = {}
        for m in MODALITIES:
            length = int(lengths[row.split][m][row.index])
            feats[m] = report.keep(
                m, strip(pk.arrays[row.split][m][row.index], length, reader.side(m))
            )
        report.count(row.id, row.split, feats)
        for key in columns:
            columns[key].append(row.extra[key])
        yield Sample(
            row.id,
            feats,
            video=row.video,
            start=row.start,
            end=row.end,
            split=row.split,
            label=y,
        )
    report.finish_lengths()
    report.finish(pk.path)


def import_padded(src: str | Path, out: str | Path, reader: PaddedReader) -> ImportReport:
    """Import a padded pickle of ``reader``'s layout into a feature store at ``out``."""
    path, out = Path(src), Path(out)
    layout = reader.layout
    reader.check_options(path)
    pk = Pickle(path, get_splits(path, load_pickle(path), layout.title))
    check_layout(path, pk.splits, layout)
    dataset = reader.dataset_name(path, pk.splits)
    spec = label_spec(dataset)
    load_arrays(pk)
    labels = {split: reader.labels(pk, split, dataset) for split in pk.splits}
    lengths = reader.lengths(pk)
    report = ImportReport(layout.name, path.name, dataset, spec.task, spec.label_names)
    report.splits = dict.fromkeys(LABELLED_SPLITS, 0)
    for m in MODALITIES:
        report.modalities[m] = reader.modality_entry(pk, m, lengths)
    report.notes += reader.notes(spec, report)
    rows = name_rows(pk, reader, report)
    columns: dict[str, list[str]] = {key: [] for key in reader.extra_columns}
    sha = file_sha256(path)
    schemas = [
        modality_schema(
            m, pk.dims[m], layout.name, path, sha, reader.provenance(m, report.modalities[m])
        )
        for m in MODALITIES
    ]
    samples = stream_samples(pk, reader, rows, labels, lengths, report, columns)
    write_import(out, schemas, samples, report, sha, extra_columns=columns)
    return report
