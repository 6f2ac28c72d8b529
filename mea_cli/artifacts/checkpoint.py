"""The checkpoint artifact (``format = "mea-checkpoint"``, docs/design.md): one ``torch.save`` dict.

Everything in it is a plain JSON-able value (str, int, float, bool, None, list, dict) or a
tensor, so it loads with ``torch.load(weights_only=True)``: no pickled classes, no code runs
on load. Layout::

    format, version, mea_cli_version
    model            registry name ("mea", ...)
    model_config     the model's config as a dict (its dataclass ``to_dict()``)
    dataset, task, label_names
    label_range      a custom regression task's range (its metrics' thresholds), else None
    schema           {modality: {dim, feature_names, extractor: {name, version, parameters},
                                 nominal_rate_hz}}
    norm             normalisation statistics fitted on the training split (``to_dict()``)
    state_dict       the model's weights (tensors)
    train_config     the trainer's settings (lr, batch size, epochs, ...)
    seed, epoch      the seed and the best-on-valid epoch (1-based)
    valid_metrics    that epoch's validation metrics
    features         {"path": str, "sha256": str}
    target_scale     regression: {"mean": [...], "std": [...]} of the train labels the model
                     learned standardised (mea_cli.runtime.targets); absent or None: identity

:func:`check_schema` compares a checkpoint's schema with a feature store's and names the first
modality that differs, with expected vs found.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import re
import struct
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mea_cli import __version__
from mea_cli.artifacts.features import FeatureStore, ModalitySchema
from mea_cli.artifacts.store_format import TASKS
from mea_cli.errors import MeaError
from mea_cli.paths import atomic_output

FORMAT = "mea-checkpoint"
VERSION = 1


class CheckpointError(MeaError):
    """A checkpoint that is missing, corrupt, of another format, or does not fit the features."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def schema_to_dict(modalities: Mapping[str, ModalitySchema]) -> dict[str, dict[str, Any]]:
    """A feature store's per-modality schema as a plain dict (NaN rates become None)."""
    out = {}
    for name, s in modalities.items():
        rate = s.nominal_rate_hz
        out[name] = {
            "dim": s.dim,
            "feature_names": list(s.feature_names),
            "extractor": {
                "name": s.extractor.name,
                "version": s.extractor.version,
                "parameters": dict(s.extractor.parameters),
            },
            "nominal_rate_hz": None if rate is None or math.isnan(rate) else float(rate),
        }
    return out


@dataclass
class Checkpoint:
    """The typed contents of a checkpoint file (see the module docstring)."""

    model: str
    model_config: dict[str, Any]
    dataset: str
    task: str
    label_names: list[str]
    schema: dict[str, dict[str, Any]]
    norm: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    train_config: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    epoch: int = 0
    valid_metrics: dict[str, float | None] = field(default_factory=dict)
    features: dict[str, str] = field(default_factory=dict)
    mea_cli_version: str = __version__
    label_range: list[float] | None = None
    target_scale: dict[str, list[float]] | None = None  # regression: mea_cli.runtime.targets

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "mea_cli_version": self.mea_cli_version,
            "model": self.model,
            "model_config": self.model_config,
            "dataset": self.dataset,
            "task": self.task,
            "label_names": list(self.label_names),
            "label_range": None if self.label_range is None else [float(x) for x in self.label_range],
            "schema": self.schema,
            "norm": self.norm,
            "state_dict": self.state_dict,
            "train_config": self.train_config,
            "seed": int(self.seed),
            "epoch": int(self.epoch),
            "valid_metrics": self.valid_metrics,
            "features": self.features,
            "target_scale": self.target_scale,
        }


_REQUIRED = (
    "model",
    "model_config",
    "dataset",
    "task",
    "label_names",
    "schema",
    "norm",
    "state_dict",
)


def atomic_torch_save(obj: Any, path: str | os.PathLike[str], what: str = "checkpoint") -> None:
    """``torch.save`` through :func:`mea_cli.paths.atomic_output`: never half-written, umask
    permissions, and the parent directory must exist (nothing is created for it).

    The bytes are made in memory and written with Python's own file writes: torch's C++
    writer reports a full disk as "basic_ios::clear: iostream error", with no errno, which
    could not be told from a bug; Python's write raises ``OSError(ENOSPC)``, which
    :func:`~mea_cli.paths.atomic_output` turns into one line naming ``path``."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    with atomic_output(path, what) as tmp, open(tmp, "wb") as fh:
        fh.write(buf.getbuffer())


def save_checkpoint(ckpt: Checkpoint, path: str | os.PathLike[str]) -> Path:
    """Write ``ckpt`` atomically; return the path."""
    atomic_torch_save(ckpt.to_dict(), path)
    return Path(path)


def _refusal(err: pickle.UnpicklingError) -> str:
    """What torch's weights-only unpickler refused (``Unsupported operand 49``, ``Unsupported
    global: GLOBAL pathlib.PosixPath``, ``Unsupported global: GLOBAL posix.system``), without the
    rest of its message: its first line says the file "can still be loaded" or that loading it
    with ``weights_only=False`` "will likely succeed" (wrong for a text file, unsafe for a
    file that calls a function, and never done here) and holds terminal escapes. No line that
    mentions ``weights_only`` is ever the reason."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err))
    found = re.search(r"WeightsUnpickler error:\s*(.+?)(?: was not an allowed global|$)", text, re.M)
    blocked = re.search(r"unsupported GLOBAL (\S+)", text)
    if found:
        reason = found.group(1).strip().splitlines()[0]
    elif blocked:  # a global of a module torch blocks (os.system: posix.system)
        reason = f"Unsupported global: GLOBAL {blocked.group(1)}"
    else:
        reason = ""
    if not reason or "weights_only" in reason:
        lines = [x.strip() for x in text.splitlines() if x.strip() and "weights_only" not in x]
        reason = lines[0] if lines else type(err).__name__
    return reason if len(reason) <= 100 else reason[:100] + "..."


def safe_load(path: str | os.PathLike[str], what: str = "checkpoint") -> dict[str, Any]:
    """``torch.load(weights_only=True)`` on CPU with every failure turned into one clear error."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError(p, "no such file")
    if p.is_dir():
        raise CheckpointError(p, f"is a directory, not a {what} file")
    if not p.is_file():  # reading a FIFO would wait forever, a device (/dev/zero) never ends
        raise CheckpointError(p, f"not a regular file (a device, FIFO or socket), not a {what} file")
    try:
        with warnings.catch_warnings():  # torch warns about odd pickle protocols; we report
            warnings.simplefilter("ignore")
            raw = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            p, f"not a mea-cli {what} (unreadable or holds objects a safe load refuses): "
            f"{_refusal(err)}"
        ) from None
    except (  # a legacy (non-zip) file's pickle opcodes: random bytes raise any of these
        RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError, IndexError,
        struct.error, TypeError, AttributeError,
    ) as err:  # fmt: skip
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            p, f"not a readable {what} (truncated, corrupt or another format): {first}"
        ) from None
    if not isinstance(raw, dict):
        raise CheckpointError(p, f"not a mea-cli {what}: holds a {type(raw).__name__}, not a dict")
    return raw


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read and validate a checkpoint written by :func:`save_checkpoint`: its format and
    version, every required entry, and each entry's type (a tampered or foreign file is one
    :class:`CheckpointError` naming the file and the entry, never a ``TypeError`` later)."""
    raw = safe_load(path)
    fmt = raw.get("format")
    if fmt != FORMAT:
        raise CheckpointError(path, f"format is {fmt!r}, expected {FORMAT!r}")
    if raw.get("version") != VERSION:
        raise CheckpointError(
            path, f"checkpoint version {raw.get('version')!r} is not supported (reads {VERSION})"
        )
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise CheckpointError(path, f"missing entries: {', '.join(missing)}")
    if not isinstance(raw["state_dict"], dict) or not all(
        isinstance(v, torch.Tensor) for v in raw["state_dict"].values()
    ):
        raise CheckpointError(path, "state_dict is not a dict of tensors")
    _check_types(path, raw)
    return Checkpoint(
        model=raw["model"],
        model_config=dict(raw["model_config"]),
        dataset=raw["dataset"],
        task=raw["task"],
        label_names=list(raw["label_names"]),
        schema={m: dict(entry) for m, entry in raw["schema"].items()},
        norm=dict(raw["norm"]),
        state_dict=raw["state_dict"],
        train_config=dict(raw.get("train_config", {})),
        seed=_integer(path, "seed", raw.get("seed", 0)),
        epoch=_integer(path, "epoch", raw.get("epoch", 0)),
        valid_metrics=dict(raw.get("valid_metrics", {})),
        features=dict(raw.get("features", {})),
        mea_cli_version=str(raw.get("mea_cli_version", "")),
        label_range=_range(path, raw.get("label_range")),
        target_scale=_target_scale(path, raw.get("target_scale")),
    )


_KINDS: dict[str, tuple[type, ...]] = {
    "model": (str,),
    "model_config": (Mapping,),
    "dataset": (str,),
    "task": (str,),
    "label_names": (list, tuple),
    "schema": (Mapping,),
    "norm": (Mapping,),
    "train_config": (Mapping,),
    "valid_metrics": (Mapping,),
    "features": (Mapping,),
}
"""The type each entry must have (when present: the last four are optional)."""


def _kind(value: Any) -> str:
    """``value``'s type as an error names it (``a list``, ``None``)."""
    return "None" if value is None else f"a {type(value).__name__}"


def _check_types(path: object, raw: Mapping[str, Any]) -> None:
    """Refuse (:class:`CheckpointError`, naming the entry) entries of the wrong type: what
    reading them would otherwise fail on far from here (a ``TypeError`` in ``dict()``, a
    ``KeyError`` in :func:`check_schema`, an ``IndexError`` reading a class prediction)."""
    for key, kinds in _KINDS.items():
        if key in raw and not isinstance(raw[key], kinds):
            want = " or ".join("a dict" if k is Mapping else f"a {k.__name__}" for k in kinds)
            raise CheckpointError(path, f"entry {key} is {_kind(raw[key])}, not {want}")
    if raw["task"] not in TASKS:
        raise CheckpointError(path, f"task {raw['task']!r} is not one of {', '.join(TASKS)}")
    built = raw["model_config"].get("task", raw["task"])
    if built != raw["task"]:
        raise CheckpointError(
            path, f"task is {raw['task']!r}, but the model was built for {built!r} (model_config)"
        )
    names = raw["label_names"]
    if not all(isinstance(n, str) for n in names):
        raise CheckpointError(path, f"label_names {list(names)!r} are not all strings")
    wanted = raw["model_config"].get("num_labels")
    if raw["task"] != "regression" and isinstance(wanted, int) and wanted != len(names):
        raise CheckpointError(
            path,
            f"the {raw['task']} model predicts {wanted} labels (model_config num_labels), but "
            f"label_names has {len(names)}: {list(names)}",
        )
    for m, entry in raw["schema"].items():
        _check_schema_entry(path, str(m), entry)


def _check_schema_entry(path: object, m: str, entry: Any) -> None:
    """One modality of the checkpoint's schema: ``dim``, its ``feature_names``, the extractor."""
    where = f"schema entry {m!r}"
    if not isinstance(entry, Mapping):
        raise CheckpointError(path, f"{where} is {_kind(entry)}, not a dict")
    dim, names = entry.get("dim"), entry.get("feature_names")
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 0:
        raise CheckpointError(path, f"{where} has no feature count (dim: {dim!r})")
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise CheckpointError(path, f"{where} has no list of feature_names")
    if len(names) != dim:
        raise CheckpointError(path, f"{where} has dim {dim} but {len(names)} feature_names")
    ex = entry.get("extractor")
    if not (
        isinstance(ex, Mapping)
        and isinstance(ex.get("name"), str)
        and isinstance(ex.get("parameters", {}), Mapping)
    ):
        raise CheckpointError(path, f"{where} has no extractor record ({{name, parameters}})")
    rate = entry.get("nominal_rate_hz")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float))):
        raise CheckpointError(path, f"{where} has nominal_rate_hz {rate!r}, not a number")


def _integer(path: object, key: str, value: Any) -> int:
    """An integer entry (``seed``, ``epoch``); anything else is a :class:`CheckpointError`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise CheckpointError(path, f"entry {key} {value!r} is not an integer")
    return value


def _target_scale(path: object, value: Any) -> dict[str, list[float]] | None:
    """The regression target scale (``None``: not recorded, the identity: older checkpoints)."""
    if value is None:
        return None
    try:
        mean, std = [float(x) for x in value["mean"]], [float(x) for x in value["std"]]
    except (TypeError, KeyError, ValueError):
        raise CheckpointError(path, f"target_scale {value!r} is not {{mean, std}} lists") from None
    if len(mean) != len(std) or not all(s > 0 for s in std):
        raise CheckpointError(path, "target_scale needs one positive std per mean")
    return {"mean": mean, "std": std}


def _range(path: object, value: Any) -> list[float] | None:
    if value is None:
        return None
    try:
        a, b = (float(x) for x in value)
    except (TypeError, ValueError):
        raise CheckpointError(path, f"label_range {value!r} is not two numbers") from None
    return [a, b]


def check_schema(
    ckpt: Checkpoint, store: FeatureStore, ckpt_path: object = "checkpoint", labels: bool = True
) -> None:
    """Refuse a feature store whose modalities, dimensions or labels differ from the checkpoint's.

    The message names the checkpoint, the store, the modality and expected vs found, e.g.
    ``ckpt.pt: trained on vision with 35 features, but other.h5 has 20``. ``labels=False``
    (``mea predict``, which never reads a store's labels) checks the features only: the
    store's task and label names may differ from the checkpoint's.
    """
    found = schema_to_dict(store.modalities)
    where = f"{ckpt_path}"
    if set(found) != set(ckpt.schema):
        raise CheckpointError(
            where,
            f"trained on modalities {sorted(ckpt.schema)}, but {store.name} has {sorted(found)}",
        )
    for name, want in ckpt.schema.items():
        got = found[name]
        if got["dim"] != want["dim"]:
            raise CheckpointError(
                where,
                f"trained on {name} with {want['dim']} features, but {store.name} has {got['dim']}",
            )
        if got["feature_names"] != want["feature_names"]:
            diff = next(
                i
                for i, (a, b) in enumerate(
                    zip(want["feature_names"], got["feature_names"], strict=True)
                )
                if a != b
            )
            raise CheckpointError(
                where,
                f"{name} feature {diff} is {want['feature_names'][diff]!r} in the checkpoint but "
                f"{got['feature_names'][diff]!r} in {store.name}",
            )
        if got["extractor"]["name"] != want["extractor"]["name"]:
            raise CheckpointError(
                where,
                f"{name} was extracted with {want['extractor']['name']!r} for training but with "
                f"{got['extractor']['name']!r} in {store.name}",
            )
        was = want["extractor"].get("parameters", {}).get("aligned_to")
        now = got["extractor"]["parameters"].get("aligned_to")
        if was != now:  # `mea align` records it (docs/align.md): never mix the two settings
            said = {None: "at its native rate"} | {x: f"aligned to {x}" for x in (was, now) if x}
            raise CheckpointError(
                where,
                f"trained on {name} {said[was]}, but {store.name} has it {said[now]} "
                "(mea align, docs/align.md)",
            )
    if not labels:
        return
    if store.meta.task and store.meta.task != ckpt.task:
        raise CheckpointError(
            where, f"trained for task {ckpt.task!r}, but {store.name} is {store.meta.task!r}"
        )
    if store.meta.label_names and list(store.meta.label_names) != list(ckpt.label_names):
        raise CheckpointError(
            where,
            f"trained on labels {list(ckpt.label_names)}, but {store.name} has "
            f"{list(store.meta.label_names)}",
        )
