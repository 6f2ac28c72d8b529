"""``mea compare FEATURES --dataset D --models a,b[,...] --seeds K``: models side by side.

Every model is trained on the same feature store, splits and seeds (``1111, 1112, ...``), each
with its own training preset (:mod:`mea_cli.train.presets`) and model preset, plus the same
structured overrides for all (``train``) and per model. The jobs go through the one job
machinery of this stage (:mod:`mea_cli.ablate.runner`): a finished (model, seed) is never
retrained and an interrupted one continues from its last epoch, so re-running the same command
after a kill picks up where it stopped, and adding a model or seeds reuses what exists (the
store, dataset, preset, labels range and overrides must be the same: another is refused)::

    runs/<name>/compare.json           what is compared: store (+ sha256), dataset, preset, overrides
    runs/<name>/<model>/<seed>/        a complete nested run per (model, seed)
    runs/<name>/events.jsonl           one line per job outcome: trained | cached
    runs/<name>/compare.{md,csv,tex,png}

Then one table per metric (:mod:`mea_cli.ablate.compare_table`): mean ± std over seeds, the
change against the first model and a paired t-test against it. ``--paper`` puts the papers'
values beside ours only when the store holds the benchmark's own features
(:func:`mea_cli.data.presets.benchmark_mismatch`); otherwise the output says why they are not
comparable.

The tables show the models and seeds of the command that wrote them: a re-run with fewer
models or seeds replaces the earlier, wider table (its runs stay, and the same wider command
brings it back from them without training); one line on stderr says what was replaced. A
folder that holds a cross-validation (``folds.json``) is refused: its tables would be
overwritten.
"""

from __future__ import annotations

import csv
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mea_cli.ablate.compare_table import CompareTables, build_tables, plot_bars
from mea_cli.ablate.errors import AblationError
from mea_cli.ablate.runner import Job, Reporter, TrainFn, run_jobs, trainer_fn
from mea_cli.ablate.table import present_metrics
from mea_cli.align import aligned_setting
from mea_cli.artifacts.features import FeatureStore
from mea_cli.config import ConfigError, parse_text
from mea_cli.data.presets import benchmark_mismatch, get_preset
from mea_cli.data.splits import missing_classes, missing_note, read_split_of
from mea_cli.locks import hold
from mea_cli.models.core.deviations import deviation_block
from mea_cli.models.core.registry import get_entry
from mea_cli.paths import ensure_dir, write_json, write_text
from mea_cli.train import runs
from mea_cli.train.evaluate import paper_rows, paper_setting, setting_note
from mea_cli.train.folds import refuse_other_kind
from mea_cli.train.metrics import metric_keys
from mea_cli.train.setup import DEFAULT_SEED, TrainRequest, read_store_facts, resolve_config

SPEC_FORMAT = "mea-compare"
CHECKED_KEYS: tuple[str, ...] = (
    "features", "features_sha256", "dataset", "preset", "label_range", "train_overrides",
)  # fmt: skip
"""What a comparison continued under the same ``--name`` must share with the earlier one (the
run-defining options of ``mea train``, ``cli_support.RUN_DEFINING``, that ``mea compare``
takes: models and seeds may be added; the model overrides are checked per model; the split
options are checked by the split stores themselves)."""


class CompareError(AblationError):
    """A comparison that cannot run: unknown model, a changed store under an existing name, ..."""


@dataclass
class CompareResult:
    """The tables, the files written and the per-seed test metrics of every model."""

    tables: CompareTables
    files: dict[str, Path]
    results: dict[str, dict[int, dict[str, float]]]
    out_dir: Path


def default_name(features: Path, dataset: str) -> str:
    """``compare-<dataset>-<store name>``: the same command finds the same directory again."""
    return "compare-" + re.sub(r"[^A-Za-z0-9._+-]", "_", f"{dataset}-{Path(features).stem}")


def preset_note(preset: str) -> str:
    """What a table title adds for ``--preset``: nothing for the papers' presets."""
    return "" if preset == "paper" else f", --preset {preset}"


def seed_list(count: int) -> list[int]:
    """``count`` seeds from the trainer's default seed on (1111, 1112, ...)."""
    if count < 1:
        raise CompareError(f"--seeds must be at least 1, got {count}")
    return [DEFAULT_SEED + i for i in range(count)]


def parse_compare_sets(
    items: Sequence[str], models: Sequence[str]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """``--set`` items of ``mea compare``: ``train.<setting>=v`` for every model,
    ``<model>.<field>=v`` for one; returns ``(train, {model: model overrides})``."""
    train: dict[str, Any] = {}
    per_model: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        head, dot, field = key.strip().partition(".")
        if not sep or not dot or not field or (head != "train" and head not in models):
            raise ConfigError(
                "--set",
                f"{item!r}: expected train.<setting>=value or <model>.<field>=value with a "
                f"model of --models ({', '.join(models)})",
            )
        target = train if head == "train" else per_model.setdefault(head, {})
        target[field] = parse_text(value)
    return train, per_model


def _check_spec(path: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """The spec to write: ``spec`` merged into an existing one, which must agree with it."""
    if not path.is_file():
        return spec
    old = runs.read_json(path)
    if old.get("format") != SPEC_FORMAT:
        raise CompareError(f"{path}: not a mea compare directory (format {old.get('format')!r})")
    old.setdefault("preset", "paper")  # a comparison written before --preset
    differ = [k for k in CHECKED_KEYS if old.get(k) != spec[k]]
    shared = set(old.get("model_overrides", {})) & set(spec["model_overrides"])
    differ += [
        f"overrides of {m}"
        for m in sorted(shared)
        if old["model_overrides"][m] != spec["model_overrides"][m]
    ]
    if differ:
        raise CompareError(
            f"{path.parent} holds a comparison with another {', '.join(differ)}; give another "
            f"--name (or delete that directory)"
        )
    return {**spec, "model_overrides": {**old["model_overrides"], **spec["model_overrides"]}}


def plan_compare(
    features: Path,
    dataset: str,
    models: Sequence[str],
    seeds: Sequence[int],
    out_dir: Path,
    model_overrides: Mapping[str, Mapping[str, Any]] | None = None,
    train_overrides: Mapping[str, Any] | None = None,
    label_range: tuple[float, float] | None = None,
    preset: str = "paper",
) -> tuple[list[Job], dict[str, Any]]:
    """One job per (model, seed), models outermost, and the comparison's spec.

    Each job's expected configuration is what the trainer resolves for it (``preset``:
    ``paper`` or ``small``, as ``mea train --preset``, then the overrides), so a job directory
    left by an earlier, different comparison is refused.
    """
    models = [m.strip() for m in models if m.strip()]
    if len(set(models)) != len(models) or len(models) < 2:
        raise CompareError(f"--models needs at least two distinct models, got {','.join(models)}")
    for m in models:
        get_entry(m)
    per_model = {k: dict(v) for k, v in (model_overrides or {}).items()}
    stray = sorted(set(per_model) - set(models))
    if stray:
        raise CompareError(f"overrides for {', '.join(stray)}, which is not in --models")
    train = dict(train_overrides or {})
    facts = read_store_facts(Path(features), dataset, label_range=label_range)
    jobs = []
    for m in models:
        for s in seeds:
            out = out_dir / m / str(s)
            req = TrainRequest(
                features=Path(facts.features),
                dataset=dataset,
                model=m,
                seeds=[s],
                train_overrides=train,
                model_overrides=per_model.get(m, {}),
                label_range=label_range,
                preset=preset,
            )
            cfg = resolve_config(req, facts, str(s))
            jobs.append(
                Job(
                    row=m,
                    seed=s,
                    out_dir=out,
                    model=m,
                    features=Path(facts.features),
                    dataset=cfg.dataset,
                    model_overrides=per_model.get(m, {}),
                    train_overrides=train,
                    expected_model_config=cfg.model_config,
                    expected_train=cfg.train,
                    label_range=label_range,
                    preset=preset,
                )
            )
    spec = {
        "format": SPEC_FORMAT,
        "version": 1,
        "features": facts.features,
        "features_sha256": facts.sha256,
        "dataset": jobs[0].dataset,
        "task": facts.task,
        "label_names": list(facts.label_names),
        "label_range": None if facts.label_range is None else list(facts.label_range),
        "preset": preset,
        "train_overrides": train,
        "model_overrides": {m: per_model.get(m, {}) for m in models},
    }
    return jobs, spec


def _paper(
    features: Path, dataset: str, models: Sequence[str]
) -> tuple[dict | None, str, dict[str, str]]:
    """The papers' values per model and metric (or None), the note citing them (or saying why
    they are not comparable), and the setting of each row that was not measured unaligned."""
    with FeatureStore(features) as store:
        why = benchmark_mismatch(store, get_preset(dataset))
        store_setting = aligned_setting(store.meta.attrs)
    if why is not None:
        return None, f"Papers' values not shown: {why}, so they are not comparable.", {}
    rows = {r["model"].lower(): r for r in paper_rows(dataset)}
    alias = {"acc2_non0": "acc2", "acc2_has0": "acc2", "f1_non0": "f1", "f1_has0": "f1"}
    values: dict[str, dict[str, float]] = {}
    settings: dict[str, str] = {}
    cited = []
    for m in models:
        row = rows.get(m.lower())
        if row is None:
            continue
        setting = paper_setting(row)
        if setting:
            settings[m] = setting
        said = setting_note(setting, store_setting)
        on = f" [{said}]" if said else ""
        cited.append(f"{row['model']}: {row['source']}{on}")
        for key, v in row["metrics"].items():
            values.setdefault(m, {})[key] = v
        for ours, col in alias.items():
            if col in row["metrics"]:
                values[m][ours] = row["metrics"][col]
    missing = [m for m in models if m not in values]
    note = "Paper values (the benchmark's test split): " + "; ".join(cited or ["none"]) + "."
    if missing:
        note += f" No published row for {', '.join(missing)}."
    return values, note, settings


def compare(
    features: Path,
    dataset: str,
    models: Sequence[str],
    seeds: int,
    runs_dir: Path = Path("runs"),
    name: str | None = None,
    with_paper: bool = False,
    model_overrides: Mapping[str, Mapping[str, Any]] | None = None,
    train_overrides: Mapping[str, Any] | None = None,
    train_fn: TrainFn | None = None,
    report: Reporter | None = None,
    device: str = "auto",
    label_range: tuple[float, float] | None = None,
    preset: str = "paper",
    say_replaced: bool = True,
    warning: str = "",
) -> CompareResult:
    """Train (or reuse) every model x seed, then write ``compare.{md,csv,tex,png}``
    (``say_replaced``: one stderr line when they replace a table of more models or seeds).
    ``warning`` is a line for stderr once the comparison's checks passed, before training
    (the caller's planned splits that lack a class)."""
    dataset = dataset.strip().lower()
    out_dir = Path(runs_dir) / runs.check_name(name or default_name(features, dataset))
    refuse_other_kind(out_dir, "compare")  # a cross-validation's tables are not overwritten
    jobs, spec = plan_compare(
        features, dataset, models, seed_list(seeds), out_dir, model_overrides, train_overrides,
        label_range, preset,
    )  # fmt: skip
    spec = _check_spec(out_dir / "compare.json", spec)
    ensure_dir(Path(runs_dir), "runs directory")
    ensure_dir(out_dir, "comparison directory")
    with hold(out_dir, "comparison"):  # one mea compare per folder at a time
        write_json(out_dir / "compare.json", spec, nan="null")
        if warning:
            sys.stderr.write(warning + "\n")
        results = run_jobs(jobs, train_fn or trainer_fn(device), out_dir / "events.jsonl", report)
    ordered = {m: results.get(m, {}) for m in dict.fromkeys(j.model for j in jobs)}
    with FeatureStore(features) as store:
        synthetic = " (synthetic data)" if store.meta.synthetic else ""
        store_name = Path(store.name).name
        setting = aligned_setting(store.meta.attrs)
        lacking = missing_classes(
            store.meta.task, store.samples.label, store.meta.label_names, store.samples.split
        )
        planned = read_split_of(store) is not None  # a grouped split: other options may help
    title = (
        f"{' vs '.join(ordered)} on {dataset}{synthetic} ({store_name}), test split"
        f"{preset_note(preset)}"
    )
    paper, note, settings = (None, "", {})
    if with_paper:
        paper, note, settings = _paper(features, dataset, list(ordered))
    keys = present_metrics(metric_keys(spec["task"], spec["label_names"], spec["label_range"]), ordered)
    tables = build_tables(title, ordered, keys, paper, settings)
    tables.paper_note = note
    if with_paper:
        configs = {j.model: j.expected_model_config for j in jobs}
        tables.deviations = deviation_block({m: configs[m] for m in ordered}, setting)
    if note := missing_note({"split": lacking}, planned):
        tables.notes.append(f"Note: {note[0].upper()}{note[1:]}.")
    files = write_compare_files(tables, out_dir, say_replaced)
    return CompareResult(tables, files, ordered, out_dir)


def _table_contents(path: Path) -> dict[str, set[str]]:
    """Model -> the seeds (or folds) of a written ``compare.csv`` ({} when none is readable)."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error):
        return {}
    out: dict[str, set[str]] = {}
    for r in rows:
        if r.get("model"):
            out.setdefault(r["model"], set()).update((r.get("seeds") or "").split())
    return out


def replaced_line(old: Mapping[str, set[str]], new: Mapping[str, set[str]], unit: str, where: Path) -> str:
    """The line that says an earlier table of more models or ``unit`` (seeds, folds) is
    replaced by ``new``; "" when ``new`` holds everything ``old`` did."""
    if all(m in new and seeds <= new[m] for m, seeds in old.items()):
        return ""

    def said(table: Mapping[str, set[str]]) -> str:
        return ", ".join(
            f"{m} ({unit} {' '.join(sorted(s, key=lambda x: (len(x), x))) or 'none'})"
            for m, s in table.items()
        )

    return (
        f"note: {where} held a table of {said(old)}; it is replaced by this one of {said(new)} "
        f"(the earlier runs are kept: the earlier command shows them again without training)"
    )


def write_compare_files(
    tables: CompareTables, out_dir: Path, say_replaced: bool = True
) -> dict[str, Path]:
    """``compare.md``, ``.csv``, ``.tex`` and the bar chart ``compare.png``, each atomically;
    with ``say_replaced``, one stderr line when they replace a table of more models or seeds
    (folds) than this one shows (:func:`replaced_line`)."""
    old = _table_contents(out_dir / "compare.csv")
    new: dict[str, set[str]] = {}
    for t in tables.tables:
        for r in t.rows:
            new.setdefault(r.model, set()).update(map(str, r.seeds))
    line = replaced_line(old, new, tables.unit, out_dir / "compare.csv") if old else ""
    if say_replaced and line:
        sys.stderr.write(line + "\n")
    files = {
        ext: write_text(out_dir / f"compare.{ext}", text, "comparison table")
        for ext, text in (
            ("md", tables.to_markdown()),
            ("csv", tables.to_csv()),
            ("tex", tables.to_latex()),
        )
    }
    files["png"] = plot_bars(tables, out_dir / "compare.png")
    return files
