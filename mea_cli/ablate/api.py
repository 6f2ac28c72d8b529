"""``mea ablate`` and ``mea sweep`` end to end: find the run, plan the jobs, train, tabulate.

The stage meets training only through its public pieces: the run directory written by
``mea train`` (``config.json``, ``metrics.json``, ``ckpt.pt``; docs/design.md) and
:func:`mea_cli.train.trainer.train_run`. Each job is a new, self-contained run directory nested
in the original run (``runs/<name>/ablation/<row>/<seed>/`` or ``runs/<name>/sweep/<k=v>/<seed>/``)
trained with every model-config field and training setting of the original run passed as
``--set`` overrides, plus the row's switch (``ablations=[...]``) or the swept value. After
training we compare the job's saved model config with the original one and refuse (rather than
tabulate) a job whose config differs in anything but the intended change. ``runs/latest`` is not
touched: the nested runs keep their own ``latest`` link inside their row directory.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mea_cli.ablate.errors import AblationError
from mea_cli.ablate.rows import FULL, RowSpec, check_names, paper_table, table_rows
from mea_cli.ablate.runner import Job, Reporter, RunInfo, TrainFn, pick_seeds, run_jobs
from mea_cli.ablate.table import ResultTable, build_table, default_metrics
from mea_cli.paths import write_text

# model-config fields that describe the data, not the model: the trainer derives them from the
# store, so they are not passed as overrides
_DATA_FIELDS = ("dataset", "task", "num_labels", "input_dims")


def load_run(runs_dir: Path, run: str | Path | None) -> RunInfo:
    """The run to ablate: ``run`` (a directory or a name under ``runs_dir``) or ``runs/latest``.

    Raises :class:`AblationError` when it is not a training run or has no checkpoint.
    """
    if run is None:
        from mea_cli.train.runs import resolve_run

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
    if cfg.get("format") != "mea-run":
        raise AblationError(f"{cfg_path}: format is {cfg.get('format')!r}, expected 'mea-run'")
    seeds = tuple(int(s) for s in cfg.get("seeds", []))
    ckpts = [run_dir / "ckpt.pt"] + [run_dir / "seeds" / str(s) / "ckpt.pt" for s in seeds]
    if not any(p.is_file() for p in ckpts):
        raise AblationError(
            f"{run_dir}: no checkpoint (ckpt.pt) in the run; train it first (mea train) or "
            f"resume it (mea train --resume --name {run_dir.name})"
        )
    features = Path(cfg["features"])
    if not features.is_file():
        raise AblationError(f"{run_dir}: the run's features {features} no longer exist")
    return RunInfo(
        run_dir=run_dir,
        config=cfg,
        features=features,
        dataset=str(cfg["dataset"]),
        task=str(cfg["task"]),
        label_names=tuple(cfg.get("label_names", [])),
        model=str(cfg["model"]),
        model_config=dict(cfg["model_config"]),
        seeds=seeds,
    )


def _sets(run: RunInfo, job: Job) -> list[str]:
    """Every model-config field and training setting of the run as ``--set`` items, changed."""
    model = {k: v for k, v in run.model_config.items() if k not in _DATA_FIELDS}
    model["ablations"] = sorted(set(model.get("ablations", [])) | set(job.switches))
    model.update(job.model_overrides)
    train = dict(run.config.get("train", {}))
    train.update(job.train_overrides)
    items = [f"{k}={_model_text(v)}" for k, v in model.items()]
    items += [f"train.{k}={json.dumps(v)}" for k, v in train.items()]
    return items


def _model_text(value: Any) -> str:
    """A model-config value in the text form the model config parses (``--set key=value``):
    lists as ``a,b`` (``()`` when empty), booleans ``true``/``false``, dicts as JSON, numbers
    with ``repr`` (exact round trip)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value) if value else "()"
    if isinstance(value, dict):
        return json.dumps(value)
    return repr(value) if isinstance(value, float) else str(value)


def expected_config(run: RunInfo, job: Job) -> dict[str, Any]:
    """The model config a job must end up with: the run's, plus the job's change."""
    from mea_cli.models import config_from_dict

    want = dict(run.model_config)
    want["ablations"] = sorted(set(want.get("ablations", [])) | set(job.switches))
    want.update(job.model_overrides)
    for k in ("batch_size", "epochs", "lr"):
        if k in job.train_overrides and k in want:
            want[k] = job.train_overrides[k]
    return config_from_dict(run.model, want).to_dict()


def trainer_fn(device: str = "auto", live: bool | None = False, console: Any = None) -> TrainFn:
    """A :data:`TrainFn` that trains one job with :func:`mea_cli.train.trainer.train_run`."""

    def train(run: RunInfo, job: Job) -> Mapping[str, Any]:
        from mea_cli.train.trainer import TrainRequest, train_run

        resume = (job.out_dir / "config.json").is_file()  # interrupted mid-training: continue
        req = TrainRequest(
            features=run.features,
            dataset=run.dataset,
            model=run.model,
            seeds=[job.seed],
            sets=_sets(run, job),
            device=device,
            name=job.out_dir.name,
            resume=resume,
            runs_dir=job.out_dir.parent,
            live=live,
        )
        result = train_run(req, console)
        got = json.loads((job.out_dir / "config.json").read_text())["model_config"]
        want = expected_config(run, job)
        diff = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
        if diff:
            raise AblationError(
                f"{job.out_dir}: the retrained model config differs from the run's in "
                f"{', '.join(diff)}; delete this directory and re-run"
            )
        return result.seeds[job.seed]

    return train


@dataclass
class AblationResult:
    """What ``mea ablate`` produced: the table and the files it wrote."""

    table: ResultTable
    files: dict[str, Path]
    results: dict[str, dict[int, dict[str, float]]]


def _switches() -> dict[str, Any]:
    from mea_cli.models.switches import SWITCHES

    return dict(SWITCHES)


def plan_ablation(
    run: RunInfo, names: Sequence[str], seeds: Sequence[int]
) -> tuple[list[RowSpec], list[Job]]:
    """Rows in Table V order and one job per (row, seed), rows outermost."""
    switches = _switches()
    chosen = check_names(list(names), switches)
    already = set(run.model_config.get("ablations", []))
    if already:
        raise AblationError(
            f"{run.run_dir}: the run is itself an ablation ({', '.join(sorted(already))}); "
            f"ablate the full model's run instead"
        )
    rows = table_rows(switches, chosen)
    base = run.run_dir / "ablation"
    jobs = [
        Job(row=r.key, seed=s, out_dir=base / r.key / str(s), switches=r.switches)
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
    metrics = list(metrics or default_metrics(run.task, run.label_names))
    dataset = run.dataset.lower()
    paper_cols: list[str] = []
    paper: dict[str, dict[str, float]] = {}
    source = ""
    if with_paper and any(dataset in r.paper for r in rows):
        paper_cols = list(paper_table()["metrics"])
        paper = {r.key: dict(r.paper.get(dataset, {})) for r in rows}
        src = paper_table()["source"]
        source = f"{src['table']} ({dataset.upper()}), {src['paper']}"
    title = f"Ablation of {run.model} on {run.dataset}{_synthetic(run)} ({run.features.name}), test split"
    entries = [(r.key, r.label, r.group, results.get(r.key, {})) for r in rows]
    return build_table(title, entries, metrics, paper, paper_cols, source)


def _synthetic(run: RunInfo) -> str:
    """`` (synthetic data)`` when the run's store says so: tables must not pass for MOSI."""
    from mea_cli.artifacts.features import FeatureStore

    with FeatureStore(run.features) as store:
        return " (synthetic data)" if store.meta.synthetic else ""


def write_tables(table: ResultTable, out_dir: Path, stem: str) -> dict[str, Path]:
    """Write ``<stem>.md``, ``.csv`` and ``.tex`` into ``out_dir`` (atomically each)."""
    files = {}
    for ext, text in (
        ("md", table.to_markdown()),
        ("csv", table.to_csv()),
        ("tex", table.to_latex()),
    ):
        files[ext] = write_text(out_dir / f"{stem}.{ext}", text, "result table")
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
    results = run_jobs(info, jobs, fn, info.run_dir / "ablation" / "events.jsonl", report)
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
    from mea_cli.ablate.errors import SweepError
    from mea_cli.ablate.sweep import check_specs, parse_spec, plot_sweep, values_table_entries

    if not items:
        raise SweepError("nothing to sweep: give key=v1,v2,... (e.g. mu=0,0.1,0.2,0.3)")
    info = load_run(runs_dir, run)
    model_fields = {k: v for k, v in info.model_config.items() if k not in _DATA_FIELDS}
    specs = [parse_spec(it, model_fields, dict(info.config.get("train", {}))) for it in items]
    check_specs(specs)
    seed_list = pick_seeds(info, seeds)
    fn = train_fn or trainer_fn(device)
    base = info.run_dir / "sweep"
    out: list[SweepResult] = []
    for spec in specs:
        jobs = []
        for i, value in enumerate(spec.values):
            over = {spec.key: value}
            for s in seed_list:
                jobs.append(
                    Job(
                        row=spec.row_key(i),
                        seed=s,
                        out_dir=base / spec.row_key(i) / str(s),
                        model_overrides=over if spec.target == "model" else {},
                        train_overrides=over if spec.target == "train" else {},
                    )
                )
        results = run_jobs(info, jobs, fn, base / "events.jsonl", report, reuse_run_for_full=False)
        metrics = default_metrics(info.task, info.label_names)
        title = f"Sensitivity of {info.model} on {info.dataset}{_synthetic(info)} ({info.features.name}) to {spec.display}, test split"
        table = build_table(
            title, values_table_entries(spec, results), metrics, first_column=spec.display
        )
        stem = f"sweep-{spec.row_key(0).split('=')[0]}"
        files = write_tables(table, info.run_dir, stem)
        files["png"] = plot_sweep(table, spec, info.run_dir / f"{stem}.png", title=title)
        res = SweepResult(spec.display, table, files)
        if on_table:
            on_table(res)
        out.append(res)
    return out


__all__ = ["FULL", "AblationResult", "SweepResult", "ablate", "load_run", "sweep"]
