"""``mea_cli.api``: the command line is a wrapper of it, it raises instead of exiting, it is
cheap to import, and ``load_model`` runs a checkpoint as ``mea predict`` does."""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import typer.main

from mea_cli import MODALITIES, api, cli
from mea_cli.artifacts.checkpoint import Checkpoint, save_checkpoint, schema_to_dict
from mea_cli.artifacts.features import FeatureStore
from mea_cli.data.dataset import NormStats
from mea_cli.errors import MeaError
from mea_cli.models.core.registry import config_for, create_model

CLI = Path(cli.__file__)
# what the api wraps: cli.py must reach these only through mea_cli.api
WRAPPED = {"train_run", "TrainRequest", "evaluate_checkpoint", "write_synthetic", "merge_stores",
           "import_mult", "import_mmsa", "import_csd", "describe_sample", "summarize",
           "compare_folds", "make", "ExtractConfig", "BackendSpec", "LabelSpec", "apply_threads",
           "enable_determinism", "describe_model", "write_csv"}  # fmt: skip


def _commands() -> dict[str, ast.FunctionDef]:
    """Every function of cli.py that ``cli.app`` registers as a command, by function name."""
    tree = ast.parse(CLI.read_text(encoding="utf-8"))
    registered = {c.callback.__name__ for c in cli.app.registered_commands}
    return {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name in registered}


def test_every_command_calls_the_api_and_nothing_it_wraps() -> None:
    commands = _commands()
    group = typer.main.get_command(cli.app)
    assert len(commands) == len(group.commands) >= 12  # nothing registered escapes the check
    for name, fn in commands.items():
        called = {
            n.func.attr
            for n in ast.walk(fn)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
            and isinstance(n.func.value, ast.Name) and n.func.value.id == "api"
        }  # fmt: skip
        assert called, f"mea {name}: calls no mea_cli.api function"
        assert called <= set(api.__all__), f"mea {name}: {called - set(api.__all__)}"
    imported = {
        a.asname or a.name
        for n in ast.walk(ast.parse(CLI.read_text(encoding="utf-8")))
        if isinstance(n, ast.ImportFrom)
        for a in n.names
    }
    assert not imported & WRAPPED, f"cli.py imports what mea_cli.api wraps: {imported & WRAPPED}"


def test_the_command_passes_its_options_to_the_api(mea, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict = {}

    def fake_merge(stores, out, warn=None) -> int:  # noqa: ANN001
        seen.update(stores=[str(s) for s in stores], out=str(out))
        return 7

    monkeypatch.setattr(api, "merge", fake_merge)
    code, out, err = mea("merge", "a.h5", "b.h5", "--out", "c.h5")
    assert (code, err) == (0, "") and seen == {"stores": ["a.h5", "b.h5"], "out": "c.h5"}
    assert out.strip() == "merged 2 stores, 7 samples -> c.h5"

    def refusing(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise MeaError("x.h5: refused by the api")

    monkeypatch.setattr(api, "evaluate", refusing)
    code, out, err = mea("eval", "runs/r")
    assert code == 2 and out == "" and err.strip() == "error: x.h5: refused by the api"


def test_mistakes_raise_mea_errors_and_create_nothing(tmp_path: Path) -> None:
    with pytest.raises(MeaError, match="no-such.h5"):
        api.train(tmp_path / "no-such.h5", dataset="mosi", runs_dir=tmp_path / "runs")
    with pytest.raises(MeaError, match="like must be one of"):
        api.synth(tmp_path / "s.h5", like="mosy")
    with pytest.raises(MeaError, match=r"mea import mult does not take --folds"):
        api.import_features("mult", tmp_path / "x.pkl", tmp_path / "o.h5", folds="f.json")
    with pytest.raises(MeaError, match="--seeds"):
        api.train(None, seeds="1,x", runs_dir=tmp_path / "runs")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_import_is_cheap() -> None:
    assert set(api.__all__) == {"MeaError", *api._MODULE_OF}  # every name loads on first use
    assert all(callable(getattr(api, name)) for name in api.__all__)
    heavy = "print(sorted({'torch', 'h5py', 'av'} & set(sys.modules)))"
    for used in ("", "mea_cli.api.load_model; mea_cli.api.train; mea_cli.api.synth; "):
        code = f"import sys, mea_cli.api; {used}{heavy}"
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert r.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def checkpoint(synth_mosi: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny MEA with random weights, saved as training saves it (schema, statistics)."""
    import torch

    with FeatureStore(synth_mosi) as store:
        dims = {m: store.modalities[m].dim for m in MODALITIES}
        stats = NormStats.fit(store)
        schema = schema_to_dict(store.modalities)
    cfg = replace(config_for("mea", "mosi", dims), d=8, heads=2, d_h=8, psa_layers=1, hca_layers=1)
    torch.manual_seed(0)
    net = create_model("mea", cfg)
    ck = Checkpoint(model="mea", model_config=cfg.to_dict(), dataset="mosi", task="regression",
                    label_names=["sentiment"], schema=schema, norm=stats.to_dict(),
                    state_dict=net.state_dict())  # fmt: skip
    return save_checkpoint(ck, tmp_path_factory.mktemp("ckpt") / "ckpt.pt")


def test_load_model_agrees_with_predict_and_padding(
    checkpoint: Path, synth_mosi: Path, one_torch_thread: None
) -> None:
    model = api.load_model(checkpoint)
    said = {c.clip: c.prediction["score"] for c in api.predict(synth_mosi, checkpoint).clips}
    with api.load_store(synth_mosi) as store:
        samples = [store[i] for i in range(6)]
    together = [p["score"] for p in model.predict(samples)]
    alone = [model.predict([s])[0]["score"] for s in samples]  # no padding at all
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_allclose(together, [said[s.id] for s in samples], atol=1e-5)
    batch = model.batch(samples)
    lengths = [len(s.features["vision"]) for s in samples]
    assert batch.masks["vision"].sum(1).tolist() == lengths and len(set(lengths)) > 1
    with pytest.raises(MeaError):
        model.batch([])


def test_an_output_onto_an_input_is_refused_from_python(checkpoint: Path, synth_mosi: Path,
                                                        tmp_path: Path) -> None:  # fmt: skip
    """The command line's output-onto-input guard holds for API calls too (no callback)."""
    import shutil

    store = Path(shutil.copy(synth_mosi, tmp_path / "store.h5"))
    before = store.read_bytes()
    with pytest.raises(MeaError, match="also an input"):
        api.predict(store, checkpoint, out=store)
    assert store.read_bytes() == before


def test_train_builds_the_request_the_command_builds(
    synth_mosi: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--set`` strings, then the dicts, then ``epochs``: the later wins, as documented."""
    from mea_cli.train import trainer

    seen = []
    monkeypatch.setattr(trainer, "train_run", lambda req, console=None: seen.append(req) or "ran")
    out = api.train(
        synth_mosi, dataset="mosi", seeds=[3, 4], sets=["d=16", "heads=2", "train.lr=0.002"],
        model_overrides={"d": 8}, train_overrides={"batch_size": 4}, epochs=2,
        runs_dir=tmp_path / "runs", name="n",
    )  # fmt: skip
    (req,) = seen
    assert out == "ran" and req.seeds == [3, 4] and req.name == "n"
    assert dict(req.model_overrides) == {"d": 8, "heads": 2}
    assert dict(req.train_overrides) == {"lr": 0.002, "batch_size": 4, "epochs": 2}
    assert req.features == synth_mosi and req.runs_dir == tmp_path / "runs"


def test_tune_shares_train_set_up_and_its_epochs_check(
    synth_mosi: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``api.tune`` and ``api.train`` share one set-up: ``epochs=0`` is the same
    :class:`ConfigError` from both (before any run directory), and tune's trial request is
    the one train builds from the same options."""
    from mea_cli.config import ConfigError
    from mea_cli.train import trainer
    from mea_cli.tune import command

    runs = tmp_path / "runs"
    for call, extra in ((api.train, {}), (api.tune, {"space": ["mu=0:0.5"]})):
        with pytest.raises(ConfigError, match=r"--epochs.*must be at least 1, got 0"):
            call(synth_mosi, dataset="mosi", epochs=0, runs_dir=runs, **extra)
    assert not runs.exists()
    seen = []
    monkeypatch.setattr(trainer, "train_run", lambda req, console=None: seen.append(req))
    monkeypatch.setattr(command, "tune", lambda req, *a: seen.append(req))
    common = {"dataset": "mosi", "sets": ["d=16", "train.lr=0.002"], "epochs": 2, "runs_dir": runs}
    api.train(synth_mosi, seeds=[5], **common)
    api.tune(synth_mosi, seed=5, space=["mu=0:0.5"], **common)
    assert seen[0] == seen[1]


def test_the_api_refuses_what_the_command_refuses(
    synth_mosi: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checks a command makes that typer cannot make for a Python call: ``resume=True``
    with what defines a run, a seed count given as seeds, a bad fixed ``--set`` for ``tune``
    (before its study database exists); one string where a list is expected is one item."""
    from mea_cli.config import ConfigError

    runs = tmp_path / "runs"
    for given, option in (
        ({"epochs": 2}, "--epochs"), ({"dataset": "mosei"}, "--dataset"), ({"sets": "d=8"}, "--set"),
        ({"model": "mult"}, "--model"), ({"model_overrides": {"d": 8}}, "model_overrides"),
    ):  # fmt: skip
        with pytest.raises(ConfigError, match=rf"--resume: .* it takes no {option} "):
            api.train(resume=True, name="r", runs_dir=runs, **given)
    for call in (
        lambda: api.compare(synth_mosi, dataset="mosi", models="mea,mult", seeds="2", runs_dir=runs),
        lambda: api.ablate(run="r", drop="psa", seeds=[1111], runs_dir=runs),
        lambda: api.train(synth_mosi, dataset="mosi", seeds=1.5, runs_dir=runs),
    ):
        with pytest.raises(ConfigError, match="--seeds"):
            call()
    for bad in ("foo=1", "d=x"):
        with pytest.raises(ConfigError, match="invalid MEA configuration"):
            api.tune(synth_mosi, dataset="mosi", space="mu=0:0.5", sets=bad, runs_dir=runs)
    assert not runs.exists()
    seen = []
    monkeypatch.setattr("mea_cli.ablate.api.ablate", lambda *a, **k: seen.append(a[2]))
    api.ablate(run="r", drop="psa", runs_dir=runs)
    assert seen == [["psa"]]  # not ["p", "s", "a"]


def test_model_only_options_with_a_store_are_refused(synth_mosi: Path, mea) -> None:
    code, _, err = mea("info", str(synth_mosi), "--json", "--drop", "wal")
    assert code == 2 and "--drop needs --model NAME" in err, err
    code, _, err = mea("info", str(synth_mosi), "--dataset", "mosi")  # its default, but typed
    assert code == 2 and "--dataset needs --model NAME" in err, err
