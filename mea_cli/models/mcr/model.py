"""MCR: target and source modality co-reinforcement (Yang et al., Knowledge-Based Systems 2023).

Forward pass for a :class:`~mea_cli.batch.Batch` (the MCR paper, Sec. 3.2, Fig. 1(b))::

    Z_m          = PE + sqrt(d) Conv1d_m(X_m)                       Sec. 3.2 (no recurrence)
    targets Z_t^{[0]} = Z_t,  sources Z_s^{[0]} = Z_s (a copy),  Z_ds^{[0]} = [Z_s1, Z_s2]
    per layer i and target t (sources s1, s2 = the two other modalities):
        Z_ta = CMU_{s1,s2->t}(Z_s1, Z_s2, Z_t)                      Eq. 2-5
        Z_tb = SCU_{[s1,s2]->t}(Z_ds, Z_t)                          Eq. 6-11
        Z_t  <- Z_ta + Z_tb                                         (parallel structure)
    between layers: Z_s, Z_ds <- SUM(Z_t, Z_s)                      Eq. 12-16
    Z_fin = [Z_L, Z_V, Z_A] (concatenated over time) -> transformer encoder -> masked mean
    pred  = FC(...)                                                 L1 (regression) / CE loss

Only the task loss is trained (the paper has no auxiliary term). The Table 5 rows are the
switches in :data:`SWITCHES` (read in one place, :func:`parts`); its "w/ Serial Structure" row
changes wiring only, so it is the config field ``serial`` (a switch must declare a removed part,
loss or output). Decisions where the paper is silent: ``docs/models/mcr.md``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

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
from mea_cli.models.layers.attention import QKV, SkipFeedForward, attend
from mea_cli.models.layers.extractor import UnimodalExtractor
from mea_cli.models.mcr.cmu import CMU
from mea_cli.models.mcr.config import MCRConfig
from mea_cli.models.mcr.scu import SCU
from mea_cli.models.mcr.sum import SourceUpdate
from mea_cli.models.mcr.switches import SWITCHES, Parts, capabilities, parts


# ------------------------------------------------------------------------ the model
class EncoderLayer(nn.Module):
    """The transformer encoder over ``Z_fin`` (pre-LN: ``Z + SA(LN(Z))``, ``Z + FFN(LN(Z))``)."""

    def __init__(self, d: int, heads: int, dropout: float, attn_dropout: float, ffn_mult: int):
        super().__init__()
        self.ln = nn.LayerNorm(d)
        self.qkv = QKV(d, heads)
        self.attn_drop = nn.Dropout(attn_dropout)
        self.drop = nn.Dropout(dropout)
        self.ffn = SkipFeedForward(d, ffn_mult, dropout)

    def forward(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.ln(z)
        out, _ = attend(self.qkv, h, h, mask, mask, self.attn_drop, need_weights=False)
        return apply_mask(self.ffn(z + self.drop(out)), mask)


class ReinforcementLayer(nn.Module):
    """One modality reinforcement layer: a CMU and an SCU per target (either may be removed)."""

    def __init__(self, cfg: MCRConfig, p: Parts) -> None:
        super().__init__()
        lens = cfg.max_lengths
        common = dict(
            d=cfg.d,
            heads=cfg.heads,
            dropout=cfg.dropout,
            attn_dropout=cfg.attn_dropout,
            ffn_mult=cfg.ffn_mult,
        )
        self.cmu = (
            nn.ModuleDict(
                {
                    t: CMU(
                        **common,
                        mutual=p.mutual,
                        kernel=cfg.cmu_kernel,
                        literal=(lens[a], lens[b]) if cfg.cmu_literal else None,
                        source_names=(a, b),
                    )
                    for t, (a, b) in p.sources_of.items()
                }
            )
            if p.cmu
            else None
        )
        self.scu = (
            nn.ModuleDict(
                {t: SCU(**common, attention_layer=p.attention_layer) for t in p.targets}
            )
            if p.scu
            else None
        )


_DOC = "docs/models/mcr.md#deviations-shown-with-results"
DEVIATIONS: tuple[Deviation, ...] = (
    Deviation(
        "mutual-map",
        "mutual map resampled by relative time + Conv2d (cmu_literal=false), not the paper's "
        "fixed-length Conv1d",
        _DOC,
        lambda cfg: not cfg.cmu_literal,
    ),
    Deviation(
        "scu-attention",
        "SCU attention layer with one d x d block shared by the steps, not a T_t d x T_t d matrix",
        _DOC,
    ),
    Deviation(
        "sum-bias",
        "SUM biases one per channel (sum_literal=false), not one per step",
        _DOC,
        lambda cfg: not cfg.sum_literal,
    ),
    Deviation(
        "pre-ln",
        "final encoder and skip-connected FFNs pre-LN (MFSA and FDMER read the same citation "
        "as post-LN)",
        _DOC,
    ),
)
"""MCR's deviations from its paper, printed under result tables (``docs/models/mcr.md``)."""


@register_model(
    "mcr",
    MCRConfig,
    switches=SWITCHES,
    capabilities=("attention_maps",),
    capabilities_for=capabilities,
    tiny=dict(d=8, heads=2, layers=2, dropout=0.0, attn_dropout=0.0, literal_lengths=(20, 20, 20)),
    description=(
        "MCR: target and source modality co-reinforcement (Yang et al., Knowledge-Based "
        "Systems 2023)"
    ),
    deviations=DEVIATIONS,
    paper=load_paper(__package__, "mcr"),
)
class MCR(nn.Module):
    """The full MCR model; every Table 5 row is reachable through ``cfg.ablations`` (and
    ``serial``)."""

    def __init__(self, cfg: MCRConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.parts = p = parts(cfg.ablations)
        self.modalities = p.modalities
        d = cfg.d
        self.front = nn.ModuleDict(
            {
                m: UnimodalExtractor(
                    cfg.input_dims[m], d, cfg.kernel[m], cfg.dropout, recurrent=False
                )
                for m in self.modalities
            }
        )
        self.layers = nn.ModuleList(ReinforcementLayer(cfg, p) for _ in range(cfg.layers))
        self.sum = (
            nn.ModuleList(
                SourceUpdate(
                    p.sources_of,
                    d,
                    cfg.ffn_mult,
                    cfg.dropout,
                    mode=p.sum_mode,
                    combine=p.scu,
                    literal_lengths=cfg.max_lengths if cfg.sum_literal else None,
                )
                for _ in range(cfg.layers - 1)  # SUM^{[i]} feeds layer i + 1: none after the last
            )
            if p.sum_mode is not None and cfg.layers > 1
            else None
        )
        self.encoder = nn.ModuleList(
            EncoderLayer(d, cfg.heads, cfg.dropout, cfg.attn_dropout, cfg.ffn_mult)
            for _ in range(cfg.encoder_layers)
        )
        self.ln_out = nn.LayerNorm(d)
        out_dim = prediction_size(cfg)  # the contract's output head: every task
        self.head = nn.Sequential(
            nn.Linear(d, d), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(d, out_dim)
        )

    # ------------------------------------------------------------------ helpers
    def component_parameters(self) -> dict[str, int]:
        """Trainable parameter count per component (absent components are left out)."""
        def count(mods: Iterable[nn.Module | None]) -> int:
            return trainable_parameters(*mods)

        groups = {
            "pre-processing Conv1d (Sec. 3.2)": count([self.front]),
            "CMUs (Eq. 2-5)": count(layer.cmu for layer in self.layers),
            "SCUs (Eq. 6-11)": count(layer.scu for layer in self.layers),
            "SUMs (Eq. 12-16)": count([self.sum]),
            "transformer encoder": count([*self.encoder, self.ln_out]),
            "prediction head": count([self.head]),
        }
        return {name: n for name, n in groups.items() if n}

    def _concat_sources(self, src: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``Z_ds^{[0]} = [Z_s1, Z_s2]`` per target (no SUM has run yet)."""
        return {t: torch.cat([src[a], src[b]], dim=1) for t, (a, b) in self.parts.sources_of.items()}

    # ------------------------------------------------------------------ forward
    def forward(self, batch: Batch, return_attention: bool = False) -> ModelOutput:
        """Prediction, the task loss and (on request) the attention maps
        (``cmu/<layer>/<t>/<source>``, ``scu/<layer>/<t>`` (Eq. 8, self) and
        ``scu/<layer>/<t>/cross`` (Eq. 7), each ``[B, K, T_t, T_key]``)."""
        check_batch(batch, self.modalities, self.cfg.input_dims, "MCR")
        p, cfg = self.parts, self.cfg
        masks = {m: batch.masks[m].to(torch.bool) for m in self.modalities}
        attention: dict[str, torch.Tensor] | None = {} if return_attention else None
        z = {m: self.front[m](batch.inputs[m], masks[m]) for m in self.modalities}
        targets, sources = dict(z), dict(z)
        ds = self._concat_sources(sources) if p.scu else {}
        ds_masks = {t: torch.cat([masks[a], masks[b]], dim=1) for t, (a, b) in p.sources_of.items()}
        for i, layer in enumerate(self.layers):
            new = {}
            for t in p.targets:
                a, b = p.sources_of[t]
                parts_t = []
                current = targets[t]
                if layer.cmu is not None:
                    za, maps = layer.cmu[t](
                        (sources[a], sources[b]), (masks[a], masks[b]), current, masks[t]
                    )  # Eq. 2-5
                    if attention is not None:
                        names = (a, b) if a != b else (f"{a}-1", f"{b}-2")
                        for name, amap in zip(names, maps, strict=True):
                            attention[f"cmu/{i}/{t}/{name}"] = amap
                    if cfg.serial:
                        current = za  # the SCU reinforces the CMU's output
                    else:
                        parts_t.append(za)
                if layer.scu is not None:
                    zb, a_cross, a_self = layer.scu[t](
                        ds[t], ds_masks[t], current, masks[t], need_weights=attention is not None
                    )  # Eq. 6-11
                    parts_t.append(zb)
                    if attention is not None:
                        attention[f"scu/{i}/{t}"] = a_self
                        attention[f"scu/{i}/{t}/cross"] = a_cross
                new[t] = parts_t[0] if len(parts_t) == 1 else parts_t[0] + parts_t[1]
            targets.update(new)
            if i + 1 < len(self.layers) and self.sum is not None:
                sources, new_ds = self.sum[i](sources, targets, masks)  # Eq. 12-16
                if p.scu:
                    ds = new_ds

        fin = torch.cat([targets[t] for t in p.targets], dim=1)
        fin_mask = torch.cat([masks[t] for t in p.targets], dim=1)
        for enc in self.encoder:
            fin = enc(fin, fin_mask)
        pooled = masked_mean(self.ln_out(fin), fin_mask)
        pred = shape_prediction(self.head(pooled), cfg)
        out = ModelOutput(pred=pred, attention=attention)
        if batch.labels is None:
            return out
        loss = task_loss(pred, batch.labels, cfg.task, cfg.task_loss)
        out.loss = loss
        out.losses = {"task": loss.detach()}
        return out
