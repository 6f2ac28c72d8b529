"""Tiny inputs for the data-safety categories of the battery (stores, paths, aliasing, disk
full, labels, checkpoints, imports): a valid synthetic store, copies of it broken in one way
each, a MulT pickle, a labels CSV beside empty "videos", and a one-epoch run of a tiny MEA.

Everything is made in-process (no torch import per case) and once per module; the cases then
run the real entry point through :mod:`battery.harness`.
"""

from __future__ import annotations

import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

from mea_cli.data.synth import write_synthetic

# a one-epoch MEA of a few hundred parameters: seconds on one core
TINY_MODEL = {"d": 8, "heads": 2, "d_h": 8, "psa_layers": 1, "hca_layers": 1}
TINY_SETS = [x for k, v in TINY_MODEL.items() for x in ("--set", f"{k}={v}")]


def tiny_store(path: Path, n: int = 16, seed: int = 7) -> Path:
    """A valid MOSI-shaped synthetic store of ``n`` short samples."""
    write_synthetic(path, "mosi", n=n, seed=seed, max_seconds=2.0)
    return path


def _replace(f: h5py.File, name: str, data: np.ndarray) -> None:
    attrs = dict(f[name].attrs)
    del f[name]
    f.create_dataset(name, data=data)
    f[name].attrs.update(attrs)


def _string_data(f: h5py.File) -> None:
    x = f["audio/data"][:]
    _replace(f, "audio/data", x.astype(str).astype(object).astype(h5py.string_dtype()))


def _complex_data(f: h5py.File) -> None:
    _replace(f, "audio/data", f["audio/data"][:].astype(np.complex64))


def _fractional_offsets(f: h5py.File) -> None:
    off = f["audio/offsets"][:].astype(np.float64)
    off[1] += 0.5
    _replace(f, "audio/offsets", off)


def _end_before_start(f: h5py.File) -> None:
    start, end = f["samples/start"][:], f["samples/end"][:]
    start[2], end[2] = 5.0, 1.0
    _replace(f, "samples/start", start)
    _replace(f, "samples/end", end)


def _reversed_step(f: h5py.File) -> None:
    t = f["vision/times"][:]
    t[3] = (t[3, 1] + 1.0, t[3, 1])  # ends before it starts
    _replace(f, "vision/times", t)


def _nan_feature(f: h5py.File) -> None:
    x = f["audio/data"][:]
    x[5, 1] = np.nan
    _replace(f, "audio/data", x)


def _inf_feature(f: h5py.File) -> None:
    x = f["text/data"][:]
    x[2, 0] = np.inf
    _replace(f, "text/data", x)


def _inf_label(f: h5py.File) -> None:
    y = f["samples/label"][:]
    y[1] = np.inf
    _replace(f, "samples/label", y)


# name -> (how to break a copy, words the refusal must hold)
BREAKS: dict[str, tuple[Callable[[h5py.File], None], tuple[str, ...]]] = {
    "string-dtype": (_string_data, ("/audio/data", "dtype")),
    "complex-dtype": (_complex_data, ("/audio/data", "complex")),
    "fractional-offsets": (_fractional_offsets, ("/audio/offsets", "fractional")),
    "end-before-start": (_end_before_start, ("ends before it starts",)),
    "reversed-step-time": (_reversed_step, ("/vision/times", "ends before it starts")),
    "nan-feature": (_nan_feature, ("/audio/data", "non-finite", "nan")),
    "inf-feature": (_inf_feature, ("/text/data", "non-finite", "inf")),
    "inf-label": (_inf_label, ("infinite label",)),
}


def broken_copy(good: Path, kind: str, out_dir: Path) -> Path:
    """A copy of ``good`` broken as ``BREAKS[kind]`` says (the good store is untouched)."""
    path = out_dir / f"{kind}.h5"
    shutil.copyfile(good, path)
    with h5py.File(path, "r+") as f:
        BREAKS[kind][0](f)
    return path


def mult_pickle(path: Path, leak: bool = False) -> Path:
    """A tiny MulT-layout pickle (3 samples per split); ``leak`` puts a train id in test too."""
    rng = np.random.default_rng(0)
    data = {}
    for split in ("train", "valid", "test"):
        part = {m: rng.normal(size=(3, 4, d)).astype(np.float32)
                for m, d in (("text", 5), ("vision", 3), ("audio", 4))}  # fmt: skip
        part["labels"] = rng.uniform(-3, 3, (3, 1, 1)).astype(np.float32)
        ids = [f"{split}v{i}" for i in range(3)]
        if leak and split == "test":
            ids[1] = "trainv2"  # the segment of train's third row
        part["id"] = np.array([[x.encode(), b"0.0", b"1.5"] for x in ids], dtype=object)
        data[split] = part
    with path.open("wb") as fh:
        pickle.dump(data, fh)
    return path


def mmsa_pickle(path: Path, leak: bool = False) -> Path:
    """A tiny MMSA-layout pickle (3 samples per split); ``leak`` repeats a train id in valid."""
    rng = np.random.default_rng(1)
    data = {}
    for split in ("train", "valid", "test"):
        part = {m: rng.normal(size=(3, 4, d)).astype(np.float32)
                for m, d in (("text", 5), ("vision", 3), ("audio", 4))}  # fmt: skip
        part["regression_labels"] = rng.uniform(-3, 3, 3).astype(np.float32)
        part["audio_lengths"] = [4, 3, 2]
        part["vision_lengths"] = [4, 2, 1]
        part["raw_text"] = ["a b", "c", "d e f"]
        part["id"] = [f"{split}v{i}$_${i}" for i in range(3)]
        data[split] = part
    if leak:
        data["valid"]["id"][0] = data["train"]["id"][1]
    with path.open("wb") as fh:
        pickle.dump(data, fh)
    return path


def csd_folder(path: Path, videos: tuple[str, ...] = ("v1", "v2", "v3")) -> Path:
    """A folder of four tiny CMU-SDK computational sequences (text, vision, audio, labels)."""
    path.mkdir()
    for name, dim in (("text", 3), ("vision", 2), ("audio", 2), ("labels", 1)):
        with h5py.File(path / f"{name}.csd", "w") as f:
            data = f.create_group(name).create_group("data")
            f[name].create_group("metadata")
            for v in videos:
                d = data.create_group(v)
                d["features"] = np.ones((2, dim), np.float32)
                d["intervals"] = np.array([[0.0, 1.0], [1.0, 2.0]])
    return path


def untrained_run(store: Path, runs_dir: Path, name: str = "tiny") -> Path:
    """A run directory as ``mea train`` starts it (``config.json``) with the ``ckpt.pt`` of a
    tiny MEA's initial weights: everything eval / --resume read before they refuse, without
    the cost of an epoch (the weights are untrained; no case looks at a metric)."""
    import torch

    from mea_cli.artifacts.checkpoint import save_checkpoint
    from mea_cli.artifacts.features import FeatureStore
    from mea_cli.paths import write_json
    from mea_cli.train.setup import TrainRequest, read_store_facts, resolve_config
    from mea_cli.train.trainer import Trainer

    req = TrainRequest(
        features=store, dataset="mosi", model="mea", seeds=[1111],
        train_overrides={"epochs": 1, "batch_size": 8}, model_overrides=TINY_MODEL,
        device="cpu", name=name, runs_dir=runs_dir, live=False,
    )  # fmt: skip
    cfg = resolve_config(req, read_store_facts(store, "mosi"), name)
    run_dir = runs_dir / name
    run_dir.mkdir(parents=True)
    write_json(run_dir / "config.json", cfg.to_dict(), nan="null")
    with FeatureStore(store) as st:
        trainer = Trainer(cfg, st, 1111, run_dir, torch.device("cpu"))
        trainer.progress.best_epoch = 1
        save_checkpoint(trainer._checkpoint({}), run_dir / "ckpt.pt")
    return run_dir
