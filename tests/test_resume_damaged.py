"""``mea train --resume`` on a damaged ``state.pt`` (an entry missing, of another type, or one
that torch's own loaders refuse) is one line, exit 2, naming the file and what to do: never a
traceback."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from mea_cli import api

TINY = {"d": 8, "heads": 2, "d_h": 8, "psa_layers": 1, "hca_layers": 1}


@pytest.fixture(scope="module")
def run(synth_mosi: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-epoch tiny MEA run whose ``state.pt`` the tests damage (``original.pt``: a copy)."""
    runs = tmp_path_factory.mktemp("resume") / "runs"
    api.train(
        synth_mosi, dataset="mosi", epochs=1, name="r", model_overrides=TINY, device="cpu",
        runs_dir=runs, threads=1,
    )  # fmt: skip
    shutil.copy(runs / "r" / "state.pt", runs / "original.pt")
    (runs / "r" / "metrics.json").unlink()  # unfinished: --resume reads state.pt
    return runs / "r"


def _garbage_rng(st: dict) -> None:
    st["rng"]["torch"] = 1


DAMAGE: dict[str, tuple[Callable[[dict], object], str]] = {
    "no optimizer": (lambda st: st.pop("optimizer"), "(optimizer: missing)"),
    "no rng": (lambda st: st.pop("rng"), "(rng: missing)"),
    "epoch x": (lambda st: st.update(epoch="x"), "(epoch: str 'x')"),
    "stopped str": (lambda st: st.update(stopped="no"), "(stopped: str 'no')"),
    "empty best_state": (lambda st: st.update(best_state={}), "(best_state: empty, best epoch 1)"),
    "best_state of other shapes": (
        lambda st: st.update(best_state={"w": torch.zeros(2)}),
        "another model (",
    ),
    "no param groups": (
        lambda st: st["optimizer"].update(param_groups=[]),
        "(optimizer: loaded state dict has a different number of parameter groups)",
    ),
    "optimizer without its keys": (
        lambda st: st.update(optimizer={"x": 1}), "(optimizer: no entry 'param_groups')"
    ),
    "rng of other types": (_garbage_rng, "(rng: "),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_state_is_one_line_with_the_advice(
    run: Path, damage: str, mea, one_torch_thread: None  # noqa: ANN001
) -> None:
    change, said = DAMAGE[damage]
    st = torch.load(run.parent / "original.pt", weights_only=True)
    change(st)
    torch.save(st, run / "state.pt")
    code, out, err = mea("train", "--resume", "--name", "r", "--runs-dir", str(run.parent))
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"error: {run / 'state.pt'}: ") and said in err, err
    assert "delete it to restart this seed from epoch 1" in err
    assert not (run / "metrics.json").exists()


def test_the_undamaged_state_still_resumes(run: Path, mea, one_torch_thread: None) -> None:  # noqa: ANN001
    shutil.copy(run.parent / "original.pt", run / "state.pt")
    code, _, err = mea("train", "--resume", "--name", "r", "--runs-dir", str(run.parent))
    assert code == 0, err
    assert (run / "metrics.json").is_file()
    (run / "metrics.json").unlink()


def test_a_state_from_before_weight_averaging_resumes(run: Path, mea, one_torch_thread: None) -> None:  # noqa: ANN001
    """``state.pt`` has held ``ema`` since weight averaging came (2026-12-06); a run interrupted
    before it resumed then, and must still (it was refused as damaged)."""
    st = torch.load(run.parent / "original.pt", weights_only=True)
    assert st.pop("ema") == {}
    torch.save(st, run / "state.pt")
    code, _, err = mea("train", "--resume", "--name", "r", "--runs-dir", str(run.parent))
    assert code == 0, err
    assert (run / "metrics.json").is_file()
    (run / "metrics.json").unlink()
