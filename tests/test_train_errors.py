"""Bad input to ``mea train`` / ``mea eval``: one clear line on stderr, exit 2, nothing written."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import warm

from mea_cli.artifacts.checkpoint import Checkpoint, save_checkpoint, schema_to_dict
from mea_cli.artifacts.features import (
    ExtractorInfo,
    FeatureStore,
    FeatureStoreWriter,
    ModalitySchema,
    Sample,
)
from mea_cli.config import ConfigError
from mea_cli.train.config import TrainSettings, load_toml, parse_sets
from mea_cli.train.runs import RunError, read_log, resolve_run, truncate_log, update_latest


def mea(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return warm.run(list(args), cwd=cwd)


def one_clear_line(r: subprocess.CompletedProcess[str], *words: str) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, r.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def tiny_store(
    path: Path,
    splits: tuple[str, ...] = ("train", "valid", "test"),
    labelled: bool = True,
    vision_dim: int = 35,
) -> Path:
    dims = {"text": 300, "vision": vision_dim, "audio": 74}
    schemas = [
        ModalitySchema(m, tuple(f"{m}{i}" for i in range(d)), ExtractorInfo("synthetic"))
        for m, d in dims.items()
    ]
    rng = np.random.default_rng(0)
    kw = {"task": "regression", "label_names": ["sentiment"]} if labelled else {}
    with FeatureStoreWriter(path, schemas, dataset="tiny", **kw) as w:
        for i in range(6):
            w.add(
                Sample(
                    id=f"s{i}",
                    features={
                        m: rng.normal(size=(3, d)).astype(np.float32) for m, d in dims.items()
                    },
                    split=splits[i % len(splits)] if labelled else "",
                    label=np.array([rng.uniform(-3, 3)], np.float32) if labelled else None,
                )
            )
    return path


def test_train_refuses_bad_stores(tmp_path: Path, synth_iemocap: Path) -> None:
    unlabelled = tiny_store(tmp_path / "unlabelled.h5", labelled=False)
    r = mea("train", str(unlabelled), "--dataset", "mosi", "--epochs", "1", cwd=tmp_path)
    one_clear_line(r, "unlabelled.h5", "unlabelled")
    novalid = tiny_store(tmp_path / "novalid.h5", splits=("train", "test"))
    r = mea("train", str(novalid), "--dataset", "mosi", "--epochs", "1", cwd=tmp_path)
    one_clear_line(r, "novalid.h5", "'valid' split")
    r = mea("train", str(synth_iemocap), "--dataset", "mosi", "--epochs", "1", cwd=tmp_path)
    one_clear_line(r, "iemocap.h5", "binary-multilabel", "regression")
    r = mea("train", str(novalid), "--dataset", "imdb", cwd=tmp_path)
    one_clear_line(r, "unknown dataset preset 'imdb'")
    r = mea("train", "--resume", cwd=tmp_path)
    one_clear_line(r, "no runs yet")
    # a resumed run keeps its config.json: an option that would change it is refused, not dropped
    r = mea("train", "--resume", "--epochs", "3", "--seeds", "2", "--set", "d=8", cwd=tmp_path)
    one_clear_line(r, "--resume", "--seeds, --set, --epochs")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_eval_refuses_other_schema_and_corrupt_checkpoint(tmp_path: Path) -> None:
    store_path = tiny_store(tmp_path / "train.h5")
    with FeatureStore(store_path) as store:
        ckpt = Checkpoint(
            model="mea",
            model_config={},
            dataset="mosi",
            task="regression",
            label_names=["sentiment"],
            schema=schema_to_dict(store.modalities),
            norm={},
            state_dict={},
            features={"path": str(store_path), "sha256": ""},
        )
    good = save_checkpoint(ckpt, tmp_path / "ckpt.pt")
    other = tiny_store(tmp_path / "other.h5", vision_dim=20)
    r = mea("eval", str(good), "--features", str(other), cwd=tmp_path)
    one_clear_line(r, "ckpt.pt", "vision with 35 features", "other.h5 has 20")
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:300])
    one_clear_line(mea("eval", str(cut), cwd=tmp_path), "cut.pt", "truncated, corrupt")
    r = mea("eval", str(good), "--split", "holdout", cwd=tmp_path)
    one_clear_line(r, "--split must be one of")


def test_settings_and_run_layout_helpers(tmp_path: Path) -> None:
    train, model = parse_sets(["train.lr=5e-4", "d=32", "model.ablations=psa,wal"])
    assert train == {"lr": 5e-4} and model == {"d": 32, "ablations": "psa,wal"}
    with pytest.raises(ConfigError, match="key=value"):
        parse_sets(["lr"])
    s = TrainSettings().override({"epochs": 3.0, "lr": 2})
    assert s.epochs == 3 and s.lr == 2.0 and isinstance(s.epochs, int)
    with pytest.raises(ConfigError, match=r"unknown field lrr \(valid fields: epochs"):
        s.override({"lrr": 1})
    # every problem at once, in one error
    with pytest.raises(ConfigError) as err:
        s.override({"epochs": "many", "lr": -1, "batch_size": 2.5})
    assert err.value.problems == [
        "epochs must be an integer, not 'many'",
        "batch_size must be an integer, not 2.5",
        "lr must be positive, not -1.0",
    ]
    runs = tmp_path / "runs"
    (runs / "a").mkdir(parents=True)
    (runs / "b").mkdir()
    update_latest(runs, runs / "a")
    update_latest(runs, runs / "b")
    assert resolve_run(runs, None).name == "b"
    with pytest.raises(RunError, match="no such run"):
        resolve_run(runs, "c")
    log = runs / "b" / "log.jsonl"
    log.write_text('{"epoch": 1}\n{"epoch": 2}\n{"epoch": 3, "tor')  # killed mid-write
    assert [r["epoch"] for r in read_log(log)] == [1, 2]
    truncate_log(log, 1)
    assert [r["epoch"] for r in read_log(log)] == [1]


def test_a_bad_value_in_the_config_file_names_the_file(tmp_path: Path) -> None:
    """A training setting of a ``--config`` TOML that is wrong is refused naming the file,
    before any run directory exists."""
    store = tiny_store(tmp_path / "t.h5")
    bad = tmp_path / "bad.toml"
    bad.write_text('[train]\nlr = "abc"\n')
    args = ["train", str(store), "--dataset", "mosi", "--epochs", "1", "--device", "cpu",
            "--config", str(bad), "--runs-dir", str(tmp_path / "runs")]  # fmt: skip
    one_clear_line(mea(*args, cwd=tmp_path),
                   f"{bad}: invalid training settings: lr must be a number, not 'abc'")  # fmt: skip
    assert not (tmp_path / "runs").exists()
    bad.write_text("[train]\nfoo = 1\n")
    with pytest.raises(ConfigError, match=r"bad.toml: invalid training settings: unknown field foo"):
        load_toml(bad)
    # the [model] table: checked once the model is known, still naming the file
    for table, problem in (('d = "abc"', "d must be an integer, not 'abc'"),
                           ("nope = 3", "unknown field nope")):  # fmt: skip
        bad.write_text(f"[model]\n{table}\n")
        one_clear_line(mea(*args, cwd=tmp_path), f"{bad}: invalid MEA configuration: {problem}")
        assert not (tmp_path / "runs").exists()
