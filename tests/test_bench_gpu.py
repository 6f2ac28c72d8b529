"""``make bench-gpu`` (benchmarks/bench_gpu.py): its logic, on the CPU (``--device cpu``).
No GPU has run it yet; these tests check what it counts and writes, not a card's figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.append(str(BENCH))

import bench_gpu  # noqa: E402


def test_junit_counts_by_hand() -> None:
    xml = (
        '<testsuites><testsuite name="pytest" tests="5" failures="1" errors="1" skipped="2">'
        "</testsuite></testsuites>"
    )
    assert bench_gpu.junit_counts(xml) == {
        "tests": 5, "failures": 1, "errors": 1, "skipped": 2, "passed": 1,
    }  # fmt: skip
    single = '<testsuite tests="4" failures="0" errors="0" skipped="4"/>'
    assert bench_gpu.junit_counts(single)["passed"] == 0


def test_peak_memory_is_the_largest_measured_step() -> None:
    steps = [
        {"cuda_max_memory_allocated_MiB": 100.0, "peak_rss_MiB": 900.0},
        {"cuda_max_memory_allocated_MiB": 250.5, "peak_rss_MiB": 800.0},
        {"error": "exit 1: CUDA out of memory", "peak_rss_MiB": 5000.0},
    ]
    assert bench_gpu.peak_memory_mib(steps, "cuda") == 250.5
    assert bench_gpu.peak_memory_mib(steps, "cpu") == 900.0
    assert bench_gpu.peak_memory_mib(steps[2:], "cuda") is None


@pytest.mark.slow
def test_runs_end_to_end_on_the_cpu(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    cmd = [sys.executable, str(BENCH / "bench_gpu.py"), "--device", "cpu", "--T", "4",
           "--batch", "2", "--steps", "1", "--models", "mea", "--datasets", "mosi",
           "--pytest-arg", "tests/test_cuda.py", "--json", str(out)]  # fmt: skip
    env = dict(os.environ, PYTHONSAFEPATH="1", OMP_NUM_THREADS="1")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=BENCH.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    rec = json.loads(out.read_text())
    assert rec["device"] == "cpu" and rec["card"].startswith("cpu")
    tests = rec["cuda_tests"]
    assert tests["tests"] == 4 and tests["failures"] == 0 and tests["errors"] == 0
    assert tests["skipped"] + tests["passed"] == 4  # skipped: no GPU here
    (step,) = rec["steps"]
    assert (step["model"], step["dataset"], step["batch"], step["T"]) == ("mea", "mosi", 2, 4)
    assert step["step_s"] > 0 and step["cuda_max_memory_allocated_MiB"] is None
    assert rec["peak_memory_MiB"] == step["peak_rss_MiB"] > 0
