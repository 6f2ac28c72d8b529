"""The MEA configuration (``MEAConfig``): the model rows of Table I as per-dataset presets.

Table I of the paper (hyper-parameters chosen on each validation set)::

    setting            MOSI   MOSEI  IEMOCAP
    batch size         32     64     32       -> training preset (paper_mea.json)
    epochs             60     100    60       -> training preset
    hidden d           40     40     40
    output d_h         64     64     64
    learning rate      1e-3   2e-3   1e-3     -> training preset
    attention heads    8      10     8
    kernel L/V/A       3/3/3  3/3/3  3/3/5
    mu                 0.25   0.15   0.2
    alpha              2e-2   3e-2   1e-2
    beta               3e-2   5e-2   2e-2

plus ``M = 3`` PSA layers and ``N = 2`` HCA layers (Sec. IV-B). The training rows (batch size,
epochs, learning rate) are training hyper-parameters and live in the training presets; every
other row is a field here. The remaining fields are our choices where the paper is silent
(dropout, FFN width, gradient-reversal strength, DGF self-loops, the task loss, the WAL form
and where its weights act, the Eq. 2 form); ``docs/model.md`` lists them.

The fields MEA shares with MFSA (its conference version: same extractor, PSA + WAL, HCA,
encoders, discriminators) live in :class:`MEAFamilyConfig`, which both models' configs subclass;
``MEAConfig`` adds what is MEA's own (DGF).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from mea_cli.models.core.contract import (
    ModelConfig,
    choice_problems,
    kernel_by_modality,
    kernel_problems,
    layer_problems,
)
from mea_cli.models.core.losses import TASK_LOSSES
from mea_cli.models.layers.encoders import POOLINGS
from mea_cli.models.mea.dgf import ABSENT
from mea_cli.models.mea.wal import WAL_SCALINGS

TABLE_I: dict[str, dict[str, Any]] = {
    "mosi": dict(heads=8, kernel_sizes=(3, 3, 3), mu=0.25, alpha=2e-2, beta=3e-2),
    "mosei": dict(heads=10, kernel_sizes=(3, 3, 3), mu=0.15, alpha=3e-2, beta=5e-2),
    "iemocap": dict(heads=8, kernel_sizes=(3, 3, 5), mu=0.2, alpha=1e-2, beta=2e-2),
}
"""The per-dataset model rows of Table I (``d = 40``, ``d_h = 64``, ``M = 3``, ``N = 2`` are
the field defaults, common to all three)."""

LEGACY_FIELDS: tuple[str, ...] = ("batch_size", "epochs", "lr")
"""Training fields that MEA configs held before 0.2 (now in the training presets): ignored
when an older checkpoint or run is read, so that it still loads."""


@dataclass(frozen=True)
class MEAFamilyConfig(ModelConfig):
    """The fields MEA and MFSA (its conference version) share: the same uni-modal extractor,
    PSA + WAL, HCA, encoders, discriminators and loss weights (MEA Eq. 1-16, 20; MFSA Eq. 1-16).

    Each model subclasses it with its own defaults and presets (:class:`MEAConfig` here,
    :class:`mea_cli.models.mea.mfsa_config.MFSAConfig`); the shared modules are built from these fields
    (:mod:`mea_cli.models.mea.branches`).
    """

    # the papers' hyper-parameters (MEA Table I; MFSA Sec. 4.2)
    d: int = 40
    d_h: int = 64
    heads: int = 8
    kernel_sizes: tuple[int, ...] = (3, 3, 3)
    mu: float = 0.25
    alpha: float = 2e-2
    beta: float = 3e-2
    psa_layers: int = 3
    hca_layers: int = 2
    # where the papers are silent
    dropout: float = 0.1
    attn_dropout: float = 0.0
    ffn_mult: int = 4
    pooling: str = "mean"  # the encoders' pooling over time (Eq. 11-12; decision 7)
    task_loss: str = "mse"
    grl_lambda: float = 1.0
    wal_literal: bool = False
    wal_max_len: int = 50
    wal_scaling: str = "paper"
    psa_literal_eq2: bool = False
    # execution only (the same numbers either way; docs/performance.md)
    attn_group_budget: int = 1 << 20
    checkpoint_psa: bool = True
    checkpoint_hca: bool = False

    def problems(self) -> list[str]:
        out = super().problems()
        out += kernel_problems(self.kernel_sizes)
        if self.d < 2 or self.d % 2:
            out.append(f"d must be even (two LSTM directions of d/2), not {self.d}")
        if self.heads < 1 or self.d % self.heads:
            out.append(f"d={self.d} must be divisible by heads={self.heads}")
        if not 0.0 <= self.mu <= 1.0:
            out.append(f"mu must lie in [0, 1], not {self.mu}")
        out += layer_problems(
            {"psa_layers": self.psa_layers, "hca_layers": self.hca_layers},
            " (use the psa / hca switches to remove them)",
        )
        if self.d_h < 1 or self.ffn_mult < 1 or self.wal_max_len < 1:
            out.append("d_h, ffn_mult and wal_max_len must be positive")
        if not (0.0 <= self.dropout < 1.0 and 0.0 <= self.attn_dropout < 1.0):
            out.append("dropout and attn_dropout must lie in [0, 1)")
        if self.attn_group_budget < 0:
            out.append("attn_group_budget must be 0 (off) or a positive number of map entries")
        out += choice_problems("wal_scaling", self.wal_scaling, WAL_SCALINGS)
        out += choice_problems("pooling", self.pooling, POOLINGS)
        out += choice_problems("task_loss", self.task_loss, TASK_LOSSES)
        return out

    @property
    def kernel(self) -> dict[str, int]:
        """Kernel size per modality (Table I's L/V/A)."""
        return kernel_by_modality(self.kernel_sizes)


@dataclass(frozen=True)
class MEAConfig(MEAFamilyConfig):
    """Everything needed to build an :class:`mea_cli.models.mea.model.MEA` (JSON-able)."""

    dgf_self_loops: bool = False  # where the paper is silent (docs/model.md decision 10)
    fusion_absent: str = "keep"  # "drop": an empty modality is no node of its sample's graphs

    WHAT: ClassVar[str] = "MEA configuration"
    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = TABLE_I
    PRESET_SOURCE: ClassVar[str] = "MEA (IEEE TCSVT) Table I and Sec. IV-B"

    def problems(self) -> list[str]:
        return super().problems() + choice_problems("fusion_absent", self.fusion_absent, ABSENT)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MEAConfig:
        """Inverse of :meth:`to_dict`; the :data:`LEGACY_FIELDS` of older files are dropped."""
        return super().from_dict({k: v for k, v in data.items() if k not in LEGACY_FIELDS})
