"""Synthetic media: speech from eSpeak NG and video clips encoded with PyAV.

Used by the demo's example clips (:mod:`mea_cli.demo.clips`) and by the tests' sample clips
(``tests/sampleclips.py``), so both make media the same way.

**Speech** (:func:`speak`) comes from eSpeak NG, a formant synthesiser: intelligible, robotic,
no recording of a person. Two ways to reach it, tried in this order:

1. the ``espeak-ng`` program (``apt-get install espeak-ng``; what ``make test-deps`` installs
   when run as root);
2. the ``libespeak-ng`` shared library and its voice data bundled in the ``espeakng-loader``
   wheel (``pip install espeakng-loader``; the ``demo`` and ``dev`` extras), called through
   ``ctypes`` (``espeak_Initialize`` in synchronous mode, a synthesis callback collecting the
   16-bit samples). No root, no network, no system package: what ``make demo`` relies on.

:func:`speech_engine` says which one is used. Both give mono audio at eSpeak's 22 050 Hz,
resampled by PyAV to the rate asked for.

**Clips** (:func:`write_clip`): H.264 video (MPEG-4 part 2 in ``.avi``) of a still or animated
picture, AAC audio (MP3 in ``.avi``), both through PyAV (FFmpeg inside its wheel).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from mea_cli.errors import MeaError
from mea_cli.extract.media import AUDIO_RATE, decode_audio
from mea_cli.paths import atomic_output, ensure_dir

CONTAINERS = {".mp4": "mp4", ".mkv": "matroska", ".avi": "avi", ".mov": "mov"}
PROGRAM = "espeak-ng program"
LIBRARY = "libespeak-ng from the espeakng-loader wheel"


class SpeechUnavailable(MeaError):
    """Neither the espeak-ng program nor the espeakng-loader package is installed."""


def speech_engine() -> str:
    """Which eSpeak NG is used (module docstring), or :class:`SpeechUnavailable`."""
    if shutil.which("espeak-ng") is not None:
        return PROGRAM
    try:
        import espeakng_loader  # noqa: F401
    except ImportError:
        raise SpeechUnavailable(
            "no speech synthesiser: install the espeakng-loader package (pip install "
            "espeakng-loader, in the demo and dev extras) or the espeak-ng program"
        ) from None
    return LIBRARY


class _Library:
    """libespeak-ng through ctypes, initialised once per process."""

    _CALLBACK = ctypes.CFUNCTYPE(
        ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
    )
    _SYNCHRONOUS, _POS_CHARACTER, _CHARS_UTF8 = 2, 1, 1
    _RATE, _PITCH = 1, 3  # espeak_PARAMETER
    _instance: _Library | None = None

    def __init__(self) -> None:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        data = espeakng_loader.get_data_path().encode()
        self.rate = lib.espeak_Initialize(self._SYNCHRONOUS, 0, data, 0)
        if self.rate <= 0:
            raise SpeechUnavailable(f"libespeak-ng did not start (data folder {data.decode()})")
        self.chunks: list[np.ndarray] = []

        def collect(wav, n, events):  # noqa: ANN001, ANN202 - C callback
            if wav and n > 0:
                self.chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0

        self._callback = self._CALLBACK(collect)  # kept alive as long as the library
        lib.espeak_SetSynthCallback(self._callback)
        self.lib = lib

    @classmethod
    def get(cls) -> _Library:
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def say(self, text: str, wpm: int, pitch: int, voice: str) -> np.ndarray:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise SpeechUnavailable(f"libespeak-ng has no voice {voice!r}")
        self.lib.espeak_SetParameter(self._RATE, int(wpm), 0)
        self.lib.espeak_SetParameter(self._PITCH, int(pitch), 0)
        self.chunks = []
        raw = text.encode("utf-8")
        err = self.lib.espeak_Synth(
            raw, len(raw) + 1, 0, self._POS_CHARACTER, 0, self._CHARS_UTF8, None, None
        )
        self.lib.espeak_Synchronize()
        if err != 0:
            raise SpeechUnavailable(f"libespeak-ng could not say {text!r} (error {err})")
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int16)


def speak(
    text: str, rate: int = AUDIO_RATE, wpm: int = 150, pitch: int = 50, voice: str = "en"
) -> np.ndarray:
    """``text`` spoken by eSpeak NG at ``wpm`` words per minute and ``pitch`` (0-99, eSpeak's
    default 50), as mono float32 at ``rate`` Hz."""
    engine = speech_engine()
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        if engine == PROGRAM:
            cmd = ["espeak-ng", "-s", str(wpm)]
            if pitch != 50:
                cmd += ["-p", str(pitch)]
            if voice != "en":
                cmd += ["-v", voice]
            subprocess.run([*cmd, "-w", str(wav), text], check=True, capture_output=True)
        else:
            lib = _Library.get()
            samples = lib.say(text, wpm, pitch, voice)
            with wave.open(str(wav), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(lib.rate)
                w.writeframes(samples.astype("<i2").tobytes())
        return decode_audio(wav, rate)


def trimmed(voice: np.ndarray, floor: float = 1e-3) -> np.ndarray:
    """``voice`` without the leading and trailing digital silence eSpeak adds."""
    nz = np.flatnonzero(np.abs(voice) > floor)
    return voice[nz[0] : nz[-1] + 1] if nz.size else voice


def write_clip(
    path: str | os.PathLike[str],
    image: np.ndarray | None,
    seconds: float,
    *,
    fps: int = 25,
    audio: np.ndarray | None = None,
    audio_rate: int = AUDIO_RATE,
    shift_px: int = 2,
    frames: Callable[[int], np.ndarray] | Sequence[np.ndarray] | None = None,
) -> Path:
    """Encode an mp4/mkv/avi clip of ``seconds``: ``image`` gently panning by ``shift_px``
    (``None`` and no ``frames``: audio only), or ``frames`` (frame ``i`` -> RGB array, or a
    list), plus ``audio`` (mono float32 at ``audio_rate``, cut or padded with silence).

    Video is H.264 (MPEG-4 part 2 for ``.avi``), audio AAC (MP3 in ``.avi``), via PyAV. The
    file is written atomically; its folder is created if its parent exists.
    """
    path = Path(path)
    container = CONTAINERS.get(path.suffix.lower())
    if container is None:
        raise ValueError(f"{path}: write .mp4, .mkv, .avi or .mov clips")
    ensure_dir(path.parent, "clip folder")
    with atomic_output(path, "clip") as tmp:
        _encode(tmp, container, image, seconds, fps, audio, audio_rate, shift_px, frames)
    return path


def _encode(
    path: Path,
    container: str,
    image: np.ndarray | None,
    seconds: float,
    fps: int,
    audio: np.ndarray | None,
    audio_rate: int,
    shift_px: int,
    frames: Callable[[int], np.ndarray] | Sequence[np.ndarray] | None,
) -> None:
    avi = container == "avi"
    if frames is not None and not callable(frames):
        listed = list(frames)
        frames = lambda i: listed[min(i, len(listed) - 1)]  # noqa: E731
    first = image if image is not None else (frames(0) if frames is not None else None)
    with av.open(str(path), "w", format=container) as c:
        vs = None
        if first is not None:
            vs = c.add_stream("mpeg4" if avi else "libx264", rate=fps)
            vs.width, vs.height = first.shape[1], first.shape[0]
            vs.pix_fmt = "yuv420p"
            if not avi:
                vs.options = {"preset": "ultrafast"}
        as_ = None
        if audio is not None:
            as_ = c.add_stream("mp3" if avi else "aac", rate=audio_rate)
            as_.layout = "mono"
        if vs is not None:
            n = int(round(seconds * fps))
            for i in range(n):
                if frames is not None:
                    frame = np.ascontiguousarray(frames(i))
                else:
                    dx = int(round(shift_px * np.sin(2 * np.pi * i / max(fps, 1))))
                    dy = int(round(shift_px * np.cos(2 * np.pi * i / (2 * max(fps, 1)))))
                    frame = np.ascontiguousarray(np.roll(image, (dy, dx), axis=(0, 1)))
                vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
                vf.pts = i
                vf.time_base = Fraction(1, fps)
                for pkt in vs.encode(vf):
                    c.mux(pkt)
            for pkt in vs.encode(None):
                c.mux(pkt)
        if as_ is not None and audio is not None:
            total = int(round(seconds * audio_rate))
            x = np.zeros(total, np.float32)
            x[: min(total, len(audio))] = audio[:total]
            step = 1024
            for k, a in enumerate(range(0, total, step)):
                chunk = x[a : a + step]
                af = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="flt", layout="mono")
                af.sample_rate = audio_rate
                af.pts = k * step
                af.time_base = Fraction(1, audio_rate)
                for pkt in as_.encode(af):
                    c.mux(pkt)
            for pkt in as_.encode(None):
                c.mux(pkt)
