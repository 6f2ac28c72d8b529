"""The rows of the MEA paper's Table V, in the paper's order, and their paper values.

Each ablation row is one switch of the model's registry (``mea_cli.models.switches.SWITCHES``),
applied as ``ablations=(name,)`` in the model config. This module orders whatever switches the
registry offers the way Table V does and attaches the published numbers, which are package data
(``paper_table5.json``, transcribed from Table V of the MEA paper, Yang et al., IEEE TCSVT). A switch is
matched to a paper row by its name (``psa``, ``wal``, ...) or, failing that, by its Table V
label (``"w/o PSA Module"``); switches the paper does not have are appended in registry order
under "Other".
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

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


@lru_cache(maxsize=1)
def paper_table() -> dict[str, Any]:
    """The transcribed Table V (``paper_table5.json``): ``source``, ``metrics``, ``rows``."""
    text = resources.files("mea_cli.ablate").joinpath("paper_table5.json").read_text("utf-8")
    return json.loads(text)


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def _paper_rows() -> list[dict[str, Any]]:
    return list(paper_table()["rows"])


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


def table_rows(switches: Mapping[str, Any], selected: list[str] | None = None) -> list[RowSpec]:
    """The full-model row, then the selected switches (all when ``None``) in Table V order.

    ``switches`` is the registry (name -> Switch with ``table_row`` and ``description``).
    Unknown names must have been rejected before (see :func:`check_names`).
    """
    names = list(switches) if selected is None else list(dict.fromkeys(selected))
    paper = _paper_rows()
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


def check_names(names: list[str], switches: Mapping[str, Any]) -> list[str]:
    """Expand ``all`` and reject unknown names with the list of valid ones."""
    from mea_cli.ablate.errors import AblationError

    if not names:
        raise AblationError("nothing to ablate: give --drop NAME (repeatable) or --drop all")
    if "all" in names:
        return list(switches)
    unknown = [n for n in names if n not in switches]
    if unknown:
        raise AblationError(
            f"unknown ablation switch {', '.join(repr(n) for n in unknown)}; valid: "
            f"{', '.join(switches)}, or all"
        )
    return list(dict.fromkeys(names))
