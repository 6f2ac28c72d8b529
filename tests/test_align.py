"""``mea align``: word-level alignment checked against a hand computation, against a literal
port of the CMU Multimodal SDK's intersection rule, and on stores (provenance, failure rows,
bad input)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from mea_cli.align import EPSILON, align_store, collapse, overlaps
from mea_cli.artifacts.features import (
    ExtractorInfo,
    FeatureStore,
    FeatureStoreWriter,
    ModalitySchema,
    Sample,
    Word,
)

# words: A, B (B starts where A ends), C after a gap no vision step reaches
SPANS = np.array([[0.0, 1.0], [1.0, 2.2], [2.5, 3.0]])
# s1 straddles A and B (0.75 s in A, 0.5 s in B); s2 straddles B (0.7 s) and touches C at 2.5
STEPS = np.array([[0.0, 0.25], [0.25, 1.5], [1.5, 2.5]])
X = np.array([[1.0, 10.0], [3.0, 30.0], [5.0, 50.0]])


def test_overlaps_by_hand() -> None:
    np.testing.assert_allclose(
        overlaps(STEPS, SPANS),
        [[0.25, 0.75, 0.0], [0.0, 0.5, 0.7], [0.0, 0.0, 0.0]],  # touching at 2.5 is no overlap
    )


@pytest.mark.parametrize(
    ("reduce", "a", "b"),
    [
        ("mean", 0.25 * 1 + 0.75 * 3, (0.5 * 3 + 0.7 * 5) / 1.2),  # weighted by overlap
        ("plain-mean", (1 + 3) / 2, (3 + 5) / 2),  # the SDK examples' numpy.average
        ("max", 3.0, 5.0),
        ("last", 3.0, 5.0),
    ],
)
def test_collapse_by_hand(reduce: str, a: float, b: float) -> None:
    out, covered = collapse(X, STEPS, SPANS, reduce)
    np.testing.assert_allclose(out, [[a, 10 * a], [b, 10 * b], [0.0, 0.0]], rtol=1e-6)
    assert covered.tolist() == [True, True, False]  # the gap word: zeros, not covered
    assert out.dtype == np.float32


def test_last_and_max_differ_when_the_last_step_is_smaller() -> None:
    x = np.array([[4.0], [2.0]])
    steps = np.array([[0.0, 0.5], [0.5, 1.0]])
    span = np.array([[0.0, 1.0]])
    assert collapse(x, steps, span, "max")[0][0, 0] == 4.0
    assert collapse(x, steps, span, "last")[0][0, 0] == 2.0


def sdk_intersect_and_copy(ref: np.ndarray, sub: np.ndarray, features: np.ndarray, epsilon: float):
    """``mmdataset.__intersect_and_copy`` of the CMU Multimodal SDK
    (mmsdk/mmdatasdk/dataset/dataset.py), line for line."""
    ref_copy = ref.copy()
    ref_copy[1] = -ref_copy[1]
    ref_copy = ref_copy[::-1]
    sub_copy = sub.copy()
    sub_copy[:, 0] = -sub_copy[:, 0]
    where_intersect = np.all((sub_copy - ref_copy) > (-epsilon), axis=1)
    intersectors = sub[where_intersect, :]
    intersectors = np.concatenate(
        [np.maximum(intersectors[:, 0], ref[0])[:, None], np.minimum(intersectors[:, 1], ref[1])[:, None]],
        axis=1,
    )
    intersectors_features = features[where_intersect, :]
    where_nonzero_len = np.where(abs(intersectors[:, 0] - intersectors[:, 1]) > epsilon)
    return intersectors[where_nonzero_len], intersectors_features[where_nonzero_len]


def sdk_align(spans: np.ndarray, steps: np.ndarray, x: np.ndarray) -> list[np.ndarray | None]:
    """The SDK's ``align`` for one video with the examples' ``myavg`` collapse
    (``numpy.average(features, axis=0)``): None where the SDK writes no entry."""
    out: list[np.ndarray | None] = []
    for ref in spans:
        if abs(ref[0] - ref[1]) < EPSILON:  # the SDK skips zero-length words
            out.append(None)
            continue
        iv, feats = sdk_intersect_and_copy(ref, steps, x, EPSILON)
        out.append(None if len(iv) == 0 else np.average(feats, axis=0))
    return out


def test_equals_the_sdk_on_a_hand_case_and_on_random_intervals() -> None:
    rng = np.random.default_rng(0)
    cases = [(SPANS, STEPS, X)]
    for _ in range(20):
        edges = np.sort(rng.uniform(0, 5, 13))
        spans = np.stack([edges[:-1:2], edges[1::2]], axis=1)  # words with gaps between them
        starts = np.sort(rng.uniform(0, 5, 30))
        steps = np.stack([starts, starts + rng.uniform(0.01, 0.6, 30)], axis=1)
        cases.append((spans, steps, rng.normal(size=(30, 3))))
    for spans, steps, x in cases:
        ours, covered = collapse(x, steps, spans, "plain-mean")
        for k, theirs in enumerate(sdk_align(spans, steps, x)):
            assert covered[k] == (theirs is not None)
            expect = np.zeros(x.shape[1]) if theirs is None else theirs
            np.testing.assert_allclose(ours[k], expect, rtol=1e-5, atol=1e-6)


# -- stores ---------------------------------------------------------------------------------


def schema(name: str, dim: int, rate: float = float("nan")) -> ModalitySchema:
    return ModalitySchema(name, tuple(f"{name}{j}" for j in range(dim)), ExtractorInfo("t"), rate)


def write_store(path: Path) -> Path:
    """Two samples: ``a`` with the hand case's words (text steps = the words), ``b`` with
    neither words nor text steps (cannot be aligned)."""
    text = np.arange(6, dtype=np.float32).reshape(3, 2)
    audio = np.array([[1.0], [2.0], [3.0], [4.0]], np.float32)
    audio_t = np.array([[0.0, 0.5], [0.5, 1.0], [1.0, 1.6], [2.5, 2.75]])
    with FeatureStoreWriter(
        path, [schema("text", 2), schema("vision", 2, 15.0), schema("audio", 1, 100.0)],
        dataset="mosi", task="regression", label_names=["sentiment"], attrs={"synthetic": True},
    ) as w:  # fmt: skip
        w.add(Sample(
            id="a", video="v", start=0.0, end=3.0, split="train", label=np.array([1.0]),
            features={"text": text, "vision": X, "audio": audio},
            times={"text": SPANS, "vision": STEPS, "audio": audio_t},
            words=[Word("A", 0.0, 1.0), Word("B", 1.0, 2.2), Word("C", 2.5, 3.0)],
            words_source="sidecar.json",
        ))  # fmt: skip
        w.add(Sample(
            id="b", video="v", start=3.0, end=4.0, split="test", label=np.array([-1.0]),
            features={"text": np.zeros((0, 2)), "vision": X[:1], "audio": audio[:1]},
            times={"text": np.zeros((0, 2)), "vision": STEPS[:1], "audio": audio_t[:1]},
        ))  # fmt: skip
        w.add_failure("gone.mp4", "face", "no face found")
    return path


def test_align_store_values_times_words_failures_and_provenance(tmp_path: Path) -> None:
    src = write_store(tmp_path / "s.h5")
    report = align_store(src, tmp_path / "w.h5", "mean")
    assert report.samples == 1 and report.failures == [("b", "it has no words and no timed text steps")]
    assert report.empty_words == {"text": 0, "vision": 1, "audio": 0}
    with FeatureStore(tmp_path / "w.h5") as st:
        assert list(st.samples.id) == ["a"]
        s = st[0]
        np.testing.assert_array_equal(s.features["text"], np.arange(6).reshape(3, 2))  # unchanged
        b = (0.5 * 3 + 0.7 * 5) / 1.2
        np.testing.assert_allclose(s.features["vision"], [[2.5, 25], [b, 10 * b], [0, 0]], rtol=1e-6)
        # audio: A = (1 + 2) / 2; B: [1.0, 1.6] alone; C: [2.5, 2.75] alone
        np.testing.assert_allclose(s.features["audio"], [[1.5], [3.0], [4.0]])
        for m in st.modalities:
            np.testing.assert_array_equal(s.times[m], SPANS)
            assert np.isnan(st.modalities[m].nominal_rate_hz)
            params = st.modalities[m].extractor.parameters
            assert params == {"aligned_to": "words", "align_reduce": "mean"}
        assert [w.text for w in s.words] == ["A", "B", "C"] and s.words_source == "sidecar.json"
        assert s.label[0] == 1.0 and s.split == "train"
        prov = json.loads(st.meta.attrs["aligned"])
        assert prov["to"] == "words" and prov["reduce"] == "mean"
        assert prov["source"] == str(src.resolve()) and len(prov["source_sha256"]) == 64
        assert prov["reference"] == {"words": 1, "text": 0} and prov["failed"] == 1
        assert prov["empty_words"] == {"text": 0, "vision": 1, "audio": 0}
        # C is a zero row with observed False in vision (no step reaches it), True elsewhere
        assert s.observed["vision"].tolist() == [True, True, False]
        assert s.observed["text"].tolist() == s.observed["audio"].tolist() == [True] * 3
        assert {m: st.unobserved_steps(m) for m in st.modalities} == prov["empty_words"]
        assert st.meta.attrs["synthetic"]
        fails = [(f.video, f.stage) for f in st.failures]
        assert fails == [("gone.mp4", "face"), ("b", "align")]


def test_text_times_are_the_reference_when_a_sample_has_no_words(tmp_path: Path) -> None:
    src = tmp_path / "s.h5"
    with FeatureStoreWriter(src, [schema("text", 1), schema("audio", 1)]) as w:
        w.add(Sample(
            id="a", features={"text": np.array([[7.0], [8.0]]), "audio": np.array([[1.0], [3.0]])},
            times={"text": np.array([[0.0, 1.0], [1.0, 2.0]]), "audio": np.array([[0.0, 1.5], [1.5, 2.0]])},
        ))  # fmt: skip
    report = align_store(src, tmp_path / "w.h5", "max")
    assert report.reference == {"words": 0, "text": 1}
    with FeatureStore(tmp_path / "w.h5") as st:
        np.testing.assert_array_equal(st[0].features["text"], [[7.0], [8.0]])
        np.testing.assert_array_equal(st[0].features["audio"], [[1.0], [3.0]])


def test_cli_align_and_its_refusals(tmp_path: Path, mea) -> None:  # noqa: ANN001
    src = write_store(tmp_path / "s.h5")
    out = tmp_path / "w.h5"
    code, stdout, err = mea("align", str(src), "--to", "words", "--out", str(out), "--reduce", "plain-mean")
    assert code == 0, err
    assert "aligned 1 samples (3 words" in stdout and "1 samples not aligned" in stdout
    assert "not aligned: b: it has no words" in err
    code, stdout, _ = mea("info", str(out))
    info = " ".join(stdout.split())
    assert "aligned to words (reduce plain-mean) from " in info and "3 words" in info
    before = sorted(p.name for p in tmp_path.iterdir())
    refusals = [
        (["align", str(src), "--to", "words", "--out", str(src)], "also an input"),
        (["align", str(out), "--to", "words", "--out", str(tmp_path / "x.h5")], "already aligned"),
        (["align", str(tmp_path / "no.h5"), "--to", "words", "--out", str(tmp_path / "y.h5")], "no such"),
        (["align", str(src), "--to", "phones", "--out", str(tmp_path / "z.h5")], "phones"),
        (["align", str(src), "--to", "words", "--out", str(tmp_path / "z.h5"), "--reduce", "sum"], "sum"),
    ]
    for args, words in refusals:
        code, _, err = mea(*args)
        assert code == 2, (args, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], (args, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing created or changed


NARROW = {
    "mea": ["d=16", "heads=2", "d_h=16", "psa_layers=1", "hca_layers=1"],
    "mult": ["d=16", "heads=2", "layers=1", "memory_layers=1"],
    "fdmer": ["d_k=32", "d_disc=16", "transformer_layers=[1,1,1]", "heads=2", "ffn_mult=2"],
}


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_an_aligned_store_trains_mea_mult_and_fdmer(tmp_path: Path, synth_mosi: Path, mea) -> None:  # noqa: ANN001
    """Synthetic store (its text steps carry the word times) -> ``mea align`` -> one tiny
    epoch of each model; ``mea eval --paper`` says FDMER's word-aligned row matches."""
    aligned = tmp_path / "w.h5"
    code, _, err = mea("align", str(synth_mosi), "--to", "words", "--out", str(aligned))
    assert code == 0, err
    with FeatureStore(aligned) as st:
        lengths = {m: st.lengths(m) for m in st.modalities}
        assert all((lengths[m] == lengths["text"]).all() for m in st.modalities)  # word rate
    for model, sets in NARROW.items():
        sets = [x for kv in sets for x in ("--set", kv)]
        code, out, err = mea(
            "train", str(aligned), "--dataset", "mosi", "--model", model, "--epochs", "1",
            "--name", model, "--seeds", "1111", "--runs-dir", str(tmp_path / "runs"),
            "--device", "cpu", "--set", "train.batch_size=16", *sets,
        )  # fmt: skip
        assert code == 0 and "best on valid" in out, (model, out[-2000:], err[-2000:])
    # a checkpoint trained aligned refuses the unaligned store (one line, exit 2)
    code, _, err = mea("eval", str(tmp_path / "runs" / "mea"), "--features", str(synth_mosi))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "trained on text aligned to words, but" in err and "at its native rate" in err
    code, out, err = mea("eval", str(tmp_path / "runs" / "fdmer"), "--paper")
    assert code == 0, err
    text = " ".join(out.split())
    assert "FDMER: measured on word-aligned sequences, as this store (setting matches)" in text
    assert "MulT: measured on unaligned sequences, not on word-aligned ones as here" in text
    assert "Eq. 4 with both factors normalised" in text  # FDMER's deviations are printed,
    assert "run on unaligned sequences with masks" not in text  # but not its native-rate one


def test_align_of_an_sdk_import_reproduces_the_mult_aligned_pickle(tmp_path: Path) -> None:
    """CSD files (the SDK's unaligned sequences with times) -> ``mea import csd`` ->
    ``mea align --reduce plain-mean`` equals the MulT-style aligned pickle made from the same
    files by the SDK's pipeline (align to the word vectors with ``myavg``, ``impute`` zeros,
    cut at the segments, left-pad) and read back with ``mea import mult``.

    MulT's own pickles cannot be paired this way: the released ``*_noalign.pkl`` keep no step
    times, so their aligned twins cannot be recomputed from them; the CSD files can."""
    from test_import_csd import write_csd

    from mea_cli.data.importers import import_csd, import_mult
    from mea_cli.data.importers.csd import standard_folds

    rng = np.random.default_rng(5)
    folds = standard_folds("mosi")
    videos = {folds[s][0]: s for s in ("train", "valid", "test")}
    segs = np.array([[0.0, 2.0], [2.0, 4.0]])
    words = np.array([[0.1, 0.5], [0.5, 1.0], [1.2, 1.9], [2.1, 2.6], [2.6, 3.0], [3.2, 3.9]])
    csd = tmp_path / "csd"
    csd.mkdir()
    src: dict[str, dict] = {m: {} for m in ("labels", "text", "vision", "audio")}
    for v in videos:
        src["labels"][v] = (rng.uniform(-3, 3, (2, 1)).astype(np.float32), segs)
        src["text"][v] = (rng.normal(size=(6, 3)).astype(np.float32), words)
        t = np.arange(0.0, 3.0, 1 / 15)  # no face after 3.0 s: the last word gets no step
        src["vision"][v] = (rng.normal(size=(len(t), 4)).astype(np.float32), np.stack([t, t + 1 / 15], 1))
        t = np.arange(0.0, 4.0, 0.08)
        src["audio"][v] = (rng.normal(size=(len(t), 5)).astype(np.float32), np.stack([t, t + 0.1], 1))
    write_csd(csd / "CMU_MOSI_Opinion_Labels.csd", "Opinion Segment Labels", src["labels"])
    write_csd(csd / "CMU_MOSI_TimestampedWordVectors.csd", "glove_vectors", src["text"])
    write_csd(csd / "CMU_MOSI_Visual_Facet_42.csd", "FACET", src["vision"])
    write_csd(csd / "CMU_MOSI_COVAREP.csd", "COVAREP", src["audio"])

    # the SDK's pipeline, then MulT's layout: [N, 4 (left-padded), D] per split
    pickle_data: dict = {}
    for v, split in videos.items():
        per_word = {"text": list(src["text"][v][0])}
        for m in ("vision", "audio"):
            feats, iv = src[m][v]
            per_word[m] = [np.zeros(feats.shape[1]) if f is None else f for f in sdk_align(words, iv, feats)]
        part: dict = {m: [] for m in ("text", "vision", "audio")} | {"labels": [], "id": []}
        for k, (a, b) in enumerate(segs):
            inside = np.flatnonzero((words[:, 0] >= a) & (words[:, 1] <= b))
            for m in ("text", "vision", "audio"):
                x = np.stack([per_word[m][j] for j in inside]).astype(np.float32)
                part[m].append(np.concatenate([np.zeros((4 - len(x), x.shape[1]), np.float32), x]))
            part["labels"].append(src["labels"][v][0][k].reshape(1, 1))
            part["id"].append([v.encode(), f"{a}".encode(), f"{b}".encode()])
        pickle_data[split] = {key: np.array(val) for key, val in part.items()}
    (tmp_path / "aligned.pkl").write_bytes(pickle.dumps(pickle_data))

    import_csd(csd, tmp_path / "csd.h5", "mosi")
    report = align_store(tmp_path / "csd.h5", tmp_path / "w.h5", "plain-mean")
    assert report.reference == {"words": 0, "text": 6} and report.empty_words["vision"] == 3
    import_mult(tmp_path / "aligned.pkl", tmp_path / "mult.h5", "mosi", padding="left")
    with FeatureStore(tmp_path / "w.h5") as ours, FeatureStore(tmp_path / "mult.h5") as theirs:
        assert len(ours) == len(theirs) == 6
        key = {(str(ours.samples.video[i]), float(ours.samples.start[i])): i for i in range(len(ours))}
        for j in range(len(theirs)):
            i = key[(str(theirs.samples.video[j]), float(theirs.samples.start[j]))]
            assert ours.samples.split[i] == theirs.samples.split[j]
            assert ours.samples.label[i, 0] == theirs.samples.label[j, 0]
            for m in ("text", "vision", "audio"):
                np.testing.assert_allclose(ours.sequence(i, m), theirs.sequence(j, m), rtol=1e-5, atol=1e-6)


def test_setting_note_says_when_a_paper_row_matches_the_store() -> None:
    from mea_cli.align import aligned_setting
    from mea_cli.train.evaluate import setting_note

    assert aligned_setting({"aligned": "{}"}) == "word-aligned"
    assert aligned_setting({"synthetic": True}) == "unaligned"
    assert setting_note("", "unaligned") == ""  # the usual case: nothing to say
    assert setting_note("word-aligned", "unaligned") == (
        "measured on word-aligned sequences, not on unaligned ones as here"
    )
    assert setting_note("word-aligned", "word-aligned") == (
        "measured on word-aligned sequences, as this store (setting matches)"
    )
    assert setting_note("", "word-aligned") == (
        "measured on unaligned sequences, not on word-aligned ones as here"
    )


def test_compare_paper_note_on_an_aligned_store(
    tmp_path: Path, synth_mosi: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``mea compare --paper`` on an aligned store (comparability check passed as in
    tests/test_model_fdmer.py): FDMER's row matches, MEA's (unaligned) does not."""
    import mea_cli.ablate.compare as compare
    from mea_cli.ablate.compare import _paper

    monkeypatch.setattr(compare, "benchmark_mismatch", lambda store, preset: None)
    align_store(synth_mosi, tmp_path / "w.h5")
    _, note, settings = _paper(tmp_path / "w.h5", "mosi", ["mea", "fdmer"])
    assert settings == {"fdmer": "word-aligned"}
    assert "[measured on word-aligned sequences, as this store (setting matches)]" in note
    assert "[measured on unaligned sequences, not on word-aligned ones as here]" in note


def test_no_alignable_sample_is_an_error_and_writes_nothing(tmp_path: Path) -> None:
    from mea_cli.align import AlignError

    src = tmp_path / "s.h5"
    with FeatureStoreWriter(src, [schema("text", 1), schema("audio", 1)]) as w:
        w.add(Sample(id="a", features={"text": np.zeros((0, 1)), "audio": np.ones((2, 1))},
                     times={"audio": np.array([[0.0, 1.0], [1.0, 2.0]])}))  # fmt: skip
    with pytest.raises(AlignError, match="no sample can be aligned to words .e.g. it has no words"):
        align_store(src, tmp_path / "w.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.h5"]  # no output, no temporary file


@pytest.mark.parametrize("aligned", [False, True])
def test_ablate_paper_is_setting_aware(tmp_path: Path, synth_mosi: Path, aligned: bool) -> None:
    """``mea ablate --paper`` on FDMER (its Table 4 is word-aligned): on a native-rate store
    the setting line says it differs and the "unaligned" deviation is printed; on a
    ``mea align`` store the line says the setting matches and that deviation is gone."""
    from types import SimpleNamespace

    from mea_cli.ablate.api import ablation_table
    from mea_cli.ablate.rows import table_rows
    from mea_cli.models import config_for
    from mea_cli.models.core.registry import get_entry

    store = synth_mosi
    if aligned:
        store = tmp_path / "w.h5"
        align_store(synth_mosi, store)
    run = SimpleNamespace(
        model="fdmer", dataset="mosi", task="regression", features=store,
        config=SimpleNamespace(label_range=None), model_config=config_for("fdmer", "mosi").to_dict(),
    )  # fmt: skip
    rows = table_rows(get_entry("fdmer").switches, [], "fdmer")
    text = " ".join(ablation_table(run, rows, {}, with_paper=True).to_markdown().split())
    matches = "FDMER paper rows: measured on word-aligned sequences, as this store (setting matches)"
    differs = "FDMER paper rows: measured on word-aligned sequences, not on unaligned ones as here"
    assert (matches in text, differs in text) == (aligned, not aligned)
    assert ("FDMER: run on unaligned sequences with masks" in text) == (not aligned)
    assert "FDMER: Eq. 4 with both factors normalised" in text  # the other deviations stay


def test_observed_mask_round_trips_through_merge_split_info_and_old_stores(tmp_path: Path) -> None:
    """The ``observed`` mask ``mea align`` writes comes back from ``mea merge``, a split store
    (external links) and ``mea info`` (count of unobserved steps); stores without one (every
    store before it, the version-1 test file) open unchanged with every step observed."""
    from io import StringIO

    from rich.console import Console

    from mea_cli.artifacts.store_info import render_summary, summarize
    from mea_cli.data.splits import write_split_store
    from mea_cli.extract.merge import merge_stores

    src = write_store(tmp_path / "s.h5")
    aligned = tmp_path / "w.h5"
    align_store(src, aligned)
    merge_stores([aligned], tmp_path / "m.h5")
    write_split_store(aligned, tmp_path / "v.h5", np.array(["test"]), {"fold": "split"})
    for path in (aligned, tmp_path / "m.h5", tmp_path / "v.h5"):
        with FeatureStore(path) as st:
            assert st[0].observed["vision"].tolist() == [True, True, False], path
            assert st.observed(0, "audio").tolist() == [True] * 3
            summary = summarize(st)
    assert {m: v["unobserved_steps"] for m, v in summary["modalities"].items()} == {
        "text": 0, "vision": 1, "audio": 0,
    }  # fmt: skip
    out = StringIO()
    render_summary(summary, Console(file=out, width=200))
    assert "unobserved steps (observed = False, zeros): text 0, vision 1, audio 0" in out.getvalue()
    for old in (src, Path(__file__).parent / "data" / "store_v1.h5"):
        with FeatureStore(old) as st:
            assert st[0].observed == {} and st.observed(0, "text") is None
            assert not st.has_observed("text") and st.unobserved_steps("text") == 0
            out = StringIO()
            render_summary(summarize(st), Console(file=out, width=200))
            assert "unobserved" not in out.getvalue()


def test_loader_gives_gap_masks_only_to_models_declaring_them(tmp_path: Path) -> None:
    """On the hand case (C unobserved in vision): ``gap_masks=True`` (the functionals
    baseline) gets mask = prefix & observed, every other model the prefix mask over the zero
    row; the normalisation statistics leave the unobserved row out; ``mea train``'s line says
    which case applies."""
    from mea_cli.align import gap_mask_note
    from mea_cli.data.dataset import FeatureDataset, NormStats, collate

    aligned = tmp_path / "w.h5"
    align_store(write_store(tmp_path / "s.h5"), aligned)
    with FeatureStore(aligned) as st:
        stats = NormStats.fit(st)
        b = (0.5 * 3 + 0.7 * 5) / 1.2  # A's and B's vision rows only: C's zero row left out
        np.testing.assert_allclose(stats.mean["vision"], [(2.5 + b) / 2, (25 + 10 * b) / 2], rtol=1e-5)
        gaps = collate([FeatureDataset(st, "train", stats, gap_masks=True)[0]])
        plain = collate([FeatureDataset(st, "train", stats)[0]])
        note_gaps = gap_mask_note(st, "functionals", True)
        note_plain = gap_mask_note(st, "mea", False)
    assert gaps.masks["vision"].tolist() == [[True, True, False]]
    assert plain.masks["vision"].tolist() == [[True, True, True]]
    assert gaps.masks["audio"].tolist() == plain.masks["audio"].tolist() == [[True] * 3]
    assert (gaps.inputs["vision"] == plain.inputs["vision"]).all()
    assert note_gaps == (
        "unobserved steps (words no step reached: vision 1); functionals: it declares "
        "gap_masks: they are gaps in its masks, left out like padding (docs/align.md)"
    )
    assert note_plain.endswith("mea: it reads prefix masks: it sees them as the stored zero rows (docs/align.md)")
    with FeatureStore(tmp_path / "s.h5") as st:
        assert gap_mask_note(st, "mea", False) == ""


def test_train_says_which_mask_case_applies(tmp_path: Path, synth_mosi: Path) -> None:
    """``mea train`` on an aligned store with unobserved words prints one line saying whether
    the model leaves them out (``gap_masks``) or sees the zero rows; none without them."""
    from io import StringIO

    import h5py
    from rich.console import Console

    from mea_cli import api

    aligned = tmp_path / "w.h5"
    align_store(synth_mosi, aligned)
    with h5py.File(aligned, "r+") as f:  # the second word of the first 6 samples: no vision step
        rows = f["vision/offsets"][:6] + 1
        f["vision/observed"][rows] = False
        f["vision/data"][rows] = 0.0
    out = StringIO()
    api.train(
        aligned, dataset="mosi", model="functionals", sets=["c_grid=[1.0]"], device="cpu",
        runs_dir=tmp_path / "runs", console=Console(file=out, width=300),
    )  # fmt: skip
    assert (
        "unobserved steps (words no step reached: vision 6); functionals: it declares "
        "gap_masks: they are gaps in its masks, left out like padding (docs/align.md)"
    ) in out.getvalue()
