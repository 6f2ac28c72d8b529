"""``mea eval``: a checkpoint's metrics on one split of a feature store, beside a baseline and,
on request, the papers' rows.

The checkpoint's feature schema must match the store's (which modality, expected vs found);
features are normalised with the checkpoint's training statistics, never refitted. The
baseline row is the training-mean predictor (regression: the mean training label for every
sample; IEMOCAP: each emotion's majority training class), which any useful model must beat.
``--paper`` adds the test-split rows that the MEA / MFSA / MCR / FDMER papers print for the
checkpoint's dataset (``paper_results.json``, each row citing its paper by title and table).
Those rows are only comparable with ours on the real benchmark's test split with the CMU
features the papers used (:func:`paper_comparability`); otherwise every paper column is headed
"not comparable" and the reason is printed beside them.

``CKPT`` may be a checkpoint file or a run directory (its ``ckpt.pt``; a multi-seed run names
its ``seeds/<seed>/`` directories instead, :func:`mea_cli.train.runs.checkpoint_in`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from mea_cli.artifacts.checkpoint import CheckpointError, check_schema, load_checkpoint
from mea_cli.artifacts.features import FeatureStore
from mea_cli.errors import MeaError
from mea_cli.train.engine import predict, resolve_device
from mea_cli.train.metrics import compute_metrics, format_metric, metric_keys, metric_label
from mea_cli.train.modeling import model_from_checkpoint
from mea_cli.train.runs import checkpoint_in

SPLITS = ("train", "valid", "test")
# paper column -> our metric keys it sits beside (the papers do not say non0 or has0)
_PAPER_KEYS = {
    "acc7": ("acc7",),
    "acc2": ("acc2_non0", "acc2_has0"),
    "f1": ("f1_non0", "f1_has0"),
    "mae": ("mae",),
    "corr": ("corr",),
}


class EvalError(MeaError):
    """A split or store that cannot be evaluated."""


@dataclass
class EvalResult:
    """Metrics of a checkpoint on one split, a baseline, and the papers' rows."""

    checkpoint: str
    features: str
    split: str
    n: int
    model: str
    dataset: str
    task: str
    label_names: list[str]
    metrics: dict[str, float]
    baseline: dict[str, float]
    synthetic: bool
    paper: list[dict[str, Any]] = field(default_factory=list)
    not_comparable: str = ""  # why the papers' rows are not comparable ("" when they are)

    def to_dict(self) -> dict[str, Any]:
        from mea_cli.train.runs import jsonable

        return jsonable(
            {
                "checkpoint": self.checkpoint,
                "features": self.features,
                "split": self.split,
                "samples": self.n,
                "model": self.model,
                "dataset": self.dataset,
                "task": self.task,
                "synthetic_features": self.synthetic,
                "metrics": self.metrics,
                "baseline_train_mean": self.baseline,
                "paper": self.paper,
                "paper_comparable": bool(self.paper) and not self.not_comparable,
                "paper_not_comparable_because": self.not_comparable or None,
            }
        )


def paper_rows(dataset: str) -> list[dict[str, Any]]:
    """The papers' test rows for ``dataset`` (mosi, mosei, iemocap) from the package data."""
    text = resources.files("mea_cli.train").joinpath("paper_results.json").read_text()
    return list(json.loads(text).get(dataset, []))


def paper_comparability(schema: dict[str, Any], synthetic: bool, split: str) -> str:
    """Why our numbers are not comparable with the papers' rows, or ``""`` when they are.

    The papers report the test split of the real benchmark with the CMU features (GloVe 300 /
    Facet 35 / COVAREP 74). A store qualifies only when it is not synthetic and every modality
    was imported (``mea import``) from features whose dimension is the CMU benchmark's (the
    importer records that as ``features_if_cmu_benchmark`` in the provenance the checkpoint
    keeps); features extracted by ``mea extract`` or imported with other dimensions do not.
    """
    if synthetic:
        return "the features are synthetic (mea synth), not the benchmark's"
    if split != "test":
        return f"the papers report the test split, this is the {split} split"
    for modality, entry in sorted(schema.items()):
        extractor = entry.get("extractor", {})
        if not extractor.get("parameters", {}).get("features_if_cmu_benchmark"):
            return (
                f"the {modality} features ({extractor.get('name', '?')}, {entry.get('dim')}-d) "
                "are not the CMU benchmark features the papers used (GloVe 300 / Facet 35 / "
                "COVAREP 74)"
            )
    return ""


def baseline_predictions(task: str, label_mean: np.ndarray, n: int) -> np.ndarray:
    """The training-mean predictor: constant mean (regression) or majority class per label."""
    if task == "regression":
        return np.full((n, 1), float(label_mean[0]))
    p = np.clip(np.asarray(label_mean, np.float64), 0.0, 1.0)
    logits = np.stack([1.0 - p, p], axis=-1)  # argmax = majority class
    return np.broadcast_to(logits, (n, len(p), 2)).copy()


def evaluate_checkpoint(
    ckpt_path: Path,
    features: Path | None = None,
    split: str = "test",
    device: str = "cpu",
    with_paper: bool = False,
) -> EvalResult:
    """Load ``ckpt_path``, check it against the store, predict ``split``, compute metrics."""
    from mea_cli.data.dataset import FeatureDataset, NormStats, make_loader

    if split not in SPLITS:
        raise EvalError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    ckpt_path = checkpoint_in(ckpt_path)
    ckpt = load_checkpoint(ckpt_path)
    if features is None:
        saved = ckpt.features.get("path", "")
        if not saved:
            raise CheckpointError(ckpt_path, "records no features path; pass --features")
        features = Path(saved)
        if not features.exists():
            raise CheckpointError(
                ckpt_path, f"was trained on {features}, which no longer exists; pass --features"
            )
    with FeatureStore(features) as store:
        check_schema(ckpt, store, ckpt_path)
        idx = store.split_indices(split)
        if len(idx) == 0:
            raise EvalError(f"{store.name}: the {split!r} split is empty")
        labels = store.samples.label[idx]
        if labels.shape[1] == 0 or not np.isfinite(labels).all():
            raise EvalError(
                f"{store.name}: the {split!r} split has samples without labels; metrics need "
                f"a labelled split"
            )
        stats = NormStats.from_dict(ckpt.norm)
        ds = FeatureDataset(store, split, stats)
        loader = make_loader(ds, 64, shuffle=False)
        model = model_from_checkpoint(ckpt, ckpt_path)
        dev = resolve_device(device)
        model.to(dev)
        index_of = {str(s): i for i, s in enumerate(store.samples.id)}
        with torch.no_grad():
            pred = predict(model, loader, dev, None, index_of)
        metrics = compute_metrics(ckpt.task, pred.pred, pred.labels, ckpt.label_names)
        label_mean = np.asarray(ckpt.train_config.get("train_label_mean", []), np.float64)
        if label_mean.size != len(ckpt.label_names):
            raise CheckpointError(ckpt_path, "records no training label mean (train_label_mean)")
        base = compute_metrics(
            ckpt.task,
            baseline_predictions(ckpt.task, label_mean, len(idx)),
            pred.labels,
            ckpt.label_names,
        )
        synthetic = store.meta.synthetic
        name = store.name
    return EvalResult(
        checkpoint=str(ckpt_path),
        features=name,
        split=split,
        n=len(idx),
        model=ckpt.model,
        dataset=ckpt.dataset,
        task=ckpt.task,
        label_names=list(ckpt.label_names),
        metrics=metrics,
        baseline=base,
        synthetic=synthetic,
        paper=paper_rows(ckpt.dataset) if with_paper else [],
        not_comparable=paper_comparability(ckpt.schema, synthetic, split),
    )


def render_eval(result: EvalResult, console: Console) -> None:
    """The metrics table: ours, the training-mean baseline, and the papers' rows if asked."""
    keys = metric_keys(result.task, result.label_names)
    t = Table(
        title=(
            f"{result.model} on {result.features} [{result.split}, {result.n} samples]"
            + (" (synthetic data)" if result.synthetic else "")
        ),
        title_justify="left",
    )
    t.add_column("metric")
    t.add_column("ours", justify="right")
    t.add_column("train-mean baseline", justify="right")
    tag = "paper, not comparable" if result.not_comparable else "paper"
    for row in result.paper:
        t.add_column(f"{row['model']} ({tag})", justify="right")
    for k in keys:
        cells = [format_metric(k, result.metrics.get(k)), format_metric(k, result.baseline.get(k))]
        for row in result.paper:
            cells.append(_paper_cell(row["metrics"], k))
        t.add_row(metric_label(k), *cells)
    console.print(t)
    if result.paper:
        console.print(
            "paper rows: test split of the real benchmark with the CMU features; sources: "
            + "; ".join(f"{r['model']}: {r['source']}" for r in result.paper),
            highlight=False,
        )
        if result.task == "regression":
            console.print(
                "the papers print one Acc-2/F1 pair without naming its convention; it is shown "
                "beside both non0 and has0",
                highlight=False,
            )
        if result.not_comparable:
            console.print(
                f"not comparable with the papers' rows: {result.not_comparable}",
                highlight=False,
            )


def _paper_cell(metrics: dict[str, float], key: str) -> str:
    for col, ours in _PAPER_KEYS.items():
        if key in ours and col in metrics:
            v = metrics[col]
            return f"{v:.3f}" if col in ("mae", "corr") else f"{v:.1f}"
    if key in metrics:
        return f"{metrics[key]:.1f}"
    return "-"
