"""Mask helpers shared by every model (MEA and the peer models).

Batches are padded per batch with trailing padding and a boolean mask (``True`` = real step,
see :mod:`mea_cli.batch`). Everything that mixes time steps must ignore the padded ones: the
softmax of an attention map (Eq. 2, Eq. 7 of the MEA paper), temporal pooling before the
encoders (Eq. 11-12) and the weighted attention layer (Eq. 5). A row whose mask is all
``False`` (a zero-length sequence: no face, no speech) gives zeros, never NaN.
"""

from __future__ import annotations

import torch


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Softmax over ``dim`` that gives zero weight to masked entries.

    ``mask`` broadcasts against ``logits`` (``True`` = keep). Masked logits are replaced by the
    dtype's most negative finite value (not ``-inf``, so that no NaN can appear in the forward
    or backward pass), and the result is multiplied by the mask so that a fully masked row is
    all zeros rather than uniform.
    """
    mask = mask.to(torch.bool)
    filled = logits.masked_fill(~mask, torch.finfo(logits.dtype).min)
    return torch.softmax(filled, dim=dim) * mask.to(logits.dtype)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x [B, T, D]`` over the real steps of ``mask [B, T]``; zeros for empty rows."""
    w = mask.to(x.dtype).unsqueeze(-1)
    total = (x * w).sum(dim=1)
    count = w.sum(dim=1).clamp_min(1.0)
    return total / count


def masked_std(
    x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-5, mean: torch.Tensor | None = None
) -> torch.Tensor:
    """Standard deviation of ``x [B, T, D]`` over the real steps of ``mask [B, T]``:
    ``sqrt(mean((x - mean)^2) + eps)`` (the population form, divided by the number of real
    steps, so one step gives ``sqrt(eps)``; ``eps`` keeps the gradient finite there); zeros for
    empty rows, as :func:`masked_mean` gives. ``mean``: :func:`masked_mean` of the same ``x`` and
    ``mask`` where the caller has it already."""
    if mean is None:
        mean = masked_mean(x, mask)
    w = mask.to(x.dtype).unsqueeze(-1)
    dev = (x - mean.unsqueeze(1)) * w
    var = (dev * dev).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)
    present = mask.any(dim=1, keepdim=True).to(x.dtype)
    return torch.sqrt(var + eps) * present


def apply_mask(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Zero the padded steps of ``x [B, T, D]`` (``mask [B, T]``)."""
    return x * mask.to(x.dtype).unsqueeze(-1)


def pair_mask(query_mask: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
    """``[B, 1, Tq, Tk]`` mask of (query, key) pairs that are both real, for K-head maps."""
    return query_mask[:, None, :, None] & key_mask[:, None, None, :]


def valid_mean(per_sample: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``per_sample [n]`` over the samples ``valid [n]`` marks (all without it); 0 when
    none is valid (still connected to the graph). Batch statistics over samples leave out those
    whose sequence of a modality is empty (MEA Eq. 15-16, FDMER Eq. 10-11)."""
    if valid is None:
        return per_sample.mean()
    w = valid.to(per_sample.dtype)
    return (per_sample * w).sum() / w.sum().clamp_min(1.0)
