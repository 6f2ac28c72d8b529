"""HSIC disparity constraint (Sec. III-E2, Eq. 13-14).

``HSIC(X, Y) = (n - 1)^-2 tr(U K U L)`` with ``U = I - ee^T / n`` and, as in the paper's
implementation, inner-product kernels ``K = X X^T``, ``L = Y Y^T`` over the ``n`` samples of the
batch (the biased empirical estimator, cited in the paper as Song et al. [67]). With linear
kernels the trace has the closed form ``||X_c^T Y_c||_F^2`` (``X_c``, ``Y_c`` centred over the
batch), which costs ``O(n d^2)`` instead of ``O(n^2 d)``; the tests check it against the trace
form in numpy.

``L_dis = 1/3 sum_m HSIC(h^e_m, h^a_m)`` (Eq. 14): the mean over the modalities present.

Masks: HSIC is a statistic over the *samples* of a batch. A sample whose sequence of modality
``m`` is empty (all steps masked: no face, no speech) has no ``h^e_m`` / ``h^a_m`` of its own,
only the encoders' response to a zero vector, the same constant for every such sample. Counting
those constants would add a cluster of identical points that shifts the centring and the
estimate, so ``valid[m]`` (``True`` = the sample has at least one real step of ``m``) selects
the samples of Eq. 13 for modality ``m`` and ``n`` is their count. Fewer than two samples give
no dependence to measure: HSIC is 0 (still connected to the graph, so no parameter goes without
a gradient).
"""

from __future__ import annotations

import torch


def hsic(x: torch.Tensor, y: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Biased linear-kernel HSIC of ``x [n, p]`` and ``y [n, q]`` (Eq. 13), a scalar.

    ``valid [n]`` (bool, optional) keeps only those samples; ``n`` in ``(n - 1)^-2`` is then
    their count.
    """
    if valid is not None:
        w = valid.to(x.dtype).unsqueeze(-1)
        n = int(valid.sum())
        if n < 2:
            return (x * w).sum() * 0.0 + (y * w).sum() * 0.0
        xm = (x * w).sum(dim=0, keepdim=True) / n
        ym = (y * w).sum(dim=0, keepdim=True) / n
        xc = (x - xm) * w
        yc = (y - ym) * w
    else:
        n = x.shape[0]
        if n < 2:
            return x.sum() * 0.0 + y.sum() * 0.0
        xc = x - x.mean(dim=0, keepdim=True)
        yc = y - y.mean(dim=0, keepdim=True)
    return (xc.transpose(0, 1) @ yc).pow(2).sum() / float((n - 1) ** 2)


def disparity_loss(
    h_e: dict[str, torch.Tensor],
    h_a: dict[str, torch.Tensor],
    valid: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """``L_dis`` of Eq. 14: mean over modalities of ``HSIC(h^e_m, h^a_m)``.

    ``valid[m] [n]`` (optional) marks the samples with a non-empty sequence of modality ``m``;
    the others are left out of that modality's HSIC.
    """
    terms = [hsic(h_e[m], h_a[m], None if valid is None else valid[m]) for m in h_e]
    return torch.stack(terms).mean()
