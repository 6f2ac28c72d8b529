"""``labels.csv``: which segments of which video carry which label (MOSI style).

Columns ``video,start,end,label`` and optionally ``split`` (train | valid | test; ``val`` and
``dev`` mean valid) and ``id`` (sample id; default ``<video>_<n>``, n counting that video's
rows from 1 in file order). ``video`` names a video by its path relative to the input folder,
with or without extension, or by its bare file name / stem when that is unique. ``start`` and
``end`` are seconds; an empty ``start``/``end`` means the start/end of the video.

Labels are numbers (task ``regression``, label name ``sentiment``) or emotion names (task
``binary-multilabel``: one binary label per emotion, IEMOCAP's order ``happy, sad, angry,
neutral`` when the names are among those, else sorted; ``a;b`` marks several). A malformed
file is a :class:`LabelsError` naming the file and line; a row naming a video that is not in
the folder becomes a failure-table row (stage ``labels``) and the others go through.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mea_cli.errors import MeaError
from mea_cli.extract.media import VIDEO_EXTENSIONS

IEMOCAP_ORDER: tuple[str, ...] = ("happy", "sad", "angry", "neutral")
_SPLIT_ALIASES = {
    "train": "train",
    "valid": "valid",
    "val": "valid",
    "dev": "valid",
    "test": "test",
    "": "",
}


class LabelsError(MeaError):
    """A labels file that cannot be read."""

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True)
class Segment:
    """One labelled segment of a video."""

    video: str  # as written in the file
    start: float
    end: float
    label: np.ndarray  # [K] float32
    split: str
    id: str
    line: int


@dataclass(frozen=True)
class LabelFile:
    """All segments of a labels file plus the task it implies."""

    path: Path
    task: str
    label_names: tuple[str, ...]
    segments: tuple[Segment, ...]


def _float(value: str, path: Path, line: int, col: str, default: float) -> float:
    value = value.strip()
    if not value:
        return default
    try:
        x = float(value)
    except ValueError:
        raise LabelsError(path, f"line {line}: {col} {value!r} is not a number") from None
    if math.isnan(x):
        return default
    return x


def read_labels(path: str | os.PathLike[str]) -> LabelFile:
    """Parse and validate ``labels.csv`` (see module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise LabelsError(path, "labels file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise LabelsError(path, f"not UTF-8 (byte offset {err.start})") from None
    rows = list(csv.DictReader(text.splitlines()))
    if not rows:
        raise LabelsError(path, "no rows (expected a header video,start,end,label[,split])")
    header = {h.strip() for h in rows[0] if h is not None}
    missing = {"video", "start", "end", "label"} - header
    if missing:
        raise LabelsError(path, f"missing column(s) {', '.join(sorted(missing))}")
    raw = []
    for n, row in enumerate(rows, 2):
        row = {(k or "").strip(): (v or "") for k, v in row.items()}
        video = row["video"].strip()
        if not video:
            raise LabelsError(path, f"line {n}: empty video")
        start = _float(row["start"], path, n, "start", 0.0)
        end = _float(row["end"], path, n, "end", math.inf)
        if end <= start:
            raise LabelsError(path, f"line {n}: end {end} is not after start {start}")
        split = row.get("split", "").strip().lower()
        if split not in _SPLIT_ALIASES:
            raise LabelsError(path, f"line {n}: split {split!r} is not train, valid or test")
        label = row["label"].strip()
        if not label:
            raise LabelsError(path, f"line {n}: empty label")
        raw.append((n, video, start, end, _SPLIT_ALIASES[split], label, row.get("id", "").strip()))
    numeric = True
    for *_, label, _ in raw:
        try:
            float(label)
        except ValueError:
            numeric = False
            break
    if numeric:
        task, names = "regression", ("sentiment",)
    else:
        task = "binary-multilabel"
        found = sorted(
            {x.strip().lower() for *_, lab, _ in raw for x in lab.split(";") if x.strip()}
        )
        names = IEMOCAP_ORDER if set(found) <= set(IEMOCAP_ORDER) else tuple(found)
    counts: dict[str, int] = {}
    segments = []
    ids: set[str] = set()
    for n, video, start, end, split, label, sid in raw:
        if numeric:
            y = np.array([float(label)], np.float32)
        else:
            y = np.zeros(len(names), np.float32)
            for x in label.split(";"):
                if x.strip():
                    y[names.index(x.strip().lower())] = 1.0
        counts[video] = counts.get(video, 0) + 1
        sid = (
            sid
            or f"{Path(video).with_suffix('').as_posix() if Path(video).suffix else video}_{counts[video]}"
        )
        if sid in ids:
            raise LabelsError(path, f"line {n}: duplicate sample id {sid!r}")
        ids.add(sid)
        segments.append(Segment(video, start, end, y, split, sid, n))
    return LabelFile(path, task, tuple(names), tuple(segments))


def match_videos(
    label_file: LabelFile, keys: list[str]
) -> tuple[dict[str, list[Segment]], list[Segment]]:
    """Assign segments to video keys (relative paths without extension).

    Returns ``(segments per key, segments naming no video)``; ambiguous bare names are a
    :class:`LabelsError`.
    """
    exact = {k: k for k in keys}
    by_stem: dict[str, list[str]] = {}
    for k in keys:
        by_stem.setdefault(Path(k).name, []).append(k)
    out: dict[str, list[Segment]] = {}
    unmatched: list[Segment] = []
    for seg in label_file.segments:
        name = seg.video.replace("\\", "/")
        stripped = (
            str(Path(name).with_suffix(""))
            if Path(name).suffix.lower() in VIDEO_EXTENSIONS
            else name
        )
        key = exact.get(stripped)
        if key is None:
            cands = by_stem.get(Path(stripped).name, [])
            if len(cands) > 1:
                raise LabelsError(
                    label_file.path,
                    f"line {seg.line}: video {seg.video!r} is ambiguous ({', '.join(cands)}); "
                    "use the relative path",
                )
            key = cands[0] if cands else None
        if key is None:
            unmatched.append(seg)
        else:
            out.setdefault(key, []).append(seg)
    return out, unmatched
