"""The viz plotting functions on hand-made arrays: the numbers behind each PNG are checked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mea_cli.viz.attention import plot_attention, sample_maps
from mea_cli.viz.curves import curve_panels, plot_curves, read_curves
from mea_cli.viz.figures import VizError
from mea_cli.viz.tsne import counts, stack_representations, tsne_figure
from mea_cli.viz.wal import plot_psi, psi_array

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 2000 and path.read_bytes()[:8] == PNG_MAGIC


def _reps(n: int = 30, d: int = 8, seed: int = 0) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    exc = {m: rng.normal(loc=3 * i, size=(n, d)) for i, m in enumerate(("text", "vision", "audio"))}
    agn = {m: rng.normal(loc=-5, size=(n, d)) for m in ("text", "vision", "audio")}
    return exc, agn


def test_tsne_input_is_exactly_the_six_representation_sets(tmp_path: Path) -> None:
    exc, agn = _reps(n=30)
    inputs = stack_representations(exc, agn, max_samples=20, seed=1)
    assert inputs.vectors.shape == (6 * 20, 8)
    assert counts(inputs) == {f"{k}/{m}": 20 for k in ("exclusive", "agnostic") for m in exc}
    chosen = np.unique(inputs.sample)
    assert len(chosen) == 20
    # every row is the right vector of the right sample
    for r in range(len(inputs.vectors)):
        src = exc if inputs.kind[r] == "exclusive" else agn
        np.testing.assert_array_equal(inputs.vectors[r], src[inputs.modality[r]][inputs.sample[r]])
    inputs2, coords = tsne_figure(exc, agn, tmp_path / "tsne.png", seed=0, max_samples=12)
    assert coords.shape == (6 * 12, 2) and np.isfinite(coords).all()
    assert _is_png(tmp_path / "tsne.png")
    saved = np.load(tmp_path / "tsne.npz")
    np.testing.assert_array_equal(saved["vectors"], inputs2.vectors)
    # separable clusters stay apart in 2-d: agnostic (mean -5) vs exclusive text (mean 0)
    ag = coords[inputs2.kind == "agnostic"].mean(0)
    ex_t = coords[(inputs2.kind == "exclusive") & (inputs2.modality == "text")].mean(0)
    assert np.linalg.norm(ag - ex_t) > 1.0


def test_tsne_rejects_mismatched_shapes(tmp_path: Path) -> None:
    exc, agn = _reps()
    agn["audio"] = agn["audio"][:, :4]
    with pytest.raises(VizError, match="agnostic audio"):
        stack_representations(exc, agn)


def test_psi_bars_from_distributions(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    logits = [rng.normal(size=(5, 3)) for _ in range(3)]
    layers = [np.exp(x) / np.exp(x).sum(1, keepdims=True) for x in logits]
    psi = psi_array(layers)
    assert psi.shape == (5, 3, 3)
    np.testing.assert_allclose(psi.sum(-1), 1.0, atol=1e-9)
    np.testing.assert_allclose(psi[:, 1], layers[1])
    out = plot_psi(psi[:2], ["clip_a", "clip_b"], tmp_path / "wal.png")
    assert _is_png(out)


def test_psi_must_sum_to_one() -> None:
    with pytest.raises(VizError, match="not a distribution"):
        psi_array([np.full((2, 3), 0.5)])
    with pytest.raises(VizError, match="no WAL weights"):
        psi_array([])


def test_attention_cropped_to_real_length(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    t_real, t_pad = 5, 8
    scores = rng.normal(size=(2, 4, t_pad, t_pad))
    scores[..., t_real:] = -np.inf  # masked keys of sample 0
    att = np.exp(scores - scores.max(-1, keepdims=True))
    att /= att.sum(-1, keepdims=True)
    maps = sample_maps({"text": [att, att]}, {"text": t_real}, index=0)
    assert [m.shape for m in maps["text"]] == [(t_real, t_real)] * 2
    np.testing.assert_allclose(maps["text"][0], att[0, :, :t_real, :t_real].mean(0))
    np.testing.assert_allclose(maps["text"][0].sum(-1), 1.0, atol=1e-9)
    assert _is_png(plot_attention(maps, tmp_path / "att.png"))
    # an unmasked map (weight on padding) is caught
    bad = np.full((1, 1, t_pad, t_pad), 1.0 / t_pad)
    with pytest.raises(VizError, match="padding is not masked"):
        sample_maps({"audio": [bad]}, {"audio": t_real})


def test_curves_from_log(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    lines = [
        {"epoch": e, "train_loss": 1.0 / e, "valid": {"mae": 1.5 - 0.1 * e, "loss": 2.0 / e}}
        for e in range(1, 6)
    ]
    log.write_text("\n".join(json.dumps(x) for x in lines) + '\n{"final": true}\n')
    curves = read_curves(log)
    assert curves["train_loss"] == [(float(e), 1.0 / e) for e in range(1, 6)]
    assert curves["valid/mae"][-1] == (5.0, pytest.approx(1.0))
    assert _is_png(plot_curves(curves, tmp_path / "curves.png"))
    assert [p.ylabel for p in curve_panels(curves)] == ["loss", "MAE (label units)"]
    # a custom classification run: only its own metrics, no MAE panel
    cls = {"epoch": [(1.0, 1.0)], "valid/f1_macro": [(1.0, 0.4)], "valid/acc": [(1.0, 0.5)],
           "train/loss": [(1.0, 2.0)], "lr": [(1.0, 1e-3)]}  # fmt: skip
    panels = {p.ylabel: p.curves for p in curve_panels({k: v for k, v in cls.items() if k != "epoch"})}
    assert list(panels) == ["loss", "accuracy / F1 (%)"]
    assert panels["accuracy / F1 (%)"] == {"valid/f1_macro": [(1.0, 40.0)], "valid/acc": [(1.0, 50.0)]}
    with pytest.raises(VizError, match="no training log"):
        read_curves(tmp_path / "missing.jsonl")
    (tmp_path / "bad.jsonl").write_text("{oops\n")
    with pytest.raises(VizError, match="line 1 is not JSON"):
        read_curves(tmp_path / "bad.jsonl")
