"""The audio stage's single openSMILE run (issue 27): the LLDs and the Functionals of a whole
signal from one run are the numbers the two single-level calls give, bit for bit, and the
pipeline takes a sample's summary from that run only where the sample is the whole signal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from mea_cli.extract.audio import OpenSmileBackend
from mea_cli.extract.media import AUDIO_RATE
from mea_cli.extract.pipeline import WHOLE, Pipeline, _covers
from mea_cli.extract.words import WordSource


def _voice(seconds: float, seed: int = 0) -> np.ndarray:
    """A voiced sound (a gliding 110-190 Hz pulse train's harmonics under a syllable-rate
    envelope), a pause, breath noise: pitch, loudness and voicing for openSMILE to measure."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * AUDIO_RATE)) / AUDIO_RATE
    f0 = 150 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / AUDIO_RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 3 * t), 0, None) * (t < 0.7 * seconds)
    x = 0.3 * voiced * envelope + 0.01 * rng.standard_normal(t.size)
    return x.astype(np.float32)


@pytest.mark.parametrize("feature_set", ["egemaps", "compare"])
def test_one_run_gives_both_levels_bit_for_bit(feature_set: str) -> None:
    backend = OpenSmileBackend(feature_set)
    clipped = _voice(0.5, seed=2) * 8  # past full scale: the 16-bit conversion as Smile does it
    for signal in (_voice(1.3), _voice(0.13, seed=1), clipped, np.zeros(1700, np.float32)):
        x, times = backend.extract(signal, AUDIO_RATE)
        summary = backend.functionals(signal, AUDIO_RATE)
        x1, times1, summary1 = backend.extract_with_functionals(signal, AUDIO_RATE)
        assert x1.dtype == x.dtype and x1.shape == x.shape and len(x) > 0
        np.testing.assert_array_equal(x1, x)
        np.testing.assert_array_equal(times1, times)
        assert summary1.shape == summary.shape == (len(backend.summary_names),)
        np.testing.assert_array_equal(summary1, summary)  # NaNs at the same places
    assert np.isfinite(backend.extract_with_functionals(_voice(1.3), AUDIO_RATE)[2]).any()
    # under one analysis window: no LLD step and a NaN summary, as the two calls give
    x, times, summary = backend.extract_with_functionals(np.zeros(1000, np.float32), AUDIO_RATE)
    assert x.shape == (0, len(backend.feature_names)) and times.shape == (0, 2)
    assert np.isnan(summary).all()


def test_a_span_covers_the_signal_only_when_its_samples_are_all_of_it() -> None:
    n = 16_000
    assert _covers(WHOLE[0], n) and _covers((0.0, 1.0), n) and _covers((0.0, 2.0), n)
    assert _covers((0.00002, 1.0), n)  # rounds to sample 0
    assert not _covers((0.0, 0.99), n) and not _covers((0.001, float("inf")), n)


class _Named:
    """A face or text backend the audio-only file never reaches (it only names features)."""

    def __init__(self, dim: int) -> None:
        self.feature_names = tuple(f"f{i}" for i in range(dim))


def test_pipeline_takes_the_whole_signal_summary_from_the_lld_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A whole-video span's summary comes from the LLD run (no second openSMILE call); a
    part's summary is openSMILE's Functionals of that part's samples, as before."""
    signal = _voice(1.5)
    wav = tmp_path / "voice.wav"
    with av.open(str(wav), "w", format="wav") as c:
        stream = c.add_stream("pcm_s16le", rate=AUDIO_RATE)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(
            (signal * 32767).astype(np.int16)[None, :], format="s16", layout="mono"
        )
        frame.sample_rate = AUDIO_RATE
        c.mux(stream.encode(frame))
        c.mux(stream.encode(None))
    audio = OpenSmileBackend()
    calls: list[int] = []
    plain = audio.functionals
    monkeypatch.setattr(audio, "functionals", lambda s, r: calls.append(len(s)) or plain(s, r))
    pipe = Pipeline(_Named(3), audio, _Named(2), WordSource(asr=False))  # type: ignore[arg-type]
    spans = [(0.0, float("inf")), (0.25, 1.0), (0.0, 1.5)]
    res = pipe.extract_video("voice", wav, spans)
    assert calls == [12_000]  # only the part: 0.25-1.0 s
    decoded = res.features["audio"]
    x, _ = audio.extract(_decoded(wav), AUDIO_RATE)
    np.testing.assert_array_equal(decoded, x)
    whole = plain(_decoded(wav), AUDIO_RATE)
    np.testing.assert_array_equal(res.summary_for(0.0, float("inf")), whole)
    np.testing.assert_array_equal(res.summary_for(0.0, 1.5), whole)  # all 24 000 samples
    part = plain(_decoded(wav)[4_000:16_000], AUDIO_RATE)
    np.testing.assert_array_equal(res.summary_for(0.25, 1.0), part)


def _decoded(path: Path) -> np.ndarray:
    from mea_cli.extract.media import decode_audio

    return decode_audio(path, AUDIO_RATE)


_STOP_INSIDE_OPENSMILE = """
import os, signal
import numpy as np
from mea_cli import interrupt
from mea_cli.extract import audio

interrupt.install()
made, frames = audio._collect, []


def collect(rows, starts, ends, abort):
    inner = made(rows, starts, ends, abort)

    def callback(data, meta):
        frames.append(1)
        if len(frames) == 1:  # Ctrl-C while openSMILE runs: the handler runs in its callback
            os.kill(os.getpid(), signal.SIGINT)
        inner(data, meta)

    return callback


audio._collect = collect
x = (np.random.default_rng(0).standard_normal(16000 * 60) * 0.1).astype(np.float32)
try:
    audio.OpenSmileBackend().extract_with_functionals(x, 16000)
except KeyboardInterrupt:
    print("interrupted", len(frames))
else:
    print("returned", len(frames))
"""


def test_ctrl_c_inside_opensmile_stops_the_run() -> None:
    """A signal that lands in openSMILE's sink callback (called from C through ctypes, where an
    exception is printed and dropped) was lost: the 60-s run went on to its 5997 frames and
    returned as if nothing happened, so `mea extract` exited 0. Now openSMILE is asked to stop
    and the interrupt is raised when its run returns (frames counted, not seconds)."""
    done = subprocess.run(
        [sys.executable, "-c", _STOP_INSIDE_OPENSMILE],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr
    outcome, frames = done.stdout.split()
    assert outcome == "interrupted", done.stdout + done.stderr
    assert int(frames) < 100, done.stdout  # stopped, not run to the end (5997 frames)
    assert "Exception ignored" not in done.stderr, done.stderr
