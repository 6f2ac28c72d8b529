"""Weighted attention layer weights psi_m per sample and PSA layer (MEA paper, Fig. 6; Eq. 5-6).

The WAL turns each modality's PSA output into one importance weight psi_m; the three weights of
a sample are a softmax over modalities, so they sum to one (Fig. 6 shows e.g. psi_L = 0.46,
psi_V = 0.41, psi_A = 0.13). The model reports them as a list with one ``[B, 3]`` array per PSA
layer; :func:`psi_array` stacks and checks them and :func:`plot_psi` draws one panel per sample
with one group of bars per layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mea_cli.viz.figures import AGNOSTIC_COLOURS, MODALITY_LABELS, VizError, new_figure, save_png

MODALITY_ORDER: tuple[str, ...] = tuple(MODALITY_LABELS)


def psi_array(layers: Sequence[np.ndarray], atol: float = 1e-4) -> np.ndarray:
    """Stack per-layer ``[N, 3]`` psi arrays into ``[N, L, 3]`` and check they are distributions.

    Raises :class:`VizError` when there are no layers (the WAL is switched off), when shapes
    disagree, or when a row is negative or does not sum to one within ``atol``.
    """
    if len(layers) == 0:
        raise VizError(
            "the model reports no WAL weights psi (was the weighted attention layer ablated?)"
        )
    arrays = [np.asarray(a, dtype=np.float64) for a in layers]
    shape = arrays[0].shape
    if len(shape) != 2 or shape[1] != len(MODALITY_ORDER):
        raise VizError(
            f"psi of layer 1 has shape {shape}; expected [samples, {len(MODALITY_ORDER)}]"
        )
    for i, a in enumerate(arrays):
        if a.shape != shape:
            raise VizError(f"psi of layer {i + 1} has shape {a.shape}; layer 1 has {shape}")
    psi = np.stack(arrays, axis=1)
    sums = psi.sum(axis=-1)
    if (psi < -atol).any() or not np.allclose(sums, 1.0, atol=atol):
        worst = float(np.abs(sums - 1.0).max())
        raise VizError(f"psi is not a distribution over modalities (max |sum - 1| = {worst:.3g})")
    return psi


def plot_psi(psi: np.ndarray, sample_ids: Sequence[str], path: Path, title: str = "") -> Path:
    """Bar chart of psi: one panel per sample, bars grouped by PSA layer, one colour per modality.

    ``psi`` is ``[S, L, 3]`` (as from :func:`psi_array`, already restricted to the samples to show).
    """
    if psi.ndim != 3 or psi.shape[0] != len(sample_ids):
        raise VizError(f"psi has shape {psi.shape} for {len(sample_ids)} sample ids")
    n_samples, n_layers, n_mod = psi.shape
    fig, axes = new_figure(max(3.2 * n_samples, 4.0), 3.4, 1, n_samples)
    width = 0.8 / n_mod
    x = np.arange(n_layers)
    for s in range(n_samples):
        ax = axes[0, s]
        for j, m in enumerate(MODALITY_ORDER):
            bars = ax.bar(
                x + (j - (n_mod - 1) / 2) * width,
                psi[s, :, j],
                width,
                color=AGNOSTIC_COLOURS[m],
                label=f"$\\psi_{MODALITY_LABELS[m]}$",
            )
            if n_layers <= 3:
                ax.bar_label(bars, fmt="%.2f", fontsize=7)
        ax.set_xticks(x, [f"layer {i + 1}" for i in range(n_layers)], fontsize=8)
        ax.set_ylim(0, 1.0)
        ax.set_title(str(sample_ids[s]), fontsize=9)
        if s == 0:
            ax.set_ylabel("WAL weight $\\psi_m$")
            ax.legend(fontsize=8, loc="upper right")
    if title:
        fig.suptitle(title, fontsize=10)
    return save_png(fig, path)
