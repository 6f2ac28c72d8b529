"""FDMER's ablation switches: the rows of its Table 4, each defined once in :data:`SWITCHES`.

Each switch removes what its row removes and declares it (the contract test checks the
declaration): parameters it does not build, loss terms it drops or adds, outputs it empties.
:func:`parts` is the one place that turns switch names into what :class:`FDMER` builds.

Table 4 groups, and what each row changes here:

* *Importance of Modality* (``text``, ``audio``, ``vision``): the modality is not read at all
  (no transformer, projection, private encoder or fusion token); the common encoder, the
  constraints (one pair left) and the discriminator (two classes) run on the other two.
* *Importance of Regularization*: ``adv`` removes the modality discriminator and
  ``L_ami + L_ams``; ``con`` / ``dis`` drop ``L_con`` / ``L_dis``; ``ce`` replaces the
  angular-margin loss of Eq. 9 by the plain cross-entropy of Eq. 8's softmax (losses
  ``ami_ce``, ``ams_ce``: the same discriminator, another functional).
* *Importance of Representations*: ``common`` / ``private`` keep the representation learning
  (encoders and every loss) but fuse only the private / only the common representations, as
  the paper says; ``disentangle`` ("Non-Disentangled") removes the common and private encoders,
  their losses and the discriminator, and fuses the pooled transformer features directly.
* *Different Fusion Strategies*: ``cmaf`` concatenates the four representations instead of
  CMAF; ``phase1`` / ``phase2`` remove CMAF's cross-modal interaction / adaptive attention;
  ``add`` / ``mul`` fuse by element-wise sum / product.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mea_cli import MODALITIES
from mea_cli.models.core.contract import Switch, SwitchSet

COMMON = "common"
"""The fusion token name of ``C = sum_m C_m`` (the private tokens are named by modality)."""


def _drop_modality(m: str, label: str) -> Switch:
    return Switch(
        m,
        f"w/o {label}",
        f"do not read the {m} modality (bi-modal FDMER)",
        removes=(f"trans.{m}.*", f"proj.{m}.*", f"private.enc.{m}.*", f"fusion.*.{m}.*"),
    )


SWITCHES = SwitchSet(
    (
        _drop_modality("text", "Text"),
        _drop_modality("audio", "Audio"),
        _drop_modality("vision", "Visual"),
        Switch(
            "adv",
            "w/o L_ami + L_ams",
            "remove the modality discriminator and both adversarial losses (Eq. 8-11)",
            removes=("discriminator.*",),
            drops_losses=("ami", "ams"),
        ),
        Switch("con", "w/o L_con", "drop the consistency loss (Eq. 4-5)", drops_losses=("con",)),
        Switch("dis", "w/o L_dis", "drop the HSIC disparity loss (Eq. 6-7)", drops_losses=("dis",)),
        Switch(
            "ce",
            "Cross-Entropy Loss",
            "train the discriminator with plain cross-entropy instead of the angular margin",
            drops_losses=("ami", "ams"),
            adds_losses=("ami_ce", "ams_ce"),
        ),
        Switch(
            "common",
            "w/o Common",
            "keep the common encoder and its losses; fuse the private representations only",
            removes=(f"fusion.*.{COMMON}.*",),
        ),
        Switch(
            "private",
            "w/o Private",
            "keep the private encoders and their losses; fuse the common representation only",
            removes=(
                *(f"fusion.*.{m}.*" for m in MODALITIES),
                "fusion.interaction.g.*",
                "fusion.interaction.q.*",
                "fusion.attention.*",
            ),
        ),
        Switch(
            "disentangle",
            "Non-Disentangled",
            "no common / private encoders, constraints or discriminator; fuse the transformer "
            "features",
            removes=("common.*", "private.*", "discriminator.*", f"fusion.*.{COMMON}.*"),
            drops_losses=("con", "dis", "ami", "ams"),
            drops_outputs=("reps.exclusive", "reps.agnostic"),
        ),
        Switch(
            "cmaf",
            "w/o CMAF",
            "concatenate the representations instead of CMAF (Eq. 12-17)",
            removes=("fusion.*",),
        ),
        Switch(
            "phase1",
            "w/o Phase 1",
            "remove CMAF's cross-modal interaction (Eq. 12-14)",
            removes=("fusion.interaction.*",),
        ),
        Switch(
            "phase2",
            "w/o Phase 2",
            "remove CMAF's adaptive attention (Eq. 15-16); equal weights",
            removes=("fusion.attention.*",),
        ),
        Switch("add", "Addition", "sum the representations instead of CMAF", removes=("fusion.*",)),
        Switch(
            "mul",
            "Multiplication",
            "multiply the representations element-wise instead of CMAF",
            removes=("fusion.*",),
        ),
    ),
    exclusive_groups=(
        frozenset({"text", "audio", "vision"}),
        frozenset({"adv", "ce"}),
        frozenset({"common", "private", "disentangle"}),
        frozenset({"cmaf", "add", "mul", "phase1"}),
        frozenset({"cmaf", "add", "mul", "phase2"}),
    ),
)
"""Every Table 4 row, in the paper's order."""

FUSIONS: tuple[str, ...] = ("cmaf", "concat", "add", "mul")


@dataclass(frozen=True)
class Parts:
    """What the model builds and which loss terms it computes, derived from the switches."""

    modalities: tuple[str, ...]  # the modalities read, in MODALITIES order
    disentangle: bool  # common and private encoders (Eq. 2-3)
    consistency: bool  # L_con (Eq. 4-5)
    disparity: bool  # L_dis (Eq. 6-7)
    adversarial: str | None  # "am" (Eq. 9), "ce" (plain cross-entropy) or None
    tokens: tuple[str, ...]  # what is fused: "common" and/or modality names
    fusion: str  # one of FUSIONS
    interaction: bool  # CMAF phase 1 (Eq. 12-14)
    adaptive: bool  # CMAF phase 2 (Eq. 15-17)

    @property
    def loss_terms(self) -> tuple[str, ...]:
        """Names of the loss terms the model reports."""
        terms = ["task"]
        if self.consistency:
            terms.append("con")
        if self.disparity:
            terms.append("dis")
        if self.adversarial == "am":
            terms += ["ami", "ams"]
        elif self.adversarial == "ce":
            terms += ["ami_ce", "ams_ce"]
        return tuple(terms)


def parts(ablations: Iterable[str]) -> Parts:
    """The single mapping from Table 4 switches to model structure (names already checked)."""
    off = set(ablations)
    modalities = tuple(m for m in MODALITIES if m not in off)
    disentangle = "disentangle" not in off
    if not disentangle:
        tokens = modalities
    else:
        tokens = ((COMMON,) if "common" not in off else ()) + (
            modalities if "private" not in off else ()
        )
    fusion = next((f for f, s in (("concat", "cmaf"), ("add", "add"), ("mul", "mul")) if s in off), "cmaf")
    cmaf = fusion == "cmaf"
    return Parts(
        modalities=modalities,
        disentangle=disentangle,
        consistency=disentangle and "con" not in off,
        disparity=disentangle and "dis" not in off,
        adversarial=None if not disentangle or "adv" in off else ("ce" if "ce" in off else "am"),
        tokens=tokens,
        fusion=fusion,
        interaction=cmaf and "phase1" not in off,
        adaptive=cmaf and "phase2" not in off,
    )


def capabilities(cfg: object) -> set[str]:
    """What an FDMER built from ``cfg`` provides: the common / private representations
    (``agnostic`` / ``exclusive``) and the per-modality self-attention maps, both only when all
    three modalities are read; the representations only with the encoders."""
    p = parts(getattr(cfg, "ablations", ()))
    if len(p.modalities) != len(MODALITIES):
        return set()
    return {"attention_maps"} | ({"representations"} if p.disentangle else set())
