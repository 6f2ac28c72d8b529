"""``make demo`` (``python -m mea_cli.demo``): example clips from a packaged photo and synthetic
speech, then extract -> info -> train -> eval -> ablate -> predict, every step a ``mea`` command."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import warm
from sampleclips import require_media

from mea_cli.artifacts.features import FeatureStore
from mea_cli.demo import __main__ as demo
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
def test_demo_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """The demo's script, smaller (8 clips, 2 epochs): every step runs and makes its file. The
    script runs in this process and each of its ``mea`` commands in a child of the tests' warm
    interpreter (``warm.py``: the same entry point, without a torch import per step); the
    demo's own entry point as a fresh interpreter is test_demo_refuses_a_folder_it_did_not_make's."""
    require_media()
    commands, argvs = [], {}

    def warm_step(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        assert command[:3] == [sys.executable, "-m", "mea_cli"], command
        commands.append(command[3])
        argvs[command[3]] = command[3:]
        done = warm.run(command[3:], env=env)
        sys.stdout.write(done.stdout)
        sys.stderr.write(done.stderr)
        return done

    monkeypatch.setattr(demo, "subprocess", SimpleNamespace(run=warm_step))  # this module's only
    out = tmp_path / "demo"
    demo.main(["--out", str(out), "--clips", "8", "--epochs", "2", "--workers", "1"])
    r = capsys.readouterr()
    assert commands == ["extract", "info", "train", "eval", "ablate", "predict"]
    for step in range(1, 8):
        assert f"== {step}/7" in r.out
    assert "demo done in" in r.out and "Traceback" not in r.out + r.err
    for made in ("feats.h5", "runs/demo/ckpt.pt", "runs/demo/ablation.md", "test-predictions.csv"):
        assert (out / made).is_file(), made
    # the clips are synthetic English: stated, so no clip is refused by the language check
    assert argvs["extract"][-2:] == ["--language", "en"]
    with FeatureStore(out / "feats.h5") as store:
        assert store.failures == []
    with (out / "predictions.csv").open() as f:
        (row,) = list(csv.DictReader(f))
    assert row["clip"] == "review" and row["status"] == "ok" and row["words_source"] == "asr"
    assert "wonderful" in row["text"].lower() and row["pred_score"]
    with (out / "labels.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 8
    assert demo._prepare(out) == out  # the next run empties its own earlier folder
    assert sorted(p.name for p in out.iterdir()) == [demo.MARKER]
