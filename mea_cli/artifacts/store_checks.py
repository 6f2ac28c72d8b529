"""The invariants a feature store is checked for on open (docs/feature-store.md).

Each check returns the broken invariant in words, or None. The tables :data:`ROOT_CHECKS`,
:data:`SAMPLE_CHECKS` and :data:`MODALITY_CHECKS` run them in order and
:class:`~mea_cli.artifacts.features.FeatureStore` raises the first problem, naming the file.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

import h5py
import numpy as np

from mea_cli import MODALITIES
from mea_cli.artifacts.store_format import (
    FORMAT,
    READABLE_VERSIONS,
    SPLITS,
    STORE_TASKS,
    decode_strings,
)
from mea_cli.artifacts.store_records import ExtractorInfo, ModalitySchema


def real_problem(where: str, ds: h5py.Dataset, floats_only: bool = False) -> str | None:
    """A numeric dataset must hold real numbers: not strings, complex numbers or objects
    (which would fail, or silently drop an imaginary part, only once training reads them)."""
    kind = ds.dtype.kind
    if kind in ("f" if floats_only else "fiu"):
        return None
    wanted = "floating-point" if floats_only else "real numeric"
    held = {"O": "strings or objects", "S": "strings", "U": "strings", "c": "complex numbers"}
    what = f" ({held[kind]})" if kind in held else ""
    return f"{where} has dtype {ds.dtype}{what}, expected {wanted} values"


def offsets_dtype_problem(where: str, ds: h5py.Dataset) -> str | None:
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
    if fmt is None:  # an HDF5 file of another program (a CMU .csd, a Keras model, ...)
        return f"not a mea-cli feature store (an HDF5 file without the {FORMAT!r} format attribute)"
    return None if fmt == FORMAT else f"attribute 'format' is {fmt!r}, expected {FORMAT!r}"


def root_version(f: h5py.File) -> Any:
    """The root ``version`` attribute as a Python value (h5py hands back numpy scalars)."""
    version = f.attrs.get("version")
    return version.item() if isinstance(version, np.generic) else version


def _version_problem(f: h5py.File) -> str | None:
    shown = root_version(f)
    if isinstance(shown, int) and not isinstance(shown, bool) and shown in READABLE_VERSIONS:
        return None
    readable = ", ".join(str(v) for v in READABLE_VERSIONS)
    return f"format version {shown!r} is not supported (this mea-cli reads {readable})"


def root_label_names(f: h5py.File) -> tuple[str, ...]:
    """The root ``label_names`` attribute (a JSON list; absent: no labels)."""
    return tuple(json.loads(f.attrs.get("label_names", "[]")))


def _label_names_problem(f: h5py.File) -> str | None:
    try:
        root_label_names(f)
    except json.JSONDecodeError:
        return "attribute 'label_names' is not a JSON list"
    return None


def _task_problem(f: h5py.File) -> str | None:
    task = str(f.attrs.get("task", ""))
    return None if task in STORE_TASKS else f"attribute 'task' is {task!r}, expected one of {STORE_TASKS}"


def _samples_group_problem(f: h5py.File) -> str | None:
    return None if "samples" in f else "missing group /samples"


ROOT_CHECKS = (
    _format_problem,
    _version_problem,
    _label_names_problem,
    _task_problem,
    _samples_group_problem,
)


class Columns:
    """``/samples`` as the open checks read it: each column decoded once, when first needed."""

    def __init__(self, group: h5py.Group, label_names: tuple[str, ...]) -> None:
        self.group, self.k = group, len(label_names)

    @functools.cached_property
    def n(self) -> int:
        return self.group["id"].shape[0]

    @functools.cached_property
    def ids(self) -> np.ndarray:
        return decode_strings(self.group["id"][:])

    @functools.cached_property
    def split(self) -> np.ndarray:
        return decode_strings(self.group["split"][:])

    @functools.cached_property
    def label(self) -> np.ndarray:
        """Always ``[N, K]`` (a one-label store keeps ``[N]`` on disk)."""
        return (
            self.group["label"][:].astype(np.float32).reshape(self.n, max(self.k, 1))[:, : self.k]
        )

    @functools.cached_property
    def sample_group(self) -> np.ndarray | None:
        return decode_strings(self.group["group"][:]) if "group" in self.group else None


def _columns_missing(c: Columns) -> str | None:
    return _missing("/samples", c.group, ("id", "video", "start", "end", "split", "label"))


def _column_shapes(c: Columns) -> str | None:
    for key in ("video", "start", "end", "split"):
        if c.group[key].shape != (c.n,):
            return f"/samples/{key} has shape {c.group[key].shape}, expected ({c.n},)"
    return None


def _label_shape(c: Columns) -> str | None:
    expected = (c.n,) if c.k <= 1 else (c.n, c.k)
    shape = c.group["label"].shape
    if shape == expected:
        return None
    return f"/samples/label has shape {shape}, expected {expected} for {c.k} label name(s)"


def _unique_ids(c: Columns) -> str | None:
    if len(set(c.ids)) == c.n:
        return None
    seen: set[str] = set()
    dup = next(x for x in c.ids if x in seen or seen.add(x))
    return f"sample ids are not unique (e.g. {dup!r})"


def _split_values(c: Columns) -> str | None:
    bad = sorted(set(c.split) - set(SPLITS))
    return f"/samples/split has values {bad}, allowed: train, valid, test or empty" if bad else None


def _real_columns(c: Columns) -> str | None:
    problems = (real_problem(f"/samples/{key}", c.group[key]) for key in ("start", "end", "label"))
    return next((p for p in problems if p), None)


def _finite_labels(c: Columns) -> str | None:
    if not np.isinf(c.label).any():
        return None
    row = int(np.flatnonzero(np.isinf(c.label).any(axis=1))[0])
    return f"sample {c.ids[row]!r} has an infinite label (NaN marks a missing one)"


def _ordered_bounds(c: Columns) -> str | None:
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


def _group_shape(c: Columns) -> str | None:
    if "group" not in c.group or c.group["group"].shape == (c.n,):
        return None
    return f"/samples/group has shape {c.group['group'].shape}, expected ({c.n},)"


SAMPLE_CHECKS = (
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


class ModalityGroup:
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


def _modality_missing(m: ModalityGroup) -> str | None:
    return _missing(f"/{m.name}", m.group, ("data", "offsets", "times"))


def _modality_attrs(m: ModalityGroup) -> str | None:
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


def _data_shape(m: ModalityGroup) -> str | None:
    shape = m.data.shape
    if m.data.ndim == 2 and shape[1] == m.width:
        return None
    return f"/{m.name}/data has shape {shape} but {m.width} feature_names"


def _offsets_shape(m: ModalityGroup) -> str | None:
    if m.offsets.shape == (m.n + 1,):
        return None
    return f"/{m.name}/offsets has shape {m.offsets.shape}, expected ({m.n + 1},)"


def _offsets_start(m: ModalityGroup) -> str | None:
    return None if m.offsets[0] == 0 else f"/{m.name}/offsets does not start at 0"


def _offsets_monotone(m: ModalityGroup) -> str | None:
    if not np.any(np.diff(m.offsets) < 0):
        return None
    return f"/{m.name}/offsets is not monotone (non-decreasing)"


def _offsets_end(m: ModalityGroup) -> str | None:
    rows = m.data.shape[0]
    if m.offsets[-1] == rows:
        return None
    return f"/{m.name}/offsets ends at {m.offsets[-1]} but /{m.name}/data has {rows} rows"


def _times_shape(m: ModalityGroup) -> str | None:
    shape, rows = m.group["times"].shape, m.data.shape[0]
    return (
        None if shape == (rows, 2) else f"/{m.name}/times has shape {shape}, expected ({rows}, 2)"
    )


def _observed_shape(m: ModalityGroup) -> str | None:
    """The optional ``observed`` mask: one boolean per step."""
    if "observed" not in m.group:
        return None
    obs, rows = m.group["observed"], m.data.shape[0]
    if obs.shape != (rows,):
        return f"/{m.name}/observed has shape {obs.shape}, expected ({rows},) (one per step)"
    if obs.dtype != np.bool_:
        return f"/{m.name}/observed must be boolean, not {obs.dtype}"
    return None


def _modality_dtypes(m: ModalityGroup) -> str | None:
    g = m.group
    return (
        offsets_dtype_problem(f"/{m.name}/offsets", g["offsets"])
        or real_problem(f"/{m.name}/data", g["data"])
        or real_problem(f"/{m.name}/times", g["times"], floats_only=True)
    )


MODALITY_CHECKS = (
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


def modality_names(f: h5py.File) -> list[str]:
    """The modality groups in the canonical order (text, vision, audio), others after by name."""
    return sorted(
        (name for name in f if name not in ("samples", "failures", "words", "summary")),
        key=lambda m: (MODALITIES.index(m) if m in MODALITIES else len(MODALITIES), m),
    )

