"""End-to-end extraction on real content made offline: scikit-image's astronaut photo (a real,
smiling face) panning a few pixels per frame, with speech synthesised by espeak-ng.

One corpus holds a good clip and every kind of bad input; one extraction run is shared by the
content, failure-table, labels, sharding and CLI checks. Without espeak-ng or the face model
these tests skip on a developer's machine and fail under CI (``sampleclips.require_media``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import warm
from gates import gate_env, wait_blocked
from sampleclips import astronaut, require_media, speak, talking_astronaut, write_clip

from mea_cli.artifacts.features import FeatureStore
from mea_cli.errors import MeaError
from mea_cli.extract.backends import BackendSpec
from mea_cli.extract.discover import ExtractError
from mea_cli.extract.driver import ExtractConfig, extract
from mea_cli.extract.face import FACE_MODEL_PARTS
from mea_cli.extract.glove import load_vectors
from mea_cli.extract.media import AUDIO_RATE, decode_audio
from mea_cli.extract.merge import MergeError, merge_stores


@pytest.fixture(autouse=True)
def _media() -> None:
    require_media()


SPOKEN = "hello world this is a happy astronaut"
CFG = ExtractConfig(asr=False)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict:
    require_media()
    root = tmp_path_factory.mktemp("videos")
    good = talking_astronaut(root / "good.mp4", SPOKEN, lead=1.0, tail=1.0)
    (root / "good.txt").write_text(SPOKEN + "\n")
    nf = talking_astronaut(root / "noface.mp4", "good morning", face=False, lead=0.3, tail=0.3)
    (root / "noface.srt").write_text(
        f"1\n00:00:00,300 --> 00:00:0{nf.speech_end:.3f}".replace(".", ",") + "\ngood morning\n"
    )
    write_clip(root / "sub" / "silent.mkv", astronaut(192), 1.5)  # no audio stream
    (root / "sub" / "silent.json").write_text(
        json.dumps([{"word": "quiet", "start": 0.2, "end": 0.6}])
    )
    write_clip(root / "voice.mp4", None, 1.5, audio=speak("only a voice"))  # audio only
    (root / "voice.txt").write_text("only a voice")
    (root / "empty.mp4").write_bytes(b"")
    raw = good.path.read_bytes()
    (root / "truncated.mp4").write_bytes(raw[: len(raw) // 3])
    shutil.copy(good.path, root / "latin.avi")
    (root / "latin.txt").write_bytes("caf\u00e9 d\u00e9j\u00e0 vu".encode("latin-1"))
    (root / "README.md").write_text("not a video")
    labels = root.parent / "labels.csv"
    labels.write_text(
        "video,start,end,label,split\n"
        f"good,0,{good.speech_start:.3f},0.5,train\n"
        f"good,{good.speech_start:.3f},{good.speech_end:.3f},2.0,train\n"
        f"good,{good.speech_end:.3f},,-1,valid\n"
        "good,1.2,1.2,0,train\n"
        "noface,0,,1.0,test\n"
        "missing_clip,0,2,1.0,test\n"
    )
    out = root.parent / "feats.h5"
    report = extract(root, out, CFG)
    return {"root": root, "good": good, "out": out, "report": report, "labels": labels}


def _row(store: FeatureStore, video: str) -> int:
    return int(np.flatnonzero(store.samples.video == video)[0])


def test_dimensions_rates_and_times(corpus: dict) -> None:
    with FeatureStore(corpus["out"]) as s:
        assert {m: s.modalities[m].dim for m in s.modalities} == {
            "text": 50,
            "vision": 55,
            "audio": 25,
        }
        assert s.modalities["audio"].nominal_rate_hz == 100.0
        assert s.modalities["vision"].nominal_rate_hz == 15.0  # the CMU features' rate (issue 27)
        assert s.modalities["vision"].extractor.parameters["fps"] == 15.0
        i = _row(s, "good")
        for m in ("text", "vision", "audio"):
            x, t = s.sequence(i, m), s.times(i, m)
            assert len(x) > 0 and np.isfinite(x).all() and x.std() > 0
            assert np.all(np.diff(t[:, 0]) > 0) and np.all(t[:, 1] >= t[:, 0])
        # 15 of every 25 frames: the first at or after each 1/15 s tick, 40 or 80 ms apart
        tv = s.times(i, "vision")
        assert set(np.round(np.diff(tv[:, 0]), 3)) <= {0.04, 0.08}
        assert np.allclose(tv[:, 1] - tv[:, 0], 1 / 15)
        assert np.median(np.diff(s.times(i, "audio")[:, 0])) == pytest.approx(0.01, abs=1e-4)
        dur = corpus["good"].duration
        assert abs(len(s.sequence(i, "vision")) - dur * 15) <= 2
        assert abs(len(s.sequence(i, "audio")) - dur * 100) <= 10


def test_content_face_voice_words(corpus: dict) -> None:
    good = corpus["good"]
    with FeatureStore(corpus["out"]) as s:
        i = _row(s, "good")
        names = s.modalities["vision"].feature_names
        v = s.sequence(i, "vision")
        for side in ("mouthSmileLeft", "mouthSmileRight"):
            assert v[:, names.index(side)].mean() > 0.6  # the astronaut smiles
        assert v[:, names.index("eyeBlinkLeft")].mean() < 0.5
        a, at = s.sequence(i, "audio"), s.times(i, "audio")
        loud = a[:, s.modalities["audio"].feature_names.index("Loudness_sma3")]
        mid = at.mean(1)
        speaking = (mid > good.speech_start + 0.1) & (mid < good.speech_end - 0.1)
        silent = (mid < good.speech_start - 0.1) | (mid > good.speech_end + 0.1)
        assert loud[speaking].mean() > 5 * loud[silent].mean() + 0.05
        kv = load_vectors()
        text = s.sequence(i, "text")
        assert len(text) == len(SPOKEN.split())
        assert np.allclose(text[0], kv["hello"]) and np.allclose(text[5], kv["happy"])
        tt = s.times(i, "text")
        assert tt[0, 0] >= good.speech_start - 0.1 and tt[-1, 1] <= good.speech_end + 0.1
        # the words themselves are kept, with the times the text steps were made from
        words = s.words(i)
        assert [w.text for w in words] == SPOKEN.split() and s.words_source(i) == "sidecar.txt"
        np.testing.assert_allclose([(w.start, w.end) for w in words], tt)
        assert s.version == 2 and s.has_words


def test_bad_inputs_recorded_while_others_go_through(corpus: dict) -> None:
    report = corpus["report"]
    with FeatureStore(corpus["out"]) as s:
        rows = {(f.video, f.stage): f.message for f in s.failures}
        videos = set(s.samples.video)
    assert ("empty", "decode") in rows and "0 bytes" in rows[("empty", "decode")]
    assert ("truncated", "decode") in rows
    assert "no audio stream" in rows[("sub/silent", "audio")]
    assert "audio-only" in rows[("voice", "vision")]
    assert "no face" in rows[("noface", "vision")]
    assert "not UTF-8" in rows[("latin", "text")]
    assert report.skipped_files == ["README.md"]  # transcript sidecars are not listed
    assert report.videos == 7
    # files that will not open give no sample; every other video gives one (unlabelled run)
    assert videos == {"good", "noface", "sub/silent", "voice", "latin"}
    with FeatureStore(corpus["out"]) as s:
        i = _row(s, "latin")
        assert s.lengths("text")[i] == 0 and s.lengths("vision")[i] > 0


def test_labelled_segments_sliced_by_time(corpus: dict, tmp_path: Path) -> None:
    out = tmp_path / "lab.h5"
    cache = corpus["out"].with_name(corpus["out"].name + ".cache")
    rep = extract(corpus["root"], out, CFG, labels=corpus["labels"], cache_dir=cache)
    # only the two labelled videos are needed, and both came from the cache
    assert rep.extracted == 0 and rep.cached == 2
    good = corpus["good"]
    with FeatureStore(out) as s:
        assert s.meta.task == "regression" and s.meta.label_names == ("sentiment",)
        assert list(s.samples.id) == ["good_1", "good_2", "good_3", "noface_1"]
        assert s.samples.split.tolist() == ["train", "train", "valid", "test"]
        assert s.samples.label[:, 0].tolist() == [0.5, 2.0, -1.0, 1.0]
        lens = {m: s.lengths(m).tolist() for m in s.modalities}
        assert (
            lens["text"][0] == 0 and lens["text"][1] == len(SPOKEN.split()) and lens["text"][2] == 0
        )
        assert [len(s.words(k)) for k in range(4)] == [0, len(SPOKEN.split()), 0, 2]
        assert lens["vision"][3] == 0 and all(n > 0 for n in lens["vision"][:3])
        assert abs(lens["audio"][1] - (good.speech_end - good.speech_start) * 100) <= 3
        t = s.times(1, "vision")
        assert t.mean(1).min() >= good.speech_start and t.mean(1).max() < good.speech_end
        rows = [(f.video, f.stage, f.message) for f in s.failures if f.stage == "labels"]
        summary, functionals = s.summary("audio"), s.summaries["audio"]
        starts, ends = s.samples.start, s.samples.end
    # openSMILE's own Functionals of each segment's signal (the cache was made for whole
    # videos: the segments' summaries were added from the audio alone)
    import opensmile

    smile = opensmile.Smile(
        feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.Functionals
    )
    assert functionals.feature_names == tuple(smile.feature_names) and len(smile.feature_names) == 88
    assert functionals.extractor.parameters["feature_level"] == "Functionals"
    signal = decode_audio(good.path, AUDIO_RATE)
    a, b, c = (round(x * AUDIO_RATE) for x in (starts[1], ends[1], starts[2]))
    for row, part in ((1, signal[a:b]), (2, signal[c:])):  # good_3 runs to the video's end
        want = smile.process_signal(part, AUDIO_RATE).to_numpy(np.float32)[0]
        np.testing.assert_array_equal(summary[row], want)
    by_video = {v: m for v, _, m in rows}
    assert "line 5: zero-length segment (start 1.2 s, end 1.2 s)" in by_video["good"]
    assert "line 7: no such video" in by_video["missing_clip"]
    for unlabelled in ("voice", "latin", "sub/silent", "empty", "truncated"):
        assert by_video[unlabelled] == "no row in labels.csv: not extracted"
    assert len(rows) == 7  # one row per problem, nothing silent


def test_extraction_recreated_from_recorded_provenance(corpus: dict, tmp_path: Path) -> None:
    """What ``mea predict`` will do: rebuild the extraction a store (or checkpoint) records."""
    from mea_cli.extract.face import resolve_face_model
    from mea_cli.extract.pipeline import Pipeline

    with FeatureStore(corpus["out"]) as s:
        schemas = dict(s.modalities)
        want = s[_row(s, "good")]
    text = schemas["text"].extractor.parameters
    assert text["backend"] == "glove" and text["words"]["options"] == {"asr": "false", "asr_model": ""}
    assert len(schemas["vision"].extractor.parameters["model_sha256"]) == 64
    pipe, notes = Pipeline.from_schemas(schemas)
    assert notes == [] and [x.extractor for x in pipe.schemas()] == [
        schemas[m].extractor for m in ("text", "vision", "audio")
    ]
    got = pipe.extract_video("good", corpus["root"] / "good.mp4")
    for m in ("text", "vision", "audio"):
        np.testing.assert_allclose(got.features[m], want.features[m], atol=1e-5)
    assert got.words == want.words
    np.testing.assert_array_equal(got.summary_for(0.0, float("inf")), want.summary["audio"])
    moved = tmp_path / "elsewhere.task"
    shutil.copy(resolve_face_model(), moved)
    Pipeline.from_schemas(schemas, {"vision": {"model": str(moved)}})  # same content: fine
    with zipfile.ZipFile(resolve_face_model()) as z, zipfile.ZipFile(moved, "w") as other:
        for name in z.namelist():  # the same models, stored again: another file
            other.writestr(name, z.read(name), zipfile.ZIP_DEFLATED)
    with pytest.raises(MeaError, match="vision extraction .blendshapes.: model_sha256 is '") as err:
        Pipeline.from_schemas(schemas, {"vision": {"model": str(moved)}})
    assert f"here (model={moved}) but" in str(err.value)  # the file that differs
    moved.write_bytes(b"another model")
    with pytest.raises(MeaError, match="elsewhere.task: not a MediaPipe face landmarker model"):
        Pipeline.from_schemas(schemas, {"vision": {"model": str(moved)}})


def test_empty_folder_and_no_usable_sample_are_errors(corpus: dict, tmp_path: Path) -> None:
    (tmp_path / "none").mkdir()
    with pytest.raises(ExtractError, match="no sample to write .0 video"):
        extract(tmp_path / "none", tmp_path / "none.h5", CFG)
    broken = tmp_path / "broken"
    broken.mkdir()
    shutil.copy(corpus["root"] / "empty.mp4", broken / "empty.mp4")
    with pytest.raises(ExtractError, match="failures: decode 1; first: empty: empty file"):
        extract(broken, tmp_path / "b.h5", CFG)
    assert not (tmp_path / "none.h5").exists() and not (tmp_path / "b.h5").exists()


def test_the_store_as_its_own_cache_folder_is_refused_before_any_work(
    corpus: dict, tmp_path: Path
) -> None:
    """``--cache`` naming the store: refused at once (it once ran the whole extraction, then
    blamed the folder the cache had made)."""
    out = tmp_path / "y.h5"
    with pytest.raises(ExtractError, match="y.h5: the feature store and the extraction cache"):
        extract(corpus["root"], out, CFG, cache_dir=tmp_path / "." / "y.h5")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_two_shards_merged_equal_one_run(
    corpus: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = corpus["out"].with_name(corpus["out"].name + ".cache")
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    extract(corpus["root"], a, CFG, shard="1/2", cache_dir=cache)
    # which thread starts each worker: its parent-death signal follows that thread, so one
    # started by a thread that ends before the run was stopped while idle, skipping its
    # clean-up (mea_cli/extract/run.py, lifetime.py)
    starters = []
    spawn = ProcessPoolExecutor._spawn_process  # CPython's: starts one worker process

    def recorded(pool: ProcessPoolExecutor) -> None:
        starters.append(threading.current_thread())
        spawn(pool)

    monkeypatch.setattr(ProcessPoolExecutor, "_spawn_process", recorded)
    rb = extract(corpus["root"], b, CFG, shard="2/2", workers=2, cache_dir=tmp_path / "fresh")
    assert rb.extracted == 3  # shard 2 ran in two spawned workers from scratch
    assert starters == [threading.main_thread()]  # one spawned worker, started by this thread
    merged = tmp_path / "all.h5"
    assert merge_stores([b, a], merged) == 5
    with FeatureStore(merged) as m, FeatureStore(corpus["out"]) as full:
        assert list(m.samples.id) == list(full.samples.id)
        for x, y in zip(m, full, strict=True):
            for mod in full.modalities:
                np.testing.assert_allclose(x.features[mod], y.features[mod], atol=1e-6)
                np.testing.assert_allclose(x.times[mod], y.times[mod])
            assert x.words == y.words and x.words_source == y.words_source
            np.testing.assert_array_equal(x.summary["audio"], y.summary["audio"])
        assert m.summaries["audio"].same_as(full.summaries["audio"])
        assert m.failures == full.failures  # both sorted by (video, stage, message)
        assert m.meta.attrs["extract_videos"] == 7
    with pytest.raises(MergeError, match="given twice"):
        merge_stores([a, a], tmp_path / "dup.h5")
    shutil.copy(a, tmp_path / "a-copy.h5")  # the same shard under another name
    with pytest.raises(MergeError, match="duplicate sample id"):
        merge_stores([a, tmp_path / "a-copy.h5"], tmp_path / "dup.h5")
    other = tmp_path / "compare.h5"
    compare = BackendSpec.parse("audio", "opensmile", ["set=compare"])
    extract(corpus["root"] / "sub", other, ExtractConfig(audio=compare, asr=False))
    with pytest.raises(MergeError, match="audio"):
        merge_stores([a, other], tmp_path / "bad.h5")
    assert not (tmp_path / "bad.h5").exists()


def test_a_full_disk_at_the_store_keeps_the_videos_extracted(
    corpus: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store's write failing for space once removed the new cache folder with every video
    extracted, while its message said "free some space and run it again"."""
    import errno

    from mea_cli.extract import driver
    from mea_cli.paths import PathError, disk_full

    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(corpus["root"] / "good.mp4", one / "good.mp4")
    shutil.copy(corpus["root"] / "good.txt", one / "good.txt")
    out, cache = tmp_path / "one.h5", tmp_path / "one.h5.cache"

    def full(*args: object, **kwargs: object) -> None:
        raise disk_full(out, "feature store", OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))

    monkeypatch.setattr(driver, "pack", full)
    with pytest.raises(PathError, match=r"no space left on device.*stay cached in .*one\.h5\.cache"):
        extract(one, out, CFG)
    assert len(list(cache.glob("*.npz"))) == 1 and not out.exists()
    monkeypatch.undo()
    assert extract(one, out, CFG).cached == 1  # the rerun takes it from the cache


def test_an_interrupt_before_any_video_says_none_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It said "videos finished so far are cached in X.cache" when none had (and the folder
    this call made is not left behind empty)."""
    from mea_cli.extract import driver
    from mea_cli.extract.run import ExtractInterrupted

    clips = tmp_path / "clips"
    write_clip(clips / "a.mp4", astronaut(64), 0.5)

    def stopped(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(driver, "run", stopped)
    with pytest.raises(ExtractInterrupted, match="no video had finished") as caught:
        extract(clips, tmp_path / "a.h5", CFG)
    assert "cached" not in str(caught.value)
    assert not (tmp_path / "a.h5.cache").exists() and not (tmp_path / "a.h5").exists()


def _mea(*args: str) -> subprocess.CompletedProcess:
    """``mea ARGS`` in a child of the tests' warm interpreter (tests/warm.py): the same entry
    point without a torch import per command. A fresh interpreter runs extract in
    test_ctrl_c_says_so_keeps_the_cache_and_resumes (the interrupted run) and in
    test_progress_lines_when_not_a_terminal (its stderr a pipe)."""
    return warm.run(list(args))


@pytest.mark.slow
def test_ctrl_c_says_so_keeps_the_cache_and_resumes(tmp_path: Path) -> None:
    root = tmp_path / "many"
    for k in range(4):
        talking_astronaut(root / f"clip{k}.mp4", "one two three", lead=0.2, tail=0.2)
        (root / f"clip{k}.txt").write_text("one two three")
    out = tmp_path / "out.h5"
    cache = tmp_path / "out.h5.cache"
    cmd = [sys.executable, "-m", "mea_cli", "extract", str(root), "--out", str(out), "--no-asr"]
    gate = tmp_path.parent / f"{tmp_path.name}-gate"  # one video goes through, the rest wait
    proc = subprocess.Popen(
        [*cmd, "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=gate_env(gate, "video", 1),
    )  # fmt: skip
    try:
        wait_blocked(gate, proc, count=2)  # both workers held: the one free video is cached
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err and "run the same command again" in err.lower()
    assert len(list(cache.glob("*.npz"))) == 1
    assert not out.exists()
    leftovers = [p.name for d in (tmp_path, cache) for p in d.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []  # no half-written cache entry or store
    r = _mea(*cmd[3:])
    assert r.returncode == 0, r.stderr
    assert "3 / 1" in r.stdout  # extracted now / from cache
    with FeatureStore(out) as s:
        assert sorted(s.samples.video) == [f"clip{k}" for k in range(4)]
    assert (out.stat().st_mode & 0o777) == (0o666 & ~_umask())  # umask permissions, not 0600


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_progress_lines_when_not_a_terminal(corpus: dict, tmp_path: Path) -> None:
    # stderr is a pipe here, as under SLURM or CI: plain progress lines, not an empty log
    r = subprocess.run(
        [sys.executable, "-m", "mea_cli", "extract", str(corpus["root"] / "sub"),
         "--out", str(tmp_path / "p.h5"), "--no-asr"], capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = [x for x in r.stderr.splitlines() if x.startswith("extract: ")]
    assert lines and lines[-1].startswith("extract: 1/1 videos (100%)"), r.stderr


def test_cli_errors_are_one_line(corpus: dict, tmp_path: Path) -> None:
    r = _mea("extract", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.h5"))
    assert (
        r.returncode == 2 and "no such file or folder" in r.stderr and "Traceback" not in r.stderr
    )
    r = _mea(
        "extract",
        str(corpus["root"]),
        "--out",
        str(tmp_path / "x.h5"),
        "--face-model",
        str(tmp_path / "no.task"),
    )
    assert r.returncode == 2 and "no.task: no such face model" in r.stderr
    parts = tmp_path / "parts.task"  # the bundle's names, not its models: MediaPipe refuses it
    with zipfile.ZipFile(parts, "w") as z:
        for name in FACE_MODEL_PARTS:
            z.writestr(name, "not a model")
    r = _mea("extract", str(corpus["root"] / "sub"), "--out", str(tmp_path / "x.h5"), "--face-model", str(parts))
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert f"{parts}: MediaPipe cannot load this face model" in r.stderr
    assert not (tmp_path / "x.h5.cache").exists()
    r = _mea("extract", str(corpus["root"]), "--out", str(tmp_path / "x.h5"), "--face-opt", "fps=0")
    assert r.returncode == 2 and "--face-opt fps=0: expected a positive number" in r.stderr
    (tmp_path / "empty").mkdir()
    r = _mea("extract", str(tmp_path / "empty"), "--out", str(tmp_path / "x.h5"))
    assert r.returncode == 2 and "no sample to write" in r.stderr and "Traceback" not in r.stderr
    r = _mea("merge", str(corpus["out"]), str(corpus["labels"]), "--out", str(tmp_path / "m.h5"))
    assert r.returncode == 2 and "labels.csv" in r.stderr
    assert not (tmp_path / "x.h5").exists() and not (tmp_path / "m.h5").exists()


def test_broken_symbolic_link_is_a_failure_row(tmp_path: Path) -> None:
    """A dangling link with a media extension (a clip moved away) stopped the whole run with a
    FileNotFoundError traceback while the cache read the clips' sizes."""
    root = tmp_path / "clips"
    write_clip(root / "good.mkv", astronaut(192), 1.5)
    (root / "gone.mp4").symlink_to(tmp_path / "elsewhere.mp4")
    out = tmp_path / "s.h5"
    r = _mea("extract", str(root), "--out", str(out), "--no-asr")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    with FeatureStore(out) as s:
        assert list(s.samples.video) == ["good"]
        assert [(f.video, f.stage, f.message) for f in s.failures if f.stage == "decode"] == [
            ("gone", "decode", "broken symbolic link")
        ]


def test_sidecar_word_ending_before_it_starts_is_a_failure_row(tmp_path: Path) -> None:
    """One clip's JSON transcript with a word that ends before it starts was written into the
    store as it was, and every reader then refused the whole store: now that clip gets a text
    failure row and the store opens."""
    root = tmp_path / "clips"
    for name in ("good", "inverted"):
        write_clip(root / f"{name}.mkv", astronaut(192), 1.5)
    (root / "good.json").write_text(json.dumps([{"word": "quiet", "start": 0.2, "end": 0.6}]))
    (root / "inverted.json").write_text(json.dumps([{"word": "late", "start": 1.0, "end": 0.5}]))
    out = tmp_path / "s.h5"
    r = _mea("extract", str(root), "--out", str(out), "--no-asr")
    assert r.returncode == 0, r.stderr
    r = _mea("info", str(out), "--json")
    assert r.returncode == 0, r.stderr
    text = [f for f in json.loads(r.stdout)["failures"]["rows"] if f["stage"] == "text"]
    assert [f["video"] for f in text] == ["inverted"]  # the clips have no audio: audio rows too
    assert "inverted.json: item 0 ('late') ends before it starts" in text[0]["message"]


def test_sidecar_words_outside_the_clip_are_failure_rows(tmp_path: Path) -> None:
    """A transcript whose words lie after the end of its 1.5-s clip was stored as it was, with
    no failure row: now such a clip gets no words and a row naming the file and both spans; a
    word that only runs past the end is cut to it, with a row saying so."""
    root = tmp_path / "clips"
    for name in ("elsewhere", "overrun"):
        write_clip(root / f"{name}.mkv", astronaut(192), 1.5)
    (root / "elsewhere.json").write_text(json.dumps([{"word": "late", "start": 5.0, "end": 5.5}]))
    (root / "overrun.json").write_text(
        json.dumps([{"word": "hello", "start": 0.2, "end": 0.9}, {"word": "there", "start": 1.0, "end": 1.9}])
    )
    out = tmp_path / "s.h5"
    r = _mea("extract", str(root), "--out", str(out), "--no-asr")
    assert r.returncode == 0, r.stderr
    with FeatureStore(out) as s:
        rows = {f.video: f.message for f in s.failures if f.stage == "text"}
        assert re.fullmatch(
            r"elsewhere\.json: every word \(1\) lies outside the clip \(0-1\.5\d s\): the words "
            r"span 5\.00-5\.50 s; is it this video's transcript\? No words kept",
            rows["elsewhere"],
        ), rows
        assert re.fullmatch(
            r"overrun\.json: 1 word\(s\) run past the ends of the clip \(0-1\.5\d s\) by up to "
            r"0\.\d\d s; cut to fit", rows["overrun"],
        ), rows  # fmt: skip
        elsewhere, overrun = (s.index_of(v) for v in ("elsewhere", "overrun"))
        assert s.words(elsewhere) == [] and len(s.sequence(elsewhere, "text")) == 0
        words = s.words(overrun)
        assert [w.text for w in words] == ["hello", "there"] and words[1].end < 1.6


def test_txt_words_land_on_the_voice_in_silence_and_in_a_room(tmp_path: Path) -> None:
    """Two phrases with a 0.8 s pause, first with espeak's digital silence around and between
    them, then in a simulated room: pink noise 15 dB below the speech, reverberation with
    RT60 0.4 s and a 0 dB direct-to-reverberant ratio (sampleclips.in_room)."""
    from mea_cli.extract.media import decode_audio, probe
    from mea_cli.extract.words import WordSource

    phrases = ["hello world this is", "a happy astronaut"]
    source = WordSource(asr=False)
    for room in (None, {"snr_db": 15.0, "rt60": 0.4, "drr_db": 0.0}):
        clip = talking_astronaut(tmp_path / "t.mp4", phrases, room=room)
        (tmp_path / "t.txt").write_text(" ".join(phrases))
        got = source.words_for(clip.path, decode_audio(clip.path), 16000, probe(clip.path).duration)
        assert got.source == "sidecar.txt" and not got.failures
        assert [w.text for w in got.words] == " ".join(phrases).split()
        first, second = got.words[:4], got.words[4:]
        for words, (a, b) in ((first, clip.phrases[0]), (second, clip.phrases[1])):
            assert abs(words[0].start - a) <= 0.1 and abs(words[-1].end - b) <= 0.1, (room, words)
            assert all(a - 0.1 <= w.start and w.end <= b + 0.1 for w in words), (room, words)


@pytest.mark.slow
def test_asr_puts_spoken_words_in_text(tmp_path: Path) -> None:
    clip = talking_astronaut(tmp_path / "v" / "talk.mp4", "hello world", lead=0.5, tail=0.5)
    out = tmp_path / "asr.h5"
    rep = extract(clip.path.parent, out, ExtractConfig(asr=True))
    assert rep.text_sources == {"asr": 1}
    kv = load_vectors()
    with FeatureStore(out) as s:
        text, times = s.sequence(0, "text"), s.times(0, "text")
        hits = [k for k in range(len(text)) if np.allclose(text[k], kv["hello"])]
        assert hits, "whisper should hear 'hello'"
        assert clip.speech_start - 0.5 <= times[hits[0], 0] <= clip.speech_end
        asr = s.modalities["text"].extractor.parameters["words"]["asr"]
        assert asr["model"] == "tiny.en" and asr["engine"].startswith("faster-whisper")
        assert s.words_source(0) == "asr" and "hello" in [w.text.lower().strip(",.") for w in s.words(0)]
    r = _mea("info", str(out), "--sample", "talk")
    assert r.returncode == 0 and "words (asr)" in r.stdout and "hello" in r.stdout.lower()
    r = _mea("info", str(out), "--sample", "talk", "--json")
    assert json.loads(r.stdout)["words_source"] == "asr"


def test_missing_asr_model_is_one_clear_error(tmp_path: Path) -> None:
    root = tmp_path / "v"
    write_clip(root / "a.mp4", astronaut(64), 0.5, audio=np.zeros(8000, np.float32))
    r = _mea("extract", str(root), "--out", str(tmp_path / "o.h5"), "--asr-model", str(tmp_path))
    assert r.returncode == 2 and "no model.bin" in r.stderr and "--no-asr" in r.stderr


def test_pyfeat_backend(tmp_path: Path) -> None:
    pytest.importorskip("feat", reason="py-feat (the pyfeat extra) is not installed")
    import os

    weights = os.environ.get("MEA_PYFEAT_WEIGHTS")
    if not weights:
        pytest.skip("set MEA_PYFEAT_WEIGHTS to a folder of py-feat weight files")
    from mea_cli.extract.pyfeat_backend import PyFeatBackend

    clip = write_clip(tmp_path / "f.mp4", astronaut(256), 1.0, fps=5)
    ex = PyFeatBackend(weights)
    from mea_cli.extract.media import iter_frames

    x, t, seen = ex.extract(iter_frames(clip), 0.2)
    assert seen == 5 and x.shape == (5, len(ex.feature_names)) and "AU12" in ex.feature_names
    assert x[:, ex.feature_names.index("AU12")].mean() > 0.5  # smiling: lip-corner puller


def test_pyfeat_missing_weights_is_a_clear_error(tmp_path: Path) -> None:
    from mea_cli.extract.face import FaceModelError
    from mea_cli.extract.pyfeat_backend import PyFeatBackend, missing_weights

    assert "py-feat/xgb_au/xgb_au_classifier_v2.skops" in missing_weights(tmp_path)
    with pytest.raises(FaceModelError, match="weight files missing"):
        PyFeatBackend(tmp_path)


def test_lean_landmarker_reader_matches_public_api(corpus: dict) -> None:
    """The fast path that reads only blendshapes + pose out of MediaPipe's C result gives
    exactly what the public ``detect_for_video`` gives (and a no-face frame gives no step)."""
    from mea_cli.extract import face as face_mod
    from mea_cli.extract.media import iter_frames

    ex = face_mod.BlendshapeBackend()
    with ex._landmarker() as lm:
        assert face_mod._lean_detector(lm) is not None  # the bindings we know are installed
    clip = corpus["good"].path
    fast = ex.extract(iter_frames(clip), 0.04)
    lean = face_mod._lean_detector
    try:
        face_mod._lean_detector = lambda lm: None  # type: ignore[assignment]
        public = ex.extract(iter_frames(clip), 0.04)
    finally:
        face_mod._lean_detector = lean
    assert fast[2] == public[2] and len(fast[0]) > 0
    np.testing.assert_array_equal(fast[0], public[0])
    np.testing.assert_array_equal(fast[1], public[1])
    noface = ex.extract(iter_frames(corpus["root"] / "noface.mp4"), 0.04)
    assert len(noface[0]) == 0 and noface[2] > 0


def test_native_rate_stores_recreate_at_their_rate(corpus: dict) -> None:
    """A store made at every frame (``fps=native``, the default before issue 27) records so, and
    re-creating its extraction keeps every frame; the 15 Hz default records 15."""
    from mea_cli.extract.backends import from_provenance
    from mea_cli.extract.face import BlendshapeBackend

    old = BlendshapeBackend(fps=None).provenance()
    assert old.parameters["fps"] == "native" and old.parameters["options"]["fps"] == ""
    assert from_provenance("vision", old).backend.fps is None
    now = BlendshapeBackend().provenance()
    assert now.parameters["fps"] == 15.0 and from_provenance("vision", now).backend.fps == 15.0


def test_startup_reported_apart(corpus: dict) -> None:
    """The summary names the start-up (models loaded, first video begun) on its own line."""
    from rich.console import Console

    from mea_cli.extract.report import render_report

    report = corpus["report"]
    assert report.startup_seconds >= 0.0  # measured: a number, not NaN
    console = Console(record=True, width=120)
    render_report(report, console)
    row = rf"start-up: models loaded, first video begun \(s\) +│ +{report.startup_seconds:.1f} │"
    assert re.search(row, console.export_text())
