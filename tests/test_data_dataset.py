"""NormStats (train only), FeatureDataset, collate with masks, the bucketed sampler and loader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mea_cli.artifacts.features import (
    ExtractorInfo,
    FeatureStore,
    FeatureStoreWriter,
    ModalitySchema,
    Sample,
)
from mea_cli.batch import Batch
from mea_cli.data.dataset import (
    BucketBatchSampler,
    FeatureDataset,
    NormStats,
    NormStatsError,
    collate,
    make_loader,
)


def test_normstats_use_train_only(synth_mosi: Path) -> None:
    with FeatureStore(synth_mosi) as store:
        stats = NormStats.fit(store)
        for m in store.modalities:
            rows = np.concatenate([store.sequence(int(i), m) for i in store.split_indices("train")])
            np.testing.assert_allclose(stats.mean[m], rows.mean(axis=0), rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(stats.std[m], rows.std(axis=0), rtol=1e-4, atol=1e-5)
            assert stats.count[m] == len(rows)
            everything = store.array(m)[0]
            assert not np.allclose(stats.mean[m], everything.mean(axis=0), atol=1e-7)
        back = NormStats.from_dict(json.loads(json.dumps(stats.to_dict())))
        for m in store.modalities:
            np.testing.assert_array_equal(back.mean[m], stats.mean[m])
            np.testing.assert_array_equal(back.std[m], stats.std[m])
    with pytest.raises(NormStatsError, match="malformed"):
        NormStats.from_dict({"modalities": {"text": {"mean": [0.0]}}})


def _tiny(path: Path) -> Path:
    """Six samples; vision is constant in train (std floor) and empty for two samples."""
    info = ExtractorInfo("test")
    schemas = [ModalitySchema("text", ("a", "b"), info), ModalitySchema("vision", ("c",), info)]
    lens = [(3, 2), (1, 0), (4, 5), (2, 0), (5, 1), (2, 3)]
    splits = ["train", "train", "train", "valid", "test", "test"]
    with FeatureStoreWriter(path, schemas, dataset="t", task="regression", label_names=["y"]) as w:
        for i, ((lt, lv), sp) in enumerate(zip(lens, splits, strict=True)):
            text = np.arange(lt * 2, dtype=np.float32).reshape(lt, 2) + 10 * i
            vision = np.full((lv, 1), 7.0 if sp == "train" else float(i), np.float32)
            w.add(
                Sample(
                    f"s{i}", {"text": text, "vision": vision}, split=sp, label=np.array([i / 10])
                )
            )
    return path


def test_dataset_items_collate_masks_and_empty_sequences(tmp_path: Path) -> None:
    with FeatureStore(_tiny(tmp_path / "t.h5")) as store:
        stats = NormStats.fit(store)
        assert stats.std["vision"][0] == 1.0 and stats.mean["vision"][0] == 7.0  # floor
        for preload in (True, False):
            ds = FeatureDataset(store, "test", stats, preload=preload)
            assert len(ds) == 2 and ds.ids == ["s4", "s5"]
            item = ds[1]
            want = (store.sequence(5, "text") - stats.mean["text"]) / stats.std["text"]
            np.testing.assert_allclose(item["features"]["text"], want, rtol=1e-6)
            np.testing.assert_array_equal(item["features"]["vision"], np.full((3, 1), 5.0 - 7.0))
            assert item["label"][0] == pytest.approx(0.5)
        ds = FeatureDataset(store, "train", None)
        np.testing.assert_array_equal(ds.lengths(), [5, 1, 9])
        batch = collate([ds[0], ds[1]])
        assert isinstance(batch, Batch) and batch.ids == ["s0", "s1"]
        assert batch.inputs["text"].shape == (2, 3, 2) and batch.inputs["vision"].shape == (2, 2, 1)
        assert batch.masks["vision"].tolist() == [[True, True], [False, False]]
        assert batch.masks["text"].tolist() == [[True, True, True], [True, False, False]]
        assert torch.all(batch.inputs["text"][1, 1:] == 0) and batch.labels.shape == (2, 1)
        np.testing.assert_array_equal(batch.inputs["text"][0].numpy(), store.sequence(0, "text"))
        empty = collate([ds[1]])  # only an empty vision sequence: still one (masked) step
        assert empty.inputs["vision"].shape == (1, 1, 1) and not empty.masks["vision"].any()
        fixed = collate([ds[0], ds[1]], pad_to={"text": 6})
        assert fixed.inputs["text"].shape == (2, 6, 2) and fixed.masks["text"].sum() == 4
        loader = make_loader(FeatureDataset(store, None, stats), batch_size=4, shuffle=True, seed=1)
        seen = [sid for b in loader for sid in b.ids]
        assert sorted(seen) == [f"s{i}" for i in range(6)]
        with pytest.raises(NormStatsError, match="has 2 features"):
            bad = NormStats(
                {"text": np.zeros(3), "vision": np.zeros(1)},
                {"text": np.ones(3), "vision": np.ones(1)},
                {},
            )
            FeatureDataset(store, "train", bad)


def test_sampler_deterministic_by_seed_and_epoch() -> None:
    lengths = np.random.default_rng(0).integers(1, 500, 300)
    a = BucketBatchSampler(lengths, 16, seed=3)
    b = BucketBatchSampler(lengths, 16, seed=3)
    assert a.batches() == b.batches()
    first = a.batches()
    a.set_epoch(1)
    assert a.batches() != first
    assert BucketBatchSampler(lengths, 16, seed=4).batches() != first
    assert sorted(i for batch in first for i in batch) == list(range(300))

    # buckets: far less padding than random batches of the same size
    def padded(batches: list[list[int]]) -> int:
        return sum(len(x) * lengths[x].max() - lengths[x].sum() for x in map(np.array, batches))

    rand = np.random.default_rng(0).permutation(300)
    assert padded(first) < 0.2 * padded([rand[i : i + 16].tolist() for i in range(0, 300, 16)])
    ordered = BucketBatchSampler(lengths, 16, shuffle=False).batches()
    assert ordered == BucketBatchSampler(lengths, 16, shuffle=False).batches()


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 120),
    batch=st.integers(1, 17),
    replicas=st.integers(1, 5),
    drop_last=st.booleans(),
    epoch=st.integers(0, 3),
)
def test_sampler_distributed_shares(
    n: int, batch: int, replicas: int, drop_last: bool, epoch: int
) -> None:
    lengths = np.arange(n) % 13
    shares = []
    counts = []
    for rank in range(replicas):
        s = BucketBatchSampler(
            lengths,
            batch,
            seed=5,
            num_replicas=replicas,
            rank=rank,
            drop_last=drop_last,
            pool_batches=3,
        )
        s.set_epoch(epoch)
        batches = list(s)
        assert len(batches) == len(s)
        assert all(len(b) <= batch for b in batches)
        if drop_last:
            assert all(len(b) == batch for b in batches)
        flat = [i for b in batches for i in b]
        counts.append(len(batches))
        shares.append(flat)
    assert len(set(counts)) == 1  # every rank takes the same number of steps
    if not drop_last:
        per_rank = -(-n // replicas)
        assert all(len(x) == per_rank for x in shares)
        assert set().union(*map(set, shares)) == set(range(n))  # everything is seen
        if n >= replicas:  # disjoint apart from the repeated padding
            total = sum(len(x) for x in shares)
            assert len(set().union(*map(set, shares))) == n and total - n < replicas
    else:
        flat_all = [i for x in shares for i in x]
        assert len(flat_all) == len(set(flat_all))  # disjoint
