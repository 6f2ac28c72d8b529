"""Errors of the ablation and sweep stage (user mistakes: one line, exit code 2)."""

from __future__ import annotations

from mea_cli.errors import MeaError


class AblationError(MeaError):
    """An ablation that cannot run: unknown switch, run directory without checkpoint, ..."""


class SweepError(MeaError):
    """A sweep that cannot run: malformed ``key=v1,v2``, a key that is not a config field, ..."""
