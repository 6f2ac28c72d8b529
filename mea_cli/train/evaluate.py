"""``mea eval``: a checkpoint's metrics on one split of a feature store, beside a baseline and,
on request, the papers' rows.

The checkpoint's feature schema must match the store's (which modality, expected vs found);
features are normalised with the checkpoint's training statistics, never refitted. The
baseline row is the training-mean predictor (regression: the mean training label for every
sample; IEMOCAP: each emotion's majority training class), which any useful model must beat.
``--paper`` adds the test-split rows that the MEA / MFSA / MCR / FDMER papers print for the
checkpoint's dataset (each registered model's ``paper_<model>.json``, each row citing its paper by
title and table).
Those rows are only comparable with ours on the real benchmark's test split with the CMU
features the papers used (:func:`paper_comparability`); otherwise every paper column is headed
"not comparable" and the reason is printed beside them; the model's deviations from its paper
(declared in its registration, :mod:`mea_cli.models.core.deviations`) are printed under the table.

``CKPT`` may be a checkpoint file or a run directory (its ``ckpt.pt``; a multi-seed run names
its ``seeds/<seed>/`` directories instead, :func:`mea_cli.train.runs.checkpoint_in`). Several
``CKPT`` are evaluated as one model, an ensemble whose predictions are their average
(:mod:`mea_cli.train.ensemble`; ``mea eval runs/x/seeds/*``).

The metrics follow the checkpoint's task (:mod:`mea_cli.train.metrics`): a custom regression
task is scored on its own range, a single-label classification task gets accuracy, macro and
weighted F1 and a confusion matrix, drawn as ``confusion-<split>.png`` beside the checkpoint.
``--predictions FILE`` writes every sample's prediction beside its truth as CSV (columns:
``id, video, start, end, split``, the truth as ``truth_*``, the prediction as ``pred_*``,
:mod:`mea_cli.train.predictions`).
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from mea_cli.align import aligned_setting
from mea_cli.artifacts.checkpoint import CheckpointError, check_schema
from mea_cli.artifacts.features import FeatureStore
from mea_cli.artifacts.overlap import overlap_warning, training_overlap
from mea_cli.data.dataset import FeatureDataset, NormStats, make_loader
from mea_cli.data.splits import check_split_name
from mea_cli.errors import MeaError
from mea_cli.metric_names import metric_label
from mea_cli.models import entries, get_entry
from mea_cli.models.core.deviations import deviation_block
from mea_cli.paths import (
    check_not_input,
    check_output_file,
    jsonable,
    same_file,
    write_text,
)
from mea_cli.runtime.engine import Predictions, predict, resolve_device
from mea_cli.runtime.loading import model_from_checkpoint
from mea_cli.train.ensemble import average_predictions, averaged_line, names, open_members
from mea_cli.train.metrics import (
    MetricsError,
    compute_metrics,
    confusion,
    format_metric,
    metric_keys,
)
from mea_cli.train.predictions import flat, label_range_of, readable, truth_readable
from mea_cli.train.runs import check_store_unchanged
from mea_cli.viz.confusion import draw_confusion

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
    store_setting: str = "unaligned"  # or "word-aligned" (a `mea align` output)
    label_range: list[float] | None = None  # a custom regression task's range
    confusion: dict[str, Any] | None = None  # multiclass: labels, matrix, png
    predictions_file: str | None = None
    deviations: list[str] = field(default_factory=list)  # --paper: the model's, from its paper
    members: list[str] = field(default_factory=list)  # an ensemble's checkpoints (else empty)
    overlap: dict[str, int] = field(default_factory=dict)  # training_overlap; {} unchecked

    def to_dict(self) -> dict[str, Any]:
        return jsonable(
            {
                "checkpoint": self.checkpoint,
                "features": self.features,
                "split": self.split,
                "samples": self.n,
                "model": self.model,
                "dataset": self.dataset,
                "task": self.task,
                "label_names": self.label_names,
                "label_range": self.label_range,
                "synthetic_features": self.synthetic,
                "metrics": self.metrics,
                "baseline_train_mean": self.baseline,
                "paper": self.paper,
                "paper_comparable": bool(self.paper) and not self.not_comparable,
                "store_setting": self.store_setting,
                "paper_not_comparable_because": self.not_comparable or None,
                "confusion": self.confusion,
                "predictions_file": self.predictions_file,
                "deviations_from_paper": self.deviations,
                "ensemble_members": self.members,
                "overlap_with_training": self.overlap or None,
            }
        )


def paper_rows(dataset: str) -> list[dict[str, Any]]:
    """The papers' test rows for ``dataset`` (mosi, mosei, iemocap): each registered model's
    published row (``get_entry(model).paper.results``), in registration order."""
    return [dict(e.paper.results[dataset]) for e in entries() if dataset in e.paper.results]


def paper_setting(row: dict[str, Any]) -> str:
    """The setting a paper row was measured in when it is not ours (unaligned sequences), e.g.
    ``"word-aligned"`` for FDMER; ``""`` for an unaligned row. Shown beside the row everywhere."""
    return str(row.get("setting", ""))


def setting_note(row_setting: str, store_setting: str) -> str:
    """How a paper row's setting (``paper_setting``: ``""`` = unaligned) compares with the
    evaluated store's (``"unaligned"``, or ``"word-aligned"`` for a ``mea align`` output,
    :func:`mea_cli.align.aligned_setting`): ``""`` when both are unaligned (nothing to say)."""
    row = row_setting or "unaligned"
    if row == store_setting:
        return "" if row == "unaligned" else f"measured on {row} sequences, as this store (setting matches)"
    return f"measured on {row} sequences, not on {store_setting} ones as here"


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
    """The training-mean predictor: constant mean (regression) or majority class (per label)."""
    if task == "regression":
        return np.full((n, 1), float(label_mean[0]))
    if task == "multiclass":  # the class frequencies as logits: argmax = the majority class
        return np.broadcast_to(np.asarray(label_mean, np.float64), (n, len(label_mean))).copy()
    p = np.clip(np.asarray(label_mean, np.float64), 0.0, 1.0)
    logits = np.stack([1.0 - p, p], axis=-1)  # argmax = majority class
    return np.broadcast_to(logits, (n, len(p), 2)).copy()


def _training_store(ckpt_path: Path, ckpt: Any) -> Path:
    """The store ``ckpt`` was trained on, which must still exist (else: pass ``--features``)."""
    saved = ckpt.features.get("path", "")
    if not saved:
        raise CheckpointError(ckpt_path, "records no features path; pass --features")
    if not Path(saved).exists():
        raise CheckpointError(
            ckpt_path, f"was trained on {saved}, which no longer exists; pass --features"
        )
    return Path(saved)


def predict_split(
    ckpt_path: Path, ckpt: Any, store: FeatureStore, split: str, device: str
) -> Predictions:
    """``ckpt``'s predictions of ``split`` (the caller has checked its schema against
    ``store``), its features normalised with its own training statistics (never refitted), in
    the store's sample order."""
    stats = NormStats.from_dict(ckpt.norm)
    gaps = get_entry(ckpt.model).reads_gap_masks
    loader = make_loader(FeatureDataset(store, split, stats, gap_masks=gaps), 64, shuffle=False)
    model = model_from_checkpoint(ckpt, ckpt_path)
    dev = resolve_device(device)
    model.to(dev)
    index_of = {str(s): i for i, s in enumerate(store.samples.id)}
    with torch.no_grad():
        return predict(model, loader, dev, None, index_of)


def evaluate_checkpoint(
    ckpt_paths: Path | Sequence[Path],
    features: Path | None = None,
    split: str = "test",
    device: str = "cpu",
    with_paper: bool = False,
    predictions: Path | None = None,
    allow_changed_store: bool = False,
) -> EvalResult:
    """Load the checkpoint(s), check them against the store, predict ``split``, compute
    metrics; write the per-sample ``predictions`` CSV and, for single-label classification of
    one checkpoint, the confusion matrix PNG beside it.

    Several checkpoints are evaluated as one model, their predictions averaged
    (:mod:`mea_cli.train.ensemble`: they must predict the same labels and have been trained on
    the same store). The store the checkpoints were trained on (the default, or ``features``
    naming that same file) must still have the SHA-256 they recorded, unless
    ``allow_changed_store``; another store given with ``features`` is evaluated as it is, after
    a warning if its split holds samples of the training's (:func:`training_overlap`)."""
    check_split_name(split)
    if predictions is not None:
        check_output_file(predictions, "predictions file")
    members = open_members(ckpt_paths)
    ckpt_path, ckpt = members[0]
    if features is None:
        features = _training_store(ckpt_path, ckpt)
    saved = ckpt.features.get("path", "")
    if saved and Path(saved).exists() and Path(features).exists() and same_file(saved, features):
        check_store_unchanged(
            features, ckpt.features.get("sha256", ""), ckpt_path, allow_changed_store
        )
        trained_on = None  # the training store itself: its splits are the training's
    else:  # the members share one training store (same sha256); any copy of it that exists
        found = (Path(p) for _, m in members if (p := m.features.get("path", "")))
        trained_on = next((p for p in found if p.exists()), None)
    if predictions is not None:
        check_not_input(predictions, [Path(features), *(m[0] for m in members)], "predictions file")
    with FeatureStore(features) as store:
        for path, member in members:
            check_schema(member, store, path)
        store.check_values()
        idx = store.split_indices(split)
        if len(idx) == 0:
            raise EvalError(f"{store.name}: the {split!r} split is empty")
        labels = store.samples.label[idx]
        if labels.shape[1] == 0 or not np.isfinite(labels).all():
            raise EvalError(
                f"{store.name}: the {split!r} split has samples without labels; metrics need "
                f"a labelled split"
            )
        overlap = (
            {}
            if trained_on is None
            else training_overlap(trained_on, ckpt.features.get("sha256", ""), store, idx)
        )
        if trained_on is not None:
            sys.stderr.write(overlap_warning(Path(features), trained_on, overlap, split, len(idx)))
        preds = [predict_split(path, member, store, split, device) for path, member in members]
        pred = preds[0]
        if len(preds) > 1:
            pred = replace(pred, pred=average_predictions(ckpt.task, [p.pred for p in preds]))
        rng = ckpt.label_range
        try:
            metrics = compute_metrics(ckpt.task, pred.pred, pred.labels, ckpt.label_names, rng)
        except MetricsError as err:
            raise EvalError(f"{ckpt_path} on the {split!r} split of {store.name}: {err}") from None
        label_mean = np.asarray(ckpt.train_config.get("train_label_mean", []), np.float64)
        if label_mean.size != len(ckpt.label_names):
            raise CheckpointError(ckpt_path, "records no training label mean (train_label_mean)")
        base = compute_metrics(
            ckpt.task,
            baseline_predictions(ckpt.task, label_mean, len(idx)),
            pred.labels,
            ckpt.label_names,
            rng,
        )
        synthetic = store.meta.synthetic
        name = store.name
        store_setting = aligned_setting(store.meta.attrs)
        if predictions is not None:
            write_predictions(predictions, ckpt, store, pred)
    cm = None
    if ckpt.task == "multiclass":
        matrix = confusion(pred.pred, pred.labels, ckpt.label_names)
        png = None
        if len(members) == 1:  # an ensemble has no folder of its own to draw into
            png = draw_confusion(
                matrix,
                ckpt.label_names,
                f"{ckpt.model} on {name} [{split}, {len(idx)} samples]",
                ckpt_path.parent / f"confusion-{split}.png",
            )
        cm = {
            "labels": list(ckpt.label_names),
            "matrix": matrix.tolist(),
            "png": None if png is None else str(png),
        }
    checkpoint, model, member_paths = names(members)
    return EvalResult(
        checkpoint=checkpoint,
        features=name,
        split=split,
        n=len(idx),
        model=model,
        dataset=ckpt.dataset,
        task=ckpt.task,
        label_names=list(ckpt.label_names),
        metrics=metrics,
        baseline=base,
        synthetic=synthetic,
        paper=paper_rows(ckpt.dataset) if with_paper else [],
        not_comparable=(
            f"an ensemble of {len(members)} checkpoints; the papers' rows are single models"
            if member_paths
            else paper_comparability(ckpt.schema, synthetic, split)
        ),
        store_setting=store_setting,
        label_range=rng,
        confusion=cm,
        predictions_file=None if predictions is None else str(predictions),
        deviations=(
            deviation_block({c.model: c.model_config for _, c in members}, store_setting)
            if with_paper
            else []
        ),
        members=member_paths,
        overlap=overlap,
    )


def write_predictions(path: Path, ckpt: Any, store: FeatureStore, pred: Any) -> Path:
    """Every sample's prediction beside its truth, one CSV row each (module docstring)."""
    rng = label_range_of(ckpt.task, ckpt.dataset, ckpt.label_range)
    said = readable(ckpt.task, pred.pred, ckpt.label_names, rng)
    truth = truth_readable(ckpt.task, pred.labels, ckpt.label_names)
    rows = []
    for k, i in enumerate(pred.index):
        s = store.samples
        row = {
            "id": pred.ids[k],
            "video": str(s.video[i]),
            "start": f"{float(s.start[i]):g}",
            "end": f"{float(s.end[i]):g}",
            "split": str(s.split[i]),
        }
        row.update(flat(truth[k], "truth_"))
        row.update(flat(said[k], "pred_"))
        rows.append(row)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return write_text(path, buf.getvalue(), "predictions file")


def render_eval(result: EvalResult, console: Console) -> None:
    """The metrics table: ours, the training-mean baseline, and the papers' rows if asked."""
    keys = metric_keys(result.task, result.label_names, result.label_range)
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
        setting = paper_setting(row)
        t.add_column(f"{row['model']} ({tag}{', ' + setting if setting else ''})", justify="right")
    for k in keys:
        cells = [format_metric(k, result.metrics.get(k)), format_metric(k, result.baseline.get(k))]
        for row in result.paper:
            cells.append(_paper_cell(row["metrics"], k))
        t.add_row(metric_label(k), *cells)
    console.print(t)
    if result.members:
        console.print(averaged_line(result.task, result.members), highlight=False, soft_wrap=True)
    if result.label_range is not None:
        a, b = result.label_range
        console.print(
            f"custom regression on [{a:g}, {b:g}]: Acc-2/F1 count scores above vs below "
            f"{(a + b) / 2:g}",
            highlight=False,
        )
    if result.confusion is not None:
        _render_confusion(result.confusion, console)
    if result.predictions_file:
        console.print(f"per-sample predictions: {result.predictions_file}", highlight=False)
    if result.paper:
        console.print(
            "paper rows: test split of the real benchmark with the CMU features; sources: "
            + "; ".join(f"{r['model']}: {r['source']}" for r in result.paper),
            highlight=False,
        )
        for setting in sorted({paper_setting(r) for r in result.paper}):
            note = setting_note(setting, result.store_setting)
            models = ", ".join(r["model"] for r in result.paper if paper_setting(r) == setting)
            if note:
                console.print(f"{models}: {note}", highlight=False)
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
    for line in result.deviations:
        console.print(line, highlight=False, soft_wrap=True)


def _render_confusion(cm: dict[str, Any], console: Console) -> None:
    t = Table(title="confusion matrix (rows: truth, columns: predicted)", title_justify="left")
    t.add_column("truth \\ predicted")
    for name in cm["labels"]:
        t.add_column(name, justify="right")
    for name, row in zip(cm["labels"], cm["matrix"], strict=True):
        t.add_row(name, *(str(v) for v in row))
    console.print(t)
    if cm["png"]:
        console.print(f"confusion matrix picture: {cm['png']}", highlight=False)


def _paper_cell(metrics: dict[str, float], key: str) -> str:
    for col, ours in _PAPER_KEYS.items():
        if key in ours and col in metrics:
            v = metrics[col]
            return f"{v:.3f}" if col in ("mae", "corr") else f"{v:.1f}"
    if key in metrics:
        return f"{metrics[key]:.1f}"
    return "-"
