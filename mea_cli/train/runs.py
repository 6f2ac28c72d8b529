"""The runs layout (docs/design.md, "Artifacts"): where a training run keeps its files.

::

    runs/<name>/config.json     what was trained: features (+ sha256), dataset, model and its
                                config, training settings, seeds, --set overrides, mea_cli version
    runs/<name>/ckpt.pt         best-on-valid checkpoint (single seed)
    runs/<name>/metrics.json    valid and test metrics of that checkpoint; for several seeds the
                                per-seed metrics and their mean and std
    runs/<name>/log.jsonl       one JSON object per completed epoch
    runs/<name>/state.pt        resumable state after the last completed epoch (``--resume``)
    runs/<name>/seeds/<seed>/   ckpt.pt, metrics.json, log.jsonl, state.pt of each seed when
                                several seeds are trained
    runs/<name>/.mea.lock       held by the process training the run (:mod:`mea_cli.locks`)
    runs/latest                 symlink to the newest run (a text file holding its name where
                                symlinks are not available)

Every JSON file is written atomically through :mod:`mea_cli.paths` (temporary file, then
rename). NaN metrics are written as ``null`` so the files are strict JSON.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any

from mea_cli import locks, paths
from mea_cli.errors import MeaError

LATEST = "latest"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
NAME_MAX_BYTES = 255  # the longest folder name common file systems allow


class RunError(MeaError):
    """A run directory that cannot be created, found or resumed."""


def read_json(path: Path) -> Any:
    """A run file's JSON; a missing or broken file is a :class:`RunError` naming it."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RunError(f"{path}: no such file") from None
    except json.JSONDecodeError as err:
        raise RunError(f"{path}: not valid JSON ({err})") from None


def append_log(path: Path, record: dict[str, Any]) -> None:
    """Append one epoch record to ``log.jsonl`` (flushed and fsynced: it survives a kill)."""
    with paths.disk_full_as_error(path, "training log"), open(path, "a") as f:
        f.write(json.dumps(paths.jsonable(record), allow_nan=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_log(path: Path) -> list[dict[str, Any]]:
    """The complete records of ``log.jsonl``; a torn last line (killed mid-write) is skipped."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def truncate_log(path: Path, last_epoch: int) -> None:
    """Keep only the records of epochs ``<= last_epoch`` (used when resuming)."""
    keep = [r for r in read_log(path) if int(r.get("epoch", 0)) <= last_epoch]
    paths.write_text(path, "".join(json.dumps(r) + "\n" for r in keep), "training log")


def default_name(model: str, dataset: str) -> str:
    """``<model>-<dataset>-<YYYYmmdd-HHMMSS>``."""
    return f"{model}-{dataset}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def check_name(name: str, option: str | None = None) -> str:
    """``name`` as a folder name under the runs directory: not empty, no path (``/``, ``..``),
    not ``latest``, at most :data:`NAME_MAX_BYTES`. ``option`` (``--name``): the option it
    was given with, named first by the error."""
    prefix = f"{option}: " if option else ""
    if not name.strip():
        leave_out = f"; leave {option} out for the default one" if option else ""
        raise RunError(f"{prefix}run name {name!r} is empty{leave_out}")
    if len(name.encode("utf-8")) > NAME_MAX_BYTES:
        raise RunError(
            f"{prefix}run name {name[:24]}...{name[-12:]} is {len(name.encode())} bytes; the "
            f"most a folder name may have is {NAME_MAX_BYTES}"
        )
    if not _NAME.match(name) or name == LATEST:
        raise RunError(
            f"{prefix}run name {name!r} is not allowed: use letters, digits, '.', '_', '+', '-', "
            f"starting with a letter or digit (no '/', so no path; and not {LATEST!r})"
        )
    return name


def resolve_run(runs_dir: Path, name: str | None) -> Path:
    """The directory of run ``name``, or of ``runs/latest`` when ``name`` is None."""
    if name is not None:
        path = runs_dir / check_name(name)
        if not path.is_dir():
            raise RunError(f"{path}: no such run")
        return path
    link = runs_dir / LATEST
    if link.is_symlink() or link.is_dir():
        target = link.resolve()
    elif link.is_file():
        target = runs_dir / link.read_text().strip()
    else:
        raise RunError(f"{runs_dir}: no runs yet ({link} does not exist); give --name")
    if not target.is_dir():
        raise RunError(f"{link} points at {target}, which does not exist")
    return target


def update_latest(runs_dir: Path, run_dir: Path) -> None:
    """Point ``runs/latest`` at ``run_dir`` (relative symlink; a text file if that fails)."""
    link = runs_dir / LATEST
    try:
        paths.replace_symlink(link, run_dir.name)
    except OSError:  # no symlinks here (some Windows and network file systems)
        if link.is_symlink():
            link.unlink()
        paths.write_text(link, run_dir.name + "\n", "latest-run pointer")


RUN_FILES = (
    "config.json", "ckpt.pt", "metrics.json", "log.jsonl", "state.pt", "folds.json", "folds.md",
    "split.h5",
)  # fmt: skip
"""What training writes into a run's (or a seed's) directory (module docstring; ``--folds``)."""


def note_run_files(ckpt: Path) -> None:
    """Remember the files training wrote beside checkpoint ``ckpt`` (and, for a seed's, in its
    run's directory) as the running command's inputs (:func:`mea_cli.paths.note_input`): an
    output named like one (``mea eval --predictions runs/x/config.json``) is refused instead of
    replacing the run's record, which a later ``--resume`` or ``mea eval`` would fail on."""
    dirs = [ckpt.parent]
    if ckpt.parent.parent.name == "seeds":
        dirs.append(ckpt.parent.parent.parent)
    for d in dirs:
        for name in RUN_FILES:
            if (d / name).is_file():
                paths.note_input(d / name)


def checkpoint_in(path: str | os.PathLike[str]) -> Path:
    """The checkpoint a user named: a checkpoint file, or a run directory holding ``ckpt.pt``
    (its run's files are noted as inputs: :func:`note_run_files`).

    A run of several seeds has no top-level checkpoint but one per ``seeds/<seed>/``; the
    error names each of them, so the user can pick one instead of reading "no such file".
    """
    p = paths.check_name_length(path, "checkpoint")
    if not p.exists():
        raise paths.PathError(p, "no such checkpoint file or run directory")
    named = p if not p.is_dir() else p / "ckpt.pt"
    if named.exists() and not named.is_dir() and not named.is_file():
        raise paths.PathError(named, "not a regular file (a device, FIFO or socket), not a checkpoint")
    if named.exists():
        found = paths.check_input_file(named, "checkpoint")
        note_run_files(found)
        return found
    seeds = p / "seeds"
    per_seed = (
        sorted(
            (d for d in seeds.iterdir() if (d / "ckpt.pt").is_file()),
            key=lambda d: (not d.name.isdigit(), int(d.name) if d.name.isdigit() else 0, d.name),
        )
        if seeds.is_dir()
        else []
    )
    if per_seed:
        choices = ", ".join(str(d) for d in per_seed)
        raise RunError(
            f"{p}: a run of {len(per_seed)} seeds keeps one checkpoint per seed, none at the "
            f"top; give one seed's directory: {choices} (mea eval and mea predict also take "
            "them all, as one model whose predictions are their average)"
        )
    raise RunError(f"{p}: no checkpoint (ckpt.pt) in this directory; is it a training run?")


def check_store_unchanged(
    store: str | os.PathLike[str], recorded: str, where: object, allow: bool = False
) -> None:
    """Refuse a feature store whose SHA-256 differs from the one ``where`` (a run's
    ``config.json`` or a checkpoint) recorded at training time: resuming or evaluating on
    changed data would mix two datasets without a word. With ``allow`` (the command line's
    ``--allow-changed-store``) it goes on, after a warning on stderr. An empty ``recorded``
    (a run of another rank, an old checkpoint) cannot be compared and is accepted."""
    if not recorded:
        return
    now = paths.file_sha256(store)
    if now == recorded:
        return
    said = (
        f"{store}: the feature store changed since {where} was trained (sha256 {now[:12]}..., "
        f"recorded {recorded[:12]}...)"
    )
    if not allow:
        raise RunError(f"{said}; pass --allow-changed-store to use it anyway")
    sys.stderr.write(f"WARNING: {said}; going on because of --allow-changed-store\n")


def create_run_dir(run_dir: Path, cfg: dict[str, Any]) -> None:
    """Create ``run_dir`` (and its runs folder) holding ``config.json``; when writing it fails
    (a full disk), the folders this call created are removed again, so a retry does not meet
    "already exists"."""
    made = [p for p in (run_dir.parent, run_dir) if not p.exists()]
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        paths.write_json(run_dir / "config.json", cfg, nan="null")
    except BaseException:
        for p in reversed(made):
            with contextlib.suppress(OSError):
                p.rmdir()
        raise


def check_resume_store(runs_dir: Path, name: str | None, allow: bool = False) -> None:
    """``--resume``'s store check (:func:`check_store_unchanged`) on the run's saved config,
    without torch: the command line runs it before the heavy imports."""
    run_dir = resolve_run(runs_dir, name)
    cfg = read_json(run_dir / "config.json")
    store = cfg.get("features") if isinstance(cfg, dict) else None
    if isinstance(store, str) and Path(store).is_file():
        check_store_unchanged(store, str(cfg.get("features_sha256") or ""), run_dir, allow)


def seed_dirs(run_dir: Path, seeds: Sequence[int]) -> dict[int, Path]:
    """Where each seed's files go, in the run's seed order: the run directory itself for a
    single seed, else ``seeds/<seed>/``."""
    return {int(s): run_dir if len(seeds) == 1 else run_dir / "seeds" / str(s) for s in seeds}


def hold_run(run_dir: Path, alone: bool = True) -> AbstractContextManager[list[Path]]:
    """Hold ``run_dir`` for this process (a second command on the run is refused in one line,
    :class:`mea_cli.locks.InUseError`) and remove the temporary files a killed process left in
    it and in its seed folders. ``alone=False`` (a non-zero rank of a distributed run, whose
    rank 0 holds the run) holds nothing."""
    if not alone:
        return contextlib.nullcontext([])
    seeds = run_dir / "seeds"
    clean = sorted(d for d in seeds.iterdir() if d.is_dir()) if seeds.is_dir() else []
    return locks.hold(run_dir, "run", clean)


def config_digest(cfg: Mapping[str, Any]) -> str:
    """SHA-256 of a run's configuration as ``config.json`` holds it: what ties a ``state.pt``
    to the run that wrote it."""
    text = json.dumps(paths.jsonable(dict(cfg)), sort_keys=True, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


STATE_FIX = "delete it to restart this seed from epoch 1, or resume the run it belongs to"
"""What a ``state.pt`` that cannot be resumed from says to do."""

_STATE_KINDS: dict[str, tuple[type, ...]] = {
    "optimizer": (Mapping,),
    "scheduler": (Mapping,),
    "rng": (Mapping,),
    "ema": (Mapping, type(None)),  # None: absent, a state written before weight averaging
    "epoch": (int,),
    "best": (int, float, type(None)),
    "best_epoch": (int,),
    "bad_epochs": (int,),
    "stopped": (bool,),
    "best_state": (Mapping,),
    "best_valid": (Mapping,),
}
"""Every entry of ``state.pt`` that resuming reads (``Trainer.restore``), with its type; one
that may be None may also be absent (added after the format's first states were written)."""


def state_error(path: Path, problem: str) -> RunError:
    """The one-line error for a ``state.pt`` that cannot be resumed from, with what to do."""
    return RunError(f"{path}: {problem}; {STATE_FIX}")


def check_state(
    path: Path, state: Mapping[str, Any], cfg: Mapping[str, Any], seed: int,
    model_state: Mapping[str, Any], state_format: str,
) -> None:  # fmt: skip
    """Refuse (one line, :class:`RunError`) a ``state.pt`` that is not this run's and seed's:
    another format, another seed, another run's configuration (recorded since the digest was
    added), model weights (or best-on-valid weights) of other names or shapes (a state file
    of any age), or an entry that resuming reads missing or of another type."""
    if state.get("format") != state_format or not isinstance(state.get("model"), Mapping):
        raise state_error(path, "not a mea-cli training state")
    if state.get("seed") != seed:
        raise state_error(path, f"the training state of seed {state.get('seed')}, not of seed {seed}")
    recorded = state.get("config_sha256")
    if recorded is not None and recorded != config_digest(cfg):
        raise state_error(
            path,
            "the training state of another run (written with another configuration than this "
            "run's config.json)",
        )
    for key, kinds in _STATE_KINDS.items():
        value = state.get(key)
        if key not in state and type(None) in kinds:
            continue
        if key not in state or not isinstance(value, kinds) or (
            isinstance(value, bool) and bool not in kinds
        ):
            said = "missing" if key not in state else f"{type(value).__name__} {value!r:.40}"
            raise state_error(path, f"a damaged training state ({key}: {said})")
    if not 0 <= state["best_epoch"] <= state["epoch"] or state["bad_epochs"] < 0:
        raise state_error(
            path,
            f"a damaged training state (epoch {state['epoch']}, best epoch "
            f"{state['best_epoch']}, bad epochs {state['bad_epochs']})",
        )
    if state["best_epoch"] > 0 and not state["best_state"]:
        raise state_error(
            path, f"a damaged training state (best_state: empty, best epoch {state['best_epoch']})"
        )
    ours = _shapes(model_state)
    weights = [("model", state["model"])]
    if state["best_epoch"] > 0:  # the best-on-valid weights, kept since that epoch
        weights.append(("best_state", state["best_state"]))
    for key, value in weights:
        theirs = _shapes(value)
        if theirs != ours:
            odd = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
            which = "" if key == "model" else "best-on-valid "
            raise state_error(
                path,
                f"the training state of another model ({len(odd)} {which}weight(s) differ in "
                f"name or shape, e.g. {odd[0]})",
            )


def _shapes(weights: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """Each weight's shape by name (``()`` for a value that is not a tensor)."""
    return {k: tuple(getattr(v, "shape", ())) for k, v in weights.items()}
