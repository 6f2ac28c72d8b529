"""Multi-seed orchestration of ablation rows and sweep settings, resumable row by row.

An ablation (``mea ablate``) retrains the run's model with the same features, dataset, model
config, training settings and seeds, once per Table V row, with ``ablations=(switch,)`` added
to the model config. A sweep (``mea sweep``) does the same with one config field changed.
Every (row, seed) result is written on completion, atomically, to

    runs/<name>/ablation/<row>/<seed>/metrics.json     (mea ablate)
    runs/<name>/sweep/<key>=<value>/<seed>/metrics.json (mea sweep)

beside that job's own checkpoint and log, so an interrupted ablation resumes where it stopped:
a job whose ``metrics.json`` exists is never retrained. The full-model row reuses the run's own
metrics for a seed the run already trained (``runs/<name>/metrics.json`` or
``seeds/<seed>/metrics.json``). Every job's outcome (``trained``, ``cached``, ``reused``) is
appended to ``<ablation|sweep>/events.jsonl``, which is how the tests (and users) can see what
a re-run actually did.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mea_cli.ablate.errors import AblationError
from mea_cli.ablate.rows import FULL


@dataclass(frozen=True)
class RunInfo:
    """What an existing training run was: enough to retrain it with one thing changed."""

    run_dir: Path
    config: dict[str, Any]  # the run's config.json, verbatim
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
    """One training to do: a row (or sweep setting) and a seed, with its output directory."""

    row: str
    seed: int
    out_dir: Path
    switches: tuple[str, ...] = ()
    model_overrides: Mapping[str, Any] = field(default_factory=dict)
    train_overrides: Mapping[str, Any] = field(default_factory=dict)


TrainFn = Callable[[RunInfo, Job], Mapping[str, Any]]
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


def _write_json_atomic(path: Path, obj: Any) -> None:
    from mea_cli.train.runs import write_json

    path.parent.mkdir(parents=True, exist_ok=True)  # the job's directory inside the run
    write_json(path, obj)


def run_jobs(
    run: RunInfo,
    jobs: Iterable[Job],
    train_fn: TrainFn,
    events: Path,
    report: Reporter | None = None,
    reuse_run_for_full: bool = True,
) -> dict[str, dict[int, dict[str, float]]]:
    """Run (or resume) the jobs in order; return ``{row: {seed: test metrics}}``.

    A job is skipped when its ``metrics.json`` exists (``cached``), or, for the full-model row,
    when the run itself has metrics for that seed (``reused``, copied into the job's file so the
    table never depends on the run being left untouched). Otherwise ``train_fn`` trains it and
    its metrics are written atomically only once training finished.
    """
    results: dict[str, dict[int, dict[str, float]]] = {}
    for job in jobs:
        target = job.out_dir / "metrics.json"
        event = ""
        if target.is_file():
            raw = json.loads(target.read_text())
            event = "cached"
        else:
            source = (
                run.seed_metrics_path(job.seed)
                if (reuse_run_for_full and job.row == FULL)
                else None
            )
            if source is not None:
                raw = json.loads(source.read_text())
                raw = {
                    "test": read_test_metrics(raw),
                    "valid": raw.get("valid", {}),
                    "reused_from": str(source),
                }
                event = "reused"
            else:
                if report:
                    report("start", job, "")
                t0 = time.monotonic()
                out = train_fn(run, job)
                raw = {
                    "test": read_test_metrics(out),
                    "valid": dict(out.get("valid", {})),
                    "seconds": round(time.monotonic() - t0, 2),
                }
                event = "trained"
            raw.update(
                {
                    "row": job.row,
                    "seed": job.seed,
                    "switches": list(job.switches),
                    "model_overrides": dict(job.model_overrides),
                    "train_overrides": dict(job.train_overrides),
                }
            )
            _write_json_atomic(target, raw)
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
