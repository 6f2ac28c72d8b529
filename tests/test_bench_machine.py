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


# a parent that starts a child of its own: both hold 64 MiB; the child burns 0.5 CPU-s, says
# so through a file, and lives until the parent has read the tree's CPU
_TREE_CHILD = """
import os, subprocess, sys, time
block = bytearray(64 * 2**20)
for i in range(0, len(block), 4096):
    block[i] = 1
if sys.argv[1:2] == ["child"]:
    end = time.process_time() + 0.5
    while time.process_time() < end:
        pass
    open(sys.argv[2], "w").close()
    while os.path.exists(sys.argv[2]):
        time.sleep(0.05)
else:
    flag = __file__ + ".burnt"
    kid = subprocess.Popen([sys.executable, __file__, "child", flag])
    while not os.path.exists(flag):
        time.sleep(0.05)
    time.sleep(1.0)  # many samples (every 20 ms) of the two blocks together
    import bench_machine
    print(bench_machine.tree_cpu_s(), flush=True)
    os.remove(flag)
    kid.wait()
"""


def test_the_process_tree_is_measured_whole(tmp_path: Path) -> None:
    """What ``mea train --procs`` is measured with: the summed memory of a process and its
    descendants, and their summed CPU (wait4 gives the largest process's alone)."""
    script = tmp_path / "tree.py"
    script.write_text(_TREE_CHILD)
    log = tmp_path / "tree.log"
    env = {"PYTHONPATH": str(Path(bench_machine.__file__).parent), "PATH": "/usr/bin:/bin"}
    tree: dict = {}
    code, _ = bench_machine.run_child([sys.executable, str(script)], log, env, tree)
    assert code == 0, log.read_text()
    assert tree["processes"] == 2
    assert tree["peak_rss_sum_MiB"] >= 128  # both blocks at once
    assert 0 < tree["peak_pss_sum_MiB"] <= tree["peak_rss_sum_MiB"]
    assert float(log.read_text().split()[0]) >= 0.5  # the child's CPU, read by the parent
