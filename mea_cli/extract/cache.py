"""Per-video result cache: what makes an interrupted ``mea extract`` resume where it stopped.

Each finished video is written as one ``.npz`` (full-video sequences of every modality, their
times, the words, the failure rows, timings and a JSON header) to
``<cache dir>/<sha1(video key)>.npz`` through :func:`mea_cli.paths.atomic_output`, so an entry
is either whole or absent (the temporary file a ``kill -9`` can leave behind is removed by the
next extraction that finds the cache folder unused: :func:`mea_cli.locks.share`). An entry is
reused only when its header matches the video's size
and mtime, its transcript sidecar's, and the fingerprint of the extraction settings (the
provenance of every backend and of the word source); anything else is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mea_cli.artifacts.features import Word
from mea_cli.extract.text import find_sidecar
from mea_cli.paths import atomic_output

MODALITIES = ("text", "vision", "audio")


@dataclass
class VideoResult:
    """Everything extracted from one video (full length, not yet cut into segments)."""

    key: str
    features: dict[str, np.ndarray]
    times: dict[str, np.ndarray]
    failures: list[tuple[str, str]] = field(default_factory=list)  # (stage, message)
    fatal: bool = False  # nothing usable (the file would not open)
    duration: float = float("nan")
    seconds: dict[str, float] = field(default_factory=dict)  # compute time per modality
    tokens: int = 0
    oov: int = 0
    text_source: str = "none"
    words: list[Word] = field(default_factory=list)
    # the audio summary (openSMILE Functionals) of each sample span: [S, 2] seconds, [S, D]
    summary_spans: np.ndarray | None = None
    summary: np.ndarray | None = None

    def summary_for(self, start: float, end: float) -> np.ndarray:
        """The summary row made for the span ``[start, end)`` (it was asked for at extraction)."""
        assert self.summary is not None and self.summary_spans is not None
        hit = np.flatnonzero((self.summary_spans[:, 0] == start) & (self.summary_spans[:, 1] == end))
        if not len(hit):
            raise KeyError(f"{self.key}: no audio summary for [{start}, {end})")
        return self.summary[hit[0]]


def entry_path(cache_dir: Path, key: str) -> Path:
    """The cache file of one (video, settings) key: a hash, so any key is a valid file name."""
    return cache_dir / f"{hashlib.sha1(key.encode('utf-8')).hexdigest()[:20]}.npz"


def source_signature(video: Path) -> dict[str, Any]:
    """Size and mtime of the video and of its transcript sidecar (if any). A broken symbolic
    link gets its own (``lstat``): it goes on to the decoder, which gives it a failure row,
    instead of stopping the whole run here."""
    st = video.stat() if video.exists() else video.lstat()
    sig: dict[str, Any] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sidecar": None}
    side = find_sidecar(video)
    if side is not None:
        s2 = side.stat()
        sig["sidecar"] = [side.name, s2.st_size, s2.st_mtime_ns]
    return sig


def save(path: Path, result: VideoResult, fingerprint: str, signature: dict[str, Any]) -> None:
    """Write ``result`` atomically (the cache folder must exist)."""
    header = {
        "key": result.key,
        "fingerprint": fingerprint,
        "signature": signature,
        "failures": result.failures,
        "fatal": result.fatal,
        "duration": result.duration,
        "seconds": result.seconds,
        "tokens": result.tokens,
        "oov": result.oov,
        "text_source": result.text_source,
        "words": [w.text for w in result.words],
    }
    arrays: dict[str, np.ndarray] = {
        "header": np.array(json.dumps(header)),
        "word_times": np.array([(w.start, w.end) for w in result.words], np.float64).reshape(-1, 2),
    }
    for m in result.features:
        arrays[f"{m}_x"] = np.asarray(result.features[m], np.float32)
        arrays[f"{m}_t"] = np.asarray(result.times[m], np.float64)
    if result.summary is not None and result.summary_spans is not None:
        arrays["summary_x"] = np.asarray(result.summary, np.float32)
        arrays["summary_spans"] = np.asarray(result.summary_spans, np.float64)
    with atomic_output(path, "extraction cache entry") as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def load(path: Path, fingerprint: str, signature: dict[str, Any]) -> VideoResult | None:
    """The cached result, or ``None`` when absent, unreadable or made from other inputs."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(str(z["header"]))
            if header.get("fingerprint") != fingerprint or header.get("signature") != signature:
                return None
            features = {m: z[f"{m}_x"] for m in MODALITIES if f"{m}_x" in z}
            times = {m: z[f"{m}_t"] for m in MODALITIES if f"{m}_t" in z}
            word_times = z["word_times"]
            summary = z.get("summary_x")
            spans = z.get("summary_spans")
        words = [
            Word(str(t), float(a), float(b))
            for t, (a, b) in zip(header["words"], word_times, strict=True)
        ]
        return VideoResult(
            key=header["key"],
            features=features,
            times=times,
            failures=[(str(a), str(b)) for a, b in header["failures"]],
            fatal=bool(header["fatal"]),
            duration=float(header["duration"]),
            seconds={k: float(v) for k, v in header["seconds"].items()},
            tokens=int(header["tokens"]),
            oov=int(header["oov"]),
            text_source=str(header["text_source"]),
            words=words,
            summary_spans=spans,
            summary=summary,
        )
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, json.JSONDecodeError):
        return None
