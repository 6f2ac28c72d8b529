"""Setting a run up, shared by every stage that trains or reads runs (``mea train``,
``ablate``, ``compare``, ``sweep``, ``predict``, ``eval``): the three steps before the loop.

1. :func:`read_store_facts` reads what configuration needs from the store (and checks that the
   store fits the dataset preset);
2. :func:`resolve_config` is a **pure function**: request + store facts + presets -> the run's
   full configuration (:class:`~mea_cli.train.runconfig.RunConfig`, ``config.json``): the
   training preset of (model, dataset) with the request's training overrides, the model's
   dataset preset with its model overrides;
3. :func:`open_run` makes the run directory (or finds the one ``--resume`` continues);
   :func:`read_run_config` reads a run's ``config.json`` back and :func:`open_checkpoint` the
   checkpoint of a run (or a checkpoint file) for ``mea eval`` and ``mea predict``.

:func:`start_run` does all of it for ``mea train`` in one pass (the process's place and device,
the three steps, the run lock, each seed's folder) and hands the loop a finished
:class:`RunSetup`; :class:`mea_cli.train.trainer.Trainer` then trains each seed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mea_cli import __version__
from mea_cli.artifacts.checkpoint import Checkpoint, load_checkpoint, schema_to_dict
from mea_cli.artifacts.features import FeatureStore
from mea_cli.config import ConfigError
from mea_cli.data.dataset import NormStatsError, sample_groups
from mea_cli.data.presets import check_store_fits, get_preset, resolve_preset
from mea_cli.errors import MeaError
from mea_cli.models.core.contract import check_no_data_fields
from mea_cli.models.core.registry import check_size, get_entry
from mea_cli.paths import file_sha256, jsonable
from mea_cli.runtime.distributed import (
    DistInfo,
    barrier,
    broadcast_object,
    init_distributed,
    shutdown,
)
from mea_cli.runtime.engine import resolve_device
from mea_cli.train import runs
from mea_cli.train.config import MAX_SEED, TrainSettings
from mea_cli.train.metrics import selection_metric
from mea_cli.train.presets import SMALL_SOURCE, check_preset, small_overrides, training_preset
from mea_cli.train.runconfig import RUN_FORMAT, RunConfig, RunConfigError

DEFAULT_SEED = 1111


class TrainError(MeaError):
    """Training cannot start or go on (bad store for training, non-finite loss, ...)."""


@dataclass
class TrainRequest:
    """What ``mea train`` was asked, as structured overrides (before presets are applied).

    ``train_overrides`` are training settings (``{"lr": 5e-4}``), ``model_overrides`` model
    config fields (``{"d": 32, "ablations": ["psa"]}``); values may be typed or command-line
    text. ``mea_cli.train.config.overrides_from_cli`` builds both from ``--set`` / ``--config``.
    """

    features: Path | None
    dataset: str | None
    model: str = "mea"
    task: str | None = None  # custom task check: regression, classification, ...
    label_range: tuple[float, float] | None = None  # custom regression: its metrics' range
    seeds: list[int] = field(default_factory=lambda: [DEFAULT_SEED])
    train_overrides: Mapping[str, Any] = field(default_factory=dict)
    model_overrides: Mapping[str, Any] = field(default_factory=dict)
    # --config: the file and its [model] table (part of model_overrides), for errors naming it
    config_file: Path | None = None
    config_model: Mapping[str, Any] = field(default_factory=dict)
    device: str = "auto"
    name: str | None = None
    resume: bool = False
    allow_changed_store: bool = False  # --resume on a store whose sha256 changed (warned)
    runs_dir: Path = Path("runs")
    live: bool | None = None  # None: rich live table only on a terminal
    preset: str = "paper"  # "small": mea_cli.train.presets.SMALL_TRAIN / SMALL_MODELS
    log: tuple[str, ...] = ()  # per-epoch loggers besides log.jsonl (mea_cli.train.epoch_log)
    # --procs: CPU processes on this machine sharing each batch (mea_cli.runtime.procs); the
    # configured batch size is the whole batch, split among them (resolve_config)
    procs: int = 1
    threads: int = 1  # torch threads of each --procs process
    # called with each epoch's log record after its state is saved (mea tune's pruning); an
    # exception it raises stops the run there, resumable like an interrupted one
    on_epoch: Callable[[Mapping[str, Any]], None] | None = None
    # what to do next, said by a command that trains this run inside its own work (mea compare,
    # train --folds, mea tune): after Ctrl-C ("" : mea train --resume --name <run>) and when
    # the run's folder already exists ("": continue it with --resume, or pick another --name)
    interrupt_hint: str = ""
    exists_hint: str = ""


@dataclass(frozen=True)
class StoreFacts:
    """What configuring a run needs to know about its feature store."""

    features: str  # absolute path
    sha256: str
    task: str
    label_names: tuple[str, ...]
    input_dims: dict[str, int]
    schema: dict[str, Any]
    summary_dims: dict[str, int] = field(default_factory=dict)  # the store's /summary widths
    dataset: str = ""  # the preset: mosi, mosei, iemocap or custom
    hyperparameters: str = ""  # the paper preset whose hyper-parameters it uses
    label_range: tuple[float, float] | None = None  # custom regression: the metrics' range
    range_source: str = ""
    group_problem: str = ""  # why train.normalise=group cannot run on it ("": it can)


def read_store_facts(
    features: Path,
    dataset: str | None,
    with_sha256: bool = True,
    task: str | None = None,
    label_range: tuple[float, float] | None = None,
) -> StoreFacts:
    """Check that ``features`` can train ``dataset`` (a paper preset, or ``custom`` / ``None``
    with ``task``: :func:`mea_cli.data.presets.resolve_preset`) and read what configuration
    needs."""
    with FeatureStore(features) as store:
        store.check_values()  # NaN / inf features refused now, not mid-training
        name = store.name  # for messages
        preset = resolve_preset(dataset, store, task, label_range)
        check_store_fits(store, preset)
        hyper, metric_range = preset.hyperparameters, preset.metric_range
        schema = schema_to_dict(store.modalities)
        for split in ("train", "valid", "test"):
            idx = store.split_indices(split)
            missing = int((~np.isfinite(store.samples.label[idx]).all(axis=1)).sum())
            if missing:
                raise TrainError(
                    f"{name}: {missing} sample(s) of the {split!r} split have no label; "
                    f'label them or move them out of the split (split "")'
                )
        facts = StoreFacts(
            features=str(Path(features).resolve()),
            sha256="",
            task=store.meta.task,
            label_names=tuple(store.meta.label_names),
            input_dims={m: int(s["dim"]) for m, s in schema.items()},
            summary_dims={m: s.dim for m, s in store.summaries.items()},
            schema=schema,
            dataset=preset.name,
            hyperparameters=hyper,
            label_range=metric_range,
            range_source=preset.range_source,
            group_problem=_group_problem(store),
        )
    if with_sha256:
        facts = StoreFacts(**{**facts.__dict__, "sha256": file_sha256(features)})
    return facts


def _group_problem(store: FeatureStore) -> str:
    """Why ``store`` cannot be standardised per group (:func:`sample_groups`), or ""."""
    try:
        sample_groups(store)
    except NormStatsError as err:
        return str(err)
    return ""


def resolve_config(
    req: TrainRequest, facts: StoreFacts, name: str, world_size: int = 1
) -> RunConfig:
    """The run's full configuration (``config.json``) from the request, the store facts and the
    presets; pure (no file is read or written). Every problem is a one-line error."""
    if req.dataset is None and req.task is None:
        raise TrainError("mea train needs FEATURES and --dataset or --task (or --resume)")
    if not req.seeds or len(set(req.seeds)) != len(req.seeds):
        raise TrainError(f"--seeds must be distinct integers, got {list(req.seeds)}")
    if any(not 0 <= int(s) <= MAX_SEED for s in req.seeds):
        raise TrainError(f"--seeds must lie in 0..{MAX_SEED}, got {list(req.seeds)}")
    entry = get_entry(req.model)
    if facts.dataset:  # the preset read_store_facts resolved (custom included)
        dataset, hyper = facts.dataset, facts.hyperparameters or facts.dataset
    else:  # facts without a preset: a paper preset by name
        if req.dataset is None:
            raise TrainError("a custom task (--task) needs the store's facts (read_store_facts)")
        dataset = hyper = get_preset(req.dataset).name
    check_preset(req.preset)
    tp = training_preset(req.model, hyper)
    small_train, small_model = small_overrides(req.model) if req.preset == "small" else ({}, {})
    # the model's configuration: the store's dimensions and task, the dataset's values, then
    # the overrides (never of what the store and --dataset decide)
    check_no_data_fields(req.model_overrides, "the store and --dataset")
    if req.config_file is not None and (bad := entry.config_cls.field_problems(req.config_model)):
        raise ConfigError(f"{req.config_file}: invalid {entry.config_cls.WHAT}", bad)
    model_cfg = entry.config_cls.preset(hyper, facts.input_dims, facts.task, len(facts.label_names))
    if dataset != hyper:  # a custom task: the borrowed preset's values, its own name
        model_cfg = model_cfg.override({"dataset": dataset})
    if "summary_dims" in model_cfg.field_names():  # a model that can use the store's summaries
        model_cfg = model_cfg.override({"summary_dims": facts.summary_dims})
    model_cfg = model_cfg.override({**small_model, **req.model_overrides})
    if req.model_overrides:  # sizes the user chose: counted before anything is built
        check_size(req.model, model_cfg)
    model_cfg = model_cfg.to_dict()
    # the training settings and where each value came from
    borrowed = f"custom task: {hyper}'s values, " if dataset != hyper else ""
    sources = {k: borrowed + v for k, v in tp.sources.items()}
    sources.update(dict.fromkeys(small_train, SMALL_SOURCE))
    settings = tp.settings.override({**small_train, **req.train_overrides})
    if settings.normalise == "group" and facts.group_problem:
        raise TrainError(facts.group_problem)  # refused before the run directory exists
    what = "a regression task" if facts.task == "regression" else f"{req.model} (closed form)"
    if facts.task == "regression" or "closed_form_fit" in entry.capabilities:
        if settings.label_smoothing > 0:
            raise ConfigError(
                "train.label_smoothing", f"smooths a cross-entropy's targets; {what} trains none"
            )
        if settings.mixup > 0:
            raise ConfigError(
                "train.mixup", f"mixes the classes of a trained cross-entropy; {what} trains none"
            )
    if settings.class_weights != "none" and facts.task == "regression":
        if "class_weights" in req.train_overrides:
            raise ConfigError(
                "train.class_weights", "weights the classes of a cross-entropy; a regression task has none"
            )
        # a preset's class weights (--preset small) are for classification tasks
        settings = settings.override({"class_weights": "none"})
        sources["class_weights"] += "; none: a regression task has no classes"
    sources.update(dict.fromkeys(req.train_overrides, "override"))
    if req.procs > 1:
        settings = split_batch(settings, req.procs)
        sources["batch_size"] += f"; split over --procs {req.procs}: per process"
    # the JSON form (lists, no NaN): the value equals what config.json gives back
    return RunConfig.from_dict(
        jsonable(
            {
                "format": RUN_FORMAT,
                "version": 1,
                "mea_cli_version": __version__,
                "name": name,
                "features": facts.features,
                "features_sha256": facts.sha256,
                "dataset": dataset,
                "task": facts.task,
                "label_names": list(facts.label_names),
                "label_range": None if facts.label_range is None else list(facts.label_range),
                "label_range_source": facts.range_source or None,
                "schema": facts.schema,
                "model": req.model,
                "model_config": model_cfg,
                "model_overrides": dict(req.model_overrides),
                "train": settings.to_dict(),
                "train_overrides": dict(req.train_overrides),
                "train_sources": {k: sources[k] for k in settings.field_names()},
                "preset": req.preset,
                "preset_model_overrides": small_model,
                "task_loss": task_loss_used(
                    facts.task, model_cfg, settings.class_weights, settings.label_smoothing,
                    settings.mixup,
                ),  # fmt: skip
                "targets": (
                    "standardised with the train split's mean and std (back in label units "
                    "outside the model)"
                    if facts.task == "regression"
                    else "class labels as they are"
                ),
                "seeds": [int(s) for s in req.seeds],
                "selection": selection_metric(facts.task).name,
                "model_preset": hyper,
                "device": req.device,
                "world_size": world_size,
            }
        )
    )


def split_batch(settings: TrainSettings, procs: int) -> TrainSettings:
    """The settings of each of ``procs`` processes that share every batch (``--procs``): the
    training batch divided among them (it must divide evenly: a process per core then runs
    the same global batch as one process would), and an explicit evaluation batch too
    (rounded up; 0, twice the training batch, needs no change)."""
    if settings.batch_size % procs:
        raise ConfigError(
            "--procs",
            f"{procs} processes cannot share a batch of {settings.batch_size} evenly: pick a "
            f"number of processes that divides it, or --set train.batch_size=<a multiple of "
            f"{procs}>",
        )
    split = {"batch_size": settings.batch_size // procs}
    if settings.eval_batch_size:
        split["eval_batch_size"] = -(-settings.eval_batch_size // procs)
    return settings.override(split)


def task_loss_used(
    task: str, model_cfg: Mapping[str, Any], class_weights: str = "none",
    label_smoothing: float = 0.0,
    mixup: float = 0.0,
) -> str:  # fmt: skip
    """The task loss a run trains with, as ``config.json`` records it (``task_loss`` of a
    model config only applies to regression: classes always train with cross-entropy)."""
    if task == "regression":
        return str(model_cfg.get("task_loss", "mse"))
    weights = " with balanced class weights" if class_weights == "balanced" else ""
    if label_smoothing > 0:
        weights += f"{' and' if weights else ' with'} label smoothing {label_smoothing:g}"
    if mixup > 0:
        weights += f"{' and' if weights else ' with'} mixup (Beta({mixup:g}, {mixup:g}))"
    if task == "multiclass":
        return "cross-entropy over the classes" + weights
    return "cross-entropy per label (two logits each)" + weights


def open_run(req: TrainRequest, info: DistInfo) -> tuple[Path, RunConfig]:
    """The run directory and its configuration: the saved one on ``--resume``, otherwise
    resolved afresh and written (rank 0) into a new directory."""
    runs_dir = Path(req.runs_dir)
    if req.resume:
        run_dir = runs.resolve_run(runs_dir, req.name)
        cfg = read_run_config(run_dir)
        if req.features is not None and Path(req.features).resolve() != Path(cfg.features):
            raise TrainError(
                f"{run_dir}: --resume continues the run on {cfg.features}, not {req.features}"
            )
        if Path(cfg.features).is_file():
            runs.check_store_unchanged(
                cfg.features, cfg.features_sha256, run_dir, req.allow_changed_store
            )
        if cfg.world_size != info.world_size:
            raise TrainError(
                f"{run_dir} was trained by {cfg.world_size} process(es), each with its share of "
                f"the batch: resume it with as many (--procs {cfg.world_size}), not "
                f"{info.world_size}"
            )
        return run_dir, cfg
    if req.features is None or (req.dataset is None and req.task is None):
        raise TrainError("mea train needs FEATURES and --dataset or --task (or --resume)")
    facts = read_store_facts(
        Path(req.features), req.dataset, info.is_main, req.task, req.label_range
    )
    name = req.name or runs.default_name(req.model, facts.dataset)
    name = broadcast_object(info, runs.check_name(name))
    cfg = resolve_config(req, facts, name, info.world_size)
    run_dir = runs_dir / name
    # rank 0 decides (another rank could look after rank 0 has written config.json)
    if broadcast_object(info, (run_dir / "config.json").exists()):
        hint = req.exists_hint or f"continue it with --resume --name {name}, or pick another --name"
        raise runs.RunError(f"{run_dir} already exists: {hint}")
    if info.is_main:
        runs.create_run_dir(run_dir, cfg.to_dict())
    barrier(info)
    return run_dir, cfg


@dataclass(frozen=True)
class RunSetup:
    """A run ready for the loop, gathered by :func:`start_run` in one pass."""

    info: DistInfo  # this process's place in the job
    device: torch.device
    run_dir: Path
    config: RunConfig
    config_sha256: str  # ties each seed's state.pt to this configuration (runs.config_digest)
    seed_dirs: dict[int, Path]  # where each seed's files go, in the run's seed order


def start_run(req: TrainRequest, held: ExitStack) -> RunSetup:
    """Everything before the loop of ``mea train``: join the process group (torchrun), pick the
    device, open the run (:func:`open_run`: store facts, configuration, run directory), hold
    the run's lock and name each seed's folder. What must be undone at the end goes on
    ``held``: the lock is released first, the process group left last."""
    info = init_distributed(resolve_device(req.device).type)
    if info.enabled:  # a process group was joined: leave it after everything else
        held.callback(shutdown, info)
    device = resolve_device(req.device, info)
    run_dir, cfg = open_run(req, info)
    dirs = runs.seed_dirs(run_dir, cfg.seeds)
    digest = runs.config_digest(cfg.to_dict())
    held.enter_context(runs.hold_run(run_dir, info.is_main))  # one process per run
    return RunSetup(info, device, run_dir, cfg, digest, dirs)


def read_run_config(run_dir: Path) -> RunConfig:
    """The configuration of the run in ``run_dir`` (its ``config.json``; a :class:`RunError`
    naming the file when it is missing or not a run configuration)."""
    path = Path(run_dir) / "config.json"
    try:
        return RunConfig.from_dict(runs.read_json(path))
    except RunConfigError as err:
        raise runs.RunError(f"{path}: {err}") from None


def open_checkpoint(path: str | Path) -> tuple[Path, Checkpoint]:
    """The checkpoint a run directory holds (:func:`mea_cli.train.runs.checkpoint_in`) or the
    checkpoint file ``path``, loaded; its path beside it for messages."""
    ckpt_path = runs.checkpoint_in(Path(path))
    return ckpt_path, load_checkpoint(ckpt_path)
