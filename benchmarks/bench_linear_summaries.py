"""How little a linear reader needs: one modality's per-clip summaries into a linear model.

``python benchmarks/bench_linear_summaries.py STORE [--modality audio] [--test]`` summarises each
sample's sequence three ways, each standardised per group (the store's speaker column, as
``train.normalise=group`` does; the train split's mean/std when the store has no groups), and
fits scikit-learn's balanced logistic regression on the train split for each ``C`` of a fixed
grid, printing the best valid macro-F1 (optimistic: chosen on the split it is read on, as every
valid figure of the benchmarks' selection is) and, with ``--test``, the test macro-F1 of that
``C``:

* ``mean``: the mean over all steps (what a mean pooling starts from);
* ``mean+voiced``: that, the mean over the voiced steps only (eGeMAPS's ``*_sma3nz`` descriptors
  are 0 where there is no voice; the voiced steps are those whose first such descriptor is not
  0) and the voiced fraction; for a modality without such descriptors, the mean alone;
* ``stats``: mean, standard deviation, minimum, maximum and the 10/50/90th percentiles.

A diagnostic for classification stores (docs/performance.md, Emo-DB's tenth session): how far
a linear model on a handful of numbers per clip gets, beside a neural model's valid score.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from mea_cli.artifacts.features import FeatureStore

C_GRID = (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0)
KINDS = ("mean", "mean+voiced", "stats")


def summarise(x: np.ndarray, kind: str, voiced_column: int | None) -> np.ndarray:
    """One ``[T, D]`` sequence as a vector (``kind`` as in the module's docstring)."""
    if len(x) == 0:
        x = np.zeros((1, x.shape[1]), np.float32)
    if kind == "mean":
        return x.mean(0)
    if kind == "mean+voiced":
        if voiced_column is None:
            return x.mean(0)
        voiced = x[:, voiced_column] != 0
        vmean = x[voiced].mean(0) if voiced.any() else np.zeros(x.shape[1], x.dtype)
        return np.concatenate([x.mean(0), vmean, [voiced.mean()]])
    if kind == "stats":
        return np.concatenate(
            [x.mean(0), x.std(0), x.min(0), x.max(0), *np.percentile(x, [10, 50, 90], axis=0)]
        )
    raise ValueError(f"unknown summary {kind!r}")


def standardise(features: np.ndarray, groups: np.ndarray | None, train: np.ndarray) -> np.ndarray:
    """Per group (each its own mean and std over all its samples, no labels), or with the
    train split's mean and std when there are no groups."""
    x = features.astype(np.float64)
    if groups is None:
        return (x - x[train].mean(0)) / (x[train].std(0) + 1e-8)
    out = np.empty_like(x)
    for g in np.unique(groups):
        m = groups == g
        out[m] = (x[m] - x[m].mean(0)) / (x[m].std(0) + 1e-8)
    return out


def best_c(features: np.ndarray, y: np.ndarray, split: np.ndarray) -> tuple[float, float, float]:
    """``(C, valid macro-F1, test macro-F1)`` of the ``C`` with the best valid macro-F1."""
    best = (0.0, -1.0, float("nan"))
    for c in C_GRID:
        model = LogisticRegression(C=c, class_weight="balanced", max_iter=5000)
        model.fit(features[split == "train"], y[split == "train"])
        valid = f1_score(y[split == "valid"], model.predict(features[split == "valid"]), average="macro")
        if valid > best[1]:
            test = f1_score(y[split == "test"], model.predict(features[split == "test"]), average="macro")
            best = (c, float(valid), float(test))
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store", type=Path)
    ap.add_argument("--modality", default="audio")
    ap.add_argument("--test", action="store_true", help="also print the test macro-F1")
    args = ap.parse_args(argv)
    store = FeatureStore(args.store)
    names = list(store.modalities[args.modality].feature_names)
    voiced = next((i for i, n in enumerate(names) if n.endswith("_sma3nz")), None)
    table = store.samples
    y, split = table.label.argmax(1), np.asarray(table.split).astype(str)
    groups = None if table.group is None else np.asarray(table.group).astype(str)
    print(f"{args.store} ({args.modality}, {len(names)} descriptors, {len(y)} samples; "
          f"standardised {'per group' if groups is not None else 'on train'})")  # fmt: skip
    for kind in KINDS:
        x = np.stack([summarise(store.sequence(i, args.modality), kind, voiced) for i in range(len(y))])
        c, valid, test = best_c(standardise(x, groups, split == "train"), y, split)
        print(f"{kind:12s} {x.shape[1]:4d} numbers per clip: best valid macro-F1 {valid:.3f} (C={c:g})"
              + (f", test {test:.3f}" if args.test else ""))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
