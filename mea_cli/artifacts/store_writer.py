"""Writing a feature store: :class:`FeatureStoreWriter` streams samples into a temporary file
beside the target and renames it into place only on a clean close (docs/feature-store.md)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from mea_cli import __version__
from mea_cli.artifacts.store_format import FORMAT, SPLITS, STORE_TASKS, VERSION
from mea_cli.artifacts.store_records import Failure, ModalitySchema, Sample
from mea_cli.paths import atomic_output, disk_full, is_disk_full

_STR = h5py.string_dtype("utf-8")
_CHUNK_ROWS = 4096


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
        if task not in STORE_TASKS:
            raise ValueError(f"task must be one of {STORE_TASKS}, got {task!r}")
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
        """Record a sample or clip that a stage (extract, import, align) could not make, and why."""
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
