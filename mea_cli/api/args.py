"""How the Python API reads a list argument: ``drop="wal"`` means ``["wal"]``.

A command-line option given several times (``--drop psa --drop wal``) is a list in Python; a
plain string passed where a list is expected would otherwise be read one character at a time
(``"wal"`` as ``"w"``, ``"a"``, ``"l"``), with an error naming a single letter."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")


def items(value: str | os.PathLike[str] | Iterable[T]) -> list[T]:
    """``value`` as a list: one string or path is one item, any other iterable its items."""
    if isinstance(value, (str, os.PathLike)):
        return [value]  # type: ignore[list-item]
    return list(value)
