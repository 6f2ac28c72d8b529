"""FDMER: feature-disentangled multimodal emotion recognition (Yang et al., ACM MM 2022, Fig. 1).

Forward pass for a :class:`~mea_cli.batch.Batch` (unaligned sequences with masks; the paper
was published on word-aligned data)::

    Z_m  = Transformer_m(X_m)                      Eq. 1   (post-LN, n_t/n_v/n_a = 5/4/4 layers)
    Z_m  <- FC_m(Z_m)                                      (d_m -> d_k per step, Sec. 3.2)
    C_m  = I(Z_m),  P_m = S_m(Z_m)                 Eq. 2-3 (masked mean, two-layer GeLU MLPs:
                                                            MEA's agnostic / exclusive encoders)
    L_con(C), L_dis(P)                             Eq. 4-7
    L_ami(GRL(C)), L_ams(P)                        Eq. 8-11 (angular-margin modality discriminator)
    Y_fin = CMAF([sum_m C_m, P_t, P_v, P_a])       Eq. 12-17
    pred  = FC(Y_fin)                              [B, 1] or [B, K, 2]
    L     = L_task + beta (L_ami + L_ams) + gamma (L_con + L_dis)    Eq. 18 (MSE / cross-entropy)

``out.reps`` holds the private representations under ``"exclusive"`` and the common ones under
``"agnostic"`` (the contract's names for modality-specific / -invariant vectors), so
``mea viz --what tsne`` draws Fig. 2's picture; ``return_attention=True`` gives every
transformer layer's self-attention maps as ``trans/<layer>/<modality>``.

The Table 4 switches in ``cfg.ablations`` are turned into
:class:`~mea_cli.models.fdmer.switches.Parts` in one place; a removed part is not built.
"""

from __future__ import annotations

import torch
from torch import nn

from mea_cli.batch import Batch
from mea_cli.models.core.contract import Deviation
from mea_cli.models.core.inputs import check_batch
from mea_cli.models.core.losses import task_loss
from mea_cli.models.core.masking import masked_mean
from mea_cli.models.core.output import ModelOutput, prediction_size, shape_prediction
from mea_cli.models.core.paper import load_paper
from mea_cli.models.core.params import parameter_counts
from mea_cli.models.core.registry import register_model
from mea_cli.models.fdmer.angular import AngularModalityDiscriminator, adversarial_losses
from mea_cli.models.fdmer.cmaf import CMAF, simple_fusion
from mea_cli.models.fdmer.config import SEC_4_2, FDMERConfig
from mea_cli.models.fdmer.constraints import consistency_loss, private_disparity_loss
from mea_cli.models.fdmer.switches import COMMON, SWITCHES, capabilities, parts
from mea_cli.models.layers.encoders import AgnosticEncoder, ExclusiveEncoders
from mea_cli.models.layers.transformer import ModalityTransformer, heads_for

_DOC = "docs/models/fdmer.md#deviations-shown-with-results"


def _iemocap_row(cfg: FDMERConfig) -> bool:
    """Whether ``cfg`` has the preset the paper does not give: the IEMOCAP row's beta, gamma
    (IEMOCAP itself, or a custom task that took that row) rather than MOSI's or MOSEI's."""
    row = SEC_4_2["iemocap"]
    return cfg.dataset not in ("mosi", "mosei") and (cfg.beta, cfg.gamma) == (
        row["beta"],
        row["gamma"],
    )

DEVIATIONS: tuple[Deviation, ...] = (
    Deviation(
        "unaligned",
        "run on unaligned sequences with masks; its paper rows are word-aligned",
        _DOC,
        settings=("unaligned",),
    ),
    Deviation("eq4", "Eq. 4 with both factors normalised (AM-GCN), not one as printed", _DOC),
    Deviation(
        "eq12",
        "Eq. 12 read as attention over four tokens [C, P_t, P_a, P_v]; as printed it does not "
        "type-check",
        _DOC,
    ),
    Deviation(
        "iemocap-preset",
        "IEMOCAP row (IEMOCAP, custom tasks that take it): UR_FUNNY's beta, gamma with MEA "
        "Table I's lr 1e-3 (UR_FUNNY: 2e-3)",
        _DOC,
        _iemocap_row,
    ),
)
"""FDMER's deviations from its paper, printed under result tables (``docs/models/fdmer.md``)."""


@register_model(
    "fdmer",
    FDMERConfig,
    switches=SWITCHES,
    capabilities=("representations", "attention_maps"),
    capabilities_for=capabilities,
    tiny=dict(d_k=8, d_disc=8, transformer_layers=(1, 1, 1), heads=1, ffn_mult=2, dropout=0.0),
    description=(
        "FDMER: feature-disentangled multimodal emotion recognition (Yang et al., ACM MM 2022; "
        "published on word-aligned data, run here unaligned with masks)"
    ),
    deviations=DEVIATIONS,
    paper=load_paper(__package__, "fdmer"),
)
class FDMER(nn.Module):
    """The full FDMER model; every Table 4 row is reachable through ``cfg.ablations``."""

    def __init__(self, cfg: FDMERConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.parts = p = parts(cfg.ablations)
        self.modalities = p.modalities
        d_k = cfg.d_k
        self.trans = nn.ModuleDict(
            {
                m: ModalityTransformer(
                    cfg.input_dims[m],
                    cfg.layers[m],
                    heads_for(cfg.input_dims[m], cfg.heads),
                    cfg.ffn_mult,
                    cfg.dropout,
                )
                for m in self.modalities
            }
        )
        self.proj = nn.ModuleDict({m: nn.Linear(cfg.input_dims[m], d_k) for m in self.modalities})
        self.common = AgnosticEncoder(d_k, d_k, cfg.dropout) if p.disentangle else None
        self.private = (
            ExclusiveEncoders(self.modalities, d_k, d_k, cfg.dropout) if p.disentangle else None
        )
        self.discriminator = (
            AngularModalityDiscriminator(
                d_k, cfg.d_disc, len(self.modalities), cfg.am_scale, cfg.am_margin
            )
            if p.adversarial
            else None
        )
        self.fusion = (
            CMAF(p.tokens, d_k, cfg.ffn_mult, cfg.dropout, p.interaction, p.adaptive)
            if p.fusion == "cmaf"
            else None
        )
        fused = d_k * len(p.tokens) if p.fusion == "concat" else d_k
        out_dim = prediction_size(cfg)  # the contract's output head: every task
        self.head = nn.Sequential(
            nn.Linear(fused, d_k), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(d_k, out_dim)
        )

    # ------------------------------------------------------------------ helpers
    def component_parameters(self) -> dict[str, int]:
        """Trainable parameter count per component (absent components are left out)."""
        groups: dict[str, nn.Module | None] = {}
        for m in self.modalities:
            t = self.trans[m]
            groups[f"{m} transformer ({len(t.layers)} layers, {t.heads} heads, width {t.d}; Eq. 1)"] = t
        groups.update(
            {
                "fully connected layers to d_k (Sec. 3.2)": self.proj,
                "common encoder I (Eq. 2)": self.common,
                "private encoders S_m (Eq. 3)": self.private,
                "modality discriminator D (Eq. 8-11)": self.discriminator,
                "cross-modal attention fusion (Eq. 12-17)": self.fusion,
                "prediction head": self.head,
            }
        )
        return parameter_counts(groups)

    def _tokens(
        self,
        z: dict[str, torch.Tensor],
        masks: dict[str, torch.Tensor],
        present: dict[str, torch.Tensor],
        reps: dict[str, dict[str, torch.Tensor]],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The representations to fuse ``[B, K, d_k]`` and which are present ``[B, K]``."""
        vec: dict[str, torch.Tensor] = {}
        ok: dict[str, torch.Tensor] = dict(present)
        if self.parts.disentangle:
            common, private = reps["agnostic"], reps["exclusive"]
            vec[COMMON] = sum(
                common[m] * present[m].to(common[m].dtype).unsqueeze(-1) for m in self.modalities
            )
            ok[COMMON] = torch.stack([present[m] for m in self.modalities]).any(dim=0)
            vec.update(private)
        else:  # Non-Disentangled: the pooled transformer features themselves
            vec.update({m: masked_mean(z[m], masks[m]) for m in self.modalities})
        tokens = self.parts.tokens
        return torch.stack([vec[t] for t in tokens], dim=1), torch.stack([ok[t] for t in tokens], 1)

    # ------------------------------------------------------------------ forward
    def forward(self, batch: Batch, return_attention: bool = False) -> ModelOutput:
        """Predictions, the loss terms of Eq. 18 and the tensors the plots need."""
        check_batch(batch, self.modalities, self.cfg.input_dims, "FDMER")
        p, cfg = self.parts, self.cfg
        masks = {m: batch.masks[m].to(torch.bool) for m in self.modalities}
        present = {m: masks[m].any(dim=1) for m in self.modalities}
        attention: dict[str, torch.Tensor] | None = {} if return_attention else None
        z = {
            m: self.proj[m](
                self.trans[m](batch.inputs[m], masks[m], attention, f"trans/{{layer}}/{m}")
            )
            for m in self.modalities
        }  # Eq. 1, then the fully connected layer to d_k, per step
        reps: dict[str, dict[str, torch.Tensor]] = {}
        if self.common is not None and self.private is not None:
            reps["agnostic"] = self.common(z, masks)  # C_m, Eq. 2
            reps["exclusive"] = self.private(z, masks)  # P_m, Eq. 3
        tokens, valid = self._tokens(z, masks, present, reps)
        if self.fusion is not None:
            fused, _ = self.fusion(tokens, valid)
        else:
            fused = simple_fusion(p.fusion, tokens, valid)
        pred = shape_prediction(self.head(fused), cfg)

        out = ModelOutput(pred=pred, reps=reps, attention=attention)
        if batch.labels is None:
            return out
        terms = {"task": task_loss(pred, batch.labels, cfg.task, "mse")}
        total = terms["task"]
        if p.consistency:
            terms["con"] = consistency_loss(reps["agnostic"], present)
            total = total + cfg.gamma * terms["con"]
        if p.disparity:
            terms["dis"] = private_disparity_loss(reps["exclusive"], present)
            total = total + cfg.gamma * terms["dis"]
        if self.discriminator is not None:
            adv = adversarial_losses(
                self.discriminator,
                reps["agnostic"],
                reps["exclusive"],
                present,
                margin=p.adversarial == "am",
                grl_lambda=cfg.grl_lambda,
            )
            terms.update(adv)
            total = total + cfg.beta * sum(adv.values())
        out.loss = total
        out.losses = {k: v.detach() for k, v in terms.items()}
        return out
