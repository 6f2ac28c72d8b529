"""The functionals baseline's configuration (``FunctionalsConfig``): the statistics it summarises
each feature with and the regularisation grid it tries on valid."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from mea_cli.models.core.contract import ModelConfig

FIXED_STATS: tuple[str, ...] = ("mean", "std", "min", "max", "slope")
"""The statistics every feature gets besides its percentiles."""


@dataclass(frozen=True)
class FunctionalsConfig(ModelConfig):
    """``percentiles`` (in 0-100) summarised per feature; ``c_grid``: the inverse
    regularisation strengths tried on valid (logistic ``C``, ridge ``alpha = 1/C``);
    ``max_iter``: the logistic solver's iteration limit."""

    percentiles: tuple[float, ...] = (10.0, 50.0, 90.0)
    c_grid: tuple[float, ...] = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
    max_iter: int = 2000

    WHAT: ClassVar[str] = "functionals configuration"
    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {"mosi": {}, "mosei": {}, "iemocap": {}}
    PRESET_SOURCE: ClassVar[str] = (
        "ours: the same summary statistics and regularisation grid for every dataset"
    )

    def problems(self) -> list[str]:
        out = super().problems()
        if not self.percentiles or any(not 0.0 <= p <= 100.0 for p in self.percentiles):
            out.append(f"percentiles must lie in [0, 100], not {self.percentiles}")
        if not self.c_grid or any(c <= 0 for c in self.c_grid):
            out.append(f"c_grid must be positive values, not {self.c_grid}")
        if self.max_iter < 1:
            out.append("max_iter must be at least 1")
        return out

    @property
    def stats_per_feature(self) -> int:
        return len(FIXED_STATS) + len(self.percentiles)

    @property
    def summary_size(self) -> int:
        """Length of the summary vector: every feature's statistics, plus 2 per modality."""
        return sum(d * self.stats_per_feature + 2 for d in self.input_dims.values())
