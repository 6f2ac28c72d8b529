"""Does removing the speaker from MEA's fused vector help it reach new voices? A screen.

``python benchmarks/bench_speaker_adversary.py STORE --lambda 0.1 --seeds 1,2,3 --runs-dir DIR``
trains MEA on a classification store with groups (Emo-DB's ``benchmarks/.real/emodb.h5``: the
speaker) as the real-corpus benchmark does (``mea train --preset small --set
train.normalise=group --threads 1``), with one addition: a speaker adversary (Ganin & Lempitsky
2015, "Unsupervised domain adaptation by backpropagation", ICML; for speech emotion, e.g. Li et
al. 2020, "Speaker-invariant affective representation learning via adversarial training",
ICASSP) reads the input of MEA's prediction head (the fused vector) through a gradient-reversal
layer of weight ``lambda``: a two-layer GeLU perceptron ``d -> d -> G`` (``G``: the train
split's groups; dropout as the model's), trained with cross-entropy on each training clip's
group (loss weight 1; its parameters in the run's Adam), so the adversary learns to tell the
training speakers apart and the model under it learns to make them indistinguishable. Valid and
test are predicted without it.

It prints each seed's best valid macro-F1, its epoch and the epochs run, their mean and the
CPU time, never the test split's figures (``mea train``'s own output, test table included, goes
to ``DIR/NAME.out``): a lever is screened on valid only (docs/performance.md, Emo-DB, eleventh
session). It is a diagnostic, not a toolkit option: the adversary wraps the trainer's network in
the child process and is not saved with the checkpoint.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from mea_cli.cli import main as mea_main
from mea_cli.data.dataset import sample_groups
from mea_cli.models.layers.discriminators import grad_reverse
from mea_cli.train import trainer

ROOT = Path(__file__).resolve().parent.parent


class SpeakerAdversary(nn.Module):
    """``net`` with a group classifier on ``head``'s input behind gradient reversal ``lam``.

    In training, with labels, the output's ``loss`` gains the classifier's cross-entropy on each
    sample's group (``group_of``: sample id -> class) and ``losses["speaker_adv"]`` records it;
    in evaluation the output is ``net``'s own."""

    def __init__(self, net: nn.Module, head: nn.Module, group_of: dict[str, int],
                 n_groups: int, dropout: float, lam: float) -> None:  # fmt: skip
        super().__init__()
        d = next(m for m in head.modules() if isinstance(m, nn.Linear)).in_features
        self.net, self.group_of, self.lam = net, group_of, lam
        self.adv = nn.Sequential(
            nn.Linear(d, d), nn.GELU(), nn.Dropout(dropout), nn.Linear(d, n_groups)
        )
        self.seen: dict[str, torch.Tensor] = {}
        head.register_forward_pre_hook(lambda _m, inp: self.seen.update(x=inp[0]))

    def forward(self, batch: Any) -> Any:
        out = self.net(batch)
        fused = self.seen.pop("x")
        if self.training and out.loss is not None:
            g = torch.tensor([self.group_of[i] for i in batch.ids], device=fused.device)
            term = F.cross_entropy(self.adv(grad_reverse(fused, self.lam)), g)
            out.loss = out.loss + term
            out.losses["speaker_adv"] = term.detach()
        return out


def attach(t: trainer.Trainer, lam: float) -> None:
    """Wrap a built trainer's network in a :class:`SpeakerAdversary` over the train split's
    groups and give the adversary's parameters to its optimiser."""
    groups = sample_groups(t.store)
    train = t.store.split_indices("train")
    code = {g: k for k, g in enumerate(sorted(set(groups[train])))}
    group_of = {str(t.store.samples.id[i]): code[groups[i]] for i in train}
    t.net = SpeakerAdversary(t.net, t.model.head, group_of, len(code), t.model.cfg.dropout, lam)
    t.opt.add_param_group({"params": list(t.net.adv.parameters())})


@contextlib.contextmanager
def adversary_in_trainer(lam: float) -> Iterator[None]:
    """Every :class:`~mea_cli.train.trainer.Trainer` built inside gets the adversary."""
    build = trainer.Trainer.__init__

    def init(self: trainer.Trainer, *args: Any, **kw: Any) -> None:
        build(self, *args, **kw)
        attach(self, lam)

    trainer.Trainer.__init__ = init
    try:
        yield
    finally:
        trainer.Trainer.__init__ = build


def _child(lam: float, argv: list[str]) -> None:
    """``mea train ARGV`` with the adversary."""
    sys.argv = ["mea", *argv]
    with adversary_in_trainer(lam):
        mea_main()


def _run(store: Path, lam: float, seed: int, runs: Path) -> dict[str, Any]:
    name = f"adv-l{lam:g}-s{seed}"
    args = ["train", str(store), "--task", "multiclass", "--model", "mea", "--seeds", str(seed),
            "--name", name, "--runs-dir", str(runs), "--threads", "1", "--device", "cpu",
            "--preset", "small", "--set", "train.normalise=group"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONSAFEPATH": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with (runs / f"{name}.out").open("w") as out, (runs / f"{name}.err").open("w") as err:
        cmd = [sys.executable, __file__, "--child", f"{lam}", "--", *args]
        rc = subprocess.run(cmd, stdout=out, stderr=err, cwd=ROOT, env=env).returncode
    if rc != 0:
        raise SystemExit(f"{name} failed (exit {rc}): see {runs / (name + '.err')}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    metrics = json.loads((runs / name / "metrics.json").read_text())
    return {
        "seed": seed,
        "valid_f1_macro": metrics["valid"]["f1_macro"],
        "best_epoch": metrics["best_epoch"],
        "epochs_run": metrics["epochs_run"],
        "cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
    }


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        _child(float(sys.argv[2]), sys.argv[4:])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store", type=Path, help="a classification store with groups")
    ap.add_argument("--lambda", dest="lam", type=float, required=True, help="gradient reversal")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--runs-dir", type=Path, required=True)
    args = ap.parse_args()
    args.runs_dir.mkdir(parents=True, exist_ok=True)
    rows = [_run(args.store, args.lam, int(s), args.runs_dir) for s in args.seeds.split(",")]
    for r in rows:
        print(f"lambda {args.lam:g} seed {r['seed']}: valid macro-F1 {r['valid_f1_macro']:.3f} "
              f"(epoch {r['best_epoch']} of {r['epochs_run']}), {r['cpu_s']:.0f} CPU-s")  # fmt: skip
    mean = sum(r["valid_f1_macro"] for r in rows) / len(rows)
    print(f"lambda {args.lam:g}: mean valid macro-F1 {mean:.3f} over {len(rows)} seeds")


if __name__ == "__main__":
    main()
