"""Multi-seed orchestration of trainings, resumable job by job: the one job machinery of
``mea ablate``, ``mea sweep`` and ``mea compare``.

An ablation (``mea ablate``) retrains the run's model with the same features, dataset, model
config, training settings and seeds, once per switch, with the switch added to the model
config's ``ablations``. A sweep (``mea sweep``) does the same with one config field changed; a
comparison (``mea compare``) trains several models on the same store, splits and seeds. Every
(row, seed) result is written on completion, atomically, to

    runs/<name>/ablation/<row>/<seed>/metrics.json     (mea ablate)
    runs/<name>/sweep/<key>=<value>/<seed>/metrics.json (mea sweep)
    runs/<name>/<model>/<seed>/metrics.json            (mea compare)

beside that job's own checkpoint and log, so an interrupted ablation resumes where it stopped:
a job whose ``metrics.json`` exists is never retrained, and a job interrupted during training
continues from its last completed epoch. The full-model row of an ablation reuses the run's own
metrics for a seed the run already trained (``runs/<name>/metrics.json`` or
``seeds/<seed>/metrics.json``). Every job's outcome (``trained``, ``cached``, ``reused``) is
appended to an ``events.jsonl``, which is how the tests (and users) can see what a re-run
actually did.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mea_cli.ablate.errors import AblationError
from mea_cli.paths import write_json
from mea_cli.train import runs
from mea_cli.train.folds import CONTINUE_HINT, differing_keys
from mea_cli.train.runconfig import RunConfig
from mea_cli.train.setup import TrainRequest, read_store_facts, resolve_config
from mea_cli.train.trainer import train_run


@dataclass(frozen=True)
class RunInfo:
    """What an existing training run was: enough to retrain it with one thing changed."""

    run_dir: Path
    config: RunConfig  # the run's config.json
    features: Path
    dataset: str
    task: str
    label_names: tuple[str, ...]
    model: str
    model_config: dict[str, Any]
    seeds: tuple[int, ...]

    def seed_metrics_path(self, seed: int) -> Path | None:
        """The run's own metrics file for ``seed`` (with a checkpoint beside it), if any."""
        for d in (self.run_dir / "seeds" / str(seed), self.run_dir):
            m, c = d / "metrics.json", d / "ckpt.pt"
            if m.is_file() and c.is_file():
                try:
                    raw = json.loads(m.read_text())
                except (OSError, json.JSONDecodeError):
                    continue
                if d == self.run_dir and _seed_of(raw, self) != seed:
                    continue
                return m
        return None


@dataclass(frozen=True)
class Job:
    """One training to do: a row (ablation switch, swept value or model) and a seed.

    ``model_overrides`` / ``train_overrides`` are the complete structured overrides the trainer
    gets (the reference run's whole config plus the change); ``expected_model_config`` /
    ``expected_train`` are what the job's resolved config must be (checked before any training,
    so a wrong row is refused rather than trained and tabulated); ``changes`` records what the
    row changes; ``reuse`` is an existing ``metrics.json`` that already holds this job's result.
    """

    row: str
    seed: int
    out_dir: Path
    model: str
    features: Path
    dataset: str
    model_overrides: Mapping[str, Any] = field(default_factory=dict)
    train_overrides: Mapping[str, Any] = field(default_factory=dict)
    expected_model_config: Mapping[str, Any] = field(default_factory=dict)
    expected_train: Mapping[str, Any] = field(default_factory=dict)
    changes: Mapping[str, Any] = field(default_factory=dict)
    reuse: Path | None = None
    label_range: tuple[float, float] | None = None  # a custom regression run's metric range
    preset: str = "paper"  # the trainer's --preset: paper or small


TrainFn = Callable[[Job], Mapping[str, Any]]
"""Trains one job into ``job.out_dir`` and returns ``{"valid": {...}, "test": {...}}``."""

Reporter = Callable[[str, Job, str], None]
"""Called with (event, job, detail) for ``start``, ``trained``, ``cached``, ``reused``."""


def _seed_of(metrics: Mapping[str, Any], run: RunInfo) -> int | None:
    seed = metrics.get("seed")
    if isinstance(seed, int):
        return seed
    return run.seeds[0] if len(run.seeds) == 1 else None


def read_test_metrics(raw: Mapping[str, Any]) -> dict[str, float]:
    """The test-split metrics of a trainer / result ``metrics.json`` (several layouts accepted)."""
    for key in ("test", "test_metrics"):
        val = raw.get(key)
        if isinstance(val, Mapping):
            return {
                k: float(v) if v is not None else float("nan")
                for k, v in val.items()
                if isinstance(v, (int, float)) or v is None
            }
    raise AblationError(f"metrics without test-split results: keys {sorted(raw)}")


def pick_seeds(run: RunInfo, count: int | None) -> list[int]:
    """The run's seeds (first ``count``), extended with the next unused integers when needed."""
    seeds = list(run.seeds)
    if count is None:
        return seeds
    if count < 1:
        raise AblationError(f"--seeds must be at least 1, got {count}")
    out = seeds[:count]
    nxt = (max(seeds) if seeds else 0) + 1
    while len(out) < count:
        if nxt not in out:
            out.append(nxt)
        nxt += 1
    return out


def _append_event(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def run_jobs(
    jobs: Iterable[Job],
    train_fn: TrainFn,
    events: Path,
    report: Reporter | None = None,
) -> dict[str, dict[int, dict[str, float]]]:
    """Run (or resume) the jobs in order; return ``{row: {seed: test metrics}}``.

    A job is skipped when its ``metrics.json`` exists (``cached``), or when ``job.reuse`` names
    an existing result (``reused``, copied into the job's file so the table never depends on
    the source being left untouched). Otherwise ``train_fn`` trains it and its metrics are
    written atomically only once training finished.
    """
    results: dict[str, dict[int, dict[str, float]]] = {}
    for job in jobs:
        target = job.out_dir / "metrics.json"
        if target.is_file():
            raw = json.loads(target.read_text())
            event = "cached"
        else:
            if job.reuse is not None:
                raw = json.loads(job.reuse.read_text())
                raw = {
                    "test": read_test_metrics(raw),
                    "valid": raw.get("valid", {}),
                    "reused_from": str(job.reuse),
                }
                event = "reused"
            else:
                if report:
                    report("start", job, "")
                t0 = time.monotonic()
                out = train_fn(job)
                raw = {
                    "test": read_test_metrics(out),
                    "valid": dict(out.get("valid", {})),
                    "seconds": round(time.monotonic() - t0, 2),
                }
                event = "trained"
            raw.update(
                {"row": job.row, "seed": job.seed, "model": job.model, "changes": dict(job.changes)}
            )
            target.parent.mkdir(parents=True, exist_ok=True)  # the job's directory in the run
            write_json(target, raw, nan="null")
        _append_event(
            events,
            {
                "event": event,
                "row": job.row,
                "seed": job.seed,
                "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            },
        )
        if report:
            report(event, job, str(target))
        results.setdefault(job.row, {})[job.seed] = read_test_metrics(raw)
    return results


VALID_PREFIX = "valid_"
"""Prefix of the validation-split metrics merged beside the test metrics (``valid_mae``)."""


def with_valid(
    jobs: Iterable[Job], results: Mapping[str, Mapping[int, Mapping[str, float]]]
) -> dict[str, dict[int, dict[str, float]]]:
    """``results`` (test metrics per row and seed) with each job's validation metrics from its
    ``metrics.json`` added as ``valid_<metric>``, so tables can show valid beside test."""
    out = {row: {s: dict(m) for s, m in per.items()} for row, per in results.items()}
    for job in jobs:
        path = job.out_dir / "metrics.json"
        if job.row not in out or job.seed not in out[job.row] or not path.is_file():
            continue
        valid = json.loads(path.read_text()).get("valid") or {}
        out[job.row][job.seed].update(
            {
                VALID_PREFIX + k: float(v) if v is not None else float("nan")
                for k, v in valid.items()
                if k != "loss" and (isinstance(v, (int, float)) or v is None)
            }
        )
    return out


def train_job(
    job: Job, device: str = "auto", live: bool | None = False, console: Any = None
) -> Mapping[str, Any]:
    """Train ``job`` with :func:`mea_cli.train.trainer.train_run` into ``job.out_dir``.

    Before anything is trained, the job's configuration (resolved from its overrides, or the one
    an interrupted attempt saved, which is then resumed) must equal the expected one; a
    difference is an :class:`AblationError` naming the fields.
    """
    req = TrainRequest(
        features=job.features,
        dataset=job.dataset,
        model=job.model,
        label_range=job.label_range,
        seeds=[job.seed],
        train_overrides=dict(job.train_overrides),
        model_overrides=dict(job.model_overrides),
        preset=job.preset,
        device=device,
        name=job.out_dir.name,
        runs_dir=job.out_dir.parent,
        live=live,
        interrupt_hint=CONTINUE_HINT,  # the job is not a run of runs/ that --resume would find
    )
    saved = job.out_dir / "config.json"
    if saved.is_file():  # interrupted mid-training: continue it, if it is the right job
        got, req.resume = runs.read_json(saved), True
        fix = "delete this directory and re-run"
    else:
        facts = read_store_facts(job.features, job.dataset, False, label_range=job.label_range)
        got, fix = resolve_config(req, facts, job.out_dir.name).to_dict(), "this is a bug"
    # a saved config.json is compared as it is: one from another job may lack any key
    diff = differing_keys(got.get("model_config", {}), job.expected_model_config)
    diff += [f"train.{k}" for k in differing_keys(got.get("train", {}), job.expected_train)]
    if diff:
        raise AblationError(
            f"{job.out_dir}: the job's configuration differs from the one it must have in "
            f"{', '.join(diff)}; {fix}"
        )
    result = train_run(req, console)
    return result.seeds[job.seed]


def trainer_fn(device: str = "auto", live: bool | None = False, console: Any = None) -> TrainFn:
    """A :data:`TrainFn` that trains each job with :func:`train_job`."""
    return lambda job: train_job(job, device, live, console)
