"""Terminal output of ``mea extract``: progress (bar or plain lines) and the summary table.

The summary names every file of the input folder that was not extracted because it is not
media (grouped by extension), so that a format we do not read is never a silent count.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.table import Table

from mea_cli.extract.discover import not_media_note
from mea_cli.extract.driver import ExtractReport, Progress
from mea_cli.extract.pipeline import AUDIO_ONLY
from mea_cli.progress import ProgressReporter


@contextmanager
def progress_reporter(console: Console) -> Iterator[Callable[[Progress], None]]:
    """A progress callback showing videos done, failures and the real-time factor: a bar on
    a terminal, plain lines otherwise (:mod:`mea_cli.progress`)."""
    with ProgressReporter("extract", None, "videos", console) as rep:

        def update(p: Progress) -> None:
            note = f"failures {p.failures}"
            if p.media_seconds > 0:
                note += f", {p.rtf:.1f}x real time"
            rep.update(p.done, p.total, note)

        yield update


def render_report(report: ExtractReport, console: Console) -> None:
    """The summary table printed at the end of a run."""
    t = Table(title=f"mea extract -> {report.out}", show_header=False)
    t.add_column("what")
    t.add_column("value", justify="right")
    audio_only = sum(1 for _, stage, msg in report.failures if (stage, msg) == AUDIO_ONLY)
    t.add_row("media files (video or audio)", str(report.videos))
    t.add_row("  extracted now / from cache", f"{report.extracted} / {report.cached}")
    if audio_only:
        t.add_row("  audio only (empty vision)", str(audio_only))
    t.add_row("files that are not media (skipped)", str(len(report.skipped_files)))
    t.add_row("samples written", str(report.samples))
    t.add_row("failure rows", str(len(report.failures)))
    if report.extracted:
        t.add_row("seconds of video extracted", f"{report.media_seconds:.1f}")
        t.add_row("wall time (s)", f"{report.wall_seconds:.1f}")
        t.add_row("real-time factor (video s / wall s)", f"{report.rtf:.1f}x")
        if math.isfinite(report.startup_seconds):
            t.add_row("  start-up: models loaded, first video begun (s)", f"{report.startup_seconds:.1f}")
        for m in ("vision", "audio", "summary", "text"):
            sec = report.compute_seconds.get(m, 0.0)
            # under a millisecond per clip: nothing was computed (audio-only files' vision)
            if sec > 1e-3 * report.extracted:
                what = "audio functionals" if m == "summary" else m
                t.add_row(
                    f"  {what} real-time factor (per worker)", f"{report.media_seconds / sec:.1f}x"
                )
    if report.tokens:
        t.add_row("text tokens / OOV rate", f"{report.tokens} / {100 * report.oov_rate:.1f}%")
    if report.text_sources:
        t.add_row(
            "text from", ", ".join(f"{k}: {v}" for k, v in sorted(report.text_sources.items()))
        )
    console.print(t)
    if report.skipped_files:
        console.print(
            not_media_note(report.skipped_files),
            highlight=False,
            markup=False,  # file names are not rich markup ("[final].mp4")
            soft_wrap=True,
        )
    if report.without_words:
        console.print(
            f"note: {report.without_words} video(s) have an empty text sequence (no words: see "
            "the 'text' failure rows)",
            highlight=False,
            soft_wrap=True,
        )
    if report.failures:
        by_stage = Counter(stage for _, stage, _ in report.failures)
        also = f" ({audio_only} audio-only)" if audio_only else ""
        console.print(
            "failures by stage: "
            + ", ".join(f"{k} {v}{also if k == 'vision' else ''}" for k, v in sorted(by_stage.items()))
            + f" (see `mea info {report.out}`)",
            highlight=False,
            soft_wrap=True,
        )
