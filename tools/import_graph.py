"""Measure the internal import graph of ``mea_cli`` and the path ``mea train`` takes through it.

Static part (stdlib :mod:`ast`, no import of the package):

* **Imports** are the ``import`` / ``from ... import`` statements of ``mea_cli/**/*.py`` whose
  target is inside ``mea_cli``. ``from a.b import c`` points at module ``a.b.c`` when that is a
  file, else at ``a.b``. An import is *function-level* when it sits inside a ``def`` (at any
  depth), *type-only* inside ``if TYPE_CHECKING:``, else *module-level*.
* A **package** is the first name below ``mea_cli`` (``mea_cli.train.trainer`` -> ``train``;
  a top-level module such as ``mea_cli.paths`` is its own package ``paths``). One statement
  importing several names of one module counts once.
* **Cycles** are the strongly connected components with more than one member of the package
  graph and of the file graph (``__init__`` files left out: importing ``a.b`` runs ``a`` first
  but ``a/__init__.py`` is not where an arrow is drawn). Both are computed with every arrow
  (module-level, type-only and function-level), so a cycle hidden by a function-level import
  still counts, and again with module-level arrows only.
* An **upward import** is an arrow from a package to a package of a higher layer in
  :data:`LAYERS` (lower layers must not know about the higher ones). An arrow between two
  packages of the same layer is allowed when it makes no cycle.
* A **private cross-package import** names a module or a name starting with ``_`` from another
  package (``from mea_cli.viz._x import y``, ``from mea_cli.viz.tsne import _f``).
* A function-level import **gives its reason** when a comment stands on one of its lines, on
  another import statement of its group (the imports and blank lines right around it), or on
  the line above the group. The package keeps imports at module top except where start-up
  time needs them, each such place with a one-line reason.

Dynamic part (``--trace``): the path of the feature data from ``mea train``.

It writes a synthetic store in a temporary folder (``mea synth --like mosi --n 12 --seed 0``),
then runs ``mea train STORE --dataset mosi --preset small --epochs 1 --seeds 1 --device cpu``
in this process under :func:`sys.setprofile`, and records each ``mea_cli`` function the first
time it is called while the command runs (Python functions only, each code object once), in
the order of those first calls. Left out: module and class bodies and every call made while a
module is being imported (import order is not the data's path), and calls made from inside
``mea_cli/models/`` (the model's own layers are not the run path; the call into the model from
outside it is kept). The caller is the nearest ``mea_cli`` frame up the stack, not the frame
right above: a model calls its layers through torch's ``Module.__call__``, whose frame is
torch's (before this was fixed, every layer a model calls counted as a stop of the run path). From that list of functions:

* **stops**: the number of functions recorded;
* **files**: the number of distinct files they are in;
* **visits**: the list of files in that order with consecutive repeats merged (one visit = the
  path enters a file and stays in it);
* **returns**: visits to a file the path has already visited and left before.

The count depends only on the code (the seed, data and settings are fixed; each function counts
once, so loop lengths and timing do not matter).

Usage: ``python tools/import_graph.py [--trace]`` from the repository root; the report goes to
standard output. The exit code is 0 whatever it finds (``tests/test_import_graph.py`` asserts).
"""

from __future__ import annotations

import argparse
import ast
import inspect
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "mea_cli"

#: Layer of each package (lower may not import higher). Packages on one line share a layer.
LAYERS: dict[str, int] = {
    # plain utilities: no torch, no other mea_cli package but these
    "mea_cli": 0,  # the package's own __init__ (the version)
    "errors": 0,
    "interrupt": 0,
    "locks": 0,
    "progress": 0,
    "stdout": 0,
    "paths": 1,
    "config": 1,
    "batch": 1,
    "metric_names": 1,
    # what the stages write and read: the feature store, checkpoints, run summaries
    "artifacts": 2,
    # data in: presets, datasets and splits over stores, importers, extraction from media
    "data": 3,
    "extract": 3,
    "align": 3,  # word-level alignment of a store (mea align)
    # the models: built from a store's dimensions and a dataset preset, know no stage
    "models": 4,
    # running a model: devices, autocast, prediction, processes, checkpoint -> model
    "runtime": 5,
    # pictures of stores, runs and models
    "viz": 6,
    # the run layer: setup, the loop, evaluation
    "train": 7,
    # stages built on training
    "ablate": 8,
    "predict": 8,
    "demo": 8,
    "tune": 8,
    # the Python API: one function per command, over the stages
    "api": 9,
    # entry points
    "cli": 10,
    "__main__": 11,
}


@dataclass(frozen=True)
class Import:
    """One internal import: a statement and the module it reaches."""

    source: str  # dotted module name of the importing file
    target: str  # dotted module name imported
    kind: str  # "module", "function" or "type"
    line: int
    private: bool  # names a private module or name
    reason: bool = False  # function-level: a comment gives the reason (see the docstring)


@dataclass
class Graph:
    """All internal imports of the package, with the modules that exist."""

    modules: set[str] = field(default_factory=set)
    imports: list[Import] = field(default_factory=list)


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def is_package_init(path: Path) -> bool:
    return path.name == "__init__.py"


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


class _Collector(ast.NodeVisitor):
    def __init__(
        self, module: str, is_init: bool, modules: set[str], lines: list[str] | None = None
    ) -> None:
        self.module = module
        self.is_init = is_init
        self.modules = modules
        self.lines = lines or []
        self.depth = 0  # inside how many defs
        self.type_only = 0
        self.found: list[Import] = []
        self.import_lines: set[int] = set()  # every line of every import statement (collect)
        self.node: ast.stmt | None = None

    def _kind(self) -> str:
        if self.depth:
            return "function"
        return "type" if self.type_only else "module"

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
        if name == "TYPE_CHECKING":
            self.type_only += 1
            for child in node.body:
                self.visit(child)
            self.type_only -= 1
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def _has_reason(self, node: ast.stmt) -> bool:
        """A comment on the lines of the statement's group of imports or on the line above the
        group (see the module docstring)."""
        lines = self.lines

        def walk(i: int, step: int) -> tuple[bool, int]:  # (a comment in the group, where it ends)
            seen = False
            while 1 <= i <= len(lines) and (not lines[i - 1].strip() or i in self.import_lines):
                seen = seen or "#" in lines[i - 1]
                i += step
            return seen, i

        up, above = walk(node.lineno, -1)
        down, _ = walk(node.lineno, 1)
        return up or down or (above >= 1 and lines[above - 1].strip().startswith("#"))

    def _import_node(self, node: ast.stmt) -> None:
        self.node = node

    def _add(self, target: str, line: int, private: bool) -> None:
        if target == PACKAGE or not target.startswith(PACKAGE + "."):
            return
        kind = self._kind()
        node = self.node
        reason = kind == "function" and node is not None and self._has_reason(node)
        self.found.append(Import(self.module, target, kind, line, private, reason))

    def visit_Import(self, node: ast.Import) -> None:
        self._import_node(node)
        for alias in node.names:
            target = alias.name
            while target not in self.modules and "." in target:
                target = target.rsplit(".", 1)[0]
            self._add(target, node.lineno, _private_path(alias.name))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        self._import_node(node)
        base = node.module or ""
        if node.level:
            here = self.module.split(".")
            if not self.is_init:
                here = here[:-1]
            here = here[: len(here) - (node.level - 1)]
            base = ".".join(here + ([base] if base else []))
        for alias in node.names:
            full = f"{base}.{alias.name}"
            if full in self.modules:
                self._add(full, node.lineno, _private_path(full))
            else:
                self._add(base, node.lineno, _private_path(base) or alias.name.startswith("_"))


def _private_path(dotted: str) -> bool:
    return any(p.startswith("_") and not p.startswith("__") for p in dotted.split("."))


def collect(root: Path = ROOT) -> Graph:
    files = sorted((root / PACKAGE).rglob("*.py"))
    graph = Graph(modules={module_name(f) for f in files})
    for f in files:
        text = f.read_text()
        c = _Collector(module_name(f), is_package_init(f), graph.modules, text.splitlines())
        tree = ast.parse(text, str(f))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                c.import_lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
        c.visit(tree)
        # one arrow per statement and target (``from a import b, c`` of one module is one)
        graph.imports.extend(dict.fromkeys(c.found))
    return graph


def strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative); components with more than one member, sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    nodes = sorted(set(edges) | {t for ts in edges.values() for t in ts})
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(edges.get(nxt, ())))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return sorted(out)


def _is_init(graph: Graph, module: str) -> bool:
    return (ROOT / Path(*module.split(".")) / "__init__.py").exists()


def file_edges(graph: Graph, kinds: Iterable[str]) -> dict[str, set[str]]:
    kinds = set(kinds)
    edges: dict[str, set[str]] = defaultdict(set)
    for imp in graph.imports:
        if imp.kind in kinds and imp.source != imp.target:
            if _is_init(graph, imp.source) or _is_init(graph, imp.target):
                continue
            edges[imp.source].add(imp.target)
    return edges


def package_edges(graph: Graph, kinds: Iterable[str]) -> dict[str, set[str]]:
    kinds = set(kinds)
    edges: dict[str, set[str]] = defaultdict(set)
    for imp in graph.imports:
        a, b = package_of(imp.source), package_of(imp.target)
        if imp.kind in kinds and a != b:
            edges[a].add(b)
    return edges


def upward(graph: Graph) -> list[Import]:
    return [
        imp
        for imp in graph.imports
        if LAYERS.get(package_of(imp.target), 99) > LAYERS.get(package_of(imp.source), 99)
    ]


def private_cross(graph: Graph) -> list[Import]:
    return [
        imp
        for imp in graph.imports
        if imp.private and package_of(imp.source) != package_of(imp.target)
    ]


def unreasoned(graph: Graph) -> list[Import]:
    """Function-level imports outside ``cli.py`` that give no reason (module docstring)."""
    return [
        i
        for i in graph.imports
        if i.kind == "function" and package_of(i.source) != "cli" and not i.reason
    ]


def unlayered(graph: Graph) -> list[str]:
    return sorted({package_of(m) for m in graph.modules if package_of(m) not in LAYERS})


ALL = ("module", "type", "function")


def report(graph: Graph) -> list[str]:
    kinds = Counter(imp.kind for imp in graph.imports)
    fn_outside_cli = [
        i for i in graph.imports if i.kind == "function" and package_of(i.source) != "cli"
    ]
    lines = [
        f"files: {len(graph.modules)}",
        f"internal imports: {len(graph.imports)} "
        f"(module-level {kinds['module']}, function-level {kinds['function']}, "
        f"type-only {kinds['type']})",
        f"function-level imports outside cli.py: {len(fn_outside_cli)}",
    ]
    per_file = Counter(i.source for i in fn_outside_cli)
    for mod, n in per_file.most_common():
        lines.append(f"  {n:3d} {mod}")
    silent = unreasoned(graph)
    lines.append(f"function-level imports outside cli.py without a reason comment: {len(silent)}")
    lines += [f"  {i.source}:{i.line} -> {i.target}" for i in silent]
    for title, ks in (("all arrows", ALL), ("module-level arrows only", ("module",))):
        pk = strongly_connected(package_edges(graph, ks))
        fl = strongly_connected(file_edges(graph, ks))
        lines.append(f"package cycles ({title}): {len(pk)}")
        lines += [f"  {' <-> '.join(c)}" for c in pk]
        lines.append(f"file cycles ({title}): {len(fl)}")
        lines += [f"  {' <-> '.join(c)}" for c in fl]
    up = upward(graph)
    lines.append(f"upward imports: {len(up)}")
    lines += [f"  {i.source}:{i.line} -> {i.target} ({i.kind})" for i in up]
    priv = private_cross(graph)
    lines.append(f"private cross-package imports: {len(priv)}")
    lines += [f"  {i.source}:{i.line} -> {i.target} ({i.kind})" for i in priv]
    missing = unlayered(graph)
    lines.append(f"packages without a layer: {len(missing)}")
    lines += [f"  {p}" for p in missing]
    lines.append("package arrows (all kinds):")
    for a, bs in sorted(package_edges(graph, ALL).items()):
        lines.append(f"  {a} -> {', '.join(sorted(bs))}")
    return lines


# ---------------------------------------------------------------------------------------------
# the dynamic trace


def trace_train() -> list[tuple[str, str]]:
    """(file, function) of each mea_cli function in the order of its first call during a tiny
    seeded ``mea train`` (see the module docstring)."""
    import os
    import tempfile

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.path.insert(0, str(ROOT))
    from typer.testing import CliRunner

    from mea_cli.cli import app

    pkg = str(ROOT / PACKAGE) + os.sep
    models = pkg + "models" + os.sep
    seen: set[object] = set()
    order: list[tuple[str, str]] = []

    def profiler(frame, event, arg):  # noqa: ANN001, ANN202, ARG001
        if event != "call":
            return
        code = frame.f_code
        if code in seen or not code.co_filename.startswith(pkg):
            return
        if not code.co_flags & inspect.CO_NEWLOCALS:  # a module or class body
            return
        caller = frame.f_back
        inner = caller  # the nearest mea_cli frame up the stack: torch's Module.__call__ (and
        while inner is not None and not inner.f_code.co_filename.startswith(pkg):  # the like)
            inner = inner.f_back  # sits between a model and the layers it calls
        if inner is not None and inner.f_code.co_filename.startswith(models):
            return
        up = caller
        while up is not None:  # called while some module is being imported
            if up.f_code.co_filename.startswith("<frozen importlib"):
                return
            up = up.f_back
        seen.add(code)
        rel = code.co_filename[len(str(ROOT)) + 1 :]
        order.append((rel, code.co_qualname))

    runner = CliRunner()
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "s.h5"
        res = runner.invoke(
            app, ["synth", "--like", "mosi", "--n", "12", "--seed", "0", "--out", str(store)]
        )
        if res.exit_code:
            raise SystemExit(f"synth failed: {res.output}")
        args = ["train", str(store), "--dataset", "mosi", "--preset", "small", "--epochs", "1",
                "--seeds", "1", "--device", "cpu", "--runs-dir", str(Path(tmp) / "runs"),
                "--name", "trace", "--threads", "1"]  # fmt: skip
        sys.setprofile(profiler)
        try:
            res = runner.invoke(app, args)
        finally:
            sys.setprofile(None)
        if res.exit_code:
            raise SystemExit(f"train failed ({res.exit_code}): {res.output} {res.exception!r}")
    return order


def path_report(order: list[tuple[str, str]]) -> list[str]:
    visits: list[str] = []
    for f, _ in order:
        if not visits or visits[-1] != f:
            visits.append(f)
    entered = Counter(visits)
    returns = sum(n - 1 for n in entered.values())
    lines = [
        "path of the feature data from `mea train` (first calls, see docstring):",
        f"  stops: {len(order)}",
        f"  files: {len(entered)}",
        f"  visits: {len(visits)}",
        f"  returns to a file already left: {returns}",
        "  files entered more than once:",
    ]
    lines += [f"    {n:3d} {f}" for f, n in entered.most_common() if n > 1]
    lines.append("  visits in order:")
    lines += [f"    {f}" for f in visits]
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", action="store_true", help="also trace a tiny `mea train`")
    args = ap.parse_args(argv)
    lines = report(collect())
    if args.trace:
        lines += path_report(trace_train())
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
