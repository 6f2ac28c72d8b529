"""Ablation and sweep tables: mean +- std over seeds and the change against the full model.

Numbers are stored as fractions (the trainer's ``metrics.json``); tables print them the papers'
way -- accuracies and F1 as percentages with one decimal, MAE and Corr with three decimals --
and the change ``delta = mean(row) - mean(full)`` in the same unit (percentage points for
accuracies). The standard deviation is the sample one (ddof = 1); for a single seed it is
undefined, so the cell says ``(n=1)`` instead of a made-up ``± 0.0`` and the CSV leaves the std
empty.

One :class:`ResultTable` renders to a rich table (terminal), Markdown, CSV and LaTeX (booktabs),
so the three files written by ``mea ablate`` always agree with what was printed.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from mea_cli.metric_names import metric_label
from mea_cli.train.metrics import LOWER_IS_BETTER, format_mean_std, headline_metrics

if TYPE_CHECKING:
    from rich.table import Table

PLAIN_METRICS = frozenset({"mae", "corr", "loss"})


VALID_PREFIX = "valid_"
"""A column ``valid_<metric>`` is that metric on the validation split (beside the test one)."""


def base_key(key: str) -> str:
    """The metric of a column: ``valid_mae`` -> ``mae`` (test columns are the metric itself)."""
    return key.removeprefix(VALID_PREFIX)


def column_label(key: str) -> str:
    """``valid_f1_macro`` -> ``valid F1 (macro)``, ``f1_macro`` -> ``test F1 (macro)``."""
    split = "valid" if key.startswith(VALID_PREFIX) else "test"
    return f"{split} {metric_label(base_key(key))}"


def with_valid_columns(metrics: Sequence[str]) -> list[str]:
    """Each metric's validation column right before its test column."""
    return [c for k in metrics for c in (VALID_PREFIX + k, k)]


def scale(key: str) -> float:
    """100 for accuracies and F1 (printed in percent), 1 for MAE / Corr / loss."""
    return 1.0 if base_key(key) in PLAIN_METRICS else 100.0


def digits(key: str) -> int:
    """Decimals a metric is shown with: 3 for MAE, Corr and a loss, 1 for the others (shown in
    percent)."""
    return 3 if base_key(key) in PLAIN_METRICS else 1


def default_metrics(
    task: str, value_range: Sequence[float] | None = None, paper_metrics: Sequence[str] = ()
) -> list[str]:
    """Columns of the table for a task: MEA Table V's for the papers' tasks (Acc-7 and F1 in
    both conventions + MAE for regression; the mean accuracy and weighted F1 over emotions for
    IEMOCAP; the per-label numbers are in each job's ``metrics.json``), a custom task's main
    metrics (``value_range``: a custom regression task's range;
    :func:`mea_cli.train.metrics.headline_metrics`). ``paper_metrics`` are the columns of the
    model's transcribed table: where it reports Acc-2 (MCR's Table 5), both Acc-2 conventions
    join, so that ours stand beside the paper's; where it reports Corr (FDMER's Table 4), our
    Corr joins."""
    if task == "regression" and value_range is None:
        acc2 = ["acc2_non0", "acc2_has0"] if "acc2" in paper_metrics else []
        corr = ["corr"] if "corr" in paper_metrics else []
        return ["acc7", *acc2, "f1_non0", "f1_has0", "mae", *corr]
    return headline_metrics(task, value_range)


_PAPER_LABELS = {"acc2": "Acc-2", "f1": "F1"}
"""Labels of the transcribed tables' metric keys that have no convention suffix."""


@dataclass(frozen=True)
class Stat:
    """Mean, sample std and count of one metric over seeds (fractions, unscaled)."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat:
        vals = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
        if vals.size == 0:
            return cls(float("nan"), float("nan"), 0)
        std = float(np.std(vals, ddof=1)) if vals.size > 1 else float("nan")
        return cls(float(np.mean(vals)), std, int(vals.size))

    def text(self, key: str) -> str:
        """``mean ± std`` of metric ``key`` the papers' way; ``mean (n=1)`` for one seed."""
        return format_mean_std(
            base_key(key), self.mean if self.n else None, self.std if self.n > 1 else None, self.n
        )


@dataclass
class TableRow:
    """One printed row: identity, per-seed metrics, stats and deltas against the reference row."""

    key: str
    label: str
    group: str
    seeds: list[int]
    stats: dict[str, Stat]
    delta: dict[str, float]
    paper: dict[str, float] = field(default_factory=dict)  # metric -> paper value as printed


@dataclass
class ResultTable:
    """A table of rows x metrics; the first row is the reference (full model / first setting)."""

    title: str
    metrics: list[str]
    rows: list[TableRow]
    paper_metrics: list[str] = field(default_factory=list)  # e.g. ["acc7", "f1"]
    paper_source: str = ""
    first_column: str = "Components / designs"
    notes: list[str] = field(default_factory=list)  # printed under the table (e.g. NO EFFECT)
    deviations: list[str] = field(default_factory=list)  # --paper: mea_cli.models.core.deviations

    # ---- text of cells -------------------------------------------------------------------
    def label(self, key: str) -> str:
        """A column's heading: with ``valid`` / ``test`` when the table has both splits."""
        both = any(k.startswith(VALID_PREFIX) for k in self.metrics)
        return column_label(key) if both else metric_label(key)

    def cell(self, row: TableRow, key: str) -> str:
        st = row.stats.get(key)
        return "n/a" if st is None else st.text(key)

    def delta_cell(self, row: TableRow, key: str) -> str:
        if row is self.rows[0]:
            return "-"
        v = row.delta.get(key, float("nan"))
        if not math.isfinite(v):
            return "n/a"
        return f"{v * scale(key):+.{digits(key)}f}"

    def paper_cell(self, row: TableRow, key: str) -> str:
        v = row.paper.get(key)
        return "-" if v is None else f"{v:.{digits(key)}f}"  # as printed: MAE 0.845, Acc 42.5

    def header(self) -> list[str]:
        cols = [self.first_column]
        for k in self.metrics:
            cols += [self.label(k), f"Δ {self.label(k)}"]
        cols += [f"paper {_PAPER_LABELS.get(k) or metric_label(k)}" for k in self.paper_metrics]
        cols.append("seeds")
        return cols

    def body(self) -> list[tuple[str, list[str]]]:
        """(group, cells) per row, cells aligned with :meth:`header`."""
        out = []
        for row in self.rows:
            cells = [row.label]
            for k in self.metrics:
                cells += [self.cell(row, k), self.delta_cell(row, k)]
            cells += [self.paper_cell(row, k) for k in self.paper_metrics]
            cells.append(",".join(str(s) for s in row.seeds) or "-")
            out.append((row.group, cells))
        return out

    # ---- renderers -----------------------------------------------------------------------
    def to_markdown(self) -> str:
        head = self.header()
        lines = [f"## {self.title}", "", "| " + " | ".join(head) + " |"]
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
        group = ""
        for g, cells in self.body():
            if g and g != group:
                lines.append(f"| **{g}** |" + " |" * (len(head) - 1))
            group = g or group
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        lines.append(
            "Mean ± sample std over seeds (n=1: one seed, no std); Δ = row mean − "
            f"{self.rows[0].label} mean (percentage points for accuracies / F1)."
        )
        if self.paper_source:
            lines.append(f"Paper values: {self.paper_source}.")
        lines += [f"**{n}**" if n.startswith("NO EFFECT") else n for n in self.notes]
        if self.deviations:
            lines += ["", self.deviations[0], ""] + [f"- {d}" for d in self.deviations[1:]]
        return "\n".join(lines) + "\n"

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        head = ["key", "label", "group", "seeds"]
        for k in self.metrics:
            head += [f"{k}_mean", f"{k}_std", f"{k}_delta", f"{k}_n"]
        head += [f"paper_{k}" for k in self.paper_metrics]
        writer.writerow(head)
        for row in self.rows:
            line: list[object] = [row.key, row.label, row.group, " ".join(map(str, row.seeds))]
            for k in self.metrics:
                st = row.stats.get(k, Stat(float("nan"), float("nan"), 0))
                delta = 0.0 if row is self.rows[0] else row.delta.get(k, float("nan"))
                line += [csv_number(st.mean), csv_number(st.std), csv_number(delta), st.n]
            line += [csv_number(row.paper.get(k)) for k in self.paper_metrics]
            writer.writerow(line)
        return buf.getvalue()

    def to_latex(self) -> str:
        head = self.header()
        spec = "l" + "r" * (len(head) - 1)
        lines = [
            "% generated by mea-cli; needs \\usepackage{booktabs}",
            "\\begin{tabular}{" + spec + "}",
            "\\toprule",
            " & ".join(tex_escape(h).replace("±", "$\\pm$") for h in head) + " \\\\",
            "\\midrule",
        ]
        group = ""
        for g, cells in self.body():
            if g and g != group:
                lines.append(f"\\multicolumn{{{len(head)}}}{{l}}{{\\textit{{{tex_escape(g)}}}}} \\\\")
            group = g or group
            lines.append(" & ".join(tex_escape(c).replace("±", "$\\pm$") for c in cells) + " \\\\")
        lines += ["\\bottomrule", "\\end{tabular}", ""]
        lines += [f"% {n}" for n in self.notes]
        lines += [f"% {d}" for d in self.deviations]
        return "\n".join(lines)

    def to_rich(self) -> Table:
        """A rich Table: one column per metric, ``mean ± std`` over ``(Δ)`` with the change coloured
        green (better than the reference row) or red (worse); group headings as sections."""
        from rich.table import Table
        from rich.text import Text

        seed_sets = {tuple(r.seeds) for r in self.rows}
        same = len(seed_sets) == 1
        seeds = self.rows[0].seeds
        if same and len(seeds) == 1:
            over = f"one seed ({seeds[0]}): no std (n=1); "
        elif same:
            over = f"mean ± std over seeds {', '.join(map(str, seeds))}; "
        else:
            over = "mean ± std over seeds (n=1: one seed, no std); "
        caption = over + f"(Δ) = change against {self.rows[0].label}"
        caption = "\n".join([caption, *self.notes, *self.deviations])
        table = Table(
            title=Text(self.title), caption=caption, show_lines=False, title_justify="left"
        )
        table.add_column(self.first_column, justify="left", min_width=16, ratio=1)
        for k in self.metrics:
            table.add_column(self.label(k), justify="right", no_wrap=True)
        for k in self.paper_metrics:
            table.add_column(f"paper\n{metric_label(k) if k != 'f1' else 'F1'}", justify="right")
        if not same:
            table.add_column("seeds", justify="right")
        group = ""
        for row in self.rows:
            if row.group and row.group != group:
                table.add_section()
                table.add_row(Text(row.group, style="italic dim"))
            group = row.group or group
            cells: list[object] = [Text(row.label)]
            for k in self.metrics:
                cell = Text(self.cell(row, k))
                if row is not self.rows[0]:
                    cell.append(
                        f"\n({self.delta_cell(row, k)})", style=_delta_style(row, k, self.rows[0])
                    )
                cells.append(cell)
            cells += [self.paper_cell(row, k) for k in self.paper_metrics]
            if not same:
                cells.append(",".join(str(s) for s in row.seeds) or "-")
            table.add_row(*cells)
        return table


def _delta_style(row: TableRow, key: str, ref: TableRow) -> str:
    v = row.delta.get(key, float("nan"))
    if row is ref or not math.isfinite(v) or v == 0:
        return ""
    better = v < 0 if base_key(key) in LOWER_IS_BETTER else v > 0
    return "green" if better else "red"


def csv_number(v: float | None) -> str:
    """A CSV cell: six significant digits, empty for a missing or non-finite value."""
    if v is None or not math.isfinite(v):
        return ""
    return f"{v:.6g}"


def tex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped and the Greek letters of the row names
    in math mode."""
    repl = {
        "&": "\\&",
        "%": "\\%",
        "_": "\\_",
        "#": "\\#",
        "Δ": "$\\Delta$",
        "ω": "$\\omega$",
        "ψ": "$\\psi$",
        "μ": "$\\mu$",
        "α": "$\\alpha$",
        "β": "$\\beta$",
        "−": "$-$",
    }
    return "".join(repl.get(ch, ch) for ch in text)


def present_metrics(
    keys: Sequence[str], results: Mapping[str, Mapping[int, Mapping[str, float]]]
) -> list[str]:
    """The metrics of ``keys`` that at least one model has a finite value of: a table or a
    chart panel that would be all ``n/a`` is left out (a custom task has its own metrics).
    When no metric has a value at all, ``keys`` are kept (the tables then say ``n/a``)."""

    def finite(key: str) -> bool:
        return any(
            isinstance(v, (int, float)) and math.isfinite(v)
            for per_seed in results.values()
            for m in per_seed.values()
            for v in [m.get(key)]
        )

    return [k for k in keys if finite(k)] or list(keys)


def build_table(
    title: str,
    entries: Sequence[tuple[str, str, str, Mapping[int, Mapping[str, float]]]],
    metrics: Sequence[str],
    paper: Mapping[str, Mapping[str, float]] | None = None,
    paper_metrics: Sequence[str] = (),
    paper_source: str = "",
    first_column: str = "Components / designs",
) -> ResultTable:
    """Aggregate per-seed metrics into a :class:`ResultTable`.

    ``entries`` are ``(key, label, group, {seed: metrics})``; the first entry is the reference
    for deltas. ``paper`` maps row key -> {metric: value as printed (% for accuracies and F1)}
    for the optional paper columns.
    """
    if not entries:
        raise ValueError("a table needs at least one row")
    rows: list[TableRow] = []
    for key, label, group, per_seed in entries:
        seeds = sorted(per_seed)
        stats = {m: Stat.of([per_seed[s].get(m, float("nan")) for s in seeds]) for m in metrics}
        rows.append(TableRow(key, label, group, seeds, stats, {}, dict((paper or {}).get(key, {}))))
    ref = rows[0]
    for row in rows:
        row.delta = {m: row.stats[m].mean - ref.stats[m].mean for m in metrics}
    return ResultTable(title, list(metrics), rows, list(paper_metrics), paper_source, first_column)
