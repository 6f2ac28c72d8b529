"""Short real-content clips made offline, for tests, the benchmark and trying the pipeline.

The face is a real photograph that ships in scikit-image (``skimage.data.astronaut()``: Eileen
Collins, NASA, public domain), moved a few pixels every frame so that the video is not a still;
the speech is real synthetic speech from ``espeak-ng`` (a system program: ``apt-get install
espeak-ng``). Neither is a recording of a person talking: the clips test that each extractor
sees what is there (a smiling face, a voice, the spoken words), not lip-sync.
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

from mea_cli.errors import MeaError
from mea_cli.extract.media import AUDIO_RATE, decode_audio


class SampleClipError(MeaError):
    """A sample clip cannot be made (a missing program or package)."""


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


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
    """A clip and where its speech is."""

    path: Path
    text: str
    speech_start: float
    speech_end: float
    duration: float


def talking_astronaut(
    path: str | os.PathLike[str],
    text: str = "hello world this is a happy astronaut",
    *,
    lead: float = 1.0,
    tail: float = 1.0,
    size: int = 256,
    fps: int = 25,
    face: bool = True,
) -> TalkingClip:
    """The astronaut photo (or, with ``face=False``, a coffee cup) with espeak-ng saying ``text``
    after ``lead`` seconds of silence and followed by ``tail`` seconds of silence."""
    voice = speak(text)
    nz = np.flatnonzero(np.abs(voice) > 1e-3)
    voice = voice[nz[0] : nz[-1] + 1] if nz.size else voice
    lead_n = int(round(lead * AUDIO_RATE))
    audio = np.concatenate(
        [np.zeros(lead_n, np.float32), voice, np.zeros(int(tail * AUDIO_RATE), np.float32)]
    )
    seconds = len(audio) / AUDIO_RATE
    image = astronaut(size) if face else plain_scene(size)
    write_clip(path, image, seconds, fps=fps, audio=audio)
    return TalkingClip(Path(path), text, lead, lead + len(voice) / AUDIO_RATE, seconds)
