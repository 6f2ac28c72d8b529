"""Which steps belong to which word, and how they are reduced to one vector per word.

The rule is the CMU Multimodal SDK's (``mmsdk/mmdatasdk/dataset/dataset.py``,
``mmdataset.__intersect_and_copy``): a step ``[s, e]`` belongs to a word ``[a, b]`` when their
intersection ``[max(s, a), min(e, b)]`` is longer than :data:`EPSILON` seconds (the SDK's
``epsilon = 10e-6``). A step straddling two words belongs to both.

Reductions (``reduce``):

* ``mean`` (default): the mean of the word's steps **weighted by their overlap** with the word
  (a step half inside the word counts half). The SDK's align passes each word's clipped
  intersections to the user's collapse function; the function its README and examples use,
  ``myavg``, ignores them: ``numpy.average(features, axis=0)``, an unweighted mean.
* ``plain-mean``: that unweighted mean of the overlapping steps (the SDK examples' ``myavg``,
  which made the aligned CMU-MOSI / MOSEI data MulT and MMSA ship).
* ``max``: the feature-wise maximum over the word's steps.
* ``last``: the word's last overlapping step (in step order).

A word with no step gets zeros and ``covered = False``. The SDK leaves such a word out of that
modality's output and fills it only when ``impute`` (zeros) is called, or drops the word from
every modality with ``unify``; see docs/align.md for how the store records it.
"""

from __future__ import annotations

import numpy as np

EPSILON = 10e-6
"""Seconds: an intersection must be longer than this (the SDK's ``epsilon``)."""

REDUCES = ("mean", "plain-mean", "max", "last")


def overlaps(steps: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """``[W, T]`` overlap in seconds of each word span ``spans [W, 2]`` with each step
    ``steps [T, 2]``; 0 where the intersection is not longer than :data:`EPSILON`."""
    steps = np.asarray(steps, np.float64).reshape(-1, 2)
    spans = np.asarray(spans, np.float64).reshape(-1, 2)
    inter = np.minimum(steps[None, :, 1], spans[:, None, 1]) - np.maximum(
        steps[None, :, 0], spans[:, None, 0]
    )
    return np.where(inter > EPSILON, inter, 0.0)


def collapse(
    x: np.ndarray, steps: np.ndarray, spans: np.ndarray, reduce: str = "mean"
) -> tuple[np.ndarray, np.ndarray]:
    """Reduce the steps ``x [T, D]`` (times ``steps [T, 2]``) onto ``spans [W, 2]``.

    Returns ``(out float32 [W, D], covered bool [W])``: a word without any overlapping step
    is a row of zeros with ``covered`` False.
    """
    if reduce not in REDUCES:
        raise ValueError(f"reduce must be one of {REDUCES}, got {reduce!r}")
    x = np.asarray(x, np.float64)
    w = overlaps(steps, spans)
    member = w > 0
    covered = member.any(axis=1)
    out = np.zeros((w.shape[0], x.shape[1]), np.float64)
    if reduce in ("mean", "plain-mean"):
        weights = w if reduce == "mean" else member.astype(np.float64)
        total = weights.sum(axis=1)
        out[covered] = (weights[covered] @ x) / total[covered, None]
    else:
        for k in np.flatnonzero(covered):
            rows = np.flatnonzero(member[k])
            out[k] = x[rows].max(axis=0) if reduce == "max" else x[rows[-1]]
    return out.astype(np.float32), covered
