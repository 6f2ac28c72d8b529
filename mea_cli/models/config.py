"""The MEA configuration (``MEAConfig``) with the Table I presets, and override parsing.

Table I of the paper (hyper-parameters chosen on each validation set)::

    setting            MOSI   MOSEI  IEMOCAP
    batch size         32     64     32
    epochs             60     100    60
    hidden d           40     40     40
    output d_h         64     64     64
    learning rate      1e-3   2e-3   1e-3
    attention heads    8      10     8
    kernel L/V/A       3/3/3  3/3/3  3/3/5
    mu                 0.25   0.15   0.2
    alpha              2e-2   3e-2   1e-2
    beta               3e-2   5e-2   2e-2

plus ``M = 3`` PSA layers and ``N = 2`` HCA layers (Sec. IV-B). The remaining fields are our
choices where the paper is silent (dropout, FFN width, gradient-reversal strength, DGF
self-loops, the task loss, the WAL form, the Eq. 2 form); ``docs/model.md`` lists them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mea_cli import MODALITIES
from mea_cli.errors import MeaError
from mea_cli.models.losses import TASK_LOSSES
from mea_cli.models.switches import validate as validate_switches

PAPER_INPUT_DIMS: dict[str, int] = {"text": 300, "vision": 35, "audio": 74}
"""GloVe 300 / Facet 35 / COVAREP 74 (Sec. IV-B), used when no feature store is given."""

TASKS: tuple[str, ...] = ("regression", "binary-multilabel")

TABLE_I: dict[str, dict[str, Any]] = {
    "mosi": dict(
        batch_size=32,
        epochs=60,
        lr=1e-3,
        heads=8,
        kernel_sizes=(3, 3, 3),
        mu=0.25,
        alpha=2e-2,
        beta=3e-2,
    ),
    "mosei": dict(
        batch_size=64,
        epochs=100,
        lr=2e-3,
        heads=10,
        kernel_sizes=(3, 3, 3),
        mu=0.15,
        alpha=3e-2,
        beta=5e-2,
    ),
    "iemocap": dict(
        batch_size=32,
        epochs=60,
        lr=1e-3,
        heads=8,
        kernel_sizes=(3, 3, 5),
        mu=0.2,
        alpha=1e-2,
        beta=2e-2,
    ),
}
"""Per-dataset rows of Table I (``d = 40`` and ``d_h = 64`` are common to all three)."""

DATASET_TASKS: dict[str, tuple[str, int]] = {
    "mosi": ("regression", 1),
    "mosei": ("regression", 1),
    "iemocap": ("binary-multilabel", 4),
}


class ConfigError(MeaError):
    """A model configuration that cannot be built (bad value, unknown field or dataset)."""


@dataclass(frozen=True)
class MEAConfig:
    """Everything needed to build an :class:`mea_cli.models.mea.MEA` (JSON-able)."""

    dataset: str = "mosi"
    task: str = "regression"
    num_labels: int = 1
    input_dims: dict[str, int] = field(default_factory=lambda: dict(PAPER_INPUT_DIMS))
    # Table I
    batch_size: int = 32
    epochs: int = 60
    lr: float = 1e-3
    d: int = 40
    d_h: int = 64
    heads: int = 8
    kernel_sizes: tuple[int, ...] = (3, 3, 3)
    mu: float = 0.25
    alpha: float = 2e-2
    beta: float = 3e-2
    psa_layers: int = 3
    hca_layers: int = 2
    # where the paper is silent
    dropout: float = 0.1
    attn_dropout: float = 0.0
    ffn_mult: int = 4
    task_loss: str = "mse"
    grl_lambda: float = 1.0
    wal_literal: bool = False
    wal_max_len: int = 50
    dgf_self_loops: bool = False
    psa_literal_eq2: bool = False
    ablations: tuple[str, ...] = ()
    # execution only (the same numbers either way; docs/performance.md)
    attn_group_budget: int = 1 << 20
    checkpoint_psa: bool = True
    checkpoint_hca: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "kernel_sizes", tuple(int(k) for k in self.kernel_sizes))
        object.__setattr__(self, "input_dims", {str(m): int(v) for m, v in self.input_dims.items()})
        object.__setattr__(self, "ablations", validate_switches(self.ablations))
        problems = []
        if self.task not in TASKS:
            problems.append(f"task must be one of {', '.join(TASKS)}, not {self.task!r}")
        if self.task == "regression" and self.num_labels != 1:
            problems.append(
                f"a regression model predicts one value, not num_labels={self.num_labels}"
            )
        if self.num_labels < 1:
            problems.append("num_labels must be at least 1")
        if sorted(self.input_dims) != sorted(MODALITIES):
            problems.append(
                f"input_dims must name {', '.join(MODALITIES)}, got {', '.join(self.input_dims) or 'none'}"
            )
        if any(v < 1 for v in self.input_dims.values()):
            problems.append("every input dimension must be at least 1")
        if len(self.kernel_sizes) != len(MODALITIES) or any(
            k < 1 or k % 2 == 0 for k in self.kernel_sizes
        ):
            problems.append(
                f"kernel_sizes must be three odd positive sizes (L/V/A), not {self.kernel_sizes}"
            )
        if self.d < 2 or self.d % 2:
            problems.append(f"d must be even (two LSTM directions of d/2), not {self.d}")
        if self.heads < 1 or self.d % self.heads:
            problems.append(f"d={self.d} must be divisible by heads={self.heads}")
        if not 0.0 <= self.mu <= 1.0:
            problems.append(f"mu must lie in [0, 1], not {self.mu}")
        if self.psa_layers < 1 or self.hca_layers < 1:
            problems.append(
                "psa_layers and hca_layers must be at least 1 (use the psa / hca switches to remove them)"
            )
        if self.d_h < 1 or self.ffn_mult < 1 or self.wal_max_len < 1:
            problems.append("d_h, ffn_mult and wal_max_len must be positive")
        if not (0.0 <= self.dropout < 1.0 and 0.0 <= self.attn_dropout < 1.0):
            problems.append("dropout and attn_dropout must lie in [0, 1)")
        if self.attn_group_budget < 0:
            problems.append("attn_group_budget must be 0 (off) or a positive number of map entries")
        if self.task_loss not in TASK_LOSSES:
            problems.append(
                f"task_loss must be one of {', '.join(TASK_LOSSES)}, not {self.task_loss!r}"
            )
        if problems:
            raise ConfigError("invalid MEA configuration: " + "; ".join(problems))

    @property
    def kernel(self) -> dict[str, int]:
        """Kernel size per modality (Table I's L/V/A)."""
        return dict(zip(MODALITIES, self.kernel_sizes, strict=True))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (tuples become lists)."""
        out = dataclasses.asdict(self)
        out["kernel_sizes"] = list(self.kernel_sizes)
        out["ablations"] = list(self.ablations)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MEAConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        return override(cls(), data, coerce_strings=False)

    @classmethod
    def preset(
        cls,
        dataset: str,
        input_dims: Mapping[str, int] | None = None,
        task: str | None = None,
        num_labels: int | None = None,
    ) -> MEAConfig:
        """Table I preset for ``dataset`` (mosi, mosei, iemocap) with the given data shape."""
        key = dataset.lower()
        if key not in TABLE_I:
            raise ConfigError(f"no MEA preset for dataset {dataset!r}; valid: {', '.join(TABLE_I)}")
        default_task, default_k = DATASET_TASKS[key]
        return cls(
            dataset=key,
            task=task or default_task,
            num_labels=num_labels or default_k,
            input_dims=dict(input_dims or PAPER_INPUT_DIMS),
            **TABLE_I[key],
        )


def _parse(name: str, default: Any, value: Any) -> Any:
    """Turn a command-line string into the type of the field's default."""
    text = str(value).strip()
    try:
        if isinstance(default, bool):
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, tuple):
            if text in ("", "()", "[]"):
                return ()
            items = [s for s in text.replace("/", ",").strip("()[]").split(",") if s.strip()]
            if default and isinstance(default[0], int):
                return tuple(int(s) for s in items)
            return tuple(s.strip() for s in items)
        if isinstance(default, dict):
            return json.loads(text)
    except (ValueError, json.JSONDecodeError):
        raise ConfigError(f"cannot read {name}={text!r} as {type(default).__name__}") from None
    return text


def override(cfg: Any, overrides: Mapping[str, Any], coerce_strings: bool = True) -> Any:
    """Copy of dataclass config ``cfg`` with ``overrides`` (field=value) applied.

    Unknown fields raise :class:`ConfigError` listing the valid ones. With ``coerce_strings``,
    string values (from ``--set key=value`` or ``mea sweep mu=...``) are parsed to the field's
    type: ``mu=0.3``, ``wal_literal=true``, ``kernel_sizes=3/3/5``, ``ablations=psa,wal``.
    """
    names = [f.name for f in dataclasses.fields(cfg)]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise ConfigError(
            f"unknown {type(cfg).__name__} field {', '.join(unknown)}; valid fields: {', '.join(names)}"
        )
    changes = {}
    for key, value in overrides.items():
        default = getattr(cfg, key)
        if coerce_strings and isinstance(value, str) and not isinstance(default, str):
            value = _parse(key, default, value)
        elif isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        changes[key] = value
    return dataclasses.replace(cfg, **changes)
