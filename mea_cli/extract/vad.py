"""Where the voice is: Silero VAD for timing plain ``.txt`` transcripts.

A ``.txt`` transcript has words but no times. They are spread over the *voiced stretches* of
the clip's audio, found by the Silero voice-activity detector (version 6, the ONNX model that
ships inside the ``faster-whisper`` wheel as ``faster_whisper/assets/silero_vad_v6.onnx``, run
with onnxruntime on the CPU, offline). Silero gives a speech probability per 32 ms frame (512
samples at 16 kHz); a frame is voiced when it is at least :data:`THRESHOLD` (0.5, Silero's
default). Voiced runs separated by less than :data:`MIN_PAUSE_S` (0.3 s: the pauses between
words and between most phrases) form one stretch; stretches shorter than
:data:`MIN_STRETCH_S` (0.1 s: clicks, breaths) are dropped unless nothing else is voiced. A
stretch runs from the start of its first voiced frame to the end of its last.

An energy threshold (what this replaced) fails on real recordings: room noise and
reverberation keep every frame "within 35 dB of the loudest", so words were spread over the
whole clip (0.01-2.97 s for speech at 0.6-2.1 s). Silero was trained on noisy speech; the tests
check the word timings on espeak-ng speech with silence around it, and again with a pink-noise
floor and synthetic reverberation (see docs/extraction.md for exactly what).

:func:`spread_over_stretches` assigns the words to stretches in order, in proportion to the
stretches' durations (a word goes to the stretch holding the middle of its share of the
total voiced time, shares proportional to characters + 1 as for subtitle cues), then spreads
each stretch's words over that stretch. No word is ever placed in a pause.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mea_cli.artifacts.features import Word
from mea_cli.errors import MeaError

VAD_RATE = 16_000
FRAME_SAMPLES = 512  # Silero v6 at 16 kHz
FRAME_S = FRAME_SAMPLES / VAD_RATE
THRESHOLD = 0.5
MIN_PAUSE_S = 0.3
MIN_STRETCH_S = 0.1

Stretch = tuple[float, float]


class VadUnavailable(MeaError):
    """The voice-activity detector cannot be loaded (faster-whisper or onnxruntime missing)."""


def stretches_from_probabilities(
    prob: np.ndarray,
    frame_s: float = FRAME_S,
    threshold: float = THRESHOLD,
    min_pause_s: float = MIN_PAUSE_S,
    min_stretch_s: float = MIN_STRETCH_S,
) -> list[Stretch]:
    """Voiced stretches ``[(start, end), ...]`` in seconds from per-frame speech probabilities."""
    voiced = np.asarray(prob, np.float64).reshape(-1) >= threshold
    if not voiced.any():
        return []
    edges = np.diff(np.concatenate([[0], voiced.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    runs: list[list[float]] = []
    for a, b in zip(starts * frame_s, ends * frame_s, strict=True):
        if runs and a - runs[-1][1] < min_pause_s:
            runs[-1][1] = float(b)
        else:
            runs.append([float(a), float(b)])
    kept = [(a, b) for a, b in runs if b - a >= min_stretch_s]
    return kept or [(a, b) for a, b in runs]


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

        from mea_cli.extract.usercache import cached_sha256

        return {
            "model": f"silero-vad (faster-whisper assets/{self.model_path.name})",
            "model_sha256": cached_sha256(self.model_path),
            "faster_whisper": str(faster_whisper.__version__),
            "threshold": THRESHOLD,
            "frame_s": FRAME_S,
            "min_pause_s": MIN_PAUSE_S,
            "min_stretch_s": MIN_STRETCH_S,
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
        """Voiced stretches of ``signal`` (seconds)."""
        if rate != VAD_RATE:
            raise ValueError(f"the VAD needs {VAD_RATE} Hz audio, got {rate} Hz")
        duration = len(signal) / rate
        spans = stretches_from_probabilities(self.probabilities(signal))
        return [(a, min(b, duration)) for a, b in spans if a < duration]
