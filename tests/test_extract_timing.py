"""Where the words land in time, against known speech onsets: ``.txt`` transcripts placed by
the voice-activity detector, and ASR's word times moved out of the silence.

eSpeak NG says phrases that begin softly ("h", "f", "th", "sh"), at 90 words per minute (long
fricatives), after exactly 1 s of silence: its own leading and trailing digital silence is cut
(``trimmed``), so the onset is known to the sample. Real rooms have no digital silence, so each
phrase is also put in a simulated room (``sampleclips.in_room``: pink noise 15 dB below the
speech, over the whole signal, and reverberation with RT60 0.4 s). The real-recording check of
the same is in ``tests/test_real_clips.py`` (CREMA-D).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sampleclips import in_room, require_media, speak

from mea_cli.demo.media import trimmed
from mea_cli.extract.vad import SileroVAD, spread_over_stretches
from mea_cli.extract.words import WordSource

RATE = 16000
LEAD = 1.0
SOFT = ("how are you", "fine thanks", "thank you", "she sells sea shells", "phew", "first of all")
ROOM = {"snr_db": 15.0, "rt60": 0.4, "drr_db": 0.0}


def _clip(text: str, room: bool, seed: int, wpm: int = 90) -> np.ndarray:
    voice = trimmed(speak(text, wpm=wpm))
    audio = np.concatenate([np.zeros(int(LEAD * RATE), np.float32), voice, np.zeros(RATE, np.float32)])
    if room:
        audio = in_room(audio, (int(LEAD * RATE), int(LEAD * RATE) + len(voice)), seed=seed, **ROOM)
    return audio


@pytest.fixture(autouse=True)
def _speech() -> None:
    require_media(face_model=False)


def test_txt_words_start_at_soft_onsets() -> None:
    """In digital silence the first word starts at the onset (within one 10 ms frame); in the
    room within 0.2 s of it (measured: at most 0.12 s late; Silero alone, 0.15 s) and never
    more than 0.05 s before it."""
    vad = SileroVAD()
    for room in (False, True):
        late = []
        for seed, text in enumerate(SOFT):
            words = spread_over_stretches(text, vad.stretches(_clip(text, room, seed), RATE))
            assert [w.text for w in words] == text.split()
            late.append(words[0].start - LEAD)
        print(f"room={room}: first word minus onset", np.round(late, 3))
        limit = 0.2 if room else 0.011
        assert all(-0.05 <= d <= limit for d in late), (room, late)


@pytest.mark.slow
def test_asr_words_do_not_start_in_the_leading_silence(tmp_path: Path) -> None:
    """Whisper tiny.en on the same phrases at 150 words/min: no word starts before the onset
    (0.05 s slack: the guarantee), the first within 0.3 s of it (raw Whisper: at 0.00 s, 1 s
    early, in 11 of 12 such clips; after the fix at most 0.14 s late, when Whisper heard
    "fine, fine"). At 90 words/min Whisper's temperature fallback kicks in, which samples:
    its words then change from run to run, so this test does not use that speed. The language
    is stated (``--language en``): the check that runs before ASR is test_language.py's and
    test_extract_pipeline.py::test_asr_puts_spoken_words_in_text's, not this test's."""
    source = WordSource(asr=True, language="en")
    no_sidecar = tmp_path / "clip.wav"  # never written: the words come from ASR
    for room in (False, True):
        for seed, text in enumerate(SOFT[:3]):
            got = source.words_for(no_sidecar, _clip(text, room, seed, 150), RATE, LEAD + 3.0)
            assert got.source == "asr" and got.words and not got.failures, got
            starts = [w.start - LEAD for w in got.words]
            print(f"room={room} {text!r}: {[w.text for w in got.words]} starts {np.round(starts, 2)}")
            assert min(starts) >= -0.05 and starts[0] <= 0.3, (room, text, starts)
            assert all(w.end >= w.start for w in got.words)
