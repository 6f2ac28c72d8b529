"""benchmarks/bench_probe.py: the head's input is what the head reads, the probe's choice is
made on valid, and a run of another task is refused."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from model_helpers import grouped_class_store

from mea_cli.artifacts.features import FeatureStore
from mea_cli.data.dataset import NormStats
from mea_cli.runtime.loading import model_from_checkpoint
from mea_cli.train.setup import TrainRequest, open_checkpoint
from mea_cli.train.trainer import train_run

sys.path.append(str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_probe as probe  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("probe")
    store = grouped_class_store(tmp / "store.h5")
    result = train_run(
        TrainRequest(
            features=store, dataset=None, task="multiclass", runs_dir=tmp, name="tiny",
            live=False, model_overrides={"d": 8, "heads": 2, "d_h": 8, "psa_layers": 1, "hca_layers": 1},
            train_overrides={"epochs": 2, "batch_size": 8},
        )
    )  # fmt: skip
    return result.run_dir, store


def test_the_captured_representation_is_what_the_head_reads(trained: tuple[Path, Path]) -> None:
    run, store_path = trained
    path, ck = open_checkpoint(run)
    net = model_from_checkpoint(ck, path)
    reps = probe.representations(net, probe.datasets(FeatureStore(store_path), NormStats.from_dict(ck.norm)))
    assert [len(reps[s][2]) for s in probe.SPLITS] == [24, 12, 12]
    for x, p, y, ids in reps.values():
        assert len(ids) == len(y) == len(x)
        with torch.no_grad():
            again = net.head.eval()(torch.from_numpy(x))
        assert np.allclose(again.numpy(), p, atol=1e-5)
        assert set(np.unique(y)) <= {0, 1, 2}


def test_probe_rows_choose_c_on_valid(trained: tuple[Path, Path]) -> None:
    run, store_path = trained
    row = probe.probe_run(run, FeatureStore(store_path), random_seeds=[0, 1])
    assert row["model"] == "mea" and row["features"] > 0
    for part in (row["head"], row["probe_trained"], row["probe_random"]):
        assert 0.0 <= part["valid"] <= 1.0 and 0.0 <= part["test"] <= 1.0
    assert row["probe_trained"]["C"] in probe.GRID and len(row["probe_random"]["C"]) == 2
    assert "| tiny |" in probe.table([row])
    assert row["train_groups"] == 4 and "| 4 (0.250) |" in probe.table([row])
    assert "mean of" not in probe.table([row])
    assert f"| mean of 2 | {row['head']['train']:.3f} |" in probe.table([row, row])
    for part in (row["probe_trained"], row["probe_random"]):
        assert 0.0 <= part["group_accuracy"] <= 1.0
    # the grid's choice is the best valid score: a one-value grid cannot beat the full one
    path, ck = open_checkpoint(run)
    reps = probe.representations(
        model_from_checkpoint(ck, path), probe.datasets(FeatureStore(store_path), NormStats.from_dict(ck.norm))
    )
    best = probe.probe(reps)
    for c in probe.GRID:
        assert probe.probe(reps, grid=[c])["valid"] <= best["valid"]


def test_a_regression_run_is_refused(synth_mosi: Path, tmp_path: Path) -> None:
    result = train_run(
        TrainRequest(
            features=synth_mosi, dataset="mosi", task=None, runs_dir=tmp_path, name="reg", live=False,
            model_overrides={"d": 8, "heads": 2, "d_h": 8, "psa_layers": 1, "hca_layers": 1},
            train_overrides={"epochs": 1, "batch_size": 64},
        )
    )  # fmt: skip
    with pytest.raises(SystemExit, match="regression run; the probe scores single-label classes only"):
        probe.probe_run(result.run_dir, FeatureStore(synth_mosi), random_seeds=[])


def test_each_run_is_probed_on_its_own_store_and_a_folds_run_stands_for_its_folds(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "config.json").write_text('{"features": "/data/emo.h5"}')
    cv = tmp_path / "cv"
    for k in ("1", "2", "10"):
        (cv / "folds" / k).mkdir(parents=True)
        (cv / "folds" / k / "features.h5").write_bytes(b"")
    (cv / "folds" / "latest").symlink_to(cv / "folds" / "10")
    got = probe.run_stores([plain, cv], None)
    assert got == [
        (plain, Path("/data/emo.h5")),
        *[(cv / "folds" / k, cv / "folds" / k / "features.h5") for k in ("1", "2", "10")],
    ]
    assert probe.run_stores([plain], tmp_path / "s.h5") == [(plain, tmp_path / "s.h5")]
    assert probe.label(str(cv / "folds" / "2" / "ckpt.pt")) == "cv/folds/2"
    assert probe.label(str(plain / "ckpt.pt")) == "plain"
