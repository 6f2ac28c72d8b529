"""``mea ablate`` and ``mea sweep`` end to end: find the run, plan the jobs, train, tabulate.

The stage meets training only through its public pieces: the run directory written by
``mea train`` (``config.json`` read as a :class:`~mea_cli.train.runconfig.RunConfig`,
``metrics.json``, ``ckpt.pt``; docs/design.md), the model registry (which switches the run's
model has), :mod:`mea_cli.train.setup` and :func:`mea_cli.train.trainer.train_run`.
Each job is a new, self-contained run directory nested in the original run
(``runs/<name>/ablation/<row>/<seed>/`` or ``runs/<name>/sweep/<k=v>/<seed>/``) trained with
every model-config field and training setting of the original run passed as structured
overrides (dicts), plus the row's switch (``ablations``) or the swept value. Before training,
the job's resolved config is compared with the original one and a job whose config would
differ in anything but the intended change is refused (rather than trained and tabulated).
``runs/latest`` is not touched: the nested runs keep their own ``latest`` link inside their
row directory.

A sweep's table and plot (``sweep-<field>.*``) hold every finished job of that field in the
run's sweep folder, not only the values and seeds of the command that wrote them last: a later
sweep over fewer values or seeds adds to the earlier table, it never shrinks it (one line on
stderr names the earlier values it kept). Delete ``sweep/<field>=<value>/`` to drop a value.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mea_cli.ablate.effect import fixed_batch, identical_values, no_effect_note
from mea_cli.ablate.errors import AblationError, SweepError
from mea_cli.ablate.rows import FULL, RowSpec, check_names, paper_table, table_rows
from mea_cli.ablate.runner import (
    Job,
    Reporter,
    RunInfo,
    TrainFn,
    pick_seeds,
    read_test_metrics,
    run_jobs,
    trainer_fn,
    with_valid,
)
from mea_cli.ablate.sweep import (
    SweepSpec,
    check_specs,
    parse_spec,
    plot_sweep,
    values_table_entries,
)
from mea_cli.ablate.table import (
    ResultTable,
    build_table,
    default_metrics,
    present_metrics,
    with_valid_columns,
)
from mea_cli.align import aligned_setting
from mea_cli.artifacts.features import FeatureStore
from mea_cli.locks import hold
from mea_cli.models import config_from_dict
from mea_cli.models.core.contract import model_fields
from mea_cli.models.core.deviations import deviation_block, display_name
from mea_cli.models.core.registry import check_size, get_entry
from mea_cli.paths import ensure_dir, write_text
from mea_cli.train.config import TrainSettings
from mea_cli.train.evaluate import setting_note
from mea_cli.train.runconfig import RunConfig, RunConfigError
from mea_cli.train.runs import resolve_run


def load_run(runs_dir: Path, run: str | Path | None) -> RunInfo:
    """The run to ablate: ``run`` (a directory or a name under ``runs_dir``) or ``runs/latest``.

    Raises :class:`AblationError` when it is not a training run or has no checkpoint.
    """
    if run is None:
        run_dir = resolve_run(Path(runs_dir), None)
    else:
        cand = Path(run)
        run_dir = cand if cand.is_dir() else Path(runs_dir) / str(run)
        if not run_dir.is_dir():
            raise AblationError(f"{run}: no such run directory (nor {Path(runs_dir) / str(run)})")
    cfg_path = run_dir / "config.json"
    if not cfg_path.is_file():
        raise AblationError(f"{run_dir}: not a training run (no config.json); give --run RUN_DIR")
    try:
        cfg = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as err:
        raise AblationError(f"{cfg_path}: not valid JSON ({err.msg})") from None
    if not isinstance(cfg, dict) or cfg.get("format") != "mea-run":
        got = cfg.get("format") if isinstance(cfg, dict) else type(cfg).__name__
        raise AblationError(f"{cfg_path}: format is {got!r}, expected 'mea-run'")
    try:
        config = RunConfig.from_dict(cfg)
    except RunConfigError as err:
        raise AblationError(f"{cfg_path}: {err}") from None
    seeds = config.seeds
    ckpts = [run_dir / "ckpt.pt"] + [run_dir / "seeds" / str(s) / "ckpt.pt" for s in seeds]
    if not any(p.is_file() for p in ckpts):
        raise AblationError(
            f"{run_dir}: no checkpoint (ckpt.pt) in the run; train it first (mea train) or "
            f"resume it (mea train --resume --name {run_dir.name})"
        )
    features = Path(config.features)
    if not features.is_file():
        raise AblationError(f"{run_dir}: the run's features {features} no longer exist")
    return RunInfo(
        run_dir=run_dir,
        config=config,
        features=features,
        dataset=config.dataset,
        task=config.task,
        label_names=config.label_names,
        model=config.model,
        model_config=dict(config.model_config),
        seeds=seeds,
    )


def run_job(
    run: RunInfo,
    row: str,
    seed: int,
    out_dir: Path,
    switches: Sequence[str] = (),
    model_change: Mapping[str, Any] | None = None,
    train_change: Mapping[str, Any] | None = None,
) -> Job:
    """A job that retrains ``run`` with one change: its whole model config and training
    settings as structured overrides, plus ``switches`` / ``model_change`` / ``train_change``;
    the expected config is the run's with exactly that change."""
    model = model_fields(run.model_config)
    model["ablations"] = [*model.get("ablations", []), *switches]
    model.update(model_change or {})
    train = {**run.config.train, **(train_change or {})}
    changes: dict[str, Any] = {f"train.{k}": v for k, v in (train_change or {}).items()}
    changes.update(model_change or {})
    if switches:
        changes["ablations"] = list(switches)
    return Job(
        row=row,
        seed=seed,
        out_dir=out_dir,
        model=run.model,
        features=run.features,
        dataset=run.dataset,
        model_overrides=model,
        train_overrides=train,
        expected_model_config=config_from_dict(run.model, {**run.model_config, **model}).to_dict(),
        expected_train=TrainSettings.from_dict(train).to_dict(),
        changes=changes,
        reuse=run.seed_metrics_path(seed) if row == FULL else None,
        label_range=_range(run.config.label_range),
        preset=run.config.preset,  # the reference's --preset, so the job's config says it too
    )


def _range(value: Any) -> tuple[float, float] | None:
    """A run's custom regression range (config.json ``label_range``), as a tuple."""
    return None if value is None else (float(value[0]), float(value[1]))


@dataclass
class AblationResult:
    """What ``mea ablate`` produced: the table and the files it wrote."""

    table: ResultTable
    files: dict[str, Path]
    results: dict[str, dict[int, dict[str, float]]]


def plan_ablation(
    run: RunInfo, names: Sequence[str], seeds: Sequence[int]
) -> tuple[list[RowSpec], list[Job]]:
    """Rows in table order (the model's own switches) and one job per (row, seed), rows
    outermost; the full-model row reuses the run's own results where it has them."""
    switches = get_entry(run.model).switches
    chosen = check_names(list(names), switches, run.model)
    already = set(run.model_config.get("ablations", []))
    if already:
        preset = run.config.preset
        if already <= set(run.config.preset_model_overrides.get("ablations", [])):
            # not the user's doing: "ablate the full model's run" would leave them guessing
            raise AblationError(
                f"{run.run_dir}: the run is itself an ablation ({', '.join(sorted(already))}: "
                f"part of --preset {preset}); to ablate, train it with --preset {preset} "
                "--set ablations= (the rest of the preset kept)"
            )
        raise AblationError(
            f"{run.run_dir}: the run is itself an ablation ({', '.join(sorted(already))}); "
            f"ablate the full model's run instead"
        )
    rows = table_rows(switches, chosen, run.model)
    base = run.run_dir / "ablation"
    jobs = [
        run_job(run, r.key, s, base / r.key / str(s), switches=r.switches)
        for r in rows
        for s in seeds
    ]
    return rows, jobs


def ablation_table(
    run: RunInfo,
    rows: Sequence[RowSpec],
    results: Mapping[str, Mapping[int, Mapping[str, float]]],
    with_paper: bool,
    metrics: Sequence[str] | None = None,
) -> ResultTable:
    """Build the Table V style table (optionally with the paper's Acc-7 / F1 columns)."""
    table = paper_table(run.model)
    shown = table["metrics"] if table is not None else ()
    metrics = list(metrics or default_metrics(run.task, run.config.label_range, shown))
    metrics = present_metrics(with_valid_columns(metrics), results)
    dataset = run.dataset.lower()
    paper_cols: list[str] = []
    paper: dict[str, dict[str, float]] = {}
    source = ""
    if with_paper and table is not None and any(dataset in r.paper for r in rows):
        paper_cols = list(table["metrics"])
        paper = {r.key: dict(r.paper.get(dataset, {})) for r in rows}
        src = table["source"]
        source = f"{src['table']} ({dataset.upper()}), {src['paper']}"
    synthetic, setting = _store_facts(run)
    title = f"Ablation of {run.model} on {run.dataset}{synthetic} ({run.features.name}), valid and test splits"
    entries = [(r.key, r.label, r.group, results.get(r.key, {})) for r in rows]
    out = build_table(title, entries, metrics, paper, paper_cols, source)
    if with_paper:
        out.deviations = deviation_block({run.model: run.model_config}, setting)
        note = setting_note(str(table.get("setting", "")), setting) if paper_cols else ""
        if note:  # as eval --paper and compare --paper: the paper rows' setting vs the store's
            out.notes.append(f"{display_name(run.model)} paper rows: {note}")
    return out


def _store_facts(run: RunInfo) -> tuple[str, str]:
    """`` (synthetic data)`` when the run's store says so (tables must not pass for MOSI), and
    the store's setting (``"unaligned"`` or ``"word-aligned"``, :func:`aligned_setting`)."""
    with FeatureStore(run.features) as store:
        synthetic = " (synthetic data)" if store.meta.synthetic else ""
        return synthetic, aligned_setting(store.meta.attrs)


def write_tables(table: ResultTable, out_dir: Path, stem: str) -> dict[str, Path]:
    """Write ``<stem>.md``, ``.csv`` and ``.tex`` into ``out_dir`` (atomically each)."""

    files = {}
    for ext, text in (
        ("md", table.to_markdown()),
        ("csv", table.to_csv()),
        ("tex", table.to_latex()),
    ):
        files[ext] = write_text(out_dir / f"{stem}.{ext}", text, f"{stem} table")
    return files


def ablate(
    runs_dir: Path,
    run: str | Path | None,
    drop: Sequence[str],
    seeds: int | None = None,
    with_paper: bool = False,
    train_fn: TrainFn | None = None,
    report: Reporter | None = None,
    device: str = "auto",
) -> AblationResult:
    """Train (or reuse) every row x seed and write ``ablation.{md,csv,tex}`` into the run."""
    info = load_run(runs_dir, run)
    seed_list = pick_seeds(info, seeds)
    rows, jobs = plan_ablation(info, drop, seed_list)
    fn = train_fn or trainer_fn(device)
    folder = ensure_dir(info.run_dir / "ablation", "ablation folder")
    with hold(folder, "ablation"):  # one mea ablate per run at a time
        results = with_valid(jobs, run_jobs(jobs, fn, folder / "events.jsonl", report))
        table = ablation_table(info, rows, results, with_paper)
        files = write_tables(table, info.run_dir, "ablation")
    return AblationResult(table, files, results)


@dataclass
class SweepResult:
    """What ``mea sweep`` produced per swept key: table, PNG plot and table files."""

    key: str
    table: ResultTable
    files: dict[str, Path]


def sweep(
    runs_dir: Path,
    run: str | Path | None,
    items: Sequence[str],
    seeds: int | None = None,
    train_fn: TrainFn | None = None,
    report: Reporter | None = None,
    device: str = "auto",
    on_table: Callable[[SweepResult], None] | None = None,
) -> list[SweepResult]:
    """One-at-a-time sensitivity sweeps (Figs. 7-9): train each value, tabulate and plot."""
    if not items:
        raise SweepError("nothing to sweep: give key=v1,v2,... (e.g. mu=0,0.1,0.2,0.3)")
    info = load_run(runs_dir, run)
    own = model_fields(info.model_config)
    specs = [parse_spec(it, own, dict(info.config.train)) for it in items]
    check_specs(specs)
    seed_list = pick_seeds(info, seeds)
    fn = train_fn or trainer_fn(device)
    base = info.run_dir / "sweep"
    # every value's config is built and checked before the sweep folder or any run exists
    plans = [(spec, _sweep_jobs(info, spec, seed_list, base)) for spec in specs]
    ensure_dir(base, "sweep folder")
    out: list[SweepResult] = []
    with hold(base, "sweep"):  # one mea sweep per run at a time
        for spec, jobs in plans:
            results = run_jobs(jobs, fn, base / "events.jsonl", report)
            spec, jobs = _with_earlier(info, spec, jobs, base, results)
            results = with_valid(jobs, results)
            metrics = default_metrics(info.task, info.config.label_range)
            metrics = present_metrics(with_valid_columns(metrics), results)
            title = f"Sensitivity of {info.model} on {info.dataset}{_store_facts(info)[0]} ({info.features.name}) to {spec.display}, valid and test splits"
            table = build_table(
                title, values_table_entries(spec, results), metrics, first_column=spec.display
            )
            note = _no_effect(info, spec) if spec.target == "model" and len(spec.values) > 1 else ""
            if note:
                table.notes.append(note)
            stem = f"sweep-{spec.row_key(0).split('=')[0]}"
            files = write_tables(table, info.run_dir, stem)
            files["png"] = plot_sweep(table, spec, info.run_dir / f"{stem}.png", title=title)
            res = SweepResult(spec.display, table, files)
            if on_table:
                on_table(res)
            out.append(res)
    return out


def _sweep_jobs(info: RunInfo, spec: Any, seeds: Sequence[int], base: Path) -> list[Job]:
    """The jobs of one swept key, a value's config refused (one line) if it is invalid or its
    model too big for this machine (:func:`~mea_cli.models.core.registry.check_size`)."""
    jobs = []
    for i, value in enumerate(spec.values):
        row = [
            run_job(
                info,
                spec.row_key(i),
                s,
                base / spec.row_key(i) / str(s),
                model_change={spec.key: value} if spec.target == "model" else None,
                train_change={spec.key: value} if spec.target == "train" else None,
            )
            for s in seeds
        ]
        if spec.target == "model":
            check_size(info.model, config_from_dict(info.model, row[0].expected_model_config))
        jobs += row
    return jobs


def _with_earlier(
    info: RunInfo,
    spec: SweepSpec,
    jobs: Sequence[Job],
    base: Path,
    results: dict[str, dict[int, dict[str, float]]],
) -> tuple[SweepSpec, list[Job]]:
    """``spec`` and ``jobs`` with every other finished job of the same field in ``base`` (an
    earlier sweep's values and seeds: ``<field>=<value>/<seed>/metrics.json``) added, and its
    test metrics added to ``results``; the earlier values come after this command's, in the
    order of their values. One stderr line names what was added."""
    asked = {(j.row, j.seed) for j in jobs}
    rows = {spec.row_key(i): i for i in range(len(spec.values))}
    values, texts = list(spec.values), list(spec.text)
    extra: list[Job] = []
    found = []
    for path in sorted(base.glob(f"{spec.display}=*/*/metrics.json")):
        row, seed_dir = path.parent.parent.name, path.parent.name
        if not seed_dir.isdigit() or (row, int(seed_dir)) in asked:
            continue
        try:
            raw = json.loads(path.read_text())
            changes = raw["changes"]
            value = changes[spec.display]
            test = read_test_metrics(raw)
        except (OSError, ValueError, KeyError, TypeError, AblationError):
            continue  # not a finished job of this field
        if raw.get("row") != row or set(changes) != {spec.display}:
            continue
        found.append((row, int(seed_dir), value, path.parent, test))
    if not found:
        return spec, list(jobs)
    new_rows: dict[str, Any] = {}
    for row, _, value, _, _ in found:
        if row not in rows:
            new_rows.setdefault(row, value)

    def order(item: tuple[str, Any]) -> tuple[int, Any, str]:
        v = item[1]
        number = isinstance(v, (int, float)) and not isinstance(v, bool)
        return (0, float(v), item[0]) if number else (1, 0.0, item[0])

    for row, value in sorted(new_rows.items(), key=order):
        rows[row] = len(values)
        values.append(value)
        texts.append(row.split("=", 1)[1])
    for row, seed, _, out_dir, test in found:
        extra.append(Job(row=row, seed=seed, out_dir=out_dir, model=info.model,
                         features=info.features, dataset=info.dataset))  # fmt: skip
        results.setdefault(row, {})[seed] = test
    kept = sorted({f"{r} seed {s}" for r, s, _, _, _ in found})
    sys.stderr.write(
        f"note: sweep-{spec.display}: the table also shows the earlier finished jobs of "
        f"{spec.display} in {base} ({', '.join(kept)})\n"
    )
    merged = SweepSpec(spec.key, spec.target, tuple(values), tuple(texts))
    return merged, [*jobs, *extra]


def _no_effect(info: RunInfo, spec: Any) -> str:
    """The NO EFFECT note of a swept model field (:mod:`mea_cli.ablate.effect`), or "".
    A model fitted in closed form (capability ``closed_form_fit``: the functionals baseline)
    is not checked: its fields act in the fit (``max_iter``, ``c_grid``), which a model built
    and run once at initialisation never reaches, so every value would look the same."""
    if "closed_form_fit" in get_entry(info.model).capabilities:
        return ""
    groups = identical_values(
        info.model, info.model_config, spec.key, spec.values, spec.text, fixed_batch(info.features)
    )
    return no_effect_note(spec.display, groups)


__all__ = ["FULL", "AblationResult", "SweepResult", "ablate", "load_run", "sweep"]
