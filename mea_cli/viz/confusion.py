"""The confusion matrix of a single-label classifier (``mea eval`` on a multiclass task).

Rows are the true classes, columns the predicted ones, in the label order; each cell shows its
count and, shaded, its share of the row (the recall of that true class), so a rare class's
errors are as visible as a common one's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mea_cli.viz.figures import new_figure, save_png


def draw_confusion(matrix: np.ndarray, names: Sequence[str], title: str, path: Path) -> Path:
    """Draw ``matrix`` (``[C, C]`` counts, rows = truth) as a PNG at ``path``."""
    m = np.asarray(matrix, np.float64)
    share = m / np.maximum(m.sum(axis=1, keepdims=True), 1.0)
    side = 1.2 + 0.6 * len(names)
    fig, axes = new_figure(side + 1.0, side)
    ax = axes[0][0]
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(names)), labels=list(names), rotation=45, ha="right")
    ax.set_yticks(range(len(names)), labels=list(names))
    ax.set_xlabel("predicted")
    ax.set_ylabel("truth")
    ax.set_title(title, fontsize=9)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(
                j, i, f"{int(m[i, j])}", ha="center", va="center",
                color="white" if share[i, j] > 0.5 else "black", fontsize=9,
            )  # fmt: skip
    fig.colorbar(image, ax=ax, label="share of the true class")
    return save_png(fig, path)
