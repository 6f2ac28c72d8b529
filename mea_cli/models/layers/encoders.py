"""Exclusive and agnostic encoders (Sec. III-E1, Eq. 11-12).

``h^e_m = S_m(Z^e_m; theta_m)`` with separate parameters per modality (Eq. 11) and
``h^a_m = A(Z^a_m; theta_A)`` with one set shared by all modalities (Eq. 12); both are
"two-layer perceptrons with the GeLU activation" mapping to ``d_h``.

The paper maps a sequence ``Z [T, d]`` to a vector ``h in R^{d_h}`` without saying how time is
removed. We pool first, over the real steps only (never "the last step", which only works for
left-padded data), then apply ``Linear(p, d_h) -> GeLU -> Dropout -> Linear(d_h, d_h)``. The
pooling (:data:`POOLINGS`) is a masked mean (``mean``, ``p = d``: the default, every paper
preset) or the mean and the standard deviation side by side (``stats``, ``p = 2d``: the
statistics pooling of speaker and emotion embeddings, which keeps how much a sequence varies,
not only its level; measured on Emo-DB and not used by any preset, docs/model.md decision 7).
A zero-length sequence pools to zeros.
"""

from __future__ import annotations

import torch
from torch import nn

from mea_cli.models.core.masking import masked_mean, masked_std

POOLINGS: tuple[str, ...] = ("mean", "stats")
"""How :class:`SequenceEncoder` removes time: ``mean`` (masked mean), ``stats`` (masked mean and
masked standard deviation, concatenated)."""


class SequenceEncoder(nn.Module):
    """Pooling over the real steps (:data:`POOLINGS`), then a two-layer GeLU perceptron to
    ``d_h``."""

    def __init__(self, d: int, d_h: int, dropout: float, pooling: str = "mean") -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, not {pooling!r}")
        self.pooling = pooling
        width = 2 * d if pooling == "stats" else d
        self.mlp = nn.Sequential(
            nn.Linear(width, d_h), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_h, d_h)
        )

    def pool(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``z [B, T, d]``, ``mask [B, T]`` -> ``[B, d]`` (``mean``) or ``[B, 2d]`` (``stats``:
        mean first, then standard deviation)."""
        mean = masked_mean(z, mask)
        if self.pooling == "mean":
            return mean
        return torch.cat([mean, masked_std(z, mask, mean=mean)], dim=-1)

    def forward(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``z [B, T, d]``, ``mask [B, T]`` -> ``h [B, d_h]``."""
        return self.mlp(self.pool(z, mask))


class ExclusiveEncoders(nn.Module):
    """``S_m`` of Eq. 11: one :class:`SequenceEncoder` per modality."""

    def __init__(
        self,
        modalities: tuple[str, ...],
        d: int,
        d_h: int,
        dropout: float,
        pooling: str = "mean",
    ) -> None:
        super().__init__()
        self.enc = nn.ModuleDict(
            {m: SequenceEncoder(d, d_h, dropout, pooling) for m in modalities}
        )

    def forward(
        self, zs: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        return {m: enc(zs[m], masks[m]) for m, enc in self.enc.items()}


class AgnosticEncoder(nn.Module):
    """``A`` of Eq. 12: one :class:`SequenceEncoder` shared by all modalities."""

    def __init__(self, d: int, d_h: int, dropout: float, pooling: str = "mean") -> None:
        super().__init__()
        self.enc = SequenceEncoder(d, d_h, dropout, pooling)

    def forward(
        self, zs: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        return {m: self.enc(z, masks[m]) for m, z in zs.items()}
