"""The shape of ``mea_cli/models/`` (issue 25), read from the source with ``ast``: every import,
at module level or inside a function, counts.

* nothing under ``mea_cli/models/`` imports a stage (``train``, ``ablate``, ``viz``, ``predict``,
  ``demo``, ``cli``, ``api``): models sit below the stages;
* ``core/`` and ``layers/`` import no family; ``core/`` imports nothing from ``layers/``;
* a family imports no other family (what two families share lives in ``layers/``);
* the files of ``mea_cli/models/`` import each other without a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mea_cli"
MODELS = PACKAGE / "models"
STAGES = ("train", "ablate", "viz", "predict", "demo", "cli", "api")
FAMILIES = ("mea", "mult", "mcr", "fdmer", "functionals")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every ``mea_cli`` module ``path`` imports (``from X import y`` counts ``X`` and ``X.y``)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in out if m.startswith("mea_cli")}


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in MODELS.rglob("*.py")}
    return {name: {m for m in imports(p) if m in files and m != name} for name, p in files.items()}


def part(module: str) -> str:
    """``core``, ``layers``, a family name, or ``""`` (the package ``mea_cli.models`` itself)."""
    parts = module.split(".")
    return parts[2] if len(parts) > 3 else ""


def test_models_import_no_stage() -> None:
    bad = [
        (p.name, m)
        for p in MODELS.rglob("*.py")
        for m in imports(p)
        if (m.split(".") + [""])[1] in STAGES
    ]
    assert bad == []


def test_core_and_layers_import_no_family_and_families_no_other_family() -> None:
    bad = []
    for module, targets in graph().items():
        for target in targets:
            src, dst = part(module), part(target)
            if dst in FAMILIES and src != dst:
                bad.append((module, target))
            if src == "core" and dst == "layers":
                bad.append((module, target))
    assert bad == []


def test_no_import_cycle_among_model_files() -> None:
    g = graph()
    # the package __init__ re-exports the registry: an import of any submodule runs it first,
    # which Python allows; what must not exist is a cycle between two files of the tree
    g.pop("mea_cli.models", None)
    for targets in g.values():
        targets.discard("mea_cli.models")
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, stack: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(g[node]):
            if state.get(nxt) == 1:
                cycle.extend([*stack[stack.index(nxt):], nxt] if nxt in stack else [node, nxt])
                return True
            if state.get(nxt) is None and visit(nxt, [*stack, nxt]):
                return True
        state[node] = 2
        return False

    for start in sorted(g):
        if state.get(start) is None and visit(start, [start]):
            break
    assert cycle == []


def test_the_graph_sees_the_known_edges() -> None:
    """The checks above are not vacuous: the reader finds imports it must find."""
    g = graph()
    assert "mea_cli.models.core.contract" in g["mea_cli.models.core.registry"]
    assert "mea_cli.models.mea.config" in g["mea_cli.models.mea.model"]
    assert part("mea_cli.models.mea.model") == "mea" and part("mea_cli.models.core.paper") == "core"


def test_entries_follow_builtin_order_whatever_was_imported_first() -> None:
    import mea_cli.models.mult.model  # noqa: F401  (registers mult before the others)
    from mea_cli.models import entries
    from mea_cli.models.core.registry import BUILTIN

    names = [e.name for e in entries()]
    builtin = [e.name for e in entries() if e.model_cls.__module__ in BUILTIN]
    assert builtin == ["mea", "mfsa", "mcr", "fdmer", "mult", "functionals"]
    assert names[: len(builtin)] == builtin
