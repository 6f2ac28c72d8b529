"""requirements.lock: its rendering from a freeze is deterministic (tools/lock.py), the committed
file is exactly such a rendering, it satisfies every bound in pyproject.toml, pins every package
the installed project needs (the whole dependency tree), and pins the Makefile's torch."""

from __future__ import annotations

import importlib.util
import random
import re
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
import tomllib
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"


def _tool():  # noqa: ANN202 - the tools/lock.py module
    spec = importlib.util.spec_from_file_location("mea_lock_tool", ROOT / "tools" / "lock.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


lock_tool = _tool()

FREEZE = [
    "Torch==2.13.0+cpu",
    "typing_extensions==4.15.0",
    "-e git+https://example.invalid/mea-cli@abc#egg=mea_cli",
    "mea_cli==0.1.0",
    "numpy==2.4.6",
    "# a comment",
    "",
    "PyYAML==6.0.3",
]


def pins(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            out[name] = version
    return out


def test_render_is_sorted_canonical_and_order_free() -> None:
    text = lock_tool.render_lock(FREEZE, exclude=["mea-cli"], python="3.11")
    assert pins(text) == {
        "numpy": "2.4.6", "pyyaml": "6.0.3", "torch": "2.13.0", "typing-extensions": "4.15.0",
    }  # fmt: skip
    assert list(pins(text)) == sorted(pins(text))
    shuffled = FREEZE[:]
    random.Random(0).shuffle(shuffled)
    assert lock_tool.render_lock(shuffled, ["mea_cli"], "3.11") == text
    # a lock is a fixed point: rendering it again gives it back byte for byte
    assert lock_tool.render_lock(text.splitlines(), [], "3.11") == text


@pytest.mark.parametrize("line", [
    "foo @ https://example.invalid/foo.whl", "foo>=1", "foo", "foo==1 ; python_version<'3'x",
])  # fmt: skip
def test_render_refuses_what_is_not_a_registry_pin(line: str) -> None:
    with pytest.raises(lock_tool.LockError):
        lock_tool.render_lock([line])


def test_render_refuses_two_versions_of_one_package() -> None:
    with pytest.raises(lock_tool.LockError, match="twice"):
        lock_tool.render_lock(["Foo==1", "foo==2"])


def test_the_committed_lock_is_a_rendering() -> None:
    text = LOCK.read_text(encoding="utf-8")
    python = re.search(r"Python (\d+\.\d+)", text).group(1)
    assert lock_tool.render_lock(text.splitlines(), ["mea-cli"], python) == text


def _pyproject_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    return [Requirement(r) for r in [*project["dependencies"], *extras["dev"], *extras["demo"]]]


def test_the_lock_satisfies_every_bound_of_pyproject() -> None:
    locked = pins(LOCK.read_text(encoding="utf-8"))
    env = default_environment()
    for req in _pyproject_requirements():
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        name = canonicalize_name(req.name)
        assert name in locked, f"{req} is not in requirements.lock"
        assert req.specifier.contains(locked[name], prereleases=True), (str(req), locked[name])


def _closure(roots: list[Requirement]) -> dict[str, str]:
    """Every distribution reached from ``roots`` through installed metadata: name -> version."""
    env = default_environment()
    seen: dict[str, str] = {}
    todo = [(r, "") for r in roots]
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({**env, "extra": extra}):
            continue
        name = canonicalize_name(req.name)
        try:
            dist = distribution(req.name)
        except PackageNotFoundError:
            continue  # an optional tree not installed here; the bounds test covers its root
        first = name not in seen
        seen[name] = dist.version
        wanted = [""] + sorted(req.extras)
        if first or req.extras:
            todo += [(Requirement(r), e) for r in dist.requires or [] for e in wanted]
    return seen


def test_the_lock_pins_the_whole_installed_dependency_tree() -> None:
    locked = pins(LOCK.read_text(encoding="utf-8"))
    tree = _closure(_pyproject_requirements())
    assert len(tree) > 50  # the real tree (torch, gensim, mediapipe, ...) was walked
    missing = sorted(set(tree) - set(locked))
    assert not missing, f"installed but not in requirements.lock (run `make lock`): {missing}"


def test_the_lock_pins_the_makefiles_torch() -> None:
    version = re.search(r"^TORCH_VERSION \?= (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert pins(LOCK.read_text(encoding="utf-8"))["torch"] == Version(version.group(1)).public
