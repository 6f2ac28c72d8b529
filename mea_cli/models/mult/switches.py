"""MulT's ablation switches: Table 3's crossmodal-only rows, each defined once in
:data:`SWITCHES`, and what they leave (:func:`targets_for`, :func:`capabilities`)."""

from __future__ import annotations

from collections.abc import Iterable

from mea_cli import MODALITIES
from mea_cli.models.core.contract import (
    Switch,
    SwitchSet,
)

TARGETS_ONLY: dict[str, str] = {f"only-{m}": m for m in MODALITIES}
"""Each switch and the one target modality it keeps."""


def _only(target: str) -> Switch:
    """The Table 3 row "Crossmodal Transformers only: [S1, S2 -> target]": it removes the
    crossmodal transformers into the other two targets and their memories."""
    sources = [m for m in MODALITIES if m != target]
    letter = {"text": "L", "vision": "V", "audio": "A"}
    removed = [f"crossmodal.{s}_to_{t}.*" for t in sources for s in MODALITIES if s != t]
    return Switch(
        f"only-{target}",
        f"Crossmodal Transformers only: [{','.join(letter[s] for s in sources)} -> "
        f"{letter[target]}] (Table 3)",
        f"keep {' and '.join(f'{s}->{target}' for s in sources)} and the {target} memory; "
        "remove the other four crossmodal transformers and the other two memories",
        removes=(*removed, *(f"memory.{t}.*" for t in sources)),
    )


SWITCHES = SwitchSet(
    tuple(_only(m) for m in MODALITIES),
    exclusive_groups=(frozenset(TARGETS_ONLY),),
)
"""MulT's own ablation switches (Table 3's crossmodal-only rows); at most one at a time."""


def targets_for(ablations: Iterable[str]) -> tuple[str, ...]:
    """The target modalities MulT builds under the switches (all three without one)."""
    kept = [TARGETS_ONLY[s] for s in ablations if s in TARGETS_ONLY]
    return tuple(kept[:1]) or MODALITIES


def capabilities(cfg: object) -> set[str]:
    """What a MulT built from ``cfg`` provides: the self-attention maps of every modality's
    memory, unless a switch keeps one target only (then two modalities have no memory)."""
    return {"attention_maps"} if len(targets_for(getattr(cfg, "ablations", ()))) == 3 else set()
