"""Step 1 of ``mea extract``: which media files, which of them this shard does, which segments.

:func:`discover` walks the input folder (:func:`~mea_cli.extract.media.find_media`: video
and audio-only files, found by extension or by probing; "video" below means either), gives
every video its id (path relative to the folder, without extension), lists the files that
are not media (by path, for the summary; transcript sidecars excepted), reads ``labels.csv``
and matches its rows to videos, and keeps this shard's share (``--shard i/n``: every n-th
video of the sorted list, starting at the i-th, 1-based). Label problems that are not errors
of the file become failure rows (stage ``labels``), each reported by exactly one shard: a
row naming a missing video (shard 1), a zero-length or inverted segment, and a video that
no row names (the shard owning the video). With labels, a video none of whose rows is usable
is not extracted at all.
"""

from __future__ import annotations

import math
import os
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from mea_cli.errors import MeaError
from mea_cli.extract.labelparse import LabelSpec
from mea_cli.extract.labels import LabelFile, Segment, match_videos, read_labels
from mea_cli.extract.media import find_media
from mea_cli.extract.text import SIDECAR_ORDER, find_sidecar, find_sidecars
from mea_cli.paths import note_input

FailureRow = tuple[str, str, str]  # (video, stage, message)


class ExtractError(MeaError):
    """A problem with the extraction request itself (not with one video)."""


def skipped_by_extension(paths: Iterable[str]) -> str:
    """``"*.md: README.md; *.pdf: a.pdf, b/c.pdf; no extension: NOTES"``: every path, grouped
    by lower-case extension (groups sorted, paths in the order given)."""
    groups: dict[str, list[str]] = defaultdict(list)
    for p in paths:
        ext = PurePosixPath(p).suffix.lower()
        groups[f"*{ext}" if ext else "no extension"].append(p)
    return "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(groups.items()))


def not_media_note(paths: Iterable[str]) -> str:
    """The line that names the files of an input folder that were skipped as not media
    (``mea extract``'s summary, ``mea predict``'s note and stderr line)."""
    return "not media, skipped: " + skipped_by_extension(paths)


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/n"`` (1-based) -> ``(i, n)``; ``None`` -> ``(1, 1)``."""
    if text is None:
        return 1, 1
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ExtractError(f"--shard {text!r}: expected i/n, e.g. 1/4") from None
    if not (n >= 1 and 1 <= i <= n):
        raise ExtractError(f"--shard {text!r}: need 1 <= i <= n")
    return i, n


def video_key(root: Path, path: Path) -> str:
    """Video id: the path relative to the input folder, without extension, '/'-separated."""
    rel = path.relative_to(root) if root.is_dir() else Path(path.name)
    return rel.with_suffix("").as_posix()


@dataclass
class Plan:
    """What this run extracts and how its videos are cut."""

    root: Path
    shard: tuple[int, int]
    found: int  # media files of this shard found in the folder
    videos: list[tuple[str, Path]]  # (key, path) to extract, sorted
    skipped_files: list[str]  # files that are not media, relative to root (shard 1 only)
    labels: LabelFile | None = None
    segments: dict[str, list[Segment]] = field(default_factory=dict)  # usable ones, per key
    failures: list[FailureRow] = field(default_factory=list)

    def without_sidecar(self) -> list[str]:
        """Keys of the videos to extract that have no transcript sidecar (they need ASR)."""
        return [k for k, p in self.videos if find_sidecar(p) is None]

    def spans(self, key: str) -> list[list[float]]:
        """``[start, end)`` seconds of each sample video ``key`` is cut into (without labels:
        the whole video, ``[0, inf)``); the per-sample audio summary is made over each."""
        if self.labels is None:
            return [[0.0, math.inf]]
        return [[seg.start, seg.end] for seg in self.segments.get(key, [])]


def discover(
    source: str | os.PathLike[str],
    labels: str | os.PathLike[str] | None = None,
    spec: LabelSpec | None = None,
    shard: str | None = None,
) -> Plan:
    """Plan one run (module docstring); errors of the request raise :class:`MeaError`."""
    root = Path(source)
    label_file = read_labels(labels, spec) if labels is not None else None
    videos, others = find_media(root)
    for video in videos:  # no output of this command may be one of them, or a transcript
        note_input(video)
        for sidecar in find_sidecars(video):
            note_input(sidecar)
    stems = {v.with_suffix("") for v in videos}
    # transcript sidecars belong to a video; anything else that is not media is listed
    skipped = [
        p.relative_to(root).as_posix()
        for p in others
        if not (p.suffix.lower() in SIDECAR_ORDER and p.with_suffix("") in stems)
    ]
    keys = [video_key(root, v) for v in videos]
    dupes = [k for k, c in Counter(keys).items() if c > 1]
    if dupes:
        clash = [str(v) for v, k in zip(videos, keys, strict=True) if k == dupes[0]]
        raise ExtractError(f"two videos share the id {dupes[0]!r}: {', '.join(clash)}; rename one")
    i, n = parse_shard(shard)
    mine = [(k, v) for j, (k, v) in enumerate(zip(keys, videos, strict=True)) if j % n == i - 1]
    plan = Plan(root, (i, n), len(mine), mine, skipped if i == 1 else [], label_file)
    if label_file is None:
        return plan
    by_key, unmatched = match_videos(label_file, keys)
    name = label_file.path.name
    if i == 1:  # rows naming missing videos are reported by shard 1 only
        plan.failures.extend(
            (seg.video, "labels", f"{name} line {seg.line}: no such video under {root}")
            for seg in unmatched
        )
    plan.videos = []
    for key, path in mine:
        segs = by_key.get(key, [])
        plan.failures.extend((key, "labels", s.problem) for s in segs if s.problem)
        good = [s for s in segs if not s.problem]
        if not segs:
            plan.failures.append((key, "labels", f"no row in {name}: not extracted"))
        if good:
            plan.segments[key] = good
            plan.videos.append((key, path))
    return plan
