"""What an import does to padded, non-finite and reversed values: the padding side found
from where zero rows pile up, padding stripped, non-finite features set to 0 and counted,
reversed segment bounds made unknown (NaN) and counted."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def zero_run_lengths(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a padded array ``[N, T, D]``: leading and trailing counts of all-zero rows per sample.

    A row counts as zero only when every value is exactly 0 (NaN and -inf are not zero), so
    the counts are taken on the raw values, before non-finite values are mapped to 0.
    """
    n, t = x.shape[:2]
    zero = ~np.any(x != 0, axis=2)  # [N, T]; NaN != 0 is True, so NaN rows are not zero
    lead = np.where(zero.all(axis=1), t, np.argmin(zero, axis=1))
    trail = np.where(zero.all(axis=1), t, np.argmin(zero[:, ::-1], axis=1))
    return lead.astype(np.int64), trail.astype(np.int64)


def padding_evidence(x: np.ndarray) -> dict[str, int]:
    """Counts that decide the padding side of ``[N, T, D]``: zero rows at the start and at the
    end of samples that are not entirely zero, and how many samples have each."""
    lead, trail = zero_run_lengths(x)
    some = lead < x.shape[1]
    return {
        "leading_zero_rows": int(lead[some].sum()),
        "trailing_zero_rows": int(trail[some].sum()),
        "samples_with_leading_zeros": int((lead[some] > 0).sum()),
        "samples_with_trailing_zeros": int((trail[some] > 0).sum()),
        "all_zero_samples": int((~some).sum()),
    }


def decide_padding(evidence: Mapping[str, int]) -> str:
    """``"left"``, ``"right"`` or ``"none"``: the side with more zero rows (over all samples
    that are not entirely zero) holds the padding; no zero row at either end means none."""
    lead, trail = evidence["leading_zero_rows"], evidence["trailing_zero_rows"]
    if lead == 0 and trail == 0:
        return "none"
    return "left" if lead >= trail else "right"


def true_lengths(x: np.ndarray, side: str) -> np.ndarray:
    """Per-sample real length of a ``[N, T, D]`` array padded on ``side`` with zero rows."""
    lead, trail = zero_run_lengths(x)
    t = x.shape[1]
    if side == "left":
        return t - lead
    if side == "right":
        return t - trail
    return np.full(len(x), t, np.int64)


def strip(row: np.ndarray, length: int, side: str) -> np.ndarray:
    """The real ``[length, D]`` part of one padded ``[T, D]`` row."""
    if side == "left":
        return row[row.shape[0] - length :]
    return row[:length]


def fix_nonfinite(x: np.ndarray) -> tuple[np.ndarray, int]:
    """Map NaN and +-inf to 0 (COVAREP holds -inf); return the array and how many were fixed."""
    x = np.asarray(x, np.float32)
    bad = ~np.isfinite(x)
    count = int(bad.sum())
    if count:
        x = np.where(bad, np.float32(0), x)
    return x, count


def unknown_if_reversed(times: np.ndarray) -> tuple[np.ndarray, int]:
    """``[T, 2]`` (start, end) rows whose end is before their start become NaN (unknown), as a
    store may not hold them (:class:`~mea_cli.artifacts.features.FeatureStore` refuses them);
    return the rows and how many were made unknown. The features are kept."""
    t = np.array(times, np.float64).reshape(-1, 2)
    with np.errstate(invalid="ignore"):
        bad = t[:, 1] < t[:, 0]
    count = int(bad.sum())
    if count:
        t[bad] = np.nan
    return t, count
