"""The bad-input battery's one harness: run the real entry point in a subprocess and check
that a user mistake gives exactly one line on stderr, exit code 2, no traceback, and leaves
every file under the watched folders as it was (nothing created, changed or removed)."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

import warm

Snapshot = dict[str, tuple[int, str]]


def mea(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
        timeout: float = 300, fresh: bool = False) -> subprocess.CompletedProcess[str]:
    """``python -m mea_cli ARGS`` as a shell runs it (stdin closed, no colours), through
    ``warm.run``: a child of a warm interpreter unless ``fresh`` or ``env`` changes start-up."""
    return warm.run(list(args), cwd=cwd, env={**os.environ, **ENV, **(env or {})},
                    timeout=timeout, fresh=fresh)


ENV = {"NO_COLOR": "1", "COLUMNS": "200"}


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
