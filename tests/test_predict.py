"""``mea predict``: raw clips -> the checkpoint's recorded extraction -> its model -> answers.

One module corpus: six talking clips (scikit-image's astronaut photo with eSpeak NG speech and
``.txt`` transcripts), extracted once into a 1-5 rating store and a 3-class store (the second
from the extraction cache), a small MEA trained on each for a few epochs. Then predictions on
new clips of every kind the issue lists: with a transcript, without (ASR), without audio,
without a face, a folder with a broken file, and checkpoints whose extraction cannot be
re-created. The values must equal those ``mea eval`` computes for the same clips (1e-5).
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import warm
from sampleclips import astronaut, require_media, talking_astronaut, write_clip

from mea_cli import MODALITIES
from mea_cli.artifacts.checkpoint import load_checkpoint, save_checkpoint
from mea_cli.errors import MeaError
from mea_cli.extract.labelparse import LabelSpec
from mea_cli.extract.pipeline import ExtractConfig
from mea_cli.predict.api import PredictError, predict
from mea_cli.train.evaluate import evaluate_checkpoint
from mea_cli.train.trainer import TrainRequest, train_run

TEXTS = (
    "this is a wonderful happy day",
    "what a terrible boring film",
    "it was fine and ordinary",
    "a great and lovely story",
    "an awful sad ending",
    "the movie was okay",
)
RATINGS = (5, 1, 3, 4, 2, 3)
CLASSES = ("pos", "neg", "neu", "pos", "neg", "neu")
SPLITS = ("train", "train", "train", "train", "valid", "test")
SMALL = {"d": 8, "heads": 2, "d_h": 8, "psa_layers": 1, "hca_layers": 1}


def _labels(path: Path, values: tuple) -> Path:
    rows = [f"c{k},{v},{s}" for k, (v, s) in enumerate(zip(values, SPLITS, strict=True))]
    path.write_text("video,label,split\n" + "\n".join(rows) + "\n")
    return path


def _train(store: Path, task: str, name: str, runs: Path, label_range=None) -> Path:
    torch.manual_seed(0)
    train_run(
        TrainRequest(
            features=store,
            dataset=None,
            task=task,
            label_range=label_range,
            model_overrides=SMALL,
            train_overrides={"epochs": 2, "batch_size": 4},
            device="cpu",
            name=name,
            runs_dir=runs,
            live=False,
        )  # fmt: skip
    )
    return runs / name


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    require_media()
    from mea_cli.extract.driver import extract

    root = tmp_path_factory.mktemp("predict")
    vids = root / "videos"
    for k, text in enumerate(TEXTS):
        talking_astronaut(vids / f"c{k}.mp4", text, lead=0.2, tail=0.2)
        (vids / f"c{k}.txt").write_text(text + "\n")
    cfg, cache = ExtractConfig(asr=True), root / "cache"  # all have transcripts: ASR not run
    reg, cls = root / "rating.h5", root / "classes.h5"
    extract(vids, reg, cfg, labels=_labels(root / "r.csv", RATINGS), cache_dir=cache,
            label_spec=LabelSpec(value_range=(1.0, 5.0)))  # fmt: skip
    extract(vids, cls, cfg, labels=_labels(root / "c.csv", CLASSES), cache_dir=cache)
    runs = root / "runs"
    return {
        "root": root,
        "videos": vids,
        "rating": reg,
        "classes": cls,
        "reg_run": _train(reg, "regression", "rating", runs),
        "cls_run": _train(cls, "classification", "classes", runs),
    }


@pytest.fixture(autouse=True)
def _media() -> None:
    require_media()


def test_same_values_as_eval_on_the_same_clips(world: dict, tmp_path: Path) -> None:
    """Each labelled clip is one whole-video sample, so predict and eval see the same input."""
    for run, split in ((world["reg_run"], "train"), (world["cls_run"], "train")):
        csv_path = tmp_path / f"{run.name}.csv"
        ev = evaluate_checkpoint(run, None, split, "cpu", predictions=csv_path)
        with csv_path.open() as f:
            rows = {r["video"]: r for r in csv.DictReader(f)}
        assert len(rows) == ev.n == 4
        rep = predict(world["videos"], run)
        got = {c.clip: c for c in rep.clips}
        assert rep.failed == 0 and len(got) == len(TEXTS)
        store = world["rating" if run == world["reg_run"] else "classes"]
        stored = {c.clip: c for c in predict(store, run).clips}  # the store: no extraction
        assert len(stored) == len(TEXTS)
        for video, row in rows.items():
            p = got[video].prediction
            q = stored[row["id"]]
            assert q.path == f"{store}#{row['id']}" and q.words == got[video].words
            if "score" in p:
                assert p["score"] == pytest.approx(float(row["pred_score"]), abs=1e-5)
                assert q.prediction["score"] == pytest.approx(p["score"], abs=1e-5)
                assert float(row["truth_score"]) == RATINGS[int(video[1:])]
            else:
                assert p["class"] == row["pred_class"]
                assert row["truth_class"] == CLASSES[int(video[1:])]
                for name, v in p["probabilities"].items():
                    assert v == pytest.approx(float(row[f"pred_p_{name}"]), abs=1e-5)
                    assert v == pytest.approx(q.prediction["probabilities"][name], abs=1e-5)


def test_functionals_on_opensmile_functionals_predicts_as_it_evaluates(
    world: dict, tmp_path: Path
) -> None:
    """The baseline fitted with the store's openSMILE functionals (/summary/audio) beside its
    LLD statistics: ``mea predict`` on the raw clips re-creates them and answers as ``mea eval``
    does on the store."""
    runs = tmp_path / "runs"
    train_run(
        TrainRequest(
            features=world["classes"], dataset=None, task="classification", model="functionals",
            device="cpu", name="f", runs_dir=runs, live=False,
        )  # fmt: skip
    )
    cfg = json.loads((runs / "f" / "config.json").read_text())["model_config"]
    assert cfg["summary_dims"] == {"audio": 88}  # audio=auto: "both"
    csv_path = tmp_path / "f.csv"
    evaluate_checkpoint(runs / "f", None, "train", "cpu", predictions=csv_path)
    with csv_path.open() as f:
        rows = {r["video"]: r for r in csv.DictReader(f)}
    (clip,) = predict(world["videos"] / "c0.mp4", runs / "f").clips  # one clip: extraction costs
    for name, v in clip.prediction["probabilities"].items():
        assert v == pytest.approx(float(rows["c0"][f"pred_p_{name}"]), abs=1e-5)


def test_every_kind_of_clip_field_by_field(world: dict, tmp_path: Path) -> None:
    new = tmp_path / "new"
    talking_astronaut(new / "said.mp4", "a happy wonderful day", lead=0.2, tail=0.2)
    (new / "said.txt").write_text("a happy wonderful day\n")
    write_clip(new / "mute.mp4", astronaut(160), 1.2)  # no audio stream
    (new / "mute.txt").write_text("quiet\n")
    talking_astronaut(new / "cup.mp4", "good morning", face=False, lead=0.2, tail=0.2)
    (new / "cup.txt").write_text("good morning\n")
    (new / "sub").mkdir()
    (new / "sub" / "broken.mp4").write_bytes(b"not a video at all")
    (new / "notes.md").write_text("not a video")
    rep = predict(new, world["reg_run"], batch_size=2)
    d = rep.to_dict()
    assert (d["model"], d["task"], d["label_range"]) == ("mea", "regression", [1.0, 5.0])
    assert d["modality_weights"] is True and d["predicted"] == 3 and d["failed"] == 1
    clips = {c["clip"]: c for c in d["clips"]}
    assert sorted(clips) == ["cup", "mute", "said", "sub/broken"]
    for name in ("said", "mute", "cup"):
        c = clips[name]
        assert c["status"] == "ok" and c["path"].endswith(f"{name}.mp4")
        p = c["prediction"]
        assert set(p) == {"score", "polarity", "class"}
        assert p["polarity"] == ("positive" if p["score"] > 3.0 else "negative")
        assert p["class"] == int(np.round(np.clip(p["score"], 1, 5)))
        w = c["modality_weights"]
        assert sorted(w) == sorted(MODALITIES) and sum(w.values()) == pytest.approx(1.0, abs=1e-4)
        assert len(c["weights_per_layer"]) >= 1 and c["weights_per_layer"][-1] == w
        assert c["words_source"] == "sidecar.txt" and c["duration_s"] > 1.0
        assert sorted(c["steps"]) == sorted(MODALITIES)
        assert c["missing_modalities"] == [m for m in MODALITIES if c["steps"][m] == 0]
    assert (
        clips["said"]["text"] == "a happy wonderful day"
        and clips["said"]["missing_modalities"] == []
    )
    assert clips["mute"]["missing_modalities"] == ["audio"] and clips["mute"]["text"] == "quiet"
    assert clips["cup"]["missing_modalities"] == ["vision"]
    assert any(f["stage"] == "vision" for f in clips["cup"]["failures"])
    assert any(f["stage"] == "audio" for f in clips["mute"]["failures"])
    bad = clips["sub/broken"]
    assert bad["status"] == "failed" and bad["prediction"] is None and bad["failures"]


def test_a_clip_alone_gives_the_same_answer_as_in_a_folder(world: dict) -> None:
    """Bucketing and batching do not change a clip's answer."""
    alone = predict(world["videos"] / "c2.mp4", world["cls_run"]).clips[0]
    batch = {c.clip: c for c in predict(world["videos"], world["cls_run"], batch_size=4).clips}
    assert alone.clip == "c2"
    for name, v in alone.prediction["probabilities"].items():
        assert v == pytest.approx(batch["c2"].prediction["probabilities"][name], abs=1e-5)
    assert set(alone.prediction["probabilities"]) == {"neg", "neu", "pos"}


@pytest.mark.slow
def test_a_clip_without_transcript_is_heard_by_asr(world: dict, tmp_path: Path) -> None:
    talking_astronaut(tmp_path / "v" / "talk.mp4", "hello world", lead=0.4, tail=0.4)
    c = predict(tmp_path / "v", world["reg_run"]).to_dict()["clips"][0]
    assert c["status"] == "ok" and c["words_source"] == "asr"
    assert "hello" in c["text"].lower() and c["missing_modalities"] == []


def _altered(world: dict, tmp_path: Path, change) -> Path:
    ckpt = load_checkpoint(world["reg_run"] / "ckpt.pt")
    change(ckpt.schema)
    (tmp_path / "altered").mkdir(parents=True)
    return save_checkpoint(ckpt, tmp_path / "altered" / "ckpt.pt")


def test_unavailable_extraction_is_refused_before_any_clip(world: dict, tmp_path: Path) -> None:
    def no_backend(schema: dict) -> None:
        schema["vision"]["extractor"]["parameters"]["backend"] = "kinect-au"

    def synthetic(schema: dict) -> None:
        schema["audio"]["extractor"] = {"name": "mea-synth", "version": "1", "parameters": {}}

    with pytest.raises(MeaError, match="kinect-au"):
        predict(world["videos"], _altered(world, tmp_path / "a", no_backend))
    synth = _altered(world, tmp_path / "b", synthetic)
    with pytest.raises(MeaError, match="audio features were made by 'mea-synth'.*cannot be re"):
        predict(world["videos"], synth)
    # the real entry point: one line naming the checkpoint whose extraction it is, no output
    out = tmp_path / "o.csv"
    r = warm.run(["predict", str(world["videos"]), "--ckpt", str(synth), "--out", str(out)])
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(lines) == 1, r.stderr
    assert f"{synth}: audio features were made by 'mea-synth'" in lines[0]
    assert not out.exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(PredictError, match="no video or audio file found"):
        predict(tmp_path / "empty", world["reg_run"])


def test_cli_json_csv_and_table(world: dict, tmp_path: Path, mea) -> None:
    out = tmp_path / "answers.csv"
    code, stdout, err = mea("predict", str(world["videos"] / "c0.mp4"), "--ckpt",
                            str(world["cls_run"]), "--json", "--out", str(out))  # fmt: skip
    assert code == 0, err
    d = json.loads(stdout)
    assert d["task"] == "multiclass" and d["label_names"] == ["neg", "neu", "pos"]
    (clip,) = d["clips"]
    with out.open() as f:
        (row,) = list(csv.DictReader(f))
    assert row["clip"] == "c0" and row["pred_class"] == clip["prediction"]["class"]
    assert float(row["psi_text"]) == pytest.approx(clip["modality_weights"]["text"], abs=1e-6)
    assert row["text"] == TEXTS[0] and row["words_source"] == "sidecar.txt" and row["missing"] == ""
    code, stdout, err = mea("predict", str(world["videos"]), "--ckpt", str(world["reg_run"]))
    assert code == 0, err
    assert "c5" in stdout and "modality weights" in stdout and "(sidecar.txt)" in stdout


def test_files_that_are_not_media_are_named_not_dropped(world: dict, tmp_path: Path) -> None:
    """A folder's files that are not media (a store, notes, a damaged clip with an extension
    FFmpeg does not know) are named as ``mea extract`` names them: a line on stderr and a note
    of the report (--json: ``notes`` and ``skipped_files``)."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(world["videos"] / "c0.mp4", folder / "c0.mp4")
    (folder / "c0.txt").write_text(TEXTS[0] + "\n")  # a transcript sidecar: not listed
    (folder / "notes.md").write_text("hi\n")
    shutil.copy(world["rating"], folder / "store.h5")
    (folder / "broken.vid").write_bytes(b"garbage")
    out = tmp_path / "o.csv"
    r = warm.run(["predict", str(folder), "--ckpt", str(world["reg_run"]), "--json",
                  "--out", str(out)])  # fmt: skip
    assert r.returncode == 0, r.stderr
    want = "not media, skipped: *.h5: store.h5; *.md: notes.md; *.vid: broken.vid"
    assert [x for x in r.stderr.splitlines() if "not media" in x] == [f"{folder}: {want}"]
    d = json.loads(r.stdout)
    assert want in d["notes"] and d["skipped_files"] == ["broken.vid", "notes.md", "store.h5"]
    assert [c["clip"] for c in d["clips"]] == ["c0"]
    r = warm.run(["predict", str(folder), "--ckpt", str(world["reg_run"])])
    assert r.returncode == 0 and f"note: {want}" in r.stdout, r.stderr


def test_cli_refusals_are_one_line_exit_2(world: dict, tmp_path: Path, mea) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.mp4").write_bytes(b"garbage")
    out = tmp_path / "o.csv"
    code, stdout, err = mea("predict", str(bad), "--ckpt", str(world["reg_run"]), "--out", str(out))
    lines = [x for x in err.splitlines() if x.strip() and not x.startswith("predict:")]
    assert code == 2 and "Traceback" not in err
    assert "no clip could be predicted (1 failed" in lines[-1] and str(out) in lines[-1]
    with out.open() as f:
        (row,) = list(csv.DictReader(f))
    assert row["status"] == "failed" and row["failures"]  # the failure row is kept, not dropped
    moved = tmp_path / "moved"
    shutil.copytree(world["reg_run"], moved)
    ckpt = load_checkpoint(moved / "ckpt.pt")
    ckpt.schema["audio"]["extractor"]["parameters"]["backend"] = "praat"
    save_checkpoint(ckpt, moved / "ckpt.pt")
    code, _, err = mea("predict", str(world["videos"]), "--ckpt", str(moved))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "praat" in err, err


def test_custom_tasks_evaluate_with_their_own_metrics(world: dict, mea) -> None:
    """A 1-5 rating store and a 3-class store, trained with ``--task``: their metrics."""
    code, out, err = mea("eval", str(world["reg_run"]), "--split", "train", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert (d["dataset"], d["task"], d["label_range"]) == ("custom", "regression", [1.0, 5.0])
    assert set(d["metrics"]) == {"mae", "corr", "acc5", "acc2", "f1"} and d["confusion"] is None
    code, out, err = mea("eval", str(world["cls_run"]), "--split", "train")
    assert code == 0, err
    for words in ("F1 (macro)", "F1 (weighted)", "confusion matrix (rows: truth", "neu"):
        assert words in out, out
    png = world["cls_run"] / "confusion-train.png"
    assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG"
    config = json.loads((world["cls_run"] / "config.json").read_text())
    assert config["task"] == "multiclass" and config["label_names"] == ["neg", "neu", "pos"]


def test_a_checkpoint_trained_aligned_aligns_what_it_extracts(world: dict, tmp_path: Path) -> None:
    """Trained on ``mea align`` output, predict from the videos collapses each clip onto its
    words as align did: the same answers as predicting from the aligned store."""
    from mea_cli.align import align_store
    from mea_cli.artifacts.features import FeatureStore

    aligned = tmp_path / "aligned.h5"
    align_store(world["rating"], aligned, "max")
    run = _train(aligned, "regression", "aligned", tmp_path / "runs", label_range=(1.0, 5.0))
    from_videos = {c.clip: c for c in predict(world["videos"], run).clips}
    with FeatureStore(aligned) as st:
        video_of = {str(i): str(v) for i, v in zip(st.samples.id, st.samples.video, strict=True)}
        words = {str(i): len(st.words(k)) for k, i in enumerate(st.samples.id)}
    from_store = predict(aligned, run).clips
    assert len(from_store) == len(from_videos) == len(TEXTS)
    for c in from_store:
        v = from_videos[video_of[c.clip]]
        assert v.status == "ok" and v.steps == {m: words[c.clip] for m in v.steps}  # word rate
        assert v.prediction["score"] == pytest.approx(c.prediction["score"], abs=1e-5)
