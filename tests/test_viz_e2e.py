"""``mea viz`` on a real (tiny) checkpoint: every picture exists and its numbers are right."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mea_cli.data.synth import write_synthetic
from mea_cli.errors import MeaError
from mea_cli.train.trainer import TrainRequest, train_run
from mea_cli.viz.api import make
from mea_cli.viz.collect import collect, load

PNG = b"\x89PNG\r\n\x1a\n"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Two cores shared by everything: one torch thread is several times faster here."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("viz")
    store = root / "synth.h5"
    write_synthetic(store, "iemocap", n=30, seed=6, max_seconds=2.0)
    train_run(
        TrainRequest(
            features=store,
            dataset="iemocap",
            seeds=[3],
            name="v",
            live=False,
            train_overrides={"epochs": 2},
            model_overrides={"d": 8, "heads": 2, "d_h": 8, "psa_layers": 2, "hca_layers": 1},
            runs_dir=root / "runs",
        )
    )
    return root / "runs" / "v" / "ckpt.pt"


def _png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG and path.stat().st_size > 5000


def test_all_pictures_and_their_numbers(ckpt: Path, tmp_path: Path) -> None:
    outs = {o.what: o for o in make(ckpt, ["tsne", "wal", "attention", "curves"], tmp_path, seed=1)}
    assert set(outs) == {"tsne", "wal", "attention", "curves"}
    for o in outs.values():
        _png(o.png)

    # t-SNE input = exactly h^e_m and h^a_m of every test sample (<= 200), nothing else
    loaded, store = load(ckpt)
    try:
        got = collect(loaded)
        n_test = len(store.split_indices("test"))
    finally:
        store.close()
    saved = np.load(outs["tsne"].data)
    assert saved["vectors"].shape == (6 * n_test, 8) and saved["coords"].shape == (6 * n_test, 2)
    for kind in ("exclusive", "agnostic"):
        for m in ("text", "vision", "audio"):
            rows = saved["vectors"][(saved["kind"] == kind) & (saved["modality"] == m)]
            np.testing.assert_allclose(rows, got.reps[kind][m], rtol=1e-5, atol=1e-6)
    assert sorted(saved["sample_ids"].tolist()) == sorted(got.ids)

    # psi: a distribution over the three modalities for every sample and PSA layer
    wal = json.loads(outs["wal"].data.read_text())
    assert len(wal["samples"]) == 2 and wal["max_abs_sum_error"] < 1e-5
    for layers in wal["samples"].values():
        assert len(layers) == 2
        for psi in layers:
            assert len(psi) == 3 and abs(sum(psi) - 1) < 1e-5 and min(psi) >= 0

    # attention maps: cropped to the real length, rows sum to one
    att = np.load(outs["attention"].data)
    assert sorted(att.files) == sorted(
        f"{m}_layer{i}" for m in ("text", "vision", "audio") for i in (1, 2)
    )
    lengths = outs["attention"].numbers["lengths"]
    for name in att.files:
        m = name.split("_")[0]
        assert att[name].shape == (lengths[m], lengths[m])
        np.testing.assert_allclose(att[name].sum(-1), 1.0, atol=1e-4)

    assert outs["curves"].numbers["epochs"] == 2
    assert "valid/f1_mean" in outs["curves"].numbers["curves"]


def test_cli_viz_and_its_errors(ckpt: Path, tmp_path: Path) -> None:
    run = [sys.executable, "-m", "mea_cli", "viz"]
    ok = subprocess.run(
        [*run, str(ckpt.parent), "--what", "wal", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
    )
    assert ok.returncode == 0, ok.stderr
    _png(tmp_path / "wal.png")
    res = subprocess.run(
        [*run, str(ckpt), "--what", "pie"], capture_output=True, text=True, timeout=120, env=ENV
    )
    assert res.returncode == 2 and "unknown picture pie" in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    with pytest.raises(MeaError, match="no such file"):
        make(tmp_path / "nope.pt", ["wal"])
    with pytest.raises(MeaError, match="no sample 'zzz'"):
        make(ckpt, ["attention"], tmp_path, sample="zzz")
