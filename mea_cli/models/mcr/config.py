"""MCR's configuration (``MCRConfig``): the model rows of its Table 1 as per-dataset presets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from mea_cli import MODALITIES
from mea_cli.models.core.contract import (
    ModelConfig,
    choice_problems,
    kernel_by_modality,
    kernel_problems,
    layer_problems,
)
from mea_cli.models.core.losses import TASK_LOSSES

TABLE_1: dict[str, dict[str, Any]] = {
    "mosi": dict(heads=10, kernel_sizes=(3, 3, 3), layers=3, literal_lengths=(50, 500, 375)),
    "mosei": dict(heads=8, kernel_sizes=(3, 3, 3), layers=4, literal_lengths=(50, 500, 500)),
    "iemocap": dict(heads=10, kernel_sizes=(3, 3, 5), layers=3, literal_lengths=(20, 500, 400)),
}
"""The per-dataset model rows of MCR's Table 1 (feature size ``d = 40`` for all three; batch
size, learning rate and epochs are training values: ``paper_mcr.json`` beside this module).
``literal_lengths`` (used only by the literal forms) are the fixed text / vision / audio lengths
of the benchmark's unaligned sequences (the MulT data the paper's unaligned setting uses)."""


@dataclass(frozen=True)
class MCRConfig(ModelConfig):
    """Everything needed to build an :class:`MCR` (JSON-able)."""

    # Table 1
    d: int = 40
    heads: int = 10
    kernel_sizes: tuple[int, ...] = (3, 3, 3)
    layers: int = 3
    # where the paper is silent (docs/models/mcr.md)
    cmu_kernel: int = 3
    encoder_layers: int = 1
    dropout: float = 0.1
    attn_dropout: float = 0.0
    ffn_mult: int = 4
    task_loss: str = "l1"
    serial: bool = False
    cmu_literal: bool = False
    sum_literal: bool = False
    literal_lengths: tuple[int, ...] = (50, 500, 375)

    WHAT: ClassVar[str] = "MCR configuration"
    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = TABLE_1
    PRESET_SOURCE: ClassVar[str] = "MCR (Knowledge-Based Systems 2023) Table 1"

    def problems(self) -> list[str]:
        out = super().problems()
        out += kernel_problems(self.kernel_sizes)
        if self.d < 1 or self.heads < 1 or self.d % self.heads:
            out.append(f"d={self.d} must be a positive multiple of heads={self.heads}")
        out += layer_problems({"layers": self.layers, "encoder_layers": self.encoder_layers})
        if self.cmu_kernel < 1 or self.cmu_kernel % 2 == 0:
            out.append(f"cmu_kernel must be odd and positive, not {self.cmu_kernel}")
        if self.ffn_mult < 1:
            out.append("ffn_mult must be positive")
        if not (0.0 <= self.dropout < 1.0 and 0.0 <= self.attn_dropout < 1.0):
            out.append("dropout and attn_dropout must lie in [0, 1)")
        out += choice_problems("task_loss", self.task_loss, TASK_LOSSES)
        if len(self.literal_lengths) != len(MODALITIES) or any(n < 1 for n in self.literal_lengths):
            out.append(
                f"literal_lengths must be three positive lengths (L/V/A), not {self.literal_lengths}"
            )
        if self.serial and {"no-cmu", "no-scu"} & set(self.ablations):
            out.append("serial needs both the CMU and the SCU (ablations no-cmu / no-scu remove one)")
        return out

    @property
    def kernel(self) -> dict[str, int]:
        """Pre-processing kernel size per modality (Table 1's L/V/A)."""
        return kernel_by_modality(self.kernel_sizes)

    @property
    def max_lengths(self) -> dict[str, int]:
        """The fixed lengths of the literal forms, per modality."""
        return dict(zip(MODALITIES, self.literal_lengths, strict=True))
