"""Sensitivity analysis (``mea sweep``): retrain with one config field varied (paper Figs. 7-9).

The MEA paper varies one hyper-parameter at a time while keeping the others fixed: the PSA
coefficient mu (Fig. 7, Eq. 2), the trade-off weights alpha and beta of Eq. 20 (Fig. 8), and the
numbers of PSA and HCA layers (Fig. 9). ``mea sweep mu=0,0.1,0.2`` does exactly that on any run:
each value is trained with the run's data, config and seeds (multi-seed, resumable, see
:mod:`mea_cli.ablate.runner`), then shown as a table (mean +- std, change against the first
value) and as a line plot with one panel per metric and error bars of one standard deviation.

Keys name a field of the run's model config (``mu``, ``alpha``, ``psa_layers``, ...) or, with a
``train.`` prefix, a training setting (``train.lr``). Anything else is an error that lists the
valid keys.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mea_cli.ablate.errors import SweepError
from mea_cli.ablate.table import VALID_PREFIX, ResultTable, digits, metric_label, scale
from mea_cli.config import parse_text
from mea_cli.viz import metric_ylim, new_figure, note_empty, save_png

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class SweepSpec:
    """One swept key: ``train.`` prefix stripped into ``target`` ("model" or "train")."""

    key: str
    target: str
    values: tuple[Any, ...]
    text: tuple[str, ...]  # the values as the user typed them (row labels, directory names)

    @property
    def display(self) -> str:
        return self.key if self.target == "model" else f"train.{self.key}"

    def row_key(self, i: int) -> str:
        return f"{self.display}={_safe(self.text[i])}"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "_", text)


def parse_spec(
    item: str, model_fields: Mapping[str, Any], train_fields: Mapping[str, Any]
) -> SweepSpec:
    """Parse ``key=v1,v2,...`` and check the key against the run's config fields.

    Values are typed like the field's current value (int fields must get integers, numeric
    fields numbers); ``ablations`` cannot be swept (use ``mea ablate``).
    """
    key, sep, rest = item.partition("=")
    key = key.strip()
    if not sep or not key or not rest.strip():
        raise SweepError(f"sweep setting {item!r}: expected key=v1,v2,... (e.g. mu=0,0.1,0.2)")
    target, name, fields = "model", key.removeprefix("model."), model_fields
    if key.startswith("train."):
        target, name, fields = "train", key[len("train.") :], train_fields
    if name not in fields or name == "ablations":
        valid = sorted(k for k in model_fields if k != "ablations")
        raise SweepError(
            f"sweep key {key!r} is not a field of the run's {target} config; model fields: "
            f"{', '.join(valid)}; training settings: "
            f"{', '.join('train.' + k for k in sorted(train_fields))}"
        )
    texts = tuple(t.strip() for t in rest.split(",") if t.strip())
    if len(texts) < 1:
        raise SweepError(f"sweep setting {item!r}: no values after '='")
    if len(set(texts)) != len(texts):
        raise SweepError(f"sweep setting {item!r}: a value is repeated")
    current = fields[name]
    values = []
    for t in texts:
        v = parse_text(t)
        if isinstance(current, bool):
            ok = isinstance(v, bool)
        elif isinstance(current, int):
            ok = isinstance(v, int) and not isinstance(v, bool)
        elif isinstance(current, float):
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            v = float(v) if ok else v
        else:
            ok = True
        if not ok:
            raise SweepError(
                f"sweep key {key!r} holds {type(current).__name__} values (run has {current!r}); "
                f"got {t!r}"
            )
        values.append(v)
    return SweepSpec(name, target, tuple(values), texts)


def plot_sweep(table: ResultTable, spec: SweepSpec, path: Path, title: str = "") -> Path:
    """Write :func:`sweep_figure` as a PNG at ``path``."""
    return save_png(sweep_figure(table, spec, title), path)


def sweep_figure(table: ResultTable, spec: SweepSpec, title: str = "") -> Figure:
    """Line plot of mean +- std per metric against the swept values (Figs. 7-9 style), valid
    dashed and test solid, in the tables' units (accuracies and F1 in %) on axes from 0
    (:func:`mea_cli.viz.metric_ylim`). A metric with no finite value at any swept
    value gets no panel (it is named under the title)."""
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in spec.values)
    xs = np.asarray(spec.values, dtype=float) if numeric else np.arange(len(spec.values))
    # the line joins the values in their order on the axis, whatever the rows' order
    order = np.argsort(xs, kind="stable")
    xs = xs[order]

    def finite(col: str) -> bool:
        return col in table.metrics and any(
            col in row.stats and math.isfinite(row.stats[col].mean) for row in table.rows
        )

    keys = [k for k in table.metrics if not k.startswith(VALID_PREFIX)]
    metrics = [k for k in keys if finite(k) or finite(VALID_PREFIX + k)]
    empty = [metric_label(k) for k in keys if k not in metrics]
    fig, axes = new_figure(3.6 * max(len(metrics), 1), 3.2, 1, max(len(metrics), 1))
    if not metrics:
        note_empty(axes[0, 0], "no finite value of any metric at any swept value")
    for c, key in enumerate(metrics):
        ax = axes[0, c]
        s = scale(key)
        shown: list[float] = []
        for col, style, name in ((VALID_PREFIX + key, "--", "valid"), (key, "-", "test")):
            if col not in table.metrics:
                continue
            rows = [table.rows[i] for i in order]
            means = np.array([row.stats[col].mean * s for row in rows])
            stds = np.nan_to_num([row.stats[col].std * s for row in rows])  # n=1: no bar
            shown += [*(means - stds), *(means + stds)]
            ax.errorbar(
                xs, means, yerr=stds, marker="o", capsize=3, linewidth=1.5, linestyle=style,
                label=name,
            )  # fmt: skip
            for x, m in zip(xs, means, strict=True):
                if np.isfinite(m):
                    ax.annotate(
                        f"{m:.{digits(key)}f}",
                        (x, m),
                        textcoords="offset points",
                        xytext=(0, 6),
                        ha="center",
                        fontsize=7,
                    )
        if VALID_PREFIX + key in table.metrics:
            ax.legend(fontsize=7)
        ax.set_xlabel(spec.display)
        ax.set_ylabel(metric_label(key) + ("" if s == 1 else " (%)"))
        if not numeric:
            ax.set_xticks(xs, [spec.text[i] for i in order])
        lo, hi = metric_ylim(key, shown, s == 100.0)
        ax.set_ylim(bottom=lo)
        if hi is not None:
            ax.set_ylim(top=hi)
        ax.grid(alpha=0.3)
    if empty:
        title = (title or f"Sensitivity to {spec.display}") + (
            f"\n(no finite value, not drawn: {', '.join(empty)})"
        )
    fig.suptitle(title or f"Sensitivity to {spec.display}", fontsize=10)
    return fig


def values_table_entries(
    spec: SweepSpec, results: Mapping[str, Mapping[int, Mapping[str, float]]]
) -> list[tuple[str, str, str, Mapping[int, Mapping[str, float]]]]:
    """Table entries (one per value, in the order given) for :func:`build_table`."""
    return [
        (spec.row_key(i), f"{spec.display} = {spec.text[i]}", "", results.get(spec.row_key(i), {}))
        for i in range(len(spec.values))
    ]


def check_specs(specs: Sequence[SweepSpec]) -> None:
    """Refuse the same key twice (each key is its own one-at-a-time sweep)."""
    seen = set()
    for s in specs:
        if s.display in seen:
            raise SweepError(f"sweep key {s.display!r} given twice; put all its values in one list")
        seen.add(s.display)
