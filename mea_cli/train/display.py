"""The live training display: a rich table that updates in place on a terminal, one plain line
per epoch otherwise (pipes, CI logs, tests), and nothing on non-zero distributed ranks.

Each epoch shows the epoch number, the training loss terms of Eq. 20 (total, task, dis, agn,
exc, as the model names them), the validation loss and selection metric, the best value so far
(with its epoch), the learning rate, seconds per epoch and an ETA for the remaining epochs.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from mea_cli.metric_names import metric_label
from mea_cli.train.metrics import format_metric


def _fmt_seconds(s: float) -> str:
    s = int(round(s))
    return (
        f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


class TrainDisplay:
    """Show training progress; ``enabled=False`` (non-zero ranks) shows nothing."""

    def __init__(
        self,
        console: Console,
        title: str,
        total_epochs: int,
        selection: str,
        enabled: bool = True,
        live: bool | None = None,
    ) -> None:
        self.console = console
        self.title = title
        self.total = total_epochs
        self.selection = selection
        self.enabled = enabled
        self.use_live = console.is_terminal if live is None else live
        self.rows: list[dict[str, Any]] = []
        self._live: Live | None = None
        self._t0 = time.perf_counter()
        self._epoch_times: list[float] = []

    def __enter__(self) -> TrainDisplay:
        if self.enabled and self.use_live:
            self._live = Live(self._table(), console=self.console, refresh_per_second=4)
            self._live.__enter__()
        elif self.enabled:
            self.console.print(f"{self.title}: up to {self.total} epochs", highlight=False)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None

    def eta(self, epoch: int) -> float:
        """Seconds left at the mean epoch time so far (early stopping may end sooner)."""
        if not self._epoch_times:
            return float("nan")
        mean = sum(self._epoch_times) / len(self._epoch_times)
        return mean * max(self.total - epoch, 0)

    def update(self, record: dict[str, Any]) -> None:
        """Add one epoch (a ``log.jsonl`` record) to the display."""
        self._epoch_times.append(float(record.get("seconds", 0.0)))
        if not self.enabled:
            return
        self.rows.append(record)
        if self._live is not None:
            self._live.update(self._table())
        else:
            self.console.print(self._line(record), highlight=False, soft_wrap=True)

    def _line(self, r: dict[str, Any]) -> str:
        train = " ".join(f"{k}={v:.4f}" for k, v in r["train"].items() if v is not None)
        sel = self.selection
        valid = r["valid"]
        best = r["best"]
        return (
            f"epoch {r['epoch']}/{self.total}  train {train}  valid loss={valid['loss']:.4f} "
            f"{metric_label(sel)}={format_metric(sel, valid.get(sel))}  best "
            f"{format_metric(sel, best['value'])} (epoch {best['epoch']})  lr={_lr(r['lr'], '.2e')}  "
            f"{r['seconds']:.1f}s  eta {_fmt_seconds(self.eta(r['epoch']))}"
        )

    def _table(self) -> Table:
        t = Table(title=self.title, title_justify="left", expand=False)
        keys: list[str] = []
        for r in self.rows:
            keys += [k for k in r["train"] if k not in keys]
        t.add_column("epoch", justify="right")
        for k in keys:
            t.add_column(f"train {k}", justify="right")
        t.add_column("valid loss", justify="right")
        t.add_column(f"valid {metric_label(self.selection)}", justify="right")
        t.add_column("best", justify="right")
        t.add_column("lr", justify="right")
        t.add_column("s/epoch", justify="right")
        for r in self.rows[-12:]:
            best = r["best"]
            t.add_row(
                f"{r['epoch']}/{self.total}",
                *("" if r["train"].get(k) is None else f"{r['train'][k]:.4f}" for k in keys),
                f"{r['valid']['loss']:.4f}",
                format_metric(self.selection, r["valid"].get(self.selection)),
                f"{format_metric(self.selection, best['value'])} @{best['epoch']}",
                _lr(r["lr"], ".1e"),
                f"{r['seconds']:.1f}",
            )
        if self.rows:
            last = self.rows[-1]["epoch"]
            t.caption = (
                f"elapsed {_fmt_seconds(time.perf_counter() - self._t0)}, "
                f"ETA {_fmt_seconds(self.eta(last))} (at most; early stopping may end sooner)"
            )
        return t


def _lr(value: float | None, spec: str) -> str:
    """The learning rate, or ``-`` for a model fitted in closed form (no optimiser)."""
    return "-" if value is None else format(value, spec)
