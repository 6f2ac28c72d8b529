"""Shared plumbing for the pictures: a headless matplotlib figure and an atomic PNG write.

Every plot uses the Agg backend (no display needed, works in CI and over SSH) and is written to
a temporary file beside the target that is renamed into place, so an interrupted ``mea viz``
never leaves a truncated PNG behind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg", force=True)

from mea_cli.errors import MeaError  # noqa: E402

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# The paper's Fig. 5 colours: agnostic parts red/orange/green, exclusive parts pink/yellow/blue
# (in the modality order L, V, A).
MODALITY_LABELS = {"text": "L", "vision": "V", "audio": "A"}
AGNOSTIC_COLOURS = {"text": "#d62728", "vision": "#ff7f0e", "audio": "#2ca02c"}
EXCLUSIVE_COLOURS = {"text": "#f7a1c4", "vision": "#e6c700", "audio": "#1f77b4"}


class VizError(MeaError):
    """A picture that cannot be made from what the user gave (missing log, bad sample, ...)."""


def new_figure(width: float, height: float, nrows: int = 1, ncols: int = 1):  # noqa: ANN201
    """A Figure plus its axes grid, built without pyplot's global state (thread-safe, headless)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def save_png(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG at ``path`` atomically (temp file + rename); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
