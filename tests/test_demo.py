"""``make demo`` (``python -m mea_cli.demo``): example clips from a packaged photo and synthetic
speech, then extract -> info -> train -> eval -> ablate -> predict, every step a ``mea`` command."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sampleclips import require_media

from mea_cli.demo import media
from mea_cli.demo.clips import CORNERS, SIZE, expression, photo, sentence
from mea_cli.extract.media import AUDIO_RATE


def test_the_packaged_speech_library_speaks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the espeak-ng program the wheel's libespeak-ng says the words (no root needed)."""
    pytest.importorskip("espeakng_loader")
    monkeypatch.setattr(media.shutil, "which", lambda name: None)
    assert media.speech_engine() == media.LIBRARY
    voice = media.trimmed(media.speak("hello world, this is a test"))
    seconds = len(voice) / AUDIO_RATE
    assert 1.0 < seconds < 3.5 and float(np.sqrt(np.mean(voice**2))) > 0.02
    faster = media.trimmed(media.speak("hello world, this is a test", wpm=260))
    assert len(faster) < 0.8 * len(voice)


def test_photo_and_expression() -> None:
    face = photo()
    assert face.shape == (SIZE, SIZE, 3) and face.dtype == np.uint8
    assert np.array_equal(expression(face, 0.0), face)  # no smile, mouth shut: the photo
    smile, frown = expression(face, 1.0), expression(face, -1.0)
    assert not np.array_equal(smile, frown)
    (x0, y0), (x1, _) = CORNERS  # only the mouth region moves, not the eyes
    assert x1 > x0 and np.array_equal(smile[:60], face[:60])
    rng = np.random.default_rng(0)
    assert sentence(0.1, rng).split()[-1] in ("okay", "fine", "average", "ordinary")
    assert sentence(-2.6, rng).count(" and ") == 2


def test_demo_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("precious")
    r = subprocess.run(
        [sys.executable, "-m", "mea_cli.demo", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert r.returncode != 0 and "is not a demo folder" in r.stderr
    assert (tmp_path / "mine.txt").read_text() == "precious"


@pytest.mark.slow
def test_demo_end_to_end(tmp_path: Path) -> None:
    """The demo's script, smaller (8 clips, 2 epochs): every step runs and makes its file."""
    require_media()
    out = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    args = ["--out", str(out), "--clips", "8", "--epochs", "2", "--workers", "1"]
    r = subprocess.run(
        [sys.executable, "-m", "mea_cli.demo", *args], capture_output=True, text=True, env=env
    )
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    for step in range(1, 8):
        assert f"== {step}/7" in r.stdout
    assert "demo done in" in r.stdout and "Traceback" not in r.stdout + r.stderr
    for made in ("feats.h5", "runs/demo/ckpt.pt", "runs/demo/ablation.md", "test-predictions.csv"):
        assert (out / made).is_file(), made
    with (out / "predictions.csv").open() as f:
        (row,) = list(csv.DictReader(f))
    assert row["clip"] == "review" and row["status"] == "ok" and row["words_source"] == "asr"
    assert "wonderful" in row["text"].lower() and row["pred_score"]
    with (out / "labels.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 8
    from mea_cli.demo.__main__ import MARKER, _prepare

    assert _prepare(out) == out  # the next run empties its own earlier folder
    assert sorted(p.name for p in out.iterdir()) == [MARKER]
