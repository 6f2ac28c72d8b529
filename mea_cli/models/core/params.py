"""Trainable-parameter counts, the one definition every model's ``component_parameters`` and
``mea info`` use."""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn


def trainable_parameters(*modules: nn.Module | None) -> int:
    """Trainable parameters of ``modules`` together (``None``, a removed component, counts 0)."""
    return sum(t.numel() for m in modules if m is not None for t in m.parameters() if t.requires_grad)


def parameter_counts(groups: Mapping[str, nn.Module | None]) -> dict[str, int]:
    """Trainable parameters per named component (``None``: a removed one, left out)."""
    return {name: trainable_parameters(mod) for name, mod in groups.items() if mod is not None}
