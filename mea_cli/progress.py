"""Progress of long commands, on a terminal and in a scheduler's log file alike.

On a terminal :class:`ProgressReporter` draws a rich bar (done / total, elapsed, remaining,
a note such as the failure count) that disappears when the work is done. When the console
is not a terminal -- SLURM, CI, ``| tee`` -- a bar would print nothing useful, so it prints
plain lines instead, one every ``every_items`` items (default: a twentieth of the total) or
after ``every_seconds`` (default 10 s) with progress since the last line, whichever comes
first, plus a last line at the end::

    extract: 12/40 videos (30%), 0.48 videos/s, ETA 0:00:58 - failures 2, 3.1x real time

The rate counts the items done since the first update, over the time since then: items
already done by then (cache hits) and the start-up before it (loading models) do not fool
the ETA. ``mea extract``,
``mea synth`` and ``mea predict`` use it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import timedelta
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def _clock(seconds: float) -> str:
    return str(timedelta(seconds=int(round(seconds))))


class ProgressReporter:
    """``with ProgressReporter("extract", 40, "videos", console) as p: p.update(k, note=...)``."""

    def __init__(
        self,
        label: str,
        total: int | None,
        unit: str,
        console: Console,
        *,
        every_items: int | None = None,
        every_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label, self.total, self.unit, self.console = label, total, unit, console
        self.every_items = every_items
        self.every_seconds = every_seconds
        self._clock = clock
        self.lines: list[str] = []  # the plain lines printed (for tests and logs)
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._t0 = 0.0
        self._first: int | None = None  # items done at the first update
        self._first_at = 0.0  # and when it came (the rate starts there, not at start-up)
        self._done = 0
        self._note = ""
        self._last_line_at = 0.0
        self._last_line_done: int | None = None

    @property
    def plain(self) -> bool:
        """True when lines are printed instead of a bar (the console is not a terminal)."""
        return not self.console.is_terminal

    def __enter__(self) -> ProgressReporter:
        self._t0 = self._last_line_at = self._clock()
        if not self.plain:
            self._bar = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(self.unit),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[note]}"),
                console=self.console,
                transient=True,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(self.label, total=self.total, note="")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(exc_type, exc, tb)
            self._bar = None
        elif exc_type is None and self._first is not None and self._last_line_done != self._done:
            self._line()

    def update(self, done: int, total: int | None = None, note: str = "") -> None:
        """``done`` items finished so far (of ``total``, if it changed); ``note`` is shown."""
        if total is not None:
            self.total = total
        if self._first is None:
            self._first, self._first_at = done, self._clock()
        self._done, self._note = done, note
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=done, total=self.total, note=note)
            return
        now = self._clock()
        step = self.every_items or max(1, math.ceil((self.total or 20) / 20))
        last = self._last_line_done
        finished = self.total is not None and done >= self.total
        if (
            last is None
            or done - last >= step
            or (done != last and now - self._last_line_at >= self.every_seconds)
            or (finished and done != last)
        ):
            self._line()

    def _line(self) -> None:
        now = self._clock()
        elapsed = now - self._t0
        first = self._first or 0
        busy = now - self._first_at
        rate = (self._done - first) / busy if busy > 0 else 0.0
        parts = [f"{self.label}: {self._done}"]
        if self.total:
            parts[0] += f"/{self.total} {self.unit} ({100 * self._done / self.total:.0f}%)"
        else:
            parts[0] += f" {self.unit}"
        if self._done > first:
            parts.append(f"{rate:.3g} {self.unit}/s")
            if self.total and rate > 0 and self._done < self.total:
                parts.append(f"ETA {_clock((self.total - self._done) / rate)}")
        parts.append(f"elapsed {_clock(elapsed)}")
        line = ", ".join(parts) + (f" - {self._note}" if self._note else "")
        self.lines.append(line)
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)
        self._last_line_at, self._last_line_done = now, self._done
