"""The spoken-language check before the English-only ASR (mea_cli.extract.language): German
speech becomes a failure row, never confident English words; ``--language`` states it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sampleclips import plain_scene, require_media

from mea_cli.artifacts.features import FeatureStore
from mea_cli.demo.media import speak, write_clip
from mea_cli.errors import MeaError
from mea_cli.extract.driver import ExtractConfig, extract
from mea_cli.extract.language import WINDOW_S, LanguageID, check_language_code
from mea_cli.extract.media import AUDIO_RATE
from mea_cli.extract.words import WordSource

ENGLISH = "The weather was lovely this morning and we walked to the station together."
GERMAN = "Der Film hat mir überhaupt nicht gefallen, er war langweilig."


def test_language_codes() -> None:
    assert check_language_code(None) is None and check_language_code(" DE ") == "de"
    assert check_language_code("haw") == "haw"  # Whisper's codes are not all two letters
    for bad in ("german", "d", "e1", "xx"):
        with pytest.raises(MeaError, match=f"--language '{bad}': not a language code Whisper knows"):
            check_language_code(bad)


def test_bad_language_is_one_line_and_exit_2(tmp_path: Path, mea) -> None:
    (tmp_path / "v").mkdir()
    code, _, err = mea("extract", str(tmp_path / "v"), "--out", str(tmp_path / "o.h5"), "--language", "deutsch")
    assert code == 2 and err.count("\n") == 1 and "--language 'deutsch'" in err
    assert not (tmp_path / "o.h5").exists()


@pytest.mark.slow
def test_german_speech_is_detected_and_not_transcribed(one_torch_thread) -> None:
    require_media(face_model=False)
    en, de = speak(ENGLISH), speak(GERMAN, voice="de")
    found_en, found_de = LanguageID().detect(en), LanguageID().detect(de)
    assert found_en.language == "en" and found_en.is_english
    assert found_de.language == "de" and not found_de.is_english and found_de.english < 0.3
    checked = WordSource()
    assert checked.language_problem(en) == ""
    problem = checked.language_problem(de)
    assert "speech is not English: most likely 'de'" in problem and "no words" in problem
    # a stated language is not checked: English goes to ASR, anything else does not
    assert WordSource(language="en").language_problem(de) == ""
    assert "--language de" in WordSource(language="de").language_problem(en)


def test_the_check_encodes_a_short_clip_padded_to_the_window_not_to_30_s(one_torch_thread) -> None:
    lid = LanguageID()
    frames: list[int] = []
    encode = lid._model.encode

    def recording_encode(features: np.ndarray) -> object:
        frames.append(features.shape[-1])
        return encode(features)

    lid._model.encode = recording_encode
    per_second = AUDIO_RATE // lid._model.feature_extractor.hop_length  # 100 mel frames
    for seconds in (2, 20, 45):
        lid.detect(np.zeros(seconds * AUDIO_RATE, np.float32))
    assert frames == [int(WINDOW_S * per_second), 20 * per_second, 30 * per_second]


@pytest.mark.slow
def test_extract_turns_german_speech_into_a_failure_row(tmp_path: Path) -> None:
    require_media()
    audio = np.concatenate([np.zeros(AUDIO_RATE // 2, np.float32), speak(GERMAN, voice="de")])
    folder = tmp_path / "v"
    folder.mkdir()
    write_clip(folder / "film.mp4", plain_scene(128), len(audio) / AUDIO_RATE, audio=audio)
    out = tmp_path / "de.h5"
    extract(folder, out, ExtractConfig(asr=True))
    with FeatureStore(out) as s:
        assert s.words(0) == [] and len(s.sequence(0, "text")) == 0
        rows = [f for f in s.failures if f.stage == "text"]
        assert len(rows) == 1 and "speech is not English: most likely 'de'" in rows[0].message
        record = s.modalities["text"].extractor.parameters["words"]["language"]
        assert record["check"].startswith("whisper-base") and len(record["model_sha256"]) == 64


def test_uncertain_english_stays_english_and_a_likelier_other_language_does_not() -> None:
    """The rule (module docstring): English when it is the most likely language or p(en) >= 0.5."""
    from mea_cli.extract.language import Detection

    assert Detection("en", 0.45, 0.45).is_english  # noisy room: spread guess, English on top
    assert Detection("de", 0.40, 0.55).is_english
    assert not Detection("de", 0.60, 0.30).is_english
    assert not Detection("th", 0.20, 0.13).is_english


def test_a_refusal_names_language_en_and_a_stated_language_survives_the_provenance() -> None:
    """A synthetic English voice can be refused (docs/extraction.md, "Synthetic speech"): the
    failure row says how to state the language, and a stated language is what ``mea predict``
    re-creates from the store's provenance (no check there either)."""
    from mea_cli.extract.language import Detection, not_english_failure

    message = not_english_failure(Detection("th", 0.42, 0.19))
    assert "most likely 'th'" in message and message.endswith("--language en)")
    stated = WordSource.from_record(WordSource(language="en").provenance())
    assert stated.language == "en" and stated.language_problem(np.zeros(AUDIO_RATE, np.float32)) == ""
    checked = WordSource.from_record(WordSource().provenance())
    assert checked.language is None
