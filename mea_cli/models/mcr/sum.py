"""MCR's source modality update module (SUM, MCR paper Sec. 3.4, Eq. 12-16).

Between reinforcement layers ``i`` and ``i + 1``, each source copy ``Z_s`` is updated under the
supervision of the reinforced *target stream of the same modality* ``Z_t^{[i+1]}`` (Eq. 13 adds
``Ẑ_s W`` and ``Z_t W``, which only type-checks when ``T_t = T_s``, i.e. ``t = s``)::

    Ẑ_s          = F_s(Z_s)                                            self-update (Eq. 12)
    mu_s         = sigma(Ẑ_s Ŵ_s + Z_t W_t + b̂_s + b_t)                 Eq. 13
    Z_s^{[i+1]}  = (1 - mu_s) ⊙ tanh(Z_t) + mu_s ⊙ Ẑ_s                  Eq. 14 (selective memory)
    phi_t        = sigma([Z_s1, Z_s2]^{[i+1]} W + b)                   Eq. 15 (per target t)
    Z_ds^{[i+1]} = phi_t ⊙ tanh([Z_s1, Z_s2]^{[i+1]})                   Eq. 16

Decisions (``docs/models/mcr.md``):

* ``F_s`` ("a feed-forward layer") is MEA's position-wise FFN with a pre-LN skip connection,
  ``Ẑ_s = Z_s + FFN(LN(Z_s))`` ("self-updating of the representation").
* **Position-wise biases.** ``b̂_s, b_t in R^{T_s x d}`` and ``b in R^{(T_s1 + T_s2) x d}`` tie
  parameters to fixed lengths. Default (length-agnostic): one ``d`` bias each, the same at every
  step (a standard ``Linear`` bias). ``sum_literal=True`` keeps one bias row per step up to fixed
  maximum lengths (``b`` as two blocks, one per source of the concatenation, so that a step keeps
  its row whatever the padding); longer sequences are refused.
* Modes (Table 5): ``"smm"`` (the full SUM), ``"add"`` (SUM w/o SMM: "the input features are
  merged by the element-wise sum", ``Z_s^{[i+1]} = Ẑ_s + Z_t``; Eq. 15-16 kept), ``"ffl"``
  (High-level Feature: only the stacked feed-forward layer, ``Z_s^{[i+1]} = Ẑ_s`` and
  ``Z_ds = [Z_s1, Z_s2]``). ``combine=False`` drops Eq. 15-16 (when no SCU reads ``Z_ds``).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from mea_cli.errors import MeaError
from mea_cli.models.core.masking import apply_mask
from mea_cli.models.layers.attention import SkipFeedForward

SUM_MODES: tuple[str, ...] = ("smm", "add", "ffl")


class PositionBias(nn.Module):
    """A bias that is one ``d`` row (length-agnostic) or one row per step up to ``max_len``."""

    def __init__(self, d: int, max_len: int | None, name: str) -> None:
        super().__init__()
        self.name = name
        self.max_len = max_len
        self.bias = nn.Parameter(torch.zeros(max_len or 1, d))

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        """The bias for a ``[B, T]`` batch, ``[T, d]`` (or ``[1, d]``): zero rows beyond
        ``max_len`` only ever meet padded steps."""
        if self.max_len is None:
            return self.bias
        longest = int(mask.sum(dim=1).max()) if mask.numel() else 0
        if longest > self.max_len:
            raise MeaError(
                f"the literal position-wise SUM biases (sum_literal) cover at most "
                f"{self.max_len} {self.name} steps, but a sample has {longest}; raise "
                f"literal_lengths or use the default length-agnostic form"
            )
        t = mask.shape[1]
        rows = self.bias[:t]
        if t > self.max_len:
            rows = torch.cat([rows, rows.new_zeros(t - self.max_len, rows.shape[1])])
        return rows


class SelectiveMemory(nn.Module):
    """Eq. 13-14 for one source modality: the gate ``mu_s`` and its interpolation."""

    def __init__(self, d: int, max_len: int | None, name: str) -> None:
        super().__init__()
        self.w_source = nn.Linear(d, d, bias=False)  # Ŵ_s
        self.w_target = nn.Linear(d, d, bias=False)  # W_t
        self.b_source = PositionBias(d, max_len, name)  # b̂_s
        self.b_target = PositionBias(d, max_len, name)  # b_t

    def gate(self, updated: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``mu_s`` of Eq. 13, ``[B, T, d]``."""
        return torch.sigmoid(
            self.w_source(updated) + self.w_target(target) + self.b_source(mask) + self.b_target(mask)
        )

    def forward(self, updated: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        mu = self.gate(updated, target, mask)
        return (1.0 - mu) * torch.tanh(target) + mu * updated  # Eq. 14


class Combine(nn.Module):
    """Eq. 15-16 for one target: ``phi ⊙ tanh([Z_s1, Z_s2])``."""

    def __init__(self, d: int, max_lens: tuple[int, int] | None, names: tuple[str, str]) -> None:
        super().__init__()
        self.w = nn.Linear(d, d, bias=False)
        lens = max_lens or (None, None)
        self.b = nn.ModuleList(PositionBias(d, n, name) for n, name in zip(lens, names, strict=True))

    def forward(
        self, z1: torch.Tensor, m1: torch.Tensor, z2: torch.Tensor, m2: torch.Tensor
    ) -> torch.Tensor:
        cat = torch.cat([z1, z2], dim=1)
        bias = torch.cat(
            [self.b[0](m1).expand(z1.shape[1], -1), self.b[1](m2).expand(z2.shape[1], -1)]
        )
        phi = torch.sigmoid(self.w(cat) + bias)  # Eq. 15
        return phi * torch.tanh(cat)  # Eq. 16


class SourceUpdate(nn.Module):
    """``SUM^{[i]}``: every source modality updated, every target's ``Z_ds`` rebuilt.

    ``sources_of`` maps each reinforced target to its two sources (``(m, m)`` in the
    single-modality rows of Table 5); ``literal_lengths`` (per modality) turns on the
    position-wise biases.
    """

    def __init__(
        self,
        sources_of: Mapping[str, tuple[str, str]],
        d: int,
        ffn_mult: int,
        dropout: float,
        mode: str = "smm",
        combine: bool = True,
        literal_lengths: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__()
        if mode not in SUM_MODES:
            raise ValueError(f"SUM mode must be one of {SUM_MODES}, not {mode!r}")
        self.mode = mode
        self.sources_of = dict(sources_of)
        updated = sorted({s for pair in self.sources_of.values() for s in pair})
        lens = dict(literal_lengths) if literal_lengths else None

        def max_len(m: str) -> int | None:
            return None if lens is None else lens[m]

        self.update = nn.ModuleDict({s: SkipFeedForward(d, ffn_mult, dropout) for s in updated})
        self.gate = (
            nn.ModuleDict({s: SelectiveMemory(d, max_len(s), s) for s in updated})
            if mode == "smm"
            else None
        )
        self.combine = (
            nn.ModuleDict(
                {
                    t: Combine(d, None if lens is None else (lens[a], lens[b]), (a, b))
                    for t, (a, b) in self.sources_of.items()
                }
            )
            if combine and mode != "ffl"
            else None
        )

    def forward(
        self,
        sources: Mapping[str, torch.Tensor],
        targets: Mapping[str, torch.Tensor],
        masks: Mapping[str, torch.Tensor],
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """``(Z_s^{[i+1]} per source modality, Z_ds^{[i+1]} per target)``; sources that no
        target uses are passed through unchanged."""
        new = dict(sources)
        for s, block in self.update.items():
            z, mask = sources[s], masks[s]
            hat = block(z)  # Ẑ_s = F_s(Z_s)
            if self.gate is not None:
                out = self.gate[s](hat, targets[s], mask)  # Eq. 13-14
            elif self.mode == "add":
                out = hat + targets[s]
            else:  # ffl
                out = hat
            new[s] = apply_mask(out, mask)
        ds = {}
        for t, (a, b) in self.sources_of.items():
            if self.combine is not None:
                z = self.combine[t](new[a], masks[a], new[b], masks[b])  # Eq. 15-16
                ds[t] = apply_mask(z, torch.cat([masks[a], masks[b]], dim=1))
            else:
                ds[t] = torch.cat([new[a], new[b]], dim=1)
        return new, ds
