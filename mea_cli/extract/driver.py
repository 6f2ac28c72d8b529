"""``mea extract``: a folder of videos -> one feature store (text, vision, audio, unaligned).

Flow: find the videos (:func:`~mea_cli.extract.media.find_videos`), keep this shard's share
(``--shard i/n``: every n-th video of the sorted list, starting at the i-th, 1-based), reuse
every finished video from the per-video cache (:mod:`mea_cli.extract.cache`), extract the
rest in ``workers`` spawned processes (each loads the face model, openSMILE and the word
vectors once), and finally pack the store in one pass: cut each video into the segments of
``labels.csv`` (every modality sliced by time: a step belongs to a segment when its midpoint
lies in ``[start, end)``) or keep one unlabelled sample per video, and write it atomically.

Failure table semantics: one row ``(video, stage, message)`` per problem; stages are
``decode`` (the file will not open, or breaks off part-way), ``vision`` (no video stream, no
face in any frame), ``audio`` (no audio stream, audio undecodable), ``text`` (no transcript
and no ASR, unreadable transcript, no words) and ``labels`` (a label row naming a video that
is not there). A video that will not open yields no sample; any other problem leaves that
modality's sequence empty (zero steps) and keeps the sample.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mea_cli.artifacts.features import ExtractorInfo, FeatureStoreWriter, ModalitySchema, Sample
from mea_cli.errors import MeaError
from mea_cli.extract import cache
from mea_cli.extract.cache import VideoResult
from mea_cli.extract.labels import LabelFile, Segment, match_videos, read_labels
from mea_cli.extract.media import (
    AUDIO_RATE,
    DecodeStopped,
    MediaError,
    decode_audio,
    find_videos,
    iter_frames,
    probe,
)
from mea_cli.extract.text import SIDECAR_ORDER

if TYPE_CHECKING:
    from mea_cli.extract.text import WhisperASR

FACE_BACKENDS = ("blendshapes", "pyfeat")


class ExtractError(MeaError):
    """A problem with the extraction request itself (not with one video)."""


@dataclass(frozen=True)
class ExtractConfig:
    """Settings that decide what is extracted (they are part of the cache fingerprint)."""

    fps: float | None = None  # None: every frame at the native rate
    max_side: int = 0  # shrink frames whose longer side exceeds this (0: never)
    face_backend: str = "blendshapes"
    face_model: str | None = None
    pyfeat_weights: str | None = None
    audio_set: str = "egemaps"
    glove: str | None = None
    asr: bool = True  # transcribe with faster-whisper when there is no sidecar (if installed)
    threads: int = 1  # threads per worker for ASR

    def __post_init__(self) -> None:
        from mea_cli.extract.audio import AUDIO_SETS

        if self.face_backend not in FACE_BACKENDS:
            raise ExtractError(f"--face-backend must be one of {', '.join(FACE_BACKENDS)}")
        if self.audio_set not in AUDIO_SETS:
            raise ExtractError(f"--audio-set must be one of {', '.join(AUDIO_SETS)}")
        if self.fps is not None and not self.fps > 0:
            raise ExtractError("--fps must be positive")
        if self.face_backend == "pyfeat" and not self.pyfeat_weights:
            raise ExtractError("--face-backend pyfeat needs --pyfeat-weights DIR")


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/n"`` (1-based) -> ``(i, n)``; ``None`` -> ``(1, 1)``."""
    if text is None:
        return 1, 1
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ExtractError(f"--shard {text!r}: expected i/n, e.g. 1/4") from None
    if not (n >= 1 and 1 <= i <= n):
        raise ExtractError(f"--shard {text!r}: need 1 <= i <= n")
    return i, n


# -- per-process state (workers build it once) -----------------------------------------------
class Extractors:
    """The loaded backends of one process: face, audio, word vectors, ASR (lazy)."""

    def __init__(self, cfg: ExtractConfig) -> None:
        from mea_cli.extract.audio import AudioExtractor
        from mea_cli.extract.glove import load_vectors
        from mea_cli.extract.text import asr_available

        self.cfg = cfg
        if cfg.face_backend == "pyfeat":
            from mea_cli.extract.pyfeat_backend import PyFeatExtractor

            self.face = PyFeatExtractor(cfg.pyfeat_weights)
        else:
            from mea_cli.extract.face import BlendshapeExtractor

            self.face = BlendshapeExtractor(cfg.face_model)
        self.audio = AudioExtractor(cfg.audio_set)
        self.kv = load_vectors(cfg.glove)
        self.asr_ok = cfg.asr and asr_available()
        self._asr = None
        self.schema_list: list[ModalitySchema] = self.schemas()

    @property
    def asr(self) -> WhisperASR:
        if self._asr is None:
            from mea_cli.extract.text import WhisperASR

            self._asr = WhisperASR(self.cfg.threads)
        return self._asr

    def schemas(self) -> list[ModalitySchema]:
        """Feature names and provenance of the three modalities, for the store and merges."""
        import gensim

        from mea_cli.extract.audio import AUDIO_RATE_HZ
        from mea_cli.extract.glove import vectors_source
        from mea_cli.extract.text import SIDECAR_ORDER

        dim = self.kv.vector_size
        text = ExtractorInfo(
            "glove-words",
            str(gensim.__version__),
            {
                "vectors": vectors_source(self.cfg.glove),
                "dim": dim,
                "tokenizer": "lower-cased words, punctuation dropped",
                "oov": "zero vector, step kept",
                "sidecars": list(SIDECAR_ORDER),
                "asr": "faster-whisper tiny.en int8" if self.asr_ok else "off",
            },
        )
        face = self.face.provenance()
        params = dict(face["parameters"])
        params.update({"fps": self.cfg.fps or "native", "max_side": self.cfg.max_side})
        vision = ExtractorInfo(str(face["name"]), str(face["version"]), params)
        audio = ExtractorInfo(**self.audio.provenance())
        rate = float(self.cfg.fps) if self.cfg.fps else float("nan")
        return [
            ModalitySchema("text", tuple(f"glove_{i}" for i in range(dim)), text),
            ModalitySchema("vision", tuple(self.face.feature_names), vision, rate),
            ModalitySchema("audio", tuple(self.audio.feature_names), audio, AUDIO_RATE_HZ),
        ]

    def fingerprint(self) -> str:
        return json.dumps(
            [s.extractor.to_json() for s in self.schemas()] + [asdict(self.cfg)],
            sort_keys=True,
            default=str,
        )


def _empty(dim: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((0, dim), np.float32), np.zeros((0, 2), np.float64)


def extract_video(ex: Extractors, key: str, path: Path) -> VideoResult:
    """Run every modality on one video; problems become failure rows, never exceptions."""
    from mea_cli.extract.audio import speech_span
    from mea_cli.extract.glove import embed_tokens
    from mea_cli.extract.text import TranscriptError, find_sidecar, read_sidecar, to_tokens

    dims = {s.name: s.dim for s in ex.schema_list}
    res = VideoResult(key, {}, {})
    fails = res.failures
    try:
        info = probe(path)
    except MediaError as err:
        res.fatal = True
        fails.append(("decode", err.problem))
        for m, d in dims.items():
            res.features[m], res.times[m] = _empty(d)
        return res
    # audio
    t0 = time.perf_counter()
    signal = None
    res.features["audio"], res.times["audio"] = _empty(dims["audio"])
    if not info.has_audio:
        fails.append(("audio", "no audio stream"))
    else:
        try:
            signal = decode_audio(path, AUDIO_RATE)
            res.features["audio"], res.times["audio"] = ex.audio.extract(signal, AUDIO_RATE)
        except MediaError as err:
            fails.append(("audio", err.problem))
    res.seconds["audio"] = time.perf_counter() - t0
    # vision
    t0 = time.perf_counter()
    res.features["vision"], res.times["vision"] = _empty(dims["vision"])
    if not info.has_video:
        fails.append(("vision", "no video stream (audio-only file)"))
    else:
        period = 1.0 / ex.cfg.fps if ex.cfg.fps else 1.0 / (info.fps if info.fps > 0 else 25.0)
        seen = 0
        try:
            x, t, seen = ex.face.extract(iter_frames(path, ex.cfg.fps, ex.cfg.max_side), period)
            res.features["vision"], res.times["vision"] = x, t
        except DecodeStopped as err:
            x, t, seen = err.partial or (*_empty(dims["vision"]), 0)
            res.features["vision"], res.times["vision"] = x, t
            fails.append(("decode", err.problem))
        except MediaError as err:
            fails.append(("vision", err.problem))
        if seen and not len(res.features["vision"]):
            fails.append(("vision", f"no face found in {seen} frames"))
    res.seconds["vision"] = time.perf_counter() - t0
    duration = info.duration
    if not math.isfinite(duration):
        ends = [res.times[m][-1, 1] for m in ("audio", "vision") if len(res.times[m])]
        duration = max(ends) if ends else (len(signal) / AUDIO_RATE if signal is not None else 0.0)
    res.duration = float(duration)
    # text
    t0 = time.perf_counter()
    res.features["text"], res.times["text"] = _empty(dims["text"])
    words = None
    side = find_sidecar(path)
    if side is not None:
        try:
            words = read_sidecar(side, speech_span(signal, AUDIO_RATE, res.duration))
            res.text_source = f"sidecar{side.suffix.lower()}"
        except TranscriptError as err:
            fails.append(("text", str(err)))
    elif not ex.asr_ok:
        why = (
            "ASR disabled (--no-asr)"
            if not ex.cfg.asr
            else "ASR not installed (pip install 'mea-cli[asr]')"
        )
        fails.append(("text", f"no transcript sidecar (.json/.align/.srt/.vtt/.txt) and {why}"))
    elif signal is None:
        fails.append(("text", "no transcript sidecar and no audio to transcribe"))
    else:
        words = ex.asr.words(signal)
        res.text_source = "asr"
    if words is not None:
        tokens, ttimes = to_tokens(words)
        if not tokens:
            fails.append(("text", f"{res.text_source}: no words"))
        else:
            x, oov = embed_tokens(ex.kv, tokens)
            res.features["text"], res.times["text"] = x, ttimes
            res.tokens, res.oov = len(tokens), oov
    res.seconds["text"] = time.perf_counter() - t0
    return res


_STATE: Extractors | None = None


def _init_worker(cfg: ExtractConfig) -> None:
    global _STATE
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    _STATE = Extractors(cfg)


def _work(
    key: str, path: str, entry: str, fingerprint: str, signature: dict[str, Any]
) -> dict[str, Any]:
    assert _STATE is not None
    res = extract_video(_STATE, key, Path(path))
    cache.save(Path(entry), res, fingerprint, signature)
    return {
        "key": key,
        "duration": res.duration,
        "failures": len(res.failures),
        "seconds": res.seconds,
    }


# -- driver ----------------------------------------------------------------------------------
@dataclass
class Progress:
    """What the progress bar shows."""

    done: int
    total: int
    failures: int
    media_seconds: float  # seconds of video extracted in this run (cache hits excluded)
    elapsed: float

    @property
    def rtf(self) -> float:
        """Real-time factor: seconds of video per second of wall-clock time."""
        return self.media_seconds / self.elapsed if self.elapsed > 0 else 0.0


@dataclass
class ExtractReport:
    """The outcome of one ``mea extract`` run."""

    out: Path
    videos: int
    extracted: int
    cached: int
    skipped_files: int
    samples: int
    failures: list[tuple[str, str, str]]
    media_seconds: float  # of the videos extracted in this run
    wall_seconds: float
    compute_seconds: dict[str, float] = field(default_factory=dict)
    tokens: int = 0
    oov: int = 0
    text_sources: dict[str, int] = field(default_factory=dict)

    @property
    def rtf(self) -> float:
        return self.media_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def oov_rate(self) -> float:
        return self.oov / self.tokens if self.tokens else float("nan")


def video_key(root: Path, path: Path) -> str:
    """Video id: the path relative to the input folder, without extension, '/'-separated."""
    rel = path.relative_to(root) if root.is_dir() else Path(path.name)
    return rel.with_suffix("").as_posix()


def _slice(x: np.ndarray, t: np.ndarray, start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
    if not len(t):
        return x, t
    mid = t.mean(axis=1)
    keep = (mid >= start) & (mid < end)
    return x[keep], t[keep]


def extract(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    cfg: ExtractConfig | None = None,
    *,
    labels: str | os.PathLike[str] | None = None,
    workers: int = 1,
    cache_dir: str | os.PathLike[str] | None = None,
    shard: str | None = None,
    dataset: str = "",
    progress: Callable[[Progress], None] | None = None,
) -> ExtractReport:
    """Extract every video under ``source`` into the feature store ``out`` (module docstring)."""
    cfg = cfg or ExtractConfig()
    if workers < 1:
        raise ExtractError("--workers must be at least 1")
    root = Path(source)
    out = Path(out)
    if out.exists() and out.is_dir():
        raise ExtractError(f"{out}: output is a directory")
    label_file: LabelFile | None = read_labels(labels) if labels is not None else None
    videos, others = find_videos(root)
    stems = {v.with_suffix("") for v in videos}
    # transcript sidecars belong to a video; anything else that is not a video is skipped
    skipped = sum(
        1 for p in others if not (p.suffix.lower() in SIDECAR_ORDER and p.with_suffix("") in stems)
    )
    keys = [video_key(root, v) for v in videos]
    dupes = [k for k, c in Counter(keys).items() if c > 1]
    if dupes:
        clash = [str(v) for v, k in zip(videos, keys, strict=True) if k == dupes[0]]
        raise ExtractError(f"two videos share the id {dupes[0]!r}: {', '.join(clash)}; rename one")
    segs_by_key: dict[str, list[Segment]] = {}
    unmatched: list[Segment] = []
    if label_file is not None:
        segs_by_key, unmatched = match_videos(label_file, keys)
    i, n = parse_shard(shard)
    mine = [(k, v) for j, (k, v) in enumerate(zip(keys, videos, strict=True)) if j % n == i - 1]
    cdir = Path(cache_dir) if cache_dir is not None else out.with_name(out.name + ".cache")

    t_start = time.perf_counter()
    main = Extractors(cfg)  # validates models/vectors up front: one clear error, not N failures
    fingerprint = main.fingerprint()
    results: dict[str, VideoResult] = {}
    todo: list[tuple[str, Path, Path, dict[str, Any]]] = []
    for key, path in mine:
        entry = cache.entry_path(cdir, key)
        sig = cache.source_signature(path)
        hit = cache.load(entry, fingerprint, sig)
        if hit is not None:
            results[key] = hit
        else:
            todo.append((key, path, entry, sig))
    cached = len(results)
    done, nfail, media = cached, sum(len(r.failures) for r in results.values()), 0.0
    compute: Counter[str] = Counter()

    def tick(summary: dict[str, Any]) -> None:
        nonlocal done, nfail, media
        done += 1
        nfail += summary["failures"]
        if math.isfinite(summary["duration"]):
            media += summary["duration"]
        compute.update(summary["seconds"])
        if progress is not None:
            progress(Progress(done, len(mine), nfail, media, time.perf_counter() - t_start))

    if progress is not None:
        progress(Progress(done, len(mine), nfail, 0.0, time.perf_counter() - t_start))
    if todo:
        cdir.mkdir(parents=True, exist_ok=True)
    if workers == 1 or len(todo) <= 1:
        global _STATE
        _STATE = main
        for key, path, entry, sig in todo:
            tick(_work(key, str(path), str(entry), fingerprint, sig))
    else:
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(
            min(workers, len(todo)), mp_context=ctx, initializer=_init_worker, initargs=(cfg,)
        ) as pool:
            pending = {
                pool.submit(_work, key, str(path), str(entry), fingerprint, sig)
                for key, path, entry, sig in todo
            }
            try:
                while pending:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        tick(fut.result())
            except BaseException:
                for fut in pending:
                    fut.cancel()
                raise
    for key, path, entry, sig in todo:
        res = cache.load(entry, fingerprint, sig)
        if res is None:
            raise ExtractError(f"{entry}: cache entry for {path} vanished while extracting")
        results[key] = res
    wall = time.perf_counter() - t_start

    # -- pack ------------------------------------------------------------------------------
    schemas = main.schema_list
    failures: list[tuple[str, str, str]] = []
    if label_file is not None and i == 1:  # missing-video rows are reported by shard 1 only
        failures.extend(
            (
                seg.video,
                "labels",
                f"{label_file.path.name} line {seg.line}: no such video under {root}",
            )
            for seg in unmatched
        )
    samples: list[Sample] = []
    tokens = oov = 0
    sources: Counter[str] = Counter()
    for key, _path in mine:
        res = results[key]
        failures.extend((key, stage, msg) for stage, msg in res.failures)
        tokens += res.tokens
        oov += res.oov
        sources[res.text_source] += 1
        if res.fatal:
            continue
        if label_file is None:
            samples.append(
                Sample(
                    id=key,
                    video=key,
                    start=0.0,
                    end=res.duration,
                    features=dict(res.features),
                    times=dict(res.times),
                )
            )
            continue
        for seg in segs_by_key.get(key, []):
            end = min(seg.end, res.duration) if math.isfinite(res.duration) else seg.end
            feats, times = {}, {}
            for m in res.features:
                feats[m], times[m] = _slice(res.features[m], res.times[m], seg.start, seg.end)
            samples.append(
                Sample(
                    id=seg.id,
                    video=key,
                    start=seg.start,
                    end=end,
                    split=seg.split,
                    label=seg.label,
                    features=feats,
                    times=times,
                )
            )
    samples.sort(key=sample_order)
    failures.sort()
    task = label_file.task if label_file is not None else ""
    names = label_file.label_names if label_file is not None else ()
    attrs = {
        "source": str(root),
        "extract_videos": len(mine),
        "extract_skipped_files": skipped if i == 1 else 0,
        "extract_text_tokens": tokens,
        "extract_text_oov": oov,
        "extract_text_sources": dict(sorted(sources.items())),
        "shard": f"{i}/{n}",
    }
    with FeatureStoreWriter(
        out, schemas, dataset=dataset, task=task, label_names=names, attrs=attrs
    ) as w:
        for s in samples:
            w.add(s)
        for f in failures:
            w.add_failure(*f)
    return ExtractReport(
        out=out,
        videos=len(mine),
        extracted=len(todo),
        cached=cached,
        skipped_files=skipped,
        samples=len(samples),
        failures=failures,
        media_seconds=media,
        wall_seconds=wall,
        compute_seconds=dict(compute),
        tokens=tokens,
        oov=oov,
        text_sources=dict(sources),
    )


def sample_order(s: Sample) -> tuple[str, float, str]:
    """Samples are written by video, then segment start, then id (shards merge to the same)."""
    return (s.video, s.start if math.isfinite(s.start) else -1.0, s.id)
