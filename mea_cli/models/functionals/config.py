"""The functionals baseline's configuration (``FunctionalsConfig``): the statistics it summarises
each feature with and the regularisation grid it tries on valid."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from mea_cli.models.core.contract import ModelConfig, choice_problems

FIXED_STATS: tuple[str, ...] = ("mean", "std", "min", "max", "slope")
"""The statistics every feature gets besides its percentiles."""

AUDIO_BLOCKS: tuple[str, ...] = ("auto", "lld", "opensmile", "both")
"""What summarises the audio: ``lld`` our statistics of the store's audio sequence;
``opensmile`` the store's openSMILE Functionals (``/summary/audio``, 88 for eGeMAPSv02);
``both`` the two side by side; ``auto`` resolves to :data:`AUTO_WITH_SUMMARY` when the store
has the functionals, else ``lld``."""

AUTO_WITH_SUMMARY = "both"
"""What ``audio=auto`` uses on a store with openSMILE Functionals, chosen on Emo-DB's valid
split (valid macro-F1 0.751 against 0.736 for the functionals alone and 0.716 for the LLD
statistics alone; docs/training.md#the-functionals-baseline)."""


@dataclass(frozen=True)
class FunctionalsConfig(ModelConfig):
    """``percentiles`` (in 0-100) summarised per feature; ``c_grid``: the inverse
    regularisation strengths tried on valid (logistic ``C``, ridge ``alpha = 1/C``);
    ``max_iter``: the logistic solver's iteration limit; ``audio``: what summarises the audio
    (:data:`AUDIO_BLOCKS`); ``summary_dims``: the widths of the store's per-sample summaries
    (``/summary``), set from the store when a run is configured."""

    percentiles: tuple[float, ...] = (10.0, 50.0, 90.0)
    c_grid: tuple[float, ...] = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
    max_iter: int = 2000
    audio: str = "auto"
    summary_dims: dict[str, int] = field(default_factory=dict)

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
        out += choice_problems("audio", self.audio, AUDIO_BLOCKS)
        if self.audio in ("opensmile", "both") and self.summary_dims.get("audio", 0) < 1:
            out.append(
                f"audio={self.audio} needs a store with openSMILE functionals (/summary/audio, "
                "made by mea extract with the opensmile audio backend); this one has none"
            )
        return out

    @property
    def audio_block(self) -> str:
        """``audio`` with ``auto`` resolved against :attr:`summary_dims`."""
        if self.audio != "auto":
            return self.audio
        return AUTO_WITH_SUMMARY if self.summary_dims.get("audio", 0) > 0 else "lld"

    @property
    def uses_summary(self) -> bool:
        """Whether the model reads the batch's ``summary["audio"]``."""
        return self.audio_block in ("opensmile", "both")

    @property
    def stats_per_feature(self) -> int:
        return len(FIXED_STATS) + len(self.percentiles)

    @property
    def summary_size(self) -> int:
        """Length of the summary vector: every feature's statistics plus 2 per modality (the
        audio's replaced or joined by the openSMILE functionals, :attr:`audio_block`)."""
        size = 0
        for m, d in self.input_dims.items():
            own = d * self.stats_per_feature + 2
            if m != "audio" or self.audio_block == "lld":
                size += own
            else:
                size += self.summary_dims["audio"] + (own if self.audio_block == "both" else 0)
        return size
