"""The bad-input battery's one harness: run the real entry point in a subprocess and check
that a user mistake gives exactly one line on stderr, exit code 2, no traceback, and leaves
every file under the watched folders as it was (nothing created, changed or removed)."""

from __future__ import annotations

import atexit
import functools
import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

Snapshot = dict[str, tuple[int, str]]


def mea(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
        timeout: float = 300, fresh: bool = False) -> subprocess.CompletedProcess[str]:
    """``python -m mea_cli ARGS`` as a shell runs it (stdin closed, no colours).

    By default the command runs in a child forked from a warm interpreter (``zygote.py``: the
    same entry point, without paying torch's import on every one of the battery's cases);
    ``fresh=True`` or an ``env`` starts a new interpreter, as the cases about start-up need."""
    if fresh or env is not None:
        full_env = {**os.environ, **ENV, **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", "mea_cli", *args], cwd=cwd, env=full_env, capture_output=True,
            text=True, stdin=subprocess.DEVNULL, timeout=timeout,
        )
    reply = _zygote().ask(list(args), cwd or Path.cwd(), timeout)
    return subprocess.CompletedProcess(
        [sys.executable, "-m", "mea_cli", *args], reply["rc"], reply["stdout"], reply["stderr"]
    )


ENV = {"NO_COLOR": "1", "COLUMNS": "200"}


class _Zygote:
    """One warm interpreter per test process, started on first use, ended with the process."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("zygote.py"))],
            env={**os.environ, **ENV}, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
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
            raise RuntimeError(f"the battery's warm interpreter ended (exit {self.proc.poll()})")
        return json.loads(line)


@functools.cache
def _zygote() -> _Zygote:
    return _Zygote()


def snapshot(*roots: Path) -> Snapshot:
    """Every file and folder under ``roots``: its size and content digest (folders: '-')."""
    seen: Snapshot = {}
    for root in roots:
        if not root.exists():
            continue
        for path in [root, *sorted(root.rglob("*"))]:
            if path.is_symlink() or path.is_dir():
                seen[str(path)] = (0, "link" if path.is_symlink() else "-")
            else:
                seen[str(path)] = (path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest())
    return seen


def assert_refused(result: subprocess.CompletedProcess[str], words: Iterable[str] = (),
                   before: Snapshot | None = None, roots: Iterable[Path] = ()) -> str:
    """Exit 2, one non-empty stderr line holding every one of ``words`` (case-insensitive),
    no traceback; when ``before`` is given, ``snapshot(*roots)`` must equal it. Returns the line."""
    lines = [x for x in result.stderr.splitlines() if x.strip()]
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word.lower() in lines[0].lower(), (word, lines[0])
    if before is not None:
        assert snapshot(*roots) == before, "the refused command changed files on disk"
    return lines[0]
