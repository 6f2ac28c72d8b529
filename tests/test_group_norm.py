"""``train.normalise=group``: each group (speaker) standardised with its own statistics.

By hand on a tiny two-group store; the fallback to the train split's statistics; labels never
read; the default (``train``) unchanged; no group column refused; checkpoints; predict.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mea_cli.artifacts.features import (
    ExtractorInfo,
    FeatureStore,
    FeatureStoreWriter,
    ModalitySchema,
    Sample,
)
from mea_cli.data.dataset import FeatureDataset, GroupNorm, NormStats, NormStatsError

INFO = ExtractorInfo("test", "0", {})
# group A: samples 0 (train), 1 (train), 2 (test); group B: 3 (train), 4 (valid), 5 (test)
GROUPS = ["A", "A", "A", "B", "B", "B"]
SPLITS = ["train", "train", "test", "train", "valid", "test"]
# one audio feature, one step per sample except sample 0 (two steps); group B's second
# feature is constant (std 0: falls back to the train split's statistics)
AUDIO = [
    [[1.0, 5.0], [3.0, 7.0]],
    [[5.0, 9.0]],
    [[7.0, 11.0]],
    [[10.0, 2.0]],
    [[20.0, 2.0]],
    [[30.0, 2.0]],
]
SUMMARY = [[0.0], [2.0], [4.0], [10.0], [10.0], [40.0]]


def write_store(path: Path, groups: bool = True, labels: list[int] | None = None) -> Path:
    """The store above; vision is empty for every sample (no step: train statistics)."""
    schemas = [
        ModalitySchema("text", ("t0",), INFO, 10.0),
        ModalitySchema("vision", ("v0",), INFO, 10.0),
        ModalitySchema("audio", ("a0", "a1"), INFO, 10.0),
    ]
    summaries = [ModalitySchema("audio", ("f0",), INFO)]
    labels = labels or [0, 1, 0, 1, 0, 1]
    with FeatureStoreWriter(
        path, schemas, dataset="t", task="multiclass", label_names=["x", "y"],
        summaries=summaries,
    ) as w:  # fmt: skip
        for i in range(6):
            w.add(
                Sample(
                    f"s{i}",
                    {
                        "text": np.full((1, 1), float(i), np.float32),
                        "vision": np.zeros((0, 1), np.float32),
                        "audio": np.asarray(AUDIO[i], np.float32),
                    },
                    video=f"v{i}",
                    split=SPLITS[i],
                    label=np.eye(2, dtype=np.float32)[labels[i]],
                    group=GROUPS[i] if groups else "",
                    summary={"audio": np.asarray(SUMMARY[i], np.float32)},
                )
            )
    return path


def test_group_statistics_by_hand(tmp_path: Path) -> None:
    with FeatureStore(write_store(tmp_path / "g.h5")) as store:
        base = NormStats.fit(store, mode="group")
        # the train split (samples 0, 1, 3): audio rows 1,3,5,10 / 5,7,9,2
        np.testing.assert_allclose(base.mean["audio"], [19 / 4, 23 / 4])
        np.testing.assert_allclose(base.summary_mean["audio"], [4.0])  # 0, 2, 10
        np.testing.assert_allclose(base.summary_std["audio"], [np.sqrt(56 / 3)], rtol=1e-6)
        g = GroupNorm.fit(store, base)
        # A: rows 1,3,5,7 (every split) -> mean 4, std sqrt(5); second feature 5,7,9,11
        np.testing.assert_allclose(g.mean["A"]["audio"], [4.0, 8.0])
        np.testing.assert_allclose(g.std["A"]["audio"], [np.sqrt(5)] * 2, rtol=1e-6)
        # B: 10,20,30 -> mean 20, std sqrt(200/3); second feature constant: the fallback
        np.testing.assert_allclose(g.mean["B"]["audio"], [20.0, base.mean["audio"][1]])
        np.testing.assert_allclose(
            g.std["B"]["audio"], [np.sqrt(200 / 3), base.std["audio"][1]], rtol=1e-6
        )
        # text: one step per sample, three per group; vision: no step at all -> fallback
        np.testing.assert_allclose(g.mean["B"]["text"], [4.0])
        np.testing.assert_array_equal(g.mean["A"]["vision"], base.mean["vision"])
        # summaries: A 0,2,4 -> mean 2, std sqrt(8/3); B 10,10,40 -> mean 20, std sqrt(200)
        np.testing.assert_allclose(g.summary_mean["B"]["audio"], [20.0])
        np.testing.assert_allclose(g.summary_std["A"]["audio"], [np.sqrt(8 / 3)], rtol=1e-6)
        assert g.fallbacks == {"text": 0, "vision": 2, "audio": 1, "summary:audio": 0}
        ds = FeatureDataset(store, "test", base)
        item = ds[1]  # sample 5, group B
        np.testing.assert_allclose(
            item["features"]["audio"],
            [[10 / np.sqrt(200 / 3), (2.0 - base.mean["audio"][1]) / base.std["audio"][1]]],
            rtol=1e-5,
        )
        np.testing.assert_allclose(item["summary"]["audio"], [20 / np.sqrt(200)], rtol=1e-5)


def test_default_train_mode_unchanged(tmp_path: Path) -> None:
    """The default serves the train split's statistics to every sample, summaries raw."""
    with FeatureStore(write_store(tmp_path / "g.h5")) as store:
        stats = NormStats.fit(store)
        assert stats.mode == "train" and stats.summary_mean == {}
        item = FeatureDataset(store, "test", stats)[1]
        np.testing.assert_array_equal(
            item["features"]["audio"], stats.apply("audio", np.asarray(AUDIO[5], np.float32))
        )
        np.testing.assert_array_equal(item["summary"]["audio"], SUMMARY[5])
        d = stats.to_dict()
        assert d["mode"] == "train" and "summary" not in d
        old = {k: v for k, v in d.items() if k != "mode"}  # a checkpoint from before the option
        assert NormStats.from_dict(old).mode == "train"


def test_labels_never_read(tmp_path: Path) -> None:
    a = write_store(tmp_path / "a.h5", labels=[0, 1, 0, 1, 0, 1])
    b = write_store(tmp_path / "b.h5", labels=[1, 1, 0, 0, 1, 0])
    with FeatureStore(a) as sa, FeatureStore(b) as sb:
        ga = GroupNorm.fit(sa, NormStats.fit(sa, mode="group"))
        gb = GroupNorm.fit(sb, NormStats.fit(sb, mode="group"))
        for g in ("A", "B"):
            for m in ("text", "vision", "audio"):
                np.testing.assert_array_equal(ga.mean[g][m], gb.mean[g][m])
                np.testing.assert_array_equal(ga.std[g][m], gb.std[g][m])


def test_round_trip_and_no_groups(tmp_path: Path) -> None:
    with FeatureStore(write_store(tmp_path / "g.h5")) as store:
        stats = NormStats.fit(store, mode="group")
    back = NormStats.from_dict(json.loads(json.dumps(stats.to_dict())))
    assert back.mode == "group"
    np.testing.assert_array_equal(back.summary_std["audio"], stats.summary_std["audio"])
    no_groups = write_store(tmp_path / "n.h5", groups=False)
    with FeatureStore(no_groups) as store, pytest.raises(NormStatsError, match="has none"):
        NormStats.fit(store, mode="group")


def test_cli_train_eval_predict_and_refusals(
    mea, tmp_path: Path, one_torch_thread: None  # noqa: ANN001
) -> None:
    """``mea train`` records the mode in config and checkpoint; eval / predict on a store use
    its groups; predict on a video and a store without groups are refused in one line."""
    store = write_store(tmp_path / "g.h5")
    runs = tmp_path / "runs"
    opts = ["--task", "multiclass", "--model", "functionals", "--runs-dir", str(runs)]
    opts += ["--set", "train.normalise=group", "--set", "c_grid=[1.0]", "--threads", "1"]
    plain = write_store(tmp_path / "n.h5", groups=False)
    code, _, err = mea("train", str(plain), *opts, "--name", "n")
    assert code == 2 and err.count("\n") == 1 and "needs groups" in err
    assert not (runs / "n").exists()
    code, _, err = mea("train", str(store), *opts, "--name", "g")
    assert code == 0, err
    run = runs / "g"
    assert json.loads((run / "config.json").read_text())["train"]["normalise"] == "group"
    code, out, err = mea("eval", str(run), "--split", "test", "--json")
    assert code == 0, err
    test_metrics = json.loads((run / "metrics.json").read_text())["test"]
    assert json.loads(out)["metrics"]["acc"] == pytest.approx(test_metrics["acc"])
    code, out, err = mea("predict", str(store), "--ckpt", str(run), "--json")
    assert code == 0, err
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not read: refused before extraction")
    code, _, err = mea("predict", str(video), "--ckpt", str(run))
    assert code == 2 and err.count("\n") == 1 and "group column" in err
