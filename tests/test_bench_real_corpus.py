"""benchmarks/bench_real_corpus.py (``make bench-real``): Emo-DB's file names, the labels file it
writes, its tables, and its cross-validated runs read from what ``mea train --folds`` writes."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from mea_cli.artifacts.features import ExtractorInfo, FeatureStoreWriter, ModalitySchema, Sample

sys.path.append(str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_real_corpus as bench  # noqa: E402


def test_emodb_names_give_speaker_text_and_emotion() -> None:
    assert bench.parse_name("03a01Fa") == ("03", "a01", "happiness")
    assert bench.parse_name("16b10Wb") == ("16", "b10", "anger")
    for stem in ("03a01Xa", "3a01Fa", "03a01Fa_1", "readme"):
        assert bench.parse_name(stem) is None


def test_the_labels_file_has_each_clips_emotion_fixed_split_and_speaker(tmp_path: Path) -> None:
    data = tmp_path / "wav"
    data.mkdir()
    for stem in ("03a01Fa", "13b02Nc", "16a04Tb"):
        (data / f"{stem}.wav").write_bytes(b"")
    labels, n = bench.prepare(data, tmp_path / "work")
    with open(labels) as f:
        rows = list(csv.DictReader(f))
    assert n == 3
    assert [(r["video"], r["label"], r["split"], r["group"]) for r in rows] == [
        ("03a01Fa", "happiness", "train", "03"),
        ("13b02Nc", "neutral", "valid", "13"),
        ("16a04Tb", "sadness", "test", "16"),
    ]
    (data / "17a01Fa.wav").write_bytes(b"")  # speaker 17 is not in Emo-DB
    with pytest.raises(SystemExit, match="not an Emo-DB file name"):
        bench.prepare(data, tmp_path / "work")


def _cv_row(f1_per_fold: list[float]) -> dict:
    folds = [{"acc": f + 0.1, "f1_macro": f} for f in f1_per_fold]
    return {
        "test": {"acc": float(np.mean(f1_per_fold)) + 0.1, "f1_macro": float(np.mean(f1_per_fold))},
        "valid": {"f1_macro": 0.5},
        "fold_std": {"f1_macro": float(np.std(f1_per_fold, ddof=1))},
        "folds": folds,
        "wall_s": 120.0,
        "cpu_s": 60.0,
    }


def test_cross_validated_tables_pair_the_folds_against_the_first_model() -> None:
    results = {
        "functionals": [_cv_row([0.6, 0.7, 0.5])],
        "mea": [_cv_row([0.5, 0.8, 0.4]), _cv_row([0.7, 0.6, 0.4])],
    }
    text = bench.table(results)
    assert "std over folds (test macro-F1)" in text and "train min/seed, all folds (wall)" in text
    mea = next(line for line in text.splitlines() if line.startswith("| mea |"))
    # each seed's value is its mean over folds: 0.5667 and 0.5667; std over seeds 0
    assert "| 2 | 0.667 ± 0.000 | 0.567 ± 0.000 |" in mea
    folds = bench.fold_table(results).splitlines()
    assert folds[2] == "| 1 | 0.600 | 0.600 |"  # mea's fold 1: mean of 0.5 and 0.7
    assert folds[3] == "| 2 | 0.700 | 0.700 |"
    assert folds[4] == "| 3 | 0.500 | 0.400 |"
    assert folds[-1] == "| folds won against functionals | — | 0 of 3 |"  # ties win nothing


def test_the_load_printed_is_the_one_the_runs_were_timed_under() -> None:
    timed = {"load_1min": [0.5, 2.25]}
    assert bench.runs_load({"a": [timed, {"load_1min": [1.0, 3.0]}]}) == (
        "runs' 1-min load average 0.50 to 3.00"
    )
    assert bench.runs_load({"a": [timed, {}]}) == (
        "runs' 1-min load average 0.50 to 2.25 (1 run(s) timed without it)"
    )
    assert bench.runs_load({"a": [{}]}) == "runs' 1-min load average not recorded"


def test_fixed_split_table_lists_each_seeds_chosen_epoch() -> None:
    row = {"test": {"acc": 0.5, "f1_macro": 0.4}, "valid": {"f1_macro": 0.6}, "best_epoch": 12,
           "wall_s": 60.0, "cpu_s": 30.0}  # fmt: skip
    text = bench.table({"mea": [row, {**row, "best_epoch": 30}]})
    assert "best epoch" in text and "| 12, 30 |" in text and "all folds" not in text


def _store(path: Path) -> Path:
    """Six speakers in a column named ``group`` (as the benchmark's labels file names it), two
    classes that shift the audio features."""
    schemas = [
        ModalitySchema(m, tuple(f"{m}{i}" for i in range(d)), ExtractorInfo("test", "0", {}), 10.0)
        for m, d in {"text": 2, "vision": 2, "audio": 3}.items()
    ]
    rng = np.random.default_rng(0)
    with FeatureStoreWriter(
        path, schemas, dataset="test", task="multiclass", label_names=("a", "b"),
        attrs={"group_by": "group"},
    ) as w:  # fmt: skip
        for i in range(36):
            c = i % 2
            feats = {m: rng.normal(c, 1.0, size=(5, d)).astype(np.float32)
                     for m, d in {"text": 2, "vision": 2, "audio": 3}.items()}  # fmt: skip
            w.add(Sample(id=f"s{i:02d}", features=feats, video=f"v{i}", label=np.eye(2, dtype=np.float32)[c],
                         group=f"{i % 6:02d}"))  # fmt: skip
    return path


@pytest.mark.slow
def test_a_cross_validated_run_is_read_from_what_mea_train_folds_writes(tmp_path: Path) -> None:
    store = _store(tmp_path / "store.h5")
    runs = tmp_path / "runs"
    got = bench.train(store, "functionals", 1, runs, threads=1, folds=3)
    run = runs / "functionals-group-cv3-s1"
    assert (run / "folds.json").is_file() and (run / "bench_time.json").is_file()
    assert len(got["folds"]) == 3
    f1 = [f["f1_macro"] for f in got["folds"]]
    assert got["test"]["f1_macro"] == pytest.approx(np.mean(f1))
    assert got["fold_std"]["f1_macro"] == pytest.approx(np.std(f1, ddof=1))
    assert 0.0 <= got["valid"]["f1_macro"] <= 1.0 and got["cpu_s"] > 0.0
    assert len(got["load_1min"]) == 2  # the load the run was timed under, kept with its times
    again = bench.train(store, "functionals", 1, runs, threads=1, folds=3)  # cached: not retrained
    assert again == got


def _sine(path: Path, hz: float, rate: int = 16000, seconds: float = 1.0) -> None:
    t = np.arange(int(rate * seconds)) / rate
    wavfile.write(path, rate, (8000 * np.sin(2 * np.pi * hz * t)).astype(np.int16))


def test_speed_perturbation_scales_duration_down_and_pitch_up_together(tmp_path: Path) -> None:
    _sine(tmp_path / "in.wav", 440.0)
    bench.speed_perturb(tmp_path / "in.wav", 1.1, tmp_path / "fast.wav")
    bench.speed_perturb(tmp_path / "in.wav", 0.9, tmp_path / "slow.wav")
    for name, factor in (("fast", 1.1), ("slow", 0.9)):
        rate, y = wavfile.read(tmp_path / f"{name}.wav")
        assert rate == 16000 and y.dtype == np.int16
        assert len(y) == pytest.approx(16000 / factor, abs=1)
        spectrum = np.abs(np.fft.rfft(y.astype(float)))
        peak_hz = np.argmax(spectrum) * rate / len(y)
        assert peak_hz == pytest.approx(440.0 * factor, abs=2.0)


def test_only_training_speakers_get_copies_each_copy_its_own_group(tmp_path: Path) -> None:
    data = tmp_path / "wav"
    data.mkdir()
    for stem in ("03a01Fa", "13b02Nc", "16a04Tb"):
        _sine(data / f"{stem}.wav", 200.0, seconds=0.2)
    folder = bench.augment(data, tmp_path / "work", (0.9, 1.1))
    assert folder.name == "speed-sp090-sp110"
    assert sorted(p.name for p in folder.glob("*.wav")) == [
        "03a01Fa.wav", "03a01Fa_sp090.wav", "03a01Fa_sp110.wav", "13b02Nc.wav", "16a04Tb.wav",
    ]  # fmt: skip
    labels, n = bench.prepare(folder, tmp_path / "work", "labels-sp090-sp110.csv")
    with open(labels) as f:
        rows = {r["video"]: (r["label"], r["split"], r["group"]) for r in csv.DictReader(f)}
    assert n == 5
    assert rows["03a01Fa_sp090"] == ("happiness", "train", "03@sp090")
    assert rows["03a01Fa_sp110"] == ("happiness", "train", "03@sp110")
    assert rows["13b02Nc"] == ("neutral", "valid", "13") and rows["16a04Tb"][1:] == ("test", "16")
    _sine(folder / "16a04Tb_sp090.wav", 200.0, seconds=0.2)  # a test speaker's copy: refused
    with pytest.raises(SystemExit, match="copy of a test speaker"):
        bench.prepare(folder, tmp_path / "work")


def test_speed_perturbation_is_refused_with_folds_and_bad_factors(tmp_path: Path, capsys) -> None:
    assert bench.main([str(tmp_path), "--speed-perturb", "0.9,1.1", "--folds", "5"]) == 2
    assert "--folds" in capsys.readouterr().err
    for bad in ("1.0", "0.9,x", "3"):
        assert bench.main([str(tmp_path), "--speed-perturb", bad]) == 2
        assert "--speed-perturb" in capsys.readouterr().err


def test_the_seeds_averaged_are_printed_with_valid_beside_test() -> None:
    scores = {"valid": {"acc": 0.7, "f1_macro": 0.656}, "test": {"acc": 0.63, "f1_macro": 0.5849}}
    assert bench.ensemble_line("mea", scores, [1, 2, 3]) == (
        "mea, its 3 seeds' class probabilities averaged (mea eval RUN RUN ...): test accuracy "
        "0.630, test macro-F1 0.585, valid macro-F1 0.656"
    )
