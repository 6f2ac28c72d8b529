"""``mea tune`` from the command line's values: check everything that needs no training, run the
study (:mod:`mea_cli.tune.study`), print the table of trials and write the best configuration
(:mod:`mea_cli.tune.report`)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from mea_cli.tune.report import trial_value, trials_table, write_best_config
from mea_cli.tune.space import Param, SpaceError, build_space
from mea_cli.tune.study import TuneError, TuneRequest, default_storage, run_study


@dataclass
class TuneOptions:
    """The ``mea tune`` options that are not a :class:`TrainRequest` already."""

    space: Sequence[str] = ()
    space_file: Path | None = None
    trials: int = 20
    study: str | None = None
    storage: str | None = None
    best: Path | None = None
    prune: bool = True
    sampler_seed: int | None = None
    startup_trials: int = 2


def default_study(model: str, features: Path) -> str:
    """``tune-<model>-<store stem>``: the same in every process, so they share the study."""
    return "tune-" + re.sub(r"[^A-Za-z0-9._+-]", "_", f"{model}-{Path(features).stem}")


def search_space(model: str, opts: TuneOptions, resolved: Any = None) -> list[Param]:
    """The ``--space`` items of ``mea tune`` as parameters of ``model``, checked against its
    config and the training settings (and for the model's size) before any trial: against
    the run's resolved configuration ``resolved`` (a :class:`~mea_cli.train.runconfig.
    RunConfig`: ``--preset``, ``--set``, the store's dimensions) when given, else the
    defaults."""
    # start-up time: the search space is checked before the run layer (torch) loads
    from mea_cli.models.core.contract import data_fields
    from mea_cli.models.core.registry import config_from_dict, get_entry
    from mea_cli.train.config import TrainSettings

    items = [part for item in opts.space for part in item.split()]
    own = None
    if resolved is not None:
        own = {
            "model": config_from_dict(model, dict(resolved.model_config)),
            "train": TrainSettings.from_dict(dict(resolved.train)),
        }
    return build_space(
        get_entry(model).config_cls, TrainSettings, items, opts.space_file, data_fields(), own
    )


def retrain_command(req: Any, best: Path) -> str:
    """The ``mea train`` command that retrains the best trial from its config file."""
    args = ["mea", "train", str(req.features), "--model", req.model]
    if req.dataset:
        args += ["--dataset", req.dataset]
    if req.task:
        args += ["--task", req.task]
    if req.label_range:
        args += ["--labels-range", f"{req.label_range[0]},{req.label_range[1]}"]
    args += ["--seed", str(req.seeds[0]), "--preset", req.preset]
    return shlex.join([*args, "--config", str(best)])


def tune(req: Any, opts: TuneOptions, console: Console, err: Console) -> Path | None:
    """Run the study for ``req`` (a :class:`~mea_cli.train.trainer.TrainRequest`: store, model,
    seed, fixed overrides) and ``opts``; print the trials and write the best config. Returns
    the config file (``None`` when no trial has completed yet)."""
    # start-up time: the search space is checked before the run layer (torch) loads
    from mea_cli.train import runs
    from mea_cli.train.setup import read_store_facts, resolve_config

    study = runs.check_name(opts.study or default_study(req.model, req.features))
    # the fixed part (--set, --config, --preset, the store): a run configuration that cannot be
    # built is one line now, before the study's database exists, not a failure of every trial
    facts = read_store_facts(req.features, req.dataset, False, req.task, req.label_range)
    resolved = resolve_config(req, facts, study)
    # every bound with the run's own values (--preset small's d=32, --set): trials start there
    params = search_space(req.model, opts, resolved)
    storage = opts.storage or default_storage(req.runs_dir, study)
    keys = [p.key for p in params]

    def on_trial(t: Any) -> None:
        value = trial_value(t)
        value = "" if value == "-" else f" valid {value}"
        note = t.user_attrs.get("error", "")
        err.print(
            f"trial {t.number} {t.state.name.lower()}{value}: "
            + ", ".join(f"{k}={t.params[k]!r}" for k in keys if k in t.params)
            + (f" ({note})" if note else ""),
            highlight=False, soft_wrap=True,
        )  # fmt: skip

    def on_open(s: Any) -> None:
        n = len(s.get_trials(deepcopy=False))
        err.print(f"study {study} in {storage} ({n} trial(s) so far): {opts.trials} trial(s) here; "
                  "searching " + "; ".join(p.describe() for p in params),
                  highlight=False, soft_wrap=True)  # fmt: skip

    result = run_study(
        TuneRequest(
            request=req, params=params, trials=opts.trials, study=study, storage=storage,
            sampler_seed=opts.sampler_seed, prune=opts.prune,
            startup_trials=opts.startup_trials, on_open=on_open, on_trial=on_trial,
        )
    )  # fmt: skip

    trials = result.study.get_trials(deepcopy=False)
    console.print(trials_table(trials, result.metric, result.higher_is_better, keys))
    if not any(t.state.name == "COMPLETE" for t in trials):
        err.print("no trial has completed: no best configuration yet", highlight=False)
        return None
    best_trial = result.study.best_trial
    run_dir = Path(req.runs_dir) / best_trial.user_attrs["run"]
    best = opts.best or Path(req.runs_dir) / f"{study}.best.toml"
    path = write_best_config(
        best, runs.read_json(run_dir / "config.json"),
        retrain_command(req, best),
    )  # fmt: skip
    err.print(
        f"best: trial {best_trial.number} (run {run_dir}), valid {result.metric} "
        f"{best_trial.value:.4g}; wrote {path}",
        highlight=False, soft_wrap=True,
    )  # fmt: skip
    return path


__all__ = ["SpaceError", "TuneError", "TuneOptions", "tune"]
