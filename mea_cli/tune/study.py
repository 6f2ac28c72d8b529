"""``mea tune``: an Optuna study whose trials are ordinary ``mea train`` runs.

Each trial draws the searched fields (:mod:`mea_cli.tune.space`), trains one seed with them
through :func:`mea_cli.train.trainer.train_run` into ``runs/<study>-t<number>/`` (a normal run:
``mea eval``, ``mea train --resume`` work on it) and returns the **valid** split's selection
metric of the best-on-valid epoch (MAE, lower is better, for regression; F1, higher, for
classification). The test split never informs the search. After every epoch the trainer hands
its valid metric to the trial (``TrainRequest.on_epoch``): Optuna's ``MedianPruner`` stops a
trial whose metric is worse than the median of earlier trials at the same epoch.

The study lives in a database, SQLite next to the runs by default, or any URL Optuna accepts
(``postgresql://...``): several processes or machines given the same ``--storage`` and
``--study`` share its trials. A study remembers what it searches (model, store and its sha256,
space, fixed overrides, seed); a process that joins with different ones, or after the store's
content changed, is refused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mea_cli.errors import MeaError

try:
    import fcntl
except ImportError:  # Windows: no lock (SQLite's own locking still applies)
    fcntl = None  # type: ignore[assignment]
from mea_cli.tune.space import Param, suggest

ATTR = "mea_tune"  # the study's user attribute that records what it searches


class TuneError(MeaError):
    """A study that cannot be run or joined (other settings, a database that cannot open)."""


@dataclass
class TuneRequest:
    """What ``mea tune`` was asked. ``request`` is the :class:`TrainRequest` of every trial
    before the drawn values are added (its fixed overrides, seed, preset, device)."""

    request: Any  # mea_cli.train.trainer.TrainRequest
    params: Sequence[Param]
    trials: int
    study: str
    storage: str
    sampler_seed: int | None = None
    prune: bool = True
    startup_trials: int = 2  # the pruner waits for this many finished trials
    on_open: Callable[[Any], None] | None = None  # gets the study once it is open (checked)
    on_trial: Callable[[Any], None] | None = None  # gets each finished optuna FrozenTrial


@dataclass
class TuneResult:
    """A finished search: the optuna study, the metric it optimised and in which direction."""

    study: Any  # optuna.Study
    metric: str
    higher_is_better: bool


def default_storage(runs_dir: Path, study: str) -> str:
    """``sqlite:///runs/<study>.db``: the study beside its trials' runs."""
    return f"sqlite:///{(Path(runs_dir) / f'{study}.db').as_posix()}"


def trial_run_name(study: str, number: int) -> str:
    """The run folder name of trial ``number``: ``<study>-t<number>``."""
    return f"{study}-t{number}"


@contextlib.contextmanager
def _setup_lock(url: str) -> Iterator[None]:
    """Serialise opening a SQLite study: two processes creating the schema of a fresh file (or
    the study) at the same moment could otherwise collide. Other databases handle it."""
    from sqlalchemy.engine import make_url

    try:
        db = make_url(url).database if url.startswith("sqlite:") else None
    except Exception:  # noqa: BLE001 - a malformed URL: RDBStorage reports it
        db = None
    if not db or db == ":memory:" or fcntl is None:
        yield
        return
    if not Path(db).parent.is_dir():
        raise TuneError(f"--storage {url}: the folder {Path(db).parent} does not exist")
    lock = Path(f"{db}.lock")
    made = not lock.exists()
    with open(lock, "a") as f:  # beside the database; the kernel drops it on exit
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        except BaseException:
            if made:  # a study that could not be opened leaves nothing behind
                lock.unlink(missing_ok=True)
            raise
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _storage(url: str) -> Any:
    import optuna

    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:"):  # writers wait for each other instead of "database is locked"
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    try:
        return optuna.storages.RDBStorage(url, **kwargs)
    except Exception as err:  # noqa: BLE001 - SQLAlchemy's many errors: one line
        cause = getattr(err, "orig", None) or err  # the driver's own error, without SQL and links
        first = (str(cause).strip().splitlines() or [""])[0]
        raise TuneError(f"--storage {url}: cannot open ({type(cause).__name__}: {first})") from None


def signature(req: TuneRequest, metric: str, features_sha256: str) -> dict[str, Any]:
    """What a study searches; a joining process must search the same. ``features_sha256`` is
    the store's content (:func:`mea_cli.train.setup.read_store_facts`): trials on a store
    that changed since would not be comparable."""
    r = req.request
    return json.loads(json.dumps({
        "model": r.model, "features": str(Path(r.features).resolve()),
        "features_sha256": features_sha256, "dataset": r.dataset,
        "task": r.task, "preset": r.preset, "seeds": list(r.seeds),
        "train_overrides": dict(r.train_overrides), "model_overrides": dict(r.model_overrides),
        "space": [p.describe() for p in req.params], "metric": metric,
    }, default=list))  # fmt: skip


def _trials_saw(study: Any, req: TuneRequest, features_sha256: str) -> bool:
    """True when every trial of a study made before the store's sha256 was recorded has its run
    (``config.json``, which records the store's sha256) and each trained on this content."""
    trials = study.get_trials(deepcopy=False)
    for trial in trials:
        run = trial.user_attrs.get("run")
        cfg = Path(req.request.runs_dir) / str(run) / "config.json"
        try:
            if run is None or json.loads(cfg.read_text())["features_sha256"] != features_sha256:
                return False
        except (OSError, ValueError, KeyError, TypeError):
            return False
    return bool(trials)


def open_study(req: TuneRequest, metric: str, higher_is_better: bool, features_sha256: str) -> Any:
    """Create the study or join it (the same settings and store content only)."""
    with _setup_lock(req.storage):
        return _open_locked(req, metric, higher_is_better, features_sha256)


def _open_locked(req: TuneRequest, metric: str, higher_is_better: bool, features_sha256: str) -> Any:
    import optuna

    # our own lines say what happens; optuna's WARNING for a failed trial carries its traceback
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = _storage(req.storage)
    pruner: optuna.pruners.BasePruner = (
        optuna.pruners.MedianPruner(n_startup_trials=req.startup_trials)
        if req.prune
        else optuna.pruners.NopPruner()
    )
    study = optuna.create_study(
        storage=storage,
        study_name=req.study,
        direction="maximize" if higher_is_better else "minimize",
        sampler=optuna.samplers.TPESampler(seed=req.sampler_seed),
        pruner=pruner,
        load_if_exists=True,
    )
    want = signature(req, metric, features_sha256)
    have = study.user_attrs.get(ATTR)
    if have is None:  # a new study (another database than SQLite: the first writer wins)
        study.set_user_attr(ATTR, want)
        have = optuna.load_study(study_name=req.study, storage=storage).user_attrs[ATTR]
    if "features_sha256" not in have and _trials_saw(study, req, features_sha256):
        have = {**have, "features_sha256": features_sha256}  # checked through its trials' runs
        study.set_user_attr(ATTR, have)
    if "features_sha256" not in have:
        raise TuneError(
            f"study {req.study!r} in {req.storage} was made by an older mea tune, which did not "
            "record its store's sha256, and its trials' runs (their config.json) do not show "
            "that they saw this store's content; pick another --study"
        )
    if have.get("features_sha256") != want["features_sha256"] and all(
        have.get(k) == v for k, v in want.items() if k != "features_sha256"
    ):
        raise TuneError(
            f"study {req.study!r} in {req.storage}: the store {want['features']} changed since "
            "the study began (its sha256 differs), so new trials would not be comparable with "
            "the earlier ones; pick another --study"
        )
    if have != want:
        diff = sorted(k for k in want if have.get(k) != want[k])
        raise TuneError(
            f"study {req.study!r} in {req.storage} searches other settings ({', '.join(diff)}); "
            f"join it with the same ones or pick another --study"
        )
    return study


def run_study(req: TuneRequest) -> TuneResult:
    """Run ``req.trials`` trials of the study in this process (others may run theirs at the
    same time on the same storage) and return the study."""
    # start-up time: tune.command imports this module for its checks, before torch
    import optuna

    from mea_cli.config import ConfigError
    from mea_cli.models.core.registry import ModelSizeError
    from mea_cli.train import runs
    from mea_cli.train.metrics import selection_metric
    from mea_cli.train.setup import TrainError, read_store_facts
    from mea_cli.train.trainer import train_run

    facts = read_store_facts(  # with its sha256: the study records what its trials saw
        Path(req.request.features), req.request.dataset, True, req.request.task,
        req.request.label_range,
    )  # fmt: skip
    sel = selection_metric(facts.task)
    untrainable = (TrainError, ConfigError, ModelSizeError)
    if req.storage == default_storage(req.request.runs_dir, req.study):
        Path(req.request.runs_dir).mkdir(parents=True, exist_ok=True)  # the database's folder
    study = open_study(req, sel.name, sel.higher_is_better, facts.sha256)
    result = TuneResult(study, sel.name, sel.higher_is_better)
    if req.on_open is not None:
        req.on_open(study)

    def objective(trial: optuna.Trial) -> float:
        train, model = suggest(trial, req.params)
        name = trial_run_name(req.study, trial.number)
        trial.set_user_attr("run", name)
        r = req.request

        budget: list[int] = []  # the run's epochs, read from its config.json once

        def report(record: Mapping[str, Any]) -> None:
            value, epoch = record["valid"][sel.name], int(record["epoch"])
            trial.report(float(value), epoch)
            if not budget:
                budget.append(runs.read_json(Path(r.runs_dir) / name / "config.json")["train"]["epochs"])
            # a trial that trained its last epoch is complete: pruning it would waste its value
            if epoch < budget[0] and not record["early_stop"] and trial.should_prune():
                raise optuna.TrialPruned(f"valid {sel.name} {value:.4g} at epoch {epoch}")

        trial_req = dataclasses.replace(
            r, name=name, resume=False, on_epoch=report,
            train_overrides={**r.train_overrides, **train},
            model_overrides={**r.model_overrides, **model},
            exists_hint=(
                f"it is not a trial of study {req.study!r} in {req.storage} (a study of that "
                "name in another or a deleted database left it); pick another --study, or "
                "move that folder away"
            ),
        )  # fmt: skip
        try:
            res = train_run(trial_req)
        except untrainable as err:  # a drawn combination that cannot train
            trial.set_user_attr("error", str(err))
            raise
        seed = int(r.seeds[0])
        return float(res.seeds[seed]["valid"][sel.name])

    def done(_study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
        if req.on_trial is not None:
            req.on_trial(frozen)

    study.optimize(
        objective, n_trials=req.trials, catch=untrainable, callbacks=[done],
        gc_after_trial=False,
    )  # fmt: skip
    return result
