"""``mea import mult``: MulT pickles written here in exactly MulT's layout, checked element by element."""

from __future__ import annotations

import json
import pickle
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import warm

from mea_cli.artifacts.features import FeatureStore
from mea_cli.data.importers import ImportFormatError, import_mult

DIMS = {"text": 6, "vision": 5, "audio": 7}
PADDED = {"text": 9, "vision": 12, "audio": 10}
SIZES = {"train": 7, "valid": 3, "test": 4}


# MulT src/eval_metrics.py, eval_iemocap: emos = ["Neutral", "Happy", "Sad", "Angry"]
MULT_PAIR_EMOTIONS = ("neutral", "happy", "sad", "angry")


def make_mult(
    rng: np.random.Generator, side: str, iemocap: bool = False
) -> tuple[dict, dict[str, dict[str, list[np.ndarray]]]]:
    """A MulT-layout dict and the real (unpadded) sequences it holds, per split and modality."""
    data: dict = {}
    real: dict[str, dict[str, list[np.ndarray]]] = {}
    for split, n in SIZES.items():
        part: dict = {}
        real[split] = {}
        for m, d in DIMS.items():
            t = PADDED[m]
            x = np.zeros((n, t, d), np.float32)
            seqs = []
            for i in range(n):
                length = [0, t, 1, 3][i] if i < 4 else int(rng.integers(1, t))
                seq = rng.normal(size=(length, d)).astype(np.float32)
                if m == "audio" and length:
                    seq[0, 2] = -np.inf  # COVAREP's -inf
                    seq[-1, 0] = np.nan
                if length >= 3:  # an all-zero row inside real data is not padding
                    seq[1] = 0.0
                if side == "left":
                    x[i, t - length :] = seq
                else:
                    x[i, :length] = seq
                seqs.append(seq)
            part[m] = x
            real[split][m] = seqs
        if iemocap:
            hot = rng.integers(0, 4, n)
            pairs = np.zeros((n, 4, 2), np.float32)
            pairs[:, :, 0] = 1
            pairs[np.arange(n), hot, 0] = 0
            pairs[np.arange(n), hot, 1] = 1
            part["labels"] = pairs
        else:
            part["labels"] = rng.uniform(-3, 3, (n, 1, 1)).astype(np.float32)
        part["id"] = np.array(
            [
                [f"{split}vid{i}".encode(), f"{i}.5".encode(), f"{i + 2}.25".encode()]
                for i in range(n)
            ]
        )
        data[split] = part
    return data, real


def write_pickle(path: Path, obj: object) -> Path:
    with path.open("wb") as fh:
        pickle.dump(obj, fh)
    return path


def expected(seq: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(seq), seq, 0).astype(np.float32)


@pytest.mark.parametrize("side", ["left", "right"])
def test_mult_regression_values_lengths_labels_splits(tmp_path: Path, side: str) -> None:
    rng = np.random.default_rng(1 if side == "left" else 2)
    data, real = make_mult(rng, side)
    src = write_pickle(tmp_path / "mosi_data_noalign.pkl", data)
    report = import_mult(src, tmp_path / "out.h5", "mosi")
    for m in DIMS:
        assert report.modalities[m]["padding"] == side
        assert report.modalities[m]["padding_detected"] == side
    n_audio = sum(len(s) for split in real.values() for s in split["audio"])
    n_bad = sum(int((~np.isfinite(s)).sum()) for split in real.values() for s in split["audio"])
    assert n_bad > 0 and report.modalities["audio"]["nonfinite_fixed"] == n_bad
    assert report.modalities["audio"]["steps"] == n_audio
    assert report.splits == SIZES and not report.dropped
    with FeatureStore(tmp_path / "out.h5") as store:
        assert store.meta.dataset == "mosi" and store.meta.task == "regression"
        assert store.meta.label_names == ("sentiment",)
        assert store.meta.attrs["import_format"] == "mult"
        stored_report = json.loads(store.meta.attrs["import_report"])
        assert stored_report["splits"] == SIZES
        assert len(store) == sum(SIZES.values())
        for split, n in SIZES.items():
            for i in range(n):
                k = store.index_of(f"{split}vid{i}_{i}.5_{i + 2}.25")
                assert store.samples.split[k] == split
                assert store.samples.video[k] == f"{split}vid{i}"
                assert store.samples.start[k] == i + 0.5 and store.samples.end[k] == i + 2.25
                assert store.samples.label[k, 0] == data[split]["labels"][i, 0, 0]
                for m in DIMS:
                    got = store.sequence(k, m)
                    want = expected(real[split][m][i])
                    assert got.shape == want.shape, (split, i, m)
                    np.testing.assert_array_equal(got, want)
        assert store.modalities["audio"].extractor.parameters["padding"] == side


def test_mult_iemocap_onehot_pairs(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    data, _ = make_mult(rng, "left", iemocap=True)
    data["train"]["labels"][0, 1] = [1, 1]  # not one-hot: still argmax, reported
    src = write_pickle(tmp_path / "iemocap_data_noalign.pkl", data)
    report = import_mult(src, tmp_path / "iemo.h5")  # dataset inferred from [N, 4, 2]
    assert report.dataset == "iemocap" and any("not exactly one-hot" in x for x in report.notes)
    with FeatureStore(tmp_path / "iemo.h5") as store:
        assert store.meta.task == "binary-multilabel"
        assert store.meta.label_names == ("happy", "sad", "angry", "neutral")
        for split, n in SIZES.items():
            for i in range(n):
                k = store.index_of(f"{split}vid{i}_{i}.5_{i + 2}.25")
                present = np.argmax(data[split]["labels"][i], axis=-1)  # pickle order
                got = dict(zip(store.meta.label_names, store.samples.label[k], strict=True))
                for j, emotion in enumerate(MULT_PAIR_EMOTIONS):
                    assert got[emotion] == present[j], (split, i, emotion)
        k = store.index_of("trainvid0_0.5_2.25")
        # pair 1 is Happy in MulT's order; the tie [1, 1] reads as absent (first maximum)
        assert store.samples.label[k, store.meta.label_names.index("happy")] == 0


def test_mult_iemocap_label_order_is_mults(tmp_path: Path) -> None:
    """One sample per emotion, written the way MulT's pickles hold them: pair j is the emotion
    ``emos[j]`` of MulT's ``eval_iemocap`` (Neutral, Happy, Sad, Angry). Each must come out
    under its own name in the store, whatever the store's column order."""
    rng = np.random.default_rng(6)
    data, _ = make_mult(rng, "left", iemocap=True)
    for split in SIZES:
        pairs = np.zeros((SIZES[split], 4, 2), np.float32)
        pairs[:, :, 0] = 1
        for i in range(SIZES[split]):
            pairs[i, i % 4] = [0, 1]  # sample i shows emotion MULT_PAIR_EMOTIONS[i % 4] only
        data[split]["labels"] = pairs
    src = write_pickle(tmp_path / "iemocap_data_noalign.pkl", data)
    report = import_mult(src, tmp_path / "iemo.h5", "iemocap")
    assert any("neutral, happy, sad, angry" in note for note in report.notes)
    with FeatureStore(tmp_path / "iemo.h5") as store:
        names = store.meta.label_names
        for split, n in SIZES.items():
            for i in range(n):
                k = store.index_of(f"{split}vid{i}_{i}.5_{i + 2}.25")
                shown = [e for e, v in zip(names, store.samples.label[k], strict=True) if v == 1]
                assert shown == [MULT_PAIR_EMOTIONS[i % 4]], (split, i, shown)


def test_mult_forced_padding_and_missing_ids(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    data, real = make_mult(rng, "right")
    for part in data.values():
        del part["id"]
    src = write_pickle(tmp_path / "m.pkl", data)
    import_mult(src, tmp_path / "o.h5", "mosei", padding="right")
    with FeatureStore(tmp_path / "o.h5") as store:
        k = store.index_of("test_00002")
        np.testing.assert_array_equal(store.sequence(k, "vision"), real["test"]["vision"][2])
        assert np.isnan(store.samples.start[k])


def test_mult_drops_nonfinite_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    data, _ = make_mult(rng, "left")
    data["valid"]["labels"][1, 0, 0] = np.nan
    src = write_pickle(tmp_path / "m.pkl", data)
    report = import_mult(src, tmp_path / "o.h5", "mosi")
    assert report.dropped == {"label is not finite": 1}
    assert report.splits["valid"] == SIZES["valid"] - 1
    with FeatureStore(tmp_path / "o.h5") as store:
        assert len(store) == sum(SIZES.values()) - 1
        assert "validvid1_1.5_3.25" not in set(store.samples.id)
        # never a silent drop: the sample is a failure row of the store, which `mea info` lists
        assert [(f.video, f.stage, f.message) for f in store.failures] == [
            ("validvid1_1.5_3.25", "import", "sample validvid1_1.5_3.25: label is not finite")
        ]


def mea(*args: str) -> subprocess.CompletedProcess[str]:
    return warm.run(list(args))


def _one_clear_error(r: subprocess.CompletedProcess[str], words: str) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, r.stderr
    assert words in lines[0], lines[0]
    return lines[0]


class _Evil:
    def __reduce__(self):  # noqa: ANN204 - pickle protocol
        return (print, ("this must never run",))


def test_cli_import_mult_errors_leave_no_output(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    data, _ = make_mult(rng, "left")
    good = write_pickle(tmp_path / "good.pkl", data)
    corrupt = tmp_path / "corrupt.pkl"
    corrupt.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    listed = write_pickle(tmp_path / "list.pkl", [1, 2, 3])
    no_test = write_pickle(tmp_path / "notest.pkl", {k: v for k, v in data.items() if k != "test"})
    mmsa_like = write_pickle(
        tmp_path / "mmsa.pkl",
        {s: {"regression_labels": np.zeros(2)} for s in ("train", "valid", "test")},
    )
    evil = write_pickle(tmp_path / "evil.pkl", {"train": _Evil()})
    persistent = tmp_path / "persid.pkl"  # the pickle module's own message has a line break
    persistent.write_bytes(b"Pabc\n.")
    ckpt = tmp_path / "ckpt.pt"  # torch.save's format: a zip archive
    with zipfile.ZipFile(ckpt, "w") as z:
        z.writestr("archive/data.pkl", b"x")
    cases = [
        (corrupt, ["--dataset", "mosi"], "not a readable pickle"),
        (persistent, ["--dataset", "mosi"], "A load persistent id instruction was encountered, but"),
        (ckpt, ["--dataset", "mosi"], "a zip archive (e.g. a PyTorch checkpoint, ckpt.pt)"),
        (listed, ["--dataset", "mosi"], "not a MulT pickle"),
        (no_test, ["--dataset", "mosi"], "split 'test' is missing"),
        (mmsa_like, [], "use `mea import mmsa`"),
        (good, ["--dataset", "iemocap"], "iemocap needs [N, 4, 2]"),
        (evil, [], "refusing to load"),
        (tmp_path / "absent.pkl", [], "no such mult pickle"),
    ]
    for src, extra, words in cases:
        out = tmp_path / f"{src.stem}.h5"
        r = mea("import", "mult", str(src), "--out", str(out), *extra)
        line = _one_clear_error(r, words)
        assert src.name in line
        assert "this must never run" not in r.stdout
        assert not out.exists()
        assert not list(tmp_path.glob(".*.tmp"))
    # a label shape of the other kind: IEMOCAP pairs given as mosi
    data_i, _ = make_mult(rng, "left", iemocap=True)
    iemo = write_pickle(tmp_path / "iemo.pkl", data_i)
    _one_clear_error(
        mea("import", "mult", str(iemo), "--out", str(tmp_path / "x.h5"), "--dataset", "mosi"),
        "use --dataset iemocap",
    )
    assert not (tmp_path / "x.h5").exists()


def test_cli_import_mult_prints_report(tmp_path: Path) -> None:
    rng = np.random.default_rng(10)
    data, _ = make_mult(rng, "left")
    src = write_pickle(tmp_path / "good.pkl", data)
    r = mea(
        "import", "mult", str(src), "--out", str(tmp_path / "o.h5"), "--dataset", "mosi", "--json"
    )
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["splits"] == SIZES and report["modalities"]["text"]["padding"] == "left"
    r = mea("import", "mult", str(src), "--out", str(tmp_path / "p.h5"), "--dataset", "mosi")
    assert r.returncode == 0 and "train 7" in r.stdout and "non-finite" in r.stdout
    with pytest.raises(ImportFormatError, match="padding must be one of"):
        import_mult(src, tmp_path / "q.h5", "mosi", padding="middle")


def test_cli_import_dropped_sample_is_listed_by_info(tmp_path: Path) -> None:
    """A dropped sample is a line on stderr (with --json too) and a failure row `mea info` shows."""
    data, _ = make_mult(np.random.default_rng(14), "left")
    data["train"]["labels"][0, 0, 0] = np.nan
    src = write_pickle(tmp_path / "nan.pkl", data)
    out = tmp_path / "n.h5"
    r = mea("import", "mult", str(src), "--out", str(out), "--dataset", "mosi", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["dropped"] == {"label is not finite": 1}
    lines = [x for x in r.stderr.splitlines() if "dropped" in x]
    assert len(lines) == 1 and "1 sample(s) (label is not finite: 1)" in lines[0]
    assert str(out) in lines[0]
    r = mea("info", str(out))
    assert r.returncode == 0, r.stderr
    assert "failures: none" not in r.stdout
    assert "label is not finite" in r.stdout and "import" in r.stdout
