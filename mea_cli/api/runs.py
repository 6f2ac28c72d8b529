"""The Python API's modelling side: train, evaluate, predict, compare, ablate, sweep, draw.

Each function takes the options of its ``mea`` command as keyword arguments with the same
defaults, checks its paths and settings before any import of torch or any run directory, and
then calls the code the command calls (``train_run(TrainRequest(...))``,
``evaluate_checkpoint``, ``predict.api.predict``, ``ablate.api``, ``ablate.compare``,
``viz.api.make``). Results are the dataclasses those return; user mistakes raise
:class:`mea_cli.errors.MeaError` subclasses, never ``SystemExit``.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mea_cli.api.args import items
from mea_cli.api.guard import one_command
from mea_cli.config import ConfigError, check_seed
from mea_cli.errors import MeaError
from mea_cli.paths import (
    PathError,
    PathLike,
    check_input_file,
    check_name_length,
    check_output_dir,
    check_output_file,
    file_sha256,
    note_input,
)

if TYPE_CHECKING:
    from rich.console import Console

    from mea_cli.ablate.api import AblationResult, SweepResult
    from mea_cli.ablate.compare import CompareResult
    from mea_cli.ablate.runner import Reporter
    from mea_cli.data.splits import SplitPlan
    from mea_cli.predict.api import PredictReport
    from mea_cli.train.evaluate import EvalResult
    from mea_cli.train.folds import FoldsResult
    from mea_cli.train.setup import TrainRequest
    from mea_cli.train.trainer import RunResult
    from mea_cli.viz.api import VizOutput


def split_plan(
    by: str | None, fractions: str | None, folds: str | None, seed: int
) -> SplitPlan | None:
    """The grouped-split request of ``split_by / split_fractions / folds`` (None: the store's
    own splits)."""
    check_seed(seed, "--split-seed")  # the splits use its low 32 bits: no two seeds alike
    if by is None and fractions is None and folds is None:
        return None
    # start-up time: a command loads only its own code, after its cheap checks
    from mea_cli.data.splits import SplitPlan, parse_folds, parse_fractions

    return SplitPlan(by, parse_fractions(fractions), parse_folds(folds), seed)


def _given_name(name: str | None, option: str) -> None:
    """Check a run or study name given with ``option`` before any work: further on an empty
    one would silently become the default (``name or default_name(...)``)."""
    if name is not None:
        # start-up time: a command loads only its own code, after its cheap checks
        from mea_cli.train.runs import check_name

        check_name(name, option)


def _seeds(seeds: str | int | Sequence[int], option: str = "--seeds") -> list[int]:
    # start-up time: a command loads only its own code, after its cheap checks
    from mea_cli.train.cli_support import parse_seeds

    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    if not isinstance(seeds, (str, list, tuple)) or any(
        isinstance(s, bool) or not isinstance(s, (int, str)) for s in seeds
    ):
        raise ConfigError(option, f"seeds are integers (\"1,2\", 1111 or [1, 2]), got {seeds!r}")
    text = seeds if isinstance(seeds, str) else ",".join(str(s) for s in seeds)
    return parse_seeds(text, option)


def _seed_count(seeds: int | None, option: str = "--seeds") -> None:
    """``ablate``, ``sweep`` and ``compare`` take how many seeds (a count), not which."""
    if seeds is None:
        return
    if isinstance(seeds, bool) or not isinstance(seeds, int):
        raise ConfigError(option, f"is how many seeds to train (an integer), got {seeds!r}")
    if seeds < 1:
        raise ConfigError(option, f"must be at least 1, got {seeds}")


def _device(device: str) -> None:
    """Refuse a ``--device`` that cannot be used (a bad name, a GPU torch cannot see) now:
    the trainers resolve it only when their first run starts, after folders, split stores,
    event logs or a study database exist (train's folds, ablate, sweep, compare, tune)."""
    # start-up time: a command loads only its own code (torch), after its cheap checks
    from mea_cli.runtime.engine import resolve_device

    resolve_device(device)


def _range(value: str | Sequence[float] | None) -> tuple[float, float] | None:
    # start-up time: a command loads only its own code, after its cheap checks
    from mea_cli.data.presets import parse_range

    if value is not None and not isinstance(value, str):
        value = ",".join(str(v) for v in value)
    return parse_range(value)


def _threads(threads: int | None) -> int:
    # start-up time: a command loads only its own code, after its cheap checks
    from mea_cli.runtime import apply_threads

    return apply_threads(threads)


def _train_request(
    features: Path | None,
    config: Path | None,
    runs_dir: Path,
    *,
    sets: Sequence[str],
    epochs: int | None,
    train_overrides: Mapping[str, Any] | None = None,
    model_overrides: Mapping[str, Any] | None = None,
    resume: bool = False,
    name: str | None = None,
    allow_changed_store: bool = False,
    threads: int | None = None,
    **request: Any,
) -> TrainRequest:
    """The set-up ``train`` and ``tune`` share: the store, config and runs-directory checks,
    the overrides (``config``, then ``sets``, then the dicts, then ``epochs``, which must be at
    least 1) checked before torch is imported, the store (or the resumed run's store) checked,
    then threads and determinism set and the :class:`TrainRequest` built from ``request``'s
    remaining fields. A mistake costs no import of torch and no run directory."""
    if features is not None:
        check_input_file(features, "feature store")
    if config is not None:
        check_input_file(config, "config file")
    check_output_dir(runs_dir, "runs directory")
    # start-up time: a command loads only its own code, after its cheap checks
    from mea_cli.train.cli_support import check_train_overrides
    from mea_cli.train.config import load_toml, overrides_from_cli

    tables = None if config is None else load_toml(Path(config))
    train_over, model_over = overrides_from_cli(sets, tables, None)
    # the file's [model] table, checked field by field once the model is known (setup), so
    # that a bad value there names the file
    request["config_file"] = None if config is None else Path(config)
    request["config_model"] = {} if tables is None else tables[1]
    train_over.update(train_overrides or {})
    model_over.update(model_overrides or {})
    if epochs is not None:
        if epochs < 1:
            raise ConfigError("--epochs", f"must be at least 1, got {epochs}")
        train_over["epochs"] = epochs
    check_train_overrides(train_over)
    if features is not None and not resume:
        # start-up time: a command loads only its own code, after its cheap checks
        from mea_cli.artifacts.features import check_store

        check_store(features)
    if resume:
        # start-up time: a command loads only its own code, after its cheap checks
        from mea_cli.train.runs import check_resume_store

        check_resume_store(runs_dir, name, allow_changed_store)
    # start-up time: a command loads only its own code, after its cheap checks
    from mea_cli.train.trainer import TrainRequest, enable_determinism

    procs = int(request.get("procs", 1))
    if procs < 1:
        raise ConfigError("--procs", f"must be at least 1, got {procs}")
    # --procs: one thread per process unless told otherwise (mea_cli.runtime.procs)
    n_threads = _threads(1 if threads is None and procs > 1 else threads)
    enable_determinism()
    return TrainRequest(
        features=features, train_overrides=train_over, model_overrides=model_over,
        runs_dir=runs_dir, name=name, resume=resume, allow_changed_store=allow_changed_store,
        threads=n_threads, **request,
    )  # fmt: skip


@one_command
def train(
    features: PathLike | None = None,
    *,
    dataset: str | None = None,
    task: str | None = None,
    labels_range: str | Sequence[float] | None = None,
    model: str = "mea",
    seeds: str | int | Sequence[int] = "1111",
    sets: str | Sequence[str] = (),
    config: PathLike | None = None,
    train_overrides: Mapping[str, Any] | None = None,
    model_overrides: Mapping[str, Any] | None = None,
    device: str = "auto",
    epochs: int | None = None,
    name: str | None = None,
    resume: bool = False,
    allow_changed_store: bool = False,
    runs_dir: PathLike = "runs",
    preset: str = "paper",
    threads: int | None = None,
    procs: int = 1,
    split_by: str | None = None,
    split_fractions: str | None = None,
    folds: str | None = None,
    split_seed: int = 0,
    log: str | Sequence[str] = (),
    console: Console | None = None,
) -> RunResult | FoldsResult:
    """Train a model into ``runs_dir/<name>/`` (``mea train``): the store's own splits give a
    :class:`~mea_cli.train.trainer.RunResult`, ``folds`` a
    :class:`~mea_cli.train.folds.FoldsResult`. ``sets`` are ``--set`` strings
    (``"d=32"``, ``"train.lr=1e-3"``); ``train_overrides`` / ``model_overrides`` the same as
    dicts, applied after ``config`` and ``sets``; ``epochs`` last. ``log`` names extra
    per-epoch loggers (``"tensorboard"``). ``procs`` > 1 trains in that many CPU processes on
    this machine, each with its share of every batch and one thread unless ``threads`` says
    otherwise (``--procs``; docs/training.md). Progress goes to ``console`` (default: stderr)."""
    _given_name(name, "--name")
    if resume:
        _refuse_with_resume(locals())
    seed_list = _seeds(seeds)
    # start-up time: a command loads only its own code, after its cheap checks
    from mea_cli.train.epoch_log import parse_loggers

    loggers = parse_loggers(items(log))
    label_range = _range(labels_range)
    plan = split_plan(split_by, split_fractions, folds, split_seed)
    req = _train_request(
        None if features is None else Path(features), None if config is None else Path(config),
        Path(runs_dir), sets=items(sets), epochs=epochs, train_overrides=train_overrides,
        model_overrides=model_overrides, resume=resume, name=name,
        allow_changed_store=allow_changed_store, threads=threads, dataset=dataset, model=model,
        task=task, label_range=label_range, seeds=seed_list, device=device, preset=preset,
        log=loggers, procs=procs,
    )  # fmt: skip
    _device(device)  # grouped splits and folds write their stores before a run resolves it
    if plan is not None and plan.folds is not None:
        # start-up time: a command loads only its own code, after its cheap checks
        from mea_cli.train.folds import train_folds

        return train_folds(req, plan, console)
    if plan is not None:
        # start-up time: a command loads only its own code, after its cheap checks
        from mea_cli.train.folds import train_grouped

        return train_grouped(req, plan, console)
    # start-up time: a command loads only its own code, after its cheap checks
    from mea_cli.train.trainer import train_run

    return train_run(req, console)


def _refuse_with_resume(given: Mapping[str, Any]) -> None:
    """``train(resume=True, ...)`` with a run-defining argument that differs from its default
    (``cli_support.RUN_DEFINING``): refused, as ``mea train --resume`` refuses the option."""
    # start-up time: a command loads only its own code, after its cheap checks
    from mea_cli.train.cli_support import RUN_DEFINING, refuse_with_resume

    defaults = {k: p.default for k, p in inspect.signature(train).parameters.items()}
    refuse_with_resume([
        option
        for key, option in RUN_DEFINING.items()
        if given[key] is not None and given[key] != defaults[key]
        and not (isinstance(given[key], (list, tuple, dict)) and not given[key])
    ])


def _checkpoints(ckpt: PathLike | Sequence[PathLike]) -> list[Path]:
    """The checkpoint file of each given checkpoint or run directory (several: an ensemble,
    whose members must differ)."""
    # start-up time: a command loads only its own code, after its cheap checks
    from mea_cli.train.runs import checkpoint_in

    given = [ckpt] if isinstance(ckpt, (str, os.PathLike)) else list(ckpt)
    if not given:
        raise MeaError("no checkpoint given")
    paths = [checkpoint_in(Path(c)) for c in given]
    if len({p.resolve() for p in paths}) < len(paths):
        raise MeaError("a checkpoint is given twice; an ensemble's members must differ")
    if len(paths) > 1:  # two copies of one file would count one model twice
        seen: dict[tuple[int, str], Path] = {}
        for path in paths:
            key = (path.stat().st_size, file_sha256(path))
            if key in seen:
                raise MeaError(
                    f"{path}: the same checkpoint as {seen[key]} (same content); an ensemble's "
                    "members must differ"
                )
            seen[key] = path
    return paths


@one_command
def evaluate(
    ckpt: PathLike | Sequence[PathLike],
    *,
    features: PathLike | None = None,
    split: str = "test",
    paper: bool = False,
    device: str = "cpu",
    predictions: PathLike | None = None,
    allow_changed_store: bool = False,
    threads: int | None = None,
) -> EvalResult:
    """Evaluate a checkpoint (a ``ckpt.pt`` or a run directory) on ``split`` beside a
    training-mean baseline (``mea eval``); several checkpoints are one model, their
    predictions averaged (an ensemble, e.g. a run's seeds); ``predictions`` writes every
    sample's prediction beside its truth (CSV); ``paper`` adds the papers' rows."""
    paths = _checkpoints(ckpt)
    if features is not None:
        check_input_file(Path(features), "feature store")
    if predictions is not None:
        check_output_file(Path(predictions), "predictions file")
    # start-up time: a command loads only its own code, after its cheap checks
    from mea_cli.train.evaluate import evaluate_checkpoint

    _threads(threads)
    return evaluate_checkpoint(
        paths, None if features is None else Path(features),
        split, device, with_paper=paper,
        predictions=None if predictions is None else Path(predictions),
        allow_changed_store=allow_changed_store,
    )  # fmt: skip


@one_command
def predict(
    clips: PathLike,
    ckpt: PathLike | Sequence[PathLike],
    *,
    out: PathLike | None = None,
    batch_size: int = 16,
    device: str = "cpu",
    face_model: PathLike | None = None,
    glove: PathLike | None = None,
    asr_model: PathLike | None = None,
    threads: int | None = None,
    progress: Callable[[int, int, int], None] | None = None,
) -> PredictReport:
    """Predict a video, a folder of videos or a feature store's samples with a checkpoint
    (``mea predict``), re-running the extraction it was trained on; several checkpoints are one
    model, their predictions averaged (an ensemble, e.g. a run's seeds); ``out`` writes one CSV
    row per clip (failure rows included). ``progress(done, total, failed)`` after every clip. A
    clip that fails is a row with ``status == "failed"``, not an exception."""
    clips = Path(clips)
    check_name_length(clips, "video or folder")
    if not clips.exists():
        raise PathError(clips, "no such video or folder")
    ckpts = _checkpoints(ckpt)
    out = None if out is None else Path(out)
    if out is not None:  # before the heavy imports: an output onto an input costs nothing
        # start-up time: a command loads only its own code, after its cheap checks
        from mea_cli.extract.media import find_media
        from mea_cli.extract.text import find_sidecars

        # out onto a clip of the folder (the probe reads headers only) or onto a transcript
        for media in find_media(clips)[0] if clips.is_dir() else [clips]:
            note_input(media)
            for sidecar in find_sidecars(media):
                note_input(sidecar)
        check_output_file(out, "predictions file")
    # start-up time: a command loads only its own code, after its cheap checks
    from mea_cli.predict.api import STORE_SUFFIXES

    if not clips.is_dir():
        check_input_file(clips, "feature store" if clips.suffix in STORE_SUFFIXES else "video file")
    for given, what in ((face_model, "face model"), (glove, "word-vector file")):
        if given is not None:
            check_input_file(Path(given), what)
    if asr_model is not None and Path(asr_model).is_file():
        raise PathError(asr_model, "the ASR model is a folder (CTranslate2's), not a file")
    if asr_model is not None and not Path(asr_model).is_dir():
        raise PathError(asr_model, "no such ASR model folder")
    if out is not None:  # again: out must not be one of the model or vector files either
        check_output_file(out, "predictions file")
    # start-up time: a command loads only its own code, after its cheap checks
    from mea_cli.predict.api import predict as run_predict
    from mea_cli.predict.report import write_csv

    _threads(threads)
    report = run_predict(
        clips, ckpts, batch_size=batch_size, device=device,
        face_model=None if face_model is None else Path(face_model),
        glove=None if glove is None else Path(glove),
        asr_model=None if asr_model is None else Path(asr_model), progress=progress,
    )  # fmt: skip
    if out is not None:
        write_csv(report, out)
    return report


def _check_run_args(runs_dir: Path, run: PathLike | None) -> None:
    """``runs_dir`` must be a directory (or creatable); a ``run`` path must not be a file."""
    check_output_dir(runs_dir, "runs directory")
    if run is not None and Path(run).exists() and not Path(run).is_dir():
        raise PathError(run, "is a file, not a run directory")


@one_command
def ablate(
    *,
    drop: str | Sequence[str] = (),
    run: PathLike | None = None,
    seeds: int | None = None,
    paper: bool = False,
    runs_dir: PathLike = "runs",
    device: str = "auto",
    report: Reporter | None = None,
) -> AblationResult:
    """Retrain a trained run (``run``: its directory or name; default ``runs/latest``) without
    each of the model's switches in ``drop`` (``["all"]``: every row), like its paper's
    ablation table (``mea ablate``); writes ``ablation.{md,csv,tex}`` into the run."""
    runs_dir = Path(runs_dir)
    _check_run_args(runs_dir, run)
    _seed_count(seeds)
    _device(device)
    # start-up time: a command loads only its own code, after its cheap checks
    from mea_cli.ablate.api import ablate as run_ablation
    from mea_cli.train.trainer import enable_determinism

    enable_determinism()
    return run_ablation(
        runs_dir, None if run is None else str(run), items(drop), seeds, paper, report=report,
        device=device,
    )  # fmt: skip


@one_command
def sweep(
    settings: str | Sequence[str],
    *,
    run: PathLike | None = None,
    seeds: int | None = None,
    runs_dir: PathLike = "runs",
    device: str = "auto",
    report: Reporter | None = None,
    on_table: Callable[[SweepResult], None] | None = None,
) -> list[SweepResult]:
    """Sensitivity analysis (``mea sweep``, MEA Figs. 7-9): retrain a run with one field varied
    per ``key=v1,v2,...`` setting; one table, PNG and table files per setting (``on_table`` is
    called as each is done)."""
    runs_dir = Path(runs_dir)
    _check_run_args(runs_dir, run)
    _seed_count(seeds)
    _device(device)
    # start-up time: a command loads only its own code, after its cheap checks
    from mea_cli.ablate.api import sweep as run_sweep
    from mea_cli.train.trainer import enable_determinism

    enable_determinism()
    return run_sweep(
        runs_dir, None if run is None else str(run), items(settings), seeds, report=report,
        device=device, on_table=on_table,
    )  # fmt: skip


@one_command
def compare(
    features: PathLike,
    *,
    dataset: str,
    models: str | Sequence[str],
    seeds: int = 5,
    paper: bool = False,
    sets: str | Sequence[str] = (),
    epochs: int | None = None,
    name: str | None = None,
    runs_dir: PathLike = "runs",
    device: str = "auto",
    threads: int | None = None,
    labels_range: str | Sequence[float] | None = None,
    split_by: str | None = None,
    split_fractions: str | None = None,
    folds: str | None = None,
    split_seed: int = 0,
    report: Reporter | None = None,
    preset: str = "paper",
) -> CompareResult:
    """Train several models (the first is the reference) on the same store, splits and seeds
    (``mea compare``): per-metric tables with paired t-tests, md/csv/tex files and a bar chart
    under ``runs_dir/<name>/``. ``sets``: ``train.<setting>=v`` (every model) or
    ``<model>.<field>=v`` (one model). ``preset``: ``paper`` or ``small`` for every model, as
    ``mea train --preset`` (the ``functionals`` baseline has no small form and is unchanged)."""
    _given_name(name, "--name")
    features, runs_dir = Path(features), Path(runs_dir)
    check_input_file(features, "feature store")
    check_output_dir(runs_dir, "runs directory")
    _seed_count(seeds)
    if paper and preset != "paper":
        raise ConfigError(
            "--paper", f"the papers' values were measured at their presets, not --preset {preset}"
        )
    # start-up time: a command loads only its own code, after its cheap checks
    from mea_cli.artifacts.features import check_store

    check_store(features)  # a bad store: one line before torch is even imported
    # start-up time: a command loads only its own code, after its cheap checks
    from mea_cli.train.presets import check_preset

    check_preset(preset)
    # start-up time: a command loads only its own code, after its cheap checks
    from mea_cli.ablate.compare import compare as run_compare
    from mea_cli.ablate.compare import default_name, parse_compare_sets

    names = [m.strip() for m in (models.split(",") if isinstance(models, str) else models)]
    names = [m for m in names if m]
    train_over, per_model = parse_compare_sets(items(sets), names)
    if epochs is not None:
        if epochs < 1:
            raise ConfigError("--epochs", f"must be at least 1, got {epochs}")
        train_over["epochs"] = epochs
    _threads(threads)
    plan = split_plan(split_by, split_fractions, folds, split_seed)
    label_range = _range(labels_range)
    _device(device)
    # start-up time: a command loads only its own code, after its cheap checks
    from mea_cli.train.trainer import enable_determinism

    enable_determinism()
    if plan is not None and plan.folds is not None:
        if paper:
            raise ConfigError("--paper", "the papers' values do not apply to cross-validated folds")
        # start-up time: a command loads only its own code, after its cheap checks
        from mea_cli.ablate.compare_folds import compare_folds

        return compare_folds(
            features, dataset, names, seeds, plan, runs_dir, name, per_model, train_over,
            report=report, device=device, label_range=label_range, preset=preset,
        )  # fmt: skip
    from contextlib import nullcontext

    guard: Any = nullcontext()
    warning = ""
    if plan is not None:
        # start-up time: a command loads only its own code, after its cheap checks
        from mea_cli.train.folds import (
            missing_warning,
            plan_split_stores,
            refuse_other_kind,
            removed_on_error,
        )
        from mea_cli.train.runs import check_name

        name = check_name(name or default_name(features, dataset.strip().lower()))
        refuse_other_kind(runs_dir / name, "compare")  # before its split store is planned
        guard = removed_on_error(runs_dir / name)
    with guard:
        if plan is not None:
            (split,), _, _ = plan_split_stores(features, plan, runs_dir / name)
            features, warning = split.path, missing_warning([split])
        return run_compare(
            features, dataset, names, seeds, runs_dir, name, paper, per_model, train_over,
            report=report, device=device, label_range=label_range, preset=preset,
            warning=warning,
        )  # fmt: skip


@one_command
def viz(
    ckpt: PathLike,
    what: str | Sequence[str],
    *,
    out: PathLike | None = None,
    features: PathLike | None = None,
    split: str = "test",
    sample: str | None = None,
    samples: int = 2,
    seed: int = 0,
) -> list[VizOutput]:
    """Draw pictures of a checkpoint (``mea viz``): ``what`` is tsne, wal, attention or curves
    (a list, or comma-separated); PNGs go to ``out`` (default ``<ckpt dir>/viz``). When some
    of several pictures are refused, the others are drawn and
    :class:`~mea_cli.viz.api.VizRefused` lists both (``.outputs``, and its one-line message)."""
    # start-up time: a command loads only its own code, after its cheap checks
    from mea_cli.train.runs import RunError, checkpoint_in

    try:
        path = checkpoint_in(Path(ckpt))
    except RunError:
        # start-up time: a command loads only its own code, after its cheap checks
        from mea_cli.viz.api import check_not_multi_run

        check_not_multi_run(Path(ckpt))  # runs/<compare or folds>: name the runs inside
        raise
    if features is not None:
        check_input_file(Path(features), "feature store")
    if out is not None:
        check_output_dir(Path(out), "picture directory")
    if samples < 1:
        raise ConfigError("--samples", f"must be at least 1, got {samples}")
    check_seed(seed, "--seed")  # scikit-learn's t-SNE takes 0 .. 2**32 - 1
    # start-up time: a command loads only its own code, after its cheap checks
    from mea_cli.viz.api import make

    items = [what] if isinstance(what, str) else list(what)
    whats = [w.strip() for item in items for w in item.split(",") if w.strip()]
    return make(
        path, whats, None if out is None else Path(out),
        None if features is None else Path(features), split, sample, samples, seed,
    )  # fmt: skip


def describe_model(
    model: str,
    *,
    dataset: str = "mosi",
    features: PathLike | None = None,
    drop: str | Sequence[str] = (),
    sets: str | Sequence[str] = (),
) -> dict[str, Any]:
    """``mea info --model NAME``: a model's parameters per component for a preset (or a
    store's dims and task), with ablation switches ``drop`` and model fields ``sets``."""
    if features is not None:
        check_input_file(Path(features), "feature store")
    # start-up time: a command loads only its own code, after its cheap checks
    from mea_cli.models.core.summary import describe_model as describe
    from mea_cli.train.config import parse_sets
    from mea_cli.train.presets import preset_table

    train_sets, model_sets = parse_sets(items(sets))
    if train_sets:
        raise MeaError("mea info --set takes model config fields only, not train.<setting>")
    return describe(
        model, dataset, None if features is None else Path(features), tuple(items(drop)), model_sets,
        training=preset_table,
    )  # fmt: skip


@one_command
def tune(
    features: PathLike,
    *,
    dataset: str | None = None,
    task: str | None = None,
    labels_range: str | Sequence[float] | None = None,
    model: str = "mea",
    space: str | Sequence[str] = (),
    space_file: PathLike | None = None,
    trials: int = 20,
    study: str | None = None,
    storage: str | None = None,
    best: PathLike | None = None,
    prune: bool = True,
    sampler_seed: int | None = None,
    seed: int = 1111,
    sets: str | Sequence[str] = (),
    config: PathLike | None = None,
    epochs: int | None = None,
    preset: str = "paper",
    device: str = "auto",
    runs_dir: PathLike = "runs",
    threads: int | None = None,
    console: Console | None = None,
    err_console: Console | None = None,
) -> Path | None:
    """Search hyper-parameters with Optuna (``mea tune``, docs/tune.md): each trial a run under
    ``runs_dir`` scored on the valid split, ``space`` items like ``"mu=0:0.5"`` or a TOML
    ``space_file``, a study shared through ``storage``. Prints the trials to ``console`` and
    returns the best configuration's ``--config`` file (``None`` while no trial completed)."""
    _given_name(study, "--study")
    space_file = None if space_file is None else Path(space_file)
    if space_file is not None:
        check_input_file(space_file, "search space file")
    # every input first: --best onto the store or the config must be refused before the search
    check_input_file(Path(features), "feature store")
    if config is not None:
        check_input_file(Path(config), "config file")
    if best is not None:  # written after the last trial: a bad path must not cost the search
        check_output_file(Path(best), "best config file")
    if trials < 1:
        raise ConfigError("--trials", f"must be at least 1, got {trials}")
    seeds = _seeds(seed, "--seed")  # inside a trial, a bad one would only fail the trial
    if sampler_seed is not None:
        check_seed(sampler_seed, "--sampler-seed")  # Optuna's TPE sampler: 0 .. 2**32 - 1
    # start-up time: a command loads only its own code, after its cheap checks
    from rich.console import Console

    from mea_cli.tune.command import TuneOptions, search_space
    from mea_cli.tune.command import tune as run_tune

    opts = TuneOptions(
        space=items(space), space_file=space_file, trials=trials, study=study, storage=storage,
        best=None if best is None else Path(best), prune=prune, sampler_seed=sampler_seed,
    )  # fmt: skip
    search_space(model, opts)  # a bad space: one line before any trial
    req = _train_request(
        Path(features), None if config is None else Path(config), Path(runs_dir), sets=items(sets),
        epochs=epochs, threads=threads, dataset=dataset, model=model, task=task,
        label_range=_range(labels_range), seeds=seeds, device=device, preset=preset,
    )  # fmt: skip
    _device(device)  # once, before the study: per trial it would only fail each trial
    return run_tune(req, opts, console or Console(), err_console or Console(stderr=True))
