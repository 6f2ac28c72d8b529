"""Render ``requirements.lock`` (pip constraints, ``-c``) from ``pip freeze`` of a fresh
environment: ``make lock`` installs torch (pinned), then the project with its dev and demo
extras unconstrained into a temporary virtualenv, freezes it and calls this script.

The rendering is a pure function of the freeze (:func:`render_lock`) so that a refresh is
reproducible: lines are sorted by canonical name, names are canonicalised, the project itself
is left out, and a local version label (``torch==2.13.0+cpu``) is dropped, because a public
version pin matches every local build of it (PEP 440), so the lock serves the Makefile's
``torch==X`` whichever index (CPU or CUDA wheels) provides it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

HEADER = """\
# requirements.lock: pip constraints (pip install -c requirements.lock ...) of a known-good
# environment; every `make install*` and `make test` (and so CI) installs with them.
# Refresh with `make lock` (docs/install.md); do not edit by hand.
"""


class LockError(ValueError):
    """A freeze line that cannot become a registry pin (a direct URL, an unpinned name)."""


def render_lock(freeze: Iterable[str], exclude: Iterable[str] = (), python: str = "") -> str:
    """The lock text for ``freeze`` (lines of ``pip freeze``): one ``name==version`` per
    package, sorted by canonical name, without the names in ``exclude``, editable installs,
    comments, or local version labels. ``python`` (e.g. ``3.11``) is noted in the header."""
    skip = {canonicalize_name(n) for n in exclude}
    pins: dict[str, str] = {}
    for raw in freeze:
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-e ") or line.startswith("--"):
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement as err:
            raise LockError(f"not a requirement: {raw.strip()!r} ({err})") from None
        name = canonicalize_name(req.name)
        if name in skip:
            continue
        if req.url or len(req.specifier) != 1 or next(iter(req.specifier)).operator != "==":
            raise LockError(f"{raw.strip()!r}: the lock pins registry releases (name==version)")
        version = Version(next(iter(req.specifier)).version).public
        if pins.get(name, version) != version:
            raise LockError(f"{name} frozen twice: {pins[name]} and {version}")
        pins[name] = version
    note = f"# generated from a Python {python} environment\n" if python else ""
    return HEADER + note + "".join(f"{n}=={pins[n]}\n" for n in sorted(pins))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("freeze", type=Path, help="output of `pip freeze` (- for stdin)")
    parser.add_argument("-o", "--out", type=Path, required=True, help="the lock file to write")
    parser.add_argument("--exclude", action="append", default=[], help="a name to leave out")
    parser.add_argument("--python", default="", help="the Python version, for the header")
    args = parser.parse_args(argv)
    lines = (sys.stdin if str(args.freeze) == "-" else args.freeze.open(encoding="utf-8"))
    try:
        text = render_lock(lines.read().splitlines(), args.exclude, args.python)
    except LockError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
