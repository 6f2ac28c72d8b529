"""User-facing errors.

Every mistake a user can make (a missing file, a corrupt store, a dataset that does not fit)
raises a subclass of :class:`MeaError`. The CLI prints its message on one line and exits with
code 2; no traceback is shown for these. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class MeaError(Exception):
    """A problem with the user's input, reported as one line and exit code 2."""

    exit_code = 2


class FeatureStoreError(MeaError):
    """A feature store that is missing, unreadable or breaks an invariant of the format."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")
