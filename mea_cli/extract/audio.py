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

A sample that spans its whole video (the default without a labels file) needs both levels of
the same signal: :meth:`OpenSmileBackend.extract_with_functionals` takes them from **one**
openSMILE run with both of the set's sinks (``lld`` and ``func``; openSMILE's own
``standard_external_data_output_multi`` include). Each single-level call runs the whole
configuration anyway (LLDs feed the functionals), so this halves the audio stage's cost and
gives the same numbers, bit for bit (``tests/test_extract_audio.py``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from mea_cli import interrupt
from mea_cli.artifacts.features import ExtractorInfo
from mea_cli.extract.backends import Option, options_record, parse_choice
from mea_cli.extract.media import MIXDOWNS

AUDIO_SETS: dict[str, str] = {"egemaps": "eGeMAPSv02", "compare": "ComParE_2016"}
AUDIO_RATE_HZ = 100.0


_mixdown = parse_choice(MIXDOWNS)
_feature_set = parse_choice(AUDIO_SETS)


class OpenSmileBackend:
    """openSMILE LLDs of one feature set; build once per worker, call :meth:`extract` per video."""

    kind = "audio"
    name = "opensmile"
    tool = "opensmile"
    OPTIONS: dict[str, Option] = {
        "set": Option("egemaps", _feature_set, "egemaps (eGeMAPSv02, 25) or compare (ComParE 2016, 65)"),
        "mixdown": Option(
            "mean", _mixdown,
            "how channels become mono: mean (their average, clipped to [-1, 1]) or ffmpeg "
            "(FFmpeg's louder downmix, as stores made before 2026-12-07)",
            absent="ffmpeg",
        ),
    }  # fmt: skip
    nominal_rate_hz = AUDIO_RATE_HZ
    window_s = 0.1  # the shortest signal it makes a frame of (``rate // 10`` samples, below)

    def __init__(self, set: str = "egemaps", mixdown: str = "mean") -> None:
        import opensmile

        self.feature_set = _feature_set(set)
        self.mixdown = _mixdown(mixdown)  # the pipeline decodes the audio this way
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
        self._config = self._functionals.config_path  # the set's config file, both levels
        self._config_root = self._functionals.default_config_root

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
                "options": options_record({"set": self.feature_set, "mixdown": self.mixdown}),
                "feature_set": AUDIO_SETS[self.feature_set],
                "feature_level": level,
                **extra,
                "input": (
                    "mono 16 kHz float32 (PyAV; channels averaged, clipped to [-1, 1])"
                    if self.mixdown == "mean"
                    else "mono 16 kHz float32 (PyAV)"  # FFmpeg's downmix: the earlier stores'
                ),
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

    def extract_with_functionals(
        self, signal: np.ndarray, rate: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``extract(signal, rate)`` and ``functionals(signal, rate)`` from one openSMILE run.

        The same numbers as the two calls (module docstring): the signal goes to openSMILE as
        ``Smile.process_signal`` sends it (16-bit samples), both sinks collect their level, and
        the LLD times are made as the ``Smile`` wrapper makes them (openSMILE's frame times,
        the first start and the last end being the signal's own, at pandas' nanoseconds).
        """
        import pandas as pd
        from opensmile.core.config import config
        from opensmile.core.lib import OpenSMILE

        signal = np.asarray(signal, np.float32).reshape(-1)
        if signal.size < rate // 10:  # too short for one analysis window: as the two calls
            x, times = self.extract(signal, rate)
            return x, times, self.functionals(signal, rate)
        levels: dict[str, tuple[list[np.ndarray], list[float], list[float]]] = {
            "extsinklld": ([], [], []),
            "extsinkfunc": ([], [], []),
        }
        smile = OpenSMILE()
        smile.initialize(config_file=self._config, options=self._run_options(rate), loglevel=2)
        try:
            for sink, (rows, starts, ends) in levels.items():
                smile.external_sink_set_callback_ex(sink, _collect(rows, starts, ends, smile.abort))
            pcm = (signal * 32768).astype(np.int16)  # what Smile feeds openSMILE
            smile.external_audio_source_write_data(config.EXTERNAL_SOURCE_COMPONENT, bytes(pcm))
            smile.external_audio_source_set_eoi(config.EXTERNAL_SOURCE_COMPONENT)
            smile.run()
        finally:
            smile.free()
        interrupt.raise_if_received()  # _collect aborted the run: its levels are cut short
        duration = signal.size / rate
        rows, starts, ends = levels["extsinklld"]
        if rows:
            x = np.vstack(rows).astype(np.float32)  # one row per frame
            start, end = (
                pd.to_timedelta(np.asarray(v), "s").total_seconds().to_numpy(np.float64, copy=True)
                for v in (starts, ends)
            )
        else:  # the wrapper's one NaN row over the whole signal
            x = np.full((1, len(self.feature_names)), np.nan, np.float32)
            start, end = np.zeros(1), np.ones(1)
        start[0] = 0.0
        end[-1] = pd.to_timedelta(duration, "s").total_seconds()
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        func = levels["extsinkfunc"][0]
        row = (
            np.asarray(func[0], np.float32).reshape(-1)
            if func
            else np.full(len(self.summary_names), np.nan, np.float32)
        )
        summary = np.where(np.isinf(row), np.nan, row).astype(np.float32)
        return x, np.stack([start, end], 1), summary

    def _run_options(self, rate: int) -> dict[str, Any]:
        """The options ``Smile`` gives openSMILE, with both sinks instead of one."""
        from opensmile.core.config import config

        root = self._config_root
        return {
            **self._functionals.options,
            "sink": os.path.join(root, config.EXTERNAL_OUTPUT_MULTI_CONFIG),
            "sinkLevelLLD": "lld",
            "sinkLevelFunc": "func",
            "bufferModeRbConf": os.path.join(root, "shared/BufferModeRb.conf.inc"),
            "frameModeFunctionalsConf": os.path.join(root, "shared/FrameModeFunctionals.conf.inc"),
            "source": os.path.join(root, config.EXTERNAL_INPUT_CONFIG),
            "sampleRate": rate,
            "nBits": 16,
        }


def _collect(
    rows: list[np.ndarray], starts: list[float], ends: list[float], abort: Callable[[], None]
) -> Any:
    """An openSMILE sink callback that keeps each frame's values and ``[start, end)``.

    Once Ctrl-C or SIGTERM has arrived it calls ``abort`` instead (``OpenSMILE.abort``): an
    exception cannot leave a ctypes callback, so openSMILE is asked to stop, and the deferred
    interrupt (:mod:`mea_cli.interrupt`) is raised when its run returns, instead of after the
    whole file."""

    def callback(data: np.ndarray, meta: Any) -> None:
        if interrupt.received() is not None:
            abort()
            return
        rows.append(data.copy())
        starts.append(meta.time)
        ends.append(meta.time + meta.lengthSec)

    return callback
