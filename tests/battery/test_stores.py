"""Battery, stores: a feature store whose content is wrong (string or complex features,
fractional offsets, a segment or a step that ends before it starts, NaN / inf features, an
infinite label) is refused by every command that reads it, before any work: one line naming
the store and the problem, exit 2, nothing created (no run directory, no output file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from battery.harness import assert_refused, mea, snapshot
from battery.safety_data import BREAKS, broken_copy, tiny_store, untrained_run


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("stores")
    good = tiny_store(root / "good.h5")
    bad = root / "bad"
    bad.mkdir()
    stores = {kind: broken_copy(good, kind, bad) for kind in BREAKS}
    run = untrained_run(good, root / "made-runs")
    return {"root": root, "good": good, "run": run, **stores}


@pytest.mark.parametrize("kind", sorted(BREAKS))
def test_info_refuses_broken_content(world: dict[str, Path], kind: str) -> None:
    before = snapshot(world["root"])
    line = assert_refused(
        mea("info", str(world[kind])), (str(world[kind]), *BREAKS[kind][1]), before, [world["root"]]
    )
    assert line.startswith("error:"), line


@pytest.mark.parametrize("kind", ["string-dtype", "nan-feature", "end-before-start"])
def test_train_refuses_before_creating_the_run(world: dict[str, Path], kind: str) -> None:
    runs = world["root"] / "runs-train"
    before = snapshot(world["root"])
    r = mea("train", str(world[kind]), "--dataset", "mosi", "--name", "x", "--runs-dir", str(runs),
            "--epochs", "1", "--device", "cpu")  # fmt: skip
    assert_refused(r, (str(world[kind]), *BREAKS[kind][1]), before, [world["root"]])
    assert not runs.exists()


@pytest.mark.slow  # eval loads the checkpoint (imports torch) before it reads the store
def test_eval_refuses_a_nan_store_instead_of_crashing(world: dict[str, Path]) -> None:
    store = world["nan-feature"]
    out = world["root"] / "pred.csv"
    before = snapshot(world["root"])
    r = mea("eval", str(world["run"]), "--features", str(store), "--predictions", str(out))
    assert_refused(r, (str(store), "non-finite"), before, [world["root"]])


@pytest.mark.slow  # predict loads the checkpoint (imports torch) before it reads the store
def test_predict_refuses_an_inf_store(world: dict[str, Path]) -> None:
    store = world["inf-feature"]
    out = world["root"] / "pred.csv"
    before = snapshot(world["root"])
    r = mea("predict", str(store), "--ckpt", str(world["run"]), "--out", str(out))
    assert_refused(r, (str(store), "non-finite"), before, [world["root"]])


def test_compare_refuses_a_nan_store_before_any_run(world: dict[str, Path]) -> None:
    runs = world["root"] / "runs-compare"
    before = snapshot(world["root"])
    r = mea("compare", str(world["nan-feature"]), "--dataset", "mosi", "--models", "mea,mult",
            "--seeds", "1", "--runs-dir", str(runs), "--device", "cpu")  # fmt: skip
    assert_refused(r, ("non-finite",), before, [world["root"]])
    assert not runs.exists()


def test_merge_refuses_a_broken_input(world: dict[str, Path]) -> None:
    out = world["root"] / "merged.h5"
    before = snapshot(world["root"])
    r = mea("merge", str(world["good"]), str(world["reversed-step-time"]), "--out", str(out))
    assert_refused(r, ("/vision/times", "ends before it starts"), before, [world["root"]])
