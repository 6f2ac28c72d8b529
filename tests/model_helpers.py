"""Helpers for the model tests: random batches with masks, batches from a feature store, a
small grouped classification store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mea_cli import MODALITIES
from mea_cli.artifacts.features import (
    ExtractorInfo,
    FeatureStore,
    FeatureStoreWriter,
    ModalitySchema,
    Sample,
)
from mea_cli.batch import Batch
from mea_cli.train.metrics import regression_metrics


def pad_batch(
    seqs: dict[str, list[torch.Tensor]],
    labels: torch.Tensor | None,
    extra: int = 0,
    garbage: float = 0.0,
) -> Batch:
    """Pad each modality to its longest sequence (+ ``extra`` steps, at least 1).

    ``garbage`` fills the padded steps with a constant instead of zeros, to show that the model
    ignores whatever sits under a False mask.
    """
    inputs, masks = {}, {}
    for m, items in seqs.items():
        t = max(max((len(s) for s in items), default=0), 1) + extra
        d = items[0].shape[1]
        x = torch.full((len(items), t, d), garbage)
        mk = torch.zeros(len(items), t, dtype=torch.bool)
        for i, s in enumerate(items):
            x[i, : len(s)] = s
            mk[i, : len(s)] = True
        inputs[m], masks[m] = x, mk
    n = len(next(iter(seqs.values())))
    return Batch(inputs, masks, labels, [str(i) for i in range(n)])


def random_sequences(
    dims: dict[str, int], lengths: dict[str, list[int]], seed: int = 0
) -> dict[str, list[torch.Tensor]]:
    """Random sequences with the given lengths (0 allowed) per modality."""
    g = torch.Generator().manual_seed(seed)
    return {m: [torch.randn(n, dims[m], generator=g) for n in lengths[m]] for m in dims}


def store_batch(
    path: object, n: int, crop: int | None = None
) -> tuple[Batch, dict[str, int], str, int]:
    """The first ``n`` samples of a feature store as one batch, z-scored per feature.

    ``crop`` keeps at most that many steps per sequence (to keep CPU tests fast).
    """
    with FeatureStore(path) as store:
        seqs: dict[str, list[torch.Tensor]] = {m: [] for m in MODALITIES}
        for m in MODALITIES:
            data, _ = store.array(m)
            mean = data.mean(axis=0)
            std = data.std(axis=0) + 1e-6
            for i in range(n):
                s = ((store.sequence(i, m) - mean) / std)[:crop]
                seqs[m].append(torch.from_numpy(np.asarray(s, np.float32)))
        labels = torch.from_numpy(np.asarray(store.samples.label[:n], np.float32))
        dims = {m: store.modalities[m].dim for m in MODALITIES}
        task, k = store.meta.task, labels.shape[1]
    return pad_batch(seqs, labels), dims, task, k


def train_mean_baseline(store: str | Path) -> dict[str, float]:
    """Test-split regression metrics of predicting the training labels' mean, computed here,
    independently of ``mea eval``'s own baseline."""
    with FeatureStore(store) as s:
        train = s.samples.label[s.split_indices("train"), 0]
        test = s.samples.label[s.split_indices("test"), 0]
    return regression_metrics(np.full_like(test, train.mean()), test)


def assert_bf16_close(model: torch.nn.Module, batch: Batch, tol: float = 0.05) -> None:
    """Evaluation under CPU bf16 autocast (8 bits of mantissa, the CUDA trainer's precision)
    gives finite predictions within ``tol`` of fp32 (for outputs of order 0.1-1)."""
    model.eval()
    with torch.no_grad():
        ref = model(batch).pred
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(batch).pred.float()
    assert torch.isfinite(low).all()
    assert (low - ref).abs().max() < tol


GROUPED_DIMS = {"text": 2, "vision": 2, "audio": 3}


def grouped_class_store(path: Path) -> Path:
    """Three classes that shift the audio features, samples ``s00``..``s47``: 24 / 12 / 12 in
    train / valid / test, sequences of 4 to 7 steps (so batches are padded), sample ``i`` in
    group ``g{i % 4}``."""
    schemas = [
        ModalitySchema(m, tuple(f"{m}{i}" for i in range(d)), ExtractorInfo("test", "0", {}), 10.0)
        for m, d in GROUPED_DIMS.items()
    ]
    rng = np.random.default_rng(0)
    with FeatureStoreWriter(
        path, schemas, dataset="test", task="multiclass", label_names=("a", "b", "c")
    ) as w:
        for i in range(48):
            c = i % 3
            feats = {m: rng.normal(c * (m == "audio"), 1.0, size=(4 + i % 4, d)).astype(np.float32)
                     for m, d in GROUPED_DIMS.items()}  # fmt: skip
            split = "train" if i < 24 else "valid" if i < 36 else "test"
            w.add(Sample(id=f"s{i:02d}", features=feats, video=f"v{i}", split=split,
                         label=np.eye(3, dtype=np.float32)[c], group=f"g{i % 4}"))  # fmt: skip
    return path


TINY_MEA = {"d": 8, "heads": 2, "d_h": 8, "psa_layers": 1, "hca_layers": 1}
"""MEA shrunk so that an epoch on a few dozen synthetic samples takes a second."""


def tiny_trained_run(tmp: Path, n: int, seed: int) -> tuple[Path, Path]:
    """``(store, ckpt.pt)``: a synthetic MOSI-shaped store of ``n`` 2-s samples and a tiny MEA
    trained on it for one epoch (run ``r`` under ``tmp/runs``), one torch thread."""
    from mea_cli.data.synth import write_synthetic
    from mea_cli.train.trainer import TrainRequest, train_run

    torch.set_num_threads(1)
    store = tmp / "synth.h5"
    write_synthetic(store, "mosi", n=n, seed=seed, max_seconds=2.0)
    train_run(TrainRequest(
        features=store, dataset="mosi", seeds=[1], name="r", live=False, model_overrides=TINY_MEA,
        runs_dir=tmp / "runs", train_overrides={"epochs": 1, "patience": 5},
    ))  # fmt: skip
    return store, tmp / "runs" / "r" / "ckpt.pt"
