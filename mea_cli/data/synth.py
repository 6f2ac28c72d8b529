"""Synthetic asynchronous data with a known answer (``mea synth``).

The data have a benchmark's dimensions (GloVe 300 text, Facet 35 vision, COVAREP 74 audio, as
in the MEA paper's Sec. IV-B) and variable native lengths and rates, and labels that follow a
rule which needs several modalities *and* the temporal order inside one of them:

* **text** (valence, order-dependent): every sample has one sentiment word, ``POS`` or ``NEG``,
  at a random position among filler words. Half the samples also hold a ``NOT`` word at another
  random position; it flips the sentiment only when it comes *before* the sentiment word
  ("not good" vs "good, not ..."). The result is the polarity ``p`` in {-1, +1}.
* **audio** (arousal): one prosodic burst (a Gaussian bump over 10 of the 74 channels, width
  0.25 s) at a random time unrelated to the words, with amplitude ``3 a``, ``a ~ U(0, 1)``.
* **vision** (expression): with equal chance a smile burst (channels 0-4), a frown burst
  (channels 5-9) or none, ``v`` in {+1, -1, 0}, at another unrelated time.

Labels:

* ``--like mosi|mosei`` (regression): ``y = clip(p (1 + 2a) + 0.5 v, -3, 3)``. Text alone knows
  the sign, audio alone the magnitude, vision a small shift.
* ``--like iemocap`` (four binary emotions): high arousal (``a > 0.5``) gives *happy* when
  ``p > 0`` and *angry* when ``p < 0``; low arousal gives *neutral* (``p > 0``) or *sad*
  (``p < 0``). Neither text nor audio alone can do better than 50 %.

Everything is drawn from one ``numpy.random.Generator`` seeded by ``seed``, so the same seed
gives the same file. The store is marked ``synthetic = True`` and its ``dataset`` is
``synth-<like>``: it is not MOSI, MOSEI or IEMOCAP.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from mea_cli.artifacts.features import ExtractorInfo, FeatureStoreWriter, ModalitySchema, Sample

RULE = (
    "p = sign of the text sentiment word, flipped when a NOT word precedes it; "
    "a = audio burst amplitude / 3; v = vision smile (+1) / frown (-1) / none (0); "
    "regression: y = clip(p*(1+2a) + 0.5v, -3, 3); "
    "iemocap: happy = p>0 & a>0.5, angry = p<0 & a>0.5, neutral = p>0 & a<=0.5, sad = p<0 & a<=0.5"
)
IEMOCAP_EMOTIONS: tuple[str, ...] = ("happy", "sad", "angry", "neutral")


@dataclass(frozen=True)
class SynthSpec:
    """Shape of one benchmark: feature dims, step rates, maximum lengths, splits, labels."""

    like: str
    task: str
    label_names: tuple[str, ...]
    dims: tuple[int, int, int]  # text, vision, audio
    max_len: tuple[int, int, int]  # text, vision, audio (the benchmark's unaligned maxima)
    vision_hz: float
    audio_hz: float
    default_n: int
    valid_frac: float
    test_frac: float


SPECS: dict[str, SynthSpec] = {
    "mosi": SynthSpec(
        "mosi",
        "regression",
        ("sentiment",),
        (300, 35, 74),
        (50, 500, 375),
        30.0,
        25.0,
        2199,
        229 / 2199,
        686 / 2199,
    ),
    "mosei": SynthSpec(
        "mosei",
        "regression",
        ("sentiment",),
        (300, 35, 74),
        (50, 500, 500),
        30.0,
        40.0,
        22856,
        1871 / 22856,
        4659 / 22856,
    ),
    "iemocap": SynthSpec(
        "iemocap",
        "binary-multilabel",
        IEMOCAP_EMOTIONS,
        (300, 35, 74),
        (20, 500, 400),
        30.0,
        25.0,
        4453,
        638 / 4453,
        938 / 4453,
    ),
}
WORDS_PER_SECOND = 2.5
BURST_WIDTH_S = 0.25
N_FILLER_WORDS = 200


@dataclass(frozen=True)
class Latent:
    """The hidden causes of one synthetic sample's label."""

    polarity: int  # p
    arousal: float  # a
    expression: int  # v
    sentiment_pos: int  # index of the sentiment word
    negation_pos: int  # index of the NOT word, -1 when absent
    audio_event_s: float
    vision_event_s: float


def label_from_latent(spec: SynthSpec, z: Latent) -> np.ndarray:
    """The documented rule (module docstring) as code."""
    if spec.task == "regression":
        y = np.clip(z.polarity * (1 + 2 * z.arousal) + 0.5 * z.expression, -3.0, 3.0)
        return np.array([y], np.float32)
    high = z.arousal > 0.5
    pos = z.polarity > 0
    onehot = {
        "happy": pos and high,
        "angry": (not pos) and high,
        "neutral": pos and not high,
        "sad": (not pos) and not high,
    }
    return np.array([float(onehot[e]) for e in spec.label_names], np.float32)


def _burst(times: np.ndarray, center: float) -> np.ndarray:
    return np.exp(-0.5 * ((times - center) / BURST_WIDTH_S) ** 2)


def generate(
    like: str, n: int | None = None, seed: int = 0, max_seconds: float = 12.0
) -> Iterator[tuple[Sample, Latent]]:
    """Yield ``n`` synthetic samples with their latent causes, deterministically by ``seed``."""
    spec = SPECS[like]
    n = spec.default_n if n is None else n
    if n < 3:
        raise ValueError("a synthetic store needs at least 3 samples (train, valid, test)")
    if max_seconds < 2.0:
        raise ValueError("max_seconds must be at least 2")
    rng = np.random.default_rng(seed)
    d_text, d_vision, d_audio = spec.dims
    vocab = rng.normal(0.0, 1.0, (N_FILLER_WORDS, d_text)).astype(np.float32)
    w_pos, w_neg, w_not = rng.normal(0.0, 1.0, (3, d_text)).astype(np.float32)
    n_valid = max(1, round(spec.valid_frac * n))
    n_test = max(1, round(spec.test_frac * n))
    split = np.array(["train"] * (n - n_valid - n_test) + ["valid"] * n_valid + ["test"] * n_test)
    split = split[rng.permutation(n)]
    for i in range(n):
        duration = float(rng.uniform(2.0, max_seconds))
        # text: words spread over the speech span, one sentiment word, maybe a NOT word
        t_len = int(np.clip(round(duration * WORDS_PER_SECOND), 4, spec.max_len[0]))
        words = vocab[rng.integers(0, N_FILLER_WORDS, t_len)].copy()
        s_pos, n_pos = (int(x) for x in rng.choice(t_len, 2, replace=False))
        sentiment = 1 if rng.random() < 0.5 else -1
        words[s_pos] = w_pos if sentiment > 0 else w_neg
        negated = rng.random() < 0.5
        if negated:
            words[n_pos] = w_not
        else:
            n_pos = -1
        polarity = -sentiment if 0 <= n_pos < s_pos else sentiment
        text = words + rng.normal(0.0, 0.3, words.shape).astype(np.float32)
        edges = np.linspace(0.0, duration, t_len + 1)
        text_times = np.stack([edges[:-1], edges[1:]], axis=1)
        # audio: noise plus one prosodic burst whose amplitude is the arousal
        a_len = min(int(duration * spec.audio_hz), spec.max_len[2])
        a_t = np.arange(a_len) / spec.audio_hz
        arousal = float(rng.uniform(0.0, 1.0))
        a_event = float(rng.uniform(0.3, duration - 0.3))
        audio = rng.normal(0.0, 1.0, (a_len, d_audio)).astype(np.float32)
        audio[:, :10] += (3.0 * arousal * _burst(a_t + 0.5 / spec.audio_hz, a_event))[:, None]
        # vision: noise plus a smile or frown burst (or none)
        v_len = min(int(duration * spec.vision_hz), spec.max_len[1])
        v_t = np.arange(v_len) / spec.vision_hz
        expression = int(rng.integers(-1, 2))
        v_event = float(rng.uniform(0.3, duration - 0.3))
        vision = rng.normal(0.0, 1.0, (v_len, d_vision)).astype(np.float32)
        if expression:
            cols = slice(0, 5) if expression > 0 else slice(5, 10)
            vision[:, cols] += (2.5 * _burst(v_t + 0.5 / spec.vision_hz, v_event))[:, None]
        latent = Latent(polarity, arousal, expression, s_pos, n_pos, a_event, v_event)
        video = f"synth{i // 8:05d}"
        sample = Sample(
            id=f"{video}_{i % 8}",
            video=video,
            start=0.0,
            end=duration,
            split=str(split[i]),
            label=label_from_latent(spec, latent),
            features={"text": text, "vision": vision, "audio": audio},
            times={
                "text": text_times,
                "vision": np.stack([v_t, v_t + 1 / spec.vision_hz], axis=1),
                "audio": np.stack([a_t, a_t + 1 / spec.audio_hz], axis=1),
            },
        )
        yield sample, latent


def schemas(like: str) -> list[ModalitySchema]:
    """Modality schemas of a synthetic store (feature names say what the columns are)."""
    spec = SPECS[like]
    d_text, d_vision, d_audio = spec.dims
    info = ExtractorInfo("mea-synth", "1", {"like": like})
    return [
        ModalitySchema("text", tuple(f"synth_text_{j}" for j in range(d_text)), info),
        ModalitySchema(
            "vision", tuple(f"synth_vision_{j}" for j in range(d_vision)), info, spec.vision_hz
        ),
        ModalitySchema(
            "audio", tuple(f"synth_audio_{j}" for j in range(d_audio)), info, spec.audio_hz
        ),
    ]


def write_synthetic(
    out: str | os.PathLike[str],
    like: str,
    n: int | None = None,
    seed: int = 0,
    max_seconds: float = 12.0,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write a synthetic store to ``out``; returns the number of samples."""
    spec = SPECS[like]
    count = 0
    attrs = {
        "synthetic": True,
        "synth_like": like,
        "synth_seed": seed,
        "synth_max_seconds": max_seconds,
        "synth_rule": RULE,
    }
    with FeatureStoreWriter(
        out,
        schemas(like),
        dataset=f"synth-{like}",
        task=spec.task,
        label_names=spec.label_names,
        attrs=attrs,
    ) as writer:
        for sample, _ in generate(like, n, seed, max_seconds):
            writer.add(sample)
            count += 1
            if progress is not None:
                progress(count)
    return count
