"""Extraction workers end with their parent (``mea_cli.extract.lifetime``), through either of
its two mechanisms alone: the Linux parent-death signal, and the portable thread that waits on
the parent's sentinel. A parent process starts one spawned child and is killed with SIGKILL;
the child must be gone soon after (a bounded wait, not a speed requirement)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from gates import wait_for, wait_gone

PARENT = textwrap.dedent(
    """
    import multiprocessing as mp, os, signal, sys, time
    from pathlib import Path

    def child(ready, portable_only):
        from mea_cli.extract import lifetime
        if portable_only:  # as on macOS or Windows: the watch thread alone
            lifetime._linux_parent_death_signal = lambda sig: False
        signal.signal(signal.SIGTERM, lambda *a: os._exit(143))
        lifetime.die_with_parent()
        Path(ready).write_text(str(os.getpid()))
        while True:
            time.sleep(3600)

    if __name__ == "__main__":
        proc = mp.get_context("spawn").Process(target=child, args=(sys.argv[1], sys.argv[2] == "1"))
        proc.start()
        while True:
            time.sleep(3600)
    """
)


@pytest.mark.parametrize("portable_only", [False, True], ids=["pdeathsig+thread", "thread"])
def test_a_worker_ends_when_its_parent_is_killed(tmp_path: Path, portable_only: bool) -> None:
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    ready = tmp_path / "ready"
    parent = subprocess.Popen([sys.executable, str(script), str(ready), str(int(portable_only))])
    try:
        wait_for(lambda: ready.exists() and ready.read_text() != "", "the child running")
        child = int(ready.read_text())
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert wait_gone([child]) == []
    finally:
        parent.kill()
        if ready.exists() and ready.read_text():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(ready.read_text()), signal.SIGKILL)

