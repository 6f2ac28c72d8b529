"""benchmarks/bench_linear_summaries.py: the per-clip summaries, their per-group standardisation,
and a run on a store whose classes a linear model separates."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from mea_cli.artifacts.features import ExtractorInfo, FeatureStoreWriter, ModalitySchema, Sample

sys.path.append(str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_linear_summaries as bench  # noqa: E402


def test_voiced_means_leave_out_the_steps_without_voice() -> None:
    # column 1 is the voiced-only descriptor: 0 on steps 0 and 2
    x = np.array([[1.0, 0.0], [3.0, 2.0], [5.0, 0.0], [7.0, 4.0]], np.float32)
    got = bench.summarise(x, "mean+voiced", voiced_column=1)
    np.testing.assert_allclose(got, [4.0, 1.5, 5.0, 3.0, 0.5])  # all means, voiced means, fraction
    np.testing.assert_allclose(bench.summarise(x, "mean", None), [4.0, 1.5])
    stats = bench.summarise(x, "stats", None)
    assert stats.shape == (14,) and stats[4] == 1.0 and stats[6] == 7.0  # min, max of column 0


def test_each_group_is_standardised_on_its_own_samples() -> None:
    x = np.array([[1.0], [3.0], [10.0], [30.0]])
    groups = np.array(["a", "a", "b", "b"])
    out = bench.standardise(x, groups, np.array([True, True, False, False]))
    np.testing.assert_allclose(out[:, 0], [-1.0, 1.0, -1.0, 1.0], atol=1e-6)
    on_train = bench.standardise(x, None, np.array([True, True, False, False]))
    np.testing.assert_allclose(on_train[:, 0], [-1.0, 1.0, 8.0, 28.0], atol=1e-6)


def _store(path: Path) -> Path:
    names = {"text": ("t0",), "vision": ("v0",), "audio": ("Loudness_sma3", "F0semitone_sma3nz")}
    schemas = [ModalitySchema(m, n, ExtractorInfo("test", "0", {}), 10.0) for m, n in names.items()]
    rng = np.random.default_rng(0)
    splits = ["train"] * 24 + ["valid"] * 8 + ["test"] * 8
    with FeatureStoreWriter(path, schemas, dataset="test", task="multiclass", label_names=("a", "b"),
                            attrs={"group_by": "group"}) as w:  # fmt: skip
        for i, split in enumerate(splits):
            c = i % 2
            audio = rng.normal(3.0 * c, 1.0, size=(6, 2)).astype(np.float32)
            feats = {"text": np.zeros((1, 1), np.float32), "vision": np.zeros((1, 1), np.float32),
                     "audio": audio}  # fmt: skip
            w.add(Sample(id=f"s{i:02d}", features=feats, video=f"v{i}", split=split,
                         label=np.eye(2, dtype=np.float32)[c], group=f"g{(i // 2) % 4}"))  # fmt: skip
            # each group holds both classes: standardising per group keeps the classes apart
    return path


def test_a_separable_store_is_read_per_group_and_scored(tmp_path: Path, capsys) -> None:
    assert bench.main([str(_store(tmp_path / "s.h5")), "--test"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "2 descriptors, 40 samples; standardised per group" in out[0]
    assert [line.split()[0] for line in out[1:]] == list(bench.KINDS)
    for line in out[1:]:
        valid = float(line.split("macro-F1 ")[1].split()[0])
        assert valid == pytest.approx(1.0)  # classes 3 standard deviations apart
