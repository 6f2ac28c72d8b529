"""MCR's ablation switches: the rows of its Table 5, each defined once in :data:`SWITCHES` and
read in one place (:func:`parts`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mea_cli import MODALITIES
from mea_cli.models.core.contract import (
    Switch,
    SwitchSet,
)


def _others_removed(keep: str) -> tuple[str, ...]:
    """Parameter patterns of every target reinforcement but ``keep``'s."""
    return tuple(
        f"layers.*.{unit}.{m}.*" for m in MODALITIES if m != keep for unit in ("cmu", "scu")
    )


_LABEL = {"text": "Language", "vision": "Video", "audio": "Audio"}
_LETTER = {"text": "L", "vision": "V", "audio": "A"}

SWITCHES = SwitchSet(
    (
        *(
            Switch(
                f"unimodal-{m}",
                f"{_LABEL[m]} Only",
                f"unimodal MCR on {m}: the other modalities are not read; {m} is its own "
                f"target and both its sources",
                removes=tuple(f"front.{o}.*" for o in MODALITIES if o != m) + _others_removed(m),
            )
            for m in MODALITIES
        ),
        *(
            Switch(
                f"only-{t}",
                "[{}, {} -> {}] Only".format(
                    *(_LETTER[o] for o in MODALITIES if o != t), _LETTER[t]
                ),
                f"reinforce only the {t} target (the other targets keep their pre-processed "
                f"streams, which still supervise their sources in SUM); Z_fin = Z_{_LETTER[t]}",
                removes=_others_removed(t) + (f"sum.*.update.{t}.*",),
            )
            for t in MODALITIES
        ),
        Switch(
            "low-level",
            "Low-level Feature",
            "no SUM: the sources stay the pre-processed sequences at every layer",
            removes=("sum.*",),
        ),
        Switch(
            "ffl",
            "High-level Feature (FFL)",
            "SUM reduced to its stacked feed-forward layer: no selective memory, no Eq. 15-16",
            removes=("sum.*.gate.*", "sum.*.combine.*"),
        ),
        Switch(
            "no-smm",
            "SUM w/o SMM",
            "SUM without the selective memory (Eq. 13-14): Z_s = F_s(Z_s) + Z_t",
            removes=("sum.*.gate.*",),
        ),
        Switch(
            "no-cmu",
            "w/o CMU_{s1,s2->t}",
            "remove every CMU: Z_t = Z_tb",
            removes=("layers.*.cmu.*",),
            drops_outputs=("attention.cmu",),
        ),
        Switch(
            "no-mutual",
            "w/o Mutual Attention",
            "CMU without the mutual maps and source weights: softmax(E) V (Eq. 4-5 without "
            "the alpha term)",
            removes=("layers.*.cmu.*.mutual.*",),
        ),
        Switch(
            "no-scu",
            "w/o SCU_{[s1,s2]->t}",
            "remove every SCU (and Eq. 15-16, whose Z_ds only the SCU reads): Z_t = Z_ta",
            removes=("layers.*.scu.*", "sum.*.combine.*"),
            drops_outputs=("attention.scu",),
        ),
        Switch(
            "no-attention-layer",
            "w/o Attention Layer",
            "SCU without Eq. 9-11: its two branches are added",
            removes=("layers.*.scu.*.branch.*",),
        ),
    ),
    exclusive_groups=(
        frozenset({f"unimodal-{m}" for m in MODALITIES} | {f"only-{m}" for m in MODALITIES}),
        frozenset({"low-level", "ffl", "no-smm"}),
        frozenset({"no-cmu", "no-scu"}),
    ),
)
"""MCR's Table 5 rows in the paper's order (but "w/ Serial Structure": the field ``serial``)."""


@dataclass(frozen=True)
class Parts:
    """What an MCR builds, derived from its switches."""

    modalities: tuple[str, ...]  # read from the batch
    targets: tuple[str, ...]  # reinforced and fused
    sources_of: dict[str, tuple[str, str]]
    cmu: bool
    mutual: bool
    scu: bool
    attention_layer: bool
    sum_mode: str | None  # "smm", "add", "ffl" or None (low-level)


def parts(ablations: Iterable[str]) -> Parts:
    """The single mapping from Table 5 switches to model structure."""
    off = set(ablations)
    solo = next((m for m in MODALITIES if f"unimodal-{m}" in off), None)
    only = next((m for m in MODALITIES if f"only-{m}" in off), None)
    modalities = (solo,) if solo else MODALITIES
    targets = (solo or only,) if (solo or only) else MODALITIES
    sources_of = {
        t: ((t, t) if solo else tuple(o for o in MODALITIES if o != t)) for t in targets
    }
    sum_mode = next(
        (mode for sw, mode in (("low-level", None), ("ffl", "ffl"), ("no-smm", "add")) if sw in off),
        "smm",
    )
    return Parts(
        modalities=modalities,
        targets=targets,
        sources_of=sources_of,  # type: ignore[arg-type]
        cmu="no-cmu" not in off,
        mutual="no-cmu" not in off and "no-mutual" not in off,
        scu="no-scu" not in off,
        attention_layer="no-scu" not in off and "no-attention-layer" not in off,
        sum_mode=sum_mode,
    )


def capabilities(cfg: object) -> set[str]:
    """Self-attention maps (the SCU's Eq. 8 maps, one per modality) need all three targets and
    the SCU."""
    p = parts(getattr(cfg, "ablations", ()))
    return {"attention_maps"} if p.scu and p.targets == MODALITIES else set()
