"""Short real-content clips made offline, for the tests and the extraction benchmark.

The face is a real photograph that ships in scikit-image (``skimage.data.astronaut()``: Eileen
Collins, NASA, public domain), moved a few pixels every frame so that the video is not a still;
the speech is real synthetic speech from ``espeak-ng`` (a system program: ``apt-get install
espeak-ng``). Neither is a recording of a person talking: the clips test that each extractor
sees what is there (a smiling face, a voice, the spoken words), not lip-sync.

:func:`in_room` puts such speech in a simulated room (pink-noise floor and reverberation),
because espeak-ng leaves digital silence between words and real rooms do not.

:func:`require_media` is how tests that need espeak-ng or the face model skip: they skip on
a developer's machine that lacks them, and fail under ``CI=true``, where ``make test``
installs both, so a broken install can never make CI pass by skipping.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from mea_cli.extract.face import default_face_model_path
from mea_cli.extract.media import AUDIO_RATE, decode_audio


class SampleClipError(RuntimeError):
    """A sample clip cannot be made (a missing program or package)."""


def in_ci() -> bool:
    """True under CI (``CI`` set to anything but empty, 0 or false)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_media(espeak: bool = True, face_model: bool = True) -> None:
    """Skip (fail under CI) unless espeak-ng and the face model are installed."""
    missing = []
    if espeak and shutil.which("espeak-ng") is None:
        missing.append("espeak-ng (make test-deps installs it)")
    if face_model and not (
        default_face_model_path().is_file() or os.environ.get("MEA_FACE_MODEL")
    ):
        missing.append(f"the face model {default_face_model_path()} (make install)")
    if missing:
        why = "missing " + " and ".join(missing)
        if in_ci():
            pytest.fail(f"{why}: CI must run the media tests, not skip them", pytrace=False)
        pytest.skip(why)


def speak(text: str, rate: int = AUDIO_RATE, wpm: int = 150) -> np.ndarray:
    """``text`` spoken by espeak-ng, as mono float32 at ``rate`` Hz."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SampleClipError("espeak-ng is not installed (apt-get install -y espeak-ng)")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        subprocess.run([exe, "-s", str(wpm), "-w", str(wav), text], check=True, capture_output=True)
        return decode_audio(wav, rate)


def astronaut(size: int = 256) -> np.ndarray:
    """scikit-image's astronaut photo (a smiling face), resized to ``size`` x ``size`` RGB."""
    try:
        from skimage import data
        from skimage.transform import resize
    except ImportError:
        raise SampleClipError(
            "scikit-image is needed for sample clips (pip install scikit-image)"
        ) from None
    img = data.astronaut()
    if size != img.shape[0]:
        img = (resize(img, (size, size), anti_aliasing=True) * 255).astype(np.uint8)
    return img


def plain_scene(size: int = 256) -> np.ndarray:
    """A picture without a face: scikit-image's coffee cup, resized (for the no-face case)."""
    from skimage import data
    from skimage.transform import resize

    return (resize(data.coffee(), (size, size), anti_aliasing=True) * 255).astype(np.uint8)


def write_clip(
    path: str | os.PathLike[str],
    image: np.ndarray | None,
    seconds: float,
    *,
    fps: int = 25,
    audio: np.ndarray | None = None,
    audio_rate: int = AUDIO_RATE,
    shift_px: int = 2,
) -> Path:
    """Encode an mp4/mkv/avi clip: ``image`` gently panning (``None``: audio only) + ``audio``.

    Video is H.264 (MPEG-4 part 2 for ``.avi``), audio AAC (MP3 in ``.avi``) via PyAV.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    avi = path.suffix.lower() == ".avi"
    with av.open(str(path), "w") as c:
        vs = None
        if image is not None:
            vs = c.add_stream("mpeg4" if avi else "libx264", rate=fps)
            vs.width, vs.height = image.shape[1], image.shape[0]
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
    return path


@dataclass(frozen=True)
class TalkingClip:
    """A clip and where its speech is (``phrases``: each phrase's dry-speech span)."""

    path: Path
    text: str
    speech_start: float
    speech_end: float
    duration: float
    phrases: tuple[tuple[float, float], ...] = ()


def _trimmed_voice(text: str) -> np.ndarray:
    voice = speak(text)
    nz = np.flatnonzero(np.abs(voice) > 1e-3)
    return voice[nz[0] : nz[-1] + 1] if nz.size else voice


def talking_astronaut(
    path: str | os.PathLike[str],
    text: str | list[str] = "hello world this is a happy astronaut",
    *,
    lead: float = 1.0,
    tail: float = 1.0,
    pause: float = 0.8,
    size: int = 256,
    fps: int = 25,
    face: bool = True,
    room: dict[str, float] | None = None,
) -> TalkingClip:
    """The astronaut photo (or, with ``face=False``, a coffee cup) with espeak-ng saying ``text``
    (a list: several phrases with ``pause`` seconds of silence between them) after ``lead``
    seconds of silence and followed by ``tail`` seconds of silence; ``room`` (keyword
    arguments of :func:`in_room`) puts the speech in a noisy, reverberant room."""
    phrases = [text] if isinstance(text, str) else list(text)
    zeros = lambda seconds: np.zeros(int(round(seconds * AUDIO_RATE)), np.float32)  # noqa: E731
    parts, spans, at = [zeros(lead)], [], lead
    for k, phrase in enumerate(phrases):
        voice = _trimmed_voice(phrase)
        if k:
            parts.append(zeros(pause))
            at += pause
        parts.append(voice)
        spans.append((at, at + len(voice) / AUDIO_RATE))
        at = spans[-1][1]
    parts.append(zeros(tail))
    audio = np.concatenate(parts)
    if room is not None:
        first = int(round(spans[0][0] * AUDIO_RATE))
        last = int(round(spans[-1][1] * AUDIO_RATE))
        audio = in_room(audio, (first, last), **room)
    seconds = len(audio) / AUDIO_RATE
    image = astronaut(size) if face else plain_scene(size)
    write_clip(path, image, seconds, fps=fps, audio=audio)
    return TalkingClip(
        Path(path), " ".join(phrases), spans[0][0], spans[-1][1], seconds, tuple(spans)
    )


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance pink (1/f power) noise: white noise shaped by 1/sqrt(f) in the spectrum."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spectrum), dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spectrum / np.sqrt(f), n)
    return x / x.std()


def room_impulse_response(
    rt60: float, drr_db: float, rng: np.random.Generator, rate: int = AUDIO_RATE
) -> np.ndarray:
    """A synthetic room: a unit direct path, then (from 2 ms on) Gaussian noise decaying by
    60 dB in ``rt60`` seconds (amplitude ``exp(-ln(1000) t / rt60)``) whose energy is
    ``drr_db`` below the direct path's (direct-to-reverberant ratio)."""
    t = np.arange(int(rt60 * rate)) / rate
    tail = rng.standard_normal(len(t)) * np.exp(-np.log(1000.0) * t / rt60)
    tail[: int(0.002 * rate)] = 0.0
    tail *= np.sqrt(10 ** (-drr_db / 10) / (tail**2).sum())
    tail[0] = 1.0
    return tail


def in_room(
    speech: np.ndarray,
    voiced: tuple[int, int],
    *,
    snr_db: float = 20.0,
    rt60: float = 0.5,
    drr_db: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """``speech`` convolved with :func:`room_impulse_response` plus a pink-noise floor at
    ``snr_db`` below the power of the dry speech's samples ``voiced`` = (first, last), over
    the whole signal (silences included)."""
    rng = np.random.default_rng(seed)
    wet = np.convolve(speech, room_impulse_response(rt60, drr_db, rng))[: len(speech)]
    a, b = voiced
    power = float(np.mean(np.asarray(speech[a:b], np.float64) ** 2))
    noise = pink_noise(len(speech), rng) * np.sqrt(power / 10 ** (snr_db / 10))
    return (wet + noise).astype(np.float32)
