"""No file under ``benchmarks/`` may stand in for a package of the project's environment or of
the incumbent's (issue 27: ``benchmarks/kernels.py`` shadowed the ``kernels`` package that
transformers 5 imports, and ``make bench-peers`` failed on a fresh machine).

The scripts run with their folder on ``sys.path`` (first, unless ``PYTHONSAFEPATH`` is set), so
a module name there must not equal a top-level import name of either environment: this one
(``importlib.metadata``) or MMSA's, read from the committed ``benchmarks/peers.lock``.
"""

from __future__ import annotations

import importlib.metadata as md
import re
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
LOCK = BENCH / "peers.lock"

# distribution -> top-level import names where they differ from the normalised distribution
# name (PyPI metadata that pip writes into top_level.txt / RECORD once installed).
KNOWN_TOP_LEVEL: dict[str, tuple[str, ...]] = {
    "scikit-learn": ("sklearn",),
    "pyyaml": ("yaml", "_yaml"),
    "pillow": ("PIL",),
    "opencv-python": ("cv2",),
    "opencv-python-headless": ("cv2",),
    "python-dateutil": ("dateutil",),
    "beautifulsoup4": ("bs4",),
    "protobuf": ("google",),
    "attrs": ("attr", "attrs"),
    "setuptools": ("setuptools", "pkg_resources", "_distutils_hack"),
    "typing-extensions": ("typing_extensions",),
    "huggingface-hub": ("huggingface_hub",),
    "mmsa": ("MMSA",),
    "pytorch-transformers": ("pytorch_transformers",),
    "easydict": ("easydict",),
    "gdown": ("gdown",),
    "msgpack": ("msgpack",),
    "charset-normalizer": ("charset_normalizer",),
    "nvidia-cublas-cu12": ("nvidia",),
    "nvidia-ml-py3": ("pynvml",),
    "hf-xet": ("hf_xet",),
}
# whatever the lock says: the names that have bitten or would (issue 27)
ALWAYS = {"kernels", "transformers", "torch", "MMSA", "numpy", "tokenizers", "safetensors"}


def bench_modules() -> set[str]:
    return {p.stem for p in BENCH.glob("*.py")}


def lock_distributions(text: str) -> list[str]:
    """Distribution names pinned in a ``pip freeze`` file (comments and options skipped)."""
    names = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        names.append(re.split(r"[=<>!~ @\[;]", line, maxsplit=1)[0].strip())
    return names


def top_level_names(distribution: str) -> set[str]:
    """The import names a distribution installs: its metadata when installed here, else the
    known exceptions, else the normalised name (``foo-bar`` -> ``foo_bar``)."""
    key = distribution.lower().replace("_", "-").replace(".", "-")
    names = {key.replace("-", "_"), *KNOWN_TOP_LEVEL.get(key, ())}
    try:
        dist = md.distribution(distribution)
    except md.PackageNotFoundError:
        return names
    top = dist.read_text("top_level.txt")
    if top:
        names.update(t.strip() for t in top.splitlines() if t.strip())
    for f in dist.files or ():
        first = f.parts[0] if f.parts else ""
        if first.endswith(".py"):
            names.add(first[:-3])
        elif first and not first.endswith((".dist-info", ".data")) and first != "..":
            names.add(first)
    return names


def test_every_benchmark_module_has_the_bench_prefix() -> None:
    """The naming rule that keeps them collision-proof in any environment."""
    assert bench_modules(), "no benchmarks found"
    assert sorted(m for m in bench_modules() if not m.startswith("bench_")) == []


def test_no_benchmark_module_shadows_a_package_of_this_environment() -> None:
    installed = set(md.packages_distributions())
    assert "torch" in installed and "numpy" in installed  # the lookup itself works
    assert sorted(bench_modules() & installed) == []


def test_no_benchmark_module_shadows_a_package_of_the_incumbents_environment() -> None:
    dists = lock_distributions(LOCK.read_text())
    lowered = {d.lower() for d in dists}
    assert {"torch", "mmsa"} <= lowered, "peers.lock must pin torch and MMSA"
    theirs = set(ALWAYS)
    for d in dists:
        theirs |= top_level_names(d)
    assert sorted(bench_modules() & theirs) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# header\ntorch==2.13.0\nMMSA==2.2.1\n", ["torch", "MMSA"]),
        ("scikit-learn==1.5.0  # via MMSA\n--index-url x\n\nkernels==0.4\n", ["scikit-learn", "kernels"]),
    ],
)
def test_lock_parsing(text: str, expected: list[str]) -> None:
    assert lock_distributions(text) == expected


def test_the_check_catches_the_file_that_broke_bench_peers() -> None:
    """The old name fails the check: ``kernels`` is a top-level name of the lock's world."""
    theirs = set(ALWAYS)
    for d in lock_distributions(LOCK.read_text()):
        theirs |= top_level_names(d)
    assert {"kernels", "machine_not_a_package"} & theirs == {"kernels"}
    assert top_level_names("scikit-learn") >= {"sklearn", "scikit_learn"}
