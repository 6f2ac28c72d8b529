"""Battery, aliasing: an output that reaches one of the command's inputs through a symlink
or a hard link (another name for the same inode) is refused like the input's own name: one
line, exit 2, both names and their content untouched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from battery.harness import assert_refused, mea, snapshot
from battery.safety_data import mmsa_pickle, mult_pickle, tiny_store, untrained_run

WORDS = ("also an input",)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("aliasing")
    good = tiny_store(root / "good.h5")
    other = tiny_store(root / "other.h5", seed=8)
    run = untrained_run(good, root / "runs")
    w = {"root": root, "good": good, "other": other, "run": run,
         "mult": mult_pickle(root / "mult.pkl"), "mmsa": mmsa_pickle(root / "mmsa.pkl")}  # fmt: skip
    links = root / "links"
    links.mkdir()
    for name, target in (("ckpt", run / "ckpt.pt"), ("good", good), ("other", other),
                         ("mult", w["mult"]), ("mmsa", w["mmsa"])):  # fmt: skip
        os.symlink(target, links / f"sym-{name}")
        os.link(target, links / f"hard-{name}")
    w["links"] = links
    return w


def refused(world: dict[str, Path], *args: str) -> str:
    before = snapshot(world["root"])
    return assert_refused(mea(*args, cwd=world["root"]), WORDS, before, [world["root"]])


@pytest.mark.parametrize("link", ["sym", "hard"])
def test_eval_predictions_onto_a_link_to_the_checkpoint(world: dict[str, Path], link: str) -> None:
    refused(world, "eval", str(world["run"]), "--predictions", f"links/{link}-ckpt")


@pytest.mark.slow  # the store is known only from the checkpoint (torch is imported)
def test_eval_predictions_onto_a_hard_link_to_the_training_store(world: dict[str, Path]) -> None:
    refused(world, "eval", str(world["run"]), "--predictions", "links/hard-good")


@pytest.mark.parametrize("link", ["sym", "hard"])
def test_import_mult_out_onto_a_link_to_the_pickle(world: dict[str, Path], link: str) -> None:
    refused(world, "import", "mult", "mult.pkl", "--out", f"links/{link}-mult")


def test_import_mmsa_through_a_link_out_onto_the_pickle(world: dict[str, Path]) -> None:
    refused(world, "import", "mmsa", "links/sym-mmsa", "--out", "mmsa.pkl")


def test_predict_out_onto_a_hard_link_to_the_store(world: dict[str, Path]) -> None:
    refused(world, "predict", "good.h5", "--ckpt", "runs/tiny", "--out", "links/hard-good")


@pytest.mark.parametrize("link", ["sym", "hard"])
def test_merge_out_onto_a_link_to_an_input(world: dict[str, Path], link: str) -> None:
    refused(world, "merge", "good.h5", "other.h5", "--out", f"links/{link}-other")


def test_predict_out_onto_a_clip_of_the_folder(world: dict[str, Path]) -> None:
    """The clips ``predict FOLDER`` would read are inputs too, found before any work."""
    clips = world["root"] / "clips"
    clips.mkdir(exist_ok=True)
    (clips / "a.flv").write_bytes(b"\0" * 64)
    refused(world, "predict", "clips", "--ckpt", "runs/tiny", "--out", "clips/a.flv")


@pytest.mark.parametrize("command", ["predict", "extract"])
def test_out_onto_a_transcript_of_the_folder(world: dict[str, Path], command: str) -> None:
    """A clip's transcript sidecar is read too: `--out clips/a.txt` replaced it with the store
    (extract) or the predictions CSV (predict), exit 0."""
    talk = world["root"] / "talk"
    talk.mkdir(exist_ok=True)
    (talk / "a.flv").write_bytes(b"\0" * 64)
    (talk / "a.txt").write_text("hello there\n")
    (talk / "b.flv").write_bytes(b"\0" * 64)
    (talk / "b.SRT").write_text("1\n00:00:00,000 --> 00:00:01,000\nhi\n")
    given = ["--ckpt", "runs/tiny"] if command == "predict" else ["--no-asr"]
    for sidecar in ("a.txt", "b.SRT"):
        refused(world, command, "talk", *given, "--out", f"talk/{sidecar}")
    if command == "predict":  # one clip given by name: its transcript likewise
        refused(world, command, "talk/a.flv", *given, "--out", "talk/a.txt")
