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

from collections.abc import Mapping

import torch
from torch import nn
from torch.nn import functional as F

from mea_cli import MODALITIES
from mea_cli.batch import Batch
from mea_cli.models.core.contract import (
    Deviation,
)
from mea_cli.models.core.inputs import check_batch
from mea_cli.models.core.losses import task_loss
from mea_cli.models.core.masking import apply_mask, masked_mean
from mea_cli.models.core.output import ModelOutput, prediction_size, shape_prediction
from mea_cli.models.core.paper import load_paper
from mea_cli.models.core.params import trainable_parameters
from mea_cli.models.core.registry import register_model
from mea_cli.models.mult.config import DROPOUTS, MulTConfig
from mea_cli.models.mult.crossmodal import MulTEncoder, last_real_step
from mea_cli.models.mult.switches import SWITCHES, capabilities, targets_for

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
