"""Terminal output of ``mea extract``: the rich progress bar and the end-of-run summary table."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mea_cli.extract.driver import ExtractReport
from mea_cli.extract.driver import Progress as ExtractProgress


@contextmanager
def progress_bar(console: Console) -> Iterator[Callable[[ExtractProgress], None]]:
    """A progress callback drawing videos done, failures and the real-time factor."""
    with Progress(
        TextColumn("extract"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("videos  failures {task.fields[failures]}  {task.fields[rtf]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as bar:
        task = bar.add_task("extract", total=None, failures=0, rtf="")

        def update(p: ExtractProgress) -> None:
            rtf = f"{p.rtf:.1f}x real time" if p.media_seconds > 0 else ""
            bar.update(task, total=p.total, completed=p.done, failures=p.failures, rtf=rtf)

        yield update


def render_report(report: ExtractReport, console: Console) -> None:
    """The summary table printed at the end of a run."""
    t = Table(title=f"mea extract -> {report.out}", show_header=False)
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_row("videos", str(report.videos))
    t.add_row("  extracted now / from cache", f"{report.extracted} / {report.cached}")
    t.add_row("non-video files skipped", str(report.skipped_files))
    t.add_row("samples written", str(report.samples))
    t.add_row("failure rows", str(len(report.failures)))
    if report.extracted:
        t.add_row("seconds of video extracted", f"{report.media_seconds:.1f}")
        t.add_row("wall time (s)", f"{report.wall_seconds:.1f}")
        t.add_row("real-time factor (video s / wall s)", f"{report.rtf:.1f}x")
        for m in ("vision", "audio", "text"):
            sec = report.compute_seconds.get(m, 0.0)
            if sec > 0:
                t.add_row(
                    f"  {m} real-time factor (per worker)", f"{report.media_seconds / sec:.1f}x"
                )
    if report.tokens:
        t.add_row("text tokens / OOV rate", f"{report.tokens} / {100 * report.oov_rate:.1f}%")
    if report.text_sources:
        t.add_row(
            "text from", ", ".join(f"{k}: {v}" for k, v in sorted(report.text_sources.items()))
        )
    console.print(t)
    if report.failures:
        by_stage = Counter(stage for _, stage, _ in report.failures)
        console.print(
            "failures by stage: "
            + ", ".join(f"{k} {v}" for k, v in sorted(by_stage.items()))
            + f" (see `mea info {report.out}`)",
            highlight=False,
        )
