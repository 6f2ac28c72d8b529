"""The MFSA configuration (``MFSAConfig``): the model values of MFSA Sec. 4.2 as per-dataset
presets, beside the fields MFSA shares with MEA (:class:`~mea_cli.models.mea.config.MEAFamilyConfig`).

The same layout as MEA's (``config.py`` / ``switches.py``): the config here, the Table 4
switches in :mod:`mea_cli.models.mea.mfsa_switches`, the model in :mod:`mea_cli.models.mea.mfsa`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from mea_cli.models.mea.config import MEAFamilyConfig

SEC_4_2: dict[str, dict[str, Any]] = {
    "mosi": dict(heads=8, kernel_sizes=(3, 3, 3), mu=0.25, alpha=1e-2, beta=3e-2, sep_batch=64),
    "mosei": dict(heads=10, kernel_sizes=(3, 3, 3), mu=0.15, alpha=3e-2, beta=5e-2, sep_batch=64),
    "iemocap": dict(heads=8, kernel_sizes=(3, 3, 5), mu=0.2, alpha=1e-2, beta=2e-2, sep_batch=32),
}
"""The per-dataset model values of MFSA Sec. 4.2 (heads, mu, alpha, beta; ``d = 40``,
``d_h = 128``, ``M = 5``, ``N = 2`` are the field defaults). MFSA gives no kernel sizes: those are
MEA's Table I values (the same authors' journal version of the same extractor). Batch size,
epochs and learning rate are training values (``paper_mfsa.json``); ``sep_batch`` is
Sec. 4.2's batch size (64 / 64 / 32), the batch at which L_sep equals Eq. 13's printed sum."""


@dataclass(frozen=True)
class MFSAConfig(MEAFamilyConfig):
    """Everything needed to build an :class:`MFSA` (JSON-able); the shared fields are MEA's."""

    d_h: int = 128
    alpha: float = 1e-2
    # L_sep = sep_batch x the per-sample mean of Eq. 13 (its printed sum at a batch of sep_batch,
    # the same weight at any batch size); 0: the printed sum, which grows with the batch size
    sep_batch: int = 64
    psa_layers: int = 5
    task_loss: str = "l1"
    fusion_heads: int = 8  # where the paper is silent: Sec. 4.2's heads (10 on MOSEI) do not divide d_h

    WHAT: ClassVar[str] = "MFSA configuration"
    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = SEC_4_2
    PRESET_SOURCE: ClassVar[str] = (
        "MFSA (ACM MM 2022) Sec. 4.2; kernel sizes from MEA (IEEE TCSVT) Table I"
    )

    def problems(self) -> list[str]:
        out = super().problems()
        if self.sep_batch < 0:
            out.append("sep_batch must be 0 (Eq. 13's sum as printed) or a positive batch size")
        if self.fusion_heads < 1 or self.d_h % self.fusion_heads:
            out.append(f"d_h={self.d_h} must be divisible by fusion_heads={self.fusion_heads}")
        return out
