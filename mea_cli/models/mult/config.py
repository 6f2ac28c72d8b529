"""MulT's configuration (``MulTConfig``): the model rows of Table 5 of Tsai et al. (ACL 2019)
as per-dataset presets, and its dropout and pooling choices."""

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

TABLE_5: dict[str, dict[str, Any]] = {
    # CMU-MOSI: the paper's text kernel is "1 or 3"; we take 3 (our choice, see below)
    "mosi": dict(
        heads=10, kernel_sizes=(3, 3, 3), text_dropout=0.2, attn_dropout=0.2, out_dropout=0.1
    ),
    # CMU-MOSEI: text kernel "1 or 3", 3 taken
    "mosei": dict(
        heads=8, kernel_sizes=(3, 3, 3), text_dropout=0.3, attn_dropout=0.1, out_dropout=0.1
    ),
    "iemocap": dict(
        heads=10, kernel_sizes=(3, 3, 5), text_dropout=0.3, attn_dropout=0.25, out_dropout=0.1
    ),
}
"""The per-dataset model rows of Table 5 of Tsai et al. (2019) ("Hyperparameters of MulT we use
for the various tasks"): attention heads, temporal-convolution kernel sizes L/V/A, textual
embedding dropout, crossmodal attention block dropout, output dropout. ``d = 40`` and 4
crossmodal blocks are common to the three columns (the field defaults). The training rows of
Table 5 (batch size 128 / 16 / 32, learning rate 1e-3 / 1e-3 / 2e-3, epochs 100 / 20 / 30,
gradient clip 0.8 / 1.0 / 0.8, Adam) are training hyper-parameters: they live in
``paper_mult.json`` beside this module. The text kernel of MOSEI and MOSI is printed "1 or 3"; we use 3
for the unaligned setting this toolkit trains (Sec. 3.1 motivates the temporal convolution by
each element's awareness of its neighbours, which a kernel of 1 lacks)."""


def _preset_rows() -> dict[str, dict[str, Any]]:
    """:data:`TABLE_5` as config presets: the one crossmodal attention dropout of the paper
    feeds the three per-source arguments of the code, and the code drives the embedding dropout
    from the text-dropout argument, so the presets do the same."""
    rows = {}
    for ds, row in TABLE_5.items():
        rows[ds] = dict(
            row,
            attn_dropout_vision=row["attn_dropout"],
            attn_dropout_audio=row["attn_dropout"],
            embed_dropout=row["text_dropout"],
        )
    return rows


POOLING: tuple[str, ...] = ("last", "mean")
DROPOUTS: tuple[str, ...] = (
    "text_dropout",
    "attn_dropout",
    "attn_dropout_vision",
    "attn_dropout_audio",
    "out_dropout",
    "embed_dropout",
    "relu_dropout",
    "res_dropout",
)
"""Every dropout rate of :class:`MulTConfig`."""


@dataclass(frozen=True)
class MulTConfig(ModelConfig):
    """Everything needed to build :class:`MulT` (JSON-able); presets from :data:`TABLE_5`.

    Table 5 fields: ``d``, ``layers`` (crossmodal blocks D), ``heads``, ``kernel_sizes``
    (L/V/A), ``text_dropout`` (textual embedding dropout), ``attn_dropout`` and the per-source
    ``attn_dropout_vision`` / ``attn_dropout_audio`` (crossmodal attention block dropout: one
    value in the paper, three arguments in the code keyed by the *source* modality, as
    :attr:`source_attn_dropout` says; all three set to the paper's value; ``attn_dropout`` also
    drives every memory, as in the code),
    ``out_dropout`` (output dropout). Batch size, epochs, learning rate and the gradient clip of
    Table 5 are training settings (``paper_mult.json``).

    Not in the paper, from the public code: ``embed_dropout`` (dropout on every transformer's
    embedded input; the code drives it and the text dropout from one argument, so the presets
    give it the text value), ``memory_layers`` (the code builds ``max(D, 3)`` = 4),
    ``relu_dropout`` and ``res_dropout`` (code defaults, 0.1). Ours: ``pool`` ("last": the last
    real step, the code's intent; "mean": masked mean), ``causal`` (the future mask in every
    transformer, on: the code's default ``--attn_mask`` and MMSA's ``attn_mask: true``, which every
    published MulT number used; the paper describes none; ours is defined on real lengths, see
    :func:`~mea_cli.models.mult.crossmodal.future_mask`), ``task_loss`` (L1, the code's regression
    loss).

    Execution only, the same numbers either way (``docs/models/mult.md``, "Efficiency"):
    ``attn_group_budget`` (map entries per length group of the attention; 0: no groups) and
    ``attn_saved_mib`` (CPU training: a step that would keep more than this many MiB of
    attention maps for its backward pass keeps none, recomputing the dropout ones and running
    the fused kernel for the rest; 0: never keep a map; :meth:`MulT.saved_attention_bytes`).
    """

    # Table 5 (MOSI column as the defaults)
    d: int = 40
    layers: int = 4
    heads: int = 10
    kernel_sizes: tuple[int, ...] = (3, 3, 3)
    text_dropout: float = 0.2
    attn_dropout: float = 0.2
    attn_dropout_vision: float = 0.2
    attn_dropout_audio: float = 0.2
    out_dropout: float = 0.1
    # from the public code
    embed_dropout: float = 0.2
    memory_layers: int = 4
    relu_dropout: float = 0.1
    res_dropout: float = 0.1
    # our choices
    pool: str = "last"
    causal: bool = True
    task_loss: str = "l1"
    # execution only (the same numbers either way; docs/performance.md)
    attn_group_budget: int = 1 << 20
    attn_saved_mib: int = 4096

    WHAT: ClassVar[str] = "MulT configuration"
    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = _preset_rows()
    PRESET_SOURCE: ClassVar[str] = (
        "MulT (Tsai et al., ACL 2019) Table 5; memory depth and embedding dropout from the "
        "public code (yaohungt/Multimodal-Transformer)"
    )

    def problems(self) -> list[str]:
        out = super().problems()
        out += kernel_problems(self.kernel_sizes)
        if self.d < 1 or self.heads < 1 or self.d % self.heads:
            out.append(f"d={self.d} must be a positive multiple of heads={self.heads}")
        out += layer_problems({"layers": self.layers, "memory_layers": self.memory_layers})
        bad = [k for k in DROPOUTS if not 0.0 <= getattr(self, k) < 1.0]
        if bad:
            out.append(f"{', '.join(bad)} must lie in [0, 1)")
        if self.attn_group_budget < 0:
            out.append("attn_group_budget must be 0 (off) or a positive number of map entries")
        if self.attn_saved_mib < 0:
            out.append("attn_saved_mib must be 0 (never keep a map) or a positive size in MiB")
        out += choice_problems("pool", self.pool, POOLING)
        out += choice_problems("task_loss", self.task_loss, TASK_LOSSES)
        return out

    @property
    def kernel(self) -> dict[str, int]:
        """Kernel size per modality (Table 5's L/V/A)."""
        return kernel_by_modality(self.kernel_sizes)

    @property
    def source_attn_dropout(self) -> dict[str, float]:
        """Attention dropout of the crossmodal transformers *from* each source modality, keyed
        as the public code's ``get_network`` and MMSA key it: "text with audio" (audio -> text)
        and "vision with audio" use ``attn_dropout_audio`` (the code's ``attn_dropout_a``), the
        two from vision ``attn_dropout_vision``, the two from text ``attn_dropout``."""
        return {
            "text": self.attn_dropout,
            "vision": self.attn_dropout_vision,
            "audio": self.attn_dropout_audio,
        }
