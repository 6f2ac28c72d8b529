"""benchmarks/bench_machine.py's machine-speed probe: what bench_peers.py records beside its
ratios so that a change of the machine's own speed during a benchmark shows."""

from __future__ import annotations

import math
import sys
import threading
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_machine  # noqa: E402


def test_speed_probe_times_a_fixed_one_thread_workload_and_restores_threads() -> None:
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    seconds = bench_machine.speed_probe(repeats=1)
    assert seconds > 0 and math.isfinite(seconds)  # how long it takes is the machine's
    assert torch.get_num_threads() == before


def test_speed_drift_is_slowest_over_fastest_minus_one() -> None:
    assert bench_machine.speed_drift([0.5, 0.5, 0.5]) == 0.0
    assert bench_machine.speed_drift([0.4, 0.5, 0.6]) == 0.5
    assert bench_machine.speed_drift([0.6, 0.4]) == 0.5
    assert bench_machine.speed_drift([]) == 0.0


def test_the_probe_line_names_each_probe_and_the_drift() -> None:
    line = bench_machine.probe_line({"start": 0.285, "end": 0.3165})
    assert line == "machine speed probe (s, one thread, best of 3): start 0.285, end 0.317; drift 11%"


# a parent that starts a child of its own: both hold 64 MiB. The child burns 0.5 CPU-s, says so
# through a file and holds its block until the test releases it; the parent then prints the
# tree's CPU (the child's included) and says both blocks are held (argv: ready flag, release flag)
_TREE_CHILD = """
import os, subprocess, sys, time
block = bytearray(64 * 2**20)
for i in range(0, len(block), 4096):
    block[i] = 1
ready, release = sys.argv[-2:]
if sys.argv[1] == "child":
    end = time.process_time() + 0.5
    while time.process_time() < end:
        pass
    open(ready + ".child", "w").close()
    while not os.path.exists(release):
        time.sleep(0.01)
else:
    kid = subprocess.Popen([sys.executable, __file__, "child", ready, release])
    while not os.path.exists(ready + ".child"):
        time.sleep(0.01)
    import bench_machine
    print(bench_machine.tree_cpu_s(), flush=True)
    open(ready, "w").close()
    kid.wait()
"""


def test_the_process_tree_is_measured_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``mea train --procs`` is measured with: the summed memory of a process and its
    descendants, and their summed CPU (wait4 gives the largest process's alone). The tree holds
    its memory until the sampler has seen both blocks, so no timing decides the figures."""
    script = tmp_path / "tree.py"
    script.write_text(_TREE_CHILD)
    ready, release = tmp_path / "ready", tmp_path / "release"
    log = tmp_path / "tree.log"
    env = {"PYTHONPATH": str(Path(bench_machine.__file__).parent), "PATH": "/usr/bin:/bin"}
    both_seen = threading.Event()
    sample = bench_machine.TreeMemory.sample

    def watched(memory: bench_machine.TreeMemory) -> None:
        sample(memory)
        if ready.exists() and memory.peak_pss_kib >= 128 * 1024:  # both private blocks
            both_seen.set()

    monkeypatch.setattr(bench_machine.TreeMemory, "sample", watched)
    tree: dict = {}
    result: list[tuple[int, float]] = []
    cmd = [sys.executable, str(script), str(ready), str(release)]
    runner = threading.Thread(target=lambda: result.append(bench_machine.run_child(cmd, log, env, tree)))
    runner.start()
    try:
        for _ in range(2400):  # a bound on a hang (2 min), not a timing: seen in milliseconds
            if both_seen.wait(0.05) or not runner.is_alive():
                break
        assert both_seen.is_set(), log.read_text()
    finally:
        release.touch()
        runner.join()
    assert result[0][0] == 0, log.read_text()
    assert tree["processes"] == 2
    assert tree["peak_rss_sum_MiB"] >= 128  # both blocks at once
    assert 128 <= tree["peak_pss_sum_MiB"] <= tree["peak_rss_sum_MiB"]
    assert float(log.read_text().split()[0]) >= 0.5  # the child's CPU, read by the parent
