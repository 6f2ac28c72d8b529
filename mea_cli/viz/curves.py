"""Training curves from a run's ``log.jsonl`` (one JSON object per epoch, written by the trainer).

Every numeric field of the records is a curve against ``epoch`` (nested dicts become ``a/b``).
Fields whose name contains "loss" and every ``train/*`` term go in the left panel (the total
loss of Eq. 20 and its named terms), a regression task's MAE (in the label's units, which can
be 0-100 on a custom task) in its own panel, the rest (validation accuracies, F1, Corr:
fractions) in the right panel; only the metrics the run logged are drawn, so a custom task's
own metrics appear and nothing else;
bookkeeping fields (``lr``, ``seconds``, ``best/*``) are not drawn. Records without an ``epoch`` field (e.g. a final summary line) are
skipped, so the reader accepts a log that grows with new kinds of lines.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from matplotlib.ticker import MaxNLocator

from mea_cli.viz._common import VizError, new_figure, save_png


def _flatten(record: dict, prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, prefix=f"{name}/"))
        elif (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and math.isfinite(float(value))
        ):
            out[name] = float(value)
    return out


def read_log(path: Path) -> dict[str, list[tuple[float, float]]]:
    """Curves ``name -> [(epoch, value), ...]`` from ``log.jsonl``; nested dicts become ``a/b``."""
    path = Path(path)
    if not path.is_file():
        raise VizError(f"{path}: no training log (log.jsonl) found")
    curves: dict[str, list[tuple[float, float]]] = {}
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise VizError(f"{path}: line {lineno} is not JSON ({err.msg})") from None
            if not isinstance(record, dict) or "epoch" not in record:
                continue
            flat = _flatten(record)
            epoch = flat.pop("epoch")
            for name, value in flat.items():
                curves.setdefault(name, []).append((epoch, value))
    if not curves:
        raise VizError(f"{path}: no per-epoch records with numeric fields")
    return curves


def curve_panels(
    curves: dict[str, list[tuple[float, float]]],
) -> list[tuple[str, dict[str, list[tuple[float, float]]]]]:
    """The panels to draw, left to right: losses, MAE, other metrics (only non-empty ones)."""
    skip = {"time", "seconds", "elapsed", "lr", "lr_step", "step"}
    kept = {
        k: v
        for k, v in curves.items()
        if k.split("/")[-1].lower() not in skip and not k.startswith("best/")
    }
    losses = {k: v for k, v in kept.items() if "loss" in k.lower() or k.startswith("train/")}
    errors = {k: v for k, v in kept.items() if k not in losses and k.split("/")[-1] == "mae"}
    others = {k: v for k, v in kept.items() if k not in losses and k not in errors}
    return [
        (n, d)
        for n, d in (("loss", losses), ("MAE (label units)", errors), ("metrics", others))
        if d
    ]


def plot_curves(curves: dict[str, list[tuple[float, float]]], path: Path, title: str = "") -> Path:
    """Losses, MAE and other metrics against epoch (:func:`curve_panels`)."""
    panels = curve_panels(curves)
    fig, axes = new_figure(5.0 * len(panels), 3.8, 1, len(panels))
    for c, (name, data) in enumerate(panels):
        ax = axes[0, c]
        for key, points in sorted(data.items()):
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", markersize=3, linewidth=1.2, label=key)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    return save_png(fig, path)
