"""Ablation tables: Table V order, mean +- std, deltas, md/csv/tex, paper values."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass

import pytest
from rich.console import Console

from mea_cli.ablate.errors import AblationError
from mea_cli.ablate.rows import check_names, paper_table, table_rows
from mea_cli.ablate.table import build_table


@dataclass(frozen=True)
class _Switch:
    name: str
    table_row: str
    description: str = ""


SWITCHES = {
    "wal": _Switch("wal", "w/o Weighted Attention Layer"),
    "psa": _Switch("psa", "w/o PSA Module"),
    "no_dis": _Switch("no_dis", "w/o Disparity Constraint L_dis"),
    "extra": _Switch("extra", "w/o something new"),
}


def test_paper_values_transcribed() -> None:
    table = paper_table()
    # cited by title and venue, never by a file path of the machine it was built on
    assert "Modality-Exclusive and -Agnostic Representations" in table["source"]["paper"]
    assert "/" not in table["source"]["paper"] and ".md" not in json.dumps(table["source"])
    rows = {r["key"]: r for r in table["rows"]}
    assert len(rows) == 17
    assert rows["full"]["mosi"] == {"acc7": 42.5, "f1": 84.6}
    assert rows["psa"]["mosei"] == {"acc7": 51.2, "f1": 81.5}
    assert rows["mul"]["mosi"] == {"acc7": 41.8, "f1": 83.5}


def test_rows_follow_table_v_order() -> None:
    rows = table_rows(SWITCHES)
    assert [r.key for r in rows] == ["full", "no_dis", "psa", "wal", "extra"]
    assert rows[1].paper["mosi"]["acc7"] == 41.9  # matched by label, not by name
    assert rows[-1].group == "Other" and rows[-1].paper == {}
    assert rows[2].switches == ("psa",)


def test_unknown_names_list_valid_ones() -> None:
    with pytest.raises(AblationError, match="model 'mea' has no ablation switch 'nope'.*psa"):
        check_names(["psa", "nope"], SWITCHES)
    assert check_names(["all"], SWITCHES) == list(SWITCHES)
    assert check_names(["psa", "psa"], SWITCHES) == ["psa"]
    with pytest.raises(AblationError, match="model 'mult' has no ablation switch 'psa'; its"):
        check_names(["psa"], {"crossmodal": _Switch("crossmodal", "w/o crossmodal")}, "mult")
    with pytest.raises(AblationError, match="model 'tiny' declares no ablation switches"):
        check_names(["psa"], {}, "tiny")


def test_other_models_rows_follow_their_switches_without_paper_values() -> None:
    rows = table_rows(SWITCHES, ["psa", "wal"], model="tiny")
    assert [(r.key, r.label, r.paper) for r in rows] == [
        ("full", "tiny (full model)", {}),
        ("psa", "w/o PSA Module", {}),  # MEA's Table V values are MEA's, not tiny's
        ("wal", "w/o Weighted Attention Layer", {}),
    ]
    assert paper_table("tiny") is None


def test_one_seed_says_n_1_instead_of_a_zero_std() -> None:
    t = build_table("x", [("full", "Full", "", {1: {"acc7": 0.4, "mae": 1.0}})], ["acc7", "mae"])
    assert t.rows[0].stats["acc7"].n == 1
    md = t.to_markdown()
    assert "| Full | 40.0 (n=1) | - | 1.000 (n=1) | - | 1 |" in md and "±" not in md.split("\n")[4]


def test_mean_std_delta_and_formats() -> None:
    entries = [
        (
            "full",
            "MEA (Full Model)",
            "",
            {1: {"acc7": 0.40, "mae": 1.0}, 2: {"acc7": 0.44, "mae": 0.8}},
        ),
        (
            "psa",
            "w/o PSA Module",
            "PSA",
            {1: {"acc7": 0.30, "mae": 1.2}, 2: {"acc7": 0.34, "mae": 1.0}},
        ),
    ]
    t = build_table(
        "Ablation",
        entries,
        ["acc7", "mae"],
        paper={"full": {"acc7": 42.5}, "psa": {"acc7": 38.7}},
        paper_metrics=["acc7"],
        paper_source="MEA Table V",
    )
    full, psa = t.rows
    assert full.stats["acc7"].mean == pytest.approx(0.42)
    assert full.stats["acc7"].std == pytest.approx(0.028284, rel=1e-4)  # ddof = 1
    assert psa.delta["acc7"] == pytest.approx(-0.10)
    md = t.to_markdown()
    assert "| MEA (Full Model) | 42.0 ± 2.8 | - | 0.900 ± 0.141 | - | 42.5 | 1,2 |" in md
    assert "| w/o PSA Module | 32.0 ± 2.8 | -10.0 | 1.100 ± 0.141 | +0.200 | 38.7 | 1,2 |" in md
    assert "**PSA**" in md
    rows = list(csv.DictReader(io.StringIO(t.to_csv())))
    assert rows[1]["key"] == "psa" and float(rows[1]["acc7_delta"]) == pytest.approx(-0.1)
    assert rows[1]["paper_acc7"] == "38.7"
    tex = t.to_latex()
    assert "\\toprule" in tex and "32.0 $\\pm$ 2.8" in tex and "\\multicolumn" in tex
    assert t.to_rich().row_count == 3  # two rows plus one group heading


def test_one_seed_prints_n1_not_zero_std() -> None:
    """The sample std of one value is undefined: every format says n=1, none says ± 0.0."""
    t = build_table(
        "Ablation",
        [("full", "MEA (Full Model)", "", {7: {"acc7": 0.40, "mae": 1.0}}),
         ("psa", "w/o PSA Module", "", {7: {"acc7": 0.30, "mae": 1.2}})],
        ["acc7", "mae"],
    )  # fmt: skip
    assert t.rows[0].stats["acc7"].n == 1 and math.isnan(t.rows[0].stats["acc7"].std)
    md = t.to_markdown()
    assert "| MEA (Full Model) | 40.0 (n=1) | - | 1.000 (n=1) | - | 7 |" in md
    assert "± 0.0" not in md and "± 0.000" not in md
    assert "40.0 (n=1)" in t.to_latex() and "pm$ 0.0" not in t.to_latex()
    rows = list(csv.DictReader(io.StringIO(t.to_csv())))
    assert rows[0]["acc7_std"] == "" and rows[0]["acc7_n"] == "1"
    console = Console(width=200, record=True)
    console.print(t.to_rich())
    text = console.export_text()
    assert "40.0 (n=1)" in text and "± 0.0" not in text and "no std (n=1)" in text
