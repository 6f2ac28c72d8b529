"""The tables' names of the metrics (``acc2_has0`` -> ``Acc-2 (has0)``): one home, below
every stage that prints or draws a metric (train's tables, viz's curves, ablate's tables)."""

from __future__ import annotations

import re

LABELS: dict[str, str] = {
    "mae": "MAE",
    "corr": "Corr",
    "acc7": "Acc-7",
    "acc5": "Acc-5",
    "acc2_non0": "Acc-2 (non0)",
    "f1_non0": "F1 (non0)",
    "acc2_has0": "Acc-2 (has0)",
    "f1_has0": "F1 (has0)",
    "acc_mean": "Acc (mean)",
    "f1_mean": "F1 (mean)",
    "acc": "Acc",
    "f1_macro": "F1 (macro)",
    "f1_weighted": "F1 (weighted)",
    "acc2": "Acc-2 (vs middle)",
    "f1": "F1 (vs middle)",
}


def metric_label(key: str) -> str:
    """Human label of a metric key (``acc_happy`` -> ``Acc happy``, ``acc5`` -> ``Acc-5``)."""
    if key in LABELS:
        return LABELS[key]
    classes = re.fullmatch(r"acc(\d+)", key)
    if classes:
        return f"Acc-{classes.group(1)}"
    head, sep, tail = key.partition("_")
    if sep and head in ("acc", "f1"):
        return f"{'Acc' if head == 'acc' else 'F1'} {tail}"
    return key
