"""Audio backend ``opensmile``: acoustic low-level descriptors with openSMILE.

Option ``set``: ``egemaps`` (default) is eGeMAPSv02 low-level descriptors, 25 per frame
(loudness, pitch, jitter, shimmer, formants, MFCC 1-4, spectral slope, ...); ``compare`` is
ComParE 2016 LLDs, 65 per frame. Both use a 10 ms hop, so the sequence runs at 100 Hz; each
step's ``[start, end)`` is the analysis window openSMILE reports. The input is the
PyAV-decoded mono 16 kHz signal, fed with ``Smile.process_signal`` (no temporary wav files).

Besides the LLD sequence, the backend makes the set's own *Functionals* level for each sample
(:meth:`OpenSmileBackend.functionals`: 88 per clip for eGeMAPSv02, 6373 for ComParE 2016):
openSMILE's statistics over the sample's signal, computed by a second openSMILE call on the
same signal (segment) the LLDs come from; the store keeps them as ``/summary/audio``.
"""

from __future__ import annotations

import numpy as np

from mea_cli.artifacts.features import ExtractorInfo
from mea_cli.extract.backends import Option, options_record

AUDIO_SETS: dict[str, str] = {"egemaps": "eGeMAPSv02", "compare": "ComParE_2016"}
AUDIO_RATE_HZ = 100.0


def _feature_set(text: str) -> str:
    key = text.strip().lower()
    if key not in AUDIO_SETS:
        raise ValueError(f"expected one of {', '.join(AUDIO_SETS)}")
    return key


class OpenSmileBackend:
    """openSMILE LLDs of one feature set; build once per worker, call :meth:`extract` per video."""

    kind = "audio"
    name = "opensmile"
    tool = "opensmile"
    OPTIONS: dict[str, Option] = {
        "set": Option("egemaps", _feature_set, "egemaps (eGeMAPSv02, 25) or compare (ComParE 2016, 65)"),
    }
    nominal_rate_hz = AUDIO_RATE_HZ

    def __init__(self, set: str = "egemaps") -> None:
        import opensmile

        self.feature_set = _feature_set(set)
        self._smile = opensmile.Smile(
            feature_set=getattr(opensmile.FeatureSet, AUDIO_SETS[self.feature_set]),
            feature_level=opensmile.FeatureLevel.LowLevelDescriptors,
        )
        self.feature_names: tuple[str, ...] = tuple(self._smile.feature_names)
        self.version = str(opensmile.__version__)
        self._functionals = opensmile.Smile(
            feature_set=getattr(opensmile.FeatureSet, AUDIO_SETS[self.feature_set]),
            feature_level=opensmile.FeatureLevel.Functionals,
        )
        self.summary_names: tuple[str, ...] = tuple(self._functionals.feature_names)

    def provenance(self) -> ExtractorInfo:
        return self._info("LowLevelDescriptors", hop_s=1.0 / AUDIO_RATE_HZ)

    def summary_provenance(self) -> ExtractorInfo:
        """Provenance of :meth:`functionals` (the store's ``/summary/audio``)."""
        return self._info("Functionals", span="the sample's segment of the signal")

    def _info(self, level: str, **extra: object) -> ExtractorInfo:
        """What both levels record: backend, options, openSMILE's set and level, the input."""
        return ExtractorInfo(
            self.tool,
            self.version,
            {
                "backend": self.name,
                "options": options_record({"set": self.feature_set}),
                "feature_set": AUDIO_SETS[self.feature_set],
                "feature_level": level,
                **extra,
                "input": "mono 16 kHz float32 (PyAV)",
            },
        )

    def functionals(self, signal: np.ndarray, rate: int) -> np.ndarray:
        """openSMILE's Functionals of the whole ``signal`` -> ``[D]`` float32; NaN for a signal
        shorter than one analysis window (0.1 s): there is nothing to summarise."""
        signal = np.asarray(signal, np.float32).reshape(-1)
        if signal.size < rate // 10:
            return np.full(len(self.summary_names), np.nan, np.float32)
        row = self._functionals.process_signal(signal, rate).to_numpy(np.float32)[0]
        return np.where(np.isinf(row), np.nan, row).astype(np.float32)

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
