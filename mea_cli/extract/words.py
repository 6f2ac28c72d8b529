"""Where a clip's words come from: its transcript sidecar, else ASR, else a failure row.

:class:`WordSource` is the part of the text pipeline shared by every text backend: it gives
the timed words of one video (and says where they came from), which a text backend then
turns into vectors. Its settings -- ASR on or off, the ASR model, the voice-activity detector
that times ``.txt`` transcripts -- are part of the text modality's provenance (parameter
``words``), and :meth:`WordSource.from_record` re-creates it from there.

ASR's word times are checked against the same detector: a word that starts (or ends) in a
pause is moved onto the voice (:func:`~mea_cli.extract.vad.fit_to_stretches`), so no ASR word
starts in silence.

A clip gets no words, and the failure table a ``text`` row saying why, when its sidecar is
unreadable or lies wholly outside the clip (:func:`~mea_cli.extract.text.fit_to_clip`), when it has no sidecar and ASR is off (``--no-asr``), or when it has no sidecar
and no audio. ``mea extract`` refuses to start when ASR is on but unavailable and some clip
has no sidecar (:meth:`WordSource.require_asr`): an empty text modality is never silent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mea_cli.artifacts.features import Word
from mea_cli.errors import MeaError
from mea_cli.extract import language
from mea_cli.extract.asr import AsrUnavailable, WhisperASR, describe
from mea_cli.extract.language import LanguageID
from mea_cli.extract.text import (
    SIDECAR_ORDER,
    SIDECAR_TIMES,
    TranscriptError,
    find_sidecar,
    fit_to_clip,
    read_sidecar,
)
from mea_cli.extract.vad import SileroVAD, Stretch, VadUnavailable, fit_to_stretches


@dataclass
class ClipWords:
    """The words of one video, where they came from, and any problem (failure rows)."""

    words: list[Word] = field(default_factory=list)
    source: str = "none"  # sidecar.<ext> | asr | none
    failures: list[tuple[str, str]] = field(default_factory=list)


class WordSource:
    """Sidecar, else ASR (lazy: loaded on the first clip that needs it), else nothing."""

    def __init__(
        self,
        asr: bool = True,
        asr_model: str | os.PathLike[str] | None = None,
        threads: int = 1,
        language: str | None = None,
    ) -> None:
        self.asr_enabled = bool(asr)
        self.asr_model = str(Path(asr_model).expanduser().resolve()) if asr_model else None
        self.threads = int(threads)
        self.language = language  # stated with --language; None: checked per clip
        self._asr: WhisperASR | None = None
        self._vad: SileroVAD | None = None
        self._lid: LanguageID | None = None

    # -- set-up ----------------------------------------------------------------------------
    @property
    def asr(self) -> WhisperASR:
        if self._asr is None:
            self._asr = WhisperASR(self.asr_model, self.threads)
        return self._asr

    @property
    def vad(self) -> SileroVAD:
        if self._vad is None:
            self._vad = SileroVAD()
        return self._vad

    def require_asr(self, clips_without_sidecar: list[str]) -> None:
        """Check that ASR can run if some clip needs it (or a model was named); one clear
        :class:`MeaError` when it cannot. The model itself is loaded by the first clip."""
        if not self.asr_enabled or (not clips_without_sidecar and self.asr_model is None):
            return
        try:
            describe(self.asr_model)  # the package and the model folder are there
            if clips_without_sidecar and not self.language:
                language.model_dir()  # the language check can run (joined once into the cache)
        except AsrUnavailable as err:
            if not clips_without_sidecar:
                raise
            n = len(clips_without_sidecar)
            raise AsrUnavailable(
                f"{n} video(s) have no transcript sidecar (e.g. {clips_without_sidecar[0]}) and "
                f"ASR cannot run: {err}. Add transcripts, fix the ASR install, or pass --no-asr "
                "to extract them without text"
            ) from None

    def provenance(self) -> dict[str, Any]:
        """What decides the words: sidecar order and how their times meet the clip, the VAD
        timing ``.txt``, the ASR model."""
        record: dict[str, Any] = {
            "sidecars": list(SIDECAR_ORDER),
            # in the cache's fingerprint too: entries made before this rule are not reused
            "sidecar_times": SIDECAR_TIMES,
            "options": {"asr": "true" if self.asr_enabled else "false", "asr_model": self.asr_model or ""},
        }
        if self.language:
            record["options"]["language"] = self.language
        try:
            record["txt_timing"] = self.vad.provenance()
        except VadUnavailable as err:
            record["txt_timing"] = f"unavailable: {err}"
        if not self.asr_enabled:
            record["asr"] = "off"
        else:
            try:
                record["asr"] = describe(self.asr_model)
            except AsrUnavailable as err:
                record["asr"] = f"unavailable: {err}"
            record["asr_word_times"] = "moved out of the pauses found by txt_timing's detector"
            record["language"] = language.describe(self.language)
        return record

    @classmethod
    def from_record(cls, record: Any, asr_model: str | None = None) -> WordSource:
        """Re-create the word source a text modality's provenance records (``words``).

        ``asr_model`` overrides the recorded model folder (same content required). Raises a
        :class:`MeaError` naming what is unavailable or different.
        """
        if not isinstance(record, dict) or not isinstance(record.get("options"), dict):
            raise MeaError("the text provenance records no word source (sidecar/ASR settings)")
        opts = record["options"]
        src = cls(
            opts.get("asr") == "true",
            asr_model or opts.get("asr_model") or None,
            language=opts.get("language") or None,
        )
        if isinstance(record.get("asr"), dict):
            now = describe(src.asr_model)
            was = record["asr"]
            if now.get("model_sha256") != was.get("model_sha256"):
                raise AsrUnavailable(
                    f"ASR model {src.asr_model or 'tiny.en (packaged)'} differs from the one "
                    f"recorded ({was.get('model')}, sha256 {str(was.get('model_sha256'))[:12]}...)"
                )
        if isinstance(record.get("txt_timing"), dict):
            now_vad = src.vad.provenance()
            if now_vad.get("model_sha256") != record["txt_timing"].get("model_sha256"):
                raise VadUnavailable("the Silero VAD model here differs from the one recorded")
        return src

    def language_problem(self, signal: np.ndarray) -> str:
        """Why ``signal`` must not go to the English-only ASR ("" when it may): the stated
        ``--language``, else the language check (:mod:`mea_cli.extract.language`)."""
        if self.language:
            return "" if self.language == language.ENGLISH else language.stated_failure(self.language)
        if self._lid is None:
            self._lid = LanguageID(self.threads)
        found = self._lid.detect(signal)
        return "" if found.is_english else language.not_english_failure(found)

    # -- per video -------------------------------------------------------------------------
    def _asr_words(self, signal: np.ndarray, rate: int, out: ClipWords) -> list[Word]:
        """ASR's words with their times moved onto the voice; a failure row when the times
        cannot be checked (no detector) or no speech was found under the words."""
        words = self.asr.words(signal)
        if not words:
            return words
        try:
            spans = self.vad.stretches(signal, rate)
        except VadUnavailable as err:
            out.failures.append(("text", f"ASR word times not checked against the voice: {err}"))
            return words
        if not spans:
            out.failures.append(
                ("text", f"ASR heard {len(words)} word(s) where the voice-activity detector "
                 "found no speech; their times are ASR's")
            )  # fmt: skip
            return words
        return fit_to_stretches(words, spans)

    def words_for(self, video: Path, signal: np.ndarray | None, rate: int, duration: float) -> ClipWords:
        """The words of ``video``; problems become failure rows, never exceptions."""
        out = ClipWords()
        side = find_sidecar(video)
        if side is not None:
            out.source = f"sidecar{side.suffix.lower()}"

            def stretches() -> list[Stretch]:
                if signal is None or not len(signal):
                    return [(0.0, float(duration))]
                spans = self.vad.stretches(signal, rate)
                if not spans:
                    out.failures.append(
                        ("text", f"{side.name}: no speech found by the voice-activity detector; "
                         "words spread over the whole clip")
                    )
                    return [(0.0, float(duration))]
                return spans

            try:
                out.words, problems = fit_to_clip(read_sidecar(side, stretches), duration, side.name)
                out.failures.extend(("text", p) for p in problems)
            except TranscriptError as err:
                out.failures.append(("text", str(err)))
            except VadUnavailable as err:
                out.failures.append(("text", f"{side.name}: cannot time a .txt transcript: {err}"))
        elif not self.asr_enabled:
            out.failures.append(
                ("text", "no transcript sidecar (.json/.align/.srt/.vtt/.txt) and ASR is off (--no-asr)")
            )
        elif signal is None or not len(signal):
            out.failures.append(("text", "no transcript sidecar and no audio to transcribe"))
        else:
            out.source = "asr"
            problem = self.language_problem(signal)
            if problem:
                out.failures.append(("text", problem))
            else:
                out.words = self._asr_words(signal, rate, out)
        if out.source != "none" and not out.words and not out.failures:
            out.failures.append(("text", f"{out.source}: no words"))
        return out
