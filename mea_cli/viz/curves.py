"""Training curves from a run's ``log.jsonl`` (one JSON object per epoch, written by the trainer).

Every numeric field of the records is a curve against ``epoch`` (nested dicts become ``a/b``).
The panels, left to right, only those the run logged:

- **task loss**: the task term on train (``train/task``) and valid (``valid/task_loss``), the
  loss the metrics judge, alone on its axis (from 0);
- **auxiliary loss terms**: the model's other named terms (unweighted, as logged: the total
  multiplies them by alpha / beta / gamma) and the totals; each legend entry says what it is;
- **MAE** (in the label's units, which can be 0-100 on a custom task), from 0;
- **accuracy / F1 in %** (as the tables print them), the axis from 0 to 100;
- **Corr** (Pearson, -1 to 1) and any other metric on their own axes.

Every panel marks the chosen epoch: the one whose weights ``ckpt.pt`` keeps (best valid
selection metric, the last record's ``best``). Bookkeeping fields (``lr``, ``seconds``,
``best/*``, a closed-form model's candidate ``c``) are not drawn. Records without an ``epoch``
field (e.g. a final summary line) are skipped, so the reader accepts a log that grows with new
kinds of lines.

A model fitted in closed form (capability ``closed_form_fit``: the functionals baseline) has
no epochs: each "epoch" of its log is one regularisation value ``C`` of its grid
(``train/c``), fitted on train and scored on valid. Its curves (``closed_form=True``) are drawn
against ``C`` on a log axis, the marker says "chosen C", and its losses are task losses (it
has no other terms).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.ticker import MaxNLocator

from mea_cli.metric_names import metric_label
from mea_cli.viz.figures import VizError, new_figure, save_png

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Curves = dict[str, list[tuple[float, float]]]

TERMS: dict[str, str] = {
    "task": "task loss",
    "dis": "L_dis disparity (HSIC)",
    "sep": "L_sep separation",
    "agn": "L_agn agnostic discriminator",
    "exc": "L_exc exclusive discriminator",
    "spe": "L_spe specific discriminator",
    "imp": "L_imp modality-importance discriminator",
    "con": "L_con consistency",
    "ami": "L_ami adversarial (agnostic)",
    "ams": "L_ams adversarial (specific)",
    "ami_ce": "L_ami (cross-entropy)",
    "ams_ce": "L_ams (cross-entropy)",
}
"""What each loss term a model names in ``ModelOutput.losses`` is (the legend's words)."""

SKIP = frozenset({"time", "seconds", "elapsed", "lr", "lr_step", "step", "c"})
CHOSEN_GID = "chosen-epoch"
"""The ``gid`` of the vertical line marking the chosen epoch in every panel."""


@dataclass(frozen=True)
class Panel:
    """One axis of the figure: its y label, its curves (already in the panel's units), its
    y limits (``None``: automatic) and the legend label of each curve."""

    ylabel: str
    curves: Curves
    labels: dict[str, str]
    ylim: tuple[float | None, float | None] = (None, None)


@dataclass(frozen=True)
class Chosen:
    """The epoch whose weights the checkpoint keeps and the metric that chose it."""

    epoch: int
    metric: str


def _flatten(record: dict, prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, prefix=f"{name}/"))
        elif (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and math.isfinite(float(value))
        ):
            out[name] = float(value)
    return out


def _records(path: Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise VizError(f"{path}: no training log (log.jsonl) found")
    out = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise VizError(f"{path}: line {lineno} is not JSON ({err.msg})") from None
            if isinstance(record, dict) and "epoch" in record:
                out.append(record)
    return out


def read_curves(path: Path) -> Curves:
    """Curves ``name -> [(epoch, value), ...]`` from ``log.jsonl``; nested dicts become ``a/b``."""
    curves: Curves = {}
    for record in _records(path):
        flat = _flatten(record)
        epoch = flat.pop("epoch")
        for name, value in flat.items():
            curves.setdefault(name, []).append((epoch, value))
    if not curves:
        raise VizError(f"{path}: no per-epoch records with numeric fields")
    return curves


def read_chosen(path: Path) -> Chosen | None:
    """The chosen epoch of ``log.jsonl`` (its last record's ``best``), or ``None`` if absent."""
    records = _records(path)
    best = records[-1].get("best") if records else None
    if not isinstance(best, dict) or not isinstance(best.get("epoch"), int) or best["epoch"] < 1:
        return None
    return Chosen(best["epoch"], str(best.get("metric", "")))


def _is_percent(key: str) -> bool:
    """Accuracies and F1 (``acc7``, ``acc2_non0``, ``f1``, ``f1_macro``, ``acc_happy``)."""
    return re.match(r"(acc\d*|f1)(_|$)", key.split("/")[-1]) is not None


def _loss_label(key: str, closed_form: bool = False) -> str:
    split, _, term = key.rpartition("/")
    split = split or "train"
    if term == "loss" and closed_form:  # no weighted terms: the total is the task loss
        return f"{split} task loss" + (" (the fit of each C)" if split == "train" else "")
    if term == "loss":
        return f"{split} total (task + weighted terms)"
    if term == "task_loss":
        return f"{split} task loss"
    return f"{split} {TERMS.get(term, term)}" + ("" if term == "task" else ", unweighted")


def _metric_label(key: str) -> str:
    """``valid/acc2_has0`` -> ``valid Acc-2 (has0)``: the tables' names of the metrics."""
    split, _, name = key.rpartition("/")
    return f"{split} {metric_label(name)}".strip()


def curve_panels(curves: Curves, closed_form: bool = False) -> list[Panel]:
    """The panels to draw (module docstring), only non-empty ones; ``closed_form``: a
    closed-form model's log, whose totals are its task losses (a split's ``loss`` is left out
    where its ``task_loss`` is drawn: the same curve)."""
    kept = {
        k: v
        for k, v in curves.items()
        if k.split("/")[-1].lower() not in SKIP and not k.startswith("best/")
    }
    if closed_form:
        kept = {
            k: v for k, v in kept.items()
            if not (k.endswith("/loss") and k[: -len("loss")] + "task_loss" in kept)
        }  # fmt: skip
    losses = {k: v for k, v in kept.items() if "loss" in k.lower() or k.startswith("train/")}
    task = {k: v for k, v in losses.items() if k.split("/")[-1] in ("task", "task_loss")}
    aux = {k: v for k, v in losses.items() if k not in task}
    task_label = "task loss"
    if not task:  # a log without a task term: the totals are the loss
        task, aux, task_label = aux, {}, "loss"
    elif all(k.split("/")[-1] == "loss" for k in aux):  # totals only: they are the task loss
        task, aux = {**task, **aux}, {}
    rest = {k: v for k, v in kept.items() if k not in losses}
    mae = {k: v for k, v in rest.items() if k.split("/")[-1] == "mae"}
    pct = {k: [(e, 100.0 * y) for e, y in v] for k, v in rest.items() if _is_percent(k)}
    corr = {k: v for k, v in rest.items() if k.split("/")[-1] == "corr"}
    other = {k: v for k, v in rest.items() if k not in mae and k not in pct and k not in corr}
    panels = [
        Panel(
            task_label, task, {k: _loss_label(k, closed_form) for k in task}, (_low(task), None)
        ),
        Panel("auxiliary loss terms", aux, {k: _loss_label(k) for k in aux}, (_low(aux), None)),
        Panel("MAE (label units)", mae, {k: _metric_label(k) for k in mae}, (0.0, None)),
        Panel("accuracy / F1 (%)", pct, {k: _metric_label(k) for k in pct}, (0.0, 100.0)),
        Panel("Corr (Pearson)", corr, {k: _metric_label(k) for k in corr}, (-1.0, 1.0)),
        Panel("other metrics", other, {k: _metric_label(k) for k in other}),
    ]
    return [p for p in panels if p.curves]


def _low(curves: Curves) -> float | None:
    """0 for non-negative curves (losses are), else automatic (an adversarial term can be < 0)."""
    return 0.0 if all(y >= 0 for v in curves.values() for _, y in v) else None


def plot_curves(
    curves: Curves,
    path: Path,
    title: str = "",
    chosen: Chosen | None = None,
    closed_form: bool = False,
) -> Path:
    """Write :func:`curves_figure` as a PNG at ``path``."""
    return save_png(curves_figure(curves, title, chosen, closed_form), path)


def by_c(curves: Curves) -> tuple[Curves, dict[float, float]]:
    """A closed-form model's curves against its regularisation value ``C`` (``train/c`` of
    each record) instead of the record's number, and the record number -> ``C``."""
    c_of = dict(curves.get("train/c", []))
    if not c_of or any(c <= 0 for c in c_of.values()):
        raise VizError("the log of a closed-form model has no positive C per record (train/c)")
    out = {
        k: sorted((c_of[e], y) for e, y in v if e in c_of)
        for k, v in curves.items()
        if k != "train/c"
    }
    return {k: v for k, v in out.items() if v}, c_of


def curves_figure(
    curves: Curves, title: str = "", chosen: Chosen | None = None, closed_form: bool = False
) -> Figure:
    """The panels of :func:`curve_panels` against epoch, the chosen epoch marked in each; with
    ``closed_form``, against the regularisation value ``C`` (log axis) of each record, the
    chosen ``C`` marked (module docstring)."""
    c_of: dict[float, float] = {}
    if closed_form:
        curves, c_of = by_c(curves)
    panels = curve_panels(curves, closed_form)
    if not panels:
        raise VizError("nothing to draw: the log has no loss or metric curves")
    fig, axes = new_figure(4.6 * len(panels), 5.2, 1, len(panels))
    for c, panel in enumerate(panels):
        ax = axes[0, c]
        for key, points in sorted(panel.curves.items()):
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", markersize=3, linewidth=1.2, label=panel.labels[key])
        if chosen is not None and closed_form and chosen.epoch in c_of:
            ax.axvline(
                c_of[chosen.epoch], color="0.3", linestyle="--", linewidth=1.0, gid=CHOSEN_GID,
                label=f"chosen C = {c_of[chosen.epoch]:g} (best valid {chosen.metric})",
            )  # fmt: skip
        elif chosen is not None and not closed_form:
            ax.axvline(
                chosen.epoch, color="0.3", linestyle="--", linewidth=1.0, gid=CHOSEN_GID,
                label=f"chosen epoch {chosen.epoch} (best valid {chosen.metric})",
            )  # fmt: skip
        if closed_form:
            ax.set_xscale("log")
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        lo, hi = panel.ylim
        if lo is not None:
            ax.set_ylim(bottom=lo)
        if hi is not None:
            ax.set_ylim(top=hi)
        elif lo is not None:  # room above the highest point, which autoscale puts on the edge
            top = max(y for v in panel.curves.values() for _, y in v)
            ax.set_ylim(top=lo + 1.1 * (top - lo) if top > lo else lo + 1.0)
        ax.set_xlabel("regularisation C (log scale)" if closed_form else "epoch")
        ax.set_ylabel(panel.ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.16))  # below: no hiding
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
