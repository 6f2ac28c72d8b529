"""One process's extraction pipeline: the three backends plus the word source, per video.

:class:`ExtractConfig` says which backends with which options (what the command line gives);
:class:`Pipeline` holds them loaded (each worker process builds one) and
:meth:`Pipeline.extract_video` runs every modality on one video, turning each problem into a
failure row (stages ``decode``, ``vision``, ``audio``, ``text``), never an exception. A
file whose decoded streams end well short of the duration its header states (cut off
part-way) keeps what decoded, with a ``decode`` row saying where it stopped.
:meth:`Pipeline.from_schemas` re-creates the pipeline that made a store's (or a checkpoint's)
features from their recorded provenance, or raises one :class:`~mea_cli.errors.MeaError`
naming what is unavailable -- what ``mea predict`` needs.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mea_cli.artifacts.features import ExtractorInfo, ModalitySchema
from mea_cli.extract import backends, language
from mea_cli.extract.backends import (
    AudioBackend,
    BackendError,
    BackendSpec,
    FaceBackend,
    TextBackend,
)
from mea_cli.extract.cache import VideoResult
from mea_cli.extract.media import (
    AUDIO_RATE,
    DecodeStopped,
    MediaError,
    decode_audio,
    iter_frames,
    prefetch,
    probe,
    stopped_at,
    stops_short,
)
from mea_cli.extract.words import WordSource

# the failure row of an audio-only file (its vision sequence stays empty; the summary counts it)
AUDIO_ONLY = ("vision", "no video stream (audio-only file)")
WHOLE: tuple[tuple[float, float], ...] = ((0.0, math.inf),)  # one span: the whole video


@dataclass(frozen=True)
class ExtractConfig:
    """Settings that decide what is extracted (their provenance is the cache fingerprint)."""

    face: BackendSpec = field(default_factory=lambda: BackendSpec("face", "blendshapes"))
    audio: BackendSpec = field(default_factory=lambda: BackendSpec("audio", "opensmile"))
    text: BackendSpec = field(default_factory=lambda: BackendSpec("text", "glove"))
    asr: bool = True  # transcribe clips that have no transcript sidecar
    asr_model: str | None = None  # CTranslate2 Whisper folder; None: the packaged tiny.en
    threads: int = 1  # threads per worker for ASR
    language: str | None = None  # the spoken language stated (--language); None: checked

    def __post_init__(self) -> None:
        for kind in ("face", "audio", "text"):
            spec = getattr(self, kind)
            if spec.kind != kind:
                raise BackendError(f"{kind}: got a {spec.kind} backend spec")
            backends.backend_class(kind, spec.name)  # unknown or uninstalled: one clear error


def _empty(dim: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((0, dim), np.float32), np.zeros((0, 2), np.float64)


def _samples(span: tuple[float, float], n: int) -> tuple[int, int]:
    """The ``[a, b)`` sample indices of a ``[start, end)`` span (seconds; ``end`` may be inf)
    in a signal of ``n`` samples at :data:`AUDIO_RATE`."""
    start, end = span
    a = max(0, int(round(start * AUDIO_RATE)))
    return a, (n if not math.isfinite(end) else int(round(end * AUDIO_RATE)))


def _noting_end(
    frames: Iterator[tuple[float, np.ndarray]], period: float, end: list[float]
) -> Iterator[tuple[float, np.ndarray]]:
    """``frames`` as they are, appending where each ends (its time plus ``period``) to ``end``:
    how far the video decoded, whatever the backend finds in the frames."""
    for t, img in frames:
        end.append(t + period)
        yield t, img


def _check_container_end(ends: Sequence[float], stated: float, res: VideoResult) -> None:
    """A ``decode`` row when the longest decoded stream (``ends``: where each stopped, seconds)
    ends well short of the container's ``stated`` duration. This catches the streams whose
    headers state no duration of their own (Matroska, FLV), which :mod:`~mea_cli.extract.media`
    cannot check one by one; the longest, since one stream may legitimately end before another.
    Nothing to add when a stream already has its ``decode`` row."""
    if not ends or any(stage == "decode" for stage, _ in res.failures):
        return
    if stops_short(max(ends), stated):
        res.failures.append(("decode", stopped_at("decoding", max(ends), stated)))


def _covers(span: tuple[float, float], n: int) -> bool:
    """Whether ``signal[a:b]`` of ``span`` is the whole signal of ``n`` samples."""
    a, b = _samples(span, n)
    return a == 0 and b >= n


class Pipeline:
    """Loaded backends of one process (build once per worker; they hold models)."""

    def __init__(
        self, face: FaceBackend, audio: AudioBackend, text: TextBackend, words: WordSource
    ) -> None:
        self.face, self.audio, self.text, self.words = face, audio, text, words
        self._schemas: list[ModalitySchema] | None = None

    @classmethod
    def from_config(cls, cfg: ExtractConfig) -> Pipeline:
        return cls(
            backends.create(cfg.face),  # type: ignore[arg-type]
            backends.create(cfg.audio),  # type: ignore[arg-type]
            backends.create(cfg.text),  # type: ignore[arg-type]
            WordSource(cfg.asr, cfg.asr_model, cfg.threads, cfg.language),
        )

    @classmethod
    def from_schemas(
        cls,
        schemas: Mapping[str, ModalitySchema],
        overrides: Mapping[str, Mapping[str, str]] | None = None,
        asr_model: str | None = None,
    ) -> tuple[Pipeline, list[str]]:
        """Re-create the extraction that made ``schemas`` (modality -> schema).

        ``overrides`` maps a modality to option overrides (e.g. a moved model file); the
        content must be unchanged. Returns the pipeline and notes (tool versions that differ);
        raises a :class:`~mea_cli.errors.MeaError` naming what is unavailable or different.
        Each of ``text``, ``vision`` and ``audio`` must be in ``schemas``.
        """
        overrides = overrides or {}
        made: dict[str, Any] = {}
        notes: list[str] = []
        words: WordSource | None = None
        for modality in ("vision", "audio", "text"):
            if modality not in schemas:
                raise BackendError(f"no {modality} schema: cannot re-create the extraction")
            schema = schemas[modality]
            info = schema.extractor
            if modality == "text":
                params = dict(info.parameters)
                words = WordSource.from_record(params.pop("words", None), asr_model)
                info = ExtractorInfo(info.name, info.version, params)
            rec = backends.from_provenance(modality, info, overrides.get(modality))
            if tuple(rec.backend.feature_names) != tuple(schema.feature_names):
                raise BackendError(
                    f"{modality}: the re-created backend makes {len(rec.backend.feature_names)} "
                    f"features, the recorded schema has {schema.dim}"
                )
            made[modality] = rec.backend
            notes.extend(rec.notes)
        assert words is not None
        return cls(made["vision"], made["audio"], made["text"], words), notes

    # -- schema and fingerprint ----------------------------------------------------------------
    def schemas(self) -> list[ModalitySchema]:
        """Feature names and provenance of the three modalities, for the store and merges."""
        if self._schemas is None:
            text = self.text.provenance()
            text = ExtractorInfo(
                text.name, text.version, {**text.parameters, "words": self.words.provenance()}
            )
            self._schemas = [
                ModalitySchema("text", tuple(self.text.feature_names), text, self.text.nominal_rate_hz),
                ModalitySchema(
                    "vision",
                    tuple(self.face.feature_names),
                    self.face.provenance(),
                    self.face.nominal_rate_hz,
                ),
                ModalitySchema(
                    "audio",
                    tuple(self.audio.feature_names),
                    self.audio.provenance(),
                    self.audio.nominal_rate_hz,
                ),
            ]
        return self._schemas

    def summary_schemas(self) -> list[ModalitySchema]:
        """The per-sample summaries this extraction makes (``/summary`` of the store): the audio
        backend's Functionals when it has them (openSMILE), else none."""
        if not hasattr(self.audio, "functionals"):
            return []
        audio: Any = self.audio
        return [ModalitySchema("audio", tuple(audio.summary_names), audio.summary_provenance())]

    def fingerprint(self) -> str:
        """What a cache entry must have been made with to be reused (file places excluded:
        a moved model file with the same content keeps the cache, see
        :func:`~mea_cli.extract.backends.identity`)."""
        made = [*self.schemas(), *self.summary_schemas()]
        return json.dumps([backends.identity(s.extractor) for s in made])

    # -- one video -------------------------------------------------------------------------
    def extract_video(
        self, key: str, path: Path, spans: Sequence[tuple[float, float]] = WHOLE
    ) -> VideoResult:
        """Run every modality on one video; problems become failure rows, never exceptions.
        ``spans`` are the ``[start, end)`` seconds of the samples the video will be cut into
        (default: the whole video): each gets the audio summary (:meth:`summary_schemas`)."""
        dims = {
            "text": len(self.text.feature_names),
            "vision": len(self.face.feature_names),
            "audio": len(self.audio.feature_names),
        }
        res = VideoResult(key, {}, {})
        for m, d in dims.items():
            res.features[m], res.times[m] = _empty(d)
        try:
            info = probe(path)
        except MediaError as err:
            res.fatal = True
            res.failures.append(("decode", err.problem))
            return res
        signal, whole = self._audio(path, info.has_audio, res, spans)
        self._summaries(signal, spans, res, whole)
        video_end = self._vision(path, info.has_video, info.fps, res, dims["vision"])
        audio_end = None if signal is None else len(signal) / AUDIO_RATE
        _check_container_end([e for e in (video_end, audio_end) if e is not None], info.stated, res)
        duration = info.duration
        if not math.isfinite(duration):
            ends = [res.times[m][-1, 1] for m in ("audio", "vision") if len(res.times[m])]
            duration = max(ends) if ends else (len(signal) / AUDIO_RATE if signal is not None else 0.0)
        res.duration = float(duration)
        self._text(path, signal, res)
        return res

    def _audio(
        self, path: Path, has_audio: bool, res: VideoResult, spans: Sequence[tuple[float, float]]
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Decode the audio and make its LLDs; returns the signal and, when a span covers the
        whole signal and the backend makes both levels in one run
        (``extract_with_functionals``), that span's summary row (else ``None``). Audio that
        stops part-way keeps what decoded (a ``decode`` row); audio of which the backend makes
        no frame (shorter than its analysis window) is an ``audio`` row."""
        t0 = time.perf_counter()
        signal = whole = None
        if not has_audio:
            res.failures.append(("audio", "no audio stream"))
        else:
            try:
                try:
                    signal = decode_audio(path, AUDIO_RATE, getattr(self.audio, "mixdown", "mean"))
                except DecodeStopped as err:
                    assert err.signal is not None
                    signal = err.signal
                    res.failures.append(("decode", err.problem))
                both = getattr(self.audio, "extract_with_functionals", None)
                if both is not None and any(_covers(s, len(signal)) for s in spans):
                    x, t, whole = both(signal, AUDIO_RATE)
                else:
                    x, t = self.audio.extract(signal, AUDIO_RATE)
                res.features["audio"], res.times["audio"] = x, t
                if not len(x):
                    res.failures.append(("audio", self._no_frames(len(signal) / AUDIO_RATE)))
            except MediaError as err:
                res.failures.append(("audio", err.problem))
        res.seconds["audio"] = time.perf_counter() - t0
        return signal, whole

    def _no_frames(self, seconds: float) -> str:
        """The ``audio`` row of a signal the audio backend made no frame of: why, in one line
        (an audio stream with an empty sequence and no row would be a silent gap)."""
        window = getattr(self.audio, "window_s", None)
        if window is not None and seconds < window:
            why = f"shorter than the {window:.2f} s analysis window of {self.audio.name}"
        else:
            why = f"{self.audio.name} made nothing of it"
        return f"{seconds:.2f} s of audio: {why}, no frames"

    def _summaries(
        self,
        signal: np.ndarray | None,
        spans: Sequence[tuple[float, float]],
        res: VideoResult,
        whole: np.ndarray | None = None,
    ) -> None:
        """One audio summary per span of ``signal`` (NaN rows without a signal), added to
        ``res``'s (spans it already has are not recomputed); ``whole``, when given, is the
        summary of the whole signal, made with its LLDs."""
        if not hasattr(self.audio, "functionals"):
            return
        audio: Any = self.audio
        t0 = time.perf_counter()
        dim = len(audio.summary_names)
        have = [] if res.summary_spans is None else [tuple(x) for x in res.summary_spans.tolist()]
        new = [(float(a), float(b)) for a, b in spans if (a, b) not in have]
        rows = [] if res.summary is None else list(res.summary)
        for start, end in new:
            if signal is None:
                rows.append(np.full(dim, np.nan, np.float32))
            elif whole is not None and _covers((start, end), len(signal)):
                rows.append(whole)
            else:
                a, b = _samples((start, end), len(signal))
                rows.append(audio.functionals(signal[a:b], AUDIO_RATE))
        res.summary_spans = np.array([*have, *new], np.float64).reshape(-1, 2)
        res.summary = np.array(rows, np.float32).reshape(len(res.summary_spans), dim)
        res.seconds["summary"] = res.seconds.get("summary", 0.0) + time.perf_counter() - t0

    def add_summaries(self, res: VideoResult, path: Path, spans: Sequence[Sequence[float]]) -> bool:
        """Give a cached result the audio summaries of ``spans`` it lacks (it was cut another
        way when extracted): the audio is decoded again, nothing else recomputed. True when
        ``res`` changed."""
        if not hasattr(self.audio, "functionals") or res.fatal:
            return False
        have = set() if res.summary_spans is None else {tuple(x) for x in res.summary_spans.tolist()}
        if all((float(a), float(b)) in have for a, b in spans):
            return False
        signal = None
        if ("audio", "no audio stream") not in res.failures:
            try:
                signal = decode_audio(path, AUDIO_RATE, getattr(self.audio, "mixdown", "mean"))
            except DecodeStopped as err:  # the part the LLDs were made of (a decode row)
                signal = err.signal
            except MediaError:
                signal = None  # recorded as an audio failure when the video was extracted
        self._summaries(signal, [(float(a), float(b)) for a, b in spans], res)
        return True

    def _vision(
        self, path: Path, has_video: bool, fps: float, res: VideoResult, dim: int
    ) -> float | None:
        """Run the face backend over the frames; returns where the frames it saw end (seconds;
        ``None`` when none was decoded). The frames are turned as the file's display rotation
        says when the backend asks for it (``display_rotation``, recorded in its provenance)."""
        t0 = time.perf_counter()
        end: list[float] = []
        if not has_video:
            res.failures.append(AUDIO_ONLY)
        else:
            want = self.face.fps
            period = 1.0 / want if want else 1.0 / (fps if fps > 0 else 25.0)
            rotate = bool(getattr(self.face, "display_rotation", False))
            seen = 0
            try:
                frames = prefetch(iter_frames(path, want, self.face.max_side, rotate))
                x, t, seen = self.face.extract(_noting_end(frames, period, end), period)
                res.features["vision"], res.times["vision"] = x, t
            except DecodeStopped as err:
                x, t, seen = err.partial or (*_empty(dim), 0)
                res.features["vision"], res.times["vision"] = x, t
                res.failures.append(("decode", err.problem))
            except MediaError as err:
                res.failures.append(("vision", err.problem))
            if seen and not len(res.features["vision"]):
                res.failures.append(("vision", f"no face found in {seen} frames"))
        res.seconds["vision"] = time.perf_counter() - t0
        return end[-1] if end else None

    def _text(self, path: Path, signal: np.ndarray | None, res: VideoResult) -> None:
        t0 = time.perf_counter()
        got = self.words.words_for(path, signal, AUDIO_RATE, res.duration)
        res.failures.extend(got.failures)
        res.text_source = got.source
        res.words = got.words
        if got.words:
            feats = self.text.embed(got.words)
            res.features["text"], res.times["text"] = feats.x, feats.times
            res.tokens, res.oov = feats.tokens, feats.oov
            if not feats.tokens:
                res.failures.append(("text", f"{got.source}: no word tokens"))
            elif unknown := language.oov_problem(got.source, feats.tokens, feats.oov):
                res.failures.append(("text", unknown))
        res.seconds["text"] = time.perf_counter() - t0
