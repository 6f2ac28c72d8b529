"""Write a MOSI-shaped pickle in the layout MMSA 2.2.1 reads (its ``unaligned_50.pkl``).

The incumbent comparison feeds the *same file* to MMSA's own trainer and, through
``mea import mmsa``, to ours. The values are random (accuracies mean nothing); shapes, lengths
and split sizes are MOSI's as MMSA ships it::

    {"train" | "valid" | "test": {
        "id":               [N] str "<video>$_$<clip>"
        "raw_text":         [N] str
        "text":             [N, 50, 768] float32   BERT-sized text features
        "text_bert":        [N, 3, 50]   float32   token ids, attention mask, segment ids
        "audio":            [N, 375, 5]  float32   COVAREP-sized, zero-padded at the end
        "vision":           [N, 500, 20] float32   FACET-sized, zero-padded at the end
        "audio_lengths", "vision_lengths":  [N] int64 real steps (real steps first)
        "regression_labels": [N] float32 in [-3, 3] (multiples of 0.2, as means of 5 ratings)
        "classification_labels": [N] int64, "annotations": [N] str (Negative/Neutral/Positive)
    }}

Real lengths are uniform between a tenth of the padded length and the padded length (text:
3 tokens, [CLS] and [SEP] included, to 50), with one full-length sample per split; every real
step of every modality carries a weak cue of the label in its first feature (``signal``), so
both trainers can learn something. MOSI has 1284 / 229 / 686 samples; ``n_scale`` scales them
(0.125 gives the issue's 160 / 29 / 86). Same arguments, same bytes.

    python benchmarks/bench_mmsa_pickle.py OUT.pkl [--n-scale 0.125] [--seed 0]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from mea_cli.paths import atomic_output

MOSI_SIZES = {"train": 1284, "valid": 229, "test": 686}
SHAPES = {"text": (50, 768), "audio": (375, 5), "vision": (500, 20)}  # (padded T, D)
MIN_TEXT_TOKENS = 3
BERT_CLS, BERT_SEP, BERT_VOCAB = 101, 102, 30522


def _lengths(rng: np.random.Generator, n: int, t_max: int, t_min: int) -> np.ndarray:
    lengths = rng.integers(t_min, t_max + 1, size=n, dtype=np.int64)
    lengths[:1] = t_max  # one clip that fills the padded length, like truncated real clips
    return lengths


def _padded(
    rng: np.random.Generator, lengths: np.ndarray, shape: tuple[int, int], cue: np.ndarray
) -> np.ndarray:
    t, d = shape
    real = np.arange(t)[None, :] < lengths[:, None]  # [N, T]
    x = rng.standard_normal((len(lengths), t, d), dtype=np.float32)
    x[..., 0] += cue[:, None]
    return x * real[..., None]


def make_split(rng: np.random.Generator, name: str, n: int, signal: float) -> dict[str, Any]:
    """One split's dict (see the module docstring)."""
    labels = (rng.integers(-15, 16, size=n) * 0.2).astype(np.float32)
    cue = (signal * labels / 3.0).astype(np.float32)
    lengths = {
        "text": _lengths(rng, n, SHAPES["text"][0], MIN_TEXT_TOKENS),
        "audio": _lengths(rng, n, SHAPES["audio"][0], SHAPES["audio"][0] // 10),
        "vision": _lengths(rng, n, SHAPES["vision"][0], SHAPES["vision"][0] // 10),
    }
    feats = {m: _padded(rng, lengths[m], SHAPES[m], cue) for m in SHAPES}
    t_text = SHAPES["text"][0]
    real_tokens = np.arange(t_text)[None, :] < lengths["text"][:, None]
    ids = rng.integers(1000, BERT_VOCAB, size=(n, t_text)).astype(np.float32)
    ids[:, 0] = BERT_CLS
    ids[np.arange(n), lengths["text"] - 1] = BERT_SEP
    text_bert = np.stack([ids * real_tokens, real_tokens, np.zeros_like(ids)], axis=1)
    sentiment = np.sign(labels).astype(np.int64) + 1  # 0 negative, 1 neutral, 2 positive
    words = [
        " ".join(f"w{int(tok)}" for tok in ids[i, 1 : lengths["text"][i] - 1]) for i in range(n)
    ]
    return {
        "id": np.array([f"{name}{i // 8:04d}$_${i % 8 + 1}" for i in range(n)]),
        "raw_text": np.array(words),
        "text": feats["text"],
        "text_bert": text_bert.astype(np.float32),
        "audio": feats["audio"],
        "vision": feats["vision"],
        "audio_lengths": lengths["audio"],
        "vision_lengths": lengths["vision"],
        "annotations": np.array(["Negative", "Neutral", "Positive"])[sentiment],
        "classification_labels": sentiment,
        "regression_labels": labels,
    }


def write_mmsa_pickle(
    path: str | Path, n_scale: float = 0.125, seed: int = 0, signal: float = 0.5
) -> dict[str, Any]:
    """Write the pickle at ``path``; return its split sizes, byte count and sha256."""
    rng = np.random.default_rng(seed)
    data, sizes = {}, {}
    for split, n_full in MOSI_SIZES.items():
        n = max(1, round(n_full * n_scale))
        data[split] = make_split(rng, split, n, signal)
        sizes[split] = n
    blob = pickle.dumps(data, protocol=4)
    with atomic_output(path, "MMSA pickle") as tmp:
        tmp.write_bytes(blob)
    return {
        "path": str(path),
        "sizes": sizes,
        "n_scale": n_scale,
        "seed": seed,
        "bytes": len(blob),
        "sha256": hashlib.sha256(blob).hexdigest(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--n-scale", type=float, default=0.125)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--signal", type=float, default=0.5)
    a = ap.parse_args()
    print(json.dumps(write_mmsa_pickle(a.out, a.n_scale, a.seed, a.signal)))


if __name__ == "__main__":
    main()
