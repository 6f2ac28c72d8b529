"""``mea compare --folds K|loo [--split-by G]``: a comparison cross-validated over grouped folds.

Each fold is an ordinary comparison (:func:`mea_cli.ablate.compare.compare`) on that fold's
split store (:mod:`mea_cli.data.splits`: no group in two splits of a fold, valid grouped
inside the fold's training part)::

    runs/<name>/folds/<k>/features.h5       fold k's split store
    runs/<name>/folds/<k>/compare.{json,md,csv,tex,png}, <model>/<seed>/   fold k's comparison
    runs/<name>/folds.json                  splits per fold and every model's fold metrics
    runs/<name>/compare.{md,csv,tex,png}    mean ± std over folds, paired t-test over folds

A model's value on a fold is its mean over the fold's seeds; the tables then take mean ± sample
std over folds and pair the folds (same test groups for every model) in the t-test. Re-running
the same command resumes: finished (fold, model, seed) jobs are reused. A folder that holds a
comparison on one split (``compare.json`` at its top) or a ``mea train --folds`` is refused:
their tables would be overwritten. Folds whose splits lack a class are one warning line and a
note under the tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mea_cli.ablate.compare import (
    CompareResult,
    compare,
    default_name,
    preset_note,
    write_compare_files,
)
from mea_cli.ablate.compare_table import build_tables
from mea_cli.ablate.runner import Reporter, TrainFn
from mea_cli.ablate.table import present_metrics
from mea_cli.artifacts.features import FeatureStore
from mea_cli.data.splits import SplitPlan, missing_note
from mea_cli.paths import write_json
from mea_cli.train import runs
from mea_cli.train.folds import (
    COMPARE_FOLDS_FORMAT,
    lacking_classes,
    missing_warning,
    plan_split_stores,
    refuse_other_kind,
    removed_on_error,
)
from mea_cli.train.metrics import metric_keys


def fold_means(per_seed: Mapping[int, Mapping[str, float]]) -> dict[str, float]:
    """One model's metrics on one fold: the mean over its seeds (NaN values left out)."""
    keys = {k for m in per_seed.values() for k in m}
    out = {}
    for k in sorted(keys):
        vals = np.array([m.get(k, np.nan) for m in per_seed.values()], float)
        vals = vals[np.isfinite(vals)]
        out[k] = float(vals.mean()) if vals.size else float("nan")
    return out


def compare_folds(
    features: Path,
    dataset: str,
    models: Sequence[str],
    seeds: int,
    plan: SplitPlan,
    runs_dir: Path = Path("runs"),
    name: str | None = None,
    model_overrides: Mapping[str, Mapping[str, Any]] | None = None,
    train_overrides: Mapping[str, Any] | None = None,
    train_fn: TrainFn | None = None,
    report: Reporter | None = None,
    device: str = "auto",
    label_range: tuple[float, float] | None = None,
    preset: str = "paper",
) -> CompareResult:
    """Compare ``models`` on every fold of ``plan`` and tabulate over folds (module docstring)."""
    if plan.folds is None:
        raise ValueError("compare_folds needs plan.folds")
    dataset = dataset.strip().lower()
    out_dir = Path(runs_dir) / runs.check_name(name or default_name(features, dataset) + "-cv")
    refuse_other_kind(out_dir, "compare-folds")  # before any split store is written
    with removed_on_error(out_dir):
        stores, by, sha = plan_split_stores(Path(features), plan, out_dir)
        return _compare_folds(
            features, dataset, models, seeds, plan, out_dir, stores, by, sha,
            model_overrides, train_overrides, train_fn, report, device, label_range, preset,
        )  # fmt: skip


def _compare_folds(
    features: Path,
    dataset: str,
    models: Sequence[str],
    seeds: int,
    plan: SplitPlan,
    out_dir: Path,
    stores: Sequence[Any],
    by: str,
    sha: str,
    model_overrides: Mapping[str, Mapping[str, Any]] | None,
    train_overrides: Mapping[str, Any] | None,
    train_fn: TrainFn | None,
    report: Reporter | None,
    device: str,
    label_range: tuple[float, float] | None,
    preset: str,
) -> CompareResult:

    per_model: dict[str, dict[int, dict[str, float]]] = {}
    folds = []
    spec: dict[str, Any] = {}
    for ps in stores:
        res = compare(
            ps.path, dataset, models, seeds, out_dir / "folds", ps.label, False,
            model_overrides, train_overrides, train_fn, report, device, label_range, preset,
            say_replaced=False,
            warning=missing_warning(stores) if ps is stores[0] else "",  # once, checks passed
        )  # fmt: skip
        spec = runs.read_json(res.out_dir / "compare.json")
        means = {m: fold_means(r) for m, r in res.results.items()}
        for m, v in means.items():
            per_model.setdefault(m, {})[int(ps.label)] = v
        folds.append(
            {"fold": ps.label, "dir": str(res.out_dir), "counts": ps.counts,
             "missing_classes": ps.missing, "test": means}
        )  # fmt: skip
    with FeatureStore(features) as store:
        synthetic = " (synthetic data)" if store.meta.synthetic else ""
        store_name = Path(store.name).name
    n = len(stores)
    title = (
        f"{' vs '.join(per_model)} on {dataset}{synthetic} ({store_name}), test split, "
        f"{n} folds grouped by {by}{preset_note(preset)}"
    )
    keys = present_metrics(
        metric_keys(spec["task"], spec["label_names"], spec.get("label_range")), per_model
    )
    tables = build_tables(title, per_model, keys)
    tables.unit = "folds"
    tables.notes.append(
        "A model's value on a fold is its mean over that fold's seeds; no group is in two "
        "splits of a fold; the papers' values do not apply to these splits."
    )
    if note := missing_note(lacking_classes(stores)):
        tables.notes.append(f"Note: {note[0].upper()}{note[1:]}.")
    files = write_compare_files(tables, out_dir)
    write_json(
        out_dir / "folds.json",
        {
            "format": COMPARE_FOLDS_FORMAT,
            "version": 1,
            "features": str(Path(features).resolve()),
            "features_sha256": sha,
            "models": list(per_model),
            "preset": preset,
            "split": {**plan.describe(), "by": by},
            "folds": folds,
        }, nan="null",
    )
    return CompareResult(tables, files, per_model, out_dir)
