"""Does a trained model's representation carry more than a random network's? A linear probe.

``.venv/bin/python benchmarks/bench_probe.py RUN [RUN ...] --store STORE``: for each run of a
classification task (a run directory or ``ckpt.pt``, trained on ``STORE`` with its fixed
train / valid / test split), the input of the model's prediction head (MEA: the fused vector
of Eq. 20 that its MLP reads) is taken for every sample of the three splits, features
normalised as ``mea eval`` does (the checkpoint's statistics; per-group statistics when the
run trained with ``train.normalise=group``). Then three rows per run, macro-F1 on valid and
test:

* **head**: the model's own trained head, as ``mea eval`` scores it (the train split too: how
  closely it fits the clips it was trained on);
* **probe, trained**: scikit-learn's logistic regression (balanced class weights, the inputs
  standardised on train) refitted on the same trained representation of the train split,
  its ``C`` chosen on valid from a fixed grid;
* **probe, random init**: the same probe on the representation of a freshly built model of
  the run's own config (``--random-seeds``, untrained weights drawn as ``mea train`` draws
  them; mean over the seeds).

If the trained row is no better than the random one, training has not taught the network
anything a linear model could not read from random projections of the same input: the gap
to a strong linear baseline is then in what the network learns, not in its head or its
selection. Test is reported beside valid for the diagnosis; the grid's choice is made on
valid only. Nothing is trained but the probes; every model runs on the CPU.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.preprocessing import StandardScaler

from mea_cli.artifacts.features import FeatureStore
from mea_cli.data.dataset import FeatureDataset, NormStats, make_loader
from mea_cli.runtime.loading import build_model, model_from_checkpoint
from mea_cli.train.setup import open_checkpoint

SPLITS = ("train", "valid", "test")
GRID = (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0)


def representations(
    net: torch.nn.Module, store: FeatureStore, stats: NormStats
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per split: the head's input ``[N, F]``, the head's output ``[N, C]`` and the class
    index ``[N]`` of every sample (``net`` needs a ``head`` module, as MEA, MFSA, MCR and
    FDMER have)."""
    head = getattr(net, "head", None)
    if not isinstance(head, torch.nn.Module):
        raise SystemExit(f"{type(net).__name__} has no prediction head module to probe")
    seen: dict[str, list[np.ndarray]] = {"x": [], "p": []}

    def keep(_mod: torch.nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        seen["x"].append(inp[0].detach().float().numpy())
        seen["p"].append(out.detach().float().numpy())

    hook = head.register_forward_hook(keep)
    net.eval()
    got = {}
    try:
        for split in SPLITS:
            seen["x"], seen["p"] = [], []
            labels = []
            with torch.no_grad():
                for batch in make_loader(FeatureDataset(store, split, stats), 64, shuffle=False):
                    net(batch)
                    labels.append(batch.labels.argmax(dim=-1).numpy())
            got[split] = (np.concatenate(seen["x"]), np.concatenate(seen["p"]), np.concatenate(labels))
    finally:
        hook.remove()
    return got


def macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    """scikit-learn's macro-F1, the benchmark's metric."""
    return float(f1_score(y, pred, average="macro"))


def probe(reps: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], grid: Sequence[float] = GRID) -> dict:
    """Balanced logistic regression on the train split's representation (standardised on
    train), ``C`` chosen on valid macro-F1 (the first of equals); its valid and test macro-F1."""
    (x_tr, _, y_tr), (x_va, _, y_va), (x_te, _, y_te) = (reps[s] for s in SPLITS)
    scale = StandardScaler().fit(x_tr)
    best: dict | None = None
    for c in grid:
        fit = LogisticRegression(C=c, class_weight="balanced", max_iter=5000)
        fit.fit(scale.transform(x_tr), y_tr)
        valid = macro_f1(y_va, fit.predict(scale.transform(x_va)))
        if best is None or valid > best["valid"]:
            best = {"C": c, "valid": valid, "test": macro_f1(y_te, fit.predict(scale.transform(x_te)))}
    assert best is not None
    return best


def probe_run(run: Path, store: FeatureStore, random_seeds: Sequence[int]) -> dict:
    """The three rows of one run (module docstring)."""
    path, ck = open_checkpoint(run)
    if ck.task != "multiclass":
        raise SystemExit(f"{path}: a {ck.task} run; the probe scores single-label classes only")
    stats = NormStats.from_dict(ck.norm)
    reps = representations(model_from_checkpoint(ck, path), store, stats)
    head = {s: macro_f1(reps[s][2], reps[s][1].argmax(axis=1)) for s in SPLITS}
    randoms = []
    for seed in random_seeds:
        torch.manual_seed(seed)
        randoms.append(probe(representations(build_model(ck.model, ck.model_config), store, stats)))
    return {
        "run": str(path),
        "model": ck.model,
        "features": int(reps["train"][0].shape[1]),
        "head": head,
        "probe_trained": probe(reps),
        "probe_random": {
            "seeds": list(random_seeds),
            "valid": float(np.mean([r["valid"] for r in randoms])) if randoms else None,
            "test": float(np.mean([r["test"] for r in randoms])) if randoms else None,
            "C": [r["C"] for r in randoms],
        },
    }


def table(rows: Sequence[dict]) -> str:
    """One Markdown table: the macro-F1 of the three readers of every run."""
    lines = [
        "| run | head: train | head: valid | head: test | probe, trained: valid | test "
        "| probe, random init: valid | test |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        rnd = r["probe_random"]
        cells = [
            r["head"]["train"], r["head"]["valid"], r["head"]["test"], r["probe_trained"]["valid"], r["probe_trained"]["test"],
            rnd["valid"], rnd["test"],
        ]  # fmt: skip
        text = ["—" if v is None else f"{v:.3f}" for v in cells]
        lines.append(f"| {Path(r['run']).parent.name} | " + " | ".join(text) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run directories or ckpt.pt files")
    ap.add_argument("--store", type=Path, required=True, help="the feature store the runs trained on")
    ap.add_argument("--random-seeds", default="0,1,2", help="seeds of the untrained models ('' for none)")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.random_seeds.split(",") if s.strip()]
    store = FeatureStore(args.store)
    rows = [probe_run(run, store, seeds) for run in args.runs]
    print(table(rows))
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
