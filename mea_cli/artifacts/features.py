"""The feature store: one HDF5 file of unaligned multimodal sequences (docs/feature-store.md).

Layout (``format = "mea-features"``, ``version = 2``; version 1 is version 2 without
``/words``, and still opens)::

    /                    attrs: format, version, created, mea_cli_version, dataset, task,
                                label_names (JSON), plus free-form provenance attrs
    /samples/id          str [N]        unique sample id
    /samples/video       str [N]        source video / original id
    /samples/start,end   float64 [N]    segment bounds in seconds (NaN when unknown)
    /samples/split       str [N]        train | valid | test | "" (unlabelled)
    /samples/group       str [N]        optional: the sample's group (speaker, ...) for grouped
                                        splits; absent: the video is the group
    /samples/label       float32 [N] (one label) or [N, K]; NaN where absent
    /<modality>/data     float32 [sum T_i, D]
    /<modality>/offsets  int64 [N+1]    sample i is data[offsets[i]:offsets[i+1]]
    /<modality>/times    float64 [sum T_i, 2]  start/end second of each step (NaN if unknown)
    /<modality>/observed bool [sum T_i]   optional: False for a step that holds no measurement
                                        (a word no step reached in ``mea align``); absent:
                                        every step observed
    /<modality>          attrs: feature_names (JSON), extractor (JSON), nominal_rate_hz
    /failures/{video,stage,message}  str [F]
    /words/text          str [W]        the words of every sample as transcribed (version 2)
    /words/times         float64 [W, 2] each word's start/end second in the source video
    /words/offsets       int64 [N+1]    sample i's words are text[offsets[i]:offsets[i+1]]
    /words/source        str [N]        where they came from (sidecar.txt, asr, ...; "" unknown)
    /summary/<modality>  float32 [N, D] optional: one fixed-length summary per sample made at
                                        extraction (openSMILE's Functionals of the sample's
                                        audio); attrs feature_names (JSON), extractor (JSON);
                                        NaN rows: the sample had no usable signal

Sequences keep their native rate and length: nothing is aligned or padded on disk, and a
zero-length sequence is legal. The writer streams (one sample at a time, features appended to
resizable chunked datasets) into a temporary file next to the target
(:func:`mea_cli.paths.atomic_output`, umask permissions) and renames it only when everything
is written, so an interrupted write never leaves a file at the output path. The
reader validates every invariant of the layout on open and raises :class:`FeatureStoreError`
naming the file and the broken invariant.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, cast

import h5py
import numpy as np

from mea_cli import MODALITIES, __version__
from mea_cli.errors import FeatureStoreError
from mea_cli.paths import atomic_output, disk_full, is_disk_full

FORMAT = "mea-features"
VERSION = 2
READABLE_VERSIONS: tuple[int, ...] = (1, 2)
SPLITS: tuple[str, ...] = ("train", "valid", "test", "")
TASKS: tuple[str, ...] = ("regression", "binary-multilabel", "multiclass", "")
_STR = h5py.string_dtype("utf-8")
_CHUNK_ROWS = 4096
_SCAN_ROWS = 1 << 16  # rows per read when a modality is scanned on open (times, finiteness)


@dataclass(frozen=True)
class ExtractorInfo:
    """Provenance of one modality's features: which tool, which version, which settings."""

    name: str
    version: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {"name": self.name, "version": self.version, "parameters": dict(self.parameters)},
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> ExtractorInfo:
        raw = json.loads(text)
        return cls(raw["name"], raw.get("version", ""), raw.get("parameters", {}))


@dataclass(frozen=True)
class ModalitySchema:
    """What one modality holds: its feature names (their count is D), provenance, rate."""

    name: str
    feature_names: tuple[str, ...]
    extractor: ExtractorInfo
    nominal_rate_hz: float = float("nan")

    @property
    def dim(self) -> int:
        return len(self.feature_names)

    def same_as(self, other: ModalitySchema) -> bool:
        """Equal schema, treating NaN rates as equal (dataclass ``==`` does not)."""
        rates_equal = self.nominal_rate_hz == other.nominal_rate_hz or (
            np.isnan(self.nominal_rate_hz) and np.isnan(other.nominal_rate_hz)
        )
        return (
            self.name == other.name
            and self.feature_names == other.feature_names
            and self.extractor.to_json() == other.extractor.to_json()
            and rates_equal
        )


@dataclass(frozen=True)
class Word:
    """One word as transcribed (before tokenisation) and its span in seconds of the video."""

    text: str
    start: float
    end: float


@dataclass
class Sample:
    """One segment: its identity, label and one ``[T, D]`` sequence per modality.

    ``times[m]`` is ``[T, 2]`` (start, end seconds of each step); when omitted it is NaN.
    ``label`` is a 1-d float array of length K (K = number of label names), NaN where absent.
    ``words`` are the words the text sequence was made from and ``words_source`` where they
    came from (``sidecar.txt``, ``asr``, ...; ``""`` when not recorded, e.g. imported data).
    ``summary[m]`` is an optional ``[D]`` per-sample summary of modality ``m`` (``/summary``:
    openSMILE's Functionals of the sample's audio); NaN where the sample had no signal.
    ``group`` is what grouped splits keep together (a speaker, a session; ``""``: none given,
    the video is the group; :mod:`mea_cli.data.splits`). ``observed[m]`` is ``bool [T]``,
    False for a step that holds no measurement (zeros written by ``mea align`` for a word no
    step reached); a modality not in it has every step observed.
    """

    id: str
    features: dict[str, np.ndarray]
    video: str = ""
    start: float = float("nan")
    end: float = float("nan")
    split: str = ""
    label: np.ndarray | None = None
    times: dict[str, np.ndarray] = field(default_factory=dict)
    words: list[Word] = field(default_factory=list)
    words_source: str = ""
    group: str = ""
    observed: dict[str, np.ndarray] = field(default_factory=dict)
    summary: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Failure:
    """A video (or part of one) that could not be extracted, and why."""

    video: str
    stage: str
    message: str


@dataclass(frozen=True)
class StoreMeta:
    """Root attributes of a store."""

    dataset: str
    task: str
    label_names: tuple[str, ...]
    created: str
    mea_cli_version: str
    attrs: Mapping[str, Any]

    @property
    def synthetic(self) -> bool:
        return bool(self.attrs.get("synthetic", False))


@dataclass(frozen=True)
class SampleTable:
    """The per-sample columns of a store (no features)."""

    id: np.ndarray
    video: np.ndarray
    start: np.ndarray
    end: np.ndarray
    split: np.ndarray
    label: np.ndarray  # always [N, K]
    group: np.ndarray | None = None  # /samples/group, None when the store has none

    def __len__(self) -> int:
        return len(self.id)


def _attr_json(value: Any) -> Any:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True)
    return value


class FeatureStoreWriter:
    """Stream samples into a new feature store; the file appears only on a clean close.

    Use as a context manager::

        with FeatureStoreWriter(path, schemas, dataset="mosi", task="regression",
                                label_names=["sentiment"]) as w:
            w.add(sample)
            w.add_failure("v1.mp4", "face", "no face found")

    Leaving the block with an exception deletes the temporary file; the target is untouched.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        modalities: Sequence[ModalitySchema],
        *,
        dataset: str = "",
        task: str = "",
        label_names: Sequence[str] = (),
        attrs: Mapping[str, Any] | None = None,
        summaries: Sequence[ModalitySchema] = (),
    ) -> None:
        self.path = Path(path)
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        if not modalities:
            raise ValueError("a feature store needs at least one modality")
        names = [m.name for m in modalities]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate modality names: {names}")
        self.modalities = {m.name: m for m in modalities}
        self.summaries = {m.name: m for m in summaries}
        self._summary_rows: dict[str, list[np.ndarray]] = {m: [] for m in self.summaries}
        self.dataset = dataset
        self.task = task
        self.label_names = tuple(label_names)
        self.attrs = dict(attrs or {})
        self._ids: set[str] = set()
        self._columns: dict[str, list[Any]] = {
            k: [] for k in ("id", "video", "start", "end", "split", "label", "group")
        }
        self._failures: list[Failure] = []
        self._rows = {m: 0 for m in self.modalities}
        self._offsets: dict[str, list[int]] = {m: [0] for m in self.modalities}
        self._file: h5py.File | None = None
        self._datasets: dict[str, h5py.Dataset] = {}
        self._ignored = _IgnoredH5Errors()
        self._output: AbstractContextManager[Path] | None = None
        self._words = 0
        self._word_offsets: list[int] = [0]
        self._word_sources: list[str] = []
        # per modality, each sample's observed mask (None: all observed); kept in memory (one
        # byte per step) and written at close only for a modality where some sample gave one
        self._observed: dict[str, list[np.ndarray | None]] = {m: [] for m in self.modalities}

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> FeatureStoreWriter:
        self.open()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
            if isinstance(exc, BaseException) and is_disk_full(exc):
                raise disk_full(self.path, "feature store", exc) from None

    def open(self) -> None:
        """Create the temporary file (checks the output path: :class:`~mea_cli.paths.PathError`)."""
        output = atomic_output(self.path, "feature store")
        tmp = output.__enter__()
        self._output = output
        self._ignored.start()
        try:
            self._file = h5py.File(tmp, "w")
        except BaseException as err:
            self.abort()
            if is_disk_full(err):
                raise disk_full(self.path, "feature store", err) from None
            raise
        # the growing datasets stay open until close: an HDF5 dataset flushes its chunk cache
        # when its last handle goes, and a failure there (a full disk) is only printed, never
        # raised, so writing would go on; a failed write while it is open raises at once
        ds = self._datasets
        words = self._file.create_group("words")
        ds["words/text"] = words.create_dataset(
            "text", shape=(0,), maxshape=(None,), dtype=_STR, chunks=(_CHUNK_ROWS,)
        )
        ds["words/times"] = words.create_dataset(
            "times", shape=(0, 2), maxshape=(None, 2), dtype="f8", chunks=(_CHUNK_ROWS, 2)
        )
        for name, schema in self.modalities.items():
            g = self._file.create_group(name)
            ds[f"{name}/data"] = g.create_dataset(
                "data",
                shape=(0, schema.dim),
                maxshape=(None, schema.dim),
                dtype="f4",
                chunks=(_CHUNK_ROWS, max(schema.dim, 1)),
            )
            ds[f"{name}/times"] = g.create_dataset(
                "times", shape=(0, 2), maxshape=(None, 2), dtype="f8", chunks=(_CHUNK_ROWS, 2)
            )
            g.attrs["feature_names"] = json.dumps(list(schema.feature_names))
            g.attrs["extractor"] = schema.extractor.to_json()
            g.attrs["nominal_rate_hz"] = float(schema.nominal_rate_hz)

    def abort(self) -> None:
        """Discard everything written so far (the temporary file is removed).

        The file's descriptor is first pointed at ``/dev/null``: closing an HDF5 file flushes
        its caches, and on a full disk every flush fails again (thousands of HDF5 error
        lines, then a segfault when the library shuts down). Written to ``/dev/null`` the
        flush succeeds, and what it wrote was to be thrown away anyway."""
        if self._file is not None:
            _discard_writes(self._file)
            self._datasets.clear()
            with contextlib.suppress(OSError, RuntimeError):  # nothing to keep: removed below
                self._file.close()
            self._file = None
        self._ignored.stop()
        output, self._output = self._output, None
        if output is not None:
            err = RuntimeError("feature store writer aborted")
            output.__exit__(type(err), err, None)  # atomic_output removes its temporary file

    # -- writing ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._columns["id"])

    def add(self, sample: Sample) -> None:
        """Append one sample (its features go to disk now; only the sample table is kept)."""
        if self._file is None:
            raise RuntimeError("writer is not open (use it as a context manager)")
        if sample.id in self._ids:
            raise ValueError(f"duplicate sample id {sample.id!r}")
        if sample.split not in SPLITS:
            raise ValueError(f"sample {sample.id!r}: split must be one of {SPLITS}")
        missing = set(self.modalities) - set(sample.features)
        extra = set(sample.features) - set(self.modalities)
        if missing or extra:
            raise ValueError(
                f"sample {sample.id!r}: modalities {sorted(sample.features)} do not match the "
                f"store's {sorted(self.modalities)}"
            )
        k = len(self.label_names)
        label = np.full(k, np.nan, np.float32)
        if sample.label is not None:
            given = np.asarray(sample.label, np.float32).reshape(-1)
            if given.shape != (k,):
                raise ValueError(
                    f"sample {sample.id!r}: label has {given.size} values, expected {k}"
                )
            label = given
        prepared = {}
        for name, schema in self.modalities.items():
            x = np.asarray(sample.features[name], np.float32)
            if x.ndim != 2 or x.shape[1] != schema.dim:
                raise ValueError(
                    f"sample {sample.id!r}: {name} has shape {x.shape}, expected [T, {schema.dim}]"
                )
            t = sample.times.get(name)
            t = np.full((len(x), 2), np.nan) if t is None else np.asarray(t, np.float64)
            if t.shape != (len(x), 2):
                raise ValueError(
                    f"sample {sample.id!r}: {name} times have shape {t.shape}, expected [{len(x)}, 2]"
                )
            obs = sample.observed.get(name)
            if obs is not None:
                obs = np.asarray(obs)
                if obs.dtype != np.bool_ or obs.shape != (len(x),):
                    raise ValueError(
                        f"sample {sample.id!r}: {name} observed mask has shape {obs.shape} and "
                        f"dtype {obs.dtype}, expected bool [{len(x)}]"
                    )
            prepared[name] = (x, t, obs)
        summary = self._summary_of(sample)
        ds = self._datasets
        for name, (x, t, obs) in prepared.items():
            self._observed[name].append(obs)
            n0 = self._rows[name]
            n1 = n0 + len(x)
            if len(x):
                ds[f"{name}/data"].resize(n1, axis=0)
                ds[f"{name}/data"][n0:n1] = x
                ds[f"{name}/times"].resize(n1, axis=0)
                ds[f"{name}/times"][n0:n1] = t
            self._rows[name] = n1
            self._offsets[name].append(n1)
        if sample.words:
            w0, w1 = self._words, self._words + len(sample.words)
            ds["words/text"].resize(w1, axis=0)
            ds["words/text"][w0:w1] = np.array([w.text for w in sample.words], dtype=object)
            ds["words/times"].resize(w1, axis=0)
            ds["words/times"][w0:w1] = np.array(
                [(w.start, w.end) for w in sample.words], np.float64
            )
            self._words = w1
        self._ignored.raise_first()  # a write that failed where h5py could not raise it
        self._word_offsets.append(self._words)
        self._word_sources.append(sample.words_source)
        self._ids.add(sample.id)
        cols = self._columns
        cols["id"].append(sample.id)
        cols["video"].append(sample.video)
        cols["start"].append(float(sample.start))
        cols["end"].append(float(sample.end))
        cols["split"].append(sample.split)
        cols["label"].append(label)
        cols["group"].append(sample.group)
        for name, row in summary.items():
            self._summary_rows[name].append(row)

    def _summary_of(self, sample: Sample) -> dict[str, np.ndarray]:
        """The sample's summaries checked against the writer's: the same names, ``[D]`` each."""
        if set(sample.summary) != set(self.summaries):
            raise ValueError(
                f"sample {sample.id!r}: summaries {sorted(sample.summary)} do not match the "
                f"store's {sorted(self.summaries)}"
            )
        out = {}
        for name, schema in self.summaries.items():
            row = np.asarray(sample.summary[name], np.float32)
            if row.shape != (schema.dim,):
                raise ValueError(
                    f"sample {sample.id!r}: summary {name} has shape {row.shape}, "
                    f"expected ({schema.dim},)"
                )
            out[name] = row
        return out

    def add_failure(self, video: str, stage: str, message: str) -> None:
        self._failures.append(Failure(video, stage, message))

    def close(self) -> None:
        """Write the sample table and failures, then atomically move the file into place."""
        if self._file is None or self._output is None:
            raise RuntimeError("writer is not open")
        f = self._file
        try:
            n = len(self)
            cols = self._columns
            s = f.create_group("samples")
            for key in ("id", "video", "split"):
                s.create_dataset(key, data=np.array(cols[key], dtype=object), dtype=_STR)
            if any(cols["group"]):  # optional column: written only when some sample has one
                s.create_dataset("group", data=np.array(cols["group"], dtype=object), dtype=_STR)
            s.create_dataset("start", data=np.array(cols["start"], np.float64))
            s.create_dataset("end", data=np.array(cols["end"], np.float64))
            k = len(self.label_names)
            labels = np.array(cols["label"], np.float32).reshape(n, k)
            if k <= 1:  # one label (or none: an unlabelled store) is stored as [N]
                labels = labels[:, 0] if k else np.full(n, np.nan, np.float32)
            s.create_dataset("label", data=labels)
            for name in self.modalities:
                f[name].create_dataset("offsets", data=np.array(self._offsets[name], np.int64))
                masks = self._observed[name]
                if any(m is not None for m in masks):  # optional: absent = all observed
                    lengths = np.diff(self._offsets[name])
                    full = [np.ones(k, bool) if m is None else m for m, k in zip(masks, lengths, strict=True)]
                    f[name].create_dataset("observed", data=np.concatenate(full).astype(bool))
            f["words"].create_dataset("offsets", data=np.array(self._word_offsets, np.int64))
            f["words"].create_dataset(
                "source", data=np.array(self._word_sources, dtype=object), dtype=_STR
            )
            if self.summaries:
                sg = f.create_group("summary")
                for name, schema in self.summaries.items():
                    rows = np.array(self._summary_rows[name], np.float32).reshape(n, schema.dim)
                    d = sg.create_dataset(name, data=rows)
                    d.attrs["feature_names"] = json.dumps(list(schema.feature_names))
                    d.attrs["extractor"] = schema.extractor.to_json()
            fg = f.create_group("failures")
            for key in ("video", "stage", "message"):
                vals = [getattr(x, key) for x in self._failures]
                fg.create_dataset(key, data=np.array(vals, dtype=object), dtype=_STR)
            f.attrs["format"] = FORMAT
            f.attrs["version"] = VERSION
            f.attrs["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            f.attrs["mea_cli_version"] = __version__
            f.attrs["dataset"] = self.dataset
            f.attrs["task"] = self.task
            f.attrs["label_names"] = json.dumps(list(self.label_names))
            for key, value in self.attrs.items():
                f.attrs[key] = _attr_json(value)
            f.flush()  # a failed write raises here, not later as a printed, ignored error
            self._ignored.raise_first()
            self._datasets.clear()
            f.close()
            self._ignored.raise_first()
            self._file = None
            self._ignored.stop()
            output, self._output = self._output, None
            output.__exit__(None, None, None)  # rename into place
        except BaseException as err:
            self.abort()
            if is_disk_full(err):
                raise disk_full(self.path, "feature store", err) from None
            raise


class _IgnoredH5Errors:
    """Collect the errors h5py can only print (HDF5 flushes an object's cache when its last
    handle goes, and a failed write there, a full disk for one, is raised in a Cython
    ``__dealloc__``: printed through ``sys.excepthook`` and ``sys.unraisablehook``, then
    dropped), so that the writer raises the first of them instead of printing each and going
    on. Anything else goes to the hooks that were there before."""

    def __init__(self) -> None:
        self.errors: list[BaseException] = []
        self._previous: tuple[Any, Any] | None = None

    def start(self) -> None:
        self._previous = (sys.excepthook, sys.unraisablehook)
        sys.excepthook, sys.unraisablehook = self._excepthook, self._unraisable

    def stop(self) -> None:
        if self._previous is not None:
            (sys.excepthook, sys.unraisablehook), self._previous = self._previous, None

    @staticmethod
    def _from_h5py(err: BaseException | None, tb: Any) -> bool:
        if not isinstance(err, (OSError, RuntimeError)):
            return False
        while tb is not None:
            if "h5py" in tb.tb_frame.f_code.co_filename:
                return True
            tb = tb.tb_next
        return False

    def _excepthook(self, kind: Any, err: BaseException, tb: Any) -> None:
        if self._from_h5py(err, tb):
            self.errors.append(err)
        elif self._previous is not None:
            self._previous[0](kind, err, tb)

    def _unraisable(self, unraisable: Any) -> None:
        err = unraisable.exc_value
        if self._from_h5py(err, unraisable.exc_traceback) or (
            isinstance(err, (OSError, RuntimeError)) and "h5py" in str(unraisable.object)
        ):
            self.errors.append(err)
        elif self._previous is not None:
            self._previous[1](unraisable)

    def raise_first(self) -> None:
        if self.errors:
            raise self.errors[0]


def _discard_writes(file: h5py.File) -> None:
    """Send every later write of ``file`` (the POSIX driver's descriptor) to ``/dev/null``."""
    try:
        fd = file.id.get_vfd_handle()
    except (OSError, RuntimeError, ValueError):  # not the POSIX driver: nothing to redirect
        return
    null = os.open(os.devnull, os.O_RDWR)
    try:
        os.dup2(null, fd)
    finally:
        os.close(null)


_VALUES_CHECKED: set[tuple[int, int, int, int]] = set()


def _identity(path: Path | None) -> tuple[int, int, int, int] | None:
    """(device, inode, size, mtime) of a store file: changes whenever its content can have."""
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def check_store(path: str | os.PathLike[str]) -> None:
    """Open ``path`` and check its structure and values (:meth:`FeatureStore.check_values`):
    what a command runs first, before importing torch, so a bad store costs no more than that."""
    with FeatureStore(path) as store:
        store.check_values()


def _decode(arr: np.ndarray) -> np.ndarray:
    return np.array([x.decode("utf-8") if isinstance(x, bytes) else x for x in arr], dtype=object)


# -- the invariants checked on open -----------------------------------------------------------
# Each check returns the broken invariant in words, or None. The tables below run them in
# order and FeatureStore raises the first problem, naming the file.
_RESERVED_ATTRS = (
    "format",
    "version",
    "created",
    "mea_cli_version",
    "dataset",
    "task",
    "label_names",
)


def _real_problem(where: str, ds: h5py.Dataset, floats_only: bool = False) -> str | None:
    """A numeric dataset must hold real numbers: not strings, complex numbers or objects
    (which would fail, or silently drop an imaginary part, only once training reads them)."""
    kind = ds.dtype.kind
    if kind in ("f" if floats_only else "fiu"):
        return None
    wanted = "floating-point" if floats_only else "real numeric"
    held = {"O": "strings or objects", "S": "strings", "U": "strings", "c": "complex numbers"}
    what = f" ({held[kind]})" if kind in held else ""
    return f"{where} has dtype {ds.dtype}{what}, expected {wanted} values"


def _offsets_dtype_problem(where: str, ds: h5py.Dataset) -> str | None:
    """Offsets index rows: integers only (a fractional offset has no row to point at)."""
    if ds.dtype.kind in "iu":
        return None
    values = ds[:]
    frac = ds.dtype.kind == "f" and bool(np.any(values != np.floor(values)))
    what = f"fractional values (e.g. {values[values != np.floor(values)][0]})" if frac else ""
    return (
        f"{where} has dtype {ds.dtype}" + (f" with {what}" if what else "") + ", expected integers"
    )


def _missing(where: str, group: h5py.Group, keys: Sequence[str]) -> str | None:
    """The first of ``keys`` that ``group`` lacks, as a problem."""
    absent = [key for key in keys if key not in group]
    return f"missing dataset {where}/{absent[0]}" if absent else None


def _format_problem(f: h5py.File) -> str | None:
    fmt = f.attrs.get("format")
    if isinstance(fmt, bytes):
        fmt = fmt.decode()
    return None if fmt == FORMAT else f"attribute 'format' is {fmt!r}, expected {FORMAT!r}"


def _root_version(f: h5py.File) -> Any:
    version = f.attrs.get("version")
    return version.item() if isinstance(version, np.generic) else version


def _version_problem(f: h5py.File) -> str | None:
    shown = _root_version(f)
    if isinstance(shown, int) and not isinstance(shown, bool) and shown in READABLE_VERSIONS:
        return None
    readable = ", ".join(str(v) for v in READABLE_VERSIONS)
    return f"format version {shown!r} is not supported (this mea-cli reads {readable})"


def _root_label_names(f: h5py.File) -> tuple[str, ...]:
    return tuple(json.loads(f.attrs.get("label_names", "[]")))


def _label_names_problem(f: h5py.File) -> str | None:
    try:
        _root_label_names(f)
    except json.JSONDecodeError:
        return "attribute 'label_names' is not a JSON list"
    return None


def _task_problem(f: h5py.File) -> str | None:
    task = str(f.attrs.get("task", ""))
    return None if task in TASKS else f"attribute 'task' is {task!r}, expected one of {TASKS}"


def _samples_group_problem(f: h5py.File) -> str | None:
    return None if "samples" in f else "missing group /samples"


_ROOT_CHECKS = (
    _format_problem,
    _version_problem,
    _label_names_problem,
    _task_problem,
    _samples_group_problem,
)


class _Columns:
    """``/samples`` as the open checks read it: each column decoded once, when first needed."""

    def __init__(self, group: h5py.Group, label_names: tuple[str, ...]) -> None:
        self.group, self.k = group, len(label_names)

    @functools.cached_property
    def n(self) -> int:
        return self.group["id"].shape[0]

    @functools.cached_property
    def ids(self) -> np.ndarray:
        return _decode(self.group["id"][:])

    @functools.cached_property
    def split(self) -> np.ndarray:
        return _decode(self.group["split"][:])

    @functools.cached_property
    def label(self) -> np.ndarray:
        """Always ``[N, K]`` (a one-label store keeps ``[N]`` on disk)."""
        return (
            self.group["label"][:].astype(np.float32).reshape(self.n, max(self.k, 1))[:, : self.k]
        )

    @functools.cached_property
    def sample_group(self) -> np.ndarray | None:
        return _decode(self.group["group"][:]) if "group" in self.group else None


def _columns_missing(c: _Columns) -> str | None:
    return _missing("/samples", c.group, ("id", "video", "start", "end", "split", "label"))


def _column_shapes(c: _Columns) -> str | None:
    for key in ("video", "start", "end", "split"):
        if c.group[key].shape != (c.n,):
            return f"/samples/{key} has shape {c.group[key].shape}, expected ({c.n},)"
    return None


def _label_shape(c: _Columns) -> str | None:
    expected = (c.n,) if c.k <= 1 else (c.n, c.k)
    shape = c.group["label"].shape
    if shape == expected:
        return None
    return f"/samples/label has shape {shape}, expected {expected} for {c.k} label name(s)"


def _unique_ids(c: _Columns) -> str | None:
    if len(set(c.ids)) == c.n:
        return None
    seen: set[str] = set()
    dup = next(x for x in c.ids if x in seen or seen.add(x))
    return f"sample ids are not unique (e.g. {dup!r})"


def _split_values(c: _Columns) -> str | None:
    bad = sorted(set(c.split) - set(SPLITS))
    return f"/samples/split has values {bad}, allowed: train, valid, test or empty" if bad else None


def _real_columns(c: _Columns) -> str | None:
    problems = (_real_problem(f"/samples/{key}", c.group[key]) for key in ("start", "end", "label"))
    return next((p for p in problems if p), None)


def _finite_labels(c: _Columns) -> str | None:
    if not np.isinf(c.label).any():
        return None
    row = int(np.flatnonzero(np.isinf(c.label).any(axis=1))[0])
    return f"sample {c.ids[row]!r} has an infinite label (NaN marks a missing one)"


def _ordered_bounds(c: _Columns) -> str | None:
    """A segment ends at or after it starts (NaN: unknown, not compared)."""
    start, end = c.group["start"][:], c.group["end"][:]
    with np.errstate(invalid="ignore"):
        bad = np.flatnonzero(end < start)
    if not len(bad):
        return None
    i = int(bad[0])
    return (
        f"sample {c.ids[i]!r} ends before it starts (start {start[i]}, end {end[i]}); "
        f"{len(bad)} such sample(s)"
    )


def _group_shape(c: _Columns) -> str | None:
    if "group" not in c.group or c.group["group"].shape == (c.n,):
        return None
    return f"/samples/group has shape {c.group['group'].shape}, expected ({c.n},)"


_SAMPLE_CHECKS = (
    _columns_missing,
    _column_shapes,
    _label_shape,
    _unique_ids,
    _split_values,
    _real_columns,
    _finite_labels,
    _ordered_bounds,
    _group_shape,
)


class _Modality:
    """One modality group as the open checks read it (its offsets once, when first needed)."""

    def __init__(self, name: str, group: h5py.Group, n: int) -> None:
        self.name, self.group, self.n = name, group, n
        self.schema: ModalitySchema | None = None

    @functools.cached_property
    def offsets(self) -> np.ndarray:
        return self.group["offsets"][:]

    @property
    def data(self) -> h5py.Dataset:
        return self.group["data"]

    @property
    def width(self) -> int:
        return len(self.schema.feature_names) if self.schema else 0


def _modality_missing(m: _Modality) -> str | None:
    return _missing(f"/{m.name}", m.group, ("data", "offsets", "times"))


def _modality_attrs(m: _Modality) -> str | None:
    """Reads the schema (names, extractor, nominal rate) from the group's attributes."""
    g = m.group
    try:
        names = tuple(json.loads(g.attrs["feature_names"]))
        extractor = ExtractorInfo.from_json(g.attrs["extractor"])
    except (KeyError, json.JSONDecodeError, TypeError):
        return f"/{m.name} lacks valid 'feature_names'/'extractor' attributes"
    m.schema = ModalitySchema(
        m.name, names, extractor, float(g.attrs.get("nominal_rate_hz", np.nan))
    )
    return None


def _data_shape(m: _Modality) -> str | None:
    shape = m.data.shape
    if m.data.ndim == 2 and shape[1] == m.width:
        return None
    return f"/{m.name}/data has shape {shape} but {m.width} feature_names"


def _offsets_shape(m: _Modality) -> str | None:
    if m.offsets.shape == (m.n + 1,):
        return None
    return f"/{m.name}/offsets has shape {m.offsets.shape}, expected ({m.n + 1},)"


def _offsets_start(m: _Modality) -> str | None:
    return None if m.offsets[0] == 0 else f"/{m.name}/offsets does not start at 0"


def _offsets_monotone(m: _Modality) -> str | None:
    if not np.any(np.diff(m.offsets) < 0):
        return None
    return f"/{m.name}/offsets is not monotone (non-decreasing)"


def _offsets_end(m: _Modality) -> str | None:
    rows = m.data.shape[0]
    if m.offsets[-1] == rows:
        return None
    return f"/{m.name}/offsets ends at {m.offsets[-1]} but /{m.name}/data has {rows} rows"


def _times_shape(m: _Modality) -> str | None:
    shape, rows = m.group["times"].shape, m.data.shape[0]
    return (
        None if shape == (rows, 2) else f"/{m.name}/times has shape {shape}, expected ({rows}, 2)"
    )


def _observed_shape(m: _Modality) -> str | None:
    """The optional ``observed`` mask: one boolean per step."""
    if "observed" not in m.group:
        return None
    obs, rows = m.group["observed"], m.data.shape[0]
    if obs.shape != (rows,):
        return f"/{m.name}/observed has shape {obs.shape}, expected ({rows},) (one per step)"
    if obs.dtype != np.bool_:
        return f"/{m.name}/observed must be boolean, not {obs.dtype}"
    return None


def _modality_dtypes(m: _Modality) -> str | None:
    g = m.group
    return (
        _offsets_dtype_problem(f"/{m.name}/offsets", g["offsets"])
        or _real_problem(f"/{m.name}/data", g["data"])
        or _real_problem(f"/{m.name}/times", g["times"], floats_only=True)
    )


_MODALITY_CHECKS = (
    _modality_missing,
    _modality_attrs,
    _data_shape,
    _offsets_shape,
    _offsets_start,
    _offsets_monotone,
    _offsets_end,
    _times_shape,
    _observed_shape,
    _modality_dtypes,
)


def _modality_names(f: h5py.File) -> list[str]:
    """The modality groups in the canonical order (text, vision, audio), others after by name."""
    return sorted(
        (name for name in f if name not in ("samples", "failures", "words", "summary")),
        key=lambda m: (MODALITIES.index(m) if m in MODALITIES else len(MODALITIES), m),
    )


class FeatureStore:
    """Read-only access to a feature store, validated on open.

    ``store[i]`` reads one sample (only its rows, not the whole file); ``store.array(m)`` gives a
    whole modality as ``(data, offsets)``; ``store.samples`` is the sample table.
    """

    def __init__(self, source: str | os.PathLike[str] | BinaryIO) -> None:
        self.path = Path(source) if isinstance(source, (str, os.PathLike)) else None
        self._name = (
            str(self.path) if self.path is not None else getattr(source, "name", "<stream>")
        )
        if self.path is not None:
            if not self.path.exists():
                raise FeatureStoreError(self._name, "no such file")
            if self.path.is_dir():
                raise FeatureStoreError(self._name, "is a directory, not a feature store")
        try:
            self._file = h5py.File(source, "r")
        except (OSError, ValueError) as err:
            raise FeatureStoreError(
                self._name,
                f"not a readable HDF5 file (truncated, corrupt or another format): {err}",
            ) from None
        try:
            self._validate()
        except FeatureStoreError:
            self._file.close()
            raise
        except (KeyError, OSError, ValueError, TypeError, AttributeError) as err:
            self._file.close()
            raise FeatureStoreError(self._name, f"unreadable store structure: {err}") from None

    # -- opening ---------------------------------------------------------------------------
    def _fail(self, problem: str) -> None:
        raise FeatureStoreError(self._name, problem)

    def _require(self, problem: str | None) -> None:
        if problem is not None:
            self._fail(problem)

    def _validate(self) -> None:
        """Run the tables of checks (root, ``/samples``, each modality, ``/words``) in order,
        keeping what they read."""
        f = self._file
        for root_check in _ROOT_CHECKS:
            self._require(root_check(f))
        self.version = int(_root_version(f))
        label_names = _root_label_names(f)
        columns = _Columns(f["samples"], label_names)
        self.meta = StoreMeta(
            dataset=str(f.attrs.get("dataset", "")),
            task=str(f.attrs.get("task", "")),
            label_names=label_names,
            created=str(f.attrs.get("created", "")),
            mea_cli_version=str(f.attrs.get("mea_cli_version", "")),
            attrs={k: v for k, v in f.attrs.items() if k not in _RESERVED_ATTRS},
        )
        for sample_check in _SAMPLE_CHECKS:
            self._require(sample_check(columns))
        s = columns.group
        self.samples = SampleTable(
            id=columns.ids,
            video=_decode(s["video"][:]),
            start=s["start"][:],
            end=s["end"][:],
            split=columns.split,
            label=columns.label,
            group=columns.sample_group,
        )
        self._index = {x: i for i, x in enumerate(columns.ids)}
        self._ids_for_errors = columns.ids
        self._validate_modalities(columns.n)
        self._validate_words(columns.n)
        self._validate_summaries(columns.n)

    def _validate_modalities(self, n: int) -> None:
        """Each modality group through :data:`_MODALITY_CHECKS`; its schema and offsets kept."""
        self.modalities: dict[str, ModalitySchema] = {}
        self._offsets: dict[str, np.ndarray] = {}
        names = _modality_names(self._file)
        if not names:
            self._fail("no modality groups")
        for name in names:
            m = _Modality(name, self._file[name], n)
            for check in _MODALITY_CHECKS:
                self._require(check(m))
            self.modalities[name] = cast(ModalitySchema, m.schema)  # _modality_attrs read it
            self._offsets[name] = m.offsets.astype(np.int64)

    def check_values(self) -> None:
        """Read every modality once and refuse non-finite features or a step that ends before
        it starts, naming the sample. Not part of opening (which reads only the sample table
        and offsets, so ``store[i]`` of a big store stays cheap); the commands that use every
        sample (``info``, ``train``, ``eval``, ``compare``, ``predict`` on a store, ``merge``)
        call it before any work. Cost: one sequential read of the data (docs/feature-store.md);
        a file already checked by this process (same inode, size and modification time) is
        not read again (the command line checks before importing torch, training again)."""
        key = _identity(self.path)
        if key is not None and key in _VALUES_CHECKED:
            return
        for name in self.modalities:
            g = self._file[name]
            self._check_step_times(name, g["times"], self._offsets[name])
            self._check_finite(name, g["data"], self._offsets[name])
        for name in self.summaries:
            x = self._file["summary"][name][:]
            bad = np.flatnonzero(np.isinf(x).any(axis=1))
            if len(bad):
                self._fail(
                    f"/summary/{name} holds an infinite value in sample "
                    f"{self._ids_for_errors[bad[0]]!r}; summaries must be finite (NaN: missing)"
                )
        if key is not None:
            _VALUES_CHECKED.add(key)

    def _check_step_times(self, name: str, times: h5py.Dataset, offsets: np.ndarray) -> None:
        """Every step's end is at or after its start (NaN: unknown), read in chunks."""
        for a in range(0, times.shape[0], _SCAN_ROWS):
            t = times[a : a + _SCAN_ROWS]
            with np.errstate(invalid="ignore"):
                bad = np.flatnonzero(t[:, 1] < t[:, 0])
            if len(bad):
                row = a + int(bad[0])
                who, step = self._owner(offsets, row)
                self._fail(
                    f"/{name}/times: step {step} of sample {who!r} ends before it starts "
                    f"({t[bad[0], 0]} > {t[bad[0], 1]})"
                )

    def _check_finite(self, name: str, data: h5py.Dataset, offsets: np.ndarray) -> None:
        """No NaN or infinity in the features (they would poison every batch, the
        normalisation statistics and the metrics); the first offending sample is named.
        Reads the modality once, in chunks (docs/feature-store.md gives the cost)."""
        for a in range(0, data.shape[0], _SCAN_ROWS):
            x = data[a : a + _SCAN_ROWS]
            ok = np.isfinite(x)
            if not ok.all():
                r, c = (int(v[0]) for v in np.nonzero(~ok))
                who, step = self._owner(offsets, a + r)
                self._fail(
                    f"/{name}/data holds a non-finite value ({x[r, c]}) in sample {who!r}, "
                    f"step {step}, feature {c}; features must be finite"
                )

    def _owner(self, offsets: np.ndarray, row: int) -> tuple[str, int]:
        """The id of the sample whose rows hold data row ``row``, and the step it is there."""
        i = int(np.searchsorted(offsets, row, side="right")) - 1
        return str(self._ids_for_errors[i]), row - int(offsets[i])

    def _validate_words(self, n: int) -> None:
        """``/words`` (version 2): offsets over the word rows and one source per sample."""
        f = self._file
        if self.version < 2:
            self._word_offsets = np.zeros(n + 1, np.int64)
            self._word_sources = np.array([""] * n, dtype=object)
            return
        if "words" not in f:
            self._fail("missing group /words (required from format version 2)")
        g = f["words"]
        for key in ("text", "times", "offsets", "source"):
            if key not in g:
                self._fail(f"missing dataset /words/{key}")
        rows = g["text"].shape[0]
        offsets = g["offsets"][:]
        if offsets.shape != (n + 1,):
            self._fail(f"/words/offsets has shape {offsets.shape}, expected ({n + 1},)")
        if offsets[0] != 0 or np.any(np.diff(offsets) < 0) or offsets[-1] != rows:
            self._fail(f"/words/offsets must run monotonically from 0 to the {rows} word rows")
        if g["times"].shape != (rows, 2):
            self._fail(f"/words/times has shape {g['times'].shape}, expected ({rows}, 2)")
        if g["source"].shape != (n,):
            self._fail(f"/words/source has shape {g['source'].shape}, expected ({n},)")
        self._require(_offsets_dtype_problem("/words/offsets", g["offsets"]))
        self._require(_real_problem("/words/times", g["times"], floats_only=True))
        self._word_offsets = offsets.astype(np.int64)
        self._word_sources = _decode(g["source"][:])

    def _validate_summaries(self, n: int) -> None:
        """``/summary`` (optional): each dataset ``[N, D]`` real, with ``D`` feature names."""
        self.summaries: dict[str, ModalitySchema] = {}
        g = self._file.get("summary")
        if g is None:
            return
        if not isinstance(g, h5py.Group):
            self._fail("/summary is not a group")
        for name in sorted(g):
            d = g[name]
            if not isinstance(d, h5py.Dataset):
                self._fail(f"/summary/{name} is not a dataset")
            try:
                names = tuple(json.loads(d.attrs["feature_names"]))
                extractor = ExtractorInfo.from_json(d.attrs["extractor"])
            except (KeyError, json.JSONDecodeError, TypeError):
                self._fail(f"/summary/{name} lacks valid 'feature_names'/'extractor' attributes")
            if d.shape != (n, len(names)):
                self._fail(
                    f"/summary/{name} has shape {d.shape}, expected ({n}, {len(names)}): one row "
                    "per sample, one column per feature name"
                )
            self._require(_real_problem(f"/summary/{name}", d, floats_only=True))
            self.summaries[name] = ModalitySchema(name, names, extractor)

    # -- access ----------------------------------------------------------------------------
    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def name(self) -> str:
        return self._name

    def index_of(self, sample_id: str) -> int:
        return self._index[sample_id]

    def lengths(self, modality: str) -> np.ndarray:
        """Sequence length of every sample in ``modality``."""
        return np.diff(self._offsets[modality])

    def offsets(self, modality: str) -> np.ndarray:
        return self._offsets[modality]

    def sequence(self, i: int, modality: str) -> np.ndarray:
        """Sample ``i``'s ``[T, D]`` sequence of ``modality`` (reads only its rows)."""
        a, b = self._offsets[modality][i : i + 2]
        return self._file[modality]["data"][a:b]

    def times(self, i: int, modality: str) -> np.ndarray:
        a, b = self._offsets[modality][i : i + 2]
        return self._file[modality]["times"][a:b]

    def has_observed(self, modality: str) -> bool:
        """Whether ``modality`` keeps an ``observed`` mask (a ``mea align`` store does)."""
        return "observed" in self._file[modality]

    def observed(self, i: int, modality: str) -> np.ndarray | None:
        """Sample ``i``'s ``bool [T]`` observed mask of ``modality``; None when the store
        keeps none (every step observed)."""
        if not self.has_observed(modality):
            return None
        a, b = self._offsets[modality][i : i + 2]
        return self._file[modality]["observed"][a:b]

    def unobserved_steps(self, modality: str) -> int:
        """How many steps of ``modality`` hold no measurement (0 without a mask)."""
        if not self.has_observed(modality):
            return 0
        obs = self._file[modality]["observed"]
        return int(sum(int((~obs[a : a + _SCAN_ROWS]).sum()) for a in range(0, obs.shape[0], _SCAN_ROWS)))

    def words(self, i: int) -> list[Word]:
        """Sample ``i``'s words with their times (empty for version-1 stores)."""
        a, b = self._word_offsets[i : i + 2]
        if a == b:
            return []
        g = self._file["words"]
        text = _decode(g["text"][a:b])
        times = g["times"][a:b]
        return [Word(str(t), float(s), float(e)) for t, (s, e) in zip(text, times, strict=True)]

    def words_source(self, i: int) -> str:
        """Where sample ``i``'s words came from; ``""`` when the store does not say."""
        return str(self._word_sources[i])

    @property
    def has_words(self) -> bool:
        """True when the store records words (format version 2 written by ``mea extract``)."""
        return self.version >= 2 and any(bool(x) for x in self._word_sources)

    def __getitem__(self, i: int) -> Sample:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i %= len(self)
        t = self.samples
        return Sample(
            id=str(t.id[i]),
            video=str(t.video[i]),
            start=float(t.start[i]),
            end=float(t.end[i]),
            split=str(t.split[i]),
            label=t.label[i].copy(),
            features={m: self.sequence(i, m) for m in self.modalities},
            times={m: self.times(i, m) for m in self.modalities},
            words=self.words(i),
            words_source=self.words_source(i),
            group="" if t.group is None else str(t.group[i]),
            observed={
                m: obs for m in self.modalities if (obs := self.observed(i, m)) is not None
            },
            summary={m: self._file["summary"][m][i] for m in self.summaries},
        )

    def __iter__(self) -> Iterator[Sample]:
        for i in range(len(self)):
            yield self[i]

    def array(self, modality: str) -> tuple[np.ndarray, np.ndarray]:
        """The whole modality as ``(data [sum T, D], offsets [N+1])``."""
        return self._file[modality]["data"][:], self._offsets[modality]

    def summary(self, name: str) -> np.ndarray:
        """The whole per-sample summary ``name`` as ``[N, D]`` float32 (``/summary``)."""
        return self._file["summary"][name][:]

    @property
    def failures(self) -> list[Failure]:
        if "failures" not in self._file:
            return []
        g = self._file["failures"]
        cols = [_decode(g[k][:]) for k in ("video", "stage", "message")]
        return [Failure(str(v), str(s), str(m)) for v, s, m in zip(*cols, strict=True)]

    def split_indices(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.samples.split == split)
