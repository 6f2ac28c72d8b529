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
store is reused only when it holds exactly the planned splits of the same source store. A fold
run (finished or not) is reused only when it was configured as the command asks now (model,
seeds, preset, dataset, task, labels range, every model field and training setting); otherwise
the command is refused before anything trains. A split that lacks a class of a single-label
task is one warning line (and a note under the folds table).
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
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
    missing_classes,
    missing_note,
    read_split_of,
    split_counts,
    store_groups,
    write_split_store,
)
from mea_cli.errors import MeaError
from mea_cli.metric_names import metric_label
from mea_cli.models.core.registry import config_from_dict
from mea_cli.paths import file_sha256, write_json, write_text
from mea_cli.train import runs
from mea_cli.train.config import TrainSettings
from mea_cli.train.metrics import format_mean_std, format_metric, mean_std
from mea_cli.train.setup import read_store_facts, resolve_config
from mea_cli.train.trainer import train_run

FOLDS_FORMAT = "mea-folds"
COMPARE_FOLDS_FORMAT = "mea-compare-folds"  # mea compare --folds (mea_cli.ablate.compare_folds)
CONTINUE_HINT = "re-run the same command to continue"
"""What the trainer says after Ctrl-C inside a command that resumes its runs itself."""

RUN_KEYS: dict[str, str] = {
    "model": "--model", "seeds": "--seeds", "preset": "--preset", "dataset": "--dataset",
    "task": "--task", "label_range": "--labels-range",
}  # fmt: skip
"""The keys of a run's ``config.json`` (besides its model config and training settings) that a
reused fold run must share with the command: ``config.json`` key -> the option that sets it."""


@dataclass(frozen=True)
class PlannedSplit:
    """One split store to train on: its label (``split`` or the fold number) and path."""

    label: str
    path: Path
    counts: dict[str, dict[str, int]]
    missing: dict[str, list[str]] = field(default_factory=dict)  # split -> classes it lacks


def plan_split_stores(
    features: Path, plan: SplitPlan, out_dir: Path
) -> tuple[list[PlannedSplit], str, str]:
    """Make (or reuse) the split stores of ``plan`` under ``out_dir``; returns them, the
    grouping's name and the source store's sha256. A store holding other splits is refused.
    The classes each split lacks are in each store's ``missing`` (:func:`missing_warning`)."""
    features = Path(features).resolve()
    with FeatureStore(features) as store:
        groups, by = store_groups(store, plan.by)
        mask = labelled_mask(store)
        task, labels, names = store.meta.task, store.samples.label, store.meta.label_names
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
        lacking = missing_classes(task, labels, names, split)
        planned.append((PlannedSplit(label, path, counts, lacking), split, record))
    for ps, split, record in planned:  # nothing is written before every check passed
        if not ps.path.exists():
            ps.path.parent.mkdir(parents=True, exist_ok=True)
            write_split_store(features, ps.path, split, record)
    return [ps for ps, _, _ in planned], by, sha


def lacking_classes(stores: Sequence[PlannedSplit]) -> dict[str, dict[str, list[str]]]:
    """Fold (or ``split``) -> split -> the classes it lacks, for the splits that lack one."""
    return {ps.label: ps.missing for ps in stores if ps.missing}


def missing_warning(stores: Sequence[PlannedSplit]) -> str:
    """The one stderr line for planned splits that lack a class ("" when none does); the
    commands print it once their checks passed, before training."""
    note = missing_note(lacking_classes(stores))
    return f"warning: {note}" if note else ""


def _warn(line: str) -> None:
    if line:
        sys.stderr.write(line + "\n")


def _split_stores(run_dir: Path) -> set[Path]:
    """The split stores under ``run_dir`` (``split.h5``, ``folds/<k>/features.h5``)."""
    found = {run_dir / "split.h5"} | set(run_dir.glob("folds/*/features.h5"))
    return {p for p in found if p.is_file()}


@contextmanager
def removed_on_error(run_dir: Path) -> Iterator[None]:
    """Undo what a command wrote into ``run_dir`` when a user error stops it before any
    training started there (no new ``config.json`` below it): a new ``run_dir`` is removed,
    and in an existing one the split stores this command made (with their folders, when left
    empty), which would otherwise block the next command under that name. A refused command
    leaves nothing behind; once a run exists, it is kept (it can be resumed)."""
    new = not run_dir.exists()
    runs_before = set() if new else set(run_dir.rglob("config.json"))
    stores_before = set() if new else _split_stores(run_dir)
    try:
        yield
    except MeaError:
        if new:
            if run_dir.is_dir() and not any(run_dir.rglob("config.json")):
                shutil.rmtree(run_dir)
        elif run_dir.is_dir() and set(run_dir.rglob("config.json")) == runs_before:
            for made in _split_stores(run_dir) - stores_before:
                made.unlink()
                for folder in (made.parent, made.parent.parent):  # folds/<k>, folds
                    if folder != run_dir and folder.is_dir() and not any(folder.iterdir()):
                        folder.rmdir()
        raise


def refuse_other_kind(run_dir: Path, kind: str) -> None:
    """Refuse a ``--name`` whose folder holds another kind of multi-run result, whose tables
    this command would overwrite: ``kind`` is what the command makes (``compare``: a
    single-split comparison, ``compare-folds``, ``train-folds``, ``train-split``). One line
    naming the folder and what to do; checked before anything is planned or written."""
    held = ""
    if (run_dir / "compare.json").is_file() and not (run_dir / "folds.json").is_file():
        held = "compare"  # a cross-validated comparison has no top-level compare.json
    elif (run_dir / "folds.json").is_file():
        try:
            fmt = runs.read_json(run_dir / "folds.json").get("format")
        except (runs.RunError, AttributeError):
            fmt = None
        held = {FOLDS_FORMAT: "train-folds", COMPARE_FOLDS_FORMAT: "compare-folds"}.get(fmt, "?")
    if not held or held == kind:
        return
    what = {
        "compare": "a comparison on one split (compare.json; mea compare without --folds)",
        "compare-folds": "a cross-validated comparison (folds.json; mea compare --folds)",
        "train-folds": "a cross-validated training (folds.json; mea train --folds)",
        "?": "results of another command (folds.json)",
    }[held]
    raise runs.RunError(
        f"{run_dir} holds {what}, whose tables this command would overwrite; give another "
        "--name (or re-run the command that made it to continue it)"
    )


def differing_keys(got: Mapping[str, Any], want: Mapping[str, Any]) -> list[str]:
    """The keys whose values differ between two mappings (absent counts as None), sorted."""
    return sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))


def _as_resumed(saved: Mapping[str, Any]) -> dict[str, Any]:
    """A saved ``config.json`` as ``--resume`` reads it: its training settings and model config
    through their types (a field added since the run was written takes its default), and a run
    written before ``--preset`` on the papers' preset. Values that do not read stay as saved
    (and then differ)."""
    out = dict(saved)
    out.setdefault("preset", "paper")
    with suppress(MeaError, TypeError, ValueError):
        out["train"] = TrainSettings.from_dict(saved.get("train", {})).to_dict()
    with suppress(MeaError, KeyError, TypeError, ValueError):
        out["model_config"] = config_from_dict(saved["model"], saved.get("model_config", {})).to_dict()
    return out


def config_differences(saved: Mapping[str, Any], want: Mapping[str, Any]) -> list[str]:
    """What a run's saved ``config.json`` differs in from ``want`` (the configuration the
    command resolves now), as the user names it: ``--model tiny, not mea``, ``train.epochs 1,
    not 2``, ``model.d 8, not 32``; [] when the run is the one asked for. Fields (the first
    four named) are only compared when the model is the same."""
    diff = [
        f"{opt} {_shown(saved.get(k))}, not {_shown(want.get(k))}"
        for k, opt in RUN_KEYS.items()
        if saved.get(k) != want.get(k)
    ]
    if saved.get("model") != want.get("model"):  # another model's settings differ anyway
        return diff
    fields = [f"train.{k}" for k in differing_keys(saved.get("train", {}), want.get("train", {}))]
    got, asked = saved.get("model_config", {}), want.get("model_config", {})
    fields += [f"model.{k}" for k in differing_keys(got, asked)]
    for name in fields[:4]:
        where, _, key = name.partition(".")
        got = saved.get("model_config" if where == "model" else "train", {}).get(key)
        asked = want.get("model_config" if where == "model" else "train", {}).get(key)
        diff.append(f"{name} {_shown(got)}, not {_shown(asked)}")
    if len(fields) > 4:
        diff.append(f"{len(fields) - 4} more field(s)")
    return diff


def _shown(value: Any) -> str:
    """A config value in a message: numbers and words as typed, lists without quotes."""
    if isinstance(value, list):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    return "none" if value is None else str(value)


def check_runs_match(req: Any, targets: Sequence[tuple[Path, Path, str]]) -> None:
    """Refuse to reuse a run (``config.json`` in a target's run folder: finished, or resumed)
    that was configured otherwise than ``req`` asks now. ``targets`` are (run folder, split
    store, run name); checked all before anything trains, one line naming what differs."""
    saved = [(d, store, name) for d, store, name in targets if (d / "config.json").is_file()]
    if not saved:
        return
    facts = read_store_facts(saved[0][1], req.dataset, False, req.task, req.label_range)
    for run_dir, store, name in saved:
        here = dataclasses.replace(facts, features=str(Path(store).resolve()))
        sub = dataclasses.replace(req, features=store, name=name, resume=False)
        want = resolve_config(sub, here, name, req.procs).to_dict()
        diff = config_differences(_as_resumed(runs.read_json(run_dir / "config.json")), want)
        if diff:
            raise runs.RunError(
                f"{run_dir} was trained with other settings ({'; '.join(diff)}); re-run with "
                "the settings it was trained with, or give another --name (or delete that "
                "directory)"
            )


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
    note: str = ""  # the splits that lack a class (:func:`mea_cli.data.splits.missing_note`)


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
    refuse_other_kind(run_dir, "train-split")
    with removed_on_error(run_dir):
        (ps,), _, _ = plan_split_stores(Path(req.features), plan, run_dir)
        check_runs_match(req, [(run_dir, ps.path, name)])  # an interrupted run resumes as asked
        _warn(missing_warning([ps]))
        sub = dataclasses.replace(
            req, features=ps.path, name=name, resume=(run_dir / "config.json").is_file(),
            interrupt_hint=CONTINUE_HINT,
        )  # fmt: skip
        return train_run(sub, console)


def train_folds(req: Any, plan: SplitPlan, console: Any = None) -> FoldsResult:
    """Train ``req`` (a :class:`mea_cli.train.trainer.TrainRequest`) on every fold of
    ``plan``; see the module docstring."""
    run_dir = Path(req.runs_dir) / _run_name(req)
    refuse_other_kind(run_dir, "train-folds")
    with removed_on_error(run_dir):
        stores, by, sha = plan_split_stores(Path(req.features), plan, run_dir)
        # a fold run left by a command with other settings is refused, not reused or resumed
        check_runs_match(req, [(run_dir / "folds" / ps.label, ps.path, ps.label) for ps in stores])
        _warn(missing_warning(stores))
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
                    interrupt_hint=CONTINUE_HINT,
                )
                if console is not None:
                    console.print(f"fold {ps.label}/{len(stores)}: {_counts_text(ps.counts)}", highlight=False)
                rows = list(train_run(sub, console).seeds.values())
            folds.append(
                {
                    "fold": ps.label,
                    "dir": str(target_dir),
                    "counts": ps.counts,
                    "missing_classes": ps.missing,
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
    result = FoldsResult(run_dir, by, folds, summary, metrics, missing_note(lacking_classes(stores)))
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
        *(["", f"Note: {result.note[0].upper()}{result.note[1:]}."] if result.note else []),
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
    if result.note:
        t.caption, t.caption_justify = f"note: {result.note}", "left"
    console.print(t)
