"""Shared plumbing for the pictures: a headless matplotlib figure and an atomic PNG write.

Every plot uses the Agg backend (no display needed, works in CI and over SSH) and is written
through :func:`mea_cli.paths.atomic_output` (a temporary file beside the target, renamed into
place, umask permissions), so an interrupted ``mea viz`` never leaves a truncated PNG behind.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg", force=True)

from mea_cli.errors import MeaError  # noqa: E402
from mea_cli.paths import atomic_output, ensure_dir  # noqa: E402

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# The paper's Fig. 5 colours: agnostic parts red/orange/green, exclusive parts pink/yellow/blue
# (in the modality order L, V, A).
MODALITY_LABELS = {"text": "L", "vision": "V", "audio": "A"}
AGNOSTIC_COLOURS = {"text": "#d62728", "vision": "#ff7f0e", "audio": "#2ca02c"}
EXCLUSIVE_COLOURS = {"text": "#f7a1c4", "vision": "#e6c700", "audio": "#1f77b4"}


class VizError(MeaError):
    """A picture that cannot be made from what the user gave (missing log, bad sample, ...)."""


def new_figure(
    width: float, height: float, nrows: int = 1, ncols: int = 1
) -> tuple[Figure, np.ndarray]:
    """A Figure plus its axes grid, built without pyplot's global state (thread-safe, headless)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def save_png(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG at ``path`` atomically; return the path. The picture directory is
    created when missing, one level only: its parent must exist."""
    path = Path(path)
    ensure_dir(path.parent, "picture directory")
    with atomic_output(path, "picture") as tmp:
        fig.savefig(tmp, format="png")
    return path


def save_npz(path: Path, **arrays: object) -> Path:
    """Write the numbers behind a picture as a compressed ``.npz`` at ``path``, atomically."""
    import numpy as np

    path = Path(path)
    ensure_dir(path.parent, "picture directory")
    with atomic_output(path, "picture data") as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)  # a file object: numpy adds no ".npz" to the name
    return path


def metric_ylim(metric: str, values: Sequence[float], percent: bool) -> tuple[float, float | None]:
    """Honest y limits of a metric's axis: accuracies and F1 in % on [0, 100], Corr on
    [-1, 1] (or [0, 1] when nothing is negative), MAE and losses from 0 (top 15 % above the
    highest value, for the labels; ``None``: automatic): an axis that starts near the data exaggerates small differences."""
    finite = [float(v) for v in values if math.isfinite(float(v))]
    if percent:
        return 0.0, 100.0
    if metric == "corr":
        return (-1.0 if any(v < 0 for v in finite) else 0.0), 1.0
    lo = min(0.0, *finite) if finite else 0.0
    top = max(finite) if finite else 0.0
    return lo, (lo + 1.15 * (top - lo) if top > lo else None)  # room for the value labels


def note_empty(ax: Axes, text: str) -> None:
    """Turn ``ax`` into a one-line note (a picture with nothing to plot says so)."""
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=9,
            transform=ax.transAxes)  # fmt: skip
