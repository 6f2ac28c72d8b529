"""``mea train``: train a model on a feature store and write ``runs/<name>/`` (DESIGN.md "Runs").

Only the loop lives here. The run is set up by :func:`mea_cli.train.setup.start_run` in one pass
(process and device, store facts, the resolved :class:`~mea_cli.train.runconfig.RunConfig`, the
run directory and lock, each seed's folder); devices, autocast,
prediction and processes come from :mod:`mea_cli.runtime`. :class:`Trainer` trains one seed of
a configuration: :meth:`Trainer.fit`, :meth:`~Trainer.validate`, :meth:`~Trainer.save` /
:meth:`~Trainer.restore` (``state.pt``); :func:`train_run` trains every seed of a run. The
protocol (MEA Sec. IV-B, with our documented choices where the paper is silent;
docs/training.md):

* Adam with the preset's learning rate; the model's total loss (Eq. 20 for MEA);
* gradient clipping of the global norm (``grad_clip``);
* ``ReduceLROnPlateau`` on the validation **task** loss (not the total: the adversarial and
  importance-discriminator terms of Eq. 15-16 measure the discriminators' game, not the task);
* early stopping and model selection on the **validation** metric (MAE for regression, mean
  weighted F1 for IEMOCAP): the test split is evaluated once, with the best-on-valid weights,
  after training, and never influences any decision;
* bf16 autocast on CUDA; fp32 on CPU.

Determinism: every seed fixes Python, numpy and torch generators, reseeds torch at the start of
every epoch from ``(seed, epoch)`` and draws batches from ``(seed, epoch)`` too; so the same
seed twice on CPU gives identical metrics, and ``--resume`` (model, optimizer, scheduler,
early-stopping state and RNG states from ``state.pt``, written after every completed epoch) ends
exactly where an uninterrupted run ends. The process-wide switches
(``torch.use_deterministic_algorithms``, ``CUBLAS_WORKSPACE_CONFIG``) are set by
:func:`enable_determinism`, which the command line calls at its entry, never a library call.

Under ``torchrun`` or ``--procs N`` (``WORLD_SIZE > 1``) the model is wrapped in
DistributedDataParallel (without ``find_unused_parameters``: the model contract promises every
parameter a gradient, and the parameters a model declares unused are frozen), each rank trains
on its share of the bucketed batches, validation predictions are gathered from all ranks, and
only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import random
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from rich.console import Console
from torch import nn

from mea_cli import MODALITIES
from mea_cli.align import gap_mask_note
from mea_cli.artifacts.checkpoint import (
    Checkpoint,
    atomic_torch_save,
    safe_load,
    save_checkpoint,
    schema_to_dict,
)
from mea_cli.artifacts.features import FeatureStore
from mea_cli.data.dataset import FeatureDataset, GroupNorm, NormStats, make_loader
from mea_cli.models.core.losses import task_loss
from mea_cli.models.core.registry import get_entry
from mea_cli.paths import jsonable, write_json
from mea_cli.runtime.distributed import DistInfo, barrier
from mea_cli.runtime.engine import Predictions, autocast, predict, resolve_device
from mea_cli.runtime.loading import build_model
from mea_cli.runtime.targets import (
    balanced_class_weights,
    scale_for,
    weighted_task_loss,
    with_scale,
)
from mea_cli.train import runs
from mea_cli.train.augment import augment, mixed_task_loss, mixup
from mea_cli.train.display import TrainDisplay
from mea_cli.train.ema import WeightAverage
from mea_cli.train.epoch_log import EpochLog, mean_psi
from mea_cli.train.metrics import MetricsError, compute_metrics, mean_std, selection_metric
from mea_cli.train.presets import small_data_note
from mea_cli.train.runconfig import RunConfig
from mea_cli.train.setup import DEFAULT_SEED, TrainError, TrainRequest, start_run

__all__ = ["DEFAULT_SEED", "RunResult", "TrainError", "TrainRequest", "Trainer", "train_run"]

STATE_FORMAT = "mea-train-state"


@dataclass
class RunResult:
    """Where the run is and what it scored (per seed, and mean/std over seeds)."""

    run_dir: Path
    seeds: dict[int, dict[str, Any]]
    summary: dict[str, Any]
    selection: str
    is_main: bool = True  # False on distributed ranks other than 0, which print nothing


def enable_determinism() -> None:
    """Process-wide switches for reproducible training, set once at the program's entry (the
    command line) before any CUDA work: deterministic algorithms (warn-only, so that CUDA
    kernels without a deterministic version still run) and a fixed cuBLAS workspace."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)


# ----------------------------------------------------------------------------- RNG state
def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def _rng_state() -> dict[str, Any]:
    """RNG states as tensors and plain values (loadable with ``weights_only=True``)."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "python": [list(random.getstate()[1]), random.getstate()[0], random.getstate()[2]],
        "numpy": [str(np_state[0]), torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
    }


def _set_rng_state(s: dict[str, Any]) -> None:
    torch.set_rng_state(s["torch"])
    py = s["python"]
    random.setstate((py[1], tuple(py[0]), py[2]))
    n = s["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), int(n[2]), int(n[3]), float(n[4])))


# ----------------------------------------------------------------------------- the trainer
@dataclass
class Progress:
    """Where training of one seed stands after a completed epoch (saved in ``state.pt``)."""

    epoch: int = 0
    best: float | None = None
    best_epoch: int = 0
    bad_epochs: int = 0
    stopped: bool = False
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)
    best_valid: dict[str, Any] = field(default_factory=dict)


class Trainer:
    """Trains one seed of a resolved run configuration into ``out_dir``.

    ``out_dir`` receives ``ckpt.pt`` (best on valid), ``log.jsonl``, ``state.pt`` (after every
    epoch) and, once finished, ``metrics.json``.
    """

    def __init__(
        self,
        run: RunConfig,
        store: FeatureStore,
        seed: int,
        out_dir: Path,
        device: torch.device,
        info: DistInfo | None = None,
        console: Console | None = None,
        live: bool | None = None,
        log: Sequence[str] = (),
        on_epoch: Callable[[Mapping[str, Any]], None] | None = None,
        config_sha256: str | None = None,
    ) -> None:
        self.run, self.store, self.seed, self.out_dir = run, store, seed, Path(out_dir)
        self.device, self.info = device, info or DistInfo()
        self.console, self.live, self.log = console or Console(stderr=True), live, tuple(log)
        self.on_epoch = on_epoch
        # what state.pt records of the run (start_run computes it once for every seed)
        self.config_sha256 = config_sha256 or runs.config_digest(run.to_dict())
        self.settings = run.settings
        batch_size, eval_batch = self.settings.batch_size, self.settings.eval_batch
        self.selection = selection_metric(run.task)
        _seed_everything(seed)
        # the store's facts, read once: sample order, the train split's labels
        self.index_of = {str(s): i for i, s in enumerate(store.samples.id)}
        train_labels = store.samples.label[store.split_indices("train")]
        self.label_mean = [float(x) for x in np.nanmean(train_labels, axis=0)]
        has_test = len(store.split_indices("test")) > 0
        # the data: normalisation (also as the checkpoint records it) and one loader per split
        self.stats = NormStats.fit(store, "train", mode=self.settings.normalise)
        self.norm = self.stats.to_dict()
        # train.normalise=group: every group's statistics, fitted once for the three splits
        groups = GroupNorm.fit(store, self.stats) if self.stats.mode == "group" else None
        kw = {"num_replicas": self.info.world_size, "rank": self.info.rank, "seed": seed}
        entry = get_entry(run.model)
        gaps = entry.reads_gap_masks
        splits = {"train": (batch_size, True), "valid": (eval_batch, False)}
        if has_test:
            splits["test"] = (eval_batch, False)
        self.loaders = {
            split: make_loader(
                FeatureDataset(store, split, self.stats, gap_masks=gaps, group_norm=groups),
                size, shuffle, **kw,
            )
            for split, (size, shuffle) in splits.items()
        }  # fmt: skip
        # the model (its registry entry was read above)
        self.closed_form = "closed_form_fit" in entry.capabilities
        if self.closed_form and self.info.enabled:
            raise TrainError(f"{run.model} is fitted in closed form: train it in one process")
        self.model = build_model(run.model, run.model_config).to(device)
        for name, p in self.model.named_parameters():
            if entry.is_unused(name):
                p.requires_grad_(False)  # declared unused: no gradient, not optimised
        # the targets: regression standardised (predictions back in the label's units outside
        # the model), classes optionally reweighted
        self.target_scale = scale_for(run.task, train_labels)
        self.class_weights = (
            balanced_class_weights(run.task, train_labels)
            if self.settings.class_weights == "balanced"
            else None
        )
        scaled = with_scale(self.model, self.target_scale)
        self.scale_dict = None if self.target_scale is None else self.target_scale.to_dict()
        self.net: nn.Module = (
            nn.parallel.DistributedDataParallel(scaled) if self.info.enabled else scaled
        )
        self.opt: torch.optim.Optimizer | None = None
        self.sched: torch.optim.lr_scheduler.ReduceLROnPlateau | None = None
        if not self.closed_form:
            self.opt = torch.optim.Adam(
                [p for p in self.model.parameters() if p.requires_grad],
                lr=self.settings.lr,
                weight_decay=self.settings.weight_decay,
            )
            self.sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.opt, mode="min", factor=self.settings.lr_factor,
                patience=self.settings.lr_patience,
            )  # fmt: skip
        self.ema = (
            WeightAverage(self.model, self.settings.ema_decay)
            if self.settings.ema_decay > 0 and not self.closed_form
            else None
        )
        self.progress = Progress(best_state=copy.deepcopy(self.model.state_dict()))

    # ---- files
    @property
    def state_path(self) -> Path:
        return self.out_dir / "state.pt"

    @property
    def log_path(self) -> Path:
        return self.out_dir / "log.jsonl"

    @property
    def metrics_path(self) -> Path:
        return self.out_dir / "metrics.json"

    # ---- one epoch
    def train_epoch(self, epoch: int) -> dict[str, float]:
        """One pass over the training batches (reseeded from ``(seed, epoch)``); returns the
        sample-weighted mean of the total loss (``loss``) and of each term the model names."""
        torch.manual_seed(_epoch_seed(self.seed, epoch))
        loader = self.loaders["train"]
        loader.batch_sampler.set_epoch(epoch)
        self.net.train()
        sums: dict[str, float] = {}
        count = 0
        for k, batch in enumerate(loader):
            b, terms = self._train_step(k, batch)
            del batch  # not held through the next batch's forward
            count += b
            for name, v in terms.items():
                sums[name] = sums.get(name, 0.0) + v * b
        if self.info.enabled:
            on = self.device if self.info.backend == "nccl" else torch.device("cpu")
            vec = torch.tensor([*sums.values(), float(count)], dtype=torch.float64, device=on)
            dist.all_reduce(vec)
            sums = dict(zip(sums, vec[:-1].tolist(), strict=True))
            count = int(vec[-1])
        return {k: v / max(count, 1) for k, v in sums.items()}

    def _train_step(self, k: int, batch: Any) -> tuple[int, dict[str, float]]:
        """One optimiser step on training batch ``k``; its size and its loss terms (the total as
        ``loss``), as floats.

        The step's output, loss and graph are this method's locals, so they are freed when it
        returns. Held in the epoch's loop instead, they lived until the next step's forward had
        finished, with whatever the graph still referenced (PSA's recipes of earlier layers'
        maps, for one): MEA at its MOSI preset on the 1/8-MOSI pickle peaked about 75 MiB higher
        (docs/performance.md#memory-where-it-goes)."""
        batch = augment(batch.to(self.device), self.settings.input_noise, self.settings.time_mask)
        batch, mix = mixup(batch, self.settings.mixup)
        with autocast(self.device):
            out = self.net(batch)
        loss = out.loss
        if loss is None:
            raise TrainError("the model returned no loss for a labelled batch")
        smoothing = self.settings.label_smoothing
        if self.class_weights is not None or smoothing > 0 or mix is not None:
            # the task term (weight 1 in every total) reweighted, smoothed and / or mixed
            task = self.run.task
            loss = (
                loss
                - task_loss(out.pred, batch.labels, task)
                + mixed_task_loss(
                    partial(
                        weighted_task_loss,
                        task=task, weights=self.class_weights, label_smoothing=smoothing,
                    ),
                    out.pred, batch.labels, mix,
                )
            )  # fmt: skip
        if not torch.isfinite(loss):
            raise TrainError(
                f"non-finite training loss ({float(loss)}) in batch {k}; lower the learning "
                f"rate (--set train.lr=...) or check the features for extreme values"
            )
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.settings.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.net.parameters(), self.settings.grad_clip)
        self.opt.step()
        if self.ema is not None:
            self.ema.update(self.model)
        terms = {"loss": float(loss.detach())}
        terms.update((name, float(v)) for name, v in out.losses.items())
        return len(batch), terms

    # ---- a closed-form model (capability closed_form_fit): one candidate per "epoch"
    @property
    def epoch_budget(self) -> int:
        """Epochs to run: the preset's, or one per regularisation candidate in closed form."""
        return len(self.model.candidates()) if self.closed_form else self.settings.epochs

    def prepare_closed_form(self) -> None:
        """Give a closed-form model the train split's summaries and labels (standardised for
        regression, as the gradient models see them), in the store's order."""
        parts, labels, rows = [], [], []
        with torch.no_grad():
            for batch in self.loaders["train"]:
                batch = batch.to(self.device)
                parts.append(self.model.summaries(batch).cpu())
                y = batch.labels if self.target_scale is None else self.target_scale.scale(batch.labels)
                labels.append(y.cpu())
                rows += [self.index_of[i] for i in batch.ids]
        order = torch.as_tensor(np.argsort(rows, kind="stable"))
        self.model.prepare_fit(
            torch.cat(parts)[order], torch.cat(labels)[order], self.settings.class_weights
        )

    def fit_candidate(self, epoch: int) -> dict[str, float]:
        """Fit the ``epoch``-th regularisation candidate; its train task loss and value."""
        value = self.model.candidates()[epoch - 1]
        return {"loss": self.model.fit_candidate(value), "c": float(value)}

    def predict(self, split: str) -> Predictions:
        """Predictions of the current weights on ``split``, gathered from every rank."""
        return predict(self.net, self.loaders[split], self.device, self.info, self.index_of)

    def validate(self, split: str = "valid") -> dict[str, Any]:
        """The metrics of the current weights on ``split``, with the mean total loss
        (``loss``) and task loss (``task_loss``)."""
        p = self.predict(split)
        try:
            metrics = compute_metrics(
                self.run.task, p.pred, p.labels, self.run.label_names, self.run.label_range
            )
        except MetricsError as err:
            raise TrainError(
                f"the {split} split: {err}; lower the learning rate (--set train.lr=...) or "
                "check the features for extreme values"
            ) from None
        return {**metrics, "loss": p.loss, "task_loss": p.losses.get("task", float("nan"))}

    # ---- state.pt
    def save(self) -> None:
        """Write the resumable state after the last completed epoch (rank 0)."""
        if not self.info.is_main:
            return
        pr = self.progress
        atomic_torch_save(
            {
                "format": STATE_FORMAT,
                "seed": self.seed,
                "config_sha256": self.config_sha256,
                "epoch": pr.epoch,
                "model": self.model.state_dict(),
                "optimizer": self.opt.state_dict() if self.opt else {},
                "scheduler": self.sched.state_dict() if self.sched else {},
                "rng": _rng_state(),
                "ema": self.ema.state_dict() if self.ema else {},
                "best": pr.best,
                "best_epoch": pr.best_epoch,
                "bad_epochs": pr.bad_epochs,
                "stopped": pr.stopped,
                "best_state": pr.best_state,
                "best_valid": jsonable(pr.best_valid),
            },
            self.state_path,
        )

    def restore(self) -> None:
        """Continue from ``state.pt``: weights, optimizer, scheduler, RNGs, early stopping."""
        st = safe_load(self.state_path, "training state")
        runs.check_state(self.state_path, st, self.run.to_dict(), self.seed, self.model.state_dict(), STATE_FORMAT)
        part = "model"
        try:  # each load below raises its own error on a damaged entry: one line, not those
            self.model.load_state_dict(st["model"])
            if self.opt is not None and self.sched is not None:
                part = "optimizer"
                self.opt.load_state_dict(st["optimizer"])
                part = "scheduler"
                self.sched.load_state_dict(st["scheduler"])
            part = "rng"
            _set_rng_state(st["rng"])
            if self.ema is not None:
                part = "ema"
                self.ema.load_state_dict(st["ema"])
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as err:
            said = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            said = f"no entry {said}" if isinstance(err, KeyError) else said
            raise runs.state_error(
                self.state_path, f"a damaged training state ({part}: {said[:120]})"
            ) from None
        self.progress = Progress(
            epoch=st["epoch"],
            best=st["best"],
            best_epoch=st["best_epoch"],
            bad_epochs=st["bad_epochs"],
            stopped=st["stopped"],
            best_state=st["best_state"],
            best_valid=st["best_valid"],
        )

    def _checkpoint(self, valid: dict[str, Any]) -> Checkpoint:
        run = self.run
        return Checkpoint(
            model=run.model,
            model_config=run.model_config,
            dataset=run.dataset,
            task=run.task,
            label_names=list(run.label_names),
            label_range=None if run.label_range is None else list(run.label_range),
            schema=run.schema,
            norm=self.norm,
            state_dict=self.progress.best_state,
            train_config={**run.train, "train_label_mean": list(self.label_mean)},
            seed=self.seed,
            epoch=self.progress.best_epoch,
            valid_metrics=jsonable(valid),
            features={"path": run.features, "sha256": run.features_sha256},
            target_scale=self.scale_dict,
        )

    # ---- the whole seed
    def fit(self, resume: bool = False) -> dict[str, Any]:
        """Train until the epoch budget or early stopping, then evaluate the best-on-valid
        weights on valid and test; return ``{"seed", "best_epoch", "epochs_run", "valid",
        "test"}`` (also written to ``metrics.json``)."""
        info, pr = self.info, self.progress
        if resume and self.metrics_path.exists():
            if info.is_main:
                self.console.print(f"seed {self.seed}: already finished, skipped", highlight=False)
            return runs.read_json(self.metrics_path)
        if resume and self.state_path.exists():
            self.restore()
            pr = self.progress
            if info.is_main:
                runs.truncate_log(self.log_path, pr.epoch)
                self.console.print(
                    f"seed {self.seed}: resuming after epoch {pr.epoch}", highlight=False
                )
        elif info.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self.log_path.unlink(missing_ok=True)
        run, sel = self.run, self.selection
        title = f"{run.model} on {run.dataset} ({Path(run.features).name}), seed {self.seed}"
        budget = self.epoch_budget
        if self.closed_form and pr.epoch < budget:
            self.prepare_closed_form()
        with (
            self._epoch_log() as epoch_log,
            TrainDisplay(
                self.console, title, budget, sel.name, enabled=info.is_main, live=self.live
            ) as display,
        ):
            while pr.epoch < budget and not pr.stopped:
                t0 = time.perf_counter()
                pr.epoch += 1
                if self.closed_form:
                    train_terms = self.fit_candidate(pr.epoch)
                else:
                    train_terms = self.train_epoch(pr.epoch)
                with self._averaged():  # train.ema_decay: the average is validated and kept
                    valid = self.validate()
                    improved = sel.better(valid[sel.name], pr.best)
                    if improved:
                        pr.best_state = copy.deepcopy(self.model.state_dict())
                task_loss = valid["task_loss"]
                if self.sched is not None:
                    self.sched.step(task_loss if math.isfinite(task_loss) else float("inf"))
                if improved:
                    pr.best, pr.best_epoch, pr.bad_epochs = valid[sel.name], pr.epoch, 0
                    pr.best_valid = dict(valid)
                    if info.is_main:
                        save_checkpoint(self._checkpoint(valid), self.out_dir / "ckpt.pt")
                else:
                    pr.bad_epochs += 1
                # a closed-form model tries every candidate: no early stopping
                pr.stopped = not self.closed_form and pr.bad_epochs >= self.settings.patience
                record = {
                    "epoch": pr.epoch,
                    "lr": self.opt.param_groups[0]["lr"] if self.opt else None,
                    "train": train_terms,
                    "valid": valid,
                    "best": {"metric": sel.name, "value": pr.best, "epoch": pr.best_epoch},
                    "early_stop": pr.stopped,
                    "seconds": time.perf_counter() - t0,
                }
                if info.is_main:
                    runs.append_log(self.log_path, record)
                epoch_log.epoch(record)
                self.save()
                display.update(record)
                if self.on_epoch is not None:
                    self.on_epoch(record)
        return self._finish()

    def _averaged(self) -> contextlib.AbstractContextManager[None]:
        """The model holds the moving average of its weights within the block (when
        ``train.ema_decay`` is on), its own weights otherwise."""
        return self.ema.swapped_in(self.model) if self.ema else contextlib.nullcontext()

    def _epoch_log(self) -> EpochLog:
        """The ``--log`` loggers of this seed (TensorBoard: also the valid split's mean psi
        when the model reports modality weights)."""
        psi = None
        if "modality_weights" in get_entry(self.run.model).capabilities:
            def psi() -> dict[str, float]:
                return mean_psi(self.model, self.loaders["valid"], self.device, MODALITIES)

        return EpochLog.open(self.log, self.out_dir, self.progress.epoch, psi, self.info.is_main)

    def _finish(self) -> dict[str, Any]:
        pr = self.progress
        if pr.best_epoch == 0:
            raise TrainError(
                f"seed {self.seed}: the validation {self.selection.name} was never finite; "
                f"nothing to keep"
            )
        try:  # resumed: the best-on-valid weights come from state.pt
            self.model.load_state_dict(pr.best_state)
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            said = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise runs.state_error(
                self.state_path, f"a damaged training state (best_state: {said[:120]})"
            ) from None
        result: dict[str, Any] = {"seed": self.seed, "best_epoch": pr.best_epoch}
        result["epochs_run"] = pr.epoch
        for split in ("valid", "test"):
            if split in self.loaders:
                metrics = self.validate(split)
                metrics.pop("task_loss")
                result[split] = metrics
        if self.info.is_main:
            write_json(self.metrics_path, {"selection": self.selection.name, **result}, nan="null")
        barrier(self.info)
        return jsonable(result)


# ----------------------------------------------------------------------------- entry
def train_run(req: TrainRequest, console: Console | None = None) -> RunResult:
    """Train every seed of a run (new or resumed) and write its files; see the module docstring.
    With ``req.procs > 1`` this process is rank 0 of that many CPU processes sharing each batch
    (:func:`mea_cli.runtime.procs.run_ranks`); the others run :func:`_train_rank`."""
    if req.procs > 1:
        if resolve_device(req.device).type != "cpu":
            raise TrainError(
                f"--procs runs CPU processes, but --device {req.device} is a GPU: give "
                "--device cpu, or on GPUs torchrun --nproc-per-node N -m mea_cli train ..."
            )
        # start-up time: only --procs needs the launcher
        from mea_cli.runtime.procs import run_ranks

        return run_ranks(
            req.procs, partial(_train, req, console), _train_rank, (req,), req.threads
        )
    return _train(req, console)


def _train_rank(req: TrainRequest) -> None:
    """A ``--procs`` rank other than 0, in a fresh process: the process-wide switches the
    command line set in rank 0, then the same run (it prints and writes nothing)."""
    enable_determinism()
    _train(req, None)


def _resume_hint(run_dir: Path, runs_dir: Path) -> str:
    """The command that continues ``run_dir``: ``--runs-dir`` named unless it is the default
    (without it the hint would resume ``runs/<name>``, another run or none)."""
    where = "" if runs_dir == Path("runs") else f" --runs-dir {shlex.quote(str(runs_dir))}"
    return f"continue with mea train --resume --name {shlex.quote(run_dir.name)}{where}"


def _train(req: TrainRequest, console: Console | None) -> RunResult:
    console = console or Console(stderr=True)
    with contextlib.ExitStack() as held:  # the run lock, then the process group, released last
        rs = start_run(req, held)
        info, run_dir, cfg = rs.info, rs.run_dir, rs.config
        results: dict[int, dict[str, Any]] = {}
        with FeatureStore(cfg.features) as store:
            _check_schema_same(store, cfg)
            gaps = get_entry(cfg.model).reads_gap_masks
            if info.is_main and (note := gap_mask_note(store, cfg.model, gaps)):
                console.print(note, highlight=False)
            n_train = len(store.split_indices("train"))
            note = small_data_note(cfg.model, cfg.dataset, cfg.preset, n_train, cfg.model_overrides)
            if info.is_main and note:
                console.print(note, highlight=False)
            if req.resume:  # a new run's store was checked by read_store_facts
                store.check_values()
            for seed, out_dir in rs.seed_dirs.items():
                trainer = Trainer(
                    cfg, store, seed, out_dir, rs.device, info, console, req.live, req.log,
                    req.on_epoch, rs.config_sha256,
                )  # fmt: skip
                try:
                    results[seed] = trainer.fit(resume=req.resume)
                except KeyboardInterrupt:
                    if info.is_main:
                        runs.update_latest(Path(req.runs_dir), run_dir)
                        # the caller knows how its runs continue (mea compare, train --folds)
                        hint = req.interrupt_hint or _resume_hint(run_dir, Path(req.runs_dir))
                        console.print(
                            f"stopped; the last completed epoch is kept: {hint}", highlight=False
                        )
                    raise
        summary = _summarise(results)
        if info.is_main:
            if len(rs.seed_dirs) > 1:
                write_json(
                    run_dir / "metrics.json",
                    {"selection": cfg.selection, "seeds": results, **summary}, nan="null",
                )
            runs.update_latest(Path(req.runs_dir), run_dir)
        return RunResult(run_dir, results, summary, cfg.selection, info.is_main)


def _check_schema_same(store: FeatureStore, cfg: RunConfig) -> None:
    now = schema_to_dict(store.modalities)
    for m, want in cfg.schema.items():
        if m not in now or now[m]["dim"] != want["dim"]:
            found = now[m]["dim"] if m in now else "nothing"
            raise TrainError(
                f"{store.name}: the run was configured for {m} with {want['dim']} features, "
                f"the store now has {found}"
            )


def _summarise(results: dict[int, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for split in ("valid", "test"):
        rows = [r[split] for r in results.values() if r.get(split)]
        if rows:
            out[f"{split}_mean_std"] = mean_std(rows)
    return out
