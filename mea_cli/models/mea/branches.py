"""The two branches MEA and MFSA share, built and run in one place.

MFSA (ACM MM 2022) is MEA's conference version: the same uni-modal extractor (Eq. 1), the same
predictive self-attention branch with a weighted attention layer after every layer (Eq. 2-6)
and the same hierarchical cross-modal attention branch (Eq. 7-10, with MEA's corrected coarse
step, see :mod:`mea_cli.models.mea.hca`). Both models build those parts with the functions below
from a :class:`~mea_cli.models.mea.config.MEAFamilyConfig` and run them with :func:`run_psa` and
:func:`run_hca` (both through :func:`encode_branches`), so the two models cannot drift apart
where their papers agree.

The functions return plain ``nn.ModuleDict`` / ``nn.ModuleList`` objects that the models keep
under their own attribute names (``extractors``, ``psa``, ``wal``, ``hca``): the parameter names,
and so the switches' ``removes`` patterns and saved checkpoints, are those of the model. Both
ablation tables have the same rows for these stacks (w/o PSA, prediction chain, WAL, HCA and each
MRU); :class:`Stacks` is what those rows leave, and :func:`stack_parts` reads it from a set of
switch names (each model's own ``parts()`` adds the rest).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from mea_cli.batch import Batch
from mea_cli.models.core.output import prediction_size
from mea_cli.models.core.output import shape_prediction as shape_prediction  # re-exported
from mea_cli.models.layers.extractor import UnimodalExtractor
from mea_cli.models.mea.config import MEAFamilyConfig
from mea_cli.models.mea.hca import HCALayer, grouped, run_grouped
from mea_cli.models.mea.psa import PSALayer
from mea_cli.models.mea.wal import WeightedAttentionLayer, carried_weights, weigh

STACK_SWITCHES: tuple[str, ...] = (
    "psa", "chain", "wal", "hca", "mru-mixed", "mru-coarse", "mru-fine"
)  # fmt: skip
"""The ablation rows MEA's Table V and MFSA's Table 4 share, in both tables' order."""


@dataclass(frozen=True)
class Stacks:
    """Which shared stacks (and which of their parts) a model builds."""

    psa: bool
    chain: bool
    wal: bool
    hca: bool
    mru_mixed: bool
    mru_coarse: bool
    mru_fine: bool


def stack_parts(off: Iterable[str], first_branch: bool, second_branch: bool) -> dict[str, bool]:
    """The :class:`Stacks` fields for the switches ``off``, given whether the PSA branch
    (exclusive / specific) and the HCA branch (agnostic) are built at all."""
    off = set(off)
    psa = first_branch and "psa" not in off
    hca = second_branch and "hca" not in off
    return dict(
        psa=psa,
        chain=psa and "chain" not in off,
        wal=psa and "wal" not in off,
        hca=hca,
        mru_mixed=hca and "mru-mixed" not in off,
        mru_coarse=hca and "mru-coarse" not in off,
        mru_fine=hca and "mru-fine" not in off,
    )


def stack_capabilities(s: Stacks) -> set[str]:
    """The contract capabilities of a model with these stacks: pooled representations always
    (one branch always stays), WAL weights psi only with the WAL, PSA maps only with PSA."""
    return {"representations"} | ({"modality_weights"} if s.wal else set()) | (
        {"attention_maps"} if s.psa else set()
    )


def build_stacks(
    cfg: MEAFamilyConfig, modalities: tuple[str, ...], s: Stacks
) -> tuple[nn.ModuleList | None, nn.ModuleList | None, nn.ModuleList | None]:
    """``(psa, wal, hca)``: the stacks ``s`` asks for (``None`` for a removed one)."""
    return (
        build_psa(cfg, modalities, chain=s.chain) if s.psa else None,
        build_wal(cfg, modalities) if s.wal else None,
        build_hca(cfg, modalities, s.mru_mixed, s.mru_coarse, s.mru_fine) if s.hca else None,
    )


def build_extractors(cfg: MEAFamilyConfig, modalities: tuple[str, ...]) -> nn.ModuleDict:
    """One uni-modal extractor per modality (Eq. 1)."""
    return nn.ModuleDict(
        {m: UnimodalExtractor(cfg.input_dims[m], cfg.d, cfg.kernel[m], cfg.dropout) for m in modalities}
    )


def build_psa(cfg: MEAFamilyConfig, modalities: tuple[str, ...], chain: bool) -> nn.ModuleList:
    """``cfg.psa_layers`` PSA layers per modality (Eq. 2-4); the prediction chain (a Conv2d
    predictor) from the second layer on, unless ``chain`` is off."""
    return nn.ModuleList(
        nn.ModuleDict(
            {
                m: PSALayer(
                    cfg.d,
                    cfg.heads,
                    cfg.mu,
                    predict=chain and layer > 0,
                    dropout=cfg.dropout,
                    attn_dropout=cfg.attn_dropout,
                    ffn_mult=cfg.ffn_mult,
                    literal=cfg.psa_literal_eq2,
                    group_budget=cfg.attn_group_budget,
                    checkpoint=cfg.checkpoint_psa,
                )
                for m in modalities
            }
        )
        for layer in range(cfg.psa_layers)
    )


def build_wal(cfg: MEAFamilyConfig, modalities: tuple[str, ...]) -> nn.ModuleList:
    """One weighted attention layer after every PSA layer (Eq. 5-6)."""
    return nn.ModuleList(
        WeightedAttentionLayer(modalities, cfg.d, cfg.wal_literal, cfg.wal_max_len)
        for _ in range(cfg.psa_layers)
    )


def build_hca(
    cfg: MEAFamilyConfig,
    modalities: tuple[str, ...],
    mixed: bool = True,
    coarse: bool = True,
    fine: bool = True,
) -> nn.ModuleList:
    """``cfg.hca_layers`` HCA layers (Eq. 7-10), with the MRUs the switches leave."""
    return nn.ModuleList(
        HCALayer(
            modalities,
            cfg.d,
            cfg.heads,
            cfg.dropout,
            cfg.attn_dropout,
            cfg.ffn_mult,
            mixed=mixed,
            coarse=coarse,
            fine=fine,
            group_budget=cfg.attn_group_budget,
            checkpoint=cfg.checkpoint_hca,
        )
        for _ in range(cfg.hca_layers)
    )


def prediction_head(in_dim: int, cfg: MEAFamilyConfig) -> nn.Sequential:
    """The fully connected layers after the fusion: ``in_dim -> d_h -> GeLU -> Dropout -> out``,
    ``out`` = the contract's :func:`~mea_cli.models.core.output.prediction_size` (1 for regression,
    one logit per class for multiclass, two logits per label for binary multi-label; reshape
    with :func:`~mea_cli.models.core.output.shape_prediction`, re-exported here)."""
    return nn.Sequential(
        nn.Linear(in_dim, cfg.d_h),
        nn.GELU(),
        nn.Dropout(cfg.dropout),
        nn.Linear(cfg.d_h, prediction_size(cfg)),
    )


def run_psa(
    psa: nn.ModuleList | None,
    wal: nn.ModuleList | None,
    z: dict[str, torch.Tensor],
    masks: dict[str, torch.Tensor],
    wal_scaling: str,
    attention: dict[str, torch.Tensor] | None,
) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
    """The PSA branch: ``(Z^e_m per modality, psi per layer)``.

    Each layer runs PSA (Eq. 2-4) for every modality, then its WAL scores the outputs (Eq. 5)
    and gives ``psi`` (Eq. 6), which scales the stream after every layer (``wal_scaling="paper"``)
    or, carried, once at the end (``"carried"``; :mod:`mea_cli.models.mea.wal`). Without PSA layers
    ``Z^e = Z``. Maps go to ``attention["psa/<layer>/<m>"]`` when a dict is given.
    """
    ze = dict(z)
    psi: list[torch.Tensor] = []
    if psa is None:
        return ze, psi
    modalities = tuple(z)
    prev: dict[str, torch.Tensor | None] = dict.fromkeys(modalities)
    gammas: list[torch.Tensor] = []
    for layer, block in enumerate(psa):
        for m in modalities:
            ze[m], prev[m], a = block[m](ze[m], masks[m], prev[m], need_weights=attention is not None)
            if attention is not None:
                attention[f"psa/{layer}/{m}"] = a
        if wal is not None:
            gammas.append(wal[layer].scores(ze, masks))  # Eq. 5
            psi.append(torch.softmax(gammas[-1], dim=-1))  # Eq. 6
            if wal_scaling == "paper":  # Z^e <- psi Z^e after every layer
                ze = weigh(ze, psi[-1], modalities)
    if gammas and wal_scaling == "carried":  # every layer's psi, at the end
        ze = weigh(ze, carried_weights(gammas), modalities)
    return ze, psi


def run_hca(
    hca: nn.ModuleList | None,
    z: dict[str, torch.Tensor],
    masks: dict[str, torch.Tensor],
    attention: dict[str, torch.Tensor] | None,
) -> dict[str, torch.Tensor]:
    """The HCA branch: ``Z^a_m`` per modality (Eq. 7-10, ``N`` layers; ``Z^a = Z`` without).

    The sources of every layer are the extractor outputs ``Z_m``; only the targets are carried
    from layer to layer (``docs/model.md`` decision 6). Maps go to
    ``attention["hca/<layer>/<target>/<unit>"]`` when a dict is given.
    """
    layers = tuple(hca or ())
    if attention is None and grouped(layers):  # one cut into length groups for every layer
        return run_grouped(layers, z, dict(z), masks)
    za = dict(z)
    for layer, block in enumerate(layers):
        za = block(z, za, masks, attention, prefix=f"hca/{layer}/")
    return za


@dataclass
class Encoded:
    """What the shared front of MEA and MFSA gives their fusion: boolean masks per modality,
    the branch representations ``{"exclusive": {m: h_m}, "agnostic": {m: h^a_m}}`` (a branch
    switched off is absent) and the WAL weights ``psi`` per PSA layer."""

    masks: dict[str, torch.Tensor]
    reps: dict[str, dict[str, torch.Tensor]]
    psi: list[torch.Tensor]


def encode_branches(
    batch: Batch,
    extractors: nn.ModuleDict,
    psa: nn.ModuleList | None,
    wal: nn.ModuleList | None,
    hca: nn.ModuleList | None,
    exclusive: nn.Module | None,
    agnostic: nn.Module | None,
    wal_scaling: str,
    attention: dict[str, torch.Tensor] | None,
) -> Encoded:
    """Eq. 1, then the PSA branch into ``exclusive`` (MEA's Eq. 11, MFSA's specific encoders)
    and the HCA branch into ``agnostic`` (Eq. 12); a branch whose encoder is None is skipped."""
    modalities = tuple(extractors)
    masks = {m: batch.masks[m].to(torch.bool) for m in modalities}
    z = {m: extractors[m](batch.inputs[m], masks[m]) for m in modalities}
    reps: dict[str, dict[str, torch.Tensor]] = {}
    psi: list[torch.Tensor] = []
    if exclusive is not None:
        ze, psi = run_psa(psa, wal, z, masks, wal_scaling, attention)
        reps["exclusive"] = exclusive(ze, masks)
    if agnostic is not None:
        reps["agnostic"] = agnostic(run_hca(hca, z, masks, attention), masks)
    return Encoded(masks, reps, psi)
