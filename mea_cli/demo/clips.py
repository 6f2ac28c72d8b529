"""The demo's example clips: a real photograph that talks, with a sentiment to learn.

No recording of a person speaking can be shipped or fetched here, so the clips are made at
demo time (examples/README.md says the same):

* **the face** is a real photograph that ships inside matplotlib: ``grace_hopper.jpg``
  (``matplotlib.cbook.get_sample_data``; Rear Admiral Grace M. Hopper, official U.S. Navy
  portrait, public domain), cropped to the head and shrunk to 256 x 256;
* **the expression** changes per clip: the mouth corners are pulled up (a smile) or down (a
  frown) by a smooth image warp, in proportion to the clip's sentiment; during speech the lower
  lip and chin move with the loudness of the voice (a crude lip movement, not lip-sync). The
  mouth corners were located once with MediaPipe's face landmarker (points 61 and 291) and are
  fixed here. MediaPipe reads the warp: ``mouthSmileLeft/Right`` about 0.55 at the strongest
  smile, 0.01 without;
* **the voice** is eSpeak NG (:func:`mea_cli.demo.media.speak`) saying a short review sentence
  whose words carry the sentiment (``great``, ``wonderful`` ... ``awful``, ``boring`` ...; the
  number of such words grows with its strength), a little higher and faster when positive;
* **the label** is that sentiment, a number in [-3, 3] (MOSI's scale), so text, face and voice
  all carry it -- what the demo's model can learn.

Every clip has a ``.txt`` transcript sidecar (timed by the voice-activity detector) except
every fifth, which ASR transcribes. Labels: ``labels.csv`` (``video,label,split``), two
thirds train, a sixth valid, a sixth test. Everything is drawn from one seed: the same seed
gives the same clips.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mea_cli.demo.media import speak, trimmed, write_clip
from mea_cli.extract.media import AUDIO_RATE
from mea_cli.paths import ensure_dir, write_text

PHOTO = "grace_hopper.jpg"
PHOTO_CREDIT = (
    "Rear Admiral Grace M. Hopper, official U.S. Navy portrait (public domain), "
    "as shipped in matplotlib's sample data (grace_hopper.jpg)"
)
CROP = (117, 90, 417, 390)  # left, top, right, bottom of the head in the 512 x 600 photo
CORNERS = ((234.0, 279.0), (303.0, 277.0))  # mouth corners (MediaPipe points 61, 291), photo px
SIZE = 256
FPS = 25
LIP_LEVELS = 4  # how many mouth openings are drawn (frames pick the nearest)

POSITIVE = ("good", "great", "wonderful", "happy", "excellent", "lovely", "amazing", "beautiful")
NEGATIVE = ("bad", "terrible", "awful", "sad", "horrible", "boring", "ugly", "disappointing")
NEUTRAL = ("okay", "fine", "average", "ordinary")
OPENINGS = (
    "the movie was",
    "i think it was",
    "the story felt",
    "this film seemed",
    "the ending was",
)


@dataclass(frozen=True)
class ExampleClip:
    """One generated clip and what went into it."""

    name: str
    path: Path
    sentiment: float
    text: str
    smile: float
    pitch: int
    wpm: int
    split: str
    transcript: bool  # a .txt sidecar was written (else ASR hears the words)
    seconds: float


def photo() -> np.ndarray:
    """The photograph's head, ``SIZE`` x ``SIZE`` RGB uint8."""
    from matplotlib import cbook
    from PIL import Image

    with Image.open(cbook.get_sample_data(PHOTO, asfileobj=False)) as im:
        head = im.convert("RGB").crop(CROP).resize((SIZE, SIZE), Image.LANCZOS)
        return np.asarray(head, np.uint8)


def _corners() -> np.ndarray:
    scale = SIZE / (CROP[2] - CROP[0])
    return np.array([((x - CROP[0]) * scale, (y - CROP[1]) * scale) for x, y in CORNERS])


def expression(image: np.ndarray, smile: float, opening: float = 0.0) -> np.ndarray:
    """``image`` with the mouth corners moved up by ``smile`` (-1: down, a frown) and the lower
    lip and chin moved down by ``opening`` (0..1): a smooth backward warp, Gaussian falloff
    around each point (9 px at the corners, 12 px below the mouth)."""
    from scipy.ndimage import map_coordinates

    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dx = np.zeros_like(xx)
    dy = np.zeros_like(xx)
    corners = _corners()
    for (cx, cy), side in zip(corners, (-1.0, 1.0), strict=True):
        g = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 9.0**2))
        dy -= smile * 7.0 * g
        dx += side * abs(smile) * 2.5 * g
    mx, my = corners.mean(axis=0)
    below = np.exp(-((xx - mx) ** 2 + (yy - my - 8.0) ** 2) / (2 * 12.0**2)) * (yy > my)
    dy += opening * 7.0 * below
    out = np.empty(image.shape, np.float32)
    for c in range(image.shape[2]):
        out[..., c] = map_coordinates(
            image[..., c].astype(np.float32), [yy - dy, xx - dx], order=1, mode="nearest"
        )
    return np.clip(out, 0, 255).astype(np.uint8)


def sentence(sentiment: float, rng: np.random.Generator) -> str:
    """A review sentence whose words carry ``sentiment`` (-3..3): one sentiment word per unit
    of strength (rounded), a neutral word when it rounds to 0."""
    opening = OPENINGS[int(rng.integers(len(OPENINGS)))]
    k = int(round(abs(sentiment)))
    if k == 0:
        return f"{opening} {NEUTRAL[int(rng.integers(len(NEUTRAL)))]}"
    pool = POSITIVE if sentiment > 0 else NEGATIVE
    words = [pool[int(i)] for i in rng.choice(len(pool), size=k, replace=False)]
    return f"{opening} {' and '.join(words)}"


def talking_clip(
    path: str | os.PathLike[str],
    face: np.ndarray,
    text: str,
    smile: float,
    *,
    pitch: int = 50,
    wpm: int = 150,
    lead: float = 0.3,
    tail: float = 0.3,
) -> float:
    """Write a clip of ``face`` with expression ``smile`` saying ``text``; return its length.

    The lower lip opens with the voice's loudness in each frame (RMS, scaled to the loudest
    frame, drawn at ``LIP_LEVELS`` openings)."""
    voice = trimmed(speak(text, wpm=wpm, pitch=pitch))
    pad = lambda s: np.zeros(int(round(s * AUDIO_RATE)), np.float32)  # noqa: E731
    audio = np.concatenate([pad(lead), voice, pad(tail)])
    seconds = len(audio) / AUDIO_RATE
    hop = AUDIO_RATE // FPS
    rms = np.array(
        [
            np.sqrt(np.mean(audio[i * hop : (i + 1) * hop] ** 2) + 1e-12)
            for i in range(int(seconds * FPS) + 1)
        ]
    )
    level = np.round(LIP_LEVELS * np.clip(rms / (rms.max() + 1e-9), 0, 1)).astype(int)
    drawn = [expression(face, smile, k / LIP_LEVELS) for k in range(LIP_LEVELS + 1)]
    write_clip(
        path,
        None,
        seconds,
        fps=FPS,
        audio=audio,
        frames=lambda i: drawn[level[min(i, len(level) - 1)]],
    )
    return seconds


def make_examples(
    out_dir: str | os.PathLike[str],
    labels: str | os.PathLike[str],
    n: int = 48,
    seed: int = 0,
    splits: Sequence[float] = (4 / 6, 1 / 6, 1 / 6),
) -> list[ExampleClip]:
    """Write ``n`` example clips and their transcripts into ``out_dir`` and their labels to
    ``labels`` (module docstring); return what each clip holds."""
    out = ensure_dir(out_dir, "example clip folder")
    rng = np.random.default_rng(seed)
    face = photo()
    n_train = int(round(splits[0] * n))
    n_valid = int(round(splits[1] * n))
    clips: list[ExampleClip] = []
    for i in range(n):
        s = float(np.round(rng.uniform(-3.0, 3.0), 1))
        text = sentence(s, rng)
        smile = float(np.clip(s / 3.0 + rng.normal(0, 0.1), -1, 1))
        pitch, wpm = int(round(50 + 6 * s)), int(round(150 + 8 * s))
        name = f"clip{i:03d}"
        path = out / f"{name}.mp4"
        seconds = talking_clip(path, face, text, smile, pitch=pitch, wpm=wpm)
        transcript = i % 5 != 4
        if transcript:
            write_text(out / f"{name}.txt", text + "\n", "transcript")
        split = "train" if i < n_train else "valid" if i < n_train + n_valid else "test"
        clips.append(
            ExampleClip(name, path, s, text, smile, pitch, wpm, split, transcript, seconds)
        )
    rows = ["video,label,split"] + [f"{c.name},{c.sentiment:g},{c.split}" for c in clips]
    write_text(labels, "\n".join(rows) + "\n", "labels file")
    return clips
