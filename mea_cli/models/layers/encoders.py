"""Exclusive and agnostic encoders (Sec. III-E1, Eq. 11-12).

``h^e_m = S_m(Z^e_m; theta_m)`` with separate parameters per modality (Eq. 11) and
``h^a_m = A(Z^a_m; theta_A)`` with one set shared by all modalities (Eq. 12); both are
"two-layer perceptrons with the GeLU activation" mapping to ``d_h``.

The paper maps a sequence ``Z [T, d]`` to a vector ``h in R^{d_h}`` without saying how time is
removed. We pool first, with a *masked* mean over the real steps (never "the last step", which
only works for left-padded data), then apply ``Linear(d, d_h) -> GeLU -> Dropout ->
Linear(d_h, d_h)``. A zero-length sequence pools to zeros.
"""

from __future__ import annotations

import torch
from torch import nn

from mea_cli.models.core.masking import masked_mean


class SequenceEncoder(nn.Module):
    """Masked mean over time, then a two-layer GeLU perceptron to ``d_h``."""

    def __init__(self, d: int, d_h: int, dropout: float) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(d, d_h), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_h, d_h)
        )

    def forward(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``z [B, T, d]``, ``mask [B, T]`` -> ``h [B, d_h]``."""
        return self.mlp(masked_mean(z, mask))


class ExclusiveEncoders(nn.Module):
    """``S_m`` of Eq. 11: one :class:`SequenceEncoder` per modality."""

    def __init__(self, modalities: tuple[str, ...], d: int, d_h: int, dropout: float) -> None:
        super().__init__()
        self.enc = nn.ModuleDict({m: SequenceEncoder(d, d_h, dropout) for m in modalities})

    def forward(
        self, zs: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        return {m: enc(zs[m], masks[m]) for m, enc in self.enc.items()}


class AgnosticEncoder(nn.Module):
    """``A`` of Eq. 12: one :class:`SequenceEncoder` shared by all modalities."""

    def __init__(self, d: int, d_h: int, dropout: float) -> None:
        super().__init__()
        self.enc = SequenceEncoder(d, d_h, dropout)

    def forward(
        self, zs: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        return {m: self.enc(z, masks[m]) for m, z in zs.items()}
