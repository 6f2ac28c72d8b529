"""The shell examples in README.md, docs/ and examples/ work: each is run, or checked against the
real command line, or marked as not runnable here with a reason.

A *shell block* is a fenced block tagged ``bash``/``sh``/``shell``/``console``, or an untagged
one whose first command line starts with ``mea``, ``make``, ``torchrun``, ``python`` or
``pip`` (directory trees, CSV and synopses in ``text`` blocks are not commands). The line
before its fence may hold a marker:

* ``<!-- docs-test: run -->``: the block is executed with ``bash -e`` in an empty folder with
  this interpreter's ``mea`` first on ``PATH`` (slow-marked test), and must exit 0;
* ``<!-- docs-test: skip: REASON -->``: not runnable here (a GPU, the CMU data, a cluster);
  the reason is required, and the block's ``mea`` lines are still checked as below;
* no marker: every ``mea ...`` line is parsed by the real command line (subcommand, option
  names, value types, required arguments: what a user's shell would hit first), ``make X``
  must name a Makefile target. A synopsis line (``[--opt ...]``, ``a|b``, ``CAPS`` operands)
  is checked for its subcommand and option names only.

A ``python`` block marked ``<!-- docs-test: run -->`` is executed: the run-marked Python blocks
of one page run in page order in one namespace (a notebook session), in a fresh interpreter
in an empty folder (slow-marked test); each must compile even in the quick tests. Tracebacks
name the page and line of the failing block.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer.main

from mea_cli import cli

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), ROOT / "examples" / "README.md"]
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```", re.M | re.S)
MARKER = re.compile(r"<!--\s*docs-test:\s*(run|skip)(?::\s*(.*?))?\s*-->\s*$")
SHELL_TAGS = {"bash", "sh", "shell", "console"}
COMMANDS = ("mea", "make", "torchrun", "python", "pip")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    mark: str  # "run", "skip" or ""
    reason: str
    body: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    def commands(self) -> list[str]:
        """Commands: prompts and trailing comments removed, continuations joined, lines split
        at ``;``, ``&&``, ``||`` and ``|``."""
        out, pending = [], ""
        for raw in self.body.splitlines():
            line = raw.strip().removeprefix("$ ")
            if line.startswith("#") or not line:
                continue
            line = re.sub(r"\s+#\s.*$", "", line)
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            out += [c.strip() for c in re.split(r"\s(?:;|&&|\|\||\|)\s", pending + line)]
            pending = ""
        return out


def _blocks() -> list[Block]:
    found = []
    for page in (p for p in PAGES if p.is_file()):
        text = page.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            tag = m.group(1).strip().lower()
            before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
            mark = MARKER.search(before)
            block = Block(
                page,
                text.count("\n", 0, m.start()) + 1,
                mark.group(1) if mark else "",
                (mark.group(2) or "") if mark else "",
                m.group(2),
            )
            first = next(iter(block.commands()), "")
            if tag in SHELL_TAGS or (not tag and first.split(" ", 1)[0] in COMMANDS):
                found.append(block)
    return found


BLOCKS = _blocks()
GROUP = typer.main.get_command(cli.app)


def _is_synopsis(args: list[str]) -> bool:
    return any(
        a.startswith("[") or a.endswith("]") or "|" in a or a == "..." or (a.isupper() and len(a) > 1)
        for a in args
    )


def _option_names(cmd: Any) -> set[str]:
    names = set()
    for p in cmd.params:
        names.update(getattr(p, "opts", ()))
        names.update(getattr(p, "secondary_opts", ()))
    return names


def check_mea_line(line: str) -> None:
    """Parse ``mea ...`` with the real command line; raise ``AssertionError`` saying why not."""
    args = shlex.split(line)[1:]
    assert args, f"{line!r}: no subcommand"
    ctx = GROUP.context_class(GROUP)  # typer vendors its own click: reach it through GROUP
    cmd = GROUP.get_command(ctx, args[0])
    assert cmd is not None, f"{line!r}: no command {args[0]!r}"
    if _is_synopsis(args):
        known = _option_names(cmd)
        for a in args[1:]:
            for opt in re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", a):
                opt = opt.split("=")[0]
                assert opt in known or opt.split("/")[0] in known, f"{line!r}: no option {opt}"
        return
    try:
        cmd.make_context(args[0], list(args[1:]), parent=ctx)
    except Exception as err:  # the vendored click's UsageError / BadParameter
        if not hasattr(err, "format_message"):
            raise
        raise AssertionError(f"{line!r}: {err.format_message()}") from None


def _make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return {m.group(1) for m in re.finditer(r"^([A-Za-z][\w-]*)\s*:", text, re.M)}


@pytest.mark.parametrize("block", BLOCKS, ids=[b.where for b in BLOCKS])
def test_shell_block_parses(block: Block) -> None:
    if block.mark == "skip":
        assert block.reason, f"{block.where}: 'docs-test: skip' needs a reason"
    targets = _make_targets()
    for line in block.commands():
        head = line.split(" ", 1)[0]
        if head == "mea":
            check_mea_line(line)
        elif head == "make":
            words = shlex.split(line)[1:]
            for target in (w for w in words if "=" not in w and not w.startswith("-")):
                assert target in targets, f"{block.where}: no Makefile target {target!r}"


def test_blocks_are_found_and_some_run() -> None:
    assert len(BLOCKS) >= 10 and any(b.mark == "run" for b in BLOCKS)
    # the checker itself refuses what a shell would refuse
    for bad in ("mea trian x.h5", "mea eval --no-such-option", "mea train x.h5 --epochs many"):
        with pytest.raises(AssertionError):
            check_mea_line(bad)
    check_mea_line("mea train x.h5 --dataset mosi --epochs 3")


RUNNABLE = [b for b in BLOCKS if b.mark == "run"]


@pytest.mark.slow
@pytest.mark.parametrize("block", RUNNABLE, ids=[b.where for b in RUNNABLE])
def test_runnable_block_runs(block: Block, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    r = subprocess.run(
        ["bash", "-e", "-c", block.body], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert r.returncode == 0, (block.where, r.stdout[-2000:], r.stderr[-2000:])


@dataclass(frozen=True)
class PyBlock:
    page: Path
    line: int  # of the first code line, 1-based
    code: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def _python_blocks() -> dict[Path, list[PyBlock]]:
    """Run-marked ``python`` blocks per page, in page order."""
    found: dict[Path, list[PyBlock]] = {}
    for page in (p for p in PAGES if p.is_file()):
        text = page.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
            mark = MARKER.search(before)
            if m.group(1).strip().lower() == "python" and mark and mark.group(1) == "run":
                line = text.count("\n", 0, m.start()) + 2
                found.setdefault(page, []).append(PyBlock(page, line, m.group(2)))
    return found


PY_BLOCKS = _python_blocks()
PY_PAGES = sorted(PY_BLOCKS)
# executes blocks in one namespace; each compiled with "page:line" as its file name, and padded
# with blank lines so that a traceback's line numbers are the page's own
_DRIVER = textwrap.dedent(
    """
    import json, sys
    namespace = {"__name__": "__main__"}
    for where, line, code in json.load(sys.stdin):
        exec(compile("\\n" * (line - 1) + code, where.rsplit(":", 1)[0], "exec"), namespace)
    """
)


def test_python_blocks_compile() -> None:
    assert ROOT / "docs" / "python.md" in PY_BLOCKS and len(PY_BLOCKS[ROOT / "docs" / "python.md"]) >= 5
    for blocks in PY_BLOCKS.values():
        for block in blocks:
            compile(block.code, block.where, "exec")
    with pytest.raises(SyntaxError):  # the check itself refuses what Python would refuse
        compile("print(1", "x", "exec")


@pytest.mark.slow
@pytest.mark.parametrize("page", PY_PAGES, ids=[str(p.relative_to(ROOT)) for p in PY_PAGES])
def test_python_page_runs(page: Path, tmp_path: Path) -> None:
    blocks = [(str(b.page.relative_to(ROOT)) + f":{b.line}", b.line, b.code) for b in PY_BLOCKS[page]]
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    r = subprocess.run(
        [sys.executable, "-c", _DRIVER], input=json.dumps(blocks), cwd=tmp_path, env=env,
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 0, (str(page), r.stdout[-2000:], r.stderr[-3000:])
