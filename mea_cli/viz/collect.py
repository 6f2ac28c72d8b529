"""Run a trained checkpoint over one split and keep what the pictures need.

The checkpoint is loaded with the public pieces below the stages (``load_checkpoint`` and
``check_schema`` of :mod:`mea_cli.artifacts.checkpoint`, ``model_from_checkpoint`` of
:mod:`mea_cli.runtime.loading`) and the features are normalised with the checkpoint's own
training statistics, exactly as ``mea eval`` does. From every batch we keep the model's pooled
representations ``reps`` (h^e_m, Eq. 11; h^a_m, Eq. 12), the WAL weights ``psi`` (Eq. 6) and
the sample ids; attention maps are requested only for the one sample being drawn, since the
PSA maps are ``[K, T, T]`` per layer and modality.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mea_cli.artifacts.checkpoint import Checkpoint, CheckpointError, check_schema, load_checkpoint
from mea_cli.artifacts.features import FeatureStore
from mea_cli.artifacts.overlap import overlap_warning, training_overlap
from mea_cli.data.dataset import FeatureDataset, NormStats, collate, make_loader
from mea_cli.paths import same_file
from mea_cli.runtime.loading import model_from_checkpoint
from mea_cli.viz.figures import VizError


@dataclass
class Collected:
    """Per-sample outputs of one split, in one consistent sample order."""

    ids: list[str]
    reps: dict[str, dict[str, np.ndarray]]  # kind -> modality -> [N, d_h]
    psi: list[np.ndarray]  # per PSA layer [N, M]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Loaded:
    """A checkpoint's model (eval mode, CPU) with its dataset on the requested split."""

    ckpt_path: Path
    ckpt: Checkpoint
    model: torch.nn.Module
    dataset: FeatureDataset
    store_name: str
    synthetic: bool
    split: str


def load(
    ckpt_path: Path, features: Path | None = None, split: str = "test"
) -> tuple[Loaded, FeatureStore]:
    """Load model and split; returns ``(loaded, store)`` -- the caller closes the store."""
    ckpt = load_checkpoint(ckpt_path)
    saved = ckpt.features.get("path", "")
    if features is None:
        if not saved or not Path(saved).exists():
            raise CheckpointError(
                ckpt_path,
                f"its features {saved or '(none recorded)'} are not available; pass --features",
            )
        features = Path(saved)
    # another store: its split may hold samples the model was trained or selected on
    other = bool(saved) and Path(saved).exists() and not same_file(saved, features)
    store = FeatureStore(features)
    try:
        check_schema(ckpt, store, ckpt_path)
        idx = store.split_indices(split)
        if len(idx) == 0:
            raise VizError(f"{store.name}: the {split!r} split is empty")
        if other:
            overlap = training_overlap(Path(saved), ckpt.features.get("sha256", ""), store, idx)
            sys.stderr.write(overlap_warning(Path(features), Path(saved), overlap, split, len(idx)))
        ds = FeatureDataset(store, split, NormStats.from_dict(ckpt.norm))
        model = model_from_checkpoint(ckpt, ckpt_path)
        model.eval()
        loaded = Loaded(Path(ckpt_path), ckpt, model, ds, store.name, store.meta.synthetic, split)
    except BaseException:
        store.close()
        raise
    return loaded, store


@torch.no_grad()
def collect(loaded: Loaded, batch_size: int = 64) -> Collected:
    """Pooled representations and psi of every sample of the split."""
    loader = make_loader(loaded.dataset, batch_size, shuffle=False)
    ids: list[str] = []
    reps: dict[str, dict[str, list[np.ndarray]]] = {}
    psi: list[list[np.ndarray]] = []
    for batch in loader:
        out = loaded.model(batch)
        ids += list(batch.ids)
        for kind, per_mod in (out.reps or {}).items():
            for m, t in per_mod.items():
                reps.setdefault(kind, {}).setdefault(m, []).append(t.float().cpu().numpy())
        for i, p in enumerate(out.psi or []):
            if len(psi) <= i:
                psi.append([])
            psi[i].append(p.float().cpu().numpy())
    return Collected(
        ids=ids,
        reps={k: {m: np.concatenate(v) for m, v in d.items()} for k, d in reps.items()},
        psi=[np.concatenate(p) for p in psi],
    )


@torch.no_grad()
def attention_of(
    loaded: Loaded, sample: str | None
) -> tuple[str, dict[str, list[np.ndarray]], dict[str, int], str]:
    """Self-attention maps of one sample: ``(id, {modality: [layer maps [1, K, T, T]]},
    lengths, block)``.

    The maps are those of the ``attention_maps`` capability of the model contract, named
    ``<block>/<layer>/<modality>`` (MEA: ``psa/...``, MCR: ``scu/...``); with several such
    blocks, the first one the model returns, whose name comes back as ``block``. ``sample`` is a sample id of the split; ``None`` picks the first sample
    whose three modalities are all non-empty (else the first sample).
    """
    ds = loaded.dataset
    ids = list(ds.ids)
    if sample is None:
        k = next(
            (i for i in range(len(ds)) if all(len(x) > 0 for x in ds[i]["features"].values())), 0
        )
    elif sample in ids:
        k = ids.index(sample)
    else:
        shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
        raise VizError(
            f"no sample {sample!r} in the {loaded.split} split of {loaded.store_name} (ids: {shown})"
        )
    item = ds[k]
    batch = collate([item])
    out = loaded.model(batch, return_attention=True)
    maps: dict[str, list[tuple[int, np.ndarray]]] = {}
    block = None
    for name, a in (out.attention or {}).items():
        parts = name.split("/")
        if len(parts) != 3 or block not in (None, parts[0]):
            continue
        block = parts[0]
        maps.setdefault(parts[2], []).append((int(parts[1]), a.float().cpu().numpy()))
    if not maps:
        raise VizError(
            f"{loaded.ckpt_path}: the {loaded.ckpt.model} model returned no self-attention maps "
            f"named <block>/<layer>/<modality>"
        )
    lengths = {m: int(batch.masks[m][0].sum()) for m in batch.masks}
    ordered = {m: [a for _, a in sorted(v, key=lambda p: p[0])] for m, v in maps.items()}
    return str(item["id"]), ordered, lengths, str(block)
