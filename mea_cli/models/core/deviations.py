"""The deviations from their papers of the models behind a table of results, as printed lines.

Every model declares its departures from its paper in its registration
(:class:`~mea_cli.models.core.contract.Deviation`; some hold only for some configurations, e.g.
MulT's future mask or MCR's mutual map). Where results are printed next to the papers' rows
(``mea eval --paper``, ``mea compare --paper``, ``mea ablate --paper``) these lines go under
the table, so a reader sees what differs without opening the docs; ``mea info --model`` lists
them too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mea_cli.models.core.registry import config_from_dict, get_entry

HEADING = "Deviations from the papers (one line each; details at the doc anchor):"
DISPLAY: dict[str, str] = {"mult": "MulT"}
"""How a model's name is printed where it is not all capitals (MEA, MFSA, MCR, FDMER)."""


def display_name(model: str) -> str:
    """``mcr`` -> ``MCR``, ``mult`` -> ``MulT``."""
    return DISPLAY.get(model, model.upper())


def deviations_of(model: str, cfg: Any, setting: str | None = None) -> list[dict[str, str]]:
    """The deviations model ``model`` built from ``cfg`` (a config or its ``to_dict()``) has
    on a store of ``setting`` (``"unaligned"`` / ``"word-aligned"``; None: not known), as
    JSON-able ``{"key", "text", "doc"}`` items."""
    entry = get_entry(model)
    if isinstance(cfg, Mapping):
        cfg = config_from_dict(model, cfg)
    devs = entry.deviations_for(cfg, setting)
    return [{"key": d.key, "text": d.text, "doc": d.doc} for d in devs]


def deviation_lines(configs: Mapping[str, Any], setting: str | None = None) -> list[str]:
    """``MODEL: text (doc#anchor)`` for every model of ``configs`` (model name -> config or
    config dict) run on a store of ``setting``, models in the mapping's order; empty when none
    deviates."""
    lines = []
    for model, cfg in configs.items():
        name = display_name(model)
        lines += [f"{name}: {d['text']} ({d['doc']})" for d in deviations_of(model, cfg, setting)]
    return lines


def deviation_block(configs: Mapping[str, Any], setting: str | None = None) -> list[str]:
    """:data:`HEADING` and :func:`deviation_lines`, or nothing when there are none."""
    lines = deviation_lines(configs, setting)
    return [HEADING, *lines] if lines else []
