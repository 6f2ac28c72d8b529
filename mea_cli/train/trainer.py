"""``mea train``: train a model on a feature store and write ``runs/<name>/`` (DESIGN.md "Runs").

The protocol (Sec. IV-B of the MEA paper, with our documented choices where it is silent):

* Adam with the preset's learning rate (Table I; the peers' own values for mfsa/mcr/fdmer);
* the total loss of Eq. 20 (task + alpha L_dis + beta (L_agn + L_exc)) as the model returns it;
* gradient clipping of the global norm (``grad_clip``; our choice, the paper is silent);
* ``ReduceLROnPlateau`` on the **validation** loss;
* early stopping and model selection on the **validation** metric (MAE for regression, mean
  weighted F1 for IEMOCAP): the test split is evaluated once, with the best-on-valid weights,
  after training, and never influences any decision;
* bf16 autocast on CUDA; fp32 on CPU.

Determinism: every seed fixes Python, numpy and torch generators, turns on
``torch.use_deterministic_algorithms`` (warn-only, so that CUDA kernels without a deterministic
version still run), reseeds torch at the start of every epoch from ``(seed, epoch)`` and draws
batches from ``(seed, epoch)`` too; so the same seed twice on CPU gives identical metrics, and
``--resume`` (which restores model, optimizer, scheduler, early-stopping state and RNG states
from ``state.pt``, written after every completed epoch) ends exactly where an uninterrupted run
ends.

Under ``torchrun`` (``WORLD_SIZE > 1``) the model is wrapped in DistributedDataParallel, each
rank trains on its share of the bucketed batches, validation predictions are gathered from all
ranks, and only rank 0 writes files.
"""

from __future__ import annotations

import copy
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from torch import nn

from mea_cli import __version__
from mea_cli.artifacts.checkpoint import (
    Checkpoint,
    atomic_torch_save,
    safe_load,
    save_checkpoint,
    schema_to_dict,
)
from mea_cli.artifacts.features import FeatureStore
from mea_cli.errors import MeaError
from mea_cli.paths import file_sha256
from mea_cli.train import runs
from mea_cli.train.config import TrainSettings, load_toml, parse_sets, parse_value
from mea_cli.train.display import TrainDisplay
from mea_cli.train.distributed import (
    DistInfo,
    barrier,
    broadcast_object,
    init_distributed,
    shutdown,
)
from mea_cli.train.engine import autocast, predict, resolve_device, unwrap
from mea_cli.train.metrics import compute_metrics, mean_std, selection_metric
from mea_cli.train.modeling import (
    SHARED_WITH_TRAINING,
    build_model,
    model_config,
    sync_training_fields,
)

STATE_FORMAT = "mea-train-state"
DEFAULT_SEED = 1111


class TrainError(MeaError):
    """Training cannot start or go on (bad store for training, non-finite loss, ...)."""


@dataclass
class TrainRequest:
    """What ``mea train`` was asked (CLI options, before presets and files are applied)."""

    features: Path | None
    dataset: str | None
    model: str = "mea"
    seeds: list[int] = field(default_factory=lambda: [DEFAULT_SEED])
    sets: list[str] = field(default_factory=list)
    config_file: Path | None = None
    device: str = "auto"
    epochs: int | None = None
    name: str | None = None
    resume: bool = False
    runs_dir: Path = Path("runs")
    live: bool | None = None  # None: rich live table only on a terminal


@dataclass
class RunResult:
    """Where the run is and what it scored (per seed, and mean/std over seeds)."""

    run_dir: Path
    seeds: dict[int, dict[str, Any]]
    summary: dict[str, Any]
    selection: str
    is_main: bool = True  # False on distributed ranks other than 0, which print nothing


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


def _prepare(req: TrainRequest, info: DistInfo) -> tuple[Path, dict[str, Any]]:
    """Resolve the run directory and its full config (new run, or the saved one on resume)."""
    runs_dir = Path(req.runs_dir)
    if req.resume:
        run_dir = runs.resolve_run(runs_dir, req.name)
        cfg = runs.read_json(run_dir / "config.json")
        if req.features is not None and Path(req.features).resolve() != Path(cfg["features"]):
            raise TrainError(
                f"{run_dir}: --resume continues the run on {cfg['features']}, not {req.features}"
            )
        return run_dir, cfg
    if req.features is None or req.dataset is None:
        raise TrainError("mea train needs FEATURES and --dataset (or --resume)")
    from mea_cli.data.presets import check_store_fits, get_preset

    preset = get_preset(req.dataset, req.model)
    with FeatureStore(req.features) as store:
        check_store_fits(store, preset)
        for split in ("train", "valid", "test"):
            idx = store.split_indices(split)
            missing = int((~np.isfinite(store.samples.label[idx]).all(axis=1)).sum())
            if missing:
                raise TrainError(
                    f"{store.name}: {missing} sample(s) of the {split!r} split have no label; "
                    f'label them or move them out of the split (split "")'
                )
        input_dims = {m: s.dim for m, s in store.modalities.items()}
        schema = schema_to_dict(store.modalities)
        task, label_names = store.meta.task, list(store.meta.label_names)
    settings = TrainSettings(
        epochs=preset.epochs,
        batch_size=preset.batch_size,
        lr=preset.lr,
        grad_clip=preset.grad_clip,
        patience=preset.patience,
    )
    model_overrides: dict[str, Any] = {}
    if req.config_file is not None:
        t, m = load_toml(req.config_file)
        settings.update(t, str(req.config_file))
        model_overrides.update(m)
    t, m = parse_sets(req.sets)
    settings.update(t, "--set")
    model_overrides.update(m)
    shared = {k: v for k, v in model_overrides.items() if k in SHARED_WITH_TRAINING}
    settings.update({k: parse_value(str(v)) for k, v in shared.items()}, "--set")
    if req.epochs is not None:
        settings.update({"epochs": req.epochs}, "--epochs")
    mcfg = model_config(req.model, preset.name, input_dims, task, len(label_names), model_overrides)
    mcfg = sync_training_fields(req.model, mcfg, settings.to_dict())
    if len(set(req.seeds)) != len(req.seeds) or not req.seeds:
        raise TrainError(f"--seeds must be distinct integers, got {req.seeds}")
    name = req.name or runs.default_name(req.model, preset.name)
    name = broadcast_object(info, runs.check_name(name))
    run_dir = runs_dir / name
    # rank 0 decides (another rank could look after rank 0 has written config.json)
    if broadcast_object(info, (run_dir / "config.json").exists()):
        raise runs.RunError(
            f"{run_dir} already exists: continue it with --resume --name {name}, or pick "
            f"another --name"
        )
    features = Path(req.features).resolve()
    cfg = {
        "format": "mea-run",
        "version": 1,
        "mea_cli_version": __version__,
        "name": name,
        "features": str(features),
        "features_sha256": file_sha256(features) if info.is_main else "",
        "dataset": preset.name,
        "task": task,
        "label_names": label_names,
        "schema": schema,
        "model": req.model,
        "model_config": mcfg,
        "model_overrides": model_overrides,
        "train": settings.to_dict(),
        "hparams_source": preset.hparams_source,
        "seeds": list(req.seeds),
        "selection": selection_metric(task).name,
        "device": req.device,
        "world_size": info.world_size,
    }
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        runs.write_json(run_dir / "config.json", cfg)
    barrier(info)
    return run_dir, cfg


def train_run(req: TrainRequest, console: Console | None = None) -> RunResult:
    """Train every seed of a run (new or resumed) and write its files; see the module docstring."""
    console = console or Console(stderr=True)
    device_type = resolve_device(req.device).type
    info = init_distributed(device_type)
    try:
        device = resolve_device(req.device, info)
        run_dir, cfg = _prepare(req, info)
        seeds = [int(s) for s in cfg["seeds"]]
        results: dict[int, dict[str, Any]] = {}
        with FeatureStore(cfg["features"]) as store:
            _check_schema_same(store, cfg)
            for seed in seeds:
                out_dir = runs.seed_dir(run_dir, seed, len(seeds))
                try:
                    results[seed] = _train_seed(
                        store, cfg, seed, out_dir, device, info, console, req.resume, req.live
                    )
                except KeyboardInterrupt:
                    if info.is_main:
                        runs.update_latest(Path(req.runs_dir), run_dir)
                        console.print(
                            f"stopped; the last completed epoch is kept: continue with "
                            f"mea train --resume --name {run_dir.name}",
                            highlight=False,
                        )
                    raise
        summary = _summarise(results)
        if info.is_main:
            if len(seeds) > 1:
                runs.write_json(
                    run_dir / "metrics.json",
                    {"selection": cfg["selection"], "seeds": results, **summary},
                )
            runs.update_latest(Path(req.runs_dir), run_dir)
        return RunResult(run_dir, results, summary, cfg["selection"], info.is_main)
    finally:
        shutdown(info)


def _check_schema_same(store: FeatureStore, cfg: dict[str, Any]) -> None:
    now = schema_to_dict(store.modalities)
    for m, want in cfg["schema"].items():
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


def _train_seed(
    store: FeatureStore,
    cfg: dict[str, Any],
    seed: int,
    out_dir: Path,
    device: torch.device,
    info: DistInfo,
    console: Console,
    resume: bool,
    live: bool | None,
) -> dict[str, Any]:
    """Train one seed; return ``{"valid": metrics, "test": metrics, "best_epoch": e}``."""
    from mea_cli.data.dataset import FeatureDataset, NormStats, make_loader

    metrics_path = out_dir / "metrics.json"
    if resume and metrics_path.exists():
        done = runs.read_json(metrics_path)
        if info.is_main:
            console.print(f"seed {seed}: already finished, skipped", highlight=False)
        return done
    settings = TrainSettings.from_dict(cfg["train"])
    task, label_names = cfg["task"], cfg["label_names"]
    selection = selection_metric(task)
    _seed_everything(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    stats = NormStats.fit(store, "train")
    index_of = {str(s): i for i, s in enumerate(store.samples.id)}
    train_ds = FeatureDataset(store, "train", stats)
    valid_ds = FeatureDataset(store, "valid", stats)
    has_test = len(store.split_indices("test")) > 0
    test_ds = FeatureDataset(store, "test", stats) if has_test else None
    eval_bs = settings.eval_batch_size or 2 * settings.batch_size
    kw = {"num_replicas": info.world_size, "rank": info.rank}
    train_loader = make_loader(train_ds, settings.batch_size, shuffle=True, seed=seed, **kw)
    valid_loader = make_loader(valid_ds, eval_bs, shuffle=False, seed=seed, **kw)

    model = build_model(cfg["model"], cfg["model_config"]).to(device)
    net: nn.Module = model
    if info.enabled:
        net = nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
    opt = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode="min", factor=settings.lr_factor, patience=settings.lr_patience
    )
    state_path = out_dir / "state.pt"
    log_path = out_dir / "log.jsonl"
    start, best, best_epoch, bad, stopped = 0, None, 0, 0, False
    best_state: dict[str, torch.Tensor] = copy.deepcopy(model.state_dict())
    best_valid: dict[str, Any] = {}
    if resume and state_path.exists():
        st = safe_load(state_path, "training state")
        if st.get("format") != STATE_FORMAT or int(st.get("seed", -1)) != seed:
            raise runs.RunError(f"{state_path}: not the training state of seed {seed}")
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        _set_rng_state(st["rng"])
        start, best, best_epoch, bad = st["epoch"], st["best"], st["best_epoch"], st["bad_epochs"]
        stopped, best_state, best_valid = st["stopped"], st["best_state"], st["best_valid"]
        if info.is_main:
            runs.truncate_log(log_path, start)
            console.print(f"seed {seed}: resuming after epoch {start}", highlight=False)
    elif info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        log_path.unlink(missing_ok=True)
    label_mean = np.nanmean(store.samples.label[store.split_indices("train")], axis=0)

    def make_ckpt(state: dict[str, torch.Tensor], epoch: int, valid: dict[str, Any]) -> Checkpoint:
        return Checkpoint(
            model=cfg["model"],
            model_config=cfg["model_config"],
            dataset=cfg["dataset"],
            task=task,
            label_names=list(label_names),
            schema=cfg["schema"],
            norm=stats.to_dict(),
            state_dict=state,
            train_config={**cfg["train"], "train_label_mean": [float(x) for x in label_mean]},
            seed=seed,
            epoch=epoch,
            valid_metrics=runs.jsonable(valid),
            features={"path": cfg["features"], "sha256": cfg["features_sha256"]},
        )

    title = f"{cfg['model']} on {cfg['dataset']} ({Path(cfg['features']).name}), seed {seed}"
    display = TrainDisplay(
        console, title, settings.epochs, selection.name, enabled=info.is_main, live=live
    )
    with display:
        epoch = start
        while epoch < settings.epochs and not stopped:
            epoch += 1
            t0 = time.perf_counter()
            torch.manual_seed(_epoch_seed(seed, epoch))
            train_loader.batch_sampler.set_epoch(epoch)
            train_terms = _train_epoch(net, train_loader, opt, settings.grad_clip, device, info)
            valid = predict(net, valid_loader, device, info, index_of)
            vm = compute_metrics(task, valid.pred, valid.labels, label_names)
            vm["loss"] = valid.loss
            sched.step(valid.loss if math.isfinite(valid.loss) else float("inf"))
            value = vm[selection.name]
            if selection.better(value, best):
                best, best_epoch, bad = value, epoch, 0
                best_state = copy.deepcopy(unwrap(net).state_dict())
                best_valid = dict(vm)
                if info.is_main:
                    save_checkpoint(make_ckpt(best_state, epoch, vm), out_dir / "ckpt.pt")
            else:
                bad += 1
            stopped = bad >= settings.patience
            record = {
                "epoch": epoch,
                "lr": opt.param_groups[0]["lr"],
                "train": train_terms,
                "valid": {"loss": valid.loss, **{k: v for k, v in vm.items() if k != "loss"}},
                "best": {"metric": selection.name, "value": best, "epoch": best_epoch},
                "early_stop": stopped,
                "seconds": time.perf_counter() - t0,
            }
            if info.is_main:
                runs.append_log(log_path, record)
                atomic_torch_save(
                    {
                        "format": STATE_FORMAT,
                        "seed": seed,
                        "epoch": epoch,
                        "model": unwrap(net).state_dict(),
                        "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict(),
                        "rng": _rng_state(),
                        "best": best,
                        "best_epoch": best_epoch,
                        "bad_epochs": bad,
                        "stopped": stopped,
                        "best_state": best_state,
                        "best_valid": runs.jsonable(best_valid),
                    },
                    state_path,
                )
            display.update(record)
    if best_epoch == 0:
        raise TrainError(
            f"seed {seed}: the validation {selection.name} was never finite; nothing to keep"
        )
    model.load_state_dict(best_state)
    result: dict[str, Any] = {"seed": seed, "best_epoch": best_epoch, "epochs_run": epoch}
    valid = predict(net, valid_loader, device, info, index_of)
    result["valid"] = {
        **compute_metrics(task, valid.pred, valid.labels, label_names),
        "loss": valid.loss,
    }
    if test_ds is not None:
        test_loader = make_loader(test_ds, eval_bs, shuffle=False, seed=seed, **kw)
        test = predict(net, test_loader, device, info, index_of)
        result["test"] = {
            **compute_metrics(task, test.pred, test.labels, label_names),
            "loss": test.loss,
        }
    if info.is_main:
        runs.write_json(metrics_path, {"selection": selection.name, **result})
    barrier(info)
    return runs.jsonable(result)


def _train_epoch(
    net: nn.Module,
    loader: Any,
    opt: torch.optim.Optimizer,
    grad_clip: float,
    device: torch.device,
    info: DistInfo,
) -> dict[str, float]:
    """One pass over the training batches; returns the sample-weighted mean of each loss term."""
    net.train()
    sums: dict[str, float] = {}
    count = 0
    for k, batch in enumerate(loader):
        batch = batch.to(device)
        with autocast(device):
            out = net(batch)
        loss = out.loss
        if loss is None:
            raise TrainError("the model returned no loss for a labelled batch")
        if not torch.isfinite(loss):
            raise TrainError(
                f"non-finite training loss ({float(loss)}) in batch {k}; lower the learning "
                f"rate (--set train.lr=...) or check the features for extreme values"
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip and grad_clip > 0:
            nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
        opt.step()
        b = len(batch)
        count += b
        sums["loss"] = sums.get("loss", 0.0) + float(loss.detach()) * b
        for name, v in (out.losses or {}).items():
            if name in ("total", "loss", "all"):
                continue
            sums[name] = sums.get(name, 0.0) + float(v) * b
    if info.enabled:
        import torch.distributed as dist

        on = device if info.backend == "nccl" else torch.device("cpu")
        vec = torch.tensor([*sums.values(), float(count)], dtype=torch.float64, device=on)
        dist.all_reduce(vec)
        sums = dict(zip(sums, vec[:-1].tolist(), strict=True))
        count = int(vec[-1])
    return {k: v / max(count, 1) for k, v in sums.items()}
