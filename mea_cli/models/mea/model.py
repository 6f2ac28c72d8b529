"""MEA: modality-exclusive and -agnostic representations (the MEA paper, Sec. III, Fig. 1).

Forward pass for a :class:`~mea_cli.batch.Batch`::

    Z_m   = Extractor_m(X_m)                         Eq. 1   (Conv1d, PE, packed Bi-LSTM)
    Z^e_m = [PSA layer -> WAL] x M (Z_m)             Eq. 2-6 (chain from layer 2 on; psi acts
                                                     per layer or carried to the end, see wal.py)
    Z^a_m = [HCA layer] x N (sources Z, target Z_m)  Eq. 7-10
    h^e_m = S_m(Z^e_m),  h^a_m = A(Z^a_m)            Eq. 11-12 (masked mean, 2-layer GeLU MLP)
    h     = [DGF(h^e), DGF(h^a)]                     Eq. 17-19
    pred  = FC(h)                                    [B, 1], [B, C] or [B, K, 2]
    L     = L_task + alpha L_dis + beta (L_agn + L_exc) (+ L_imp for D_i)   Eq. 13-16, 20

The Table V switches in ``cfg.ablations`` are turned into :class:`~mea_cli.models.mea.switches.Parts`
in one place; a removed part is not built at all (no parameters, no computation), so e.g.
DistributedDataParallel never sees unused parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from mea_cli import MODALITIES
from mea_cli.batch import Batch
from mea_cli.models.core.contract import Deviation
from mea_cli.models.core.inputs import check_batch
from mea_cli.models.core.losses import batch_separation_loss, task_loss
from mea_cli.models.core.output import ModelOutput
from mea_cli.models.core.paper import load_paper
from mea_cli.models.core.params import parameter_counts, trainable_parameters
from mea_cli.models.core.registry import register_model
from mea_cli.models.layers.discriminators import DoubleDiscriminator
from mea_cli.models.layers.encoders import AgnosticEncoder, ExclusiveEncoders
from mea_cli.models.layers.hsic import disparity_loss
from mea_cli.models.mea.branches import (
    build_extractors,
    build_stacks,
    encode_branches,
    prediction_head,
    shape_prediction,
)
from mea_cli.models.mea.config import MEAConfig
from mea_cli.models.mea.dgf import Fusion
from mea_cli.models.mea.switches import SWITCHES, capabilities, parts

_DOC = "docs/model.md#deviations-shown-with-results"
DEVIATIONS: tuple[Deviation, ...] = (
    Deviation(
        "eq2-logits",
        "Eq. 2 mixes two logits (psa_literal_eq2=false); as printed it mixes a logit and a "
        "probability",
        _DOC,
        lambda cfg: not cfg.psa_literal_eq2,
    ),
    Deviation(
        "wal",
        "WAL with one d x d block shared by the steps (wal_literal=false), not a T d x T d matrix",
        _DOC,
        lambda cfg: not cfg.wal_literal,
    ),
)
"""MEA's deviations from its paper, printed under result tables (``docs/model.md``)."""


@register_model(
    "mea",
    MEAConfig,
    switches=SWITCHES,
    capabilities=("representations", "modality_weights", "attention_maps"),
    capabilities_for=capabilities,
    tiny=dict(d=8, heads=2, d_h=8, psa_layers=2, hca_layers=1, dropout=0.0, attn_dropout=0.0),
    description="MEA: modality-exclusive and -agnostic representations (Yang et al., IEEE TCSVT)",
    deviations=DEVIATIONS,
    paper=load_paper(__package__, "mea"),
    # --preset small: smaller, shallower, and concatenation instead of DGF (Table V "w/o DGF"):
    # on Emo-DB (audio only) DGF trained far slower on valid (docs/training.md)
    small=dict(d=32, heads=4, psa_layers=1, hca_layers=1, dropout=0.2, ablations=("dgf",)),
)
class MEA(nn.Module):
    """The full MEA model; every Table V row is reachable through ``cfg.ablations``."""

    def __init__(self, cfg: MEAConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.parts = p = parts(cfg.ablations)
        self.modalities = MODALITIES
        self.extractors = build_extractors(cfg, self.modalities)
        self.psa, self.wal, self.hca = build_stacks(cfg, self.modalities, p)
        self.exclusive = (
            ExclusiveEncoders(self.modalities, cfg.d, cfg.d_h, cfg.dropout, cfg.pooling) if p.exclusive else None
        )
        self.agnostic = AgnosticEncoder(cfg.d, cfg.d_h, cfg.dropout, cfg.pooling) if p.agnostic else None
        self.discriminators = (
            DoubleDiscriminator(self.modalities, cfg.d_h, cfg.dropout, p.importance, cfg.grl_lambda)
            if p.adversarial
            else None
        )
        graphs = tuple(g for g, on in (("exclusive", p.exclusive), ("agnostic", p.agnostic)) if on)
        self.fusion = Fusion(
            p.fusion, cfg.d_h, graphs, len(self.modalities), cfg.dgf_self_loops, cfg.fusion_absent
        )
        self.head = prediction_head(self.fusion.out_dim, cfg)

    # ------------------------------------------------------------------ helpers
    def component_parameters(self) -> dict[str, int]:
        """Trainable parameter count per component (absent components are left out)."""
        groups = {
            "uni-modal extractors (Eq. 1)": self.extractors,
            "PSA layers (Eq. 2-4)": self.psa,
            "weighted attention layers (Eq. 5-6)": self.wal,
            "HCA layers / MRUs (Eq. 7-10)": self.hca,
            "exclusive encoders (Eq. 11)": self.exclusive,
            "agnostic encoder (Eq. 12)": self.agnostic,
            "discriminators D_i, D_m (Eq. 15-16)": self.discriminators,
            "fusion (Eq. 17-19)": self.fusion,
            "prediction head": self.head,
        }
        return parameter_counts(groups)

    def num_parameters(self) -> int:
        """Total trainable parameters."""
        return trainable_parameters(self)

    def _check(self, batch: Batch) -> None:
        check_batch(batch, self.modalities, self.cfg.input_dims, "MEA")

    # ------------------------------------------------------------------ forward
    def forward(self, batch: Batch, return_attention: bool = False) -> ModelOutput:
        """Predictions, the loss terms of Eq. 20 and the tensors the plots need."""
        self._check(batch)
        p, cfg = self.parts, self.cfg
        attention: dict[str, torch.Tensor] | None = {} if return_attention else None
        enc = encode_branches(batch, self.extractors, self.psa, self.wal, self.hca,
                              self.exclusive, self.agnostic, cfg.wal_scaling, attention)  # fmt: skip
        masks, reps, psi = enc.masks, enc.reps, enc.psi
        # samples with an empty sequence of m have no h_m of their own: left out of the
        # batch statistics and discriminator losses of modality m (Eq. 13-16), and of the
        # fusion with fusion_absent="drop"
        present = {m: masks[m].any(dim=1) for m in self.modalities}

        fused, xi = self.fusion(reps, present)
        pred = shape_prediction(self.head(fused), cfg)

        out = ModelOutput(pred=pred, reps=reps, psi=psi, xi=xi, attention=attention)
        if batch.labels is None:
            return out
        terms: dict[str, torch.Tensor] = {
            "task": task_loss(pred, batch.labels, cfg.task, cfg.task_loss)
        }
        total = terms["task"]
        h_e, h_a = reps.get("exclusive"), reps.get("agnostic")
        if p.disparity == "hsic":
            terms["dis"] = disparity_loss(h_e, h_a, present)
            total = total + cfg.alpha * terms["dis"]
        elif p.disparity == "sep":
            terms["sep"] = batch_separation_loss(h_e, h_a, present)
            total = total + cfg.alpha * terms["sep"]
        if self.discriminators is not None:
            adv = self.discriminators(h_e, h_a, present)
            terms.update(adv)
            total = total + cfg.beta * (
                adv.get("agn", total.new_zeros(())) + adv.get("exc", total.new_zeros(()))
            )
            if "imp" in adv:
                total = total + adv["imp"]
        out.loss = total
        out.losses = {k: v.detach() for k, v in terms.items()}
        return out
