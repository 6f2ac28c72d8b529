"""Argument parsing and printing helpers for ``mea train`` (kept out of ``cli.py``).

Light to import (no torch, no scikit-learn): the command line checks its arguments with it
before the heavy imports, so a mistake costs a fraction of a second, not the import of torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from mea_cli.config import ConfigError
from mea_cli.train.config import MAX_SEED, TrainSettings

if TYPE_CHECKING:
    from mea_cli.train.trainer import RunResult


RUN_DEFINING: dict[str, str] = {
    "dataset": "--dataset", "task": "--task", "labels_range": "--labels-range", "model": "--model",
    "seeds": "--seeds", "sets": "--set", "config": "--config", "epochs": "--epochs",
    "preset": "--preset", "split_by": "--split-by", "split_fractions": "--split-fractions",
    "folds": "--folds", "split_seed": "--split-seed", "train_overrides": "train_overrides",
    "model_overrides": "model_overrides",
}  # fmt: skip
"""What a run is (its ``config.json``): ``mea train`` keyword -> option. ``--resume`` continues
a run as it was, so none of these may be given with it."""


def refuse_with_resume(given: list[str]) -> None:
    """``--resume`` with options (``given``, as the user named them) that define a run: one
    line, instead of continuing the saved configuration as if they had been taken."""
    if given:
        raise ConfigError(
            "--resume",
            f"continues the run as its config.json says; it takes no {', '.join(given)} "
            "(start a new run to change them)",
        )


def parse_seeds(text: str, option: str = "--seeds") -> list[int]:
    """``"1111,1112"`` -> ``[1111, 1112]`` (a clear error naming ``option`` for anything else).
    A seed must lie in 0..MAX_SEED (what torch takes), checked here, before any run directory
    exists."""
    try:
        seeds = [int(s) for s in text.replace(" ", "").split(",") if s]
    except ValueError:
        raise ConfigError(option, f"must be comma-separated integers, got {text!r}") from None
    if not seeds:
        raise ConfigError(option, "is empty")
    bad = [s for s in seeds if not 0 <= s <= MAX_SEED]
    if bad:
        raise ConfigError(option, f"seeds must lie in 0..{MAX_SEED}, got {bad[0]}")
    return seeds


def check_train_overrides(train_overrides: dict[str, Any]) -> None:
    """Refuse training settings that are wrong whatever the preset (``train.lr=inf``, an
    unknown field, ``epochs=0``) now, before any import of torch or run directory."""
    TrainSettings().override(train_overrides)


def print_run_summary(result: RunResult, console: Console) -> None:
    """The test (or valid) metrics of each seed, and mean ± std over seeds (rank 0 only)."""
    # here, not at the top: the command line imports this module before sklearn and torch load
    from mea_cli.metric_names import metric_label
    from mea_cli.train.metrics import format_mean_std, format_metric

    if not result.is_main:
        return
    split = "test" if all(r.get("test") for r in result.seeds.values()) else "valid"
    t = Table(
        title=f"{result.run_dir} ({split} split, best-on-valid checkpoint)", title_justify="left"
    )
    t.add_column("metric")
    seeds = sorted(result.seeds)
    for s in seeds:
        t.add_column(f"seed {s}", justify="right")
    if len(seeds) > 1:
        t.add_column("mean ± std", justify="right")
    keys = [k for k in result.seeds[seeds[0]][split] if k != "loss"]
    stats = result.summary.get(f"{split}_mean_std", {})
    for k in keys:
        cells = [format_metric(k, result.seeds[s][split].get(k)) for s in seeds]
        if len(seeds) > 1:
            m = stats.get(k, {})
            cells.append(format_mean_std(k, m.get("mean"), m.get("std"), int(m.get("n", 0))))
        t.add_row(metric_label(k), *cells)
    console.print(t)
    best = ", ".join(f"seed {s}: epoch {result.seeds[s]['best_epoch']}" for s in seeds)
    console.print(
        f"best on valid {result.selection} at {best}; checkpoint(s) and metrics in "
        f"{result.run_dir}",
        highlight=False,
    )
