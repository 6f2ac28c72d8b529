"""The ``functionals`` baseline: its summary statistics against numpy by hand, and the whole
train -> eval -> predict path through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mea_cli.models.core.registry import get_entry
from mea_cli.models.functionals.model import masked_functionals


def test_summaries_match_numpy_by_hand() -> None:
    g = np.random.default_rng(0)
    x = g.normal(size=(3, 7, 2)).astype(np.float32)
    lengths = [7, 4, 1]
    mask = torch.tensor([[t < n for t in range(7)] for n in lengths])
    garbage = torch.tensor(x).masked_fill(~mask[..., None], 1e6)  # padding must not count
    out = masked_functionals(garbage, mask, (10.0, 50.0, 90.0)).numpy()
    assert out.shape == (3, 2 * 8 + 2)
    for b, n in enumerate(lengths):
        v = x[b, :n].astype(np.float64)
        slope = np.polyfit(np.arange(n), v, 1)[0] if n > 1 else np.zeros(2)
        want = np.concatenate(
            [v.mean(0), v.std(0), v.min(0), v.max(0), slope]
            + [np.percentile(v, p, axis=0) for p in (10, 50, 90)]
            + [[np.log1p(n), 1.0]]
        )
        np.testing.assert_allclose(out[b], want, rtol=1e-4, atol=1e-5)


def test_gaps_in_the_mask_are_left_out_by_hand() -> None:
    """Masks with gaps (capability ``gap_masks``): the summaries of the observed steps, by
    numpy, with the slope over their ranks; equal to the sequence with the gaps removed."""
    g = np.random.default_rng(1)
    x = g.normal(size=(2, 6, 2)).astype(np.float32)
    mask = torch.tensor([[True, False, True, True, False, True], [False, True, False, False, False, False]])
    garbage = torch.tensor(x).masked_fill(~mask[..., None], -1e6)
    out = masked_functionals(garbage, mask, (25.0, 50.0)).numpy()
    for b in range(2):
        v = x[b, mask[b].numpy()].astype(np.float64)
        n = len(v)
        slope = np.polyfit(np.arange(n), v, 1)[0] if n > 1 else np.zeros(2)
        want = np.concatenate(
            [v.mean(0), v.std(0), v.min(0), v.max(0), slope]
            + [np.percentile(v, p, axis=0) for p in (25, 50)]
            + [[np.log1p(n), 1.0]]
        )
        np.testing.assert_allclose(out[b], want, rtol=1e-4, atol=1e-5)
    assert "gap_masks" in get_entry("functionals").capabilities


def test_empty_sequence_gives_missing_statistics() -> None:
    x = torch.randn(2, 3, 4)
    mask = torch.tensor([[True, True, False], [False, False, False]])
    out = masked_functionals(x, mask, (50.0,))
    assert torch.isnan(out[1, :-2]).all() and out[1, -2:].tolist() == [0.0, 0.0]
    assert torch.isfinite(out[0]).all()
    none = masked_functionals(torch.zeros(2, 0, 4), torch.zeros(2, 0, dtype=torch.bool), (50.0,))
    assert none.shape == (2, 4 * 6 + 2) and torch.isnan(none[:, :-2]).all()


@pytest.mark.slow
def test_functionals_train_eval_predict(
    mea, synth_mosi: Path, tmp_path: Path, one_torch_thread: None  # noqa: ANN001
) -> None:
    """``mea train --model functionals`` picks C on valid (one candidate per log line), writes a
    weights-only checkpoint in the label's units, and ``mea eval`` / ``mea predict`` read it."""
    runs = tmp_path / "runs"
    code, out, err = mea(
        "train", str(synth_mosi), "--task", "regression", "--model", "functionals",
        "--runs-dir", str(runs), "--name", "f", "--threads", "1",
    )  # fmt: skip
    assert code == 0, err
    run = runs / "f"
    log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    grid = [r["train"]["c"] for r in log]
    assert grid == [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0]
    maes = [r["valid"]["mae"] for r in log]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["best_epoch"] == int(np.argmin(maes)) + 1  # chosen on valid
    raw = torch.load(run / "ckpt.pt", weights_only=True)
    assert raw["model"] == "functionals" and raw["target_scale"]["std"][0] > 0
    assert json.loads((run / "config.json").read_text())["task_loss"] == "mse"
    code, out, err = mea("eval", str(run), "--split", "test", "--json")
    assert code == 0, err
    evaluated = json.loads(out)
    assert evaluated["metrics"]["mae"] == pytest.approx(metrics["test"]["mae"], rel=1e-5)
    code, out, err = mea("predict", str(synth_mosi), "--ckpt", str(run), "--json")
    assert code == 0, err
