"""Unit tests of the extraction pieces that need no video: transcripts, vectors, labels,
VAD word placement, backend options and provenance."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from mea_cli.artifacts.features import ExtractorInfo, Word
from mea_cli.errors import MeaError
from mea_cli.extract import backends
from mea_cli.extract.backends import BackendError, BackendSpec
from mea_cli.extract.discover import ExtractError, parse_shard
from mea_cli.extract.face import FaceModelError, head_pose_degrees, resolve_face_model
from mea_cli.extract.glove import embed_tokens, load_vectors, to_tokens, tokenize
from mea_cli.extract.labelparse import LabelSpec, parse_labels
from mea_cli.extract.labels import LabelsError, match_videos, read_labels
from mea_cli.extract.media import find_media
from mea_cli.extract.pipeline import ExtractConfig
from mea_cli.extract.text import TranscriptError, find_sidecar, fit_to_clip, read_sidecar
from mea_cli.extract.vad import (
    fit_to_stretches,
    refine_onsets,
    spread,
    spread_over_stretches,
    stretches_from_probabilities,
)


def _at(*spans: tuple[float, float]):
    return lambda: list(spans)


def test_txt_words_spread_over_one_stretch(tmp_path: Path) -> None:
    p = tmp_path / "v.txt"
    p.write_text("Hello, big world!\n")
    words = read_sidecar(p, _at((1.0, 3.0)))
    assert [w.text for w in words] == ["Hello,", "big", "world!"]
    assert words[0].start == pytest.approx(1.0) and words[-1].end == pytest.approx(3.0)
    # shares proportional to len + 1: 7, 4, 7 of 18
    assert words[1].start == pytest.approx(1.0 + 2.0 * 7 / 18)
    assert all(a.end == pytest.approx(b.start) for a, b in zip(words, words[1:], strict=False))


def test_words_go_to_stretches_in_proportion_and_never_into_pauses() -> None:
    # 2 s then 1 s of voice: words of weights 4,4,4 (shares 1 s each of 3 s voiced):
    # middles at 0.5, 1.5, 2.5 s of voiced time -> stretch 0, 0, 1
    words = spread_over_stretches("abc def ghi", [(1.0, 3.0), (5.0, 6.0)])
    assert [(w.text, w.start, w.end) for w in words] == [
        ("abc", 1.0, 2.0),
        ("def", 2.0, 3.0),
        ("ghi", 5.0, 6.0),
    ]
    # a stretch may get no word; every word lies inside one stretch
    words = spread_over_stretches("a b", [(0.0, 0.2), (1.0, 3.0), (4.0, 4.1)])
    assert all(w.start >= 1.0 and w.end <= 3.0 for w in words)
    assert spread_over_stretches("", [(0.0, 1.0)]) == []


def test_stretches_from_frame_probabilities() -> None:
    f = 0.032
    p = np.zeros(100)
    p[10:20] = 0.9  # 0.32-0.64 s
    p[25:30] = 0.6  # pause of 5 frames (0.16 s < 0.3 s): the same stretch
    p[60:62] = 0.7  # 0.064 s burst far away: dropped (shorter than 0.1 s)
    p[80:90] = 0.51  # a second stretch
    spans = stretches_from_probabilities(p, f)
    assert spans == [(pytest.approx(10 * f), pytest.approx(30 * f)), (pytest.approx(80 * f), pytest.approx(90 * f))]
    assert stretches_from_probabilities(np.full(50, 0.49), f) == []
    only_burst = np.zeros(50)
    only_burst[5:7] = 1.0  # nothing else voiced: the short burst is kept
    assert stretches_from_probabilities(only_burst, f) == [(pytest.approx(5 * f), pytest.approx(7 * f))]
    # hysteresis: weak frames (>= 0.35) join a stretch that holds a frame >= 0.5
    q = np.zeros(60)
    q[10:15] = 0.4  # weak, 0.32-0.48 s: a soft onset
    q[18:30] = 0.8  # strong, 0.576-0.96 s (0.096 s after the weak run: one stretch)
    q[45:50] = 0.45  # weak only: not speech
    assert stretches_from_probabilities(q, f) == [(pytest.approx(10 * f), pytest.approx(30 * f))]
    assert stretches_from_probabilities(np.full(50, 0.45), f) == []
    # weak frames lead by at most 0.5 s, and never extend the end (a reverberation tail)
    r = np.full(60, 0.4)
    r[30:40] = 0.9  # strong 0.96-1.28 s; weak from 0 s before it and until 1.92 s after it
    assert stretches_from_probabilities(r, f) == [(pytest.approx(30 * f - 0.5), pytest.approx(40 * f))]


def test_asr_words_moved_out_of_pauses() -> None:
    """Hand-worked: voice at 0.5-1.5 s and 2.0-3.0 s."""
    spans = [(0.5, 1.5), (2.0, 3.0)]
    asr = [
        Word("don't", 0.0, 0.8),  # starts in the leading silence -> at the onset
        Word("forget", 0.8, 1.2),  # inside: unchanged
        Word("a", 1.2, 1.7),  # ends in the pause -> at the stretch's end
        Word("uh", 1.6, 1.9),  # wholly in the pause -> zero-length at the next onset
        Word("jacket", 1.9, 2.6),
        Word("now", 3.1, 3.4),  # after the last stretch -> zero-length at its end
    ]
    got = [(w.text, w.start, w.end) for w in fit_to_stretches(asr, spans)]
    assert got == [
        ("don't", 0.5, 0.8),
        ("forget", 0.8, 1.2),
        ("a", 1.2, 1.5),
        ("uh", 2.0, 2.0),
        ("jacket", 2.0, 2.6),
        ("now", 3.0, 3.0),
    ]
    # the property: every start lies in a stretch, order and end >= start kept
    inside = lambda t: any(a <= t <= b for a, b in spans)  # noqa: E731
    fitted = fit_to_stretches(asr, spans)
    assert all(inside(w.start) and w.end >= w.start for w in fitted)
    assert [w.start for w in fitted] == sorted(w.start for w in fitted)
    assert fit_to_stretches(asr, []) == asr  # no voice found: ASR's times are kept


def test_onsets_moved_back_to_where_the_sound_starts() -> None:
    """10 ms frames: silence at -60 dB, a soft onset (-30 dB) from 1.00 s, loud from 1.10 s;
    the detector's stretch starts late at 1.12 s. The onset moves back to 1.00 s, no further
    than 0.3 s, never into the previous stretch; ends are kept."""
    rate = 16000
    rng = np.random.default_rng(0)
    x = rng.standard_normal(3 * rate) * 1e-3  # noise floor
    x[rate : rate + 1600] = rng.standard_normal(1600) * 0.03  # soft onset 1.00-1.10 s
    x[rate + 1600 : 2 * rate] = rng.standard_normal(rate - 1600) * 0.3
    assert refine_onsets(x, rate, [(1.12, 2.0)]) == [(pytest.approx(1.0), 2.0)]
    # at most 0.3 s back: sound all the way from 0.5 s
    y = x.copy()
    y[rate // 2 : rate] = rng.standard_normal(rate // 2) * 0.03
    assert refine_onsets(y, rate, [(1.12, 2.0)]) == [(pytest.approx(0.82), 2.0)]
    # never into the previous stretch
    assert refine_onsets(y, rate, [(0.0, 0.95), (1.12, 2.0)])[1] == (pytest.approx(0.95), 2.0)
    # digital silence around the sound (eSpeak): back to the first non-zero frame
    z = x.copy()
    z[:rate] = 0.0
    z[2 * rate :] = 0.0
    z[rate - 160 : rate] = rng.standard_normal(160) * 1e-4  # one very quiet frame, 0.99-1.00 s
    assert refine_onsets(z, rate, [(1.12, 2.0)]) == [(pytest.approx(0.99), 2.0)]


def test_srt_and_vtt_cues(tmp_path: Path) -> None:
    srt = tmp_path / "a.srt"
    srt.write_text(
        "1\n00:00:01,000 --> 00:00:02,000\n<i>good</i> day\n\n2\n00:00:03,500 --> 00:00:04,000\nfriend\n"
    )
    w = read_sidecar(srt, _at((0, 9)))
    assert [x.text for x in w] == ["good", "day", "friend"]
    assert w[0].start == 1.0 and w[1].end == 2.0 and w[2].start == 3.5
    vtt = tmp_path / "b.vtt"
    vtt.write_text("WEBVTT\n\nNOTE a comment\n\n00:01.000 --> 00:02.500 align:start\nhi there\n")
    w = read_sidecar(vtt, _at((0, 9)))
    assert [x.text for x in w] == ["hi", "there"] and w[-1].end == 2.5


def test_json_and_grid_align(tmp_path: Path) -> None:
    js = tmp_path / "a.json"
    js.write_text('{"words": [{"word": "yes", "start": 0.2, "end": 0.4}]}')
    assert read_sidecar(js, _at((0, 1)))[0].end == 0.4
    al = tmp_path / "b.align"
    al.write_text(
        "0 23750 sil\n23750 29500 bin\n29500 34000 blue\n34000 35500 sp\n35500 41000 at\n"
    )
    w = read_sidecar(al, _at((0, 9)))
    assert [x.text for x in w] == ["bin", "blue", "at"]
    assert w[0].start == pytest.approx(23750 / 25000) and w[1].end == pytest.approx(34000 / 25000)


def test_bad_transcripts(tmp_path: Path) -> None:
    p = tmp_path / "x.txt"
    p.write_bytes("caf\u00e9".encode("latin-1"))
    with pytest.raises(TranscriptError, match="not UTF-8"):
        read_sidecar(p, _at((0, 1)))
    j = tmp_path / "y.json"
    j.write_text('[{"word": "a"}]')
    with pytest.raises(TranscriptError, match="item 0"):
        read_sidecar(j, _at((0, 1)))


def test_sidecar_priority(tmp_path: Path) -> None:
    v = tmp_path / "clip.mp4"
    v.write_bytes(b"")
    assert find_sidecar(v) is None
    (tmp_path / "clip.txt").write_text("a")
    (tmp_path / "clip.json").write_text("[]")
    assert find_sidecar(v).suffix == ".json"


def test_tokens_and_oov_policy() -> None:
    kv = load_vectors()
    assert kv.vector_size == 50
    assert tokenize("Don't STOP, now!", kv.key_to_index) == ["do", "n't", "stop", "now"]
    assert tokenize("Don't STOP, now!", rule="words") == ["don't", "stop", "now"]  # before 'ptb'
    words = spread("hello qzxwvbnmk world", 0.0, 3.0)
    tokens, times = to_tokens(words)
    x, oov = embed_tokens(kv, tokens)
    assert oov == 1 and x.shape == (3, 50) and times.shape == (3, 2)
    assert np.allclose(x[0], kv["hello"]) and not x[1].any() and np.allclose(x[2], kv["world"])


def test_labels_regression_and_emotions(tmp_path: Path) -> None:
    p = tmp_path / "l.csv"
    p.write_text(
        "video,start,end,label,split\nclip,0,1.5,-1.2,train\nclip,1.5,,2,val\nother.mp4,0,1,0,test\n"
    )
    lf = read_labels(p)
    assert lf.task == "regression" and lf.label_names == ("sentiment",)
    assert [s.id for s in lf.segments] == ["clip_1", "clip_2", "other_1"]
    assert lf.segments[1].split == "valid" and math.isinf(lf.segments[1].end)
    by_key, unmatched = match_videos(lf, ["clip", "sub/other"])
    assert len(by_key["clip"]) == 2 and len(by_key["sub/other"]) == 1 and not unmatched
    e = tmp_path / "e.csv"
    e.write_text("video,start,end,label\na,0,1,sad\nb,0,1,happy;neutral\n")
    lf = read_labels(e)
    assert lf.task == "binary-multilabel" and lf.label_names == ("happy", "sad", "angry", "neutral")
    assert lf.segments[1].label.tolist() == [1, 0, 0, 1]


def test_vector_files_converted_once_and_atomically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    txt = tmp_path / "tiny.txt"
    txt.write_text("good 1 0 0 0\nbad 0 1 0 0\nfilm 0 0 1 0.5\n")
    kv = load_vectors(txt)
    assert kv.vector_size == 4 and np.allclose(kv["film"], [0, 0, 1, 0.5])
    made = sorted(p.name for p in (tmp_path / "cache" / "mea-cli" / "glove").iterdir())
    # the matrix (memory-mapped by every worker) and its word list, no temporary file left
    assert len(made) == 2 and made[0].startswith("tiny.") and made[0].endswith(".npy")
    assert made[1] == made[0].removesuffix(".npy") + ".words.json"
    assert isinstance(kv.vectors, np.memmap)
    assert load_vectors(txt)["bad"][1] == 1.0  # the second load reads the cache


def test_cmu_column_names_and_layouts(tmp_path: Path) -> None:
    # the SDK-derived shape: full videos cut by start/end, clip_id numbering the segments
    p = tmp_path / "mosi.csv"
    p.write_text(
        "video_id,clip_id,label,split,start,end\n"
        "03bSnISJMiM,1,2.4,train,51.90,55.95\n"
        "03bSnISJMiM,2,-0.6,validation,55.95,58.10\n"
    )
    lf = read_labels(p)
    assert [s.id for s in lf.segments] == ["03bSnISJMiM_1", "03bSnISJMiM_2"]
    assert [s.split for s in lf.segments] == ["train", "valid"]
    assert lf.segments[0].start == pytest.approx(51.90) and lf.segments[0].end == pytest.approx(55.95)
    by_key, unmatched = match_videos(lf, ["03bSnISJMiM"])
    assert len(by_key["03bSnISJMiM"]) == 2 and not unmatched
    # MMSA's label.csv: whole clip files Raw/<video_id>/<clip_id>.mp4, split in 'mode'
    m = tmp_path / "label.csv"
    m.write_text(
        "video_id,clip_id,text,label,label_T,label_A,label_V,annotation,mode\n"
        "vidA,1,so good,1.8,2,1,1,Positive,train\n"
        "vidA,2,hmm,0.0,0,0,0,Neutral,test\n"
        "vidB,1,awful,-2.2,-2,-2,-2,Negative,valid\n"
    )
    lf = read_labels(m)
    assert lf.task == "regression" and [s.split for s in lf.segments] == ["train", "test", "valid"]
    by_key, unmatched = match_videos(lf, ["Raw/vidA/1", "Raw/vidA/2", "Raw/vidB/1", "Raw/vidB_1"])
    assert {k: [s.id for s in v] for k, v in by_key.items()} == {
        "Raw/vidA/1": ["vidA_1"],
        "Raw/vidA/2": ["vidA_2"],
        "Raw/vidB/1": ["vidB_1"],
    }
    # CMU's segmented files <video_id>_<clip_id>.mp4, and another label column as classes
    lf = read_labels(m, LabelSpec(column="annotation"))
    assert lf.task == "multiclass" and lf.label_names == ("negative", "neutral", "positive")
    assert lf.segments[0].label.tolist() == [0, 0, 1]
    by_key, _ = match_videos(lf, ["vidA_1", "vidA_2", "vidB_1"])
    assert sorted(by_key) == ["vidA_1", "vidA_2", "vidB_1"]


def test_bad_segments_are_marked_not_fatal(tmp_path: Path) -> None:
    p = tmp_path / "l.csv"
    p.write_text("video,start,end,label\na,1.5,1.5,0.2\na,3,2,1\na,0,1,2\n")
    lf = read_labels(p)
    probs = [s.problem for s in lf.segments]
    assert "line 2: zero-length segment" in probs[0] and "line 3: inverted segment" in probs[1]
    assert probs[2] == ""


@pytest.mark.parametrize(
    ("text", "spec", "match"),
    [
        ("video,start,end\na,0,1\n", None, "missing column.s. label"),
        ("clip,start,label\na,0,1\n", None, "missing column.s. video"),
        ("video_id,video,label\na,a,1\n", None, "columns video and video_id both give the video"),
        ("video,start,end,label,split\na,0,1,0,holdout\n", None, "line 2: split"),
        ("video,start,end,label\na,x,1,0\na,0,y,1\n", None, "line 2: start 'x'.*line 3: end 'y'"),
        ("video,label\na,0.5\nb,O.5\nc,1\n", None, "line 3 \\('O.5'\\) is not a number while 2 rows are"),
        ("video,label\na,pos\nb,neg\nc,3\n", None, "line 4 \\('3'\\) is a number while 2"),
        ("video,label\na,1\nb,\n", None, "empty label in line 3"),
        ("video,label\na,1\n\n\nb,\n", None, "empty label in line 5"),  # the file's line numbers
        ("video,start,label\na,0,1\n\nb,x,2\n", None, "line 4: start 'x'"),
        # a decimal comma: read as 1 and 2, silently
        ("video,label\na,1,5\nb,2,25\n", None, "line 2: 3 values but the header names 2 columns"),
        ("video,label,Label\na,1,2\n", None, "column.s. label appear more than once"),
        ("Video,video,label\na,a,1\n", None, "column.s. video appear more than once"),
        ("video,label\na,1\nb,9\n", LabelSpec(value_range=(-3, 3)), "outside --label-range -3,3: line 3"),
        ("video,label\na,pos\nb,hapy\n", LabelSpec(classes=("pos", "neg")), "line 3 \\('hapy'\\)"),
        ("video,label\na,pos\nb,pos\n", None, "only one class"),
        ("video,label\na,x;y\nb,x\n", LabelSpec(task="multiclass"), "one class each: line 2"),
        ("video,label,id\na,1,s\nb,2,s\n", None, "line 3: duplicate sample id 's'"),
        ("video,label\na,1\n", LabelSpec(column="score"), "no column 'score'"),
    ],
)
def test_bad_label_files_name_their_rows(
    tmp_path: Path, text: str, spec: LabelSpec | None, match: str
) -> None:
    p = tmp_path / "l.csv"
    p.write_text(text)
    with pytest.raises(LabelsError, match=match) as err:
        read_labels(p, spec)
    assert str(err.value).startswith(str(p)) and "\n" not in str(err.value)


def test_label_file_cells_beyond_the_header_only_when_empty(tmp_path: Path) -> None:
    p = tmp_path / "l.csv"
    p.write_text("video,label,notes,notes\na,1,x,y,\nb,2,,,\n")  # empty trailing cells, unread duplicates
    lf = read_labels(p)
    assert [s.label.tolist() for s in lf.segments] == [[1.0], [2.0]]


def test_label_tasks() -> None:
    cells = [(2, "2"), (3, "0"), (4, "10")]
    assert parse_labels(cells, LabelSpec()).task == "regression"
    mc = parse_labels(cells, LabelSpec(task="multiclass"))  # numbers as class names
    assert mc.names == ("0", "2", "10") and mc.values.tolist() == [[0, 1, 0], [1, 0, 0], [0, 0, 1]]
    ml = parse_labels([(2, "Happy"), (3, "angry;SAD")], LabelSpec())
    assert ml.task == "binary-multilabel" and ml.names == ("happy", "sad", "angry", "neutral")
    assert ml.values.tolist() == [[1, 0, 0, 0], [0, 1, 1, 0]]
    ml = parse_labels([(2, "joy;fear"), (3, "fear")], LabelSpec())
    assert ml.task == "binary-multilabel" and ml.names == ("fear", "joy")
    fixed = parse_labels([(2, "b")], LabelSpec(task="multiclass", classes=("c", "b", "a")))
    assert fixed.names == ("c", "b", "a") and fixed.values.tolist() == [[0, 1, 0]]
    for bad in (
        dict(task="ranking"),
        dict(task="regression", classes=("a",)),
        dict(classes=("a", "A")),
        dict(value_range=(3.0, -3.0)),
    ):
        with pytest.raises(LabelsError):
            LabelSpec(**bad)
    assert LabelSpec.parse_range("-3,3") == (-3.0, 3.0) and LabelSpec.parse_classes("a, b") == ("a", "b")


def test_non_finite_labels_are_refused_not_read_as_class_names() -> None:
    """A column of "nan" / "inf" once became a two-class task with classes "inf" and "nan"."""
    for cells in ([(2, "nan"), (3, "inf")], [(2, "0.5"), (3, "NaN"), (4, "1.5")]):
        with pytest.raises(LabelsError, match=r"not finite numbers: line \d \('(nan|NaN)'\)"):
            parse_labels(cells, LabelSpec())
    asked = parse_labels([(2, "nan"), (3, "inf")], LabelSpec(task="multiclass"))
    assert asked.names == ("inf", "nan")  # stated: class names, as given


def test_label_options_need_a_labels_file(tmp_path: Path) -> None:
    from mea_cli.extract.driver import extract

    with pytest.raises(ExtractError, match="need --labels"):
        extract(tmp_path, tmp_path / "o.h5", label_spec=LabelSpec(task="multiclass"))


def test_shard_validation() -> None:
    assert parse_shard(None) == (1, 1) and parse_shard("2/3") == (2, 3)
    for bad in ("0/2", "3/2", "x", "1-2"):
        with pytest.raises(ExtractError):
            parse_shard(bad)


def test_backend_specs_and_options() -> None:
    spec = BackendSpec.parse("audio", None, ["set=compare"])
    assert spec == BackendSpec("audio", "opensmile", (("set", "compare"),))
    assert spec.with_options({"set": "compare"}) == spec
    with pytest.raises(BackendError, match="conflicts"):
        spec.with_options({"set": "egemaps"})
    for opts, match in ((["set"], "expected key=value"), (["set=a", "set=b"], "given twice")):
        with pytest.raises(BackendError, match=match):
            BackendSpec.parse("audio", None, opts)
    with pytest.raises(BackendError, match="unknown face backend 'openface'.*blendshapes, pyfeat"):
        ExtractConfig(face=BackendSpec.parse("face", "openface"))
    with pytest.raises(BackendError, match="--audio-opt hop: opensmile has no option 'hop'"):
        backends.create(BackendSpec.parse("audio", None, ["hop=5"]))
    with pytest.raises(BackendError, match="--audio-opt set=mfcc: expected one of egemaps"):
        backends.create(BackendSpec.parse("audio", None, ["set=mfcc"]))
    with pytest.raises(BackendError, match="--face-opt fps=-2: expected a positive number"):
        backends.parse_options(
            backends.backend_class("face", "blendshapes"), BackendSpec.parse("face", None, ["fps=-2"])
        )
    with pytest.raises(FaceModelError, match="weights=DIR"):
        backends.create(BackendSpec.parse("face", "pyfeat"))


def test_provenance_round_trip_and_refusals(tmp_path: Path) -> None:
    audio = backends.create(BackendSpec.parse("audio", None, ["set=compare"]))
    info = audio.provenance()
    assert info.parameters["backend"] == "opensmile" and info.parameters["options"] == {
        "mixdown": "mean", "set": "compare"
    }
    again = backends.from_provenance("audio", ExtractorInfo.from_json(info.to_json()))
    assert again.backend.feature_names == audio.feature_names and again.notes == []
    moved = ExtractorInfo(info.name, info.version, {**info.parameters, "options": {"set": "x"}})
    assert backends.identity(moved) == backends.identity(info)  # options: where, not what
    other = ExtractorInfo(info.name, info.version, {**info.parameters, "hop_s": 0.02})
    assert backends.identity(other) != backends.identity(info)
    older = ExtractorInfo(info.name, "0.0.1", info.parameters)
    assert "version" in backends.from_provenance("audio", older).notes[0]
    # the recorded content must match: an override that changes it is refused
    with pytest.raises(BackendError, match="feature_set is 'eGeMAPSv02' here .set=egemaps. but 'ComParE_2016'"):
        backends.from_provenance("audio", info, {"set": "egemaps"})
    gone = ExtractorInfo(info.name, info.version, {**info.parameters, "backend": "wav2vec"})
    with pytest.raises(BackendError, match="unknown audio backend 'wav2vec'"):
        backends.from_provenance("audio", gone)
    imported = ExtractorInfo("COVAREP", "", {})
    with pytest.raises(BackendError, match="'COVAREP', which records no mea-cli extraction backend"):
        backends.from_provenance("audio", imported)
    # a face model file that is no longer there is named
    face = ExtractorInfo(
        "mediapipe-face-landmarker-blendshapes",
        "0.10",
        {"backend": "blendshapes", "options": {"model": str(tmp_path / "moved.task")}},
    )
    with pytest.raises(BackendError, match="moved.task: face model file not found"):
        backends.from_provenance("vision", face)


def test_face_model_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FaceModelError, match="--face-model"):
        resolve_face_model(tmp_path / "nope.task")
    monkeypatch.setenv("MEA_FACE_MODEL", str(tmp_path / "gone.task"))
    with pytest.raises(FaceModelError, match="MEA_FACE_MODEL"):
        resolve_face_model()
    monkeypatch.delenv("MEA_FACE_MODEL")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(FaceModelError, match="make install") as err:
        resolve_face_model()
    assert isinstance(err.value, MeaError) and "face_landmarker.task" in str(err.value)


def test_head_pose_from_rotation() -> None:
    a = np.radians(20.0)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    m = np.eye(4)
    m[:3, :3] = rx
    pitch, yaw, roll = head_pose_degrees(m)
    assert pitch == pytest.approx(20.0) and abs(yaw) < 1e-9 and abs(roll) < 1e-9


def test_find_media_by_extension(tmp_path: Path) -> None:
    """Known media extensions count without probing (a broken one fails later, by name)."""
    (tmp_path / "d").mkdir()
    for name in ("a.MP4", "d/b.mkv", "c.webm", "e.flv", "f.MP3", "g.wav", "notes.md", ".hidden.mp4"):
        (tmp_path / name).write_bytes(b"x")
    videos, others = find_media(tmp_path)
    assert [v.name for v in videos] == ["a.MP4", "c.webm", "b.mkv", "e.flv", "f.MP3", "g.wav"]
    assert [o.name for o in others] == ["notes.md"]


def test_face_frames_sampled_at_15_hz_by_default(tmp_path: Path) -> None:
    """The blendshapes backend keeps 15 frames per second (the CMU facial features' rate) unless
    told ``fps=native``; on 25 fps video the sampler keeps the first frame at or after each
    1/15 s tick: by hand, 0, 80, 160, 200, 280, ... ms (15 of the 25 frames of one second)."""
    from sampleclips import astronaut, write_clip

    from mea_cli.extract.face import DEFAULT_FPS, BlendshapeBackend
    from mea_cli.extract.media import iter_frames

    cls = backends.backend_class("face", "blendshapes")
    assert cls is BlendshapeBackend and DEFAULT_FPS == 15.0
    assert backends.parse_options(cls, BackendSpec.parse("face", None))["fps"] == 15.0
    native = BackendSpec.parse("face", None, ["fps=native"])
    assert backends.parse_options(cls, native)["fps"] is None
    clip = write_clip(tmp_path / "c.mp4", astronaut(64), 1.0, fps=25)
    times = [round(t, 3) for t, _ in iter_frames(clip, DEFAULT_FPS)]
    assert times == [0.0, 0.08, 0.16, 0.2, 0.28, 0.36, 0.4, 0.48, 0.56, 0.6, 0.68, 0.76, 0.8, 0.88, 0.96]
    assert len(list(iter_frames(clip))) == 25


def test_no_asr_model_loaded_when_every_clip_has_a_sidecar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ASR is loaded by the first clip without a sidecar, never before (issue 27's lever). The
    language is stated: the language check before ASR (Whisper base) is test_language.py's."""
    from mea_cli.artifacts.features import Word
    from mea_cli.extract import words as words_mod

    loads: list[object] = []

    class FakeASR:
        def __init__(self, *args: object) -> None:
            loads.append(args)

        def words(self, signal: np.ndarray) -> list[Word]:
            return [Word("spoken", 0.0, 0.5)]

    class Voiced:  # the detector finds speech (ASR is asked only then)
        def stretches(self, signal: np.ndarray, rate: int) -> list[tuple[float, float]]:
            return [(0.0, len(signal) / rate)]

    monkeypatch.setattr(words_mod, "WhisperASR", FakeASR)
    src = words_mod.WordSource(asr=True, language="en")
    src._vad = Voiced()  # type: ignore[assignment]
    src.require_asr([])  # every clip has a sidecar: nothing to check, nothing loaded
    (tmp_path / "a.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nhello there\n")
    signal = np.zeros(16000, np.float32)
    got = src.words_for(tmp_path / "a.mp4", signal, 16000, 1.0)
    assert got.source == "sidecar.srt" and [w.text for w in got.words] == ["hello", "there"]
    assert loads == []
    got = src.words_for(tmp_path / "b.mp4", signal, 16000, 1.0)  # no sidecar: ASR, once
    src.words_for(tmp_path / "c.mp4", signal, 16000, 1.0)
    assert got.source == "asr" and len(loads) == 1


def test_prefetched_frames_are_the_frames_and_errors_arrive_in_place(tmp_path: Path) -> None:
    """Decoding in a thread ahead of the landmarker changes nothing the consumer sees: the same
    frames in order, a decoder error raised after the frames before it, and a consumer that
    stops early stops the decoder (its file closed, the thread gone)."""
    import threading

    from sampleclips import astronaut, write_clip

    from mea_cli.extract.media import DecodeStopped, iter_frames, prefetch

    clip = write_clip(tmp_path / "c.mp4", astronaut(64), 1.0, fps=25)
    plain = list(iter_frames(clip, 15.0))
    ahead = list(prefetch(iter_frames(clip, 15.0), depth=2))
    assert [t for t, _ in ahead] == [t for t, _ in plain]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(ahead, plain, strict=True))

    def broken() -> object:
        yield from plain[:3]
        raise DecodeStopped(clip, "video decoding stopped after 0.16 s: truncated")

    got = []
    with pytest.raises(DecodeStopped, match="truncated"):
        for item in prefetch(broken(), depth=1):
            got.append(item[0])
    assert got == [t for t, _ in plain[:3]]
    early = prefetch(iter_frames(clip), depth=1)
    next(early)
    early.close()  # the consumer gives up after one frame
    assert not [t for t in threading.enumerate() if t.name == "mea-decode"]


def test_frames_converted_by_one_reused_converter_are_pyavs_own(tmp_path: Path) -> None:
    """``iter_frames`` converts with one swscale context per stream; the pixels are those of
    PyAV's per-frame ``to_ndarray``, at full size and shrunk by ``max_side``."""
    import av
    from sampleclips import astronaut, write_clip

    from mea_cli.extract.media import iter_frames

    clip = write_clip(tmp_path / "c.mp4", astronaut(96), 0.4, fps=25)
    for max_side, size in ((0, None), (64, (64, 64))):
        got = [img for _, img in iter_frames(clip, None, max_side)]
        with av.open(str(clip)) as c:
            kw = {"width": size[0], "height": size[1]} if size else {}
            want = [f.to_ndarray(format="rgb24", **kw) for f in c.decode(video=0)]
        assert len(got) == len(want) == 10
        assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))


def test_cached_vectors_load_without_importing_gensim() -> None:
    """A worker's start-up: the default vectors come from the cache without gensim's import
    (about 2 CPU-s through scipy.stats); the provenance still names gensim's version."""
    import subprocess
    import sys

    code = (
        "import sys; from mea_cli.extract.glove import GloveBackend; b = GloveBackend(); "
        "print(b.kv['hello'].shape, b.provenance().version, 'gensim' in sys.modules, "
        "'scipy.stats' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    from importlib.metadata import version

    assert r.stdout.split() == ["(50,)", version("gensim"), "False", "False"]


def test_sidecar_words_with_impossible_times_are_refused(tmp_path: Path) -> None:
    """A word that ends before it starts went into the store, which every reader then refused
    (``/text/times: step 0 ... ends before it starts``): the whole extraction was lost."""
    cases = {
        "inverted.json": ('[{"word": "late", "start": 2, "end": 1}]', "item 0 ('late') ends before"),
        "nan.json": ('[{"word": "hi", "start": NaN, "end": 1}]', "item 0 ('hi') has a time that"),
        "inf.json": ('{"words": [{"word": "hi", "start": 0, "end": Infinity}]}', "item 0 ('hi')"),
        "null.json": ('[{"word": null, "start": 0, "end": 1}]', "item 0 is not an object"),
        "inverted.align": ("0 23750 sil\n29500 23750 bin\n", "line 2 ('bin') ends before"),
    }
    for name, (text, words) in cases.items():
        p = tmp_path / name
        p.write_text(text)
        with pytest.raises(TranscriptError, match=re.escape(f"{name}: {words}")):
            read_sidecar(p, _at((0, 9)))


def test_sidecar_words_outside_the_clip_are_left_out_and_overruns_cut() -> None:
    """Word times outside the clip went into the store as they were: a transcript of another
    video, or of the uncut recording, gave words at times no frame has."""
    w = [Word("a", 0.2, 0.5), Word("b", 1.4, 1.7), Word("c", 2.0, 2.5)]
    kept, problems = fit_to_clip(w, 1.5, "v.json")
    assert kept == [Word("a", 0.2, 0.5), Word("b", 1.4, 1.5)]
    assert problems == [
        "v.json: 1 of 3 words lie outside the clip (0-1.50 s) and are left out (first: 'c' at "
        "2.00-2.50 s)",
        "v.json: 1 word(s) run past the ends of the clip (0-1.50 s) by up to 0.20 s; cut to fit",
    ]
    kept, problems = fit_to_clip([Word("x", -0.3, 0.4)], 1.5, "v.srt")
    assert kept == [Word("x", 0.0, 0.4)] and "by up to 0.30 s" in problems[0]
    kept, problems = fit_to_clip([Word("late", 5.0, 5.5), Word("early", -2.0, -1.0)], 1.5, "v.json")
    assert kept == [] and problems == [
        "v.json: every word (2) lies outside the clip (0-1.50 s): the words span -2.00-5.50 s; "
        "is it this video's transcript? No words kept"
    ]
    assert fit_to_clip(w, 2.5, "v.json") == (w, [])  # all inside
    assert fit_to_clip(w, float("nan"), "v.json") == (w, [])  # a clip of unknown length
