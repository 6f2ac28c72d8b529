"""MEA's ablation switches: the rows of Table V, each defined once in :data:`SWITCHES`.

A switch *removes* a part where the paper removes a module (fewer parameters, a different
graph), and removes a loss term where the paper drops a constraint; each declares what it
changes (the contract test checks it). :func:`parts` is the one place that turns a set of
switch names into what the model builds; :class:`MEA` reads only that. The switches are MEA's
own: they are registered with MEA (``register_model("mea", ..., switches=SWITCHES)``), not
global.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mea_cli.models.core.contract import Switch, SwitchSet
from mea_cli.models.mea.branches import Stacks, stack_capabilities, stack_parts

SWITCHES = SwitchSet(
    (
        Switch(
            "dis",
            "w/o Disparity Constraint L_dis",
            "drop the HSIC term alpha*L_dis (Eq. 14)",
            drops_losses=("dis",),
        ),
        Switch(
            "sep",
            "w/ Separation Constraint L_sep",
            "replace L_dis by L_sep in the batch-matrix form of DSN / MISA (not MFSA's per-sample "
            "Eq. 13)",
            drops_losses=("dis",),
            adds_losses=("sep",),
        ),
        Switch(
            "adv",
            "w/o Adversarial Constraints L_agn + L_exc",
            "remove both discriminators and L_agn, L_exc",
            removes=("discriminators.*",),
            drops_losses=("agn", "exc", "imp"),
        ),
        Switch(
            "omega",
            "w/o Degree omega_m^a",
            "remove the importance discriminator D_i; omega = 1 in L_agn",
            removes=("discriminators.importance.*",),
            drops_losses=("imp",),
        ),
        Switch(
            "exclusive",
            "w/o Modality-Exclusive",
            "remove the PSA branch and exclusive encoders; fuse h^a only",
            removes=("psa.*", "wal.*", "exclusive.*"),
            drops_losses=("dis", "exc"),
            drops_outputs=("reps.exclusive", "psi", "attention.psa"),
        ),
        Switch(
            "agnostic",
            "w/o Modality-Agnostic",
            "remove the HCA branch and agnostic encoder; fuse h^e only",
            removes=("hca.*", "agnostic.*", "discriminators.importance.*"),
            drops_losses=("dis", "agn", "imp"),
            drops_outputs=("reps.agnostic", "attention.hca"),
        ),
        Switch(
            "psa",
            "w/o PSA Module",
            "remove the PSA layers (and their WALs); Z^e = Z",
            removes=("psa.*", "wal.*"),
            drops_outputs=("psi", "attention.psa"),
        ),
        Switch(
            "chain",
            "w/o Prediction Chain",
            "remove the Conv2d attention prediction; plain self-attention",
            removes=("psa.*.chain.*",),
        ),
        Switch(
            "wal",
            "w/o Weighted Attention Layer",
            "remove the WAL after each PSA layer",
            removes=("wal.*",),
            drops_outputs=("psi",),
        ),
        Switch(
            "hca",
            "w/o HCA Module",
            "remove the HCA layers; Z^a = Z",
            removes=("hca.*",),
            drops_outputs=("attention.hca",),
        ),
        Switch(
            "mru-mixed",
            "w/o MRU (Mixed-grained)",
            "remove the mixed-grained MRU of every HCA layer",
            removes=("hca.*.mixed.*",),
        ),
        Switch(
            "mru-coarse",
            "w/o MRU (Coarse-grained)",
            "remove the coarse-grained MRU of every HCA layer",
            removes=("hca.*.coarse.*",),
        ),
        Switch(
            "mru-fine",
            "w/o MRU (Fine-grained)",
            "remove the fine-grained MRUs of every HCA layer",
            removes=("hca.*.fine.*",),
        ),
        Switch(
            "dgf",
            "w/o Decoupled Graph Fusion Mechanism",
            "concatenate the six vectors instead of DGF",
            removes=("fusion.gnn.*",),
            drops_outputs=("xi",),
        ),
        Switch(
            "add",
            "w/ Feature Addition",
            "sum each graph's vectors instead of DGF",
            removes=("fusion.gnn.*",),
            drops_outputs=("xi",),
        ),
        Switch(
            "mul",
            "w/ Feature Multiplication",
            "multiply each graph's vectors instead of DGF",
            removes=("fusion.gnn.*",),
            drops_outputs=("xi",),
        ),
    ),
    exclusive_groups=(
        frozenset({"dgf", "add", "mul"}),
        frozenset({"dis", "sep"}),
        frozenset({"exclusive", "agnostic"}),
    ),
)
"""Every Table V row, in the paper's order."""


@dataclass(frozen=True)
class Parts(Stacks):
    """What the model builds and which loss terms it computes, derived from the switches
    (the PSA / WAL / HCA fields are :class:`~mea_cli.models.mea.branches.Stacks`')."""

    exclusive: bool
    agnostic: bool
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
    """The single mapping from Table V switches to model structure (names already checked
    by the config)."""
    off = set(ablations)
    exclusive = "exclusive" not in off
    agnostic = "agnostic" not in off
    both = exclusive and agnostic
    adversarial = "adv" not in off
    disparity = None if "dis" in off else ("sep" if "sep" in off else "hsic")
    fusion = next(
        (f for f, s in (("concat", "dgf"), ("add", "add"), ("mul", "mul")) if s in off), "dgf"
    )
    return Parts(
        **stack_parts(off, exclusive, agnostic),
        exclusive=exclusive,
        agnostic=agnostic,
        disparity=disparity if both else None,
        adversarial=adversarial,
        importance=adversarial and agnostic and "omega" not in off,
        fusion=fusion,
    )


def capabilities(cfg: object) -> set[str]:
    """What an MEA built from ``cfg`` provides (:data:`mea_cli.models.core.contract.CAPABILITIES`):
    h^e / h^a always (at least one branch stays), psi only with the WAL, PSA maps only with
    the PSA layers."""
    return stack_capabilities(parts(getattr(cfg, "ablations", ())))
