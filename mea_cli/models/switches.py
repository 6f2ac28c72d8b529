"""Table V of the MEA paper as named switches, each defined on one line in :data:`SWITCHES`.

A switch *removes* a part where the paper removes a module (fewer parameters, a different
graph), and removes a loss term where the paper drops a constraint. :func:`parts` is the one
place that turns a set of switch names into what the model builds; :class:`MEA` reads only that.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mea_cli.errors import MeaError


@dataclass(frozen=True)
class Switch:
    """One Table V row: ``name`` (CLI), ``table_row`` (the paper's label), what it does."""

    name: str
    table_row: str
    description: str


_ROWS = (
    Switch("dis", "w/o Disparity Constraint L_dis", "drop the HSIC term alpha*L_dis (Eq. 14)"),
    Switch("sep", "w/ Separation Constraint L_sep", "replace L_dis by MFSA's orthogonality L_sep"),
    Switch(
        "adv",
        "w/o Adversarial Constraints L_agn + L_exc",
        "remove both discriminators and L_agn, L_exc",
    ),
    Switch(
        "omega",
        "w/o Degree omega_m^a",
        "remove the importance discriminator D_i; omega = 1 in L_agn",
    ),
    Switch(
        "exclusive",
        "w/o Modality-Exclusive",
        "remove the PSA branch and exclusive encoders; fuse h^a only",
    ),
    Switch(
        "agnostic",
        "w/o Modality-Agnostic",
        "remove the HCA branch and agnostic encoder; fuse h^e only",
    ),
    Switch("psa", "w/o PSA Module", "remove the PSA layers (and their WALs); Z^e = Z"),
    Switch(
        "chain",
        "w/o Prediction Chain",
        "remove the Conv2d attention prediction; plain self-attention",
    ),
    Switch("wal", "w/o Weighted Attention Layer", "remove the WAL after each PSA layer"),
    Switch("hca", "w/o HCA Module", "remove the HCA layers; Z^a = Z"),
    Switch(
        "mru-mixed", "w/o MRU (Mixed-grained)", "remove the mixed-grained MRU of every HCA layer"
    ),
    Switch(
        "mru-coarse", "w/o MRU (Coarse-grained)", "remove the coarse-grained MRU of every HCA layer"
    ),
    Switch("mru-fine", "w/o MRU (Fine-grained)", "remove the fine-grained MRUs of every HCA layer"),
    Switch(
        "dgf", "w/o Decoupled Graph Fusion Mechanism", "concatenate the six vectors instead of DGF"
    ),
    Switch("add", "w/ Feature Addition", "sum each graph's vectors instead of DGF"),
    Switch("mul", "w/ Feature Multiplication", "multiply each graph's vectors instead of DGF"),
)
SWITCHES: dict[str, Switch] = {s.name: s for s in _ROWS}
"""Every Table V row, in the paper's order."""

_EXCLUSIVE_GROUPS: tuple[frozenset[str], ...] = (
    frozenset({"dgf", "add", "mul"}),
    frozenset({"dis", "sep"}),
    frozenset({"exclusive", "agnostic"}),
)


class AblationError(MeaError):
    """An unknown switch name or an impossible combination of switches."""


def validate(names: Iterable[str]) -> tuple[str, ...]:
    """Check switch names; return them unique, in Table V order (MeaError otherwise)."""
    given = [str(n).strip() for n in names if str(n).strip()]
    unknown = sorted(set(given) - set(SWITCHES))
    if unknown:
        raise AblationError(
            f"unknown ablation switch {', '.join(unknown)}; valid switches: {', '.join(SWITCHES)}"
        )
    chosen = set(given)
    for group in _EXCLUSIVE_GROUPS:
        clash = sorted(chosen & group)
        if len(clash) > 1:
            raise AblationError(
                f"ablation switches {' and '.join(clash)} cannot be combined "
                f"(they are alternative rows of Table V)"
            )
    return tuple(n for n in SWITCHES if n in chosen)


def apply_switches(cfg: Any, names: Iterable[str]) -> Any:
    """Return a copy of the config ``cfg`` with ``names`` added to ``cfg.ablations``."""
    return dataclasses.replace(cfg, ablations=validate((*cfg.ablations, *names)))


@dataclass(frozen=True)
class Parts:
    """What the model builds and which loss terms it computes, derived from the switches."""

    exclusive: bool
    agnostic: bool
    psa: bool
    chain: bool
    wal: bool
    hca: bool
    mru_mixed: bool
    mru_coarse: bool
    mru_fine: bool
    disparity: str | None  # "hsic", "sep" or None
    adversarial: bool
    importance: bool
    fusion: str  # "dgf", "concat", "add" or "mul"

    @property
    def loss_terms(self) -> tuple[str, ...]:
        """Names of the loss terms the model reports (beside the total)."""
        terms = ["task"]
        if self.disparity == "hsic":
            terms.append("dis")
        elif self.disparity == "sep":
            terms.append("sep")
        if self.adversarial:
            if self.agnostic:
                terms.append("agn")
                if self.importance:
                    terms.append("imp")
            if self.exclusive:
                terms.append("exc")
        return tuple(terms)


def parts(ablations: Iterable[str]) -> Parts:
    """The single mapping from Table V switches to model structure."""
    off = set(validate(ablations))
    exclusive = "exclusive" not in off
    agnostic = "agnostic" not in off
    psa = exclusive and "psa" not in off
    hca = agnostic and "hca" not in off
    both = exclusive and agnostic
    adversarial = "adv" not in off
    disparity = None if "dis" in off else ("sep" if "sep" in off else "hsic")
    fusion = next(
        (f for f, s in (("concat", "dgf"), ("add", "add"), ("mul", "mul")) if s in off), "dgf"
    )
    return Parts(
        exclusive=exclusive,
        agnostic=agnostic,
        psa=psa,
        chain=psa and "chain" not in off,
        wal=psa and "wal" not in off,
        hca=hca,
        mru_mixed=hca and "mru-mixed" not in off,
        mru_coarse=hca and "mru-coarse" not in off,
        mru_fine=hca and "mru-fine" not in off,
        disparity=disparity if both else None,
        adversarial=adversarial,
        importance=adversarial and agnostic and "omega" not in off,
        fusion=fusion,
    )
