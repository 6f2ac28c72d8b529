"""MFSA's ablation switches: the rows of Table 4, each defined once in :data:`SWITCHES`.

As for MEA (:mod:`mea_cli.models.mea.switches`): :func:`parts` is the one place that turns a
set of switch names into what :class:`~mea_cli.models.mea.mfsa.MFSA` builds; the switches are
registered with MFSA (``register_model("mfsa", ..., switches=SWITCHES)``), not global.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mea_cli import MODALITIES
from mea_cli.models.core.contract import Switch, SwitchSet
from mea_cli.models.mea.branches import STACK_SWITCHES, Stacks, stack_capabilities, stack_parts
from mea_cli.models.mea.switches import SWITCHES as MEA_SWITCHES

SWITCHES = SwitchSet(
    (
        Switch(
            "sep",
            "w/o L_sep",
            "drop the orthogonality term alpha*L_sep (Eq. 13)",
            drops_losses=("sep",),
        ),
        Switch(
            "adv",
            "w/o L_agn + L_spe",
            "remove both discriminators and L_agn, L_spe (Eq. 14-15)",
            removes=("discriminators.*",),
            drops_losses=("agn", "spe", "imp"),
        ),
        Switch(
            "specific",
            "w/o Modality-Specific",
            "remove the PSA branch and specific encoders; fuse the three h^a only",
            removes=("psa.*", "wal.*", "specific.*"),
            drops_losses=("sep", "spe"),
            drops_outputs=("reps.exclusive", "psi", "attention.psa"),
        ),
        Switch(
            "agnostic",
            "w/o Modality-Agnostic",
            "remove the HCA branch, agnostic encoder and D_i; fuse the three h^s only",
            removes=("hca.*", "agnostic.*", "discriminators.importance.*"),
            drops_losses=("sep", "agn", "imp"),
            drops_outputs=("reps.agnostic", "attention.hca"),
        ),
        *(MEA_SWITCHES[name] for name in STACK_SWITCHES),  # the rows both tables share
    ),
    exclusive_groups=(frozenset({"specific", "agnostic"}),),
)
"""Every row of MFSA's Table 4 (ablations on CMU-MOSI), in the paper's order."""


@dataclass(frozen=True)
class MFSAParts(Stacks):
    """What an MFSA builds and which loss terms it computes, derived from its switches (the
    PSA / WAL / HCA fields are :class:`~mea_cli.models.mea.branches.Stacks`', as for MEA)."""

    specific: bool
    agnostic: bool
    sep: bool
    adversarial: bool

    @property
    def tokens(self) -> int:
        """How many ``d_h`` vectors the fusion layer sees (six, or three without a branch)."""
        return len(MODALITIES) * (int(self.specific) + int(self.agnostic))


def parts(ablations: Iterable[str]) -> MFSAParts:
    """The single mapping from Table 4 switches to model structure (names already checked)."""
    off = set(ablations)
    specific = "specific" not in off
    agnostic = "agnostic" not in off
    return MFSAParts(
        **stack_parts(off, specific, agnostic),
        specific=specific,
        agnostic=agnostic,
        sep=specific and agnostic and "sep" not in off,
        adversarial="adv" not in off,
    )


def capabilities(cfg: object) -> set[str]:
    """What an MFSA built from ``cfg`` provides: h^s / h^a always (one branch stays), psi only
    with the WAL, PSA self-attention maps only with the PSA layers."""
    return stack_capabilities(parts(getattr(cfg, "ablations", ())))
