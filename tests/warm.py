"""``python -m mea_cli ARGS`` for the tests, as a subprocess, without paying torch's import on
every command: the command runs in a child forked from a warm interpreter (``zygote.py``) that
was started with the same environment and has imported mea_cli once.

A fresh interpreter is started instead when the case is about start-up: ``fresh=True``, or an
environment that differs from this process's in a variable read when an interpreter or a
library starts (``PYTHON*``, ``LD_*``, OpenMP/MKL threads). One warm interpreter per distinct
environment and test process, ended with the process.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

START_UP = ("PYTHON", "LD_", "OMP_", "MKL_", "MALLOC_")


def run(args: list[str], *, cwd: Path | str | None = None, env: dict[str, str] | None = None,
        timeout: float = 900, fresh: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ``python -m mea_cli ARGS`` (stdin closed, output captured as text), in ``env`` (a
    whole environment, as for ``subprocess.run``; default: this process's)."""
    full = dict(os.environ if env is None else env)
    command = [sys.executable, "-m", "mea_cli", *args]
    if fresh or _differs_at_start_up(full):
        return subprocess.run(
            command, cwd=cwd, env=full, capture_output=True, text=True,
            stdin=subprocess.DEVNULL, timeout=timeout,
        )  # fmt: skip
    reply = _zygote(tuple(sorted(full.items()))).ask(list(args), Path(cwd or Path.cwd()), timeout)
    return subprocess.CompletedProcess(command, reply["rc"], reply["stdout"], reply["stderr"])


def _differs_at_start_up(env: dict[str, str]) -> bool:
    names = {k for k in {*env, *os.environ} if k.startswith(START_UP)}
    return any(env.get(k) != os.environ.get(k) for k in names)


class _Zygote:
    """One warm interpreter, started with ``env``; requests are answered one at a time."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("zygote.py"))],
            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lock = threading.Lock()
        atexit.register(self.proc.kill)

    def ask(self, args: list[str], cwd: Path, timeout: float) -> dict:
        with self.lock:
            request = {"args": args, "cwd": str(cwd), "timeout": timeout}
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the tests' warm interpreter ended (exit {self.proc.poll()})")
        return json.loads(line)


@functools.cache
def _zygote(env: tuple[tuple[str, str], ...]) -> _Zygote:
    return _Zygote(dict(env))
