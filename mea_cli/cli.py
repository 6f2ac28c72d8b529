"""The ``mea`` command line: argument parsing and printing only; each command calls one
function of :mod:`mea_cli.api` (the Python API, docs/python.md), which checks and does the work.

Every path argument is checked at the start of its command, before any work, with
:mod:`mea_cli.paths` (an output that is a directory, a parent that is a file or missing, an
unwritable place, an input that is missing, empty or of the wrong kind), and nothing is created
for a path that fails. User mistakes raise :class:`mea_cli.errors.MeaError`; :func:`main`
prints them as one line on stderr and exits with code 2. Ctrl-C (SIGINT) and a scheduler's
SIGTERM end any command with one line and exit code 130 / 143 (:mod:`mea_cli.interrupt`).
Anything else is a bug and keeps its traceback.

Output under schedulers: help is click's plain text (Rich markup would swallow
``[asr]``-style brackets), and when stdout / stderr is not a terminal the consoles get a wide
page so that tables are not cropped to 80 columns (``COLUMNS`` still wins when set).
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import signal
import sys
from collections.abc import Iterable
from enum import Enum
from pathlib import Path
from types import ModuleType

import typer
from rich.console import Console
from rich.text import Text

from mea_cli import __version__, api, interrupt, paths, stdout
from mea_cli.errors import MeaError
from mea_cli.paths import check_input_file, check_output_file

app = typer.Typer(
    name="mea",
    help="Multimodal sentiment and emotion recognition from raw video with MEA.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    # plain click help: Rich markup would swallow "[asr]"-style text and crop it when piped
    rich_markup_mode=None,
)
# markup off: file names, sample ids ("v[0]") and hints ("mea-cli[asr]") print as they are;
# styling is done with Text / style=, never with "[bold]" tags in strings
console = Console(markup=False)
err_console = Console(stderr=True, markup=False)
PIPE_WIDTH = 1000  # page width when not a terminal: long table rows stay whole lines
MIN_WIDTH = 80  # the narrowest page stdout's tables are laid out for (_page_widths)

# Options that several commands share (one definition each; typer reads them, never changes them)
THREADS = typer.Option(None, "--threads", help="CPU threads [default: docs/performance.md#threads].")
SPLIT_BY = typer.Option(
    None, "--split-by", help="Make grouped splits: video, or the store's group (speaker, ...)."
)
SPLIT_FRACTIONS = typer.Option(
    None, "--split-fractions", help="Train,valid,test shares of the samples [0.7,0.15,0.15]."
)
FOLDS = typer.Option(
    None, "--folds", help="Cross-validate: K grouped folds, or loo (leave one group out)."
)
SPLIT_SEED = typer.Option(0, "--split-seed", help="Seed of the grouped splits / folds.")


class Like(str, Enum):
    mosi = "mosi"
    mosei = "mosei"
    iemocap = "iemocap"


def _version(value: bool) -> None:
    if value:
        console.print(f"mea-cli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """mea-cli: raw video -> features -> MEA model -> the literature's metrics."""
    # every input a command checks is remembered until it ends: no output may be one of them
    paths.start_input_guard()
    ctx.call_on_close(paths.end_input_guard)


def _typed_options(ctx: typer.Context, names: Iterable[str]) -> list[str]:
    """The options among ``names`` (parameter names) given on the command line, even at their
    default value, as the user spelled their first form (``--dataset``)."""
    wanted = set(names)
    return [
        p.opts[0]
        for p in ctx.command.params
        if p.name in wanted
        and getattr(ctx.get_parameter_source(p.name), "name", "DEFAULT") != "DEFAULT"
    ]  # click's ParameterSource, by name: typer does not re-export it


@app.command()
def info(
    ctx: typer.Context,
    file: Path = typer.Argument(None, help="A feature store (.h5) written by mea-cli."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    model: str = typer.Option(
        None, "--model", help="Describe a model instead of a store: parameters per component."
    ),
    dataset: str = typer.Option(
        "mosi", "--dataset", help="With --model: the Table I preset (mosi, mosei, iemocap)."
    ),
    features: Path = typer.Option(
        None, "--features", help="With --model: take input dims and task from this store."
    ),
    drop: list[str] = typer.Option(
        [], "--drop", help="With --model: the model's ablation switch to apply (repeatable)."
    ),
    sample: str = typer.Option(
        None, "--sample", help="With FILE: one sample's labels, sequences and words."
    ),
    sets: list[str] = typer.Option(
        [], "--set", help="With --model: key=value, a model config field (repeatable)."
    ),
) -> None:
    """Summarise a feature store (FILE), or a model's size with --model NAME --dataset D."""
    if (file is None) == (model is None):
        raise MeaError("give exactly one of FILE (a feature store) or --model NAME")
    if sample is not None and file is None:
        raise MeaError("--sample needs FILE (a feature store)")
    if model is None:  # the options that only describe a model: never silently ignored
        given = _typed_options(ctx, ("dataset", "features", "drop", "sets"))
        if given:
            verb = "needs" if len(given) == 1 else "need"
            raise MeaError(f"{', '.join(given)} {verb} --model NAME (a store FILE has no model)")
    if model is not None:
        described = api.describe_model(model, dataset=dataset, features=features, drop=drop, sets=sets)
        if not as_json:
            from mea_cli.models.core.summary import render_model_summary

            render_model_summary(described, console)
    else:
        if features is not None:
            check_input_file(features, "feature store")
        described = api.describe_store(file, sample=sample)
        if not as_json:
            from mea_cli.artifacts.store_info import render_sample, render_summary

            (render_summary if sample is None else render_sample)(described, console)
    if as_json:
        sys.stdout.write(json.dumps(described, indent=2) + "\n")


@app.command()
def synth(
    out: Path = typer.Option(..., "--out", "-o", help="Output feature store (.h5)."),
    like: Like = typer.Option(Like.mosi, "--like", help="Which benchmark's shape to imitate."),
    n: int = typer.Option(None, "--n", min=3, help="Number of samples [default: the benchmark's]."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same file)."),
    max_seconds: float = typer.Option(
        12.0, "--max-seconds", min=2.0, help="Longest clip duration in seconds."
    ),
) -> None:
    """Write synthetic asynchronous data whose labels need several modalities and word order."""
    check_output_file(out, "feature store")
    from mea_cli.data.synth import SPECS
    from mea_cli.progress import ProgressReporter

    total = SPECS[like.value].default_n if n is None else n
    with ProgressReporter(f"synth-{like.value}", total, "samples", err_console) as rep:
        made = api.synth(
            out, like=like.value, n=total, seed=seed, max_seconds=max_seconds, progress=rep.update
        )
    console.print(
        f"wrote {made.count} synthetic {made.like}-shaped samples to {made.path}",
        highlight=False,
    )


def _refuse_with_resume(ctx: typer.Context) -> None:
    """``mea train --resume`` with an option that defines a run, given on the command line even
    at its default value: one line and exit 2 (``api.train`` refuses values that differ from
    the defaults; the command line knows what was typed)."""
    # start-up time: the check's module is light, but only mea train --resume needs it
    from mea_cli.train.cli_support import RUN_DEFINING, refuse_with_resume

    refuse_with_resume(_typed_options(ctx, RUN_DEFINING))


@app.command()
def train(
    ctx: typer.Context,
    features: Path = typer.Argument(None, help="Feature store (.h5); not needed with --resume."),
    dataset: str = typer.Option(
        None, "--dataset", help="Preset: mosi, mosei, iemocap (the papers') or custom."
    ),
    task: str = typer.Option(
        None,
        "--task",
        help="A custom task on any labels: regression, classification (multiclass or "
        "binary-multilabel); must match the store's labels.",
    ),
    labels_range: str = typer.Option(
        None, "--labels-range", help="Custom regression: the labels' range a,b (its metrics)."
    ),
    model: str = typer.Option("mea", "--model", help="Registered model name."),
    seeds: str = typer.Option("1111", "--seeds", "--seed", help="Comma-separated seeds."),
    sets: list[str] = typer.Option(
        [], "--set", help="key=value: model config field, or train.<setting>."
    ),
    config: Path = typer.Option(None, "--config", help="TOML file with [train] and [model]."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N (GPU N)."),
    epochs: int = typer.Option(None, "--epochs", min=1, help="Override the preset's epochs."),
    name: str = typer.Option(None, "--name", help="Run name [default: model-dataset-time]."),
    resume: bool = typer.Option(False, "--resume", help="Continue run --name (or runs/latest)."),
    allow_changed_store: bool = typer.Option(
        False, "--allow-changed-store", help="--resume even if the store's sha256 changed (warns)."
    ),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where runs are kept."),
    preset: str = typer.Option(
        "paper", "--preset", help="paper (the papers' values) or small (few hundred clips)."
    ),
    threads: int = THREADS,
    procs: int = typer.Option(
        1,
        "--procs",
        min=1,
        help="CPU processes sharing each batch (data parallel on this machine; one thread "
        "each unless --threads).",
    ),
    split_by: str = SPLIT_BY,
    split_fractions: str = SPLIT_FRACTIONS,
    folds: str = FOLDS,
    split_seed: int = SPLIT_SEED,
    log: list[str] = typer.Option(
        [], "--log", help="Also log each epoch to: tensorboard (<seed dir>/tensorboard/)."
    ),
) -> None:
    """Train a model: Adam, ReduceLROnPlateau, early stopping on valid; writes runs/<name>/."""
    if resume:
        _refuse_with_resume(ctx)
    result = api.train(
        features, dataset=dataset, task=task, labels_range=labels_range, model=model,
        seeds=seeds, sets=sets, config=config, device=device, epochs=epochs, name=name,
        resume=resume, allow_changed_store=allow_changed_store, runs_dir=runs_dir,
        preset=preset, threads=threads, procs=procs, split_by=split_by,
        split_fractions=split_fractions, folds=folds, split_seed=split_seed, log=log,
        console=err_console,
    )  # fmt: skip
    from mea_cli.train.folds import FoldsResult

    if isinstance(result, FoldsResult):
        from mea_cli.train.folds import print_folds

        print_folds(result, console)
        err_console.print(f"wrote {result.run_dir / 'folds.json'}, folds.md", highlight=False)
        return
    from mea_cli.train.cli_support import print_run_summary

    print_run_summary(result, console)


@app.command(name="eval")
def eval_(
    ckpt: list[Path] = typer.Argument(
        ...,
        help="A checkpoint (runs/<name>/ckpt.pt) or a run directory holding one; several are "
        "evaluated as one model, their predictions averaged (e.g. runs/<name>/seeds/*).",
    ),
    features: Path = typer.Option(None, "--features", help="Store [default: the training one]."),
    split: str = typer.Option("test", "--split", help="train, valid or test."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    paper: bool = typer.Option(False, "--paper", help="Show the papers' rows beside ours."),
    device: str = typer.Option("cpu", "--device", help="auto, cpu, cuda or cuda:N (GPU N)."),
    predictions: Path = typer.Option(
        None, "--predictions", help="Write every sample's prediction beside its truth (CSV)."
    ),
    allow_changed_store: bool = typer.Option(
        False, "--allow-changed-store", help="Use the training store even if its sha256 changed (warns)."
    ),
    threads: int = THREADS,
) -> None:
    """Evaluate a checkpoint (or an ensemble of several): the task's metrics beside a
    training-mean baseline."""
    result = api.evaluate(
        ckpt, features=features, split=split, paper=paper, device=device,
        predictions=predictions, allow_changed_store=allow_changed_store, threads=threads,
    )  # fmt: skip
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        from mea_cli.train.evaluate import render_eval

        render_eval(result, console)


@app.command()
def predict(
    clips: Path = typer.Argument(
        ..., help="A video, a folder of videos (searched recursively) or a feature store (.h5)."
    ),
    ckpt: list[Path] = typer.Option(
        ...,
        "--ckpt",
        help="A checkpoint (ckpt.pt) or a run directory holding one; given several times, one "
        "model whose predictions are their average (e.g. a run's seeds).",
    ),
    out: Path = typer.Option(None, "--out", "-o", help="Write one CSV row per clip here."),
    as_json: bool = typer.Option(False, "--json", help="Print the predictions as JSON."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Clips per model batch."),
    device: str = typer.Option("cpu", "--device", help="auto, cpu, cuda or cuda:N (GPU N)."),
    face_model: Path = typer.Option(
        None, "--face-model", help="The recorded face model, moved here (same content)."
    ),
    glove: Path = typer.Option(
        None, "--glove", help="The recorded word vectors, moved here (same content)."
    ),
    asr_model: Path = typer.Option(
        None, "--asr-model", help="The recorded ASR model folder, moved here (same content)."
    ),
    threads: int = THREADS,
) -> None:
    """Predict clips with a checkpoint (or an ensemble of several), re-running exactly the
    extraction it was trained on (or a feature store's samples from their stored features)."""
    from mea_cli.progress import ProgressReporter

    with ProgressReporter("predict", None, "clips", err_console) as rep:
        report = api.predict(
            clips, ckpt, out=out, batch_size=batch_size, device=device, face_model=face_model,
            glove=glove, asr_model=asr_model, threads=threads,
            progress=lambda done, total, failed: rep.update(done, total, f"failed {failed}"),
        )  # fmt: skip
    if report.skipped_files:  # never a silent drop: stderr too (the report's notes name them)
        from mea_cli.extract.discover import not_media_note

        err_console.print(
            f"{clips}: {not_media_note(report.skipped_files)}", highlight=False, soft_wrap=True
        )
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        from mea_cli.predict.report import render

        render(report, console)
        if out is not None:
            console.print(f"wrote {out}", highlight=False)
    if report.failed == len(report.clips):
        from mea_cli.predict.api import PredictError

        raise PredictError(
            f"no clip could be predicted ({report.failed} failed"
            + (f"; their failure rows are in {out})" if out is not None else ")")
        )


class ImportKind(str, Enum):
    mult = "mult"
    mmsa = "mmsa"
    csd = "csd"


@app.command("import")
def import_(
    kind: ImportKind = typer.Argument(..., help="Source layout: mult, mmsa or csd."),
    src: Path = typer.Argument(..., help="The .pkl file (mult, mmsa) or a directory of .csd files."),
    out: Path = typer.Option(..., "--out", "-o", help="Output feature store (.h5)."),
    dataset: Like = typer.Option(None, "--dataset", help="mosi, mosei or iemocap (label layout)."),
    padding: str = typer.Option("auto", "--padding", help="mult: auto, left or right."),
    folds: Path = typer.Option(None, "--folds", help="csd: JSON with train/valid/test id lists."),
    text_csd: str = typer.Option(None, "--text-csd", help="csd: the text sequence file."),
    vision_csd: str = typer.Option(None, "--vision-csd", help="csd: the vision sequence file."),
    audio_csd: str = typer.Option(None, "--audio-csd", help="csd: the audio sequence file."),
    labels_csd: str = typer.Option(None, "--labels-csd", help="csd: the labels sequence file."),
    label_column: int = typer.Option(0, "--label-column", help="csd: sentiment label column."),
    emotions: str = typer.Option(
        None,
        "--emotions",
        help="csd, iemocap: the emotion of each label column in file order, e.g. "
        "neutral,happy,sad,angry [default: the labels' dimension names].",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the import report as JSON."),
) -> None:
    """Import CMU benchmark features (MulT / MMSA pickles, SDK .csd) into a feature store."""
    report = api.import_features(
        kind.value, src, out, dataset=None if dataset is None else dataset.value,
        padding=padding, folds=folds, text_csd=text_csd, vision_csd=vision_csd,
        audio_csd=audio_csd, labels_csd=labels_csd, label_column=label_column,
        emotions=emotions,
    )  # fmt: skip
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        report.render(console)
        console.print(f"wrote {out}", highlight=False)
    if report.dropped:  # never a silent drop, with --json too
        why = ", ".join(f"{reason}: {n}" for reason, n in report.dropped.items())
        err_console.print(
            f"{out}: dropped {sum(report.dropped.values())} sample(s) ({why}); each is a failure "
            f"row of the store (`mea info {out}`)",
            highlight=False,
            soft_wrap=True,
        )


@app.command()
def extract(
    videos: Path = typer.Argument(..., help="A folder of videos (searched recursively) or one video."),
    out: Path = typer.Option(..., "--out", "-o", help="Output feature store (.h5)."),
    labels: Path = typer.Option(
        None, "--labels", help="CSV: video,start,end,label[,split] (or CMU video_id,clip_id,...)."
    ),
    task: str = typer.Option(
        "auto", "--task", help="auto, regression, multiclass or binary-multilabel."
    ),
    classes: str = typer.Option(None, "--classes", help="Class names in order: a,b,c."),
    label_range: str = typer.Option(None, "--label-range", help="Regression range a,b."),
    label_column: str = typer.Option("label", "--label-column", help="Labels CSV column."),
    workers: int = typer.Option(1, "--workers", "-j", min=1, help="Videos extracted in parallel."),
    cache: Path = typer.Option(None, "--cache", help="Per-video cache [default: OUT.cache]."),
    shard: str = typer.Option(None, "--shard", help="i/n: extract every n-th video from the i-th."),
    dataset: str = typer.Option("", "--dataset", help="Dataset name stored in the file."),
    face_backend: str = typer.Option("blendshapes", "--face-backend", help="blendshapes | pyfeat."),
    face_opt: list[str] = typer.Option([], "--face-opt", help="key=value for the face backend."),
    audio_backend: str = typer.Option("opensmile", "--audio-backend", help="opensmile."),
    audio_opt: list[str] = typer.Option([], "--audio-opt", help="key=value for the audio backend."),
    text_backend: str = typer.Option("glove", "--text-backend", help="glove | minilm (contextual word pieces)."),
    text_opt: list[str] = typer.Option([], "--text-opt", help="key=value for the text backend."),
    fps: float = typer.Option(None, "--fps", help="Face frames per second [default: 15, the CMU features' rate; --face-opt fps=native: every frame]."),
    max_side: int = typer.Option(None, "--max-side", min=0, help="Shrink larger frames (0: never)."),
    face_model: Path = typer.Option(None, "--face-model", help="MediaPipe face_landmarker.task."),
    audio_set: str = typer.Option(None, "--audio-set", help="egemaps | compare."),
    glove: Path = typer.Option(None, "--glove", help="GloVe or word2vec text, word2vec .bin (no pickled .kv)."),
    asr: bool = typer.Option(True, "--asr/--no-asr", help="Whisper when no transcript sidecar."),
    asr_model: Path = typer.Option(
        None, "--asr-model", help="CTranslate2 Whisper model folder (default: the packaged tiny.en)."
    ),
    threads: int = typer.Option(
        None, "--threads", help="CPU threads per worker [default: docs/performance.md#threads]."
    ),
    language: str = typer.Option(
        None,
        "--language",
        help="The spoken language (en, de, ...) [default: checked per clip; ASR is English-only].",
    ),
) -> None:
    """Extract text, face and audio sequences from videos into one feature store."""
    from mea_cli.extract.report import progress_reporter, render_report

    with progress_reporter(err_console) as update:
        report = api.extract(
            videos, out, labels=labels, task=task, classes=classes, label_range=label_range,
            label_column=label_column, workers=workers, cache=cache, shard=shard,
            dataset=dataset, face_backend=face_backend, face_opt=face_opt,
            audio_backend=audio_backend, audio_opt=audio_opt, text_backend=text_backend,
            text_opt=text_opt, fps=fps, max_side=max_side, face_model=face_model,
            audio_set=audio_set, glove=glove, asr=asr, asr_model=asr_model, threads=threads,
            language=language, progress=update,
        )  # fmt: skip
    render_report(report, console)


@app.command()
def merge(
    stores: list[Path] = typer.Argument(..., help="Feature stores to join (extraction shards)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output feature store (.h5)."),
) -> None:
    """Join feature stores made with `mea extract --shard i/n` (schemas must match)."""
    n = api.merge(stores, out, warn=lambda said: err_console.print(f"warning: {said}", highlight=False))
    console.print(f"merged {len(stores)} stores, {n} samples -> {out}", highlight=False)


class AlignTo(str, Enum):
    words = "words"


class AlignReduce(str, Enum):
    mean = "mean"
    plain_mean = "plain-mean"
    max = "max"
    last = "last"


@app.command()
def align(
    store: Path = typer.Argument(..., help="Feature store to align."),
    to: AlignTo = typer.Option(AlignTo.words, "--to", help="What to align to: words (the one target)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output feature store (.h5)."),
    reduce: AlignReduce = typer.Option(
        AlignReduce.mean, "--reduce", help="How a word's steps become one: overlap-weighted "
        "mean, plain-mean (the CMU SDK examples'), max or last."
    ),
) -> None:
    """Collapse every modality onto each sample's words (CMU SDK semantics, docs/align.md)."""
    from mea_cli.progress import ProgressReporter

    with ProgressReporter("align", None, "samples", err_console) as rep:
        report = api.align(
            store, out, to=to.value, reduce=reduce.value,
            progress=lambda done, total, note: rep.update(done, total, note),
        )  # fmt: skip
    for sid, why in report.failures:
        err_console.print(f"not aligned: {sid}: {why}", highlight=False)
    empty = ", ".join(f"{m} {n}" for m, n in report.empty_words.items())
    console.print(
        f"aligned {report.samples} samples ({report.words} words; words with no step, zeros: "
        f"{empty}; {len(report.failures)} samples not aligned, listed in /failures) -> {out}",
        highlight=False,
    )


class TableFormat(str, Enum):
    rich = "rich"
    md = "md"
    csv = "csv"
    tex = "tex"


def _job_reporter(kind: str):  # noqa: ANN202 - callback for mea_cli.ablate.runner
    def report(event: str, job, detail: str) -> None:  # noqa: ANN001
        words = {
            "start": "training",
            "trained": "done",
            "cached": "already done, not retrained",
            "reused": "reused the run's own result",
        }
        err_console.print(
            f"{kind} {job.row} seed {job.seed}: {words.get(event, event)}", highlight=False
        )

    return report


def _print_table(table, fmt: TableFormat) -> None:  # noqa: ANN001 - ResultTable or CompareTables
    if fmt is TableFormat.rich:
        console.print(table.to_rich())
    else:
        text = {"md": table.to_markdown, "csv": table.to_csv, "tex": table.to_latex}[fmt.value]()
        sys.stdout.write(text)


@app.command()
def ablate(
    drop: list[str] = typer.Option(
        [], "--drop", help="The model's switch to remove (repeatable), or 'all' for every row."
    ),
    run: str = typer.Option(
        None, "--run", help="Run directory or name under --runs-dir (default: runs/latest)."
    ),
    seeds: int = typer.Option(
        None, "--seeds", min=1, help="Number of seeds (default: the run's seeds)."
    ),
    fmt: TableFormat = typer.Option(
        TableFormat.rich, "--format", help="How to print the table (all three files are written)."
    ),
    paper: bool = typer.Option(
        False,
        "--paper",
        help="Add the values of the model's paper ablation table, where one is transcribed.",
    ),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where runs live."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N (GPU N)."),
) -> None:
    """Ablate a trained run like its paper's ablation table (MEA: Table V): retrain each of the
    model's switches with the same data, config and seeds."""
    result = api.ablate(
        drop=drop, run=run, seeds=seeds, paper=paper, runs_dir=runs_dir, device=device,
        report=_job_reporter("row"),
    )  # fmt: skip
    _print_table(result.table, fmt)
    if paper and not result.table.paper_metrics:
        from mea_cli.ablate.rows import transcribed_tables

        err_console.print(
            "note: no published ablation values for this run's model and dataset "
            f"(transcribed tables: {', '.join(transcribed_tables())}; MOSI / MOSEI)"
        )
    files = ", ".join(str(p) for p in result.files.values())
    err_console.print(f"wrote {files}", highlight=False, soft_wrap=True)


@app.command(short_help="Sensitivity analysis (MEA Figs 7-9): retrain with one field varied.")
def sweep(
    settings: list[str] = typer.Argument(
        ..., help="key=v1,v2,... per swept field (mu, alpha, beta, psa_layers, train.lr, ...)."
    ),
    run: str = typer.Option(
        None, "--run", help="Run directory or name under --runs-dir (default: runs/latest)."
    ),
    seeds: int = typer.Option(
        None, "--seeds", min=1, help="Number of seeds (default: the run's seeds)."
    ),
    fmt: TableFormat = typer.Option(TableFormat.rich, "--format", help="How to print tables."),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where runs live."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N (GPU N)."),
) -> None:
    """Sensitivity analysis (Figs. 7-9): retrain with one config field varied; table + PNG plot."""

    def show(res) -> None:  # noqa: ANN001 - mea_cli.ablate.api.SweepResult
        _print_table(res.table, fmt)
        files = ", ".join(str(p) for p in res.files.values())
        err_console.print(f"wrote {files}", highlight=False, soft_wrap=True)

    api.sweep(
        settings, run=run, seeds=seeds, runs_dir=runs_dir, device=device,
        report=_job_reporter("setting"), on_table=show,
    )  # fmt: skip


@app.command(short_help="Search model and training fields with Optuna (valid split only).")
def tune(
    features: Path = typer.Argument(..., help="Feature store (.h5) every trial trains on."),
    dataset: str = typer.Option(None, "--dataset", help="Preset: mosi, mosei, iemocap or custom."),
    task: str = typer.Option(None, "--task", help="A custom task (as mea train --task)."),
    labels_range: str = typer.Option(
        None, "--labels-range", help="Custom regression: the labels' range a,b (its metrics)."
    ),
    model: str = typer.Option("mea", "--model", help="Registered model name."),
    space: list[str] = typer.Option(
        [], "--space", help="key=SPEC items: mu=0:0.5, lr=log:1e-4:3e-3, heads=2,4 (docs/tune.md)."
    ),
    space_file: Path = typer.Option(None, "--space-file", help="TOML search space ([model], [train])."),
    trials: int = typer.Option(20, "--trials", min=1, help="Trials this process runs."),
    study: str = typer.Option(None, "--study", help="Study name [default: tune-<model>-<store>]."),
    storage: str = typer.Option(
        None, "--storage", help="Optuna database URL [default: sqlite:///<runs-dir>/<study>.db]."
    ),
    best: Path = typer.Option(None, "--best", help="Best config file [default: <runs-dir>/<study>.best.toml]."),
    prune: bool = typer.Option(True, "--prune/--no-prune", help="Median pruning of bad trials."),
    sampler_seed: int = typer.Option(None, "--sampler-seed", help="Seed of the TPE sampler."),
    seed: int = typer.Option(1111, "--seed", help="Training seed of every trial."),
    sets: list[str] = typer.Option([], "--set", help="Fixed key=value for every trial (as mea train)."),
    config: Path = typer.Option(None, "--config", help="Fixed TOML [train] / [model] for every trial."),
    epochs: int = typer.Option(None, "--epochs", min=1, help="Epochs of every trial."),
    preset: str = typer.Option("paper", "--preset", help="paper or small (as mea train)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where the trials' runs go."),
    threads: int = THREADS,
) -> None:
    """Hyper-parameter search (Optuna, TPE + median pruning): each trial a run under --runs-dir,
    scored on the valid split; several processes share a study through --storage. Prints the
    trials and writes the best configuration as a mea train --config file."""
    api.tune(
        features, dataset=dataset, task=task, labels_range=labels_range, model=model,
        space=space, space_file=space_file, trials=trials, study=study, storage=storage,
        best=best, prune=prune, sampler_seed=sampler_seed, seed=seed, sets=sets, config=config,
        epochs=epochs, preset=preset, device=device, runs_dir=runs_dir, threads=threads,
        console=console, err_console=err_console,
    )  # fmt: skip


@app.command(short_help="Several models on the same store, splits and seeds, with paired t-tests.")
def compare(
    features: Path = typer.Argument(..., help="Feature store (.h5) every model trains on."),
    dataset: str = typer.Option(
        ...,
        "--dataset",
        help="Preset: mosi, mosei, iemocap (the papers') or custom (any labelled store: its "
        "own task and metrics).",
    ),
    models: str = typer.Option(..., "--models", help="Comma-separated models; the first is the reference."),
    seeds: int = typer.Option(5, "--seeds", min=1, help="Number of seeds (1111, 1112, ...)."),
    paper: bool = typer.Option(False, "--paper", help="The papers' values beside ours (benchmark data only)."),
    fmt: TableFormat = typer.Option(TableFormat.rich, "--format", help="How to print (all files are written)."),
    sets: list[str] = typer.Option(
        [], "--set", help="train.<setting>=v (every model) or <model>.<field>=v (one model)."
    ),
    epochs: int = typer.Option(None, "--epochs", min=1, help="Override every preset's epochs."),
    preset: str = typer.Option(
        "paper", "--preset", help="paper or small (as mea train) for every model."
    ),
    name: str = typer.Option(None, "--name", help="Directory under --runs-dir [default: compare-<dataset>-<store>]."),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where runs live."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N."),
    threads: int = THREADS,
    labels_range: str = typer.Option(
        None, "--labels-range", help="Custom regression: the labels' range a,b (its metrics)."
    ),
    split_by: str = SPLIT_BY,
    split_fractions: str = SPLIT_FRACTIONS,
    folds: str = FOLDS,
    split_seed: int = SPLIT_SEED,
) -> None:
    """Train several models on the same store, splits and seeds; per-metric tables with paired
    t-tests against the first model, md/csv/tex files and a bar chart. Custom tasks
    (--dataset custom) get their own metrics; --folds cross-validates over grouped folds."""
    result = api.compare(
        features, dataset=dataset, models=models, seeds=seeds, paper=paper, sets=sets,
        epochs=epochs, name=name, runs_dir=runs_dir, device=device, threads=threads,
        labels_range=labels_range, split_by=split_by, split_fractions=split_fractions,
        folds=folds, split_seed=split_seed, report=_job_reporter("model"), preset=preset,
    )  # fmt: skip
    _print_table(result.tables, fmt)
    files = ", ".join(str(p) for p in result.files.values())
    err_console.print(f"wrote {files}", highlight=False, soft_wrap=True)


@app.command(short_help="Pictures: t-SNE, WAL weights, PSA maps, training curves (PNG).")
def viz(
    ckpt: Path = typer.Argument(..., help="A checkpoint (ckpt.pt) or a run directory holding one."),
    what: list[str] = typer.Option(
        ..., "--what", help="tsne, wal, attention or curves (repeatable or comma-separated)."
    ),
    out: Path = typer.Option(None, "--out", help="Output folder (default: <ckpt dir>/viz)."),
    features: Path = typer.Option(None, "--features", help="Feature store (default: the checkpoint's)."),
    split: str = typer.Option("test", "--split", help="Split to draw (train, valid, test)."),
    sample: str = typer.Option(None, "--sample", help="Sample id for attention / wal."),
    samples: int = typer.Option(2, "--samples", min=1, help="Random samples in the WAL chart."),
    seed: int = typer.Option(0, "--seed", help="Seed of sample choice and t-SNE."),
) -> None:
    """Pictures: t-SNE of h^e/h^a (Fig. 5), WAL weights (Fig. 6), PSA maps, training curves."""
    from mea_cli.viz.api import VizRefused

    try:
        outputs = api.viz(
            ckpt, what, out=out, features=features, split=split, sample=sample, samples=samples,
            seed=seed,
        )  # fmt: skip
    except VizRefused as err:  # the pictures drawn are listed, then the one-line refusal
        for o in err.outputs:
            console.print(f"{o.what}: {o.png} - {o.summary}", highlight=False)
        raise
    for o in outputs:
        console.print(f"{o.what}: {o.png} - {o.summary}", highlight=False)


def _page_widths() -> None:
    """Rich crops tables to 80 columns when it does not write to a terminal (a pipe, a batch
    scheduler's log file). Nothing is gained there by wrapping, so such a console gets a wide
    page (tables keep their natural width) unless ``COLUMNS`` says otherwise.

    Only a positive ``COLUMNS`` says so: Rich takes ``COLUMNS=0`` (which some CI images and
    shells without a terminal export) as a page zero columns wide and prints nothing at all,
    error messages included, so a ``COLUMNS`` that is not a positive number is dropped.

    A page narrower than :data:`MIN_WIDTH` (``COLUMNS=20``, a narrow terminal) leaves the
    tables no room: Rich shrinks each column below its words, cropping values to "…", and
    prints empty cells once borders and padding alone fill the page. So standard output, where
    the tables go, is never laid out narrower than that; a terminal wraps the longer lines.
    Standard error keeps the page's width: a progress display redraws its lines in place,
    which only works while they fit the terminal."""
    columns = os.environ.get("COLUMNS", "")
    if not (columns.isdigit() and int(columns) > 0):
        os.environ.pop("COLUMNS", None)  # for the consoles made later, and child processes
        for c in (console, err_console):
            if not c.is_terminal:
                c.width = PIPE_WIDTH
            elif columns:  # read from COLUMNS when the console was made
                c.width = shutil.get_terminal_size().columns
    if console.width < MIN_WIDTH:  # set only then: a wider terminal's width stays live
        console.width = MIN_WIDTH


def _click_modules() -> list[ModuleType]:
    """The ``exceptions`` modules of every click that can parse our command line: the one typer
    parses with (recent typer, 0.29 for one, bundles its own copy, ``typer._click``, whose
    exceptions are not the ``click`` package's) and the ``click`` package when it is installed
    (what older typer parses with)."""
    names = [typer.BadParameter.__module__, "click.exceptions"]
    modules = []
    for name in dict.fromkeys(names):
        try:
            modules.append(importlib.import_module(name))
        except ImportError:  # typer's bundled click and no click package installed
            continue
    return modules


_CLICK = _click_modules()
_USAGE_ERRORS = tuple({m.ClickException for m in _CLICK})
_ABORTS = tuple({typer.Abort, *(m.Abort for m in _CLICK if hasattr(m, "Abort"))})
_HELP_ERRORS = tuple({m.NoArgsIsHelpError for m in _CLICK if hasattr(m, "NoArgsIsHelpError")})


def usage_line(err: Exception) -> str:
    """A click usage error as one line: ``mea CMD: <click's message>``, its "did you mean" /
    "possible options" hint kept, any line breaks folded into spaces."""
    ctx = getattr(err, "ctx", None)
    where = "mea" if ctx is None or ctx.parent is None else f"mea {ctx.command.name}"
    return f"{where}: " + re.sub(r"\s*\n\s*", " ", err.format_message()).strip()


class EmptyArgumentError(MeaError):
    """An argument given as the empty string."""


def check_no_empty_argument(argv: list[str]) -> None:
    """Refuse an empty argument (``''``, or ``--opt=``) in one line naming where it stands.

    typer turns ``''`` into ``Path('.')``: ``mea extract "$VIDEOS" --out f.h5`` with ``VIDEOS``
    unset would search the current folder, recursively, and ``--runs-dir "$D"`` train into it.
    No option of ``mea`` takes an empty value, so an empty argument is always a mistake, most
    often a shell variable that is not set."""
    for i, arg in enumerate(argv):
        option, eq, value = arg.partition("=")
        if arg == "" or (arg.startswith("--") and eq and not value):
            where = f"{option}=" if arg else f"after {argv[i - 1]}" if i else "as the command"
            raise EmptyArgumentError(
                f"an empty argument ('', {where}): a shell variable that is not set? Give a "
                f"value, or leave the option out"
            )


def main() -> None:
    """Entry point of the ``mea`` script: exit 0, 2 for a user mistake or an output that
    cannot be written (one line on stderr), 130 for Ctrl-C and 143 for SIGTERM (one line
    each), 141 quietly when the reader of a pipe stops (:mod:`mea_cli.stdout`), 1 for a bug
    (with its traceback)."""
    from mea_cli.runtime import passive_openmp, prefer_huge_pages

    prefer_huge_pages()  # before any command imports torch
    passive_openmp()
    _page_widths()
    interrupt.install()
    try:
        check_no_empty_argument(sys.argv[1:])
        # not standalone: click must not turn Ctrl-C into a silent "exit 130" on its own
        with stdout.guarded():  # a full or closed stdout: one line, or a quiet exit 141
            code = app(standalone_mode=False)
    except MeaError as err:
        err_console.print(
            Text.assemble(("error:", "bold red"), " ", str(err)), highlight=False, soft_wrap=True
        )
        raise SystemExit(err.exit_code) from None
    except _HELP_ERRORS as err:  # `mea` alone: the help, as click shows it
        err.show()
        raise SystemExit(err.exit_code) from None
    except _USAGE_ERRORS as err:  # unknown option, missing argument, bad value, unreadable file
        err_console.print(
            Text.assemble(("error:", "bold red"), " ", usage_line(err)),
            highlight=False, soft_wrap=True,
        )  # fmt: skip
        raise SystemExit(2) from None
    except _ABORTS:  # end of input at a prompt
        err_console.print("aborted", highlight=False)
        raise SystemExit(1) from None
    except KeyboardInterrupt:  # outside a command (while starting up)
        code = 130
    if code == 130:  # typer's answer to KeyboardInterrupt inside a command
        if interrupt.received() == signal.SIGTERM:
            err_console.print(Text.assemble(("terminated", "bold red"), " (SIGTERM)"))
            raise SystemExit(143)
        err_console.print(Text.assemble(("interrupted", "bold red"), " (Ctrl-C)"))
        raise SystemExit(130)
    raise SystemExit(code if isinstance(code, int) else 0)
