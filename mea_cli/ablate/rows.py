"""The rows of an ablation table: the full model, then the model's switches, and for a model
with a transcribed ablation table (MEA Table V, MCR Table 5, MFSA Table 4, FDMER Table 4) its
order and values.

Each ablation row is one switch the model registered (``get_entry(model).switches``), applied
as ``ablations=(name,)`` in the model config. For a model with a transcribed paper table
(the ``ablation_<model>.json`` its registration carries, :func:`paper_table`: MEA's Table V, transcribed from Table V of the MEA paper, Yang et al., IEEE TCSVT; MCR's Table 5; MFSA's Table 4; FDMER's Table 4, measured on word-aligned data) rows
follow the paper's order and carry its numbers; a switch is matched to a paper row by its name
(``psa``, ``wal``, ...) or, failing that, by its label (``"w/o PSA Module"``), and switches the
paper does not have are appended in the model's order under "Other". Other models' rows follow
the order of their switches.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mea_cli.ablate.errors import AblationError
from mea_cli.models import entries, get_entry
from mea_cli.models.core.registry import UnknownModelError

FULL = "full"
"""Key of the unablated model's row."""


@dataclass(frozen=True)
class RowSpec:
    """One table row: its key (``full`` or a switch name), label, group and paper values."""

    key: str
    label: str
    group: str = ""
    paper: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # dataset -> metric -> %

    @property
    def switches(self) -> tuple[str, ...]:
        return () if self.key == FULL else (self.key,)


def paper_table(model: str = "mea") -> dict[str, Any] | None:
    """The transcribed ablation table of ``model`` (``source``, ``metrics``, ``rows``): what its
    registration carries (``get_entry(model).paper.ablation``); None for a model without one
    or not registered."""
    try:
        table = get_entry(model).paper.ablation
    except UnknownModelError:
        return None
    return None if table is None else dict(table)


def transcribed_tables() -> list[str]:
    """The registered models that carry a transcribed ablation table."""
    return [e.name for e in entries() if e.paper.ablation is not None]


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def _match(name: str, switch: Any, paper: list[dict[str, Any]]) -> dict[str, Any] | None:
    for row in paper:
        if row["key"] == name:
            return row
    label = _norm(str(getattr(switch, "table_row", "") or ""))
    if label:
        for row in paper:
            if _norm(row["label"]) == label or (
                len(label) > 6 and (label in _norm(row["label"]) or _norm(row["label"]) in label)
            ):
                return row
    return None


def _paper_values(row: dict[str, Any]) -> dict[str, dict[str, float]]:
    return {d: dict(row[d]) for d in ("mosi", "mosei") if d in row}


def table_rows(
    switches: Mapping[str, Any], selected: list[str] | None = None, model: str = "mea"
) -> list[RowSpec]:
    """The full-model row, then the selected switches (all when ``None``) of ``model``, in its
    paper's order when it has a transcribed table, else in the order of its switches.

    ``switches`` maps name -> Switch (with ``table_row``). Unknown names must have been
    rejected before (see :func:`check_names`).
    """
    names = list(switches) if selected is None else list(dict.fromkeys(selected))
    table = paper_table(model)
    if table is None:
        rows = [RowSpec(FULL, f"{model} (full model)")]
        return rows + [RowSpec(n, str(getattr(switches[n], "table_row", "") or n)) for n in names]
    paper = list(table["rows"])
    full = next(r for r in paper if r["key"] == FULL)
    rows = [RowSpec(FULL, full["label"], "", _paper_values(full))]
    matched: list[tuple[int, RowSpec]] = []
    order = {r["key"]: i for i, r in enumerate(paper)}
    extra_index = len(paper)
    for name in names:
        sw = switches[name]
        hit = _match(name, sw, paper)
        label = str(getattr(sw, "table_row", "") or (hit["label"] if hit else name))
        if hit is not None:
            matched.append(
                (order[hit["key"]], RowSpec(name, label, hit["group"], _paper_values(hit)))
            )
        else:
            matched.append((extra_index, RowSpec(name, label, "Other")))
            extra_index += 1
    matched.sort(key=lambda pair: pair[0])
    return rows + [spec for _, spec in matched]


def check_names(names: list[str], switches: Mapping[str, Any], model: str = "mea") -> list[str]:
    """Expand ``all`` and reject names that are not ``model``'s switches (listing its own)."""
    if not switches:
        raise AblationError(f"model {model!r} declares no ablation switches: nothing to ablate")
    if not names:
        raise AblationError("nothing to ablate: give --drop NAME (repeatable) or --drop all")
    if "all" in names:
        return list(switches)
    unknown = [n for n in names if n not in switches]
    if unknown:
        raise AblationError(
            f"model {model!r} has no ablation switch {', '.join(repr(n) for n in unknown)}; "
            f"its switches: {', '.join(switches)}, or all"
        )
    return list(dict.fromkeys(names))
