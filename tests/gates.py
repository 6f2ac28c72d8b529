"""Stop a ``mea`` subprocess at a known point, deterministically (``tests/gated/``).

A test that interrupts a running command must not depend on how fast the machine is: instead
of waiting for some progress and hoping the command has not gone further (or finished) before
the signal lands, it lets exactly ``passes`` videos or epochs through and holds the command at
the next one until the test has sent its signal.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

GATED = Path(__file__).resolve().parent / "gated"
WAIT_S = 600.0  # generous: a bound on a hang, not a speed requirement


def gate_env(folder: Path, point: str, passes: int, env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a command held at its ``passes + 1``-th ``point`` (video, epoch)."""
    base = dict(os.environ if env is None else env)
    folder.mkdir(parents=True, exist_ok=True)
    path = os.pathsep.join(p for p in (str(GATED), base.get("PYTHONPATH", "")) if p)
    return {**base, "PYTHONPATH": path, "MEA_TEST_GATE": f"{folder}:{point}:{passes}"}


def blocked(folder: Path) -> dict[int, int]:
    """``{ticket: pid}`` of every process now held at the gate."""
    out = {}
    for p in folder.glob("blocked-*"):
        text = p.read_text()
        if text:
            out[int(p.name.split("-")[1])] = int(text)
    return out


def wait_blocked(folder: Path, proc: subprocess.Popen, count: int = 1) -> dict[int, int]:
    """Wait until ``count`` processes are held at the gate; fail if the command ends first."""
    end = time.monotonic() + WAIT_S
    while len(held := blocked(folder)) < count:
        if proc.poll() is not None:
            raise AssertionError(f"the command ended (exit {proc.returncode}) before the gate")
        if time.monotonic() > end:
            raise AssertionError("the command never reached the gate")
        time.sleep(0.05)
    return held


def wait_for(predicate: Callable[[], bool], what: str = "the awaited state") -> None:
    """Wait until ``predicate()`` holds (bounded by :data:`WAIT_S`, a hang guard)."""
    end = time.monotonic() + WAIT_S
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"never reached {what}")
        time.sleep(0.05)


def wait_gone(pids: list[int]) -> list[int]:
    """Wait until none of ``pids`` is alive (a zombie counts as gone); return those still alive."""
    end = time.monotonic() + WAIT_S
    while (alive := [p for p in pids if _alive(p)]) and time.monotonic() < end:
        time.sleep(0.1)
    return alive


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (macOS): ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def children(pid: int) -> list[int]:
    """The child processes of ``pid`` (from ``/proc``)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out
