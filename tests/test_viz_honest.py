"""Honest charts: checked on the matplotlib objects (not pixels) - accuracy/F1 axes in % from 0,
Corr on [-1, 1], MAE and losses from 0, the chosen epoch marked in every curves panel, the
task loss alone on its axis with every auxiliary term explained, and no empty panels."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from mea_cli.ablate.compare_table import bars_figure, build_tables
from mea_cli.ablate.sweep import SweepSpec, sweep_figure
from mea_cli.ablate.table import build_table
from mea_cli.viz.curves import CHOSEN_GID, Chosen, curves_figure, read_chosen, read_curves


def _drawn(ax) -> bool:  # noqa: ANN001 - a matplotlib Axes
    return ax.axison and bool(ax.lines or ax.patches or ax.collections or ax.images)


def _log(path: Path) -> Path:
    recs = [
        {
            "epoch": e,
            "lr": 1e-3,
            "train": {"loss": 1.0 / e + 0.1, "task": 1.0 / e, "dis": 0.5, "agn": 0.7},
            "valid": {"acc2": 0.5 + 0.05 * e, "f1": 0.48 + 0.05 * e, "mae": 1.2 - 0.1 * e,
                      "corr": 0.1 * e, "loss": 1.5 / e, "task_loss": 1.4 / e},
            "best": {"metric": "mae", "value": 1.2 - 0.1 * min(e, 2), "epoch": min(e, 2)},
            "early_stop": False,
            "seconds": 0.5,
        }
        for e in range(1, 5)
    ]  # fmt: skip
    path.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    return path


def test_curves_panels_units_and_chosen_epoch(tmp_path: Path) -> None:
    log = _log(tmp_path / "log.jsonl")
    chosen = read_chosen(log)
    assert chosen == Chosen(2, "mae")
    fig = curves_figure(read_curves(log), "t", chosen)
    axes = {ax.get_ylabel(): ax for ax in fig.axes}
    assert list(axes) == [
        "task loss", "auxiliary loss terms", "MAE (label units)", "accuracy / F1 (%)",
        "Corr (Pearson)",
    ]  # fmt: skip
    for ax in fig.axes:
        assert _drawn(ax)
        marks = [ln for ln in ax.lines if ln.get_gid() == CHOSEN_GID]
        assert len(marks) == 1 and list(marks[0].get_xdata()) == [2, 2]
        assert "chosen epoch 2 (best valid mae)" in [t.get_text() for t in ax.get_legend().texts]
    # the task loss alone on its axis; the auxiliary terms and totals labelled on theirs
    task = {ln.get_label() for ln in axes["task loss"].lines if ln.get_gid() != CHOSEN_GID}
    assert task == {"train task loss", "valid task loss"}
    aux = {
        ln.get_label() for ln in axes["auxiliary loss terms"].lines if ln.get_gid() != CHOSEN_GID
    }
    assert aux == {
        "train L_dis disparity (HSIC), unweighted", "train L_agn agnostic discriminator, unweighted",
        "train total (task + weighted terms)", "valid total (task + weighted terms)",
    }  # fmt: skip
    # accuracy/F1 in % (as the tables) on [0, 100]; MAE and losses from 0; Corr on [-1, 1]... or
    # [0, 1]: here it is never negative
    pct = axes["accuracy / F1 (%)"]
    assert pct.get_ylim() == (0.0, 100.0)
    acc = next(ln for ln in pct.lines if ln.get_label().startswith("valid Acc-2"))
    assert list(acc.get_ydata()) == pytest.approx([55.0, 60.0, 65.0, 70.0])
    for name in ("task loss", "auxiliary loss terms", "MAE (label units)"):
        assert axes[name].get_ylim()[0] == 0.0
    assert axes["Corr (Pearson)"].get_ylim() == (-1.0, 1.0)
    # lr, seconds, best/* are bookkeeping, not curves
    labels = {ln.get_label() for ax in fig.axes for ln in ax.lines}
    assert not any(x == "lr" or "seconds" in x or x.startswith("best/") for x in labels)


def test_curves_of_a_task_only_model_have_no_aux_panel() -> None:
    curves = {"train/loss": [(1.0, 2.0)], "train/task": [(1.0, 2.0)],
              "valid/task_loss": [(1.0, 2.5)], "valid/loss": [(1.0, 2.5)], "valid/acc": [(1.0, 0.0)]}  # fmt: skip
    fig = curves_figure(curves)
    assert [ax.get_ylabel() for ax in fig.axes] == ["task loss", "accuracy / F1 (%)"]
    # an accuracy of 0 everywhere: still [0, 100], never a -0.04 .. 0.04 axis
    assert fig.axes[1].get_ylim() == (0.0, 100.0)


def test_compare_bars_from_zero_in_percent_and_no_empty_panel() -> None:
    results = {
        "mea": {1: {"acc": 0.71, "f1_macro": 0.70, "corr": math.nan}, 2: {"acc": 0.73, "f1_macro": 0.72, "corr": math.nan}},
        "mult": {1: {"acc": 0.69, "f1_macro": 0.60, "corr": math.nan}},
    }  # fmt: skip
    fig = bars_figure(build_tables("cmp", results, ["acc", "f1_macro", "corr"]))
    drawn = [ax for ax in fig.axes if _drawn(ax)]
    assert len(drawn) == 2  # corr has no finite value: no panel, named in the title
    assert "not drawn: Corr" in fig._suptitle.get_text()
    assert not [ax for ax in fig.axes if ax.axison and not _drawn(ax)]
    for ax in drawn:
        assert ax.get_ylim() == (0.0, 100.0) and ax.get_title().endswith("(%)")
        heights = sorted(p.get_height() for p in ax.patches)
        assert heights[-1] > 50  # in %, as the table prints it
    acc = next(ax for ax in drawn if ax.get_title().startswith("Acc"))
    assert sorted(p.get_height() for p in acc.patches) == pytest.approx([69.0, 72.0])


def test_sweep_panels_from_zero_and_none_empty() -> None:
    spec = SweepSpec("mu", "model", (0.0, 0.5), ("0", "0.5"))
    entries = [
        ("mu=0", "0", "", {1: {"acc2": 0.6, "valid_acc2": 0.62, "mae": 0.9, "valid_mae": 0.95,
                               "corr": math.nan, "valid_corr": math.nan}}),
        ("mu=0.5", "0.5", "", {1: {"acc2": 0.0, "valid_acc2": 0.0, "mae": 1.1, "valid_mae": 1.0,
                                   "corr": math.nan, "valid_corr": math.nan}}),
    ]  # fmt: skip
    cols = ["valid_acc2", "acc2", "valid_mae", "mae", "valid_corr", "corr"]
    fig = sweep_figure(build_table("t", entries, cols, first_column="mu"), spec, "sweep")
    acc, mae = fig.axes
    assert acc.get_ylabel().startswith("Acc-2") and acc.get_ylabel().endswith("(%)")
    assert mae.get_ylabel().startswith("MAE")
    assert acc.get_ylim() == (0.0, 100.0) and mae.get_ylim()[0] == 0.0
    assert all(_drawn(ax) for ax in fig.axes)
    assert "not drawn: Corr" in fig._suptitle.get_text()


def test_attention_colours_from_zero_shared_by_layers() -> None:
    """A nearly uniform map (every weight ~1/T) must not look structured: colours from 0."""
    import numpy as np

    from mea_cli.viz.attention import attention_figure

    t = 4
    flat = np.full((t, t), 1.0 / t) + np.linspace(-0.01, 0.01, t)[None, :]
    peaked = np.eye(t) * 0.7 + 0.1
    fig = attention_figure({"text": [flat, peaked]})
    maps = [ax for ax in fig.axes if ax.images]
    assert len(maps) == 2
    for ax in maps:
        assert ax.images[0].get_clim() == pytest.approx((0.0, 0.8))
    bars = [ax.get_ylabel() for ax in fig.axes if not ax.images and ax.get_ylabel()]
    assert bars.count("weight (uniform 1/T = 0.25)") == 2
