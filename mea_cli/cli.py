"""The ``mea`` command line: argument parsing and printing only; each command calls one stage.

User mistakes raise :class:`mea_cli.errors.MeaError`; :func:`main` prints them as one line on
stderr and exits with code 2. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from mea_cli import __version__
from mea_cli.errors import MeaError

app = typer.Typer(
    name="mea",
    help="Multimodal sentiment and emotion recognition from raw video with MEA.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
console = Console()
err_console = Console(stderr=True)


class Like(str, Enum):
    mosi = "mosi"
    mosei = "mosei"
    iemocap = "iemocap"


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )


def _version(value: bool) -> None:
    if value:
        console.print(f"mea-cli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """mea-cli: raw video -> features -> MEA model -> the literature's metrics."""


@app.command()
def info(
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
        [], "--drop", help="With --model: Table V switch to apply (repeatable)."
    ),
) -> None:
    """Summarise a feature store (FILE), or a model's size with --model NAME --dataset D."""
    if (file is None) == (model is None):
        raise MeaError("give exactly one of FILE (a feature store) or --model NAME")
    if model is not None:
        from mea_cli.models.summary import describe_model, render_model_summary

        described = describe_model(model, dataset, features, tuple(drop))
        if as_json:
            sys.stdout.write(json.dumps(described, indent=2) + "\n")
        else:
            render_model_summary(described, console)
        return
    from mea_cli.artifacts.features import FeatureStore
    from mea_cli.artifacts.summary import render_summary, summarize

    with FeatureStore(file) as store:
        summary = summarize(store)
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    else:
        render_summary(summary, console)


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
    from mea_cli.data.synth import SPECS, write_synthetic

    total = SPECS[like.value].default_n if n is None else n
    with _progress() as bar:
        task = bar.add_task(f"synth-{like.value}", total=total)
        count = write_synthetic(
            out,
            like.value,
            total,
            seed,
            max_seconds,
            progress=lambda k: bar.update(task, completed=k),
        )
    console.print(
        f"wrote {count} synthetic {like.value}-shaped samples to {escape(str(out))}",
        highlight=False,
    )


@app.command()
def train(
    features: Path = typer.Argument(None, help="Feature store (.h5); not needed with --resume."),
    dataset: str = typer.Option(None, "--dataset", help="Preset: mosi, mosei or iemocap."),
    model: str = typer.Option("mea", "--model", help="Registered model name."),
    seeds: str = typer.Option("1111", "--seeds", "--seed", help="Comma-separated seeds."),
    sets: list[str] = typer.Option(
        [], "--set", help="key=value: model config field, or train.<setting>."
    ),
    config: Path = typer.Option(None, "--config", help="TOML file with [train] and [model]."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    epochs: int = typer.Option(None, "--epochs", min=1, help="Override the preset's epochs."),
    name: str = typer.Option(None, "--name", help="Run name [default: model-dataset-time]."),
    resume: bool = typer.Option(False, "--resume", help="Continue run --name (or runs/latest)."),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where runs are kept."),
) -> None:
    """Train a model: Adam, ReduceLROnPlateau, early stopping on valid; writes runs/<name>/."""
    from mea_cli.train.cli_support import parse_seeds, print_run_summary
    from mea_cli.train.trainer import TrainRequest, train_run

    result = train_run(
        TrainRequest(
            features=features,
            dataset=dataset,
            model=model,
            seeds=parse_seeds(seeds),
            sets=list(sets),
            config_file=config,
            device=device,
            epochs=epochs,
            name=name,
            resume=resume,
            runs_dir=runs_dir,
        ),
        err_console,
    )
    print_run_summary(result, console)


@app.command(name="eval")
def eval_(
    ckpt: Path = typer.Argument(..., help="A checkpoint (runs/<name>/ckpt.pt)."),
    features: Path = typer.Option(None, "--features", help="Store [default: the training one]."),
    split: str = typer.Option("test", "--split", help="train, valid or test."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    paper: bool = typer.Option(False, "--paper", help="Show the papers' rows beside ours."),
    device: str = typer.Option("cpu", "--device", help="auto, cpu or cuda."),
) -> None:
    """Evaluate a checkpoint: the literature's metrics beside a training-mean baseline."""
    from mea_cli.train.evaluate import evaluate_checkpoint, render_eval

    result = evaluate_checkpoint(ckpt, features, split, device, with_paper=paper)
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        render_eval(result, console)


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
    as_json: bool = typer.Option(False, "--json", help="Print the import report as JSON."),
) -> None:
    """Import CMU benchmark features (MulT / MMSA pickles, SDK .csd) into a feature store."""
    from mea_cli.data.importers import import_csd, import_mmsa, import_mult

    ds = None if dataset is None else dataset.value
    if kind is ImportKind.mult:
        report = import_mult(src, out, ds, padding=padding)
    elif kind is ImportKind.mmsa:
        report = import_mmsa(src, out, ds)
    else:
        report = import_csd(
            src, out, ds, text=text_csd, vision=vision_csd, audio=audio_csd,
            labels=labels_csd, folds=folds, label_column=label_column,
        )  # fmt: skip
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        report.render(console)
        console.print(f"wrote {escape(str(out))}", highlight=False)


@app.command()
def extract(
    videos: Path = typer.Argument(..., help="A folder of videos (searched recursively) or one video."),
    out: Path = typer.Option(..., "--out", "-o", help="Output feature store (.h5)."),
    labels: Path = typer.Option(None, "--labels", help="CSV: video,start,end,label[,split]."),
    workers: int = typer.Option(1, "--workers", "-j", min=1, help="Videos extracted in parallel."),
    cache: Path = typer.Option(None, "--cache", help="Per-video cache [default: OUT.cache]."),
    shard: str = typer.Option(None, "--shard", help="i/n: extract every n-th video from the i-th."),
    dataset: str = typer.Option("", "--dataset", help="Dataset name stored in the file."),
    fps: float = typer.Option(None, "--fps", help="Face frames per second [default: native]."),
    max_side: int = typer.Option(0, "--max-side", min=0, help="Shrink larger frames (0: never)."),
    face_backend: str = typer.Option("blendshapes", "--face-backend", help="blendshapes | pyfeat."),
    face_model: Path = typer.Option(None, "--face-model", help="MediaPipe face_landmarker.task."),
    pyfeat_weights: Path = typer.Option(None, "--pyfeat-weights", help="py-feat weight folder."),
    audio_set: str = typer.Option("egemaps", "--audio-set", help="egemaps | compare."),
    glove: Path = typer.Option(None, "--glove", help="GloVe text, word2vec .bin or gensim .kv."),
    asr: bool = typer.Option(True, "--asr/--no-asr", help="Whisper when no transcript sidecar."),
) -> None:
    """Extract text, face and audio sequences from videos into one feature store."""
    from mea_cli.extract.driver import ExtractConfig
    from mea_cli.extract.driver import extract as run_extract
    from mea_cli.extract.report import progress_bar, render_report

    cfg = ExtractConfig(
        fps=fps,
        max_side=max_side,
        face_backend=face_backend,
        face_model=str(face_model) if face_model else None,
        pyfeat_weights=str(pyfeat_weights) if pyfeat_weights else None,
        audio_set=audio_set,
        glove=str(glove) if glove else None,
        asr=asr,
    )
    with progress_bar(err_console) as update:
        report = run_extract(
            videos, out, cfg, labels=labels, workers=workers, cache_dir=cache, shard=shard,
            dataset=dataset, progress=update,
        )
    render_report(report, console)


@app.command()
def merge(
    stores: list[Path] = typer.Argument(..., help="Feature stores to join (extraction shards)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output feature store (.h5)."),
) -> None:
    """Join feature stores made with `mea extract --shard i/n` (schemas must match)."""
    from mea_cli.extract.merge import merge_stores

    n = merge_stores(stores, out)
    console.print(f"merged {len(stores)} stores, {n} samples -> {escape(str(out))}", highlight=False)


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
            f"{kind} {escape(job.row)} seed {job.seed}: {words.get(event, event)}", highlight=False
        )

    return report


def _print_table(table, fmt: TableFormat) -> None:  # noqa: ANN001 - mea_cli.ablate.table.ResultTable
    if fmt is TableFormat.rich:
        console.print(table.to_rich())
    else:
        text = {"md": table.to_markdown, "csv": table.to_csv, "tex": table.to_latex}[fmt.value]()
        sys.stdout.write(text)


@app.command()
def ablate(
    drop: list[str] = typer.Option(
        [], "--drop", help="Table V switch to remove (repeatable), or 'all' for every row."
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
    paper: bool = typer.Option(False, "--paper", help="Add the paper's Table V values (MOSI/MOSEI)."),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where runs live."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N."),
) -> None:
    """Ablate a trained run (Table V): retrain each row with the same data, config and seeds."""
    from mea_cli.ablate.api import ablate as run_ablation

    result = run_ablation(
        runs_dir, run, drop, seeds, paper, report=_job_reporter("row"), device=device
    )
    _print_table(result.table, fmt)
    if paper and not result.table.paper_metrics:
        err_console.print("note: the paper's Table V has values for MOSI and MOSEI only")
    files = ", ".join(escape(str(p)) for p in result.files.values())
    err_console.print(f"wrote {files}", highlight=False, soft_wrap=True)


@app.command()
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
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N."),
) -> None:
    """Sensitivity analysis (Figs. 7-9): retrain with one config field varied; table + PNG plot."""
    from mea_cli.ablate.api import sweep as run_sweep

    def show(res) -> None:  # noqa: ANN001 - mea_cli.ablate.api.SweepResult
        _print_table(res.table, fmt)
        files = ", ".join(escape(str(p)) for p in res.files.values())
        err_console.print(f"wrote {files}", highlight=False, soft_wrap=True)

    run_sweep(
        runs_dir, run, settings, seeds, report=_job_reporter("setting"), device=device,
        on_table=show,
    )


@app.command()
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
    from mea_cli.viz.api import make

    path = ckpt / "ckpt.pt" if ckpt.is_dir() else ckpt
    whats = [w.strip() for item in what for w in item.split(",") if w.strip()]
    for o in make(path, whats, out, features, split, sample, samples, seed):
        console.print(f"{o.what}: {escape(str(o.png))} - {escape(o.summary)}", highlight=False)


def main() -> None:
    """Entry point of the ``mea`` script."""
    from mea_cli.runtime import prefer_huge_pages

    prefer_huge_pages()  # before any command imports torch
    try:
        app()
    except MeaError as err:
        err_console.print(
            f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True
        )
        raise SystemExit(err.exit_code) from None
    except KeyboardInterrupt:
        err_console.print("[bold red]interrupted[/]")
        raise SystemExit(130) from None
