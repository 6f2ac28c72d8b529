"""FDMER end to end from the command line: ``mea synth`` -> ``mea train`` -> ``mea eval`` ->
``mea ablate``, in process.

The model is FDMER with its full architecture (per-modality transformers, common and private
encoders, Eq. 4-11 losses, CMAF), only narrower and shallower than Sec. 4.2 (``--set``), so an
epoch takes about a second on one CPU thread. On synthetic MOSI-shaped data the trained model
must clearly beat the training-mean predictor on the test split.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from model_helpers import train_mean_baseline
from typer.testing import CliRunner

from mea_cli import cli
from mea_cli.cli import app

TINY = [
    "--set", "d_k=32", "--set", "d_disc=16", "--set", "transformer_layers=[1,1,1]",
    "--set", "heads=2", "--set", "ffn_mult=2", "--set", "train.batch_size=16",
]  # fmt: skip


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables stay whole in the captured output. Rich fixes a console's width from ``COLUMNS``
    when the console is made (when ``mea_cli.cli`` is first imported in this worker, possibly
    under another test's environment), so the CLI's consoles get the width directly too."""
    monkeypatch.setenv("COLUMNS", "400")
    for c in (cli.console, cli.err_console):
        monkeypatch.setattr(c, "_width", 400)


def mea(*args: str) -> str:
    r = CliRunner().invoke(app, list(args))
    assert r.exit_code == 0, (args, r.output[-3000:], r.exception)
    return r.stdout


def _synth_and_train(tmp: Path, n: int, epochs: int, extra: tuple[str, ...] = ()) -> tuple[Path, Path]:
    store = tmp / "mosi.h5"
    mea("synth", "--like", "mosi", "--n", str(n), "--seed", "1", "--max-seconds", "3",
        "--out", str(store))  # fmt: skip
    out = mea("train", str(store), "--dataset", "mosi", "--model", "fdmer", "--epochs", str(epochs),
              "--name", "fd", "--seeds", "1111", "--runs-dir", str(tmp / "runs"), "--device", "cpu",
              *TINY, *extra)  # fmt: skip
    assert "best on valid" in out
    return store, tmp / "runs" / "fd"


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_fdmer_trains_and_beats_the_training_mean(tmp_path: Path) -> None:
    # the preset's lr (1e-3): with the targets standardised on train (runtime/targets.py), the
    # 3e-3 this test used before overshoots (MAE 1.90 against 1.95; 1e-3 gives 1.06)
    store, run = _synth_and_train(tmp_path, 200, 10)
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "fdmer" and config["model_config"]["d_k"] == 32
    logged = json.loads((run / "log.jsonl").read_text().splitlines()[0])["train"]
    assert {"task", "con", "dis", "ami", "ams"} <= set(logged)  # every Eq. 18 term was trained
    out = json.loads(mea("eval", str(run / "ckpt.pt"), "--json"))
    base = train_mean_baseline(store)  # computed independently
    ours = out["metrics"]
    assert out["baseline_train_mean"]["mae"] == pytest.approx(base["mae"])
    assert ours["mae"] < base["mae"] - 0.3, (ours, base)
    assert ours["acc2_non0"] > base["acc2_non0"] + 0.10, (ours, base)
    table = mea("eval", str(run), "--paper")
    assert "FDMER (paper, not comparable, word-aligned)" in table
    assert "FDMER: measured on word-aligned sequences, not on unaligned ones as here" in table


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_fdmer_ablate_every_table4_row_with_its_paper_values(tmp_path: Path) -> None:
    _, run = _synth_and_train(tmp_path, 30, 1)
    out = mea("ablate", "--run", str(run), "--drop", "all", "--format", "md", "--paper",
              "--runs-dir", str(tmp_path / "runs"), "--device", "cpu")  # fmt: skip
    for label in ("w/o Text", "Cross-Entropy Loss", "Non-Disentangled", "w/o Phase 1", "Multiplication"):
        assert label in out, label
    assert "word-aligned" in out and "| 0.845 | 0.732 |" in out  # Table 4, MAE as printed
    assert "| test Corr | Δ test Corr |" in out  # ours beside the paper's Corr
    for key in ("text", "ce", "disentangle", "phase2", "mul"):
        cfg = json.loads((run / "ablation" / key / "1111" / "config.json").read_text())
        assert cfg["model"] == "fdmer" and cfg["model_config"]["ablations"] == [key]
    assert (run / "ablation.md").read_text().strip() == out.strip()
