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
:mod:`mea_cli.models.mult.crossmodal`. Presets are the paper's Table 5
(:data:`TABLE_5`); the values the paper does not give are the public code's defaults or our
choice, and say so. Every deviation from the paper and from the public code
(yaohungt/Multimodal-Transformer) is listed, with its reason, in ``docs/models/mult.md``.

Ablation switches (:data:`SWITCHES`) are the crossmodal-only rows of the paper's Table 3: each
keeps the two crossmodal transformers into one target modality and that target's memory, and
removes the other four crossmodal transformers and two memories (no parameters, no computation).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from mea_cli import MODALITIES
from mea_cli.batch import Batch
from mea_cli.models.core.contract import (
    Deviation,
    ModelConfig,
    Switch,
    SwitchSet,
    choice_problems,
    kernel_by_modality,
    kernel_problems,
)
from mea_cli.models.core.inputs import check_batch
from mea_cli.models.core.losses import TASK_LOSSES, task_loss
from mea_cli.models.core.masking import apply_mask, masked_mean
from mea_cli.models.core.output import ModelOutput, prediction_size, shape_prediction
from mea_cli.models.core.paper import load_paper
from mea_cli.models.core.params import trainable_parameters
from mea_cli.models.core.registry import register_model
from mea_cli.models.mult.crossmodal import MulTEncoder, last_real_step

TABLE_5: dict[str, dict[str, Any]] = {
    # CMU-MOSI: the paper's text kernel is "1 or 3"; we take 3 (our choice, see below)
    "mosi": dict(
        heads=10, kernel_sizes=(3, 3, 3), text_dropout=0.2, attn_dropout=0.2, out_dropout=0.1
    ),
    # CMU-MOSEI: text kernel "1 or 3", 3 taken
    "mosei": dict(
        heads=8, kernel_sizes=(3, 3, 3), text_dropout=0.3, attn_dropout=0.1, out_dropout=0.1
    ),
    "iemocap": dict(
        heads=10, kernel_sizes=(3, 3, 5), text_dropout=0.3, attn_dropout=0.25, out_dropout=0.1
    ),
}
"""The per-dataset model rows of Table 5 of Tsai et al. (2019) ("Hyperparameters of MulT we use
for the various tasks"): attention heads, temporal-convolution kernel sizes L/V/A, textual
embedding dropout, crossmodal attention block dropout, output dropout. ``d = 40`` and 4
crossmodal blocks are common to the three columns (the field defaults). The training rows of
Table 5 (batch size 128 / 16 / 32, learning rate 1e-3 / 1e-3 / 2e-3, epochs 100 / 20 / 30,
gradient clip 0.8 / 1.0 / 0.8, Adam) are training hyper-parameters: they live in
``paper_mult.json`` beside this module. The text kernel of MOSEI and MOSI is printed "1 or 3"; we use 3
for the unaligned setting this toolkit trains (Sec. 3.1 motivates the temporal convolution by
each element's awareness of its neighbours, which a kernel of 1 lacks)."""


def _preset_rows() -> dict[str, dict[str, Any]]:
    """:data:`TABLE_5` as config presets: the one crossmodal attention dropout of the paper
    feeds the three per-source arguments of the code, and the code drives the embedding dropout
    from the text-dropout argument, so the presets do the same."""
    rows = {}
    for ds, row in TABLE_5.items():
        rows[ds] = dict(
            row,
            attn_dropout_vision=row["attn_dropout"],
            attn_dropout_audio=row["attn_dropout"],
            embed_dropout=row["text_dropout"],
        )
    return rows


MEMORY_ORDER: dict[str, tuple[str, str]] = {
    "text": ("audio", "vision"),
    "vision": ("text", "audio"),
    "audio": ("text", "vision"),
}
"""The two crossmodal streams of each target, in the order its memory concatenates them
(``Z_t = [Z_{s1->t}; Z_{s2->t}]``): the public code's (``h_ls = cat([l_with_a, l_with_v])``,
``h_as = cat([a_with_l, a_with_v])``, ``h_vs = cat([v_with_l, v_with_a])``; MMSA's is the
same), so the memory's first ``d`` channels see the same stream as in any reference
configuration. The order changes no function, only which weights see which stream (the toolkit
used :data:`mea_cli.MODALITIES` order before, which swapped the text memory's halves)."""

TARGETS_ONLY: dict[str, str] = {f"only-{m}": m for m in MODALITIES}
"""Each switch and the one target modality it keeps."""


def _only(target: str) -> Switch:
    """The Table 3 row "Crossmodal Transformers only: [S1, S2 -> target]": it removes the
    crossmodal transformers into the other two targets and their memories."""
    sources = [m for m in MODALITIES if m != target]
    letter = {"text": "L", "vision": "V", "audio": "A"}
    removed = [f"crossmodal.{s}_to_{t}.*" for t in sources for s in MODALITIES if s != t]
    return Switch(
        f"only-{target}",
        f"Crossmodal Transformers only: [{','.join(letter[s] for s in sources)} -> "
        f"{letter[target]}] (Table 3)",
        f"keep {' and '.join(f'{s}->{target}' for s in sources)} and the {target} memory; "
        "remove the other four crossmodal transformers and the other two memories",
        removes=(*removed, *(f"memory.{t}.*" for t in sources)),
    )


SWITCHES = SwitchSet(
    tuple(_only(m) for m in MODALITIES),
    exclusive_groups=(frozenset(TARGETS_ONLY),),
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
    kept = [TARGETS_ONLY[s] for s in ablations if s in TARGETS_ONLY]
    return tuple(kept[:1]) or MODALITIES


def capabilities(cfg: object) -> set[str]:
    """What a MulT built from ``cfg`` provides: the self-attention maps of every modality's
    memory, unless a switch keeps one target only (then two modalities have no memory)."""
    return {"attention_maps"} if len(targets_for(getattr(cfg, "ablations", ()))) == 3 else set()


@dataclass(frozen=True)
class MulTConfig(ModelConfig):
    """Everything needed to build :class:`MulT` (JSON-able); presets from :data:`TABLE_5`.

    Table 5 fields: ``d``, ``layers`` (crossmodal blocks D), ``heads``, ``kernel_sizes``
    (L/V/A), ``text_dropout`` (textual embedding dropout), ``attn_dropout`` and the per-source
    ``attn_dropout_vision`` / ``attn_dropout_audio`` (crossmodal attention block dropout: one
    value in the paper, three arguments in the code keyed by the *source* modality, as
    :attr:`source_attn_dropout` says; all three set to the paper's value; ``attn_dropout`` also
    drives every memory, as in the code),
    ``out_dropout`` (output dropout). Batch size, epochs, learning rate and the gradient clip of
    Table 5 are training settings (``paper_mult.json``).

    Not in the paper, from the public code: ``embed_dropout`` (dropout on every transformer's
    embedded input; the code drives it and the text dropout from one argument, so the presets
    give it the text value), ``memory_layers`` (the code builds ``max(D, 3)`` = 4),
    ``relu_dropout`` and ``res_dropout`` (code defaults, 0.1). Ours: ``pool`` ("last": the last
    real step, the code's intent; "mean": masked mean), ``causal`` (the future mask in every
    transformer, on: the code's default ``--attn_mask`` and MMSA's ``attn_mask: true``, which every
    published MulT number used; the paper describes none; ours is defined on real lengths, see
    :func:`~mea_cli.models.mult.crossmodal.future_mask`), ``task_loss`` (L1, the code's regression
    loss).

    Execution only, the same numbers either way (``docs/models/mult.md``, "Efficiency"):
    ``attn_group_budget`` (map entries per length group of the attention; 0: no groups) and
    ``attn_saved_mib`` (CPU training: a step that would keep more than this many MiB of
    attention maps for its backward pass keeps none, recomputing the dropout ones and running
    the fused kernel for the rest; 0: never keep a map; :meth:`MulT.saved_attention_bytes`).
    """

    # Table 5 (MOSI column as the defaults)
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
    causal: bool = True
    task_loss: str = "l1"
    # execution only (the same numbers either way; docs/performance.md)
    attn_group_budget: int = 1 << 20
    attn_saved_mib: int = 4096

    WHAT: ClassVar[str] = "MulT configuration"
    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = _preset_rows()
    PRESET_SOURCE: ClassVar[str] = (
        "MulT (Tsai et al., ACL 2019) Table 5; memory depth and embedding dropout from the "
        "public code (yaohungt/Multimodal-Transformer)"
    )

    def problems(self) -> list[str]:
        out = super().problems()
        out += kernel_problems(self.kernel_sizes)
        if self.d < 1 or self.heads < 1 or self.d % self.heads:
            out.append(f"d={self.d} must be a positive multiple of heads={self.heads}")
        if self.layers < 1 or self.memory_layers < 1:
            out.append("layers and memory_layers must be at least 1")
        bad = [k for k in DROPOUTS if not 0.0 <= getattr(self, k) < 1.0]
        if bad:
            out.append(f"{', '.join(bad)} must lie in [0, 1)")
        if self.attn_group_budget < 0:
            out.append("attn_group_budget must be 0 (off) or a positive number of map entries")
        if self.attn_saved_mib < 0:
            out.append("attn_saved_mib must be 0 (never keep a map) or a positive size in MiB")
        out += choice_problems("pool", self.pool, POOLING)
        out += choice_problems("task_loss", self.task_loss, TASK_LOSSES)
        return out

    @property
    def kernel(self) -> dict[str, int]:
        """Kernel size per modality (Table 5's L/V/A)."""
        return kernel_by_modality(self.kernel_sizes)

    @property
    def source_attn_dropout(self) -> dict[str, float]:
        """Attention dropout of the crossmodal transformers *from* each source modality, keyed
        as the public code's ``get_network`` and MMSA key it: "text with audio" (audio -> text)
        and "vision with audio" use ``attn_dropout_audio`` (the code's ``attn_dropout_a``), the
        two from vision ``attn_dropout_vision``, the two from text ``attn_dropout``."""
        return {
            "text": self.attn_dropout,
            "vision": self.attn_dropout_vision,
            "audio": self.attn_dropout_audio,
        }


_DOC = "docs/models/mult.md#deviations-shown-with-results"
DEVIATIONS: tuple[Deviation, ...] = (
    Deviation(
        "causal",
        "future mask on in every transformer, as the public code (on real lengths); the paper "
        "describes none",
        _DOC,
        lambda cfg: cfg.causal,
    ),
    Deviation(
        "non-causal",
        "future mask off (causal=false); the public code, which every published MulT number "
        "used, has it on",
        _DOC,
        lambda cfg: not cfg.causal,
    ),
    Deviation("pre-ln", "pre-LN residuals as the public code; Eq. 4 reads post-LN", _DOC),
    Deviation("embed-scale", "inputs scaled by sqrt(d) before PE (the code's; Eq. 3 has no scale)", _DOC),
)
"""MulT's deviations from its paper, printed under result tables (``docs/models/mult.md``)."""


@register_model(
    "mult",
    MulTConfig,
    switches=SWITCHES,
    capabilities=("attention_maps",),
    capabilities_for=capabilities,
    tiny=dict(d=8, heads=2, layers=1, memory_layers=1, **dict.fromkeys(DROPOUTS, 0.0)),
    description="MulT: the Multimodal Transformer for unaligned sequences (Tsai et al., ACL 2019)",
    deviations=DEVIATIONS,
    paper=load_paper(__package__, "mult"),
    small=dict(d=32, heads=4, layers=2, memory_layers=2),  # --preset small
)
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
                cfg.attn_group_budget,
            )

        self.crossmodal = nn.ModuleDict(
            {
                f"{s}_to_{t}": encoder(d, cfg.layers, cfg.source_attn_dropout[s])
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
        out_dim = prediction_size(cfg)  # the contract's output head: every task
        self.out_layer = nn.Linear(width, out_dim)

    def sources(self, target: str) -> tuple[str, ...]:
        """The two source modalities of ``target`` in the order the memory concatenates them
        (:data:`MEMORY_ORDER`, the public code's)."""
        return MEMORY_ORDER[target]

    # ------------------------------------------------------------------ helpers
    def component_parameters(self) -> dict[str, int]:
        """Trainable parameter count per component."""
        count = trainable_parameters
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
        return trainable_parameters(self)

    def block_settings(self) -> dict[str, str]:
        """Each transformer's attention dropout, future mask and depth, read from the built
        modules (``mea info --model mult``): which rate each crossmodal transformer really got."""
        out = {}
        blocks = [(f"crossmodal {n.replace('_to_', ' -> ')}", e) for n, e in self.crossmodal.items()]
        blocks += [(f"memory of {t} ({' + '.join(self.sources(t))})", e) for t, e in self.memory.items()]
        for name, enc in blocks:
            rate = enc.layers[0].attn.dropout
            mask = "causal" if enc.causal else "no future mask"
            out[name] = f"attention dropout {rate:g}, {mask}, {len(enc.layers)} layers"
        return out

    def saved_attention_bytes(self, masks: Mapping[str, torch.Tensor]) -> int:
        """Bytes of attention maps a CPU training step keeps for its backward pass: 12 per real
        map entry with attention dropout (weights, mask, dropped weights, fp32), 4 without (the
        weights); length groups make the computed entries close to the real ones. 0 when the
        step forms no map (evaluation, no gradient, CUDA).

        Above ``attn_saved_mib`` the step keeps none instead: dropout attention recomputes its
        maps in the backward pass (activation checkpointing), the rest runs SDPA's fused kernel.
        """
        if not (self.training and torch.is_grad_enabled()):
            return 0
        lens = {m: masks[m].sum(dim=1).to(torch.float64) for m in self.modalities}
        if next(iter(lens.values())).device.type != "cpu":
            return 0
        total = 0.0
        for name, enc in self.crossmodal.items():
            s, t = name.split("_to_")
            per_entry = 12 if self.cfg.source_attn_dropout[s] > 0 else 4
            total += per_entry * len(enc.layers) * float((lens[t] * lens[s]).sum())
        per_entry = 12 if self.cfg.attn_dropout > 0 else 4
        for t, enc in self.memory.items():
            total += per_entry * len(enc.layers) * float((lens[t] ** 2).sum())
        return int(self.cfg.heads * total)

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
        recompute = self.saved_attention_bytes(masks) > cfg.attn_saved_mib * 2**20
        pooled = []
        for t in self.targets:
            streams = []
            for s in self.sources(t):
                z, maps = self.crossmodal[f"{s}_to_{t}"](
                    low[t],
                    masks[t],
                    low[s],
                    masks[s],
                    need_weights=return_attention,
                    recompute_attention=recompute,
                )
                streams.append(z)
                if attention is not None:
                    attention.update({f"crossmodal/{i}/{t}/{s}": a for i, a in enumerate(maps)})
            h, maps = self.memory[t](
                torch.cat(streams, dim=-1),
                masks[t],
                need_weights=return_attention,
                recompute_attention=recompute,
            )
            if attention is not None:
                attention.update({f"memory/{i}/{t}": a for i, a in enumerate(maps)})
            pooled.append(
                last_real_step(h, masks[t]) if cfg.pool == "last" else masked_mean(h, masks[t])
            )
        last = torch.cat(pooled, dim=-1)
        hidden = self.proj2(self.out_drop(F.relu(self.proj1(last)))) + last
        pred = shape_prediction(self.out_layer(hidden), cfg)
        reps = {"memory": dict(zip(self.targets, pooled, strict=True))}
        out = ModelOutput(pred=pred, reps=reps, attention=attention)
        if batch.labels is None:
            return out
        loss = task_loss(pred, batch.labels, cfg.task, cfg.task_loss)
        out.loss = loss
        out.losses = {"task": loss.detach()}
        return out
