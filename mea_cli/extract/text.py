"""Words with timings: transcript sidecars, else ASR, else nothing (and a failure row).

A sidecar shares the video's stem (``clip.mp4`` -> ``clip.json``). When several exist the one
with the finest timing wins: ``.json`` > ``.align`` > ``.srt`` > ``.vtt`` > ``.txt``.

* ``.json``: ``[{"word": "hi", "start": 0.5, "end": 0.8}, ...]`` or ``{"words": [...]}``
  (seconds).
* ``.align`` (GRID corpus): ``start end word`` per line, times are 25 fps frame index x 1000
  (seconds = value / 25000); ``sil`` and ``sp`` are silence and are dropped.
* ``.srt`` / ``.vtt``: cue text is spread over the cue's span, each word's share proportional
  to its length in characters plus one.
* ``.txt``: no timings at all, so the words are spread the same way over the *voiced
  stretches* of the audio found by a voice-activity detector (:mod:`mea_cli.extract.vad`);
  over the whole video when it has no audio.

Without a sidecar, Whisper transcribes the audio (:mod:`mea_cli.extract.asr`); which source
is used is decided by :mod:`mea_cli.extract.words`. Sidecars must be UTF-8 (a BOM is
accepted); anything else is a failure row naming the file and byte offset.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from mea_cli.artifacts.features import Word
from mea_cli.extract.vad import Stretch, spread, spread_over_stretches

SIDECAR_ORDER: tuple[str, ...] = (".json", ".align", ".srt", ".vtt", ".txt")
GRID_UNITS_PER_SECOND = 25_000.0  # GRID .align: 25 fps frame index x 1000
GRID_SILENCE = frozenset({"sil", "sp"})


class TranscriptError(ValueError):
    """A sidecar transcript that cannot be read (the driver records it as a failure row)."""


def find_sidecar(video: Path) -> Path | None:
    """The transcript next to ``video`` with the same stem, by :data:`SIDECAR_ORDER`."""
    for ext in SIDECAR_ORDER:
        for cand in (video.with_suffix(ext), video.with_suffix(ext.upper())):
            if cand.is_file():
                return cand
    return None


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise TranscriptError(
            f"{path.name}: not UTF-8 (byte 0x{raw[err.start]:02x} at offset {err.start}); "
            "re-save it as UTF-8"
        ) from None


def _parse_json(path: Path, text: str) -> list[Word]:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        raise TranscriptError(f"{path.name}: invalid JSON ({err})") from None
    items = raw.get("words") if isinstance(raw, dict) else raw
    if not isinstance(items, list):
        raise TranscriptError(f"{path.name}: expected a list of {{word, start, end}} objects")
    out = []
    for k, it in enumerate(items):
        try:
            word, start, end = it["word"], float(it["start"]), float(it["end"])
            if not isinstance(word, str):
                raise TypeError(word)  # null would become the word "None"
        except (KeyError, TypeError, ValueError):
            raise TranscriptError(
                f"{path.name}: item {k} is not an object with word, start and end (seconds)"
            ) from None
        out.append(_timed(path, f"item {k}", word, start, end))
    return out


def _timed(path: Path, where: str, word: str, start: float, end: float) -> Word:
    """``word`` with its times checked. A step that ends before it starts makes every reader
    refuse the whole store, and a NaN or infinite time places the word nowhere (``mea align``
    drops it), so such a word is a failure row for its clip, not a store nothing can open."""
    if not (math.isfinite(start) and math.isfinite(end)):
        raise TranscriptError(
            f"{path.name}: {where} ({word!r}) has a time that is not a finite number "
            f"(start {start}, end {end})"
        )
    if end < start:
        raise TranscriptError(
            f"{path.name}: {where} ({word!r}) ends before it starts (start {start:g} s, "
            f"end {end:g} s)"
        )
    return Word(word, start, end)


def _parse_align(path: Path, text: str) -> list[Word]:
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 3:
            raise TranscriptError(f"{path.name}: line {n} is not 'start end word'")
        try:
            a, b = float(parts[0]), float(parts[1])
        except ValueError:
            raise TranscriptError(f"{path.name}: line {n} has non-numeric times") from None
        word = " ".join(parts[2:])
        if word.lower() in GRID_SILENCE:
            continue
        a, b = a / GRID_UNITS_PER_SECOND, b / GRID_UNITS_PER_SECOND
        out.append(_timed(path, f"line {n}", word, a, b))
    return out


_CUE = re.compile(
    r"(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{1,3})\s*-->\s*(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{1,3})"
)
_TAG = re.compile(r"<[^>]*>|\{[^}]*\}")


def _secs(h: str | None, m: str, s: str, ms: str) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(ms.ljust(3, "0")) / 1000.0


def _parse_cues(path: Path, text: str) -> list[Word]:
    out: list[Word] = []
    cue: tuple[float, float] | None = None
    lines: list[str] = []

    def flush() -> None:
        if cue is not None and lines:
            out.extend(spread(_TAG.sub("", " ".join(lines)), *cue))

    for line in text.splitlines():
        m = _CUE.search(line)
        if m:
            flush()
            g = m.groups()
            cue = (_secs(*g[:4]), _secs(*g[4:]))
            lines = []
        elif not line.strip():
            flush()
            cue, lines = None, []
        elif cue is not None:
            lines.append(line.strip())
    flush()
    if not out and text.strip() and not _CUE.search(text):
        raise TranscriptError(f"{path.name}: no subtitle cues ('00:00:01,000 --> 00:00:02,000')")
    return out


def read_sidecar(path: Path, stretches: Callable[[], Sequence[Stretch]]) -> list[Word]:
    """Words of a sidecar transcript; a ``.txt`` is spread over ``stretches()`` (the voiced
    stretches of the audio, asked for only when the sidecar is a ``.txt``)."""
    text = _read_text(path)
    ext = path.suffix.lower()
    if ext == ".json":
        words = _parse_json(path, text)
    elif ext == ".align":
        words = _parse_align(path, text)
    elif ext in (".srt", ".vtt"):
        words = _parse_cues(path, text)
    else:
        words = spread_over_stretches(" ".join(text.split()), stretches())
    return sorted(words, key=lambda w: (w.start, w.end))
