"""What ``mea tune`` shows and writes: the table of trials and the best trial as a ``--config``
file for ``mea train``.

The config file holds the best trial's run overrides exactly as the run recorded them
(``config.json``: ``train_overrides`` and ``model_overrides``, i.e. the fixed ``--set`` /
``--config`` / ``--epochs`` values plus the drawn ones), so ``mea train STORE --dataset D
--model M --seed S --config best.toml`` (the command is written in its first lines) trains the
same configuration, and on a deterministic CPU reproduces the trial's valid metric.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from mea_cli.paths import write_text


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # round-trips exactly; never inf / nan (configs refuse them)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} to TOML")


def config_toml(
    train: Mapping[str, Any], model: Mapping[str, Any], header: Sequence[str] = ()
) -> str:
    """The text of a ``mea train --config`` file with ``[train]`` and ``[model]`` tables."""
    lines = [f"# {h}" for h in header]
    for table, values in (("train", train), ("model", model)):
        lines += ["", f"[{table}]"] + [f"{k} = {_toml_value(v)}" for k, v in sorted(values.items())]
    return "\n".join(lines).lstrip("\n") + "\n"


def write_best_config(path: Path, run_config: Mapping[str, Any], train_command: str) -> Path:
    """Write the best trial's overrides (from its ``config.json``) as a ``--config`` file."""
    text = config_toml(
        run_config["train_overrides"],
        run_config["model_overrides"],
        header=[
            f"mea tune: the best trial, run {run_config['name']}",
            f"retrain it with: {train_command}",
        ],
    )
    return write_text(path, text, "best config file")


def ranked(trials: Sequence[Any], higher_is_better: bool) -> list[tuple[int | None, Any]]:
    """(rank, trial): completed trials by value (best first, rank 1..), then the others
    (pruned, failed, running) by number, without a rank."""
    done = [t for t in trials if t.state.name == "COMPLETE" and t.value is not None]
    done.sort(key=lambda t: (-t.value if higher_is_better else t.value, t.number))
    rest = sorted((t for t in trials if t not in done), key=lambda t: t.number)
    return [(i + 1, t) for i, t in enumerate(done)] + [(None, t) for t in rest]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def trial_value(t: Any) -> str:
    """A completed trial's value; for any other (Optuna gives a pruned trial its last report
    as value) the last valid metric reported and its epoch, or ``-``."""
    if t.state.name == "COMPLETE" and t.value is not None:
        return _fmt(t.value)
    if t.intermediate_values:
        epoch = max(t.intermediate_values)
        v = t.intermediate_values[epoch]
        return f"{_fmt(v) if math.isfinite(v) else 'nan'} (epoch {epoch})"
    return "-"


def trials_table(
    trials: Sequence[Any], metric: str, higher_is_better: bool, keys: Sequence[str]
) -> Table:
    """Rank, trial number, state, the valid metric (pruned: the last one reported, at its
    epoch), each searched value and the run."""
    arrow = "higher is better" if higher_is_better else "lower is better"
    table = Table(title=f"trials: valid {metric} ({arrow})")
    for col in ("rank", "trial", "state", f"valid {metric}", *keys, "run"):
        table.add_column(col, justify="right" if col not in ("state", "run") else "left")
    for rank, t in ranked(trials, higher_is_better):
        table.add_row(
            "" if rank is None else str(rank),
            str(t.number),
            t.state.name.lower(),
            trial_value(t),
            *(_fmt(t.params[k]) if k in t.params else "-" for k in keys),
            str(t.user_attrs.get("run", "")),
        )
    return table
