"""Acoustic low-level descriptors with openSMILE.

``egemaps`` (default): eGeMAPSv02 low-level descriptors, 25 per frame (loudness, pitch,
jitter, shimmer, formants, MFCC 1-4, spectral slope, ...); ``compare``: ComParE 2016 LLDs,
65 per frame. Both use a 10 ms hop, so the sequence runs at 100 Hz; each step's
``[start, end)`` is the analysis window openSMILE reports. The input is the PyAV-decoded mono
16 kHz signal, fed with ``Smile.process_signal`` (no temporary wav files).
"""

from __future__ import annotations

import numpy as np

AUDIO_SETS: dict[str, str] = {"egemaps": "eGeMAPSv02", "compare": "ComParE_2016"}
AUDIO_RATE_HZ = 100.0


class AudioExtractor:
    """openSMILE LLDs of one feature set; build once per worker, call :meth:`extract` per video."""

    def __init__(self, feature_set: str = "egemaps") -> None:
        import opensmile

        if feature_set not in AUDIO_SETS:
            raise ValueError(f"audio set must be one of {sorted(AUDIO_SETS)}")
        self.feature_set = feature_set
        self._smile = opensmile.Smile(
            feature_set=getattr(opensmile.FeatureSet, AUDIO_SETS[feature_set]),
            feature_level=opensmile.FeatureLevel.LowLevelDescriptors,
        )
        self.feature_names: tuple[str, ...] = tuple(self._smile.feature_names)
        self.version = str(opensmile.__version__)

    def provenance(self) -> dict[str, object]:
        return {
            "name": "opensmile",
            "version": self.version,
            "parameters": {
                "feature_set": AUDIO_SETS[self.feature_set],
                "feature_level": "LowLevelDescriptors",
                "hop_s": 1.0 / AUDIO_RATE_HZ,
                "input": "mono 16 kHz float32 (PyAV)",
            },
        }

    def extract(self, signal: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
        """LLDs of ``signal`` -> ``(features [T, D] float32, times [T, 2] seconds)``."""
        signal = np.asarray(signal, np.float32).reshape(-1)
        if signal.size < rate // 10:  # openSMILE needs at least one full analysis window
            return np.zeros((0, len(self.feature_names)), np.float32), np.zeros((0, 2))
        df = self._smile.process_signal(signal, rate)
        start = df.index.get_level_values("start").total_seconds().to_numpy(np.float64)
        end = df.index.get_level_values("end").total_seconds().to_numpy(np.float64)
        x = df.to_numpy(np.float32)
        return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0), np.stack([start, end], 1)


def loudness_track(signal: np.ndarray, rate: int, hop_s: float = 0.01) -> np.ndarray:
    """RMS level in dBFS per ``hop_s`` frame (used to find the speech span of a ``.txt``)."""
    hop = max(1, int(round(rate * hop_s)))
    n = len(signal) // hop
    if n == 0:
        return np.zeros(0)
    frames = np.asarray(signal[: n * hop], np.float64).reshape(n, hop)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    return 20 * np.log10(np.maximum(rms, 1e-10))


def speech_span(signal: np.ndarray | None, rate: int, duration: float) -> tuple[float, float]:
    """Where speech probably is: first to last 10 ms frame within 35 dB of the loudest frame
    and above -60 dBFS; the whole ``[0, duration]`` when there is no audio or no such frame."""
    if signal is None or len(signal) == 0:
        return 0.0, float(duration)
    db = loudness_track(signal, rate)
    if db.size == 0:
        return 0.0, float(duration)
    active = np.flatnonzero((db > db.max() - 35.0) & (db > -60.0))
    if active.size == 0:
        return 0.0, float(duration)
    return float(active[0] * 0.01), float((active[-1] + 1) * 0.01)
