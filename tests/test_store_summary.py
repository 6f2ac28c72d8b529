"""Per-sample summaries in the feature store (``/summary/<name>``: openSMILE's audio
Functionals): round trip, optional (stores without them open and batch as before), validated,
carried by the split files, the dataset and the batch; the ``functionals`` baseline that reads
them records it and refuses data without them."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from test_features import _samples, _write

from mea_cli.artifacts.features import ExtractorInfo, FeatureStore, ModalitySchema
from mea_cli.artifacts.store_info import summarize
from mea_cli.data.dataset import FeatureDataset, collate
from mea_cli.data.splits import write_split_store
from mea_cli.errors import FeatureStoreError
from mea_cli.models import config_from_dict

SUMMARY = ModalitySchema(
    "audio",
    ("F0semitoneFrom27.5Hz_sma3nz_amean", "loudness_sma3_amean", "jitterLocal_sma3nz_amean"),
    ExtractorInfo("opensmile", "2.6", {"feature_set": "eGeMAPSv02", "feature_level": "Functionals"}),
)


def _with_summary(path: Path) -> np.ndarray:
    """The unit store of test_features with a 3-value audio summary (sample 2 without signal:
    NaN); returns the rows written."""
    samples = _samples(np.random.default_rng(0))
    rows = np.arange(12, dtype=np.float32).reshape(4, 3) / 7
    rows[2] = np.nan
    for s, row in zip(samples, rows, strict=True):
        s.summary = {"audio": row}
    _write(path, samples, summaries=[SUMMARY])
    return rows


def test_round_trip_info_and_old_store(tmp_path: Path) -> None:
    rows = _with_summary(tmp_path / "s.h5")
    with FeatureStore(tmp_path / "s.h5") as st:
        st.check_values()  # NaN rows are "no signal", not an error
        assert st.summaries["audio"].same_as(SUMMARY)
        np.testing.assert_array_equal(st.summary("audio"), rows)
        np.testing.assert_array_equal(st[1].summary["audio"], rows[1])
        assert set(st.modalities) == {"text", "vision", "audio"}  # /summary is no modality
        info = summarize(st)["summaries"]["audio"]
        assert info["dim"] == 3 and info["missing_rows"] == 1
        assert info["extractor"]["parameters"]["feature_level"] == "Functionals"
    _write(tmp_path / "old.h5", _samples(np.random.default_rng(0)))  # the layout before
    with FeatureStore(tmp_path / "old.h5") as st:
        assert st.summaries == {} and st[0].summary == {}
        assert summarize(st)["summaries"] == {}
        batch = collate([FeatureDataset(st, "train")[0]])
        assert batch.summary is None


def _replace(f: h5py.File, data: np.ndarray) -> None:
    """``/summary/audio`` replaced by ``data``, its attributes kept."""
    attrs = dict(f["summary/audio"].attrs)
    del f["summary/audio"]
    f["summary"].create_dataset("audio", data=data).attrs.update(attrs)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: _replace(f, np.zeros((3, 3), np.float32)), "has shape (3, 3), expected (4, 3)"),
        (lambda f: _replace(f, np.zeros((4, 3), "S3")), "/summary/audio has dtype |S3"),
        (lambda f: f["summary/audio"].attrs.__setitem__("feature_names", '["a"]'), "expected (4, 1)"),
        (lambda f: f["summary/audio"].attrs.__delitem__("extractor"), "lacks valid"),
    ],
)
def test_summary_invariants(tmp_path: Path, mutate, message: str) -> None:  # noqa: ANN001
    path = tmp_path / "s.h5"
    _with_summary(path)
    with h5py.File(path, "r+") as f:
        mutate(f)
    with pytest.raises(FeatureStoreError) as info:
        FeatureStore(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_infinite_summary_refused_and_writer_checks(tmp_path: Path) -> None:
    path = tmp_path / "s.h5"
    _with_summary(path)
    with h5py.File(path, "r+") as f:
        f["summary/audio"][1, 2] = np.inf
    with FeatureStore(path) as st, pytest.raises(FeatureStoreError, match="'vid1_0'"):
        st.check_values()
    samples = _samples(np.random.default_rng(0))
    with pytest.raises(ValueError, match="summaries \\[\\] do not match"):
        _write(tmp_path / "w.h5", samples, summaries=[SUMMARY])
    samples[0].summary = {"audio": np.zeros(2)}
    with pytest.raises(ValueError, match="summary audio has shape"):
        _write(tmp_path / "w.h5", samples[:1], summaries=[SUMMARY])
    assert not (tmp_path / "w.h5").exists()


def test_split_store_dataset_and_batch_carry_it(tmp_path: Path) -> None:
    """A fold's split store reads the source's summary; the dataset serves each sample's raw
    row (never normalised or padded) and the batch stacks them in its order."""
    rows = _with_summary(tmp_path / "s.h5")
    split = np.array(["valid", "train", "train", "train"], dtype=object)
    out = write_split_store(tmp_path / "s.h5", tmp_path / "fold.h5", split, {"fold": 1})
    with FeatureStore(out) as st:
        np.testing.assert_array_equal(st.summary("audio"), rows)
        ds = FeatureDataset(st, "train")
        items = [ds[k] for k in range(len(ds))]
        batch = collate(items[::-1])
        np.testing.assert_array_equal(batch.summary["audio"].numpy(), rows[[3, 2, 1]])
        assert batch.to("cpu").summary["audio"].dtype == batch.summary["audio"].dtype
        lazy = FeatureDataset(st, "train", preload=False)
        np.testing.assert_array_equal(lazy[0]["summary"]["audio"], rows[1])


def _summary_store(src: Path, out: Path, noise: float) -> None:
    """``src`` with a 4-value audio summary (the first value the label plus noise)."""
    from mea_cli.artifacts.features import FeatureStoreWriter

    rng = np.random.default_rng(5)
    schema = ModalitySchema(
        "audio", ("a", "b", "c", "d"), ExtractorInfo("opensmile", "2.6", {"feature_level": "Functionals"})
    )
    with FeatureStore(src) as st, FeatureStoreWriter(
        out, list(st.modalities.values()), dataset=st.meta.dataset, task=st.meta.task,
        label_names=st.meta.label_names, attrs=dict(st.meta.attrs), summaries=[schema],
    ) as w:  # fmt: skip
        for s in st:
            s.summary = {"audio": np.r_[s.label[0] + noise * rng.normal(), rng.normal(size=3)]}
            w.add(s)


def test_align_keeps_each_samples_summary(tmp_path: Path) -> None:
    """``mea align`` collapses the sequences onto words; the per-sample summary is unchanged."""
    from mea_cli.align.store import align_store
    from mea_cli.data.synth import write_synthetic

    write_synthetic(tmp_path / "s.h5", "mosi", n=6, seed=3, max_seconds=2.0)
    _summary_store(tmp_path / "s.h5", tmp_path / "w.h5", noise=0.1)
    align_store(tmp_path / "w.h5", tmp_path / "a.h5")
    with FeatureStore(tmp_path / "w.h5") as src, FeatureStore(tmp_path / "a.h5") as out:
        rows = [src.index_of(i) for i in out.samples.id]
        assert len(rows) == 6 and out.summaries["audio"].same_as(src.summaries["audio"])
        np.testing.assert_array_equal(out.summary("audio"), src.summary("audio")[rows])


@pytest.mark.slow
def test_functionals_uses_the_summary_and_refuses_data_without_it(
    mea, synth_mosi: Path, tmp_path: Path, one_torch_thread: None  # noqa: ANN001
) -> None:
    """Trained on a store with the summary, ``audio=auto`` uses it (recorded in the config);
    ``mea eval`` of that model on a store without it is one line, exit 2, nothing written."""
    store = tmp_path / "with.h5"
    _summary_store(synth_mosi, store, noise=0.05)
    runs = tmp_path / "runs"
    code, _, err = mea(
        "train", str(store), "--task", "regression", "--model", "functionals",
        "--runs-dir", str(runs), "--name", "f", "--threads", "1", "--set", "c_grid=[1.0]",
    )  # fmt: skip
    assert code == 0, err
    cfg = json.loads((runs / "f" / "config.json").read_text())["model_config"]
    assert cfg["audio"] == "auto" and cfg["summary_dims"] == {"audio": 4}
    assert config_from_dict("functionals", cfg).audio_block == "both"
    preds = tmp_path / "p.csv"
    code, out, err = mea(
        "eval", str(runs / "f"), "--features", str(synth_mosi), "--predictions", str(preds)
    )
    assert code == 2 and out == "" and not preds.exists()
    assert err.count("\n") == 1 and "openSMILE's audio functionals (4 per sample" in err


def test_audio_block_resolution_and_refusal() -> None:
    """``audio=auto``: the functionals beside the LLD statistics when the store has them, the
    statistics alone when not; asking for them without them is refused; the summary's width
    joins (``both``) or replaces (``opensmile``) the audio statistics."""
    from mea_cli.config import ConfigError
    from mea_cli.models.functionals.config import FunctionalsConfig

    dims = {"text": 2, "vision": 3, "audio": 5}
    plain = FunctionalsConfig(input_dims=dims)
    assert plain.audio_block == "lld" and not plain.uses_summary
    auto = FunctionalsConfig(input_dims=dims, summary_dims={"audio": 88})
    assert auto.audio_block == "both" and auto.uses_summary
    per = plain.stats_per_feature  # 8: mean std min max slope p10 p50 p90
    assert plain.summary_size == (2 + 3 + 5) * per + 6
    assert auto.summary_size == plain.summary_size + 88
    only = FunctionalsConfig(input_dims=dims, summary_dims={"audio": 88}, audio="opensmile")
    assert only.summary_size == (2 + 3) * per + 4 + 88
    with pytest.raises(ConfigError, match="audio=opensmile needs a store with openSMILE"):
        FunctionalsConfig(input_dims=dims, audio="opensmile")
