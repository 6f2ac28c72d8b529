"""Task losses (Sec. III-G) and the two forms of the separation constraint L_sep.

* Regression (MOSI, MOSEI): the MEA paper states the mean squared error,
  ``L_task = 1/n sum ||y - y_hat||^2``. The MulT-family code it compares with, and the MFSA
  conference version, use the L1 loss; ``task_loss="l1"`` selects it. Default: ``"mse"``.
* Binary multi-label (IEMOCAP, four emotions): cross-entropy over each emotion's two logits,
  averaged over emotions and samples (the MulT protocol).
* Multiclass (one class per sample, custom tasks): cross-entropy of the ``C`` class logits
  against the class the one-hot label row names (the feature store keeps single-label
  classes one-hot, ``[N, C]``), averaged over samples.

Labels that are NaN (absent) are left out of the average (multiclass: a row with any NaN);
a batch with no label gives 0. Prediction shapes per task: :mod:`mea_cli.models.core.output`.

``L_sep`` (MFSA Eq. 13, after domain separation networks [59]) comes in two forms, which are
different functionals of the same representations:

* :func:`sample_separation_loss`, the **per-sample** form that MFSA's Eq. 13 writes, used by the
  ``mfsa`` model: ``sum_m sum_i ((h^s_{m,i})^T h^a_{m,i})^2``, the squared inner product of each
  sample's own specific and agnostic vectors (a scalar, so its squared Frobenius norm is its
  square), summed over the samples ``i`` of the batch and the modalities. Zero when every
  sample's two vectors are orthogonal; it grows with their norms. The printed sum grows with the
  batch size while the task loss is a mean, so the model scales it to a reference batch
  (``reference_batch``: the paper's batch size, where it equals the printed sum).
* :func:`batch_separation_loss`, the **batch-matrix** form of domain separation networks and
  MISA, used by MEA's ``sep`` ablation row (Table V, "w/ Separation Constraint L_sep"):
  ``||H^e_m^T H^a_m||_F^2`` over the ``[n, d_h]`` batch matrices, i.e. the cross-covariance of
  the feature *dimensions* over the batch, in the scale-free form of the MISA code (centre each
  batch matrix, L2-normalise each row, mean of the squared entries), so that MEA's Table I
  ``alpha`` weighs it comparably to ``L_dis``. It is zero when the vectors do not vary over the
  batch (centring removes them) even if each sample's two vectors are equal, and the per-sample
  form can be zero while this one is not (both tested).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

TASK_LOSSES: tuple[str, ...] = ("mse", "l1")


def task_loss(
    pred: torch.Tensor, labels: torch.Tensor, task: str, kind: str = "mse"
) -> torch.Tensor:
    """Regression: ``pred [B, 1]`` vs ``labels [B, 1]``; binary multi-label: ``pred [B, K, 2]``
    vs 0/1 ``labels [B, K]``; multiclass: ``pred [B, C]`` vs one-hot ``labels [B, C]``."""
    labels = labels.to(pred.dtype)
    valid = ~torch.isnan(labels)
    if task == "multiclass":
        rows = valid.all(dim=-1)
        if not bool(rows.any()):
            return pred.sum() * 0.0
        return F.cross_entropy(pred[rows].float(), labels[rows].argmax(dim=-1))
    if not bool(valid.any()):
        return pred.sum() * 0.0
    if task == "regression":
        diff = pred[valid] - labels[valid]
        return diff.pow(2).mean() if kind == "mse" else diff.abs().mean()
    if task != "binary-multilabel":
        raise ValueError(f"no task loss for task {task!r}")
    logits = pred[valid]  # [n_valid, 2]
    target = labels[valid].round().long()
    return F.cross_entropy(logits.float(), target)


def sample_separation_loss(
    h_s: dict[str, torch.Tensor],
    h_a: dict[str, torch.Tensor],
    valid: dict[str, torch.Tensor] | None = None,
    reference_batch: int = 0,
) -> torch.Tensor:
    """MFSA's ``L_sep`` (Eq. 13), per sample: ``sum_m sum_i ((h^s_{m,i})^T h^a_{m,i})^2``.

    ``h_s[m]``, ``h_a[m]`` are ``[n, d_h]``. ``valid[m] [n]`` (optional) marks the samples with
    a non-empty sequence of ``m``: the others have no representation of their own and add
    nothing. ``reference_batch = 0``: the sum over the samples as written (no ``1/n``), which
    grows with the batch size. ``reference_batch = B > 0``: each modality's sum is divided by
    its number of samples and multiplied by ``B``, i.e. ``B`` times the per-sample mean: the
    printed sum at a batch of ``B`` samples, and the same weight beside a mean task loss at any
    other batch size (``docs/models/mfsa.md``, decision 2).
    """
    terms = []
    for m in h_s:
        per_sample = (h_s[m] * h_a[m]).sum(dim=-1).pow(2)
        if valid is not None:
            per_sample = per_sample * valid[m].to(per_sample.dtype)
        term = per_sample.sum()
        if reference_batch > 0:
            count = per_sample.new_tensor(float(per_sample.shape[0]))
            if valid is not None:
                count = valid[m].sum().to(per_sample.dtype)
            term = term * (reference_batch / count.clamp_min(1.0))
        terms.append(term)
    return torch.stack(terms).sum()


def batch_separation_loss(
    h_e: dict[str, torch.Tensor],
    h_a: dict[str, torch.Tensor],
    valid: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """MEA's ``sep`` row: soft orthogonality between exclusive and agnostic *batch matrices*.

    ``valid[m] [n]`` (optional) marks the samples with a non-empty sequence of modality ``m``;
    the others are left out of that modality's batch matrices (as for HSIC, Eq. 13).
    """
    terms = []
    for m in h_e:
        w = (
            torch.ones_like(h_e[m][:, :1])
            if valid is None
            else valid[m].to(h_e[m].dtype).unsqueeze(-1)
        )
        n = w.sum().clamp_min(1.0)
        e = (h_e[m] - (h_e[m] * w).sum(dim=0, keepdim=True) / n) * w
        a = (h_a[m] - (h_a[m] * w).sum(dim=0, keepdim=True) / n) * w
        e = F.normalize(e, dim=1)
        a = F.normalize(a, dim=1)
        terms.append((e.transpose(0, 1) @ a).pow(2).mean())
    return torch.stack(terms).sum()
