"""Does a trained model's representation carry more than a random network's? A linear probe.

``.venv/bin/python benchmarks/bench_probe.py RUN [RUN ...] [--store STORE]``: for each run of a
classification task (a run directory or ``ckpt.pt``) on the store it trained on (``STORE``, or
by default each run's own: a fold of ``mea train --folds`` keeps its split store beside its
checkpoint, ``folds/<k>/features.h5``, and a run directory with ``folds/`` stands for all its
folds), the input of the model's prediction head is taken for every sample of the train,
valid and test splits (MEA: the fused vector its prediction MLP reads, DGF's output or, with
``ablations=dgf``, the concatenation), features normalised as ``mea eval`` does (the
checkpoint's statistics; per-group statistics when the run trained with
``train.normalise=group``). Then three readers of it, macro-F1 on valid and test:

* **head**: the model's own trained head, as ``mea eval`` scores it (the train split too: how
  closely it fits the clips it was trained on);
* **probe, trained**: scikit-learn's logistic regression (balanced class weights, the inputs
  standardised on train) refitted on the same trained representation of the train split,
  its ``C`` chosen on valid from a fixed grid;
* **probe, random init**: the same probe on the representation of a freshly built model of
  the run's own config (``--random-seeds``: the model's own initialisation after
  ``torch.manual_seed(seed)``, untrained; mean over the seeds).

When the store has a group column (speakers), one more figure per reader: how well a linear
model tells the train split's groups apart from the representation (accuracy of five-fold
cross-validation over the train clips, against chance): how much of who is speaking the
representation keeps, i.e. what a speaker-adversarial loss would have to remove.

If the trained row is no better than the random one, training has not taught the network
anything a linear model could not read from an untrained network's features of the same
input: the gap
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
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mea_cli.artifacts.features import FeatureStore
from mea_cli.data.dataset import FeatureDataset, NormStats, make_loader
from mea_cli.runtime.loading import build_model, model_from_checkpoint
from mea_cli.train.setup import open_checkpoint

SPLITS = ("train", "valid", "test")
GRID = (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0)


Reps = dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]]


def datasets(store: FeatureStore, stats: NormStats) -> dict[str, FeatureDataset]:
    """The three splits, normalised as ``mea eval`` does; built once per run and read by the
    trained model and every untrained one (group statistics are fitted once)."""
    return {split: FeatureDataset(store, split, stats) for split in SPLITS}


def representations(net: torch.nn.Module, splits: dict[str, FeatureDataset]) -> Reps:
    """Per split: the head's input ``[N, F]``, the head's output ``[N, C]``, the class index
    ``[N]`` and the id of every sample, in the loader's order (``net`` needs a ``head``
    module, as MEA, MFSA, MCR and FDMER have)."""
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
        for split, ds in splits.items():
            seen["x"], seen["p"] = [], []
            labels, ids = [], []
            with torch.no_grad():
                for batch in make_loader(ds, 64, shuffle=False):
                    net(batch)
                    labels.append(batch.labels.argmax(dim=-1).numpy())
                    ids += batch.ids
            x, p = np.concatenate(seen["x"]), np.concatenate(seen["p"])
            got[split] = (x, p, np.concatenate(labels), ids)
    finally:
        hook.remove()
    return got


def macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    """scikit-learn's macro-F1, the benchmark's metric."""
    return float(f1_score(y, pred, average="macro"))


def probe(reps: Reps, grid: Sequence[float] = GRID) -> dict:
    """Balanced logistic regression on the train split's representation (standardised on
    train), ``C`` chosen on valid macro-F1 (the first of equals); its valid and test macro-F1."""
    (x_tr, _, y_tr, _), (x_va, _, y_va, _), (x_te, _, y_te, _) = (reps[s] for s in SPLITS)
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


def group_accuracy(reps: Reps, group_of: dict[str, str] | None) -> float | None:
    """Five-fold cross-validated accuracy of a logistic regression (C = 0.1, standardised)
    telling the train split's groups apart from the representation (``group_of``: sample id ->
    group); None without groups."""
    if group_of is None:
        return None
    x, _, _, ids = reps["train"]
    groups = np.array([group_of[i] for i in ids])
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    fit = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=5000))
    return float(cross_val_score(fit, x, groups, cv=folds).mean())


def probe_run(run: Path, store: FeatureStore, random_seeds: Sequence[int]) -> dict:
    """The three rows of one run (module docstring)."""
    path, ck = open_checkpoint(run)
    if ck.task != "multiclass":
        raise SystemExit(f"{path}: a {ck.task} run; the probe scores single-label classes only")
    splits = datasets(store, NormStats.from_dict(ck.norm))
    group_of = (
        None
        if store.samples.group is None
        else dict(zip(store.samples.id.tolist(), store.samples.group.tolist(), strict=True))
    )
    reps = representations(model_from_checkpoint(ck, path), splits)
    head = {s: macro_f1(reps[s][2], reps[s][1].argmax(axis=1)) for s in SPLITS}
    randoms, random_groups = [], []
    for seed in random_seeds:
        torch.manual_seed(seed)
        untrained = representations(build_model(ck.model, ck.model_config), splits)
        randoms.append(probe(untrained))
        random_groups.append(group_accuracy(untrained, group_of))
    n_groups = None if group_of is None else len({group_of[i] for i in reps["train"][3]})
    return {
        "run": str(path),
        "model": ck.model,
        "features": int(reps["train"][0].shape[1]),
        "head": head,
        "probe_trained": {**probe(reps), "group_accuracy": group_accuracy(reps, group_of)},
        "probe_random": {
            "seeds": list(random_seeds),
            "valid": float(np.mean([r["valid"] for r in randoms])) if randoms else None,
            "test": float(np.mean([r["test"] for r in randoms])) if randoms else None,
            "C": [r["C"] for r in randoms],
            "group_accuracy": None if not randoms or random_groups[0] is None else float(np.mean(random_groups)),
        },
        "train_groups": n_groups,
    }


def label(ckpt: str) -> str:
    """A run's name in the tables: its directory, with its fold or seed (``NAME/folds/3``)."""
    parts = Path(ckpt).parent.parts
    return "/".join(parts[-3:]) if len(parts) >= 3 and parts[-2] in ("folds", "seeds") else parts[-1]


def table(rows: Sequence[dict]) -> str:
    """Markdown: the macro-F1 of the three readers of every run; for stores with groups, a
    second table of how well the train split's groups are told apart."""
    lines = [
        "| run | head: train | head: valid | head: test | probe, trained: valid | test "
        "| probe, random init: valid | test |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    cells = [
        [r["head"]["train"], r["head"]["valid"], r["head"]["test"], r["probe_trained"]["valid"],
         r["probe_trained"]["test"], r["probe_random"]["valid"], r["probe_random"]["test"]]
        for r in rows
    ]  # fmt: skip
    for r, row in zip(rows, cells, strict=True):
        text = ["—" if v is None else f"{v:.3f}" for v in row]
        lines.append(f"| {label(r['run'])} | " + " | ".join(text) + " |")
    if len(rows) > 1:
        means = ["—" if None in col else f"{np.mean(col):.3f}" for col in zip(*cells, strict=True)]
        lines.append(f"| mean of {len(rows)} | " + " | ".join(means) + " |")
    grouped = [r for r in rows if r["train_groups"]]
    if grouped:
        lines += [
            "",
            "| run | train groups (chance) | groups told apart, trained | untrained |",
            "|---|---:|---:|---:|",
        ]
        for r in grouped:
            untrained = r["probe_random"]["group_accuracy"]
            lines.append(
                f"| {label(r['run'])} | {r['train_groups']} ({1 / r['train_groups']:.3f}) "
                f"| {r['probe_trained']['group_accuracy']:.3f} "
                f"| {'—' if untrained is None else f'{untrained:.3f}'} |"
            )
    return "\n".join(lines)


def run_stores(runs: Sequence[Path], store: Path | None) -> list[tuple[Path, Path]]:
    """Each run to probe with the store it trained on: ``store`` when given, else the run's
    ``features.h5`` (a fold's split store) or the store its ``config.json`` names; a run of
    ``mea train --folds`` (``folds/<k>/`` directories) stands for its folds, in order."""
    out = []
    for run in runs:
        folds = sorted(
            (d for d in (run / "folds").glob("*") if d.is_dir() and not d.is_symlink() and d.name.isdigit()),
            key=lambda d: int(d.name),
        ) if run.is_dir() else []  # fmt: skip
        for one in folds or [run]:
            if store is not None:
                out.append((one, store))
                continue
            home = one if one.is_dir() else one.parent
            own = home / "features.h5"
            if not own.is_file():
                own = Path(json.loads((home / "config.json").read_text())["features"])
            out.append((one, own))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run directories or ckpt.pt files")
    ap.add_argument("--store", type=Path, help="the store the runs trained on (default: each run's own)")
    ap.add_argument("--random-seeds", default="0,1,2", help="seeds of the untrained models ('' for none)")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.random_seeds.split(",") if s.strip()]
    rows = [probe_run(run, FeatureStore(store), seeds) for run, store in run_stores(args.runs, args.store)]
    print(table(rows))
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
