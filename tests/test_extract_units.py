"""Unit tests of the extraction pieces that need no video: transcripts, vectors, labels, ..."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from mea_cli.errors import MeaError
from mea_cli.extract.driver import ExtractConfig, ExtractError, parse_shard
from mea_cli.extract.face import FaceModelError, head_pose_degrees, resolve_face_model
from mea_cli.extract.glove import embed_tokens, load_vectors, tokenize
from mea_cli.extract.labels import LabelsError, match_videos, read_labels
from mea_cli.extract.media import find_videos
from mea_cli.extract.text import TranscriptError, find_sidecar, read_sidecar, spread, to_tokens


def test_txt_words_spread_over_speech_span(tmp_path: Path) -> None:
    p = tmp_path / "v.txt"
    p.write_text("Hello, big world!\n")
    words = read_sidecar(p, (1.0, 3.0))
    assert [w.text for w in words] == ["Hello,", "big", "world!"]
    assert words[0].start == pytest.approx(1.0) and words[-1].end == pytest.approx(3.0)
    # shares proportional to len + 1: 7, 4, 7 of 18
    assert words[1].start == pytest.approx(1.0 + 2.0 * 7 / 18)
    assert all(a.end == pytest.approx(b.start) for a, b in zip(words, words[1:], strict=False))


def test_srt_and_vtt_cues(tmp_path: Path) -> None:
    srt = tmp_path / "a.srt"
    srt.write_text(
        "1\n00:00:01,000 --> 00:00:02,000\n<i>good</i> day\n\n2\n00:00:03,500 --> 00:00:04,000\nfriend\n"
    )
    w = read_sidecar(srt, (0, 9))
    assert [x.text for x in w] == ["good", "day", "friend"]
    assert w[0].start == 1.0 and w[1].end == 2.0 and w[2].start == 3.5
    vtt = tmp_path / "b.vtt"
    vtt.write_text("WEBVTT\n\nNOTE a comment\n\n00:01.000 --> 00:02.500 align:start\nhi there\n")
    w = read_sidecar(vtt, (0, 9))
    assert [x.text for x in w] == ["hi", "there"] and w[-1].end == 2.5


def test_json_and_grid_align(tmp_path: Path) -> None:
    js = tmp_path / "a.json"
    js.write_text('{"words": [{"word": "yes", "start": 0.2, "end": 0.4}]}')
    assert read_sidecar(js, (0, 1))[0].end == 0.4
    al = tmp_path / "b.align"
    al.write_text(
        "0 23750 sil\n23750 29500 bin\n29500 34000 blue\n34000 35500 sp\n35500 41000 at\n"
    )
    w = read_sidecar(al, (0, 9))
    assert [x.text for x in w] == ["bin", "blue", "at"]
    assert w[0].start == pytest.approx(23750 / 25000) and w[1].end == pytest.approx(34000 / 25000)


def test_bad_transcripts(tmp_path: Path) -> None:
    p = tmp_path / "x.txt"
    p.write_bytes("caf\u00e9".encode("latin-1"))
    with pytest.raises(TranscriptError, match="not UTF-8"):
        read_sidecar(p, (0, 1))
    j = tmp_path / "y.json"
    j.write_text('[{"word": "a"}]')
    with pytest.raises(TranscriptError, match="item 0"):
        read_sidecar(j, (0, 1))


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
    assert tokenize("Don't STOP, now!") == ["don't", "stop", "now"]
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


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("video,start,label\na,0,1\n", "missing column"),
        ("video,start,end,label\na,2,1,0\n", "line 2: end"),
        ("video,start,end,label,split\na,0,1,0,holdout\n", "split"),
        ("video,start,end,label\na,x,1,0\n", "not a number"),
    ],
)
def test_bad_label_files(tmp_path: Path, text: str, match: str) -> None:
    p = tmp_path / "l.csv"
    p.write_text(text)
    with pytest.raises(LabelsError, match=match):
        read_labels(p)


def test_shard_and_config_validation() -> None:
    assert parse_shard(None) == (1, 1) and parse_shard("2/3") == (2, 3)
    for bad in ("0/2", "3/2", "x", "1-2"):
        with pytest.raises(ExtractError):
            parse_shard(bad)
    with pytest.raises(ExtractError, match="audio-set"):
        ExtractConfig(audio_set="mfcc")
    with pytest.raises(ExtractError, match="pyfeat-weights"):
        ExtractConfig(face_backend="pyfeat")


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


def test_find_videos(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    for name in ("a.MP4", "d/b.mkv", "c.webm", "notes.md", ".hidden.mp4"):
        (tmp_path / name).write_bytes(b"x")
    videos, others = find_videos(tmp_path)
    assert [v.name for v in videos] == ["a.MP4", "c.webm", "b.mkv"]
    assert [o.name for o in others] == ["notes.md"]
