"""Where the voice is: Silero VAD for timing plain ``.txt`` transcripts and checking ASR's times.

A ``.txt`` transcript has words but no times. They are spread over the *voiced stretches* of
the clip's audio, found by the Silero voice-activity detector (version 6, the ONNX model that
ships inside the ``faster-whisper`` wheel as ``faster_whisper/assets/silero_vad_v6.onnx``, run
with onnxruntime on the CPU, offline). Silero gives a speech probability per 32 ms frame (512
samples at 16 kHz). With hysteresis, as Silero's own segmenter: a frame is weakly voiced when
it is at least :data:`WEAK` (0.35, Silero's end-of-speech threshold), and a stretch needs a
frame at least :data:`THRESHOLD` (0.5, Silero's default). Weakly voiced runs separated by
less than :data:`MIN_PAUSE_S` (0.3 s: the pauses between words and between most phrases)
form one stretch, kept when it holds a frame at :data:`THRESHOLD`, and starting at most
:data:`WEAK_LEAD_S` (0.5 s) before its first such frame; stretches shorter than
:data:`MIN_STRETCH_S` (0.1 s: clicks, breaths) are dropped unless nothing else is voiced. A
stretch runs from the start of its first weakly voiced frame to the end of its last frame at
:data:`THRESHOLD`: the weak threshold widens onsets only (a room's reverberation keeps the
probability above 0.35 after the speech, which would drag ends late).

Silero's onsets are late: its probability crosses 0.5 one to five frames (0.03-0.15 s) after
the sound starts on eSpeak speech, most on soft onsets ("h", "f", "s"); on a breathy first
word of a real CREMA-D clip (1002_DFA_FEA) it stays at 0.35-0.48 for the whole word, which a
0.5 threshold alone put 0.38 s late (hence the weak threshold above). Then
:func:`refine_onsets` moves each stretch's start back over the 10 ms frames just before it
whose level (of the signal's first difference, which favours fricatives over a room's low
rumble) stands :data:`ONSET_DB` (6 dB) above the clip's noise floor (the median level of the
frames outside every stretch), at most :data:`ONSET_MAX_S` (0.3 s) and never into the
previous stretch. In digital silence that is the first non-zero sample; in a
room, the first part of the sound that rises above the room's noise.

An energy threshold (what this replaced) fails on real recordings: room noise and
reverberation keep every frame "within 35 dB of the loudest", so words were spread over the
whole clip (0.01-2.97 s for speech at 0.6-2.1 s). Silero was trained on noisy speech; the tests
check the word timings on espeak-ng speech with silence around it, and again with a pink-noise
floor and synthetic reverberation, and on real CREMA-D clips (see docs/extraction.md).

:func:`spread_over_stretches` assigns the words to stretches in order, in proportion to the
stretches' durations (a word goes to the stretch holding the middle of its share of the
total voiced time, shares proportional to characters + 1 as for subtitle cues), then spreads
each stretch's words over that stretch. No word is ever placed in a pause.

:func:`fit_to_stretches` does the same for words that come with times (ASR): Whisper's word
times are often early -- its first word tends to start at 0.00 s whatever silence precedes
the speech -- so a word's start in a pause moves to the next voiced instant and its end in a
pause back to the last voiced one; a word wholly inside a pause becomes a zero-length word at
the start of the next stretch (at the end of the last one if none follows). No word then
starts in silence, and the words stay in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mea_cli.artifacts.features import Word
from mea_cli.errors import MeaError
from mea_cli.extract.usercache import cached_sha256

VAD_RATE = 16_000
FRAME_SAMPLES = 512  # Silero v6 at 16 kHz
FRAME_S = FRAME_SAMPLES / VAD_RATE
THRESHOLD = 0.5
WEAK = 0.35  # Silero's own end-of-speech threshold (threshold - 0.15)
WEAK_LEAD_S = 0.5
MIN_PAUSE_S = 0.3
MIN_STRETCH_S = 0.1
ONSET_DB = 6.0
ONSET_MAX_S = 0.3
ENERGY_FRAME_S = 0.01

Stretch = tuple[float, float]


class VadUnavailable(MeaError):
    """The voice-activity detector cannot be loaded (faster-whisper or onnxruntime missing)."""


def stretches_from_probabilities(
    prob: np.ndarray,
    frame_s: float = FRAME_S,
    threshold: float = THRESHOLD,
    min_pause_s: float = MIN_PAUSE_S,
    min_stretch_s: float = MIN_STRETCH_S,
    weak: float = WEAK,
) -> list[Stretch]:
    """Voiced stretches ``[(start, end), ...]`` in seconds from per-frame speech probabilities
    (module docstring: runs of frames at least ``weak``, merged over pauses shorter than
    ``min_pause_s``, kept when they hold a frame at least ``threshold``; a stretch ends with
    its last frame at ``threshold``)."""
    p = np.asarray(prob, np.float64).reshape(-1)
    if not (p >= threshold).any():
        return []
    edges = np.diff(np.concatenate([[0], (p >= weak).astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    # [start, first strong frame's start, last strong frame's end (nan: none yet), last end]
    runs: list[list[float]] = []
    for a, b in zip(starts, ends, strict=True):
        strong = a + np.flatnonzero(p[a:b] >= threshold)
        first, last = (strong[0] * frame_s, (strong[-1] + 1) * frame_s) if len(strong) else (np.nan,) * 2
        if runs and a * frame_s - runs[-1][3] < min_pause_s:  # from its last weak frame
            run = runs[-1]
            run[1] = first if np.isnan(run[1]) else run[1]
            run[2] = last if not np.isnan(last) else run[2]
            run[3] = float(b * frame_s)
        else:
            runs.append([float(a * frame_s), float(first), float(last), float(b * frame_s)])
    # weak frames lead a stretch by at most WEAK_LEAD_S (a chain of weak noise is no onset)
    spans = [(max(a, f - WEAK_LEAD_S), e) for a, f, e, _ in runs if not np.isnan(e)]
    kept = [(a, b) for a, b in spans if b - a >= min_stretch_s]
    return kept or spans


def refine_onsets(signal: np.ndarray, rate: int, stretches: Sequence[Stretch]) -> list[Stretch]:
    """``stretches`` with each start moved back to where the sound rises above the noise floor
    (module docstring); ends are kept (a room's reverberation would drag them late)."""
    x = np.asarray(signal, np.float64).reshape(-1)
    x = np.diff(x, prepend=x[:1])  # first difference: room noise is low, fricatives high
    n = max(1, int(round(ENERGY_FRAME_S * rate)))
    frames = len(x) // n
    spans = [(float(a), float(b)) for a, b in stretches]
    if not spans or frames == 0:
        return spans
    level = 10 * np.log10(np.mean(x[: frames * n].reshape(frames, n) ** 2, axis=1) + 1e-12)
    step = n / rate
    inside = np.zeros(frames, bool)
    for a, b in spans:
        inside[int(a / step) : int(np.ceil(b / step))] = True
    quiet = level[~inside]
    floor = float(np.median(quiet)) if len(quiet) else float(np.percentile(level, 10))
    loud = level > floor + ONSET_DB
    out: list[Stretch] = []
    prev_end = 0.0
    for a, b in spans:
        j = min(int(a / step), frames)
        lowest = max(int(np.ceil(prev_end / step)), int(np.ceil((a - ONSET_MAX_S) / step)), 0)
        while j - 1 >= lowest and loud[j - 1]:
            j -= 1
        out.append((min(a, j * step), b))
        prev_end = b
    return out


def fit_to_stretches(words: Sequence[Word], stretches: Sequence[Stretch]) -> list[Word]:
    """Timed ``words`` moved out of the pauses between ``stretches`` (module docstring);
    unchanged when there is no stretch."""
    spans = sorted((float(a), float(b)) for a, b in stretches if b > a)
    if not spans:
        return list(words)
    starts = np.array([a for a, _ in spans])
    ends = np.array([b for _, b in spans])
    out: list[Word] = []
    for w in words:
        i = int(np.searchsorted(ends, w.start, side="left"))  # first stretch ending at/after it
        k = int(np.searchsorted(starts, w.end, side="right")) - 1  # last starting at/before it
        last = min(float(w.end), float(ends[k])) if k >= 0 else None
        start = max(float(w.start), float(starts[i])) if i < len(spans) else float(ends[-1])
        end = last if last is not None and last >= start else start
        out.append(Word(w.text, start, end))
    return out


def spread(text: str, start: float, end: float) -> list[Word]:
    """Words of ``text`` over ``[start, end]``, each share proportional to len(word) + 1."""
    words = text.split()
    if not words or not end > start:
        return [Word(w, start, start) for w in words]
    weights = np.array([len(w) + 1 for w in words], np.float64)
    edges = start + (end - start) * np.concatenate([[0.0], np.cumsum(weights) / weights.sum()])
    return [
        Word(w, float(a), float(b)) for w, a, b in zip(words, edges[:-1], edges[1:], strict=True)
    ]


def spread_over_stretches(text: str, stretches: Sequence[Stretch]) -> list[Word]:
    """The words of ``text`` placed in ``stretches`` (see the module docstring)."""
    words = text.split()
    spans = [(float(a), float(b)) for a, b in stretches if b > a]
    if not words or not spans:
        return spread(text, *(spans[0] if spans else (0.0, 0.0)))
    lengths = np.array([b - a for a, b in spans])
    bounds = np.concatenate([[0.0], np.cumsum(lengths)])
    weights = np.array([len(w) + 1 for w in words], np.float64)
    middles = (np.cumsum(weights) - weights / 2) / weights.sum() * bounds[-1]
    which = np.clip(np.searchsorted(bounds, middles, side="right") - 1, 0, len(spans) - 1)
    out: list[Word] = []
    for j, (a, b) in enumerate(spans):
        mine = [w for w, k in zip(words, which, strict=True) if k == j]
        out.extend(spread(" ".join(mine), a, b))
    return out


class SileroVAD:
    """Silero VAD v6 from the faster-whisper wheel (one ONNX session per process)."""

    def __init__(self) -> None:
        try:
            from faster_whisper.utils import get_assets_path
            from faster_whisper.vad import get_vad_model
        except ImportError as err:
            raise VadUnavailable(
                f"the voice-activity detector ships with faster-whisper, which is not "
                f"importable ({err}); run `make install` or pip install faster-whisper"
            ) from None
        found = sorted(Path(get_assets_path()).glob("silero_vad*.onnx"))
        if not found:
            raise VadUnavailable(f"{get_assets_path()}: no Silero VAD model in faster-whisper")
        self.model_path = found[-1]
        try:
            self._model = get_vad_model()
        except (RuntimeError, OSError) as err:
            raise VadUnavailable(f"{self.model_path}: cannot load the Silero VAD: {err}") from None

    def provenance(self) -> dict[str, object]:
        import faster_whisper

        return {
            "model": f"silero-vad (faster-whisper assets/{self.model_path.name})",
            "model_sha256": cached_sha256(self.model_path),
            "faster_whisper": str(faster_whisper.__version__),
            "threshold": THRESHOLD,
            "weak": WEAK,
            "frame_s": FRAME_S,
            "min_pause_s": MIN_PAUSE_S,
            "min_stretch_s": MIN_STRETCH_S,
            "onset_db": ONSET_DB,
            "onset_max_s": ONSET_MAX_S,
        }

    def probabilities(self, signal: np.ndarray) -> np.ndarray:
        """Speech probability of every 32 ms frame of a 16 kHz mono signal."""
        x = np.asarray(signal, np.float32).reshape(-1)
        pad = (-len(x)) % FRAME_SAMPLES
        x = np.pad(x, (0, pad))
        if not len(x):
            return np.zeros(0, np.float32)
        return np.asarray(self._model(x), np.float32).reshape(-1)

    def stretches(self, signal: np.ndarray, rate: int) -> list[Stretch]:
        """Voiced stretches of ``signal`` (seconds), onsets refined (:func:`refine_onsets`)."""
        if rate != VAD_RATE:
            raise ValueError(f"the VAD needs {VAD_RATE} Hz audio, got {rate} Hz")
        duration = len(signal) / rate
        spans = stretches_from_probabilities(self.probabilities(signal))
        spans = [(a, min(b, duration)) for a, b in spans if a < duration]
        return refine_onsets(signal, rate, spans)
