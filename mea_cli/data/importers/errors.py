"""The error every importer raises for a source it cannot import, and the reading of a
pickle's text fields it shares."""

from __future__ import annotations

from typing import Any

import numpy as np

from mea_cli.errors import MeaError


class ImportFormatError(MeaError):
    """A source file that cannot be imported: unreadable, another layout, or not fitting."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def as_text(value: Any) -> str:
    """A pickle's id field as text (Python 2 pickles give bytes, numpy gives np.str_)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return as_text(value.item())
    return str(value)
