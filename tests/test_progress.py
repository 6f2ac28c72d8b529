"""mea_cli.progress: a bar on a terminal, plain lines with rate and ETA everywhere else."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from mea_cli.progress import ProgressReporter


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_every_n_items_with_rate_and_eta() -> None:
    out = io.StringIO()
    clock = FakeClock()
    console = Console(file=out, width=40)  # not a terminal; narrow on purpose: no wrapping
    with ProgressReporter("extract", 40, "videos", console, clock=clock) as rep:
        assert rep.plain
        clock.now += 5.0  # start-up (loading models) is not part of the rate
        rep.update(0, note="failures 0")
        for k in range(1, 41):
            clock.now += 0.5
            rep.update(k, note=f"failures {k // 10}")
    lines = out.getvalue().splitlines()
    assert lines == rep.lines
    # the first update, then every 2 items (a twentieth of 40): 1 + 20 lines, the last at 40
    assert len(lines) == 21
    assert lines[0] == "extract: 0/40 videos (0%), elapsed 0:00:05 - failures 0"
    assert lines[1] == (
        "extract: 2/40 videos (5%), 2 videos/s, ETA 0:00:19, elapsed 0:00:06 - failures 0"
    )
    assert lines[-1] == "extract: 40/40 videos (100%), 2 videos/s, elapsed 0:00:25 - failures 4"


def test_plain_lines_also_every_few_seconds() -> None:
    clock = FakeClock()
    console = Console(file=io.StringIO())
    with ProgressReporter(
        "synth", 1000, "samples", console, every_seconds=10.0, clock=clock
    ) as rep:
        rep.update(0)
        clock.now += 11.0
        rep.update(3)  # far fewer than 50 items, but 11 s since the last line
        rep.update(4)  # nothing new to say yet
        clock.now += 1.0
        rep.update(5)
    assert [line.split(",")[0] for line in rep.lines] == [
        "synth: 0/1000 samples (0%)",
        "synth: 3/1000 samples (0%)",
        "synth: 5/1000 samples (0%)",  # the closing line
    ]


def test_cache_hits_do_not_fake_the_rate() -> None:
    clock = FakeClock()
    with ProgressReporter("extract", 10, "videos", Console(file=io.StringIO()), clock=clock) as rep:
        rep.update(8)  # eight videos came from the cache at once
        clock.now += 10.0
        rep.update(9)
    assert "0.1 videos/s, ETA 0:00:10" in rep.lines[1]


def test_a_bar_on_a_terminal_and_no_lines() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    with ProgressReporter("extract", 3, "videos", console) as rep:
        assert not rep.plain
        for k in range(4):
            rep.update(k, note="failures 0")
    assert rep.lines == [] and "━" in out.getvalue()


def test_synth_prints_progress_lines_when_piped(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "mea_cli", "synth", "--n", "20", "--out", str(tmp_path / "s.h5")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    lines = [x for x in r.stderr.splitlines() if x.startswith("synth-mosi: ")]
    assert lines and lines[-1].startswith("synth-mosi: 20/20 samples (100%)"), r.stderr
