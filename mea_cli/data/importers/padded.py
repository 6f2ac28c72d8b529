"""Reading the two padded-pickle layouts (MulT and MMSA): splits, arrays, ids, checks.

Both hold ``{split: {key: array}}`` with fixed-length zero-padded ``[N, T, D]`` feature arrays;
they differ in label keys, id format and how real lengths are known (see ``mult.py`` and
``mmsa.py``). Everything here raises :class:`ImportFormatError` naming the file and the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mea_cli import MODALITIES
from mea_cli.artifacts.store_format import LABELLED_SPLITS
from mea_cli.data.importers.errors import ImportFormatError, as_text

SPLIT_ALIASES = {"train": ("train",), "valid": ("valid", "dev", "val"), "test": ("test",)}


def get_splits(path: Path, data: Any, fmt: str) -> dict[str, Mapping[str, Any]]:
    """The three splits of a padded pickle, or one clear error."""
    if not isinstance(data, Mapping):
        raise ImportFormatError(
            path,
            f"not a {fmt} pickle: the top level is a {type(data).__name__}, expected a dict "
            f"of splits {', '.join(LABELLED_SPLITS)}",
        )
    keys = [str(k) for k in data]
    out: dict[str, Mapping[str, Any]] = {}
    for split in LABELLED_SPLITS:
        found = [a for a in SPLIT_ALIASES[split] if a in data]
        if not found:
            if any(m in data for m in MODALITIES):
                raise ImportFormatError(
                    path,
                    f"not a {fmt} pickle: the top level holds {', '.join(keys[:8])} instead of "
                    f"the splits {', '.join(LABELLED_SPLITS)}",
                )
            raise ImportFormatError(
                path,
                f"split {split!r} is missing (the pickle has: {', '.join(keys[:8]) or 'nothing'})",
            )
        part = data[found[0]]
        if not isinstance(part, Mapping):
            raise ImportFormatError(
                path, f"split {split!r} is a {type(part).__name__}, expected a dict of arrays"
            )
        out[split] = part
    return out


def feature_array(path: Path, part: Mapping[str, Any], split: str, key: str) -> np.ndarray:
    """``part[key]`` as a ``[N, T, D]`` float array."""
    if key not in part:
        raise ImportFormatError(
            path, f"split {split!r} has no {key!r} array (keys: {', '.join(map(str, part))})"
        )
    try:
        x = np.asarray(part[key], dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise ImportFormatError(path, f"{split}/{key} is not a numeric array: {err}") from None
    if x.ndim != 3:
        raise ImportFormatError(
            path, f"{split}/{key} has shape {x.shape}, expected [N, T, D] (zero-padded sequences)"
        )
    return x


def check_counts(path: Path, split: str, arrays: Mapping[str, np.ndarray]) -> int:
    """All arrays of a split describe the same N samples."""
    counts = {k: len(v) for k, v in arrays.items()}
    if len(set(counts.values())) != 1:
        shown = ", ".join(f"{k} {n}" for k, n in counts.items())
        raise ImportFormatError(
            path, f"split {split!r} arrays disagree on the sample count: {shown}"
        )
    return next(iter(counts.values()))


def check_dims(path: Path, dims: dict[str, int], split: str, modality: str, x: np.ndarray) -> None:
    """Record ``modality``'s feature width from its first split in ``dims`` and refuse a split
    whose width differs (one model cannot read both)."""
    d = int(x.shape[2])
    if dims.setdefault(modality, d) != d:
        raise ImportFormatError(
            path, f"{split}/{modality} has {d} features but another split has {dims[modality]}"
        )


def id_rows(path: Path, part: Mapping[str, Any], split: str, n: int) -> list[list[str]] | None:
    """The split's ``id`` entries as lists of strings (one list per sample), or None."""
    if "id" not in part:
        return None
    raw = part["id"]
    rows = list(raw) if not isinstance(raw, np.ndarray) or raw.ndim > 0 else []
    if len(rows) != n:
        raise ImportFormatError(path, f"{split}/id has {len(rows)} entries for {n} samples")
    out = []
    for r in rows:
        if isinstance(r, (np.ndarray, list, tuple)) and not isinstance(r, (str, bytes)):
            out.append([as_text(v) for v in np.asarray(r, dtype=object).reshape(-1)])
        else:
            out.append([as_text(r)])
    return out


def check_no_leak(path: Path, ids: list[str], splits: list[str]) -> None:
    """Refuse a sample id found in two splits (``split/index`` of both named): the same
    segment in train and test would leak the test set into training. Repeats within one split
    are left to :func:`unique` (the public releases repeat a few ids; they are counted)."""
    first: dict[str, tuple[str, int]] = {}
    index = dict.fromkeys(set(splits), 0)
    for sid, split in zip(ids, splits, strict=True):
        i = index[split]
        index[split] += 1
        seen = first.setdefault(sid, (split, i))
        if seen[0] != split:
            raise ImportFormatError(
                path,
                f"sample {sid!r} is in two splits ({seen[0]}[{seen[1]}] and {split}[{i}]): "
                "the same segment in two splits leaks",
            )


def unique(ids: list[str]) -> tuple[list[str], int]:
    """Make ids unique by suffixing ``#2``, ``#3`` to repeats; also return how many were renamed."""
    taken = set(ids)
    seen: set[str] = set()
    out, renamed = [], 0
    for x in ids:
        if x in seen:
            k = 2
            while f"{x}#{k}" in taken:
                k += 1
            x = f"{x}#{k}"
            taken.add(x)
            renamed += 1
        seen.add(x)
        out.append(x)
    return out, renamed


def to_float(text: str) -> float:
    """A segment bound written as text; NaN (unknown, as the store writes it) when it is not a
    number."""
    try:
        return float(text)
    except ValueError:
        return float("nan")
