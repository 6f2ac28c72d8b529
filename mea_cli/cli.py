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
    file: Path = typer.Argument(..., help="A feature store (.h5) written by mea-cli."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Summarise a feature store: splits, modalities, lengths, rates, extractors, labels, failures."""
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


def main() -> None:
    """Entry point of the ``mea`` script."""
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
