"""Where a clip's words come from: its transcript sidecar, else ASR, else a failure row.

:class:`WordSource` is the part of the text pipeline shared by every text backend: it gives
the timed words of one video (and says where they came from), which a text backend then
turns into vectors. Its settings -- ASR on or off, the ASR model, the voice-activity detector
that times ``.txt`` transcripts -- are part of the text modality's provenance (parameter
``words``), and :meth:`WordSource.from_record` re-creates it from there.

Before ASR the same detector looks for speech: a clip where it finds none is not transcribed
(a ``text`` row "no speech found"; noise is not given to the language check, which would call
it some language, nor to Whisper, which would write words). ASR's word times are checked
against it: a word that starts (or ends) in a pause is moved onto the voice
(:func:`~mea_cli.extract.vad.fit_to_stretches`), so no ASR word starts in silence.

A clip gets no words, and the failure table a ``text`` row saying why, when its sidecar is
unreadable (the row names any other sidecar of the clip, not read in its place) or lies wholly
outside the clip (:func:`~mea_cli.extract.text.fit_to_clip`), when it
has no sidecar and ASR is off (``--no-asr``), when it has no sidecar and no audio or no speech
found in its audio. ``mea extract`` refuses to start when ASR is on but unavailable and some clip
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
    SIDECAR_READING,
    SIDECAR_TIMES,
    TranscriptError,
    find_sidecars,
    fit_to_clip,
    read_sidecar,
    too_many_words,
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
            "sidecar_reading": SIDECAR_READING,
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
            record["asr_speech"] = "not transcribed when txt_timing's detector finds no speech"
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
        """ASR's words with their times moved onto the voice; nothing (and a failure row) when
        the detector finds no speech, or the language is not English; a failure row when the
        times cannot be checked (no detector)."""
        try:
            spans: list[Stretch] | None = self.vad.stretches(signal, rate)
        except VadUnavailable as err:
            spans = None
            out.failures.append(("text", f"ASR word times not checked against the voice: {err}"))
        if spans == []:
            out.failures.append(
                ("text", "no speech found by the voice-activity detector: not transcribed, no words")
            )
            return []
        problem = self.language_problem(signal)
        if problem:
            out.failures.append(("text", problem))
            return []
        words = self.asr.words(signal)
        return fit_to_stretches(words, spans) if words and spans else words

    def _sidecar_words(
        self, sides: list[Path], signal: np.ndarray | None, rate: int, duration: float, out: ClipWords
    ) -> None:
        """The words of the first of ``sides``. When it cannot be read, its failure row names the
        others, which are not read in its place (the first sidecar is the clip's transcript,
        and the one the cache's source signature follows): fix or remove it to use them."""
        side = sides[0]
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
            words = read_sidecar(side, stretches)
        except TranscriptError as err:
            others = ", ".join(other.name for other in sides[1:])
            unused = f"; {others} not used in its place (fix or remove {side.name})" if others else ""
            out.failures.append(("text", f"{err}{unused}"))
            return
        except VadUnavailable as err:
            out.failures.append(("text", f"{side.name}: cannot time a .txt transcript: {err}"))
            return
        out.words, problems = fit_to_clip(words, duration, side.name)
        if side.suffix.lower() == ".txt" and (crowded := too_many_words(words, duration, side.name)):
            problems.append(crowded)
        out.failures.extend(("text", p) for p in problems)

    def words_for(self, video: Path, signal: np.ndarray | None, rate: int, duration: float) -> ClipWords:
        """The words of ``video``; problems become failure rows, never exceptions."""
        out = ClipWords()
        sides = find_sidecars(video)
        if sides:
            self._sidecar_words(sides, signal, rate, duration, out)
        elif not self.asr_enabled:
            out.failures.append(
                ("text", "no transcript sidecar (.json/.align/.srt/.vtt/.txt) and ASR is off (--no-asr)")
            )
        elif signal is None or not len(signal):
            out.failures.append(("text", "no transcript sidecar and no audio to transcribe"))
        else:
            out.source = "asr"
            out.words = self._asr_words(signal, rate, out)
        if out.source != "none" and not out.words and not out.failures:
            out.failures.append(("text", f"{out.source}: no words"))
        return out
