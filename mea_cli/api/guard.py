"""Each API call is one command for the output-onto-input check of :mod:`mea_cli.paths`.

The command line remembers every input a command checks (``paths.start_input_guard`` in its
root callback) so that no output may be one of them. An API function called from Python has no
such callback; :func:`one_command` gives each call its own list of inputs, in a copy of the
caller's context (so nested or concurrent calls never share or clear each other's list).
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from mea_cli import paths

P = ParamSpec("P")
R = TypeVar("R")


def one_command(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn`` with a fresh input guard: an output it checks may not be an input it checked."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        def guarded() -> R:
            paths.start_input_guard()
            return fn(*args, **kwargs)

        return contextvars.copy_context().run(guarded)

    return run
