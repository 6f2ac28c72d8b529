"""``python -m mea_cli ARGS`` for the tests, as a subprocess, without paying torch's import on
every command: the command runs in a child forked from a warm interpreter (``zygote.py``) that
has imported mea_cli once; the child runs in the caller's environment.

A fresh interpreter is started instead when the case is about start-up: ``fresh=True``, or an
environment that differs from this process's in a variable read when an interpreter or a
library starts (``PYTHON*``, ``LD_*``, OpenMP/MKL threads), unless the caller says that those
values are a fixed setting of its commands, not what it tests (``warm_start_up=True``: a plug-in
model's folder on ``PYTHONPATH`` for a whole file of commands). The consoles of mea_cli.cli read
their width and colours when it is imported: the child imports that module again in its own
environment (``zygote.child``), which is enough for ``REMADE`` (read when a console is made);
the rest of ``CONSOLE`` is read by libraries at their import, so there is one warm interpreter
per value of those variables and of the start-up ones, per test process, ended with the process;
a warm interpreter per whole environment would be one per test where tests set paths in it
(each ~400 MB).
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
CONSOLE = (
    "COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TERM", "COLORTERM", "TTY_COMPATIBLE",
    "TTY_INTERACTIVE", "JUPYTER_COLUMNS", "JUPYTER_LINES",
)  # fmt: skip
# read by rich when a console is made (not when it is imported): the child remakes mea_cli.cli's
# consoles in its own environment, so these need no warm interpreter of their own
REMADE = ("COLUMNS", "LINES", "NO_COLOR")


def run(args: list[str], *, cwd: Path | str | None = None, env: dict[str, str] | None = None,
        timeout: float = 900, fresh: bool = False,
        warm_start_up: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ``python -m mea_cli ARGS`` (stdin closed, output captured as text), in ``env`` (a
    whole environment, as for ``subprocess.run``; default: this process's). ``warm_start_up``:
    fork it from a warm interpreter started with ``env``'s start-up variables even where they
    differ from this process's."""
    full = dict(os.environ if env is None else env)
    command = [sys.executable, "-m", "mea_cli", *args]
    if fresh or (not warm_start_up and _differs_at_start_up(full)):
        return subprocess.run(
            command, cwd=cwd, env=full, capture_output=True, text=True,
            stdin=subprocess.DEVNULL, timeout=timeout,
        )  # fmt: skip
    console = tuple((k, full[k]) for k in CONSOLE if k in full and k not in REMADE)
    start_up = tuple(sorted((k, v) for k, v in full.items() if k.startswith(START_UP)))
    reply = _zygote(console + start_up).ask(list(args), Path(cwd or Path.cwd()), full, timeout)
    return subprocess.CompletedProcess(command, reply["rc"], reply["stdout"], reply["stderr"])


def _differs_at_start_up(env: dict[str, str]) -> bool:
    names = {k for k in {*env, *os.environ} if k.startswith(START_UP)}
    return any(env.get(k) != os.environ.get(k) for k in names)


class _Zygote:
    """One warm interpreter, started with this process's environment and ``fixed`` (the values
    of ``CONSOLE`` and of the start-up variables); requests are answered one at a time."""

    def __init__(self, fixed: dict[str, str]) -> None:
        env = {
            k: v for k, v in os.environ.items() if k not in CONSOLE and not k.startswith(START_UP)
        } | fixed
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("zygote.py"))],
            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lock = threading.Lock()
        atexit.register(self.end)

    def end(self) -> None:
        """Kill it and reap it, so that its CPU time (and its children's) counts in this
        process's (``/usr/bin/time`` of a test run)."""
        self.proc.kill()
        self.proc.wait()

    def ask(self, args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> dict:
        with self.lock:
            request = {"args": args, "cwd": str(cwd), "env": env, "timeout": timeout}
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the tests' warm interpreter ended (exit {self.proc.poll()})")
        return json.loads(line)


@functools.cache
def _zygote(fixed: tuple[tuple[str, str], ...]) -> _Zygote:
    return _Zygote(dict(fixed))
