"""Words with timings: transcript sidecars, else ASR, else nothing (and a failure row).

A sidecar shares the video's stem (``clip.mp4`` -> ``clip.json``; the suffix in any case,
``clip.Txt`` too). When several exist the one with the finest timing wins: ``.json`` >
``.align`` > ``.srt`` > ``.vtt`` > ``.txt``. When that one cannot be read, its failure row names
the others, which are not read in its place (:mod:`mea_cli.extract.words`): a ``clip.json``
that is a download's metadata no longer hides a ``clip.srt`` without a word.

* ``.json``: ``[{"word": "hi", "start": 0.5, "end": 0.8}, ...]`` or ``{"words": [...]}``
  (seconds).
* ``.align`` (GRID corpus): ``start end word`` per line, times are 25 fps frame index x 1000
  (seconds = value / 25000); ``sil`` and ``sp`` are silence and are dropped.
* ``.srt`` / ``.vtt``: cue text (tags stripped, then HTML entities such as ``&amp;`` decoded)
  is spread over the cue's span, each word's share proportional to its length in characters
  plus one. A cue that ends before it starts is refused like such a JSON word.
* ``.txt``: no timings at all, so the words are spread the same way over the *voiced
  stretches* of the audio found by a voice-activity detector (:mod:`mea_cli.extract.vad`);
  over the whole video when it has no audio. More than :data:`TXT_MAX_WORDS_PER_S` words per
  second of the clip is no speech (:func:`too_many_words`): a failure row, the words kept.

A sidecar's times are checked against the clip (:func:`fit_to_clip`): a word wholly outside
it is left out and a word running past either end is cut to it, each with a failure row; a
transcript whose every word lies outside the clip (another video's, or the uncut recording's)
gives no words and a failure row naming the file and both spans.

Without a sidecar, Whisper transcribes the audio (:mod:`mea_cli.extract.asr`); which source
is used is decided by :mod:`mea_cli.extract.words`. Sidecars must be UTF-8 (a BOM is
accepted); anything else is a failure row naming the file, and the line and byte (UTF-16
named as such).
"""

from __future__ import annotations

import html
import json
import math
import os
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

from mea_cli.artifacts.features import Word
from mea_cli.extract.vad import Stretch, spread, spread_over_stretches

SIDECAR_ORDER: tuple[str, ...] = (".json", ".align", ".srt", ".vtt", ".txt")
GRID_UNITS_PER_SECOND = 25_000.0  # GRID .align: 25 fps frame index x 1000
GRID_SILENCE = frozenset({"sil", "sp"})
SIDECAR_TIMES = "fitted to the clip: words outside it left out, words past its ends cut"
SIDECAR_READING = "suffix in any case; cues: HTML entities decoded, a cue ending before it starts refused"
"""How sidecars are found and read (recorded in the text provenance, ``words``)."""
TXT_MAX_WORDS_PER_S = 8.0
"""A ``.txt`` with more words per second of its clip is not the clip's speech (a failure row).
Conversational English runs at 2-4 words per second and fast speech (auctioneers, rap) at 6-7;
8 per second over the whole clip, pauses included, is more than anyone says."""


class TranscriptError(ValueError):
    """A sidecar transcript that cannot be read (the driver records it as a failure row)."""


@lru_cache(maxsize=8)
def _names(folder: str, mtime_ns: int) -> dict[str, list[str]]:
    """Lower-cased name -> the names of a folder's entries (cached while its mtime holds)."""
    out: dict[str, list[str]] = {}
    for name in os.listdir(folder):
        out.setdefault(name.lower(), []).append(name)
    return out


def _any_case(video: Path, ext: str) -> Path | None:
    """``video``'s sidecar of suffix ``ext`` in mixed case (``clip.Txt``); the stem as is."""
    try:
        names = _names(str(video.parent), video.parent.stat().st_mtime_ns)
    except OSError:
        return None
    for name in names.get((video.stem + ext).lower(), []):
        cand = video.parent / name
        if cand.stem == video.stem and cand.is_file():
            return cand
    return None


def find_sidecars(video: Path) -> list[Path]:
    """Every transcript next to ``video`` with the same stem, by :data:`SIDECAR_ORDER` (the
    suffix in lower, upper or any other case)."""
    found = []
    for ext in SIDECAR_ORDER:
        for cand in (video.with_suffix(ext), video.with_suffix(ext.upper())):
            if cand.is_file():
                found.append(cand)
                break
        else:
            mixed = _any_case(video, ext)
            if mixed is not None:
                found.append(mixed)
    return found


def find_sidecar(video: Path) -> Path | None:
    """The transcript next to ``video`` with the same stem, by :data:`SIDECAR_ORDER`."""
    found = find_sidecars(video)
    return found[0] if found else None


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise TranscriptError(f"{path.name}: UTF-16 text, not UTF-8; re-save it as UTF-8")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise TranscriptError(
            f"{path.name}: not UTF-8 (line {line}: byte 0x{raw[err.start]:02x} at offset "
            f"{err.start}; Latin-1 or Windows-1252?); re-save it as UTF-8"
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
            out.extend(spread(html.unescape(_TAG.sub("", " ".join(lines))), *cue))

    for n, line in enumerate(text.splitlines(), 1):
        m = _CUE.search(line)
        if m:
            flush()
            g = m.groups()
            cue = (_secs(*g[:4]), _secs(*g[4:]))
            if cue[1] < cue[0]:
                raise TranscriptError(
                    f"{path.name}: the cue at line {n} ends before it starts (start "
                    f"{cue[0]:g} s, end {cue[1]:g} s)"
                )
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


def too_many_words(words: Sequence[Word], duration: float, name: str) -> str:
    """The failure row of a ``.txt`` whose words could not be said in the clip (more than
    :data:`TXT_MAX_WORDS_PER_S` per second of it), or ``""``."""
    if not (math.isfinite(duration) and duration > 0) or len(words) <= TXT_MAX_WORDS_PER_S * duration:
        return ""
    return (
        f"{name}: {len(words)} words for a {duration:.2f} s clip ({len(words) / duration:.0f} "
        f"per second; speech stays under {TXT_MAX_WORDS_PER_S:g}): is it this clip's "
        "transcript? Words kept, squeezed into the clip"
    )


def fit_to_clip(words: list[Word], duration: float, name: str) -> tuple[list[Word], list[str]]:
    """``words`` of sidecar ``name`` fitted to a clip of ``duration`` seconds, and what had to
    change (one message per kind of change, for failure rows; none when nothing did).

    A word that starts at or after the clip's end, or ends before its start, can be placed on
    no frame: it is left out, and when that is every word, the transcript is not this clip's
    (another video's, the uncut recording's) and no word is kept. A word that only runs past
    an end is cut to the clip. A clip of unknown length (``duration`` not positive) is left
    as it is."""
    if not words or not (math.isfinite(duration) and duration > 0):
        return words, []
    clip = f"the clip (0-{duration:.2f} s)"
    inside = [w for w in words if w.start < duration and w.end >= 0]
    if not inside:
        first, last = min(w.start for w in words), max(w.end for w in words)
        return [], [
            f"{name}: every word ({len(words)}) lies outside {clip}: the words span "
            f"{first:.2f}-{last:.2f} s; is it this video's transcript? No words kept"
        ]
    problems = []
    if len(inside) < len(words):
        out = next(w for w in words if w.start >= duration or w.end < 0)
        problems.append(
            f"{name}: {len(words) - len(inside)} of {len(words)} words lie outside {clip} and "
            f"are left out (first: {out.text!r} at {out.start:.2f}-{out.end:.2f} s)"
        )
    overrun = max(max(-w.start, w.end - duration) for w in inside)
    if overrun > 0:
        cut = sum(1 for w in inside if w.start < 0 or w.end > duration)
        problems.append(
            f"{name}: {cut} word(s) run past the ends of {clip} by up to {overrun:.2f} s; "
            "cut to fit"
        )
        inside = [Word(w.text, max(w.start, 0.0), min(w.end, duration)) for w in inside]
    return inside, problems
