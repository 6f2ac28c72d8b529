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

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

import h5py
import numpy as np

from mea_cli.artifacts.store_checks import (
    MODALITY_CHECKS,
    ROOT_CHECKS,
    SAMPLE_CHECKS,
    Columns,
    ModalityGroup,
    modality_names,
    offsets_dtype_problem,
    real_problem,
    root_label_names,
    root_version,
)
from mea_cli.artifacts.store_format import RESERVED_ATTRS, decode_strings
from mea_cli.artifacts.store_records import (
    ExtractorInfo,
    Failure,
    ModalitySchema,
    Sample,
    SampleTable,
    StoreMeta,
    Word,
)
from mea_cli.artifacts.store_writer import FeatureStoreWriter
from mea_cli.errors import FeatureStoreError

__all__ = [
    "ExtractorInfo",
    "Failure",
    "FeatureStore",
    "FeatureStoreWriter",
    "ModalitySchema",
    "Sample",
    "SampleTable",
    "StoreMeta",
    "Word",
    "check_store",
]

_SCAN_ROWS = 1 << 16  # rows per read when a modality is scanned on open (times, finiteness)


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
        for root_check in ROOT_CHECKS:
            self._require(root_check(f))
        self.version = int(root_version(f))
        label_names = root_label_names(f)
        columns = Columns(f["samples"], label_names)
        self.meta = StoreMeta(
            dataset=str(f.attrs.get("dataset", "")),
            task=str(f.attrs.get("task", "")),
            label_names=label_names,
            created=str(f.attrs.get("created", "")),
            mea_cli_version=str(f.attrs.get("mea_cli_version", "")),
            attrs={k: v for k, v in f.attrs.items() if k not in RESERVED_ATTRS},
        )
        for sample_check in SAMPLE_CHECKS:
            self._require(sample_check(columns))
        s = columns.group
        self.samples = SampleTable(
            id=columns.ids,
            video=decode_strings(s["video"][:]),
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
        """Each modality group through :data:`MODALITY_CHECKS`; its schema and offsets kept."""
        self.modalities: dict[str, ModalitySchema] = {}
        self._offsets: dict[str, np.ndarray] = {}
        names = modality_names(self._file)
        if not names:
            self._fail("no modality groups")
        for name in names:
            m = ModalityGroup(name, self._file[name], n)
            for check in MODALITY_CHECKS:
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
        self._require(offsets_dtype_problem("/words/offsets", g["offsets"]))
        self._require(real_problem("/words/times", g["times"], floats_only=True))
        self._word_offsets = offsets.astype(np.int64)
        self._word_sources = decode_strings(g["source"][:])

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
            self._require(real_problem(f"/summary/{name}", d, floats_only=True))
            self.summaries[name] = ModalitySchema(name, names, extractor)

    # -- access ----------------------------------------------------------------------------
    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HDF5 file (the ``with`` block does it)."""
        self._file.close()

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def name(self) -> str:
        """The file's path as given (or the stream's name), as error messages show it."""
        return self._name

    def index_of(self, sample_id: str) -> int:
        """The row of the sample whose id is ``sample_id`` (``KeyError`` when there is none)."""
        return self._index[sample_id]

    def lengths(self, modality: str) -> np.ndarray:
        """Sequence length of every sample in ``modality``."""
        return np.diff(self._offsets[modality])

    def sequence(self, i: int, modality: str) -> np.ndarray:
        """Sample ``i``'s ``[T, D]`` sequence of ``modality`` (reads only its rows)."""
        a, b = self._offsets[modality][i : i + 2]
        return self._file[modality]["data"][a:b]

    def times(self, i: int, modality: str) -> np.ndarray:
        """Sample ``i``'s ``[T, 2]`` step start/end seconds in ``modality`` (NaN: unknown)."""
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
        text = decode_strings(g["text"][a:b])
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
        """The failure rows: each sample or clip a stage (extract, import, align) could not make,
        and why."""
        if "failures" not in self._file:
            return []
        g = self._file["failures"]
        cols = [decode_strings(g[k][:]) for k in ("video", "stage", "message")]
        return [Failure(str(v), str(s), str(m)) for v, s, m in zip(*cols, strict=True)]

    def split_indices(self, split: str) -> np.ndarray:
        """The rows of the samples in ``split`` (``""``: the unlabelled ones), in store order."""
        return np.flatnonzero(self.samples.split == split)

