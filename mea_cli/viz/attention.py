"""PSA self-attention maps of one sample (MEA paper, Eq. 1-4; the kind of map shown in Fig. 4).

The model returns, on request, per modality and PSA layer the attention matrix ``[B, H, T, T]``
(rows: queries, columns: keys) after the prediction-chain mix of Eq. 2. For one sample we crop
the map to its real length (padding is masked and carries no weight), average over the H heads
and draw one heatmap per (modality, layer). Every row of a cropped, head-averaged softmax map
sums to one; :func:`sample_maps` checks that so a broken mask shows up as an error, not as a
pretty but wrong picture.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mea_cli.viz.figures import MODALITY_LABELS, VizError, new_figure, save_png

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def sample_maps(
    attention: Mapping[str, Sequence[np.ndarray]],
    lengths: Mapping[str, int],
    index: int = 0,
    atol: float = 1e-3,
) -> dict[str, list[np.ndarray]]:
    """Head-averaged ``[T, T]`` maps of batch row ``index``, cropped to each modality's length.

    ``attention`` maps modality -> list over layers of ``[B, H, T, T]`` (or ``[B, T, T]``) arrays.
    Modalities with zero real steps are left out (nothing to draw).
    """
    out: dict[str, list[np.ndarray]] = {}
    for m, layers in attention.items():
        t = int(lengths.get(m, 0))
        if t == 0:
            continue
        maps = []
        for i, a in enumerate(layers):
            a = np.asarray(a, dtype=np.float64)
            if a.ndim == 3:
                a = a[:, None]
            if a.ndim != 4 or a.shape[-1] != a.shape[-2] or a.shape[-1] < t:
                raise VizError(
                    f"attention of {m} layer {i + 1} has shape {a.shape}; expected [B, H, T, T] with T >= {t}"
                )
            cropped = a[index, :, :t, :t].mean(axis=0)
            rows = cropped.sum(axis=-1)
            if not np.allclose(rows, 1.0, atol=atol):
                raise VizError(
                    f"attention rows of {m} layer {i + 1} do not sum to one over the real steps "
                    f"(min {rows.min():.3f}, max {rows.max():.3f}): padding is not masked"
                )
            maps.append(cropped)
        out[m] = maps
    if not out:
        raise VizError("no attention maps to draw: every modality of this sample is empty")
    return out


def plot_attention(
    maps: Mapping[str, Sequence[np.ndarray]], path: Path, title: str = "", block: str = "PSA"
) -> Path:
    """Write :func:`attention_figure` as a PNG at ``path``."""
    return save_png(attention_figure(maps, title, block), path)


def attention_figure(
    maps: Mapping[str, Sequence[np.ndarray]], title: str = "", block: str = "PSA"
) -> Figure:
    """One heatmap per (modality, layer of ``block``): rows are modalities, columns layers.
    ``block`` names the model's unit that made the maps (MEA: PSA, MCR: the SCU's Eq. 8).

    The colour scale of a modality's row runs from 0 to the largest weight in its maps, shared
    by its layers, and its colour bar names the uniform weight 1/T: a scale stretched between
    a map's own min and max would paint a nearly uniform map (every weight ~1/T) as sharply
    structured."""
    mods = list(maps)
    n_layers = max(len(v) for v in maps.values())
    fig, axes = new_figure(2.8 * n_layers + 0.8, 2.6 * len(mods), len(mods), n_layers)
    for r, m in enumerate(mods):
        top = max(float(np.max(a)) for a in maps[m])
        for c in range(n_layers):
            ax = axes[r, c]
            if c >= len(maps[m]):
                ax.axis("off")
                continue
            im = ax.imshow(maps[m][c], cmap="viridis", aspect="auto", interpolation="nearest",
                           vmin=0.0, vmax=top)  # fmt: skip
            ax.set_title(f"{MODALITY_LABELS.get(m, m)} ({m}), {block} layer {c + 1}", fontsize=8)
            ax.set_xlabel("key step", fontsize=7)
            ax.set_ylabel("query step", fontsize=7)
            ax.tick_params(labelsize=6)
            bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
            bar.set_label(f"weight (uniform 1/T = {1 / maps[m][c].shape[-1]:.3g})", fontsize=7)
            bar.ax.tick_params(labelsize=6)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
