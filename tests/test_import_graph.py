"""The internal import graph (``tools/import_graph.py``): no cycles, no upward imports, no
private module or name imported across packages. Static (``ast``): nothing is imported."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

def _tool():  # noqa: ANN202 - the tool module
    spec = importlib.util.spec_from_file_location(
        "import_graph", ROOT / "tools" / "import_graph.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules["import_graph"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def tool():  # noqa: ANN201
    return _tool()


@pytest.fixture(scope="module")
def graph(tool):  # noqa: ANN001, ANN201
    return tool.collect()


def test_every_package_has_a_layer(tool, graph) -> None:  # noqa: ANN001
    assert tool.unlayered(graph) == []


def test_no_file_cycle_even_through_function_level_imports(tool, graph) -> None:  # noqa: ANN001
    assert tool.strongly_connected(tool.file_edges(graph, tool.ALL)) == []


def test_no_package_cycle(tool, graph) -> None:  # noqa: ANN001
    assert tool.strongly_connected(tool.package_edges(graph, tool.ALL)) == []


def test_no_upward_import(tool, graph) -> None:  # noqa: ANN001
    assert [(i.source, i.line, i.target) for i in tool.upward(graph)] == []


def test_no_private_import_across_packages(tool, graph) -> None:  # noqa: ANN001
    assert [(i.source, i.line, i.target) for i in tool.private_cross(graph)] == []


def test_the_tool_finds_what_it_looks_for(tool, tmp_path) -> None:  # noqa: ANN001
    """A made-up package with a hidden file cycle, an upward and a private import: all found."""
    pkg = tmp_path / "mea_cli"
    (pkg / "models").mkdir(parents=True)
    (pkg / "viz").mkdir()
    for f in ("__init__.py", "models/__init__.py", "viz/__init__.py"):
        (pkg / f).write_text("")
    (pkg / "models" / "a.py").write_text("from mea_cli.models import b\n")
    (pkg / "models" / "b.py").write_text(
        "def f():\n    from mea_cli.models.a import x\n    from mea_cli.viz._c import y\n"
    )
    (pkg / "viz" / "_c.py").write_text("from . import d\n")
    (pkg / "viz" / "d.py").write_text("")
    old = tool.ROOT
    tool.ROOT = tmp_path
    try:
        g = tool.collect(tmp_path)
        assert tool.strongly_connected(tool.file_edges(g, tool.ALL)) == [
            ["mea_cli.models.a", "mea_cli.models.b"]
        ]
        assert tool.strongly_connected(tool.file_edges(g, ("module",))) == []
        assert [(i.source, i.target) for i in tool.upward(g)] == [
            ("mea_cli.models.b", "mea_cli.viz._c")
        ]
        assert [i.target for i in tool.private_cross(g)] == ["mea_cli.viz._c"]
        kinds = sorted((i.source, i.target, i.kind) for i in g.imports)
        assert kinds == [
            ("mea_cli.models.a", "mea_cli.models.b", "module"),
            ("mea_cli.models.b", "mea_cli.models.a", "function"),
            ("mea_cli.models.b", "mea_cli.viz._c", "function"),
            ("mea_cli.viz._c", "mea_cli.viz.d", "module"),
        ]
    finally:
        tool.ROOT = old


def test_every_late_import_outside_the_cli_gives_its_reason(tool, graph) -> None:  # noqa: ANN001
    """Imports sit at module top except where start-up time needs them, each such place with a
    one-line reason (a comment on the import or above its group)."""
    assert [(i.source, i.line, i.target) for i in tool.unreasoned(graph)] == []


def test_the_tool_sees_which_late_imports_give_a_reason(tool, tmp_path) -> None:  # noqa: ANN001
    """A comment above a group covers its imports (across a blank line between groups), one on
    the import line covers it; an import after code, with no comment, gives none."""
    pkg = tmp_path / "mea_cli"
    (pkg / "a").mkdir(parents=True)
    for f in ("__init__.py", "a/__init__.py", "a/x.py", "a/y.py", "a/z.py"):
        (pkg / f).write_text("")
    (pkg / "a" / "b.py").write_text(
        "def f():\n"
        "    # start-up time: y loads late\n"
        "    import json\n"
        "\n"
        "    from mea_cli.a import x\n"
        "    from mea_cli.a import y\n"
        "    return x, y, json\n"
        "\n"
        "\n"
        "def g():\n"
        "    n = 1\n"
        "    from mea_cli.a import z\n"
        "    from mea_cli.a import y  # optional dependency\n"
        "    return n, z, y\n"
        "\n"
        "\n"
        "def h():\n"
        "    n = 1\n"
        "    from mea_cli.a import x\n"
        "    return n, x\n"
    )
    old = tool.ROOT
    tool.ROOT = tmp_path
    try:
        g = tool.collect(tmp_path)
        got = sorted((i.line, i.target, i.reason) for i in g.imports if i.kind == "function")
        assert got == [
            (5, "mea_cli.a.x", True),
            (6, "mea_cli.a.y", True),
            (12, "mea_cli.a.z", True),  # its group holds a commented import (line 13)
            (13, "mea_cli.a.y", True),
            (19, "mea_cli.a.x", False),
        ]
        assert [(i.source, i.line) for i in tool.unreasoned(g)] == [("mea_cli.a.b", 19)]
    finally:
        tool.ROOT = old
