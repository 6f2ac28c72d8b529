"""t-SNE of the modality-exclusive and modality-agnostic representations (MEA paper, Fig. 5).

The paper projects, for up to 200 random test samples, the six pooled vectors of each sample
-- h^e_m (Eq. 11) and h^a_m (Eq. 12) for m in {L, V, A} -- into 2-d with t-SNE and colours them
by modality and by kind (agnostic: red/orange/green, exclusive: pink/yellow/blue). With the
disparity and adversarial constraints on (alpha, beta > 0) the agnostic clouds should mix and
the exclusive clouds separate by modality.

:func:`stack_representations` builds the exact t-SNE input (one row per sample, modality and
kind, nothing else), :func:`embed` runs scikit-learn's TSNE on it and :func:`plot_tsne` draws
the picture; all three work on plain arrays so they can be tested without a model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mea_cli.viz.figures import (
    AGNOSTIC_COLOURS,
    EXCLUSIVE_COLOURS,
    MODALITY_LABELS,
    VizError,
    new_figure,
    save_npz,
    save_png,
)

KINDS: tuple[str, ...] = ("exclusive", "agnostic")


@dataclass(frozen=True)
class TsneInput:
    """The t-SNE input matrix and what each row is.

    ``vectors[r]`` is the representation of sample ``sample[r]`` (row index into the ``[N, d_h]``
    arrays that were given), modality ``modality[r]`` and kind ``kind[r]`` ("exclusive" = h^e, "agnostic" = h^a).
    """

    vectors: np.ndarray  # [R, d_h] float64
    modality: np.ndarray  # [R] str
    kind: np.ndarray  # [R] str
    sample: np.ndarray  # [R] int


def stack_representations(
    exclusive: Mapping[str, np.ndarray],
    agnostic: Mapping[str, np.ndarray],
    max_samples: int = 200,
    seed: int = 0,
) -> TsneInput:
    """Stack h^e_m and h^a_m of (at most ``max_samples`` randomly chosen) samples into one matrix.

    Both mappings go modality -> ``[N, d_h]`` with the same N and d_h everywhere. A modality
    missing from one of the mappings (e.g. an ablated branch) is simply absent from the picture.
    """
    parts = {("exclusive", m): np.asarray(v) for m, v in exclusive.items()}
    parts.update({("agnostic", m): np.asarray(v) for m, v in agnostic.items()})
    if not parts:
        raise VizError("no representations to project: the model returned neither h^e nor h^a")
    shapes = {key: arr.shape for key, arr in parts.items()}
    first = next(iter(shapes.values()))
    for key, shape in shapes.items():
        if len(shape) != 2 or shape != first:
            raise VizError(
                f"representation {key[0]} {key[1]} has shape {shape}; expected {first} like the others"
            )
    n = first[0]
    if n < 2:
        raise VizError(f"t-SNE needs at least 2 samples, got {n}")
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(n, size=min(n, max_samples), replace=False))
    vectors, modality, kind, sample = [], [], [], []
    for k in KINDS:
        for m in MODALITY_LABELS:
            if (k, m) not in parts:
                continue
            vectors.append(parts[(k, m)][chosen].astype(np.float64))
            modality += [m] * len(chosen)
            kind += [k] * len(chosen)
            sample.append(chosen)
    return TsneInput(
        vectors=np.concatenate(vectors, axis=0),
        modality=np.asarray(modality),
        kind=np.asarray(kind),
        sample=np.concatenate(sample),
    )


def embed(inputs: TsneInput, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """2-d t-SNE coordinates ``[R, 2]`` of ``inputs.vectors`` (scikit-learn, PCA init).

    Perplexity must be below the number of points; it is lowered to ``(R - 1) / 3`` for small
    sets so that tiny test splits still work. Deterministic for a given ``seed``.
    """
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    rows = inputs.vectors.shape[0]
    perp = float(min(perplexity, max(1.0, (rows - 1) / 3.0)))
    tsne = TSNE(n_components=2, perplexity=perp, init="pca", random_state=seed, max_iter=500)
    # one OpenMP thread: at most 6 x 200 points, and on a busy machine spinning OpenMP threads
    # made a 0.2 s fit take 50 s (measured on the 2-core CI box)
    with threadpool_limits(limits=1):
        return tsne.fit_transform(inputs.vectors)


def plot_tsne(inputs: TsneInput, coords: np.ndarray, path: Path, title: str = "") -> Path:
    """Scatter the t-SNE coordinates: one colour per (kind, modality) as in the paper's Fig. 5."""
    if coords.shape != (inputs.vectors.shape[0], 2):
        raise VizError(
            f"t-SNE coordinates have shape {coords.shape}, expected ({len(inputs.kind)}, 2)"
        )
    fig, axes = new_figure(6.0, 5.0)
    ax = axes[0, 0]
    for k, colours, marker in (
        ("agnostic", AGNOSTIC_COLOURS, "o"),
        ("exclusive", EXCLUSIVE_COLOURS, "^"),
    ):
        for m, short in MODALITY_LABELS.items():
            sel = (inputs.kind == k) & (inputs.modality == m)
            if not sel.any():
                continue
            sym = "a" if k == "agnostic" else "e"
            ax.scatter(
                coords[sel, 0],
                coords[sel, 1],
                s=14,
                c=colours[m],
                marker=marker,
                alpha=0.8,
                label=f"$h^{sym}_{short}$ ({k})",
                edgecolors="none",
            )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(loc="best", fontsize=8, frameon=True)
    ax.set_title(title or "t-SNE of modality-exclusive / -agnostic representations")
    return save_png(fig, path)


def counts(inputs: TsneInput) -> dict[str, int]:
    """Rows per ``kind/modality`` (what the picture is made of; also saved beside the PNG)."""
    out: dict[str, int] = {}
    for k, m in zip(inputs.kind, inputs.modality, strict=True):
        key = f"{k}/{m}"
        out[key] = out.get(key, 0) + 1
    return out


def tsne_figure(
    exclusive: Mapping[str, np.ndarray],
    agnostic: Mapping[str, np.ndarray],
    path: Path,
    seed: int = 0,
    max_samples: int = 200,
    title: str = "",
    sample_ids: Sequence[str] | None = None,
) -> tuple[TsneInput, np.ndarray]:
    """Stack, embed and draw in one call; also writes ``<path>.npz`` with input and coordinates."""
    inputs = stack_representations(exclusive, agnostic, max_samples=max_samples, seed=seed)
    coords = embed(inputs, seed=seed)
    plot_tsne(inputs, coords, path, title=title)
    extra = {} if sample_ids is None else {"sample_ids": np.asarray(list(sample_ids))}
    save_npz(
        Path(path).with_suffix(".npz"),
        vectors=inputs.vectors,
        coords=coords,
        modality=inputs.modality,
        kind=inputs.kind,
        sample=inputs.sample,
        **extra,
    )
    return inputs, coords
