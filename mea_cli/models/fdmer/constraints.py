"""FDMER's consistency and disparity constraints (Sec. 3.3, Eq. 4-7).

* Eq. 4: the batch matrix ``C_m [n, d_k]`` of common representations is L2-normalised row by
  row (``C_m^nor``) and ``S_m = C_m^nor C_m^nor^T`` is the ``n x n`` cosine-similarity matrix
  of the batch's samples.
* Eq. 5: ``L_con = 1/3 sum_{(m1, m2)} ||S_m1 - S_m2||_F^2`` over the pairs (t, a), (t, v),
  (a, v): the common representations of two modalities should relate the samples alike.
* Eq. 6: ``HSIC(P_m1, P_m2) = (n - 1)^-2 tr(U K_m1 U K_m2)`` with inner-product kernels, MEA's
  :func:`~mea_cli.models.layers.hsic.hsic` (the same estimator and kernel; reused, not copied).
* Eq. 7: ``L_dis = 1/3 sum_{(m1, m2)} HSIC(P_m1, P_m2)``: the *private* representations of
  different modalities should be independent (MEA's ``L_dis`` pairs a modality's exclusive and
  agnostic vectors instead).

Decisions (``docs/models/fdmer.md``):

* **Eq. 4 as printed** is ``S_m = C_m C_m^nor^T``: one factor normalised, the other not. That
  matrix is not symmetric and scales with ``|C_m|``, so ``L_con`` could be lowered by shrinking
  every common vector towards zero, whatever their relations. The constraint is taken from
  AM-GCN [47], whose similarity is ``S = Z^nor Z^nor^T`` with both factors normalised; we follow
  [47]: a cosine-similarity matrix, scale-free, symmetric, with ones on the diagonal.
* **The Frobenius norm is a sum** over the ``n^2`` entries, as printed (so ``L_con`` grows with
  the batch size; the paper's gamma was tuned with its batch sizes, which the training presets
  keep).
* **With fewer modalities** (a Table 4 ``w/o`` row) the 1/3 becomes the mean over the pairs left.
* **Masks.** A sample whose sequence of modality ``m`` is empty has no representation of its
  own; each pair's term uses only the samples present in *both* modalities (their rows and
  columns of ``S``), and HSIC only those samples (its ``valid`` argument).
"""

from __future__ import annotations

from itertools import combinations

import torch
from torch.nn import functional as F

from mea_cli.models.layers.hsic import hsic


def similarity(c: torch.Tensor) -> torch.Tensor:
    """Eq. 4: ``S = C^nor C^nor^T`` for ``c [n, d]`` (rows L2-normalised), ``[n, n]``."""
    nor = F.normalize(c, dim=-1)
    return nor @ nor.transpose(0, 1)


def consistency_loss(
    common: dict[str, torch.Tensor], valid: dict[str, torch.Tensor] | None = None
) -> torch.Tensor:
    """``L_con`` of Eq. 5: mean over modality pairs of ``||S_m1 - S_m2||_F^2``.

    ``valid[m] [n]`` (optional) marks the samples with a non-empty sequence of ``m``; a pair's
    term runs over the samples present in both.
    """
    terms = []
    for a, b in combinations(common, 2):
        diff = similarity(common[a]) - similarity(common[b])
        if valid is not None:
            w = (valid[a] & valid[b]).to(diff.dtype)
            diff = diff * w[:, None] * w[None, :]
        terms.append(diff.pow(2).sum())
    return torch.stack(terms).mean()


def private_disparity_loss(
    private: dict[str, torch.Tensor], valid: dict[str, torch.Tensor] | None = None
) -> torch.Tensor:
    """``L_dis`` of Eq. 7: mean over modality pairs of ``HSIC(P_m1, P_m2)`` (Eq. 6).

    ``valid[m] [n]`` (optional): a pair's HSIC runs over the samples present in both.
    """
    terms = [
        hsic(private[a], private[b], None if valid is None else valid[a] & valid[b])
        for a, b in combinations(private, 2)
    ]
    return torch.stack(terms).mean()
