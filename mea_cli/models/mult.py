"""MulT, the Multimodal Transformer baseline (Tsai et al., ACL 2019; arXiv 1906.00295).

Forward pass for a :class:`~mea_cli.batch.Batch` (L = text, V = vision, A = audio)::

    X̂_m     = Conv1D(X_m, k_m)                        Eq. 2  ('same' padding, bias-free, -> d)
    Z^[0]_m  = sqrt(d) X̂_m + PE                        Eq. 3  (inside every transformer)
    Z_{s->t} = CM transformer, D layers (Z_t, Z^[0]_s) Eq. 4  six ordered pairs, Q from t, K/V from s
    Z_t      = [Z_{s1->t}; Z_{s2->t}]                  Sec. 3.2, concatenated: 2d channels
    h_t      = pool(SelfAttnTransformer_t(Z_t))        Sec. 3.2 "memory"; last real step (or mean)
    h        = [h_L; h_V; h_A]
    pred     = W_out (h + W_2 Drop(ReLU(W_1 h)))       residual MLP head; [B, 1] or [B, K, 2]
    L        = L1 (regression) or per-emotion cross-entropy (IEMOCAP)

Equation and section numbers are those of arXiv 1906.00295 as we read it. The layers live in
:mod:`mea_cli.models.crossmodal`. Presets are the paper's Table 5
(:data:`TABLE_5`); the values the paper does not give are the public code's defaults or our
choice, and say so. Every deviation from the paper and from the public code
(yaohungt/Multimodal-Transformer) is listed, with its reason, in ``docs/models/mult.md``.

Ablation switches (:data:`SWITCHES`) are the crossmodal-only rows of the paper's Table 3: each
keeps the two crossmodal transformers into one target modality and that target's memory, and
removes the other four crossmodal transformers and two memories (no parameters, no computation).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from mea_cli import MODALITIES
from mea_cli.batch import Batch
from mea_cli.models.config import (
    DATASET_TASKS,
    PAPER_INPUT_DIMS,
    TASKS,
    ConfigError,
    override,
)
from mea_cli.models.crossmodal import MulTEncoder, last_real_step
from mea_cli.models.inputs import check_batch
from mea_cli.models.losses import TASK_LOSSES, task_loss
from mea_cli.models.masking import apply_mask, masked_mean
from mea_cli.models.output import ModelOutput
from mea_cli.models.registry import register_model
from mea_cli.models.switches import Switch


@dataclass(frozen=True)
class Table5Row:
    """One column of MulT's Table 5 ("Hyperparameters of MulT we use for the various tasks")."""

    batch_size: int
    lr: float
    optimizer: str
    d: int
    crossmodal_blocks: int
    heads: int
    kernel_sizes: tuple[int, int, int]  # L / V / A
    text_embedding_dropout: float
    crossmodal_attention_dropout: float
    output_dropout: float
    grad_clip: float
    epochs: int


TABLE_5: dict[str, Table5Row] = {
    # CMU-MOSI: the paper's text kernel is "1 or 3"; we take 3 (our choice, see below)
    "mosi": Table5Row(128, 1e-3, "Adam", 40, 4, 10, (3, 3, 3), 0.2, 0.2, 0.1, 0.8, 100),
    # CMU-MOSEI: text kernel "1 or 3", 3 taken
    "mosei": Table5Row(16, 1e-3, "Adam", 40, 4, 8, (3, 3, 3), 0.3, 0.1, 0.1, 1.0, 20),
    "iemocap": Table5Row(32, 2e-3, "Adam", 40, 4, 10, (3, 3, 5), 0.3, 0.25, 0.1, 0.8, 30),
}
"""Table 5 of Tsai et al. (2019), per dataset. The text kernel of MOSEI and MOSI is printed
"1 or 3"; we use 3 for the unaligned setting this toolkit trains (Sec. 3.1 motivates the
temporal convolution by each element's awareness of its neighbours, which a kernel of 1 lacks).
``grad_clip`` is a training setting: the trainer's clip is today the dataset preset's."""

SWITCHES: tuple[Switch, ...] = (
    Switch(
        "only-text",
        "Crossmodal Transformers only: [V,A -> L] (Table 3)",
        "keep V->L, A->L and the text memory; remove the other four crossmodal transformers and the vision and audio memories",
    ),
    Switch(
        "only-vision",
        "Crossmodal Transformers only: [L,A -> V] (Table 3)",
        "keep L->V, A->V and the vision memory; remove the other four crossmodal transformers and the text and audio memories",
    ),
    Switch(
        "only-audio",
        "Crossmodal Transformers only: [L,V -> A] (Table 3)",
        "keep L->A, V->A and the audio memory; remove the other four crossmodal transformers and the text and vision memories",
    ),
)
"""MulT's own ablation switches (Table 3's crossmodal-only rows); at most one at a time."""

POOLING: tuple[str, ...] = ("last", "mean")
DROPOUTS: tuple[str, ...] = (
    "text_dropout",
    "attn_dropout",
    "attn_dropout_vision",
    "attn_dropout_audio",
    "out_dropout",
    "embed_dropout",
    "relu_dropout",
    "res_dropout",
)
"""Every dropout rate of :class:`MulTConfig`."""


def targets_for(ablations: Iterable[str]) -> tuple[str, ...]:
    """The target modalities MulT builds under the switches (all three without one)."""
    chosen = tuple(ablations)
    if not chosen:
        return MODALITIES
    return (chosen[0].removeprefix("only-"),)


@dataclass(frozen=True)
class MulTConfig:
    """Everything needed to build :class:`MulT` (JSON-able); presets from :data:`TABLE_5`.

    Table 5 fields: ``batch_size``, ``epochs``, ``lr`` (shared with the trainer, which reads
    them as it reads MEA's), ``d``, ``layers`` (crossmodal blocks D), ``heads``,
    ``kernel_sizes`` (L/V/A), ``text_dropout`` (textual embedding dropout), ``attn_dropout``
    and the per-target ``attn_dropout_vision`` / ``attn_dropout_audio`` (crossmodal attention
    block dropout: one value in the paper, three arguments in the code, all three set to the
    paper's value), ``out_dropout`` (output dropout).

    Not in the paper, from the public code: ``embed_dropout`` (dropout on every transformer's
    embedded input; the code drives it and the text dropout from one argument, so the presets
    give it the text value), ``memory_layers`` (the code builds ``max(D, 3)`` = 4),
    ``relu_dropout`` and ``res_dropout`` (code defaults, 0.1). Ours: ``pool`` ("last": the last
    real step, the code's intent; "mean": masked mean), ``causal`` (the future mask, off; the
    code has it on), ``task_loss`` (L1, the code's regression loss).
    """

    dataset: str = "mosi"
    task: str = "regression"
    num_labels: int = 1
    input_dims: dict[str, int] = field(default_factory=lambda: dict(PAPER_INPUT_DIMS))
    # Table 5 (MOSI column as the defaults)
    batch_size: int = 128
    epochs: int = 100
    lr: float = 1e-3
    d: int = 40
    layers: int = 4
    heads: int = 10
    kernel_sizes: tuple[int, ...] = (3, 3, 3)
    text_dropout: float = 0.2
    attn_dropout: float = 0.2
    attn_dropout_vision: float = 0.2
    attn_dropout_audio: float = 0.2
    out_dropout: float = 0.1
    # from the public code
    embed_dropout: float = 0.2
    memory_layers: int = 4
    relu_dropout: float = 0.1
    res_dropout: float = 0.1
    # our choices
    pool: str = "last"
    causal: bool = False
    task_loss: str = "l1"
    ablations: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "kernel_sizes", tuple(int(k) for k in self.kernel_sizes))
        object.__setattr__(self, "input_dims", {str(m): int(v) for m, v in self.input_dims.items()})
        given = tuple(str(s).strip() for s in self.ablations if str(s).strip())
        object.__setattr__(self, "ablations", tuple(dict.fromkeys(given)))
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
        if self.d < 1 or self.heads < 1 or self.d % self.heads:
            problems.append(f"d={self.d} must be a positive multiple of heads={self.heads}")
        if self.layers < 1 or self.memory_layers < 1:
            problems.append("layers and memory_layers must be at least 1")
        bad = [k for k in DROPOUTS if not 0.0 <= getattr(self, k) < 1.0]
        if bad:
            problems.append(f"{', '.join(bad)} must lie in [0, 1)")
        if self.pool not in POOLING:
            problems.append(f"pool must be one of {', '.join(POOLING)}, not {self.pool!r}")
        if self.task_loss not in TASK_LOSSES:
            problems.append(
                f"task_loss must be one of {', '.join(TASK_LOSSES)}, not {self.task_loss!r}"
            )
        if self.batch_size < 1 or self.epochs < 1 or self.lr <= 0:
            problems.append("batch_size, epochs and lr must be positive")
        names = [s.name for s in SWITCHES]
        unknown = [s for s in self.ablations if s not in names]
        if unknown:
            problems.append(
                f"unknown MulT ablation switch {', '.join(unknown)}; MulT's switches: {', '.join(names)}"
            )
        elif len(self.ablations) > 1:
            problems.append(
                f"MulT switches {' and '.join(self.ablations)} cannot be combined "
                f"(each keeps a different single target modality)"
            )
        if problems:
            raise ConfigError("invalid MulT configuration: " + "; ".join(problems))

    @property
    def kernel(self) -> dict[str, int]:
        """Kernel size per modality (Table 5's L/V/A)."""
        return dict(zip(MODALITIES, self.kernel_sizes, strict=True))

    @property
    def target_attn_dropout(self) -> dict[str, float]:
        """Attention dropout of the crossmodal transformers into each target modality."""
        return {
            "text": self.attn_dropout,
            "vision": self.attn_dropout_vision,
            "audio": self.attn_dropout_audio,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (tuples become lists)."""
        out = dataclasses.asdict(self)
        out["kernel_sizes"] = list(self.kernel_sizes)
        out["ablations"] = list(self.ablations)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MulTConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        return override(cls(), data, coerce_strings=False)

    @classmethod
    def preset(
        cls,
        dataset: str,
        input_dims: Mapping[str, int] | None = None,
        task: str | None = None,
        num_labels: int | None = None,
    ) -> MulTConfig:
        """Table 5 preset for ``dataset`` (mosi, mosei, iemocap) with the given data shape."""
        key = dataset.lower()
        if key not in TABLE_5:
            raise ConfigError(
                f"no MulT preset for dataset {dataset!r}; valid: {', '.join(TABLE_5)}"
            )
        row = TABLE_5[key]
        default_task, default_k = DATASET_TASKS[key]
        return cls(
            dataset=key,
            task=task or default_task,
            num_labels=num_labels or default_k,
            input_dims=dict(input_dims or PAPER_INPUT_DIMS),
            batch_size=row.batch_size,
            epochs=row.epochs,
            lr=row.lr,
            d=row.d,
            layers=row.crossmodal_blocks,
            heads=row.heads,
            kernel_sizes=row.kernel_sizes,
            text_dropout=row.text_embedding_dropout,
            embed_dropout=row.text_embedding_dropout,
            attn_dropout=row.crossmodal_attention_dropout,
            attn_dropout_vision=row.crossmodal_attention_dropout,
            attn_dropout_audio=row.crossmodal_attention_dropout,
            out_dropout=row.output_dropout,
            memory_layers=max(row.crossmodal_blocks, 3),
        )


@register_model("mult", MulTConfig)
class MulT(nn.Module):
    """The Multimodal Transformer; see the module docstring for the equations."""

    def __init__(self, cfg: MulTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.modalities = MODALITIES
        self.targets = targets_for(cfg.ablations)
        d = cfg.d
        self.proj = nn.ModuleDict(
            {
                m: nn.Conv1d(
                    cfg.input_dims[m], d, cfg.kernel[m], padding=cfg.kernel[m] // 2, bias=False
                )
                for m in self.modalities
            }
        )
        self.text_drop = nn.Dropout(cfg.text_dropout)

        def encoder(width: int, layers: int, attn_dropout: float) -> MulTEncoder:
            return MulTEncoder(
                width,
                cfg.heads,
                layers,
                attn_dropout,
                cfg.relu_dropout,
                cfg.res_dropout,
                cfg.embed_dropout,
                cfg.causal,
            )

        self.crossmodal = nn.ModuleDict(
            {
                f"{s}_to_{t}": encoder(d, cfg.layers, cfg.target_attn_dropout[t])
                for t in self.targets
                for s in self.sources(t)
            }
        )
        self.memory = nn.ModuleDict(
            {t: encoder(2 * d, cfg.memory_layers, cfg.attn_dropout) for t in self.targets}
        )
        width = 2 * d * len(self.targets)
        self.proj1 = nn.Linear(width, width)
        self.proj2 = nn.Linear(width, width)
        self.out_drop = nn.Dropout(cfg.out_dropout)
        out_dim = 1 if cfg.task == "regression" else 2 * cfg.num_labels
        self.out_layer = nn.Linear(width, out_dim)

    def sources(self, target: str) -> tuple[str, ...]:
        """The two source modalities of ``target``, in :data:`mea_cli.MODALITIES` order."""
        return tuple(m for m in self.modalities if m != target)

    # ------------------------------------------------------------------ helpers
    def component_parameters(self) -> dict[str, int]:
        """Trainable parameter count per component."""

        def count(*mods: nn.Module) -> int:
            return sum(t.numel() for m in mods for t in m.parameters() if t.requires_grad)

        groups: dict[str, int] = {
            "temporal convolutions (Eq. 2)": count(self.proj),
        }
        for name, mod in self.crossmodal.items():
            s, t = name.split("_to_")
            groups[f"crossmodal {s} -> {t} (Eq. 4)"] = count(mod)
        for t, mod in self.memory.items():
            groups[f"self-attention memory of {t}"] = count(mod)
        groups["residual head (proj1, proj2, out)"] = count(self.proj1, self.proj2, self.out_layer)
        return groups

    def num_parameters(self) -> int:
        """Total trainable parameters."""
        return sum(t.numel() for t in self.parameters() if t.requires_grad)

    # ------------------------------------------------------------------ forward
    def forward(self, batch: Batch, return_attention: bool = False) -> ModelOutput:
        """Predictions, the task loss, the pooled memory of each target and (on request) maps.

        ``reps["memory"][t]`` is ``h_t [B, 2d]`` (zeros for a sample whose ``t`` is empty).
        Maps: ``crossmodal/<layer>/<target>/<source>`` ``[B, K, T_target, T_source]`` and the
        self-attention maps ``memory/<layer>/<target>`` ``[B, K, T_target, T_target]`` (the
        ``<block>/<layer>/<modality>`` form ``mea viz`` draws; MEA's HCA maps are likewise
        four-part).
        """
        check_batch(batch, self.modalities, self.cfg.input_dims, "MulT")
        cfg = self.cfg
        masks = {m: batch.masks[m].to(torch.bool) for m in self.modalities}
        attention: dict[str, torch.Tensor] | None = {} if return_attention else None
        x = {m: apply_mask(batch.inputs[m], masks[m]) for m in self.modalities}
        x["text"] = self.text_drop(x["text"])
        # Eq. 2: masked input, 'same' padding, so a real step near the end sees zeros beyond it
        low = {
            m: apply_mask(self.proj[m](x[m].transpose(1, 2)).transpose(1, 2), masks[m])
            for m in self.modalities
        }
        pooled = []
        for t in self.targets:
            streams = []
            for s in self.sources(t):
                z, maps = self.crossmodal[f"{s}_to_{t}"](
                    low[t], masks[t], low[s], masks[s], need_weights=return_attention
                )
                streams.append(z)
                if attention is not None:
                    attention.update({f"crossmodal/{i}/{t}/{s}": a for i, a in enumerate(maps)})
            h, maps = self.memory[t](
                torch.cat(streams, dim=-1), masks[t], need_weights=return_attention
            )
            if attention is not None:
                attention.update({f"memory/{i}/{t}": a for i, a in enumerate(maps)})
            pooled.append(
                last_real_step(h, masks[t]) if cfg.pool == "last" else masked_mean(h, masks[t])
            )
        last = torch.cat(pooled, dim=-1)
        hidden = self.proj2(self.out_drop(F.relu(self.proj1(last)))) + last
        pred = self.out_layer(hidden)
        if cfg.task != "regression":
            pred = pred.view(pred.shape[0], cfg.num_labels, 2)
        reps = {"memory": dict(zip(self.targets, pooled, strict=True))}
        out = ModelOutput(pred=pred, reps=reps, attention=attention)
        if batch.labels is None:
            return out
        loss = task_loss(pred, batch.labels, cfg.task, cfg.task_loss)
        out.loss = loss
        out.losses = {"task": loss.detach()}
        return out
