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
import warm

from mea_cli.artifacts.features import FeatureStore
from mea_cli.data.dataset import FeatureDataset, NormStats, collate
from mea_cli.data.synth import write_synthetic
from mea_cli.errors import MeaError
from mea_cli.models import create_model
from mea_cli.train.trainer import TrainRequest, train_run
from mea_cli.viz.api import make

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


@torch.no_grad()
def _one_sample_at_a_time(ckpt: Path) -> dict[str, tuple[dict, list[np.ndarray]]]:
    """{sample id: (reps {kind: {m: h [d_h]}}, psi per layer [3])} of every test sample, from
    the raw checkpoint file with each sample in a batch of its own: independent of
    ``mea_cli.viz`` (its loading, batching and ordering) and of padding."""
    raw = torch.load(ckpt, map_location="cpu", weights_only=True)
    model = create_model(raw["model"], dict(raw["model_config"]))
    model.load_state_dict(raw["state_dict"])
    model.eval()
    out = {}
    with FeatureStore(raw["features"]["path"]) as store:
        ds = FeatureDataset(store, "test", NormStats.from_dict(raw["norm"]))
        for k in range(len(ds)):
            item = ds[k]
            o = model(collate([item]))
            reps = {kind: {m: t[0].numpy() for m, t in d.items()} for kind, d in o.reps.items()}
            out[str(item["id"])] = (reps, [p[0].numpy() for p in o.psi])
    return out


def _png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG and path.stat().st_size > 5000


def test_all_pictures_and_their_numbers(ckpt: Path, tmp_path: Path) -> None:
    outs = {o.what: o for o in make(ckpt, ["tsne", "wal", "attention", "curves"], tmp_path, seed=1)}
    assert set(outs) == {"tsne", "wal", "attention", "curves"}
    for o in outs.values():
        _png(o.png)

    # t-SNE input = exactly h^e_m and h^a_m of every test sample (<= 200), nothing else; the
    # reference is computed here, one sample at a time from the checkpoint file, not by viz
    ref = _one_sample_at_a_time(ckpt)
    saved = np.load(outs["tsne"].data)
    n_test = len(ref)
    assert saved["vectors"].shape == (6 * n_test, 8) and saved["coords"].shape == (6 * n_test, 2)
    assert sorted(saved["sample_ids"].tolist()) == sorted(ref)
    seen = set()
    for r in range(len(saved["vectors"])):
        sid = str(saved["sample_ids"][saved["sample"][r]])
        kind, m = str(saved["kind"][r]), str(saved["modality"][r])
        want = ref[sid][0][kind][m]
        np.testing.assert_allclose(saved["vectors"][r], want, rtol=1e-4, atol=1e-5)
        seen.add((sid, kind, m))
    assert len(seen) == 6 * n_test

    # psi: a distribution over the three modalities for every sample and PSA layer, and the
    # values of the samples shown are the model's own for those samples
    wal = json.loads(outs["wal"].data.read_text())
    assert len(wal["samples"]) == 2 and wal["max_abs_sum_error"] < 1e-5
    for sid, layers in wal["samples"].items():
        assert len(layers) == 2
        for layer, psi in enumerate(layers):
            assert len(psi) == 3 and abs(sum(psi) - 1) < 1e-5 and min(psi) >= 0
            np.testing.assert_allclose(psi, ref[sid][1][layer], rtol=1e-4, atol=1e-5)
    mean = np.mean([ref[sid][1] for sid in ref], axis=0)  # [layers, 3]
    np.testing.assert_allclose(wal["split_mean"], mean, rtol=1e-4, atol=1e-5)

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
    # the refusals in a child of the warm interpreter (tests/warm.py): the same entry point
    # without torch's import again; the one above is the fresh start-up a shell sees
    res = warm.run(["viz", str(ckpt), "--what", "pie"], timeout=120, env=ENV)
    assert res.returncode == 2 and "unknown picture pie" in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    with pytest.raises(MeaError, match="no such file"):
        make(tmp_path / "nope.pt", ["wal"])
    with pytest.raises(MeaError, match="no sample 'zzz'"):
        make(ckpt, ["attention"], tmp_path, sample="zzz")


def test_viz_draws_what_it_can_and_lists_what_it_refused(ckpt: Path, tmp_path: Path) -> None:
    from mea_cli.viz.api import VizRefused

    with pytest.raises(VizRefused) as err:
        make(ckpt, ["curves", "attention", "wal"], tmp_path / "api", sample="zzz")
    assert [o.what for o in err.value.outputs] == ["curves"]
    assert set(err.value.refused) == {"attention", "wal"}
    assert "no sample 'zzz'" in str(err.value.refused["attention"])
    assert sorted(p.name for p in (tmp_path / "api").iterdir()) == ["curves.png"]
    res = warm.run(
        ["viz", str(ckpt), "--what", "curves,attention", "--sample", "zzz", "--out",
         str(tmp_path / "cli")],
        timeout=120, env=ENV,
    )  # fmt: skip
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert "drew curves; refused attention - attention: no sample 'zzz'" in res.stderr
    assert "curves: " in res.stdout and (tmp_path / "cli" / "curves.png").is_file()


def _one_line_refusal(args: list[str], out: Path, *words: str) -> str:
    res = warm.run([*args, "--out", str(out)], timeout=120, env=ENV)
    lines = [x for x in res.stderr.splitlines() if x.strip()]
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert len(lines) == 1, res.stderr
    for w in words:
        assert w in lines[0], lines[0]
    assert not out.exists()  # nothing half-written
    return lines[0]


def test_viz_curves_checks_the_checkpoint_and_names_the_run_folder(
    ckpt: Path, tmp_path: Path
) -> None:
    """The curves picture reads the log beside the checkpoint, but checks the checkpoint it
    was given, as the other pictures do; a missing log names the folder it was looked for in."""
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "ckpt.pt").write_bytes(ckpt.read_bytes()[:1000])  # truncated
    (lone / "log.jsonl").write_bytes((ckpt.parent / "log.jsonl").read_bytes())
    _one_line_refusal(["viz", str(lone / "ckpt.pt"), "--what", "curves"], tmp_path / "o1",
                      f"{lone / 'ckpt.pt'}: not a readable checkpoint")  # fmt: skip
    (tmp_path / "trunc.pt").write_bytes(ckpt.read_bytes()[:1000])  # and no log beside it
    _one_line_refusal(["viz", str(tmp_path / "trunc.pt"), "--what", "curves"], tmp_path / "o2",
                      f"{tmp_path / 'trunc.pt'}: not a readable checkpoint")  # fmt: skip
    nolog = tmp_path / "nolog"
    nolog.mkdir()
    (nolog / "ckpt.pt").write_bytes(ckpt.read_bytes())
    _one_line_refusal(["viz", str(nolog), "--what", "curves"], tmp_path / "o3",
                      f"{nolog}: no training log (log.jsonl) in the folder of ckpt.pt")  # fmt: skip


def test_viz_checks_the_split_name_as_eval_does(ckpt: Path, tmp_path: Path) -> None:
    """`--split bogus` is the name of no split (as `mea eval` says), not an empty split."""
    _one_line_refusal(["viz", str(ckpt), "--what", "tsne", "--split", "bogus"], tmp_path / "o",
                      "--split must be one of train, valid, test, got 'bogus'")  # fmt: skip
    with pytest.raises(MeaError, match="--split must be one of"):
        make(ckpt, ["curves"], tmp_path / "api", split="Test")
