"""The pieces the trainer and ``mea eval`` share: device choice, model building from a saved
config, and prediction over a loader with predictions gathered across distributed ranks.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from mea_cli.errors import MeaError
from mea_cli.runtime.distributed import DistInfo, all_gather_objects


class DeviceError(MeaError):
    """A device the user asked for that is not available."""


def resolve_device(name: str, info: DistInfo | None = None) -> torch.device:
    """``auto`` -> CUDA when available else CPU; ``cpu``; ``cuda`` (GPU 0); ``cuda:N`` (GPU N).

    Asking for a GPU that torch cannot see (no CUDA, or N beyond the GPUs there are) is a clear
    error, never a silent fall-back to the CPU. Under torchrun with CUDA each rank takes
    ``cuda:<LOCAL_RANK>``, so there only ``auto`` or ``cuda`` make sense.
    """
    text = name.strip().lower()
    kind, colon, index_text = text.partition(":")
    if kind not in ("auto", "cpu", "cuda") or (colon and kind != "cuda"):
        raise DeviceError(f"--device must be auto, cpu, cuda or cuda:N, got {name!r}")
    index: int | None = None
    if colon:
        if not index_text.isdigit():
            raise DeviceError(f"--device {name!r}: N in cuda:N must be a GPU number (0, 1, ...)")
        index = int(index_text)
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DeviceError(f"--device {text} was requested but torch sees no CUDA GPU")
    if index is not None and info is not None and info.enabled:
        raise DeviceError(
            f"--device {text}: under torchrun each process takes cuda:<LOCAL_RANK>; use --device cuda"
        )
    count = torch.cuda.device_count()
    if index is not None and index >= count:
        raise DeviceError(
            f"--device {text}: torch sees {count} CUDA GPU{'s' if count != 1 else ''} "
            f"(cuda:0{f' to cuda:{count - 1}' if count > 1 else ''})"
        )
    if index is None:
        index = info.local_rank if info is not None else 0
    return torch.device("cuda", index)


def autocast(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on CUDA (the issue's mixed precision), a no-op on CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@dataclass
class Predictions:
    """Predictions of one split, in the store's sample order, with their labels and mean loss."""

    ids: list[str]
    index: np.ndarray  # store row of each sample
    pred: np.ndarray  # [N, 1] regression, [N, K, 2] binary multi-label
    labels: np.ndarray  # [N, K]
    loss: float  # mean total loss (Eq. 20) over the split's samples
    losses: dict[str, float]  # mean of each named loss term


@torch.no_grad()
def predict(
    model: nn.Module,
    loader: DataLoader,
    device: torch.device,
    info: DistInfo | None = None,
    index_of: dict[str, int] | None = None,
) -> Predictions:
    """Run ``model`` in eval mode over ``loader``; gather from all ranks; drop padded repeats.

    Samples repeated by the distributed sampler's padding are counted once (by id) so that
    metrics are over exactly the split's samples, whatever the number of processes.
    """
    model.eval()
    ids: list[str] = []
    preds: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    loss_rows: list[float] = []
    term_rows: list[dict[str, float]] = []
    for batch in loader:
        batch = batch.to(device)
        with autocast(device):
            out = model(batch)
        b = len(batch)
        ids += list(batch.ids)
        preds.append(out.pred.float().cpu().numpy())
        if batch.labels is not None:
            labels.append(batch.labels.cpu().numpy())
        loss = float(out.loss) if out.loss is not None else float("nan")
        loss_rows += [loss] * b
        terms = {k: float(v) for k, v in (out.losses or {}).items()}
        term_rows += [terms] * b
    local = (ids, preds, labels, loss_rows, term_rows)
    parts = all_gather_objects(info or DistInfo(), local)
    seen: set[str] = set()
    out_ids: list[str] = []
    out_pred: list[np.ndarray] = []
    out_lab: list[np.ndarray] = []
    out_loss: list[float] = []
    out_terms: list[dict[str, float]] = []
    for p_ids, p_preds, p_labels, p_loss, p_terms in parts:
        pred_rows = np.concatenate(p_preds) if p_preds else np.zeros((0,))
        lab_rows = np.concatenate(p_labels) if p_labels else None
        for j, sid in enumerate(p_ids):
            if sid in seen:
                continue
            seen.add(sid)
            out_ids.append(sid)
            out_pred.append(pred_rows[j])
            if lab_rows is not None:
                out_lab.append(lab_rows[j])
            out_loss.append(p_loss[j])
            out_terms.append(p_terms[j])
    order = (
        np.argsort([index_of[s] for s in out_ids], kind="stable")
        if index_of is not None
        else np.arange(len(out_ids))
    )
    keys = sorted({k for t in out_terms for k in t})
    return Predictions(
        ids=[out_ids[i] for i in order],
        index=np.array([index_of[out_ids[i]] for i in order] if index_of else order),
        pred=np.stack([out_pred[i] for i in order]) if out_pred else np.zeros((0, 1)),
        labels=np.stack([out_lab[i] for i in order]) if out_lab else np.zeros((0, 0)),
        loss=float(np.mean(out_loss)) if out_loss else float("nan"),
        losses={k: float(np.mean([t.get(k, np.nan) for t in out_terms])) for k in keys},
    )
