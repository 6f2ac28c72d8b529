"""HSIC disparity constraint (Sec. III-E2, Eq. 13-14).

``HSIC(X, Y) = (n - 1)^-2 tr(U K U L)`` with ``U = I - ee^T / n`` and, as in the paper's
implementation, inner-product kernels ``K = X X^T``, ``L = Y Y^T`` over the ``n`` samples of the
batch (the biased empirical estimator of Gretton et al. [67]). With linear kernels the trace has
the closed form ``||X_c^T Y_c||_F^2`` (``X_c``, ``Y_c`` centred over the batch), which costs
``O(n d^2)`` instead of ``O(n^2 d)``; the tests check it against the trace form in numpy.

``L_dis = 1/3 sum_m HSIC(h^e_m, h^a_m)`` (Eq. 14): the mean over the modalities present.
A batch of one sample has no dependence to measure: HSIC is 0.
"""

from __future__ import annotations

import torch


def hsic(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Biased linear-kernel HSIC of ``x [n, p]`` and ``y [n, q]`` (Eq. 13), a scalar."""
    n = x.shape[0]
    if n < 2:
        return x.new_zeros(())
    xc = x - x.mean(dim=0, keepdim=True)
    yc = y - y.mean(dim=0, keepdim=True)
    return (xc.transpose(0, 1) @ yc).pow(2).sum() / float((n - 1) ** 2)


def disparity_loss(h_e: dict[str, torch.Tensor], h_a: dict[str, torch.Tensor]) -> torch.Tensor:
    """``L_dis`` of Eq. 14: mean over modalities of ``HSIC(h^e_m, h^a_m)``."""
    terms = [hsic(h_e[m], h_a[m]) for m in h_e]
    return torch.stack(terms).mean()
