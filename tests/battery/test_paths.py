"""Battery, paths: an output that is one of the command's inputs, named by the same or by
another spelling of its path (``./x``, ``d/../x``, absolute), is refused before any work:
one line naming it, exit 2, the input untouched (``mea eval ckpt.pt --predictions ckpt.pt``
used to replace the checkpoint with a CSV)."""

from __future__ import annotations

from pathlib import Path

import pytest

from battery.harness import assert_refused, mea, snapshot
from battery.safety_data import csd_folder, mult_pickle, tiny_store, untrained_run

WORDS = ("also an input",)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("paths")
    good = tiny_store(root / "good.h5")
    other = tiny_store(root / "other.h5", seed=8)
    (root / "sub").mkdir()
    videos = root / "videos"
    videos.mkdir()
    (videos / "a.mp4").write_bytes(b"\0" * 64)
    labels = root / "labels.csv"
    labels.write_text("video,start,end,label,split\na,0,1,0.5,train\n")
    return {
        "root": root, "good": good, "other": other, "run": untrained_run(good, root / "runs"),
        "pkl": mult_pickle(root / "src.pkl"), "videos": videos, "labels": labels,
        "csd": csd_folder(root / "csd"),
    }  # fmt: skip


def refused(world: dict[str, Path], *args: str) -> str:
    before = snapshot(world["root"])
    return assert_refused(mea(*args, cwd=world["root"]), WORDS, before, [world["root"]])


def test_eval_predictions_onto_the_checkpoint(world: dict[str, Path]) -> None:
    ckpt = world["run"] / "ckpt.pt"
    refused(world, "eval", str(ckpt), "--predictions", str(ckpt))


def test_eval_predictions_onto_the_checkpoint_relative_spelling(world: dict[str, Path]) -> None:
    refused(world, "eval", str(world["run"]), "--predictions", "runs/tiny/../tiny/ckpt.pt")


@pytest.mark.slow  # the store is known only from the checkpoint (torch is imported)
def test_eval_predictions_onto_the_training_store(world: dict[str, Path]) -> None:
    """The store is not named on the command line: it is the one the checkpoint records."""
    refused(world, "eval", str(world["run"]), "--predictions", "./good.h5")


def test_eval_predictions_onto_the_features_given(world: dict[str, Path]) -> None:
    refused(world, "eval", str(world["run"]), "--features", "good.h5",
            "--predictions", str(world["good"]))  # fmt: skip


def test_import_out_onto_the_source(world: dict[str, Path]) -> None:
    refused(world, "import", "mult", "src.pkl", "--out", str(world["pkl"]))


def test_import_out_onto_the_source_via_dotdot(world: dict[str, Path]) -> None:
    refused(world, "import", "mult", str(world["pkl"]), "--out", "sub/../src.pkl")


def test_predict_out_onto_the_store(world: dict[str, Path]) -> None:
    refused(world, "predict", "good.h5", "--ckpt", str(world["run"]), "--out", "./good.h5")


def test_predict_out_onto_the_checkpoint(world: dict[str, Path]) -> None:
    refused(world, "predict", "good.h5", "--ckpt", "runs/tiny", "--out", "runs/tiny/ckpt.pt")


def test_merge_out_onto_an_input(world: dict[str, Path]) -> None:
    refused(world, "merge", "good.h5", "other.h5", "--out", "./other.h5")


def test_extract_out_onto_the_labels(world: dict[str, Path]) -> None:
    refused(world, "extract", "videos", "--labels", "labels.csv", "--out", str(world["labels"]),
            "--no-asr")  # fmt: skip


def test_extract_out_onto_the_video(world: dict[str, Path]) -> None:
    refused(world, "extract", "videos/a.mp4", "--out", "videos/../videos/a.mp4", "--no-asr")


def test_extract_out_onto_a_video_of_the_folder(world: dict[str, Path]) -> None:
    refused(world, "extract", "videos", "--out", "videos/a.mp4", "--no-asr")


def test_import_csd_out_onto_one_of_its_sequences(world: dict[str, Path]) -> None:
    refused(world, "import", "csd", "csd", "--out", "csd/audio.csd", "--text-csd", "text.csd",
            "--vision-csd", "vision.csd", "--audio-csd", "audio.csd", "--labels-csd",
            "labels.csd", "--dataset", "mosi")  # fmt: skip


@pytest.mark.slow
def test_extract_of_nothing_but_undecodable_media_leaves_no_cache(tmp_path: Path) -> None:
    """Every file fails to decode: no store is written, and neither is the cache folder this
    run made for resuming (one line, exit 2, the folder as it was)."""
    (tmp_path / "junk.mp4").write_bytes(bytes(range(256)) * 20)
    before = snapshot(tmp_path)
    r = mea("extract", "junk.mp4", "--out", "o.h5", "--no-asr", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "o.h5 was not written" in r.stderr.splitlines()[-1]
    assert snapshot(tmp_path) == before
