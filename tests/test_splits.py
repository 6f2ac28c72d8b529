"""Grouped splits and folds (mea_cli.data.splits): no group in two splits, ever; shares; the
store's group column; split stores; ``mea train --folds`` / ``--split-by`` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tiny_model

from mea_cli.artifacts.features import (
    ExtractorInfo,
    FeatureStore,
    FeatureStoreWriter,
    ModalitySchema,
    Sample,
)
from mea_cli.data.splits import (
    SplitError,
    group_folds,
    grouped_split,
    labelled_mask,
    leaked_groups,
    parse_folds,
    parse_fractions,
    read_split_of,
    store_groups,
    write_split_store,
)
from mea_cli.extract.labels import read_labels

DIMS = {"text": 4, "vision": 3, "audio": 5}


def write_store(
    path: Path,
    n: int = 36,
    groups: int | None = 6,
    task: str = "multiclass",
    seed: int = 0,
    scale: float = 1.0,
) -> Path:
    """A tiny labelled store without splits; class / value ``(i // 6) % 3`` shifts every
    feature (so every speaker has every class); ``groups`` speakers (``spk<i % groups>``) or
    no group column (None)."""
    rng = np.random.default_rng(seed)
    schemas = [
        ModalitySchema(m, tuple(f"{m}{i}" for i in range(d)), ExtractorInfo("test", "0", {}), 10.0)
        for m, d in DIMS.items()
    ]
    names = ("a", "b", "c") if task == "multiclass" else ("sentiment",)
    attrs = {"group_by": "speaker"} if groups else {}
    with FeatureStoreWriter(path, schemas, dataset="test", task=task, label_names=names, attrs=attrs) as w:
        for i in range(n):
            c = (i // 6) % 3
            y = np.eye(3, dtype=np.float32)[c] if task == "multiclass" else np.array([scale * (c - 1)], np.float32)
            feats = {m: (rng.normal(size=(4, d)) + c).astype(np.float32) for m, d in DIMS.items()}
            group = f"spk{i % groups}" if groups else ""
            w.add(Sample(id=f"s{i:02d}", features=feats, video=f"v{i // 2}", label=y, group=group))
    return path


# ------------------------------------------------------------------ the property: no leak
def _layouts(trials: int):
    rng = np.random.default_rng(2026)
    for _ in range(trials):
        n_groups = int(rng.integers(3, 12))
        sizes = rng.integers(1, 9, n_groups)
        groups = np.array([f"g{g}" for g, s in enumerate(sizes) for _ in range(s)], dtype=object)
        groups = groups[rng.permutation(len(groups))]
        mask = rng.random(len(groups)) > 0.1
        if len(set(groups[mask])) < 3:
            continue
        yield groups, mask, int(rng.integers(0, 1000))


def test_no_group_is_ever_in_two_splits_over_random_layouts() -> None:
    checked = 0
    for groups, mask, seed in _layouts(150):
        n_groups = len(set(groups[mask]))
        split = grouped_split(groups, mask, (0.6, 0.2, 0.2), seed)
        assert leaked_groups(groups, split) == []
        assert set(split[mask]) == {"train", "valid", "test"} and set(split[~mask]) <= {""}
        for folds in ["loo", *range(2, n_groups + 1)]:
            try:
                columns = group_folds(groups, mask, folds, (0.7, 0.15, 0.15), seed)
            except SplitError as err:  # a fold left fewer than two groups for train and valid
                assert folds != "loo" and "use fewer folds" in str(err)
                continue
            tested: list[str] = []
            for col in columns:
                assert leaked_groups(groups, col) == []
                assert set(col[mask]) == {"train", "valid", "test"} and set(col[~mask]) <= {""}
                tested += sorted(set(groups[col == "test"]))
            # the test folds partition the labelled groups: each group is tested exactly once
            assert sorted(tested) == sorted(set(groups[mask]))
            checked += 1
    assert checked > 200


def test_splits_are_deterministic_by_seed() -> None:
    groups = np.array([f"g{i % 9}" for i in range(90)], dtype=object)
    mask = np.ones(90, bool)
    a = grouped_split(groups, mask, seed=4)
    assert (a == grouped_split(groups, mask, seed=4)).all()
    assert any((grouped_split(groups, mask, seed=s) != a).any() for s in range(5, 10))
    f1 = group_folds(groups, mask, 3, seed=4)
    assert all((x == y).all() for x, y in zip(f1, group_folds(groups, mask, 3, seed=4), strict=True))
    # leave-one-group-out: fold k tests the k-th group in sorted order
    loo = group_folds(groups, mask, "loo", seed=0)
    assert [sorted(set(groups[c == "test"])) for c in loo] == [[f"g{i}"] for i in range(9)]


def test_shares_are_met_when_groups_are_small() -> None:
    groups = np.array([f"g{i}" for i in range(100)], dtype=object)  # 100 groups of one sample
    split = grouped_split(groups, np.ones(100, bool), (0.7, 0.15, 0.15), seed=1)
    assert [int((split == s).sum()) for s in ("train", "valid", "test")] == [70, 15, 15]
    folds = group_folds(groups, np.ones(100, bool), 4, (0.8, 0.2, 0.0001), seed=1)
    for col in folds:  # 25 test; the other 75 split 80:20 -> 60 train, 15 valid
        assert [int((col == s).sum()) for s in ("train", "valid", "test")] == [60, 15, 25]


def test_requests_that_cannot_be_met_are_one_line_errors() -> None:
    assert parse_fractions(None) == (0.7, 0.15, 0.15)
    assert parse_fractions("0.8,0.1,0.1") == (0.8, 0.1, 0.1)
    for bad in ("0.8,0.2", "a,b,c", "0.9,0.2,0.1", "1,0,0"):
        with pytest.raises(SplitError, match="--split-fractions"):
            parse_fractions(bad)
    assert parse_folds("LOO") == "loo" and parse_folds("5") == 5 and parse_folds(None) is None
    for bad in ("1", "x"):
        with pytest.raises(SplitError, match="--folds"):
            parse_folds(bad)
    two = np.array(["a", "a", "b"], dtype=object)
    with pytest.raises(SplitError, match="at least 3 groups"):
        grouped_split(two, np.ones(3, bool))
    four = np.array(["a", "b", "c", "d"], dtype=object)
    with pytest.raises(SplitError, match="--folds 5 needs at least 5 groups"):
        group_folds(four, np.ones(4, bool), 5)


# ------------------------------------------------------------------ the store's group column
def test_group_column_round_trips_and_a_store_without_one_groups_by_video(tmp_path: Path) -> None:
    with FeatureStore(write_store(tmp_path / "g.h5")) as store:
        assert store.samples.group is not None and store[7].group == "spk1"
        groups, by = store_groups(store, None)
        assert by == "speaker" and groups[7] == "spk1"
        assert store_groups(store, "group")[1] == "speaker"
        assert list(store_groups(store, "video")[0][:3]) == ["v0", "v0", "v1"]
        with pytest.raises(SplitError, match="groups by 'speaker'"):
            store_groups(store, "session")
    with FeatureStore(write_store(tmp_path / "v.h5", groups=None)) as store:
        assert store.samples.group is None and store[0].group == ""
        assert store_groups(store, None)[1] == "video"
        with pytest.raises(SplitError, match="no group column"):
            store_groups(store, "speaker")


def test_info_says_what_split_by_can_use(tmp_path: Path, mea) -> None:
    code, out, err = mea("info", str(write_store(tmp_path / "g.h5")))
    assert code == 0, err
    assert "groups (--split-by): videos=18, speaker=6" in out
    code, out, _ = mea("info", str(write_store(tmp_path / "v.h5", groups=None)), "--json")
    assert json.loads(out)["groups"] == {"videos": 18}


def test_labels_csv_group_column(tmp_path: Path) -> None:
    csv = tmp_path / "labels.csv"
    csv.write_text("video,label,Speaker\na.mp4,happy,03\nb.mp4,sad,08\nc.mp4,sad,\n")
    lf = read_labels(csv)
    assert lf.group_by == "speaker"
    assert [s.group for s in lf.segments] == ["03", "08", ""]
    assert read_labels(_plain(tmp_path)).group_by == ""


def _plain(tmp_path: Path) -> Path:
    p = tmp_path / "plain.csv"
    p.write_text("video,label\na.mp4,1.0\nb.mp4,2.0\n")
    return p


def test_split_store_links_the_features_and_records_where_it_came_from(tmp_path: Path) -> None:
    src = write_store(tmp_path / "src.h5")
    with FeatureStore(src) as store:
        groups, _ = store_groups(store, None)
        split = grouped_split(groups, labelled_mask(store), seed=3)
        first = store[5]
    out = write_split_store(src, tmp_path / "view.h5", split, {"fold": "split"})
    assert out.stat().st_size < src.stat().st_size
    with FeatureStore(out) as view:
        assert list(view.samples.split) == list(split)
        s = view[5]
        assert s.group == first.group and np.array_equal(s.label, first.label)
        for m in DIMS:
            assert np.array_equal(s.features[m], first.features[m])
        assert read_split_of(view) == {"source": str(src.resolve()), "fold": "split"}
    with FeatureStore(src) as plain:
        assert read_split_of(plain) is None


# ------------------------------------------------------------------ mea train --folds
@pytest.mark.slow
def test_train_folds_end_to_end_keeps_each_fold_and_reports_mean_std(
    tmp_path: Path, mea, one_torch_thread
) -> None:
    store = write_store(tmp_path / "cls.h5")
    runs = tmp_path / "runs"
    args = ["train", str(store), "--task", "classification", "--model", "tiny", "--epochs", "1",
            "--folds", "3", "--split-by", "speaker", "--runs-dir", str(runs), "--name", "cv",
            "--device", "cpu"]  # fmt: skip
    with tiny_model.registered():
        code, out, err = mea(*args)
        assert code == 0, err
        summary = json.loads((runs / "cv" / "folds.json").read_text())
        assert [f["fold"] for f in summary["folds"]] == ["1", "2", "3"]
        tested = []
        for f in summary["folds"]:
            fold_dir = runs / "cv" / "folds" / f["fold"]
            cfg = json.loads((fold_dir / "config.json").read_text())
            assert cfg["features"] == str((fold_dir / "features.h5").resolve())
            with FeatureStore(fold_dir / "features.h5") as fs:
                groups, _ = store_groups(fs, "speaker")
                assert leaked_groups(groups, fs.samples.split) == []
                tested += sorted(set(groups[fs.samples.split == "test"]))
            # the fold's row is its run's own test metrics (one seed)
            own = json.loads((fold_dir / "metrics.json").read_text())["test"]
            assert f["test"]["f1_macro"] == pytest.approx(own["f1_macro"])
        assert sorted(tested) == [f"spk{i}" for i in range(6)]
        vals = [f["test"]["acc"] for f in summary["folds"]]
        assert summary["test_mean_std"]["acc"]["mean"] == pytest.approx(np.mean(vals))
        assert summary["test_mean_std"]["acc"]["std"] == pytest.approx(np.std(vals, ddof=1))
        flat = " ".join(out.split())  # the title holds the tmp path: where it wraps varies
        assert "mean ± std" in flat and "3 folds grouped" in flat
        # the same command again trains nothing: every fold is reused
        logs = {p: p.read_text() for p in (runs / "cv" / "folds").rglob("log.jsonl")}
        code, out2, err = mea(*args)
        assert code == 0, err
        assert "epoch" not in err and {p: p.read_text() for p in logs} == logs
        # another seed under the same name is refused, and a request that cannot be met
        # leaves nothing behind
        code, _, err = mea(*args[:-4], "--split-seed", "7", *args[-4:])
        assert code == 2 and "holds other splits" in err
        code, _, err = mea(*[a if a != "3" else "9" for a in args[:-3]], "cv9", "--device", "cpu")
        assert code == 2 and "needs at least 9 groups" in err
        assert not (runs / "cv9").exists()


@pytest.mark.slow
def test_train_split_by_video_makes_one_grouped_split(tmp_path: Path, mea, one_torch_thread) -> None:
    store = write_store(tmp_path / "cls.h5", groups=None)
    runs = tmp_path / "runs"
    with tiny_model.registered():
        code, out, err = mea(
            "train", str(store), "--task", "classification", "--model", "tiny", "--epochs", "1",
            "--split-by", "video", "--split-fractions", "0.6,0.2,0.2", "--runs-dir", str(runs),
            "--name", "g", "--device", "cpu",
        )  # fmt: skip
    assert code == 0, err
    with FeatureStore(runs / "g" / "split.h5") as fs:
        assert leaked_groups(fs.samples.video, fs.samples.split) == []
        assert json.loads(fs.meta.attrs["split_of"])["by"] == "video"
    assert json.loads((runs / "g" / "config.json").read_text())["features"].endswith("split.h5")
    assert (runs / "g" / "metrics.json").is_file()
