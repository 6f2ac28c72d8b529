"""``merge_stores`` on tiny stores written here: each refusal word for word (and nothing
written), and what a merge keeps, sums and orders (computed by hand for two shards)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import pytest
from rich.console import Console

from mea_cli.artifacts.features import (
    ExtractorInfo,
    FeatureStore,
    FeatureStoreWriter,
    ModalitySchema,
    Sample,
)
from mea_cli.artifacts.store_info import render_summary, summarize
from mea_cli.errors import FeatureStoreError
from mea_cli.extract.merge import MergeError, merge_stores

VISION = ModalitySchema("vision", ("a", "b"), ExtractorInfo("mp", "1", {"k": 1}), 15.0)
AUDIO = ModalitySchema("audio", ("e",), ExtractorInfo("smile", "2", {"options": "/here"}), 100.0)


def shard(
    path: Path,
    ids: Sequence[tuple[str, str, float]],
    schemas: Sequence[ModalitySchema] = (VISION, AUDIO),
    attrs: dict | None = None,
    **meta: object,
) -> Path:
    """A store of samples ``(id, video, start)``; features are their start repeated."""
    meta = {"dataset": "unit", "task": "regression", "label_names": ("sentiment",), **meta}
    with FeatureStoreWriter(path, schemas, attrs=attrs or {}, **meta) as w:
        for sid, video, start in ids:
            value = start if np.isfinite(start) else -1.0
            feats = {s.name: np.full((2, len(s.feature_names)), value) for s in schemas}
            w.add(Sample(sid, feats, video=video, start=start, end=start + 1, label=np.ones(1)))
        w.add_failure(f"{path.stem}.mp4", "decode", "broken")
    return path


@pytest.fixture()
def a(tmp_path: Path) -> Path:
    return shard(tmp_path / "a.h5", [("v2_1", "v2", 1.0), ("v1_3", "v1", 3.0)])


def _refused(tmp_path: Path, inputs: list[Path], message: str) -> None:
    out = tmp_path / "m.h5"
    with pytest.raises(MergeError) as err:
        merge_stores(inputs, out)
    assert str(err.value) == message
    assert not out.exists()


def test_no_input_and_output_among_inputs(tmp_path: Path, a: Path) -> None:
    _refused(tmp_path, [], "mea merge needs at least one input store")
    with pytest.raises(MergeError) as err:
        merge_stores([a], a)
    assert str(err.value) == f"{a}: the output is also an input"
    (tmp_path / "link.h5").symlink_to(a)
    with pytest.raises(MergeError, match="the output is also an input"):
        merge_stores([a], tmp_path / "link.h5")


def test_modalities_schema_and_meta_must_agree(tmp_path: Path, a: Path) -> None:
    ids = [("v3_0", "v3", 0.0)]
    b = shard(tmp_path / "b.h5", ids, (VISION,))
    _refused(tmp_path, [a, b], f"{b}: modalities ['vision'] differ from {a}'s ['audio', 'vision']")
    renamed = ModalitySchema("audio", ("f",), AUDIO.extractor, 100.0)
    b = shard(tmp_path / "c.h5", ids, (VISION, renamed))
    _refused(tmp_path, [a, b], f"{b}: audio feature names differ from {a}'s")
    other = ModalitySchema("vision", ("a", "b"), ExtractorInfo("mp", "1", {"k": 2}), 15.0)
    b = shard(tmp_path / "d.h5", ids, (other, AUDIO))
    _refused(
        tmp_path,
        [a, b],
        f"{b}: vision extractor provenance differs from {a}'s (parameters.k 2 vs 1)",
    )  # the key that differs, not both records (kilobytes of JSON in a real store)
    slower = ModalitySchema("vision", ("a", "b"), VISION.extractor, 30.0)
    b = shard(tmp_path / "e.h5", ids, (slower, AUDIO))
    _refused(
        tmp_path,
        [a, b],
        f"{b}: vision extractor provenance differs from {a}'s (nominal rate 30.0 Hz vs 15.0 Hz)",
    )
    for i, (field, value, shown) in enumerate(
        [
            ("dataset", "mosi", "'mosi' differs from {a}'s 'unit'"),
            ("task", "", "'' differs from {a}'s 'regression'"),
            ("label_names", ("valence",), "('valence',) differs from {a}'s ('sentiment',)"),
        ]
    ):
        b = shard(tmp_path / f"f{i}.h5", ids, **{field: value})
        _refused(tmp_path, [a, b], f"{b}: {field} {shown.format(a=a)}")


def test_duplicate_ids_and_bad_values_are_refused(tmp_path: Path, a: Path) -> None:
    b = shard(tmp_path / "b.h5", [("v9_0", "v9", 0.0), ("v1_3", "v1", 3.0)])
    _refused(tmp_path, [a, b], f"{b}: duplicate sample id 'v1_3' (also in {a})")
    with h5py.File(b, "r+") as f:
        f["vision/data"][0, 0] = np.nan
    out = tmp_path / "m.h5"
    with pytest.raises(FeatureStoreError, match="non-finite value"):
        merge_stores([a, b], out)
    assert not out.exists()


def test_merge_orders_sums_and_keeps_attributes(tmp_path: Path) -> None:
    common = {"extract_videos": 2, "extract_text_oov": 1, "shard": "1/2", "kept": "yes"}
    a = shard(
        tmp_path / "a.h5",
        [("v2_1", "v2", 1.0), ("v1_3", "v1", 3.0)],
        attrs={**common, "extract_text_sources": json.dumps({"asr": 1, "srt": 1})},
    )
    b = shard(
        tmp_path / "b.h5",
        [("v1_0", "v1", 0.0), ("v3_x", "v3", float("nan"))],
        attrs={**common, "extract_videos": 3, "shard": "2/2", "kept": "not read",
               "extract_text_sources": json.dumps({"asr": 2})},
    )  # fmt: skip
    out = tmp_path / "m.h5"
    assert merge_stores([a, b], out) == 4
    with FeatureStore(out) as m:
        assert list(m.samples.id) == ["v1_0", "v1_3", "v2_1", "v3_x"]
        np.testing.assert_array_equal(m.sequence(m.index_of("v1_3"), "audio"), [[3.0], [3.0]])
        attrs = m.meta.attrs
        assert attrs["extract_videos"] == 5 and attrs["extract_text_oov"] == 2
        assert "extract_skipped_files" not in attrs and "shard" not in attrs
        assert attrs["kept"] == "yes"
        assert json.loads(attrs["extract_text_sources"]) == {"asr": 3, "srt": 1}
        assert json.loads(attrs["merged_from"]) == ["a.h5", "b.h5"]
        assert [(f.video, f.stage) for f in m.failures] == [
            ("a.mp4", "decode"),
            ("b.mp4", "decode"),
        ]
        assert m.modalities["audio"] == AUDIO and m.meta.dataset == "unit"


def test_a_file_given_twice_and_labels_ranges_that_differ_are_refused(
    tmp_path: Path, a: Path
) -> None:
    """The same shard twice said 'duplicate sample id'; two labels ranges merged into the first
    input's, so `mea train`'s scale depended on the order of the arguments."""
    _refused(tmp_path, [a, a], f"{a}: given twice ({a} is the same file)")
    r1 = shard(tmp_path / "r1.h5", [("x_1", "x", 1.0)], attrs={"label_range": [-3.0, 3.0]})
    r2 = shard(tmp_path / "r2.h5", [("y_1", "y", 1.0)], attrs={"label_range": [-5.0, 5.0]})
    _refused(tmp_path, [r1, r2], f"{r2}: label_range [-5.0, 5.0] differs from {r1}'s [-3.0, 3.0]")
    g = shard(tmp_path / "g.h5", [("z_1", "z", 1.0)],
              attrs={"label_range": [-3.0, 3.0], "group_by": "speaker"})  # fmt: skip
    _refused(tmp_path, [r1, g], f"{g}: group_by 'speaker' differs from {r1}'s None")


def test_shards_not_given_are_said_and_recorded(tmp_path: Path) -> None:
    """Shards 1/3 and 2/3 merged silently into a store without shard 3's videos."""
    s1 = shard(tmp_path / "s1.h5", [("v0_1", "v0", 1.0)], attrs={"shard": "1/3"})
    s2 = shard(tmp_path / "s2.h5", [("v1_1", "v1", 1.0)], attrs={"shard": "2/3"})
    said: list[str] = []
    assert merge_stores([s1, s2], tmp_path / "m.h5", said.append) == 2
    out = tmp_path / "m.h5"
    assert said == [f"shards 1/3, 2/3 merged; 3/3 not given: {out} lacks their videos"]
    with FeatureStore(tmp_path / "m.h5") as m:
        assert json.loads(m.meta.attrs["shards_missing"]) == ["3/3"]
    console = Console(record=True, width=300)
    with FeatureStore(tmp_path / "m.h5") as m:
        render_summary(summarize(m), console)
    assert "merged from s1.h5, s2.h5; shards 3/3 not given: their videos are missing" in (
        console.export_text()
    )
    console = Console(record=True, width=300)
    with FeatureStore(s1) as one:
        render_summary(summarize(one), console)
    assert "extraction shard 1/3 of ?" in console.export_text()
    s3 = shard(tmp_path / "s3.h5", [("v2_1", "v2", 1.0)], attrs={"shard": "3/3"})
    said.clear()
    merge_stores([s1, s2, s3], tmp_path / "all.h5", said.append)
    with FeatureStore(tmp_path / "all.h5") as m:
        assert said == [] and "shards_missing" not in m.meta.attrs
