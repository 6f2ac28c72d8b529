"""``labels.csv``: which segments of which video carry which label.

Columns (names are case-insensitive; CMU / MMSA names are accepted as aliases):

==========  =====================================  ============================================
column      aliases                                meaning
==========  =====================================  ============================================
``video``   ``video_id``                           the video: relative path with or without
                                                   extension, or its bare file name / stem
                                                   when that is unique
``label``   (``--label-column NAME`` picks another) the label (see :mod:`mea_cli.extract.labelparse`)
``start``   ``start_time``                         segment start, seconds (empty: 0)
``end``     ``end_time``                           segment end, seconds (empty: end of video)
``split``   ``mode`` (MMSA)                        train | valid | test (``val``, ``dev``,
                                                   ``validation`` mean valid; empty: none)
``clip_id`` ``clip``, ``segment_id``               the segment's number within its video
``id``      ``sample_id``                          the sample id
``group``   ``speaker``, ``speaker_id``, ``subject`` what grouped splits keep together (optional;
                                                   ``mea train --split-by``; empty: the video)
==========  =====================================  ============================================

Other columns (MMSA's ``text``, ``label_T``, ``annotation``, ...) are ignored unless named by
``--label-column``. ``start``/``end`` are optional: a file without them labels whole files,
and with a ``clip_id`` column a row names the file ``<video>/<clip_id>`` (MMSA's
``Raw/<video_id>/<clip_id>.mp4``) or ``<video>_<clip_id>`` (CMU's segmented
``<video_id>_<n>.mp4``), whichever exists, else ``<video>``. Sample ids: the ``id`` column,
else ``<video>_<clip_id>``, else ``<video>_<n>`` (n counts the video's rows from 1).

A malformed file (missing columns, a column it reads named twice, a row with more values than
the header has columns, a non-numeric time, an unknown split, labels that do not parse,
duplicate ids, a segment named on two lines: a duplicated row, or leakage when the two
lines put it in different splits) is a :class:`LabelsError` naming the file and the rows. A zero-length
or inverted segment (``end <= start``; real MOSI has one) is not: it becomes one failure-table
row (stage ``labels``) and the other rows go through, as do rows naming a video that is not
in the folder.
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mea_cli.extract.labelparse import LabelsError, LabelSpec, parse_labels, parse_number
from mea_cli.extract.media import MEDIA_EXTENSIONS

ALIASES: dict[str, tuple[str, ...]] = {
    "video": ("video", "video_id"),
    "start": ("start", "start_time"),
    "end": ("end", "end_time"),
    "split": ("split", "mode"),
    "clip": ("clip_id", "clip", "segment_id"),
    "id": ("id", "sample_id"),
    "group": ("group", "speaker", "speaker_id", "subject"),
}
_SPLIT_ALIASES = {
    "train": "train",
    "valid": "valid",
    "val": "valid",
    "dev": "valid",
    "validation": "valid",
    "test": "test",
    "": "",
}
MAX_LISTED = 5


@dataclass(frozen=True)
class Segment:
    """One labelled segment of a video (``problem`` set: a bad segment, reported, not used)."""

    video: str  # as written in the file (with ``/<clip>`` candidates, see ``candidates``)
    start: float
    end: float
    label: np.ndarray  # [K] float32
    split: str
    id: str
    line: int
    candidates: tuple[str, ...] = ()  # file names to look for, in order ((): ``video``)
    problem: str = ""
    group: str = ""  # the group column's cell ("": none given)


@dataclass(frozen=True)
class LabelFile:
    """All segments of a labels file plus the task it implies."""

    path: Path
    task: str
    label_names: tuple[str, ...]
    segments: tuple[Segment, ...]
    value_range: tuple[float, float] | None = None
    group_by: str = ""  # the group column's name as written (``speaker``), "" without one


def _lines(items: list[tuple[int, str]]) -> str:
    shown = "; ".join(f"line {n}: {msg}" for n, msg in items[:MAX_LISTED])
    more = len(items) - MAX_LISTED
    return shown + (f" (and {more} more)" if more > 0 else "")


def _columns(path: Path, header: list[str], label_column: str) -> dict[str, str]:
    """Canonical column -> the header's own name for it."""
    lowered = {h.strip().lower(): h for h in header if h is not None}
    label = label_column.strip().lower()
    read = {n for names in ALIASES.values() for n in names} | {label}
    given = [h.strip().lower() for h in header if h is not None]
    twice = sorted({h for h in given if h in read and given.count(h) > 1})
    if twice:  # the reader would silently take the last of them
        raise LabelsError(path, f"column(s) {', '.join(twice)} appear more than once in the header")
    found: dict[str, str] = {}
    for canon, names in ALIASES.items():
        present = [n for n in names if n in lowered]
        if len(present) > 1:
            raise LabelsError(path, f"columns {' and '.join(present)} both give the {canon}")
        if present:
            found[canon] = lowered[present[0]]
    if label in lowered:
        found["label"] = lowered[label]
    missing = [c for c in ("video", "label") if c not in found]
    if label != "label" and "label" in missing:
        raise LabelsError(path, f"no column {label_column!r} (--label-column)")
    if missing:
        raise LabelsError(
            path,
            f"missing column(s) {', '.join(missing)} (expected video,start,end,label[,split] "
            "or the CMU names video_id,clip_id,label,split,start,end)",
        )
    return found


def _time(value: str, default: float) -> float:
    """A start or end cell: empty means ``default``; anything else a finite number of seconds
    (``NaN`` or ``inf`` is a ValueError, the caller names the row: empty is how a row says
    "the clip's start / end")."""
    value = value.strip()
    if not value:
        return default
    x = parse_number(value)  # the label cells' reading of a number: a Unicode minus, no 1_5
    if x is None:
        raise ValueError(value)
    return x


def _decoded(path: Path) -> str:
    """The file's text (UTF-8, with or without Excel's byte-order mark); another encoding is
    one line saying which line breaks it and how to save the sheet instead."""
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise LabelsError(
            path, "UTF-16 text (Excel's 'Unicode Text'); save the sheet as 'CSV UTF-8'"
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise LabelsError(
            path,
            f"line {line}: not UTF-8 (byte {raw[err.start]:#04x}; Latin-1 or Windows-1252?); "
            "save the sheet as 'CSV UTF-8'",
        ) from None


def _check_delimiter(path: Path, header: list[str]) -> None:
    """A header read as one column that holds ``;`` or a tab: the sheet was saved with another
    delimiter (Excel in a comma-decimal locale writes ``;``), which this reader does not take."""
    if len(header) == 1:
        for mark, name in ((";", "semicolons"), ("\t", "tabs")):
            if mark in header[0]:
                raise LabelsError(
                    path,
                    f"line 1: the header is split by {name}, not commas; save the sheet as "
                    "comma-separated CSV ('CSV UTF-8 (Comma delimited)', '.' as the decimal "
                    "separator)",
                )


def read_labels(path: str | os.PathLike[str], spec: LabelSpec | None = None) -> LabelFile:
    """Parse and validate ``labels.csv`` (see module docstring)."""
    spec = spec or LabelSpec()
    path = Path(path)
    if not path.is_file():
        raise LabelsError(path, "labels file not found")
    text = _decoded(path)
    # line breaks are the file's own (\n, \r\n, \r), never U+2028 or a form feed inside a
    # cell (str.splitlines would break a row there); a space after a comma before a quoted
    # value is not part of it (a hand-written `a, "happy"` is happy, not '"happy"')
    reader = csv.DictReader(io.StringIO(text, newline=""), skipinitialspace=True)
    # the file's own line numbers: the reader skips blank lines, so counting rows would not be
    rows = [(reader.line_num, raw) for raw in reader]
    header = list(reader.fieldnames or [])
    _check_delimiter(path, header)
    if not rows:
        raise LabelsError(path, "no rows (expected a header video,start,end,label[,split])")
    col = _columns(path, header, spec.column)
    timed = "start" in col or "end" in col
    problems: list[tuple[int, str]] = []
    parsed = []
    for n, raw in rows:

        def cell(canon: str, raw: dict = raw) -> str:
            return (raw.get(col[canon]) or "").strip() if canon in col else ""

        extra = [x for x in raw.get(None) or [] if x.strip()]  # cells beyond the header's
        if extra:  # e.g. a decimal comma, 1,5: the label would be read as 1
            problems.append(
                (n, f"{len(header) + len(raw[None])} values but the header names {len(header)} "
                    "columns (quote a value that holds a comma)")
            )
            continue
        video = cell("video")
        if not video:
            problems.append((n, "empty video"))
            continue
        try:
            start = _time(cell("start"), 0.0)
        except ValueError:
            problems.append((n, f"start {cell('start')!r} is not a number of seconds (empty: 0)"))
            continue
        try:
            end = _time(cell("end"), math.inf)
        except ValueError:
            problems.append((n, f"end {cell('end')!r} is not a number of seconds (empty: the clip's end)"))
            continue
        split = cell("split").lower()
        if split not in _SPLIT_ALIASES:
            problems.append((n, f"split {split!r} is not train, valid or test"))
            continue
        parsed.append((n, video, start, end, _SPLIT_ALIASES[split], cell("label"), cell("clip"), cell("id"), cell("group")))
    if problems:
        raise LabelsError(path, _lines(problems))
    _check_repeats(path, parsed)
    labels = parse_labels([(r[0], r[5]) for r in parsed], spec, path)
    counts: dict[str, int] = {}
    ids: dict[str, int] = {}
    segments = []
    for k, (n, video, start, end, split, _, clip, sid, group) in enumerate(parsed):
        stem = Path(video).with_suffix("").as_posix() if Path(video).suffix else video
        counts[video] = counts.get(video, 0) + 1
        if not sid:
            sid = f"{stem}_{clip}" if clip else f"{stem}_{counts[video]}"
        if sid in ids:
            problems.append((n, f"duplicate sample id {sid!r} (also line {ids[sid]})"))
            continue
        ids[sid] = n
        candidates = (f"{stem}/{clip}", f"{stem}_{clip}", video) if clip and not timed else ()
        problem = ""
        if end <= start:
            kind = "zero-length" if end == start else "inverted"
            problem = f"{path.name} line {n}: {kind} segment (start {start:g} s, end {end:g} s)"
        segments.append(
            Segment(video, start, end, labels.values[k], split, sid, n, candidates, problem, group)
        )
    if problems:
        raise LabelsError(path, _lines(problems))
    group_by = col.get("group", "").strip().lower()
    return LabelFile(
        path, labels.task, labels.names, tuple(segments), spec.value_range, group_by
    )


def _check_repeats(path: Path, parsed: list[tuple]) -> None:
    """A segment (video, clip, start, end) named on two lines is refused with both lines: in
    one split it is a duplicated row (counted twice in training or in the metrics), in two
    splits it is leakage (the test set would hold a training sample)."""
    first: dict[tuple[str, str, float, float], tuple[int, str]] = {}
    repeats: list[tuple[int, str]] = []
    leaks: list[tuple[int, str]] = []
    for n, video, start, end, split, _, clip, *_ in parsed:
        key = (_strip_ext(video.replace("\\", "/")).strip("/"), clip, start, end)
        if key not in first:
            first[key] = (n, split)
            continue
        m, other = first[key]
        if other == split:
            repeats.append((n, f"repeats the segment of line {m}"))
        else:
            leaks.append(
                (n, f"the segment of line {m} is in {other or 'no split'} and here in "
                    f"{split or 'no split'} (a sample in two splits leaks)")
            )
    if leaks:
        raise LabelsError(path, _lines(leaks))
    if repeats:
        raise LabelsError(path, "duplicated rows: " + _lines(repeats))


def _strip_ext(name: str) -> str:
    return str(Path(name).with_suffix("")) if Path(name).suffix.lower() in MEDIA_EXTENSIONS else name


def match_videos(
    label_file: LabelFile, keys: list[str]
) -> tuple[dict[str, list[Segment]], list[Segment]]:
    """Assign segments to video keys (relative paths without extension).

    Returns ``(segments per key, segments naming no video)``; ambiguous bare names are a
    :class:`LabelsError`. Bad segments (``problem`` set) are assigned like the others.
    """
    exact = {k: k for k in keys}
    by_stem: dict[str, list[str]] = {}
    for k in keys:
        by_stem.setdefault(Path(k).name, []).append(k)

    def find(name: str, line: int) -> str | None:
        stripped = _strip_ext(name.replace("\\", "/")).strip("/")
        if stripped in exact:
            return stripped
        if "/" in stripped:  # a relative path: it may sit one or more folders deeper
            cands = [k for k in keys if k.endswith("/" + stripped)]
        else:
            cands = by_stem.get(stripped, [])
        if len(cands) > 1:
            raise LabelsError(
                label_file.path,
                f"line {line}: video {name!r} is ambiguous ({', '.join(cands)}); "
                "use the relative path",
            )
        return cands[0] if cands else None

    out: dict[str, list[Segment]] = {}
    unmatched: list[Segment] = []
    for seg in label_file.segments:
        key = None
        for name in seg.candidates or (seg.video,):
            key = find(name, seg.line)
            if key is not None:
                break
        if key is None:
            unmatched.append(seg)
        else:
            out.setdefault(key, []).append(seg)
    return out, unmatched
