"""``mea eval CKPT CKPT ...``: several checkpoints evaluated as one model, their predictions
averaged (mea_cli/train/ensemble.py): the averaging rule by hand, the checks on the members, and
the command on a run's seeds."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import warnings
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
import warm

from mea_cli.artifacts.features import (
    ExtractorInfo,
    FeatureStore,
    FeatureStoreWriter,
    ModalitySchema,
    Sample,
)
from mea_cli.train.ensemble import (
    EnsembleError,
    average_predictions,
    check_members,
    ensemble_models,
)
from mea_cli.train.evaluate import predict_split
from mea_cli.train.metrics import compute_metrics
from mea_cli.train.setup import open_checkpoint


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_class_probabilities_are_averaged_not_logits() -> None:
    # one confident member for class 0, two milder ones for class 1
    members = [np.array([[6.0, 0.0]]), np.array([[0.0, 2.0]]), np.array([[0.0, 2.0]])]
    out = average_predictions("multiclass", members)
    want = np.mean([_softmax(m) for m in members], axis=0)  # [0.412, 0.588]
    np.testing.assert_allclose(np.exp(out), want, rtol=1e-12)
    assert np.exp(out).sum() == pytest.approx(1.0)
    assert out.argmax() == 1  # the mean probability's class ...
    assert np.mean(members, axis=0).argmax() == 0  # ... where the mean logit would say 0


def test_multilabel_pairs_and_regression_by_hand() -> None:
    a = np.array([[[1.0, 0.0], [0.0, 3.0]]])  # [N=1, K=2, 2]
    b = np.array([[[0.0, 1.0], [2.0, 0.0]]])
    out = np.exp(average_predictions("binary-multilabel", [a, b]))
    np.testing.assert_allclose(out, (_softmax(a) + _softmax(b)) / 2, rtol=1e-12)
    np.testing.assert_allclose(out.sum(-1), 1.0)
    reg = average_predictions("regression", [np.array([[1.0], [-2.0]]), np.array([[3.0], [0.0]])])
    np.testing.assert_allclose(reg, [[2.0], [-1.0]])
    with pytest.raises(ValueError, match="shape"):
        average_predictions("regression", [np.zeros((2, 1)), np.zeros((3, 1))])


def test_members_sure_of_other_classes_average_without_overflow() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no log(0), no overflow
        out = average_predictions("multiclass", [np.array([[1e4, 0.0, -1e4]]), np.array([[2e3, 0.0, -3e3]])])
    # each member is certain of class 0: the mean probability is 1 there, e^-2000 / 2 and less elsewhere
    np.testing.assert_allclose(out, [[0.0, -2000.0 - np.log(2.0), -5000.0 - np.log(2.0)]])


def _ckpt(**over: object) -> SimpleNamespace:
    base = {"task": "multiclass", "label_names": ("a", "b"), "label_range": None,
            "dataset": "custom", "features": {"sha256": "abc", "path": "s.h5"}}  # fmt: skip
    return SimpleNamespace(**{**base, **over})


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"task": "regression"}, "task"),
        ({"label_names": ("b", "a")}, "label names"),
        ({"dataset": "iemocap"}, "dataset"),
        ({"features": {"sha256": "def", "path": "s.h5"}}, "training store"),
    ],
)
def test_members_must_predict_the_same_labels_from_the_same_store(change: dict, named: str) -> None:
    check_members([(Path("one"), _ckpt()), (Path("two"), _ckpt())])
    with pytest.raises(EnsembleError, match=f"two: its {named}"):
        check_members([(Path("one"), _ckpt()), (Path("two"), _ckpt(**change))])


def test_an_ensemble_is_named_by_its_models_each_once() -> None:
    members = [(Path(n), SimpleNamespace(model=m)) for n, m in (("1", "mea"), ("2", "mult"), ("3", "mea"))]
    assert ensemble_models(members) == "mea+mult"
    assert ensemble_models(members[::2]) == "mea"


def _store(path: Path, shift: float = 1.5, groups: bool = False, bad: bool = False) -> Path:
    """Three classes that shift every modality; ``groups``: a group column, each group all three
    classes; ``bad``: one audio value infinite."""
    names = {"text": 2, "vision": 2, "audio": 3}
    schemas = [ModalitySchema(m, tuple(f"{m}{i}" for i in range(d)), ExtractorInfo("test", "0", {}), 10.0)
               for m, d in names.items()]  # fmt: skip
    rng = np.random.default_rng(0)
    splits = ["train"] * 36 + ["valid"] * 12 + ["test"] * 12
    attrs = {"group_by": "group"} if groups else {}
    with FeatureStoreWriter(path, schemas, dataset="test", task="multiclass",
                            label_names=("a", "b", "c"), attrs=attrs) as w:  # fmt: skip
        for i, split in enumerate(splits):
            c = i % 3
            feats = {m: rng.normal(shift * c, 1.0, size=(4 + i % 3, d)).astype(np.float32)
                     for m, d in names.items()}  # fmt: skip
            w.add(Sample(id=f"s{i:02d}", features=feats, video=f"v{i}", split=split,
                         label=np.eye(3, dtype=np.float32)[c],
                         group=f"g{(i // 3) % 4}" if groups else None))  # fmt: skip
    if bad:
        with h5py.File(path, "r+") as f:
            f["audio"]["data"][1, 0] = np.inf
    return path


def mea(*args: str, cwd: Path, code: int = 0) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    r = warm.run(list(args), cwd=cwd, env=env)
    assert r.returncode == code, (args, r.stdout[-3000:], r.stderr[-3000:])
    return r


SMALL = ["--set", "d=8", "--set", "heads=2", "--set", "d_h=8", "--set", "psa_layers=1",
         "--set", "hca_layers=1", "--set", "train.batch_size=12"]  # fmt: skip


@pytest.fixture(scope="module")
def seeds_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of two MEA seeds (two epochs each) on a three-class store."""
    tmp = tmp_path_factory.mktemp("ensemble")
    store = _store(tmp / "store.h5")
    mea("train", str(store), "--task", "multiclass", "--model", "mea", "--seeds", "1,2",
        "--epochs", "2", "--name", "two", *SMALL, cwd=tmp)  # fmt: skip
    return tmp / "runs" / "two"


def test_the_seeds_averaged_are_scored_as_one_model(seeds_run: Path) -> None:
    seeds = [seeds_run / "seeds" / "1", seeds_run / "seeds" / "2"]
    out = json.loads(mea("eval", *map(str, seeds), "--json", cwd=seeds_run).stdout)
    assert out["model"] == "mea (ensemble of 2)"
    assert out["ensemble_members"] == [str(s / "ckpt.pt") for s in seeds]
    assert out["confusion"]["png"] is None and out["samples"] == 12
    # by hand: each member's predictions, their probabilities averaged, the metrics of that
    members = [open_checkpoint(s) for s in seeds]
    with FeatureStore(seeds_run.parent.parent / "store.h5") as store:
        preds = [predict_split(p, c, store, "test", "cpu") for p, c in members]
    probs = np.mean([_softmax(p.pred.astype(np.float64)) for p in preds], axis=0)
    want = compute_metrics("multiclass", np.log(probs), preds[0].labels, ("a", "b", "c"))
    for k, v in want.items():
        assert out["metrics"][k] == pytest.approx(v, abs=1e-9), k
    single = [json.loads(mea("eval", str(s), "--json", cwd=seeds_run).stdout) for s in seeds]
    assert single[0]["ensemble_members"] == [] and single[0]["model"] == "mea"
    table = mea("eval", *map(str, seeds), cwd=seeds_run).stdout
    assert "ensemble: the class probabilities of 2 checkpoints averaged" in table
    paper = json.loads(mea("eval", *map(str, seeds), "--paper", "--json", cwd=seeds_run).stdout)
    assert "an ensemble of 2 checkpoints" in paper["paper_not_comparable_because"]
    csv_path = seeds_run.parent / "ensemble-test.csv"
    mea("eval", *map(str, seeds), "--predictions", str(csv_path), cwd=seeds_run)
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    written = np.array([[float(r[f"pred_p_{c}"]) for c in "abc"] for r in rows])
    np.testing.assert_allclose(written, probs, atol=1e-6)  # the CSV's are the averaged ones
    assert [r["pred_class"] for r in rows] == [("a", "b", "c")[k] for k in probs.argmax(1)]


def test_an_output_onto_a_file_of_the_run_is_refused(seeds_run: Path) -> None:
    """``--predictions`` naming a file training wrote (the run's config.json, a seed's
    metrics.json) is refused, and the file is untouched: it once became a CSV, and the run could
    no longer be resumed."""
    one = seeds_run / "seeds" / "1"
    for target in (seeds_run / "config.json", one / "metrics.json", one / "ckpt.pt"):
        before = target.read_bytes()
        r = mea("eval", str(one), "--predictions", str(target), cwd=seeds_run, code=2)
        assert str(target) in r.stderr and "also an input" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and target.read_bytes() == before


def test_a_member_from_another_store_or_given_twice_is_refused(seeds_run: Path, tmp_path: Path) -> None:
    other = _store(tmp_path / "other.h5", shift=1.0)
    mea("train", str(other), "--task", "multiclass", "--model", "mea", "--seeds", "1",
        "--epochs", "1", "--name", "other", *SMALL, cwd=tmp_path)  # fmt: skip
    one = str(seeds_run / "seeds" / "1")
    r = mea("eval", one, str(tmp_path / "runs" / "other"), cwd=tmp_path, code=2)
    assert "training store (sha256)" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = mea("eval", one, str(seeds_run / "seeds" / "1" / "ckpt.pt"), cwd=tmp_path, code=2)
    assert "given twice" in r.stderr
    shutil.copy(seeds_run / "seeds" / "1" / "ckpt.pt", tmp_path / "copy.pt")
    r = mea("eval", str(tmp_path / "copy.pt"), one, cwd=tmp_path, code=2)
    assert "the same checkpoint as" in r.stderr and "(same content)" in r.stderr
    r = mea("eval", str(seeds_run), cwd=tmp_path, code=2)  # a run of seeds: pick one, or all
    assert "give one seed's directory" in r.stderr and "also take them all" in r.stderr
    r = mea("predict", str(other), "--ckpt", one, "--ckpt", str(tmp_path / "runs" / "other"),
            cwd=tmp_path, code=2)  # fmt: skip
    assert "training store (sha256)" in r.stderr and "Traceback" not in r.stderr


def test_predict_averages_the_members_probabilities_and_weights(seeds_run: Path) -> None:
    store = str(seeds_run.parent.parent / "store.h5")
    seeds = [str(seeds_run / "seeds" / s) for s in ("1", "2")]

    def clips(*ckpts: str) -> dict:
        args = [a for c in ckpts for a in ("--ckpt", c)]
        return json.loads(mea("predict", store, *args, "--json", cwd=seeds_run).stdout)

    both, one, two = clips(*seeds), clips(seeds[0]), clips(seeds[1])
    assert both["model"] == "mea (ensemble of 2)" and len(both["ensemble_members"]) == 2
    assert one["ensemble_members"] == [] and len(both["clips"]) == 60
    for b, x, y in zip(both["clips"], one["clips"], two["clips"], strict=True):
        for c in "abc":
            want = (x["prediction"]["probabilities"][c] + y["prediction"]["probabilities"][c]) / 2
            assert b["prediction"]["probabilities"][c] == pytest.approx(want, abs=1e-6)
        for m in ("text", "vision", "audio"):
            want = (x["modality_weights"][m] + y["modality_weights"][m]) / 2
            assert b["modality_weights"][m] == pytest.approx(want, abs=1e-6)
    table = mea("predict", store, "--ckpt", seeds[0], "--ckpt", seeds[1], cwd=seeds_run).stdout
    assert "ensemble: the class probabilities and the weights psi of 2 checkpoints averaged" in table


def test_members_with_other_numbers_of_weight_layers_report_no_psi(seeds_run: Path) -> None:
    root = seeds_run.parent.parent
    small = [a if a != "psa_layers=1" else "psa_layers=2" for a in SMALL]
    mea("train", str(root / "store.h5"), "--task", "multiclass", "--model", "mea", "--seeds", "3",
        "--epochs", "1", "--name", "deeper", *small, cwd=root)  # fmt: skip
    deeper = json.loads(mea("predict", str(root / "store.h5"), "--ckpt", str(root / "runs" / "deeper"),
                            "--json", cwd=root).stdout)  # fmt: skip
    assert len(deeper["clips"][0]["weights_per_layer"]) == 2  # one psi per PSA/WAL layer
    both = json.loads(mea("predict", str(root / "store.h5"), "--ckpt", str(seeds_run / "seeds" / "1"),
                          "--ckpt", str(root / "runs" / "deeper"), "--json", cwd=root).stdout)  # fmt: skip
    assert both["modality_weights"] is False
    assert all(c["modality_weights"] is None and c["prediction"] for c in both["clips"])
    table = mea("predict", str(root / "store.h5"), "--ckpt", str(seeds_run / "seeds" / "1"),
                "--ckpt", str(root / "runs" / "deeper"), cwd=root).stdout  # fmt: skip
    assert "so the ensemble reports none" in table and "psi (T/V/A)" not in table


def test_predict_checks_a_stores_values_before_fitting_its_groups(tmp_path: Path) -> None:
    """A group-normalised checkpoint on a store with an infinite value: one line naming it
    (the groups' statistics are fitted only on checked values), as without groups."""
    store = _store(tmp_path / "grouped.h5", groups=True)
    mea("train", str(store), "--task", "multiclass", "--model", "mea", "--seeds", "1", "--epochs", "1",
        "--name", "grouped", "--set", "train.normalise=group", *SMALL, cwd=tmp_path)  # fmt: skip
    bad = _store(tmp_path / "bad.h5", groups=True, bad=True)
    r = mea("predict", str(bad), "--ckpt", str(tmp_path / "runs" / "grouped"), cwd=tmp_path, code=2)
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]  # one line, no warning before it
    assert "non-finite value (inf)" in r.stderr
