"""Fingerprint every registered model, to show that a refactor changed none of them.

For each model it prints the parameter count of its default (``mosi`` preset) configuration for
every task the model accepts, then the metrics of one seeded tiny training run through the
real CLI: ``mea synth`` (a small MOSI-shaped store, fixed seed), then ``mea train --epochs 1
--threads 1 --seeds 1111 --dataset mosi`` with the model's tiny override (its registered ``tiny`` fields) in a
``--config`` TOML file. Run it before and after a change and ``diff`` the two outputs: they
must be identical (CPU, same torch; the numbers are exact ``repr`` of the floats).

``--save-checkpoints DIR`` also copies each run's ``ckpt.pt`` to ``DIR/<model>.pt`` (the
checkpoints of ``tests/data/checkpoints_v0/``).

    python tools/model_fingerprint.py > fingerprint.txt
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from mea_cli.config import ConfigError
from mea_cli.models import config_for, create_model, get_entry, list_models

TASKS: tuple[tuple[str, int], ...] = (("regression", 1), ("multiclass", 3), ("binary-multilabel", 4))
"""The tasks probed, with a label count each accepts."""

SYNTH = ("--like", "mosi", "--n", "24", "--seed", "0", "--max-seconds", "3")
"""The store of the training run: 24 MOSI-shaped samples of at most 3 s."""


def parameter_counts(name: str) -> list[str]:
    """One line per task: the parameter count of model ``name``'s mosi preset for it."""
    lines = []
    for task, k in TASKS:
        try:
            model = create_model(name, config_for(name, "mosi", task=task, num_labels=k))
        except (ConfigError, ValueError) as err:
            lines.append(f"  params {task}: not supported ({str(err).splitlines()[0]})")
            continue
        n = sum(p.numel() for p in model.parameters())
        lines.append(f"  params {task} (num_labels={k}): {n}")
    return lines


def _toml_value(v: Any) -> str:
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return json.dumps(v)


def tiny_toml(name: str) -> str:
    """A ``--config`` file: model ``name``'s tiny fields under ``[model]``, batch size 8."""
    body = "".join(f"{k} = {_toml_value(v)}\n" for k, v in sorted(get_entry(name).tiny.items()))
    return "[train]\nbatch_size = 8\n\n[model]\n" + body


def _mea(*args: str) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "mea_cli", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")


def training_metrics(name: str, store: Path, work: Path, save_dir: Path | None) -> list[str]:
    """The metrics of one seeded one-epoch tiny run of model ``name`` on ``store``."""
    cfg = work / f"{name}.toml"
    cfg.write_text(tiny_toml(name))
    runs = work / "runs"
    _mea(
        "train", str(store), "--dataset", "mosi", "--model", name, "--epochs", "1", "--threads", "1",
        "--seeds", "1111", "--config", str(cfg), "--runs-dir", str(runs), "--name", name,
    )  # fmt: skip
    if save_dir is not None:
        shutil.copyfile(runs / name / "ckpt.pt", save_dir / f"{name}.pt")
    metrics = json.loads((runs / name / "metrics.json").read_text())
    return [f"  {line}" for line in json.dumps(metrics, sort_keys=True, indent=1).splitlines()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--save-checkpoints", type=Path, default=None, help="Copy ckpt.pt files here.")
    ap.add_argument("--models", default=None, help="Comma-separated subset [default: all].")
    args = ap.parse_args(argv)
    names = args.models.split(",") if args.models else list_models()
    if args.save_checkpoints is not None:
        args.save_checkpoints.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mea-fingerprint-") as tmp:
        work = Path(tmp)
        store = work / "store.h5"
        _mea("synth", "--out", str(store), *SYNTH)
        for name in names:
            print(f"model {name}")
            print("\n".join(parameter_counts(name)))
            tiny = ", ".join(tiny_toml(name).split("[model]")[1].split("\n")).strip(", ")
            print(f"  tiny override: {tiny or '(none)'}")
            print("  metrics of one seeded tiny epoch:")
            print("\n".join(training_metrics(name, store, work, args.save_checkpoints)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
