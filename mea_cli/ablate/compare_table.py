"""Tables and a bar chart for ``mea compare``: per metric, mean ± std over seeds per model and a
paired two-sided t-test of each model against the first.

The test pairs the seeds both models were trained with (same store, splits and seed: the
only difference is the model) and uses ``scipy.stats.ttest_rel``; with fewer than two common
seeds, or identical differences on every seed, there is no p-value (``n/a``). A p-value of at
most 0.05 is marked with a superscript dagger on the model's mean, the way the MEA paper's
Tables II-IV mark results that a paired t-test finds significantly better (p <= 0.05); we mark
any significant difference, and the sign of Δ says in which direction. One seed has no standard
deviation: the cell says ``n=1``.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy import stats as scipy_stats

from mea_cli.ablate.table import Stat, csv_number, digits, metric_label, scale, tex_escape
from mea_cli.train.metrics import LOWER_IS_BETTER
from mea_cli.viz import metric_ylim, new_figure, note_empty, save_png

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from rich.console import Group

ALPHA = 0.05
MARK = "†"


def paired_p_value(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of the paired t-test of ``b`` against ``a`` over the pairs where both
    are finite; NaN when undefined (fewer than two pairs, or the same difference on every pair
    up to rounding, where the t statistic is 0/0)."""
    x, y = np.asarray(a, float), np.asarray(b, float)
    keep = np.isfinite(x) & np.isfinite(y)
    d = y[keep] - x[keep]
    if d.size < 2 or np.allclose(d, d[0], rtol=1e-9, atol=1e-12):
        return float("nan")
    x, y = x[keep], y[keep]
    return float(scipy_stats.ttest_rel(y, x).pvalue)


@dataclass
class ModelRow:
    """One model in one metric's table."""

    model: str
    seeds: list[int]
    stat: Stat
    delta: float  # mean - first model's mean (unscaled)
    p_value: float  # against the first model, over the common seeds (NaN: undefined)
    paired: int  # number of seeds in the test
    paper: float | None = None  # the paper's value (as printed: % or plain)
    paper_setting: str = ""  # where the paper's row was not measured unaligned ("word-aligned")

    @property
    def significant(self) -> bool:
        return math.isfinite(self.p_value) and self.p_value <= ALPHA


@dataclass
class MetricTable:
    """All models on one metric; ``rows[0]`` is the reference (the first model)."""

    metric: str
    rows: list[ModelRow]

    @property
    def label(self) -> str:
        better = "lower" if self.metric in LOWER_IS_BETTER else "higher"
        return f"{metric_label(self.metric)} ({better} is better)"

    def mean_cell(self, row: ModelRow) -> str:
        return row.stat.text(self.metric) + (MARK if row.significant else "")

    def delta_cell(self, row: ModelRow) -> str:
        if row is self.rows[0]:
            return "-"
        if not math.isfinite(row.delta):
            return "n/a"
        return f"{row.delta * scale(self.metric):+.{digits(self.metric)}f}"

    def p_cell(self, row: ModelRow) -> str:
        if row is self.rows[0]:
            return "-"
        if not math.isfinite(row.p_value):
            return f"n/a (n={row.paired})" if row.paired < 2 else "n/a"
        return f"{row.p_value:.3g}"

    def paper_cell(self, row: ModelRow) -> str:
        if row.paper is None:
            return "-"
        text = f"{row.paper:.3f}" if self.metric in ("mae", "corr") else f"{row.paper:.1f}"
        return f"{text} ({row.paper_setting})" if row.paper_setting else text


@dataclass
class CompareTables:
    """One :class:`MetricTable` per metric, with the context needed to print them."""

    title: str
    tables: list[MetricTable]
    with_paper: bool = False
    paper_note: str = ""
    notes: list[str] = field(default_factory=list)
    deviations: list[str] = field(default_factory=list)  # --paper: mea_cli.models.core.deviations
    unit: str = "seeds"  # what the mean, std and t-test run over: seeds, or folds

    @property
    def reference(self) -> str:
        return self.tables[0].rows[0].model

    def header(self) -> list[str]:
        ref = self.reference
        cols = ["model", "mean ± std", f"Δ vs {ref}", f"p (paired t vs {ref})", self.unit]
        return cols + (["paper"] if self.with_paper else [])

    def cells(self, t: MetricTable, row: ModelRow) -> list[str]:
        out = [row.model, t.mean_cell(row), t.delta_cell(row), t.p_cell(row)]
        out.append(",".join(map(str, row.seeds)) or "-")
        return out + ([t.paper_cell(row)] if self.with_paper else [])

    def footnote(self) -> str:
        one = self.unit.rstrip("s")
        text = (
            f"Mean ± sample std over {self.unit} (n=1: one {one}, no std); {MARK}: p <= {ALPHA} "
            f"in a paired two-sided t-test over {self.unit} against {self.reference} "
            "(scipy.stats.ttest_rel)."
        )
        return " ".join(p for p in (text, self.paper_note, *self.notes) if p)

    def to_markdown(self) -> str:
        lines = [f"## {self.title}", ""]
        head = self.header()
        for t in self.tables:
            lines += [f"### {t.label}", "", "| " + " | ".join(head) + " |"]
            lines.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
            lines += ["| " + " | ".join(self.cells(t, r)) + " |" for r in t.rows]
            lines.append("")
        lines.append(self.footnote())
        if self.deviations:
            lines += ["", self.deviations[0], ""] + [f"- {d}" for d in self.deviations[1:]]
        return "\n".join(lines) + "\n"

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(
            ["metric", "model", "mean", "std", "n", "delta", "p_value", "paired_seeds",
             "significant", "seeds", "paper", "paper_setting"]
        )  # fmt: skip
        for t in self.tables:
            for r in t.rows:
                w.writerow(
                    [
                        t.metric, r.model, csv_number(r.stat.mean), csv_number(r.stat.std), r.stat.n,
                        csv_number(0.0 if r is t.rows[0] else r.delta), csv_number(r.p_value), r.paired,
                        int(r.significant), " ".join(map(str, r.seeds)), csv_number(r.paper),
                        r.paper_setting if r.paper is not None else "",
                    ]
                )  # fmt: skip
        return buf.getvalue()

    def to_latex(self) -> str:
        head = self.header()
        spec = "l" + "r" * (len(head) - 1)
        lines = [f"% {self.title}; generated by mea-cli; needs \\usepackage{{booktabs}}"]
        for t in self.tables:
            lines += [
                f"% {t.label}",
                "\\begin{tabular}{" + spec + "}",
                "\\toprule",
                f"\\multicolumn{{{len(head)}}}{{l}}{{{tex_escape(t.label)}}} \\\\",
                " & ".join(tex_escape(h).replace("±", "$\\pm$") for h in head) + " \\\\",
                "\\midrule",
            ]
            for r in t.rows:
                cells = [
                    tex_escape(c).replace("±", "$\\pm$").replace(MARK, "$^{\\dagger}$")
                    for c in self.cells(t, r)
                ]
                lines.append(" & ".join(cells) + " \\\\")
            lines += ["\\bottomrule", "\\end{tabular}", ""]
        lines.append("% " + self.footnote())
        lines += [f"% {d}" for d in self.deviations]
        return "\n".join(lines) + "\n"

    def to_rich(self) -> Group:
        """One rich table per metric, then the footnote."""
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        out: list = []
        for t in self.tables:
            table = Table(title=Text(f"{self.title}: {t.label}"), title_justify="left")
            for i, h in enumerate(self.header()):
                table.add_column(h, justify="left" if i == 0 else "right")
            for r in t.rows:
                table.add_row(*self.cells(t, r))
            out.append(table)
        return Group(*out, Text(self.footnote()), *(Text(d) for d in self.deviations))


def build_tables(
    title: str,
    results: Mapping[str, Mapping[int, Mapping[str, float]]],
    metrics: Sequence[str],
    paper: Mapping[str, Mapping[str, float]] | None = None,
    paper_settings: Mapping[str, str] | None = None,
) -> CompareTables:
    """Per-metric tables from ``{model: {seed: metrics}}`` (the first model is the reference);
    ``paper`` maps model -> metric -> printed value, or is None (no paper column);
    ``paper_settings`` maps a model to the setting its paper row was measured in when that is
    not unaligned (``"word-aligned"``), shown beside its paper values."""
    models = list(results)
    ref = models[0]
    tables = []
    for key in metrics:
        rows = []
        base = results[ref]
        for model in models:
            per_seed = results[model]
            seeds = sorted(per_seed)
            st = Stat.of([per_seed[s].get(key, float("nan")) for s in seeds])
            common = sorted(set(per_seed) & set(base))
            a = [base[s].get(key, float("nan")) for s in common]
            b = [per_seed[s].get(key, float("nan")) for s in common]
            paired = int(np.sum(np.isfinite(a) & np.isfinite(b)))
            p = float("nan") if model == ref else paired_p_value(a, b)
            value = None if paper is None else paper.get(model, {}).get(key)
            ref_mean = Stat.of([base[s].get(key, float("nan")) for s in sorted(base)]).mean
            setting = (paper_settings or {}).get(model, "")
            rows.append(ModelRow(model, seeds, st, st.mean - ref_mean, p, paired, value, setting))
        tables.append(MetricTable(key, rows))
    return CompareTables(title, tables, with_paper=paper is not None)


def plot_bars(tables: CompareTables, path: Path) -> Path:
    """Write :func:`bars_figure` as a PNG at ``path``."""
    return save_png(bars_figure(tables), path)


def bars_figure(tables: CompareTables) -> Figure:
    """One panel per metric: a bar per model (mean), error bar one sample std (none for n=1),
    the significance mark above significant bars, the paper's value as a hollow diamond (with
    its setting beside it when that is not unaligned). Units as in the tables (accuracies and
    F1 in %), axes from 0 (:func:`mea_cli.viz.metric_ylim`); a metric no model has a
    finite value of gets no panel (it is named under the title)."""
    drawn = [t for t in tables.tables if any(math.isfinite(r.stat.mean) for r in t.rows)]
    empty = [t.label for t in tables.tables if t not in drawn]
    n = max(len(drawn), 1)
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig, axes = new_figure(3.4 * cols, 3.0 * rows, rows, cols)
    for i in range(rows * cols):
        ax = axes[i // cols, i % cols]
        if i >= len(drawn):
            if i == 0:
                note_empty(ax, "no model has a finite value of any metric")
            else:
                ax.set_axis_off()
            continue
        t = drawn[i]
        s = scale(t.metric)
        xs = np.arange(len(t.rows))
        means = np.array([r.stat.mean * s for r in t.rows])
        stds = np.nan_to_num([r.stat.std * s for r in t.rows])
        ax.bar(xs, means, yerr=stds, capsize=4, color="#9ecae1", edgecolor="#3182bd")
        for x, r, m, e in zip(xs, t.rows, means, stds, strict=True):
            if r.significant and math.isfinite(m):
                ax.annotate(MARK, (x, m + e), textcoords="offset points", xytext=(0, 2), ha="center")
            if math.isfinite(m):
                ax.annotate(f"{m:.{digits(t.metric)}f}", (x, m), textcoords="offset points",
                            xytext=(4, 2), ha="left", va="bottom", fontsize=7)  # fmt: skip
            if r.paper is not None:
                ax.plot(x, r.paper, marker="D", mfc="none", color="#e6550d")
                if r.paper_setting:  # e.g. FDMER's rows: word-aligned, not unaligned
                    ax.annotate(r.paper_setting, (x, r.paper), textcoords="offset points",
                                xytext=(5, -3), fontsize=6, color="#e6550d")  # fmt: skip
        ax.set_xticks(xs, [r.model for r in t.rows])
        ax.set_title(t.label + ("" if s == 1 else " (%)"), fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        papers = [r.paper for r in t.rows if r.paper is not None]
        lo, hi = metric_ylim(t.metric, [*(means + stds), *(means - stds), *papers], s == 100.0)
        ax.set_ylim(bottom=lo)
        if hi is not None:
            ax.set_ylim(top=hi)
    title = tables.title + (f"\n(no finite value, not drawn: {', '.join(empty)})" if empty else "")
    fig.suptitle(title, fontsize=10)
    return fig

