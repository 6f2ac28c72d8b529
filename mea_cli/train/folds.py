"""``mea train --split-by G [--split-fractions a,b,c] [--folds K|loo]``: grouped splits and
cross-validation around the ordinary trainer.

The trainer is not changed: each split or fold is a split store (:mod:`mea_cli.data.splits`)
and an ordinary, complete run trained on it::

    runs/<name>/split.h5              --split-by without --folds: the one grouped split ...
    runs/<name>/config.json, ...      ... and the run trained on it (a normal run directory)

    runs/<name>/folds/<k>/features.h5 --folds: fold k's split store (k = 1, 2, ...) ...
    runs/<name>/folds/<k>/config.json ... and the run trained on it (ckpt.pt, metrics.json, ...)
    runs/<name>/folds.json            every fold's splits (samples, groups) and test / valid
                                      metrics (mean over seeds), and mean ± std over folds
    runs/<name>/folds.md              the same as a table

Running the same command again (same ``--name``) reuses what exists: a fold whose run has its
``metrics.json`` is not retrained, an interrupted one resumes from its last epoch, and a split
store is reused only when it holds exactly the planned splits of the same source store.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mea_cli.artifacts.features import FeatureStore
from mea_cli.data.splits import (
    SplitError,
    SplitPlan,
    group_folds,
    grouped_split,
    labelled_mask,
    leaked_groups,
    read_split_of,
    split_counts,
    store_groups,
    write_split_store,
)
from mea_cli.errors import MeaError
from mea_cli.metric_names import metric_label
from mea_cli.paths import file_sha256, write_json, write_text
from mea_cli.train import runs
from mea_cli.train.metrics import format_mean_std, format_metric, mean_std
from mea_cli.train.trainer import train_run

FOLDS_FORMAT = "mea-folds"


@dataclass(frozen=True)
class PlannedSplit:
    """One split store to train on: its label (``split`` or the fold number) and path."""

    label: str
    path: Path
    counts: dict[str, dict[str, int]]


def plan_split_stores(
    features: Path, plan: SplitPlan, out_dir: Path
) -> tuple[list[PlannedSplit], str, str]:
    """Make (or reuse) the split stores of ``plan`` under ``out_dir``; returns them, the
    grouping's name and the source store's sha256. A store holding other splits is refused."""
    features = Path(features).resolve()
    with FeatureStore(features) as store:
        groups, by = store_groups(store, plan.by)
        mask = labelled_mask(store)
    if plan.folds is None:
        columns = [("split", out_dir / "split.h5", grouped_split(groups, mask, plan.fractions, plan.seed))]
    else:
        columns = [
            (str(k), out_dir / "folds" / str(k) / "features.h5", split)
            for k, split in enumerate(group_folds(groups, mask, plan.folds, plan.fractions, plan.seed), 1)
        ]
    sha = file_sha256(features)
    planned = []
    for label, path, split in columns:
        leaked = leaked_groups(groups, split)
        if leaked:  # the dealing functions guarantee this never happens; checked all the same
            raise SplitError(f"internal error: groups {leaked[:3]} fall in two splits")
        counts = split_counts(groups, split)
        record = {"source_sha256": sha, **plan.describe(), "by": by, "fold": label, "counts": counts}
        if path.exists():
            _check_same(path, features, record, split)
        planned.append((PlannedSplit(label, path, counts), split, record))
    for ps, split, record in planned:  # nothing is written before every check passed
        if not ps.path.exists():
            ps.path.parent.mkdir(parents=True, exist_ok=True)
            write_split_store(features, ps.path, split, record)
    return [ps for ps, _, _ in planned], by, sha


@contextmanager
def removed_on_error(run_dir: Path) -> Iterator[None]:
    """Remove ``run_dir`` again when it is new and a user error stops the command before any
    training started in it (no ``config.json`` anywhere below): a refused command leaves
    nothing behind. Once a run exists, it is kept (it can be resumed)."""
    new = not run_dir.exists()
    try:
        yield
    except MeaError:
        if new and run_dir.is_dir() and not any(run_dir.rglob("config.json")):
            shutil.rmtree(run_dir)
        raise


def _check_same(path: Path, source: Path, record: dict[str, Any], split: np.ndarray) -> None:
    with FeatureStore(path) as store:
        old = read_split_of(store) or {}
        same = (
            old.get("source") == str(source)
            and all(old.get(k) == v for k, v in record.items())
            and list(store.samples.split) == list(split)
        )
    if not same:
        raise SplitError(
            f"{path} holds other splits (another store, grouping, fractions, folds or seed); "
            "give another --name (or delete that directory)"
        )


def _seed_metrics(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-seed results of a finished run's ``metrics.json`` (one seed or several)."""
    if "seeds" in raw:
        return list(raw["seeds"].values())
    return [raw]


def _mean_over_seeds(rows: Sequence[dict[str, Any]], split: str) -> dict[str, float | None]:
    got = [{k: v for k, v in r[split].items() if k != "loss"} for r in rows if r.get(split)]
    return {k: v["mean"] for k, v in mean_std(got).items()} if got else {}


@dataclass
class FoldsResult:
    """Every fold's metrics (mean over seeds) and mean ± std over folds."""

    run_dir: Path
    by: str
    folds: list[dict[str, Any]]
    summary: dict[str, Any]
    metrics: list[str]


def _run_name(req: Any) -> str:
    if req.features is None or req.resume:
        raise SplitError(
            "--split-by / --split-fractions / --folds need FEATURES and no --resume (re-run "
            "the same command with the same --name to continue)"
        )
    return runs.check_name(req.name or runs.default_name(req.model, req.dataset or "custom"))


def train_grouped(req: Any, plan: SplitPlan, console: Any = None) -> Any:
    """Train ``req`` (a :class:`mea_cli.train.trainer.TrainRequest`) on one grouped split
    (``runs/<name>/split.h5``, made or reused; an interrupted run resumes); returns the
    trainer's :class:`~mea_cli.train.trainer.RunResult`."""
    name = _run_name(req)
    run_dir = Path(req.runs_dir) / name
    if (run_dir / "config.json").exists() and not (run_dir / "split.h5").exists():
        raise runs.RunError(f"{run_dir} already exists and is not a grouped-split run; give another --name")
    if (run_dir / "metrics.json").exists():
        raise runs.RunError(f"{run_dir} is already trained; give another --name")
    with removed_on_error(run_dir):
        (ps,), _, _ = plan_split_stores(Path(req.features), plan, run_dir)
        sub = dataclasses.replace(
            req, features=ps.path, name=name, resume=(run_dir / "config.json").is_file()
        )
        return train_run(sub, console)


def train_folds(req: Any, plan: SplitPlan, console: Any = None) -> FoldsResult:
    """Train ``req`` (a :class:`mea_cli.train.trainer.TrainRequest`) on every fold of
    ``plan``; see the module docstring."""
    run_dir = Path(req.runs_dir) / _run_name(req)
    with removed_on_error(run_dir):
        stores, by, sha = plan_split_stores(Path(req.features), plan, run_dir)
        folds: list[dict[str, Any]] = []
        for ps in stores:
            target_dir = run_dir / "folds" / ps.label
            done = target_dir / "metrics.json"
            if done.is_file() and (target_dir / "config.json").is_file():
                rows = _seed_metrics(runs.read_json(done))
            else:
                sub = dataclasses.replace(
                    req,
                    features=ps.path,
                    name=ps.label,
                    runs_dir=run_dir / "folds",
                    resume=(target_dir / "config.json").is_file(),
                )
                if console is not None:
                    console.print(f"fold {ps.label}/{len(stores)}: {_counts_text(ps.counts)}", highlight=False)
                rows = list(train_run(sub, console).seeds.values())
            folds.append(
                {
                    "fold": ps.label,
                    "dir": str(target_dir),
                    "counts": ps.counts,
                    "test": _mean_over_seeds(rows, "test"),
                    "valid": _mean_over_seeds(rows, "valid"),
                }
            )
    metrics = list(folds[0]["test"])
    summary = {
        f"{split}_mean_std": mean_std([f[split] for f in folds])
        for split in ("test", "valid")
        if all(f[split] for f in folds)
    }
    result = FoldsResult(run_dir, by, folds, summary, metrics)
    write_json(
        run_dir / "folds.json",
        {
            "format": FOLDS_FORMAT,
            "version": 1,
            "features": str(Path(req.features).resolve()),
            "features_sha256": sha,
            "model": req.model,
            "split": {**plan.describe(), "by": by},
            "folds": folds,
            **summary,
        }, nan="null",
    )
    write_text(run_dir / "folds.md", folds_markdown(result), "folds table")
    return result


def _counts_text(counts: dict[str, dict[str, int]]) -> str:
    return ", ".join(f"{k} {v['samples']} samples / {v['groups']} groups" for k, v in counts.items())


def _rows(result: FoldsResult) -> tuple[list[str], list[list[str]]]:
    head = ["fold", "train / valid / test groups", *(metric_label(k) for k in result.metrics)]
    body = []
    for f in result.folds:
        c = f["counts"]
        groups = " / ".join(str(c[s]["groups"]) for s in ("train", "valid", "test"))
        body.append([f["fold"], groups, *(format_metric(k, f["test"].get(k)) for k in result.metrics)])
    stats = result.summary.get("test_mean_std", {})
    body.append(
        ["mean ± std", "", *(
            format_mean_std(k, stats[k]["mean"], stats[k]["std"], int(stats[k]["n"]))
            if k in stats else "n/a" for k in result.metrics
        )]
    )  # fmt: skip
    return head, body


def folds_markdown(result: FoldsResult) -> str:
    """``folds.md``: one row per fold (test metrics, mean over seeds), then mean ± std."""
    head, body = _rows(result)
    lines = [
        f"## {result.run_dir.name}: {len(result.folds)} folds grouped by {result.by}, test split",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|",
        *("| " + " | ".join(r) + " |" for r in body),
        "",
        "Each fold's test metrics are the mean over its seeds, with the best-on-valid "
        "checkpoint; mean ± sample std over folds (no group is in two splits of a fold).",
    ]
    return "\n".join(lines) + "\n"


def print_folds(result: FoldsResult, console: Any) -> None:
    """The folds table on the terminal."""
    from rich.table import Table

    head, body = _rows(result)
    t = Table(
        title=f"{result.run_dir} ({len(result.folds)} folds grouped by {result.by}, test split)",
        title_justify="left",
    )
    for i, h in enumerate(head):
        t.add_column(h, justify="left" if i < 2 else "right")
    for r in body:
        t.add_row(*r)
    console.print(t)
