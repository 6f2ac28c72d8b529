"""Battery, checkpoints and runs: a store that changed since the run was trained (its sha256
differs from the one in config.json / the checkpoint) is refused by ``mea eval RUN`` and
``mea train --resume``, and settings that could only fail mid-training (a negative seed,
``train.lr=inf``) are refused before any run directory exists: one line, exit 2, nothing
created or changed. ``--allow-changed-store`` goes on, with a warning."""

from __future__ import annotations

from pathlib import Path

import pytest

from battery.harness import assert_refused, mea, snapshot
from battery.safety_data import tiny_store, untrained_run


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("checkpoints")
    store = tiny_store(root / "data.h5")
    run = untrained_run(store, root / "runs")
    tiny_store(root / "data.h5", seed=99)  # the same path, other content: the store changed
    return {"root": root, "store": store, "run": run, "fresh": tiny_store(root / "fresh.h5")}


@pytest.mark.slow  # loads a checkpoint or resolves a config: imports torch
def test_eval_refuses_a_changed_store(world: dict[str, Path]) -> None:
    before = snapshot(world["root"])
    r = mea("eval", str(world["run"]))
    assert_refused(r, (str(world["store"]), "changed", "--allow-changed-store"), before,
                   [world["root"]])  # fmt: skip


@pytest.mark.slow  # loads a checkpoint or resolves a config: imports torch
def test_eval_refuses_the_changed_store_named_explicitly(world: dict[str, Path]) -> None:
    before = snapshot(world["root"])
    r = mea("eval", str(world["run"] / "ckpt.pt"), "--features", str(world["store"]))
    assert_refused(r, ("changed", "sha256"), before, [world["root"]])


def test_resume_refuses_a_changed_store(world: dict[str, Path]) -> None:
    before = snapshot(world["root"])
    r = mea("train", "--resume", "--name", "tiny", "--runs-dir", str(world["root"] / "runs"),
            "--device", "cpu")  # fmt: skip
    assert_refused(r, (str(world["store"]), "changed", "--allow-changed-store"), before,
                   [world["root"]])  # fmt: skip


@pytest.mark.slow  # loads a checkpoint or resolves a config: imports torch
def test_eval_allow_changed_store_goes_on_and_says_so(world: dict[str, Path]) -> None:
    r = mea("eval", str(world["run"]), "--allow-changed-store", "--json")
    assert r.returncode == 0, r.stderr
    assert "WARNING" in r.stderr and "changed" in r.stderr and "--allow-changed-store" in r.stderr


@pytest.mark.parametrize(
    ("option", "words"),
    [
        (("--seeds", "-5"), ("--seeds", "-5")),
        (("--seeds", "1111,-1"), ("--seeds", "-1")),
        (("--set", "train.lr=inf"), ("lr", "finite")),
        (("--set", "train.lr=nan"), ("lr", "finite")),
        (("--set", "train.grad_clip=-inf"), ("grad_clip",)),
    ],
)
def test_train_refuses_before_creating_the_run(
    world: dict[str, Path], option: tuple[str, str], words: tuple[str, ...]
) -> None:
    runs = world["root"] / "new-runs"
    before = snapshot(world["root"])
    r = mea("train", str(world["fresh"]), "--dataset", "mosi", "--name", "x", "--runs-dir",
            str(runs), "--device", "cpu", *option)  # fmt: skip
    assert_refused(r, words, before, [world["root"]])
    assert not runs.exists()


@pytest.mark.slow  # loads a checkpoint or resolves a config: imports torch
def test_compare_refuses_inf_lr_before_any_run(world: dict[str, Path]) -> None:
    runs = world["root"] / "compare-runs"
    before = snapshot(world["root"])
    r = mea("compare", str(world["fresh"]), "--dataset", "mosi", "--models", "mea,mult",
            "--seeds", "1", "--set", "train.lr=inf", "--runs-dir", str(runs), "--device", "cpu")  # fmt: skip
    assert_refused(r, ("lr", "finite"), before, [world["root"]])
    assert not runs.exists()
