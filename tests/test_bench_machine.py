"""benchmarks/bench_machine.py's machine-speed probe: what bench_peers.py records beside its
ratios so that a change of the machine's own speed during a benchmark shows."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_machine  # noqa: E402


def test_speed_probe_times_a_fixed_one_thread_workload_and_restores_threads() -> None:
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    seconds = bench_machine.speed_probe(repeats=1)
    assert 0.0 < seconds < 60.0
    assert torch.get_num_threads() == before


def test_speed_drift_is_slowest_over_fastest_minus_one() -> None:
    assert bench_machine.speed_drift([0.5, 0.5, 0.5]) == 0.0
    assert bench_machine.speed_drift([0.4, 0.5, 0.6]) == 0.5
    assert bench_machine.speed_drift([0.6, 0.4]) == 0.5
    assert bench_machine.speed_drift([]) == 0.0


def test_the_probe_line_names_each_probe_and_the_drift() -> None:
    line = bench_machine.probe_line({"start": 0.285, "end": 0.3165})
    assert line == "machine speed probe (s, one thread, best of 3): start 0.285, end 0.317; drift 11%"
