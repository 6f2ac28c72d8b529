"""What every importer shares: safe pickle loading, padding and non-finite handling, labels
per dataset, the import report, and the atomic store write with provenance (through
:func:`mea_cli.paths.atomic_output`).
"""

from __future__ import annotations

import json
import pickle
import zipfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from rich.console import Console
from rich.table import Table

from mea_cli import MODALITIES, __version__
from mea_cli.artifacts.features import ExtractorInfo, FeatureStoreWriter, ModalitySchema, Sample
from mea_cli.data.presets import IEMOCAP_EMOTIONS
from mea_cli.errors import MeaError
from mea_cli.paths import atomic_output

DATASETS: tuple[str, ...] = ("mosi", "mosei", "iemocap")
# What the CMU benchmark features are when their dimension matches (MEA Sec. IV-B).
BENCHMARK_FEATURES = {
    ("text", 300): "GloVe 840B 300-d word vectors",
    ("vision", 35): "Facet 35 facial action units",
    ("audio", 74): "COVAREP 74 acoustic features",
}


class ImportFormatError(MeaError):
    """A source file that cannot be imported: unreadable, another layout, or not fitting."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def check_dataset(path: Path, dataset: str | None) -> None:
    """``dataset`` is None (not named) or one of :data:`DATASETS`."""
    if dataset is not None and dataset not in DATASETS:
        raise ImportFormatError(
            path, f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}"
        )


# -- pickles ---------------------------------------------------------------------------------
_SAFE_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("collections", "OrderedDict"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "slice"),
    ("builtins", "complex"),
    ("__builtin__", "set"),
    ("copy_reg", "_reconstructor"),
    ("copyreg", "_reconstructor"),
    ("__builtin__", "object"),
    ("builtins", "object"),
}


class _SafeUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings, numbers and numpy arrays; refuses anything else.

    A pickle can run arbitrary code on load; the benchmark pickles only ever hold numpy arrays
    in dicts, so any other global is refused with a clear error instead of being executed.
    """

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def load_pickle(path: Path) -> Any:
    """Load a benchmark pickle safely (numpy arrays only); one clear error when it is not one."""
    if not path.exists():
        raise ImportFormatError(path, "no such file")
    if path.is_dir():
        raise ImportFormatError(path, "is a directory, expected a .pkl file")
    try:
        with path.open("rb") as fh:
            # latin1 reads numpy arrays pickled by Python 2 (the CMU releases are that old)
            return _SafeUnpickler(fh, encoding="latin1").load()
    except pickle.UnpicklingError as err:
        if "refusing" in str(err):
            raise ImportFormatError(
                path,
                f"the pickle holds objects other than numpy arrays ({str(err)[len('refusing to load ') :]}); "
                "refusing to load it (unpickling can run code)",
            ) from None
        raise _unreadable(path, str(err)) from None
    except (
        EOFError,
        ValueError,
        TypeError,
        IndexError,
        KeyError,
        AttributeError,
        MemoryError,
    ) as err:
        raise _unreadable(path, f"{type(err).__name__}: {err}") from None


def _unreadable(path: Path, why: str) -> ImportFormatError:
    """The error for a file that does not unpickle, on one line (the pickle module's messages
    can wrap); a zip archive (``torch.save``'s format, e.g. a ``ckpt.pt``) is named as such."""
    if zipfile.is_zipfile(path):
        return ImportFormatError(
            path, "a zip archive (e.g. a PyTorch checkpoint, ckpt.pt), not a benchmark pickle"
        )
    return ImportFormatError(
        path, f"not a readable pickle (corrupt or truncated): {' '.join(why.split())}"
    )


def as_text(value: Any) -> str:
    """A pickle's id field as text (Python 2 pickles give bytes, numpy gives np.str_)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return as_text(value.item())
    return str(value)


# -- padding and non-finite values -----------------------------------------------------------
def zero_run_lengths(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a padded array ``[N, T, D]``: leading and trailing counts of all-zero rows per sample.

    A row counts as zero only when every value is exactly 0 (NaN and -inf are not zero), so
    the counts are taken on the raw values, before non-finite values are mapped to 0.
    """
    n, t = x.shape[:2]
    zero = ~np.any(x != 0, axis=2)  # [N, T]; NaN != 0 is True, so NaN rows are not zero
    lead = np.where(zero.all(axis=1), t, np.argmin(zero, axis=1))
    trail = np.where(zero.all(axis=1), t, np.argmin(zero[:, ::-1], axis=1))
    return lead.astype(np.int64), trail.astype(np.int64)


def padding_evidence(x: np.ndarray) -> dict[str, int]:
    """Counts that decide the padding side of ``[N, T, D]``: zero rows at the start and at the
    end of samples that are not entirely zero, and how many samples have each."""
    lead, trail = zero_run_lengths(x)
    some = lead < x.shape[1]
    return {
        "leading_zero_rows": int(lead[some].sum()),
        "trailing_zero_rows": int(trail[some].sum()),
        "samples_with_leading_zeros": int((lead[some] > 0).sum()),
        "samples_with_trailing_zeros": int((trail[some] > 0).sum()),
        "all_zero_samples": int((~some).sum()),
    }


def decide_padding(evidence: Mapping[str, int]) -> str:
    """``"left"``, ``"right"`` or ``"none"``: the side with more zero rows (over all samples
    that are not entirely zero) holds the padding; no zero row at either end means none."""
    lead, trail = evidence["leading_zero_rows"], evidence["trailing_zero_rows"]
    if lead == 0 and trail == 0:
        return "none"
    return "left" if lead >= trail else "right"


def true_lengths(x: np.ndarray, side: str) -> np.ndarray:
    """Per-sample real length of a ``[N, T, D]`` array padded on ``side`` with zero rows."""
    lead, trail = zero_run_lengths(x)
    t = x.shape[1]
    if side == "left":
        return t - lead
    if side == "right":
        return t - trail
    return np.full(len(x), t, np.int64)


def strip(row: np.ndarray, length: int, side: str) -> np.ndarray:
    """The real ``[length, D]`` part of one padded ``[T, D]`` row."""
    if side == "left":
        return row[row.shape[0] - length :]
    return row[:length]


def fix_nonfinite(x: np.ndarray) -> tuple[np.ndarray, int]:
    """Map NaN and +-inf to 0 (COVAREP holds -inf); return the array and how many were fixed."""
    x = np.asarray(x, np.float32)
    bad = ~np.isfinite(x)
    count = int(bad.sum())
    if count:
        x = np.where(bad, np.float32(0), x)
    return x, count


def unknown_if_reversed(times: np.ndarray) -> tuple[np.ndarray, int]:
    """``[T, 2]`` (start, end) rows whose end is before their start become NaN (unknown), as a
    store may not hold them (:class:`~mea_cli.artifacts.features.FeatureStore` refuses them);
    return the rows and how many were made unknown. The features are kept."""
    t = np.array(times, np.float64).reshape(-1, 2)
    with np.errstate(invalid="ignore"):
        bad = t[:, 1] < t[:, 0]
    count = int(bad.sum())
    if count:
        t[bad] = np.nan
    return t, count


# -- labels -------------------------------------------------------------------------------------
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


# -- the report --------------------------------------------------------------------------------
@dataclass
class ImportReport:
    """What an import did; printed by the CLI and stored (as JSON) in the store's attributes."""

    format: str
    source: str
    dataset: str
    task: str
    label_names: tuple[str, ...]
    splits: dict[str, int] = field(default_factory=dict)
    modalities: dict[str, dict[str, Any]] = field(default_factory=dict)
    dropped_rows: list[tuple[str, str]] = field(default_factory=list, repr=False)
    """Every dropped sample as ``(id, reason)``: the store's ``/failures`` rows (stage ``import``)."""
    notes: list[str] = field(default_factory=list)
    kept_lengths: dict[str, list[int]] = field(default_factory=dict, repr=False)
    """Lengths of the kept sequences per modality, while samples stream (not reported as is)."""

    def keep(self, modality: str, x: np.ndarray) -> np.ndarray:
        """``x`` with non-finite values mapped to 0 (counted under ``nonfinite_fixed``), its
        length noted for :meth:`finish_lengths`."""
        x, fixed = fix_nonfinite(x)
        self.modalities[modality]["nonfinite_fixed"] += fixed
        self.kept_lengths.setdefault(modality, []).append(len(x))
        return x

    def finish_lengths(self) -> None:
        """The length statistics of every modality from the sequences kept so far."""
        for m in MODALITIES:
            self.add_lengths(m, self.kept_lengths.get(m, []))

    def drop(self, sample: str, reason: str) -> None:
        """Record ``sample`` as dropped for ``reason`` (a failure row of the store)."""
        self.dropped_rows.append((sample, reason))

    @property
    def dropped(self) -> Counter[str]:
        """How many samples were dropped for each reason (in the order first seen)."""
        return Counter(reason for _, reason in self.dropped_rows)

    @property
    def dropped_examples(self) -> dict[str, list[str]]:
        """Up to 5 dropped sample ids per reason, for the report."""
        out: dict[str, list[str]] = {}
        for sample, reason in self.dropped_rows:
            examples = out.setdefault(reason, [])
            if len(examples) < 5:
                examples.append(sample)
        return out

    def add_lengths(self, modality: str, lengths: Iterable[int]) -> None:
        lens = np.asarray(list(lengths), np.int64)
        entry = self.modalities.setdefault(modality, {})
        entry.update(
            steps=int(lens.sum()),
            length_min=int(lens.min()) if len(lens) else 0,
            length_median=float(np.median(lens)) if len(lens) else 0.0,
            length_max=int(lens.max()) if len(lens) else 0,
            empty_sequences=int((lens == 0).sum()),
        )

    @property
    def samples(self) -> int:
        return sum(self.splits.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "source": self.source,
            "dataset": self.dataset,
            "task": self.task,
            "label_names": list(self.label_names),
            "samples": self.samples,
            "splits": dict(self.splits),
            "modalities": self.modalities,
            "dropped": dict(self.dropped),
            "dropped_examples": self.dropped_examples,
            "notes": list(self.notes),
        }

    def render(self, console: Console) -> None:
        console.print(
            f"imported {self.samples} samples from {self.format} file "
            f"{self.source} as {self.dataset or 'unnamed dataset'} ({self.task}: "
            f"{', '.join(self.label_names)})",
            highlight=False,
        )
        console.print(
            "splits: " + ", ".join(f"{k} {v}" for k, v in self.splits.items()), highlight=False
        )
        table = Table(
            "modality", "D", "padding", "length min/median/max", "empty", "non-finite -> 0"
        )
        for m, e in self.modalities.items():
            table.add_row(
                m,
                str(e.get("dim", "")),
                str(e.get("padding", "")),
                f"{e.get('length_min', 0)} / {e.get('length_median', 0):g} / {e.get('length_max', 0)}",
                str(e.get("empty_sequences", 0)),
                str(e.get("nonfinite_fixed", 0)),
            )
        console.print(table)
        if self.dropped_rows:
            examples = self.dropped_examples
            for reason, count in self.dropped.items():
                ex = ", ".join(examples[reason])
                console.print(
                    f"dropped {count} samples: {reason} (e.g. {ex}; all are failure rows of "
                    "the store)",
                    highlight=False,
                )
        else:
            console.print("dropped 0 samples", highlight=False)
        for note in self.notes:
            console.print(f"note: {note}", highlight=False)


# -- writing -----------------------------------------------------------------------------------
def modality_schema(
    modality: str,
    dim: int,
    fmt: str,
    source: Path,
    sha256: str,
    extra: Mapping[str, Any],
    feature_names: Sequence[str] | None = None,
) -> ModalitySchema:
    """Schema of one imported modality; the provenance names the file, its hash and the layout."""
    params: dict[str, Any] = {"source": source.name, "sha256": sha256, **extra}
    known = BENCHMARK_FEATURES.get((modality, dim))
    if known:
        params["features_if_cmu_benchmark"] = known
    names = tuple(feature_names) if feature_names else tuple(f"{modality}_{j}" for j in range(dim))
    return ModalitySchema(modality, names, ExtractorInfo(f"import-{fmt}", __version__, params))


def write_import(
    out: Path,
    schemas: Sequence[ModalitySchema],
    samples: Iterable[Sample],
    report: ImportReport,
    sha256: str,
    extra_columns: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """Write the store atomically: samples, then extra ``/samples/<name>`` string columns, then
    the provenance attributes; the output path appears only when everything is written."""
    attrs = {
        "import_format": report.format,
        "import_source": report.source,
        "import_sha256": sha256,
        "import_report": json.dumps(report.to_dict(), sort_keys=True),
        "synthetic": False,
    }
    with atomic_output(out, "feature store") as tmp:
        with FeatureStoreWriter(
            tmp,
            [s for s in schemas if s.name in MODALITIES] or list(schemas),
            dataset=report.dataset,
            task=report.task,
            label_names=report.label_names,
            attrs=attrs,
        ) as writer:
            for sample in samples:
                writer.add(sample)
            for sid, reason in report.dropped_rows:  # never a silent drop: `mea info` lists them
                writer.add_failure(sid, "import", f"sample {sid}: {reason}")
        with h5py.File(tmp, "a") as f:
            for key, values in (extra_columns or {}).items():
                f["samples"].create_dataset(
                    key, data=np.array(list(values), dtype=object), dtype=h5py.string_dtype()
                )
            # the report is final only now (samples were streamed while it was filled)
            f.attrs["import_report"] = json.dumps(report.to_dict(), sort_keys=True)
