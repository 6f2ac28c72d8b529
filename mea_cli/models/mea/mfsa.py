"""MFSA: modality-specific and -agnostic representations (Yang et al., ACM MM 2022, Sec. 3).

MFSA is MEA's conference version. Forward pass for a :class:`~mea_cli.batch.Batch`::

    Z_m   = Extractor_m(X_m)                            Eq. 1   (shared with MEA)
    Z^s_m = [PSA layer -> WAL] x M (Z_m)                Eq. 2-6 (shared with MEA, M = 5)
    Z^a_m = [HCA layer] x N (sources Z, target Z_m)     Eq. 7-10 (MEA's corrected Eq. 10, N = 2)
    h^s_m = S_m(Z^s_m),  h^a_m = A(Z^a_m)               Eq. 11-12 (shared encoders, d_h = 128)
    H     = TransformerLayer([h^s_L, h^s_V, h^s_A, h^a_L, h^a_V, h^a_A])   Sec. 3.6, six tokens
    pred  = FC(flatten(H))                              h_fin in R^{6 d_h}
    L     = L_task + alpha L_sep + beta (L_agn + L_spe) (+ L_imp for D_i)   Eq. 13-16

What is MFSA's own (everything else is MEA's modules, :mod:`mea_cli.models.mea.branches`):

* ``L_sep`` (Eq. 13) in the per-sample form the paper writes,
  :func:`~mea_cli.models.core.losses.sample_separation_loss`, instead of MEA's HSIC ``L_dis``,
  scaled to Sec. 4.2's batch size (``sep_batch``) so that its weight beside the mean task loss
  does not change with the batch size (``sep_batch=0``: the printed sum);
* the fusion: one vanilla transformer encoder layer over the six ``d_h`` vectors as six tokens
  (:class:`TokenFusion`), flattened back to ``h_fin`` (``6 d_h``) and fed to fully connected
  layers, instead of MEA's decoupled graph fusion;
* the L1 regression loss (MEA: MSE) and the Sec. 4.2 hyper-parameters
  (:data:`~mea_cli.models.mea.mfsa_config.SEC_4_2`, :mod:`~mea_cli.models.mea.mfsa_config`);
* its ablation rows (Table 4, :data:`~mea_cli.models.mea.mfsa_switches.SWITCHES`).

MFSA names the first branch *specific* (``h^s``, ``L_spe``) where MEA says *exclusive*
(``h^e``, ``L_exc``); the model contract's key for it is ``"exclusive"`` (``out.reps``), the loss
term is reported as ``spe``. ``docs/models/mfsa.md`` compares the two papers section by section
and lists every decision.
"""

from __future__ import annotations

import torch
from torch import nn

from mea_cli import MODALITIES
from mea_cli.batch import Batch
from mea_cli.models.core.contract import Deviation
from mea_cli.models.core.inputs import check_batch
from mea_cli.models.core.losses import sample_separation_loss, task_loss
from mea_cli.models.core.output import ModelOutput
from mea_cli.models.core.paper import load_paper
from mea_cli.models.core.params import parameter_counts
from mea_cli.models.core.registry import register_model
from mea_cli.models.layers.discriminators import DoubleDiscriminator
from mea_cli.models.layers.encoders import AgnosticEncoder, ExclusiveEncoders
from mea_cli.models.mea.branches import (
    build_extractors,
    build_stacks,
    encode_branches,
    prediction_head,
    shape_prediction,
)
from mea_cli.models.mea.mfsa_config import MFSAConfig
from mea_cli.models.mea.mfsa_switches import SWITCHES, capabilities, parts


class TokenFusion(nn.Module):
    """Sec. 3.6: "a transformer layer [41] is used for feature fusion and interaction".

    The representations are ``tokens [B, n, d_h]`` (``n = 6``: ``h^s_L, h^s_V, h^s_A, h^a_L,
    h^a_V, h^a_A`` in that order); one vanilla (post-norm, ReLU) transformer encoder layer lets
    each attend to the others, and the output is flattened back to ``h_fin [B, n d_h]``. No
    position or type embedding: the layer is permutation-equivariant and the flattening keeps
    every token in its slot, so the fully connected layers still know which vector is which.
    """

    def __init__(self, d_h: int, heads: int, ffn_mult: int, dropout: float) -> None:
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(
            d_model=d_h,
            nhead=heads,
            dim_feedforward=ffn_mult * d_h,
            dropout=dropout,
            activation="relu",
            batch_first=True,
            norm_first=False,
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[B, n, d_h]`` -> ``h_fin [B, n * d_h]``."""
        return self.layer(tokens).flatten(1)


_DOC = "docs/models/mfsa.md#deviations-shown-with-results"
DEVIATIONS: tuple[Deviation, ...] = (
    Deviation(
        "eq10",
        "Eq. 10's coarse step refines the mixed-grained output (MEA's correction); as printed it "
        "reads its own output",
        _DOC,
    ),
    Deviation(
        "sep-batch",
        "L_sep = sep_batch x the per-sample mean of Eq. 13: the printed sum at the paper's batch "
        "size, the same weight at any other",
        _DOC,
        lambda cfg: cfg.sep_batch > 0,
    ),
)
"""MFSA's deviations from its paper, printed under result tables (``docs/models/mfsa.md``)."""


@register_model(
    "mfsa",
    MFSAConfig,
    switches=SWITCHES,
    capabilities=("representations", "modality_weights", "attention_maps"),
    capabilities_for=capabilities,
    tiny=dict(
        d=8, heads=2, d_h=8, fusion_heads=2, psa_layers=2, hca_layers=1, dropout=0.0, attn_dropout=0.0
    ),
    description="MFSA: modality-specific and -agnostic representations (Yang et al., ACM MM 2022)",
    deviations=DEVIATIONS,
    paper=load_paper(__package__, "mfsa"),
    small=dict(d=32, heads=4),  # --preset small
)
class MFSA(nn.Module):
    """The full MFSA model; every Table 4 row is reachable through ``cfg.ablations``."""

    def __init__(self, cfg: MFSAConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.parts = p = parts(cfg.ablations)
        self.modalities = MODALITIES
        self.extractors = build_extractors(cfg, self.modalities)
        self.psa, self.wal, self.hca = build_stacks(cfg, self.modalities, p)
        self.specific = (
            ExclusiveEncoders(self.modalities, cfg.d, cfg.d_h, cfg.dropout, cfg.pooling) if p.specific else None
        )
        self.agnostic = AgnosticEncoder(cfg.d, cfg.d_h, cfg.dropout, cfg.pooling) if p.agnostic else None
        self.discriminators = (
            DoubleDiscriminator(self.modalities, cfg.d_h, cfg.dropout, p.agnostic, cfg.grl_lambda)
            if p.adversarial
            else None
        )
        self.fusion = TokenFusion(cfg.d_h, cfg.fusion_heads, cfg.ffn_mult, cfg.dropout)
        self.head = prediction_head(p.tokens * cfg.d_h, cfg)

    def component_parameters(self) -> dict[str, int]:
        """Trainable parameter count per component (absent components are left out)."""
        groups = {
            "uni-modal extractors (Eq. 1)": self.extractors,
            "PSA layers (Eq. 2-4)": self.psa,
            "weighted attention layers (Eq. 5-6)": self.wal,
            "HCA layers / MRUs (Eq. 7-10)": self.hca,
            "specific encoders (Eq. 11)": self.specific,
            "agnostic encoder (Eq. 12)": self.agnostic,
            "discriminators D_i, D_m (Eq. 14-15)": self.discriminators,
            "fusion transformer layer (Sec. 3.6)": self.fusion,
            "fully connected layers (Sec. 3.6)": self.head,
        }
        return parameter_counts(groups)

    def forward(self, batch: Batch, return_attention: bool = False) -> ModelOutput:
        """Predictions, the loss terms of Eq. 16 and the tensors the plots need."""
        check_batch(batch, self.modalities, self.cfg.input_dims, "MFSA")
        p, cfg = self.parts, self.cfg
        attention: dict[str, torch.Tensor] | None = {} if return_attention else None
        # MFSA's h^s go under the contract's key "exclusive"
        enc = encode_branches(batch, self.extractors, self.psa, self.wal, self.hca,
                              self.specific, self.agnostic, cfg.wal_scaling, attention)  # fmt: skip
        masks, reps, psi = enc.masks, enc.reps, enc.psi
        tokens = torch.stack([h for kind in reps.values() for h in kind.values()], dim=1)
        pred = shape_prediction(self.head(self.fusion(tokens)), cfg)

        out = ModelOutput(pred=pred, reps=reps, psi=psi, attention=attention)
        if batch.labels is None:
            return out
        terms = {"task": task_loss(pred, batch.labels, cfg.task, cfg.task_loss)}
        total = terms["task"]
        h_s, h_a = reps.get("exclusive"), reps.get("agnostic")
        # a sample with an empty sequence of m has no h_m of its own: it adds nothing to the
        # terms of modality m (Eq. 13-15)
        present = {m: masks[m].any(dim=1) for m in self.modalities}
        if p.sep:
            terms["sep"] = sample_separation_loss(h_s, h_a, present, cfg.sep_batch)  # Eq. 13
            total = total + cfg.alpha * terms["sep"]
        if self.discriminators is not None:
            adv = self.discriminators(h_s, h_a, present)  # Eq. 14 (agn), Eq. 15 (exc = L_spe)
            if "exc" in adv:
                adv["spe"] = adv.pop("exc")
            terms.update(adv)
            zero = total.new_zeros(())
            total = total + cfg.beta * (adv.get("agn", zero) + adv.get("spe", zero))  # Eq. 16
            if "imp" in adv:  # D_i's own cross-entropy on detached h^a (docs/model.md 8)
                total = total + adv["imp"]
        out.loss = total
        out.losses = {k: v.detach() for k, v in terms.items()}
        return out
