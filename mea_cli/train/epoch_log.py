"""Per-epoch loggers beside ``log.jsonl``: ``mea train --log tensorboard``.

The trainer hands every epoch record (the very dict it appends to ``log.jsonl``) to an
:class:`EpochLog`; each logger named by ``--log`` writes it in its own format. The one logger
today is TensorBoard (``torch.utils.tensorboard``, which needs the ``tensorboard`` package, the
``tensorboard`` extra): every numeric field of the record becomes a scalar at step ``epoch``,
named by its path in the record (``train/loss``, ``train/task``, ``valid/acc2``, ``lr``, ...),
so TensorBoard shows exactly the numbers of ``log.jsonl``. A model with the
``modality_weights`` capability (MEA's WAL, Eq. 6) also gets ``psi/layer<i>/<modality>``: the
mean over the valid split of its modality weights after the epoch (one extra no-grad pass over
valid; only when TensorBoard logging is on).

Events go to ``<seed dir>/tensorboard/``; ``tensorboard --logdir runs`` finds every run. On
``--resume`` the writer purges the events of epochs after the last completed one (as
``log.jsonl`` is truncated), so a resumed run shows each epoch once.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from mea_cli.errors import MeaError

LOGGERS: tuple[str, ...] = ("tensorboard",)
TB_DIR = "tensorboard"


class EpochLogError(MeaError):
    """A logger that cannot be used (unknown name, package not installed)."""


class EpochLogger(Protocol):
    """One destination for the epoch records."""

    def epoch(self, record: Mapping[str, Any]) -> None: ...

    def close(self) -> None: ...


def parse_loggers(names: Sequence[str]) -> tuple[str, ...]:
    """``--log`` values (repeatable or comma-separated) checked against :data:`LOGGERS`; a
    missing package is reported here, before any run directory is made."""
    out = tuple(dict.fromkeys(n.strip() for item in names for n in item.split(",") if n.strip()))
    bad = [n for n in out if n not in LOGGERS]
    if bad:
        raise EpochLogError(
            f"--log {', '.join(bad)}: unknown logger; choose from {', '.join(LOGGERS)}"
        )
    if "tensorboard" in out:
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            raise EpochLogError(
                "--log tensorboard needs the tensorboard package: pip install 'mea-cli[tensorboard]'"
            ) from None
    return out


def scalars(record: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The finite numeric fields of an epoch record by path (``valid/acc2``), ``epoch`` and
    booleans left out: what the loggers write for one epoch."""
    out: dict[str, float] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(scalars(value, prefix=f"{name}/"))
        elif (
            name != "epoch"
            and isinstance(value, (int, float))
            and not isinstance(value, bool)
            and math.isfinite(float(value))
        ):
            out[name] = float(value)
    return out


class TensorBoardLog:
    """Scalars of each epoch record (and the valid split's mean psi) as TensorBoard events."""

    def __init__(
        self,
        log_dir: Path,
        last_epoch: int,
        psi: Callable[[], Mapping[str, float]] | None = None,
    ) -> None:
        from torch.utils.tensorboard import SummaryWriter

        if last_epoch == 0:  # a fresh start: no events of an earlier attempt
            shutil.rmtree(log_dir, ignore_errors=True)
        self.psi = psi
        self.writer = SummaryWriter(str(log_dir), purge_step=last_epoch + 1 if last_epoch else None)

    def epoch(self, record: Mapping[str, Any]) -> None:
        step = int(record["epoch"])
        values = scalars(record)
        if self.psi is not None:
            values.update(self.psi())
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class EpochLog:
    """Every logger of a seed's training; :meth:`epoch` is the trainer's one call per epoch."""

    def __init__(self, loggers: Sequence[EpochLogger] = ()) -> None:
        self.loggers = list(loggers)

    @classmethod
    def open(
        cls,
        names: Sequence[str],
        out_dir: Path,
        last_epoch: int,
        psi: Callable[[], Mapping[str, float]] | None = None,
        enabled: bool = True,
    ) -> EpochLog:
        """The loggers ``names`` for a seed directory; none on a distributed rank other than
        the main one (``enabled`` False). ``last_epoch``: the epochs already done (resume)."""
        if not enabled:
            return cls()
        made: list[EpochLogger] = []
        if "tensorboard" in names:
            made.append(TensorBoardLog(Path(out_dir) / TB_DIR, last_epoch, psi))
        return cls(made)

    def epoch(self, record: Mapping[str, Any]) -> None:
        for logger in self.loggers:
            logger.epoch(record)

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()

    def __enter__(self) -> EpochLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def mean_psi(model: Any, loader: Any, device: Any, modalities: Sequence[str]) -> dict[str, float]:
    """The mean over ``loader``'s samples of the model's modality weights psi, per layer and
    modality, as ``{"psi/layer1/text": ..., ...}`` (empty when the model reports none)."""
    import torch

    sums: list[torch.Tensor] = []
    count = 0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for batch in loader:
            out = model(batch.to(device))
            for i, p in enumerate(out.psi or []):
                total = p.float().sum(dim=0).cpu()
                if len(sums) <= i:
                    sums.append(total)
                else:
                    sums[i] += total
            count += len(batch)
    model.train(was_training)
    return {
        f"psi/layer{i + 1}/{m}": float(s[j]) / max(count, 1)
        for i, s in enumerate(sums)
        for j, m in enumerate(modalities)
    }
