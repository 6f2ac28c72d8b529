"""Every refusal of ``import_mult``, ``import_mmsa`` and ``import_csd``, word for word, and no output after one.

The pickles are the MulT / MMSA layouts of ``test_import_mult`` / ``test_import_mmsa`` with one
thing broken each, so a change in any check (its message or the order the checks run in) shows.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
from test_import_csd import make_dir, write_csd
from test_import_mmsa import make_mmsa
from test_import_mult import make_mult, write_pickle

from mea_cli.data.importers import ImportFormatError, import_csd, import_mmsa, import_mult


def _set(split: str, key: str, value: object) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        data[split][key] = value(data[split]) if callable(value) else value

    return change


def _drop(split: str, key: str) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        del data[split][key]

    return change


def _leak(data: dict) -> None:
    ids = data["test"]["id"].astype(object)  # longer bytes than the test split's own dtype
    ids[1] = data["train"]["id"][3]
    data["test"]["id"] = ids


def _leak_mmsa(data: dict) -> None:
    data["test"]["id"][1] = data["train"]["id"][3]


MULT_CASES = [
    (
        lambda d: {"text": d["train"]["text"], "labels": d["train"]["labels"]},
        {},
        "not a MulT pickle: the top level holds text, labels instead of the splits train, valid, test",
    ),
    (lambda d: {**d, "valid": [1, 2]}, {}, "split 'valid' is a list, expected a dict of arrays"),
    (_drop("test", "labels"), {}, "not a MulT pickle: split 'test' has no 'labels' array"),
    (
        _drop("valid", "vision"),
        {},
        "split 'valid' has no 'vision' array (keys: text, audio, labels, id)",
    ),
    (
        _set("train", "audio", lambda p: [["a", "b"]] * len(p["audio"])),
        {},
        "train/audio is not a numeric array: could not convert string to float: 'a'",
    ),
    (
        _set("train", "text", lambda p: p["text"][:, :, 0]),
        {},
        "train/text has shape (7, 9), expected [N, T, D] (zero-padded sequences)",
    ),
    (
        _set("test", "vision", lambda p: p["vision"][:, :, :3]),
        {},
        "test/vision has 3 features but another split has 5",
    ),
    (
        _set("valid", "audio", lambda p: p["audio"][:2]),
        {},
        "split 'valid' arrays disagree on the sample count: text 3, vision 3, audio 2",
    ),
    (_set("valid", "labels", [["x"]] * 3), {}, "valid/labels is not a numeric array"),
    (_set("train", "labels", [[1.0], [1.0, 2.0]]), {}, "train/labels is not a numeric array"),
    (
        _set("test", "labels", lambda p: p["labels"][:3]),
        {},
        "test/labels has 3 rows for 4 samples",
    ),
    (
        _set("train", "labels", lambda p: np.zeros((7, 2))),
        {},
        "train/labels has shape (7, 2); a regression dataset needs one sentiment score per "
        "sample ([N, 1, 1])",
    ),
    (
        _set("train", "labels", lambda p: np.zeros((7, 2))),
        {"dataset": "mosei"},
        "train/labels has shape (7, 2); mosei needs one sentiment score per sample ([N, 1, 1])",
    ),
    (
        _set("train", "labels", lambda p: np.zeros((7, 3, 2))),
        {"dataset": "iemocap"},
        "train/labels has shape (7, 3, 2); iemocap needs [N, 4, 2] (neutral/happy/sad/angry, "
        "each a one-hot pair)",
    ),
    (_set("valid", "id", lambda p: p["id"][:2]), {}, "valid/id has 2 entries for 3 samples"),
    (
        _leak,
        {},
        "sample 'trainvid3_3.5_5.25' is in two splits (train[3] and test[1]): the same segment "
        "in two splits leaks",
    ),
    (
        lambda d: None,
        {"dataset": "cmumosi"},
        "unknown dataset 'cmumosi'; choose one of mosi, mosei, iemocap",
    ),
    (lambda d: None, {"padding": "both"}, "padding must be one of auto, left, right"),
]


@pytest.mark.parametrize(("breaks", "kwargs", "message"), MULT_CASES)
def test_mult_refusals_word_for_word(
    tmp_path: Path, breaks: Callable[[dict], object], kwargs: dict, message: str
) -> None:
    data, _ = make_mult(np.random.default_rng(3), "left")
    data = breaks(data) or data
    src = write_pickle(tmp_path / "m.pkl", data)
    out = tmp_path / "o.h5"
    with pytest.raises(ImportFormatError) as err:
        import_mult(src, out, **kwargs)
    assert str(err.value) == f"{src}: {message}"
    assert not out.exists() and not list(tmp_path.glob(".*"))


def test_mult_directory_and_missing_split_without_modalities(tmp_path: Path) -> None:
    with pytest.raises(ImportFormatError) as err:
        import_mult(tmp_path, tmp_path / "o.h5")
    assert str(err.value) == f"{tmp_path}: is a directory, expected a .pkl file"
    src = write_pickle(tmp_path / "e.pkl", {})
    with pytest.raises(ImportFormatError) as err:
        import_mult(src, tmp_path / "o.h5")
    assert str(err.value) == f"{src}: split 'train' is missing (the pickle has: nothing)"


MMSA_CASES = [
    (
        lambda d: [d],
        {},
        "not a MMSA pickle: the top level is a list, expected a dict of splits train, valid, test",
    ),
    (
        _drop("valid", "regression_labels"),
        {},
        "not an MMSA pickle: split 'valid' has no 'regression_labels'",
    ),
    (
        _set("test", "regression_labels", lambda p: p["regression_labels"][:2]),
        {},
        "test/regression_labels has shape (2,); expected one sentiment score for each of the 3 "
        "samples",
    ),
    (
        _set("train", "regression_labels", lambda p: np.zeros((6, 2))),
        {},
        "train/regression_labels has shape (6, 2); expected one sentiment score for each of the "
        "6 samples",
    ),
    (
        _set("valid", "regression_labels", ["a", "b"]),
        {},
        "valid/regression_labels is not a numeric array",
    ),
    (
        _set("test", "text_bert", lambda p: np.full((3, 3, 6), "x")),
        {},
        "test/text_bert is not a numeric array",
    ),
    (
        _drop("train", "vision_lengths"),
        {},
        "not an MMSA pickle: split 'train' has no 'vision_lengths'",
    ),
    (_set("valid", "audio_lengths", ["a", "b"]), {}, "valid/audio_lengths is not numeric"),
    (
        _set("valid", "audio_lengths", [1, 2, 3]),
        {},
        "valid/audio_lengths has 3 entries for 2 samples",
    ),
    (
        _set("valid", "audio_lengths", [1.5, 2]),
        {},
        "valid/audio_lengths holds values that are not whole numbers",
    ),
    (
        _set("valid", "vision_lengths", [-1, 11]),
        {},
        "valid/vision_lengths[0] = -1 is outside [0, 10] (the padded length); 2 such samples",
    ),
    (
        _set("train", "text_lengths", [1, 2, 3, 4, 5, 99]),
        {},
        "train/text_lengths[5] = 99 is outside [0, 6] (the padded length); 1 such samples",
    ),
    (
        _set("test", "raw_text", ["a"]),
        {},
        "test/raw_text has 1 entries for 3 samples",
    ),
    (_set("test", "id", lambda p: p["id"][:1]), {}, "test/id has 1 entries for 3 samples"),
    (
        _leak_mmsa,
        {},
        "sample 'trainVid$_$3' is in two splits (train[3] and test[1]): the same segment in two "
        "splits leaks",
    ),
    (
        lambda d: None,
        {"dataset": "sims"},
        "unknown dataset 'sims'; choose one of mosi, mosei, iemocap",
    ),
    (
        lambda d: None,
        {"dataset": "iemocap"},
        "train/regression_labels has shape (6,); iemocap needs four binary emotion labels per "
        "sample, which MMSA pickles do not hold",
    ),
]


@pytest.mark.parametrize(("breaks", "kwargs", "message"), MMSA_CASES)
def test_mmsa_refusals_word_for_word(
    tmp_path: Path, breaks: Callable[[dict], object], kwargs: dict, message: str
) -> None:
    data, _ = make_mmsa(np.random.default_rng(4), True)
    data = breaks(data) or data
    src = write_pickle(tmp_path / "u.pkl", data)
    out = tmp_path / "o.h5"
    with pytest.raises(ImportFormatError) as err:
        import_mmsa(src, out, **kwargs)
    assert str(err.value) == f"{src}: {message}"
    assert not out.exists() and not list(tmp_path.glob(".*"))


# -- import_csd --------------------------------------------------------------------------------
def _csd_dir(tmp_path: Path) -> tuple[Path, Path]:
    """The SDK-layout directory of ``test_import_csd`` (videos a, b, c, e) and a folds file."""
    d, _ = make_dir(tmp_path, ["a", "b", "c", "e"], np.random.default_rng(5))
    folds = tmp_path / "folds.json"
    folds.write_text(json.dumps({"train": ["a", "e"], "valid": ["b"], "test": ["c"]}))
    return d, folds


def _write_text(name: str, text: str) -> Callable[[Path, Path], Path]:
    def make(d: Path, tmp: Path) -> Path:
        (tmp / name).write_text(text)
        return tmp / name

    return make


def _replace_csd(name: str, root: str, videos: dict) -> Callable[[Path, Path], None]:
    return lambda d, tmp: write_csd(d / name, root, videos)


def _two_roots(d: Path, tmp: Path) -> None:
    with h5py.File(d / "CMU_MOSI_COVAREP.csd", "a") as f:
        f.create_group("second")


def _no_intervals(d: Path, tmp: Path) -> None:
    with h5py.File(d / "CMU_MOSI_COVAREP.csd", "a") as f:
        del f["COVAREP/data/a/intervals"]


def _short_intervals(d: Path, tmp: Path) -> None:
    with h5py.File(d / "CMU_MOSI_COVAREP.csd", "a") as f:
        del f["COVAREP/data/b/intervals"]
        f["COVAREP/data/b"].create_dataset("intervals", data=np.zeros((3, 2)))


def _string_intervals(d: Path, tmp: Path) -> None:
    with h5py.File(d / "CMU_MOSI_COVAREP.csd", "a") as f:
        del f["COVAREP/data/b/intervals"]
        f["COVAREP/data/b"].create_dataset("intervals", data=np.array([[b"x", b"y"]]))


def _metadata_group(d: Path, tmp: Path) -> None:
    with h5py.File(d / "CMU_MOSI_COVAREP.csd", "a") as f:
        f["COVAREP/metadata"].create_group("nested")


def _broken_link(d: Path, tmp: Path) -> None:
    (d / "CMU_MOSI_COVAREP.csd").unlink()
    (d / "CMU_MOSI_COVAREP.csd").symlink_to(tmp / "gone.csd")


CSD_CASES = [
    # (change to the directory, import_csd keyword arguments, file the error names, message)
    (
        None,
        {"dataset": "mosi", "folds": None, "src": "missing"},
        "missing",
        "expected a directory of .csd files",
    ),
    (
        None,
        {"dataset": "meld"},
        "dir",
        "unknown dataset 'meld'; choose one of mosi, mosei, iemocap",
    ),
    (
        None,
        {"folds": None},
        "dir",
        "no folds: pass --dataset mosi|mosei for the standard folds, or --folds FILE.json",
    ),
    (
        None,
        {"folds": None, "dataset": "iemocap"},
        "dir",
        "no folds: pass --dataset mosi|mosei for the standard folds, or --folds FILE.json "
        "(no standard IEMOCAP folds ship with mea-cli)",
    ),
    (None, {"folds": "absent.json"}, "folds", "no such folds file"),
    (
        _write_text("f.json", "{not json"),
        {"folds": "f.json"},
        "folds",
        "folds file is not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
    ),
    (
        _write_text("f.json", '{"train": [], "valid": []}'),
        {"folds": "f.json"},
        "folds",
        'folds file must be {"train": [ids], "valid": [ids], "test": [ids]}',
    ),
    (
        _write_text("f.json", '{"train": ["a"], "valid": ["a"], "test": []}'),
        {"folds": "f.json"},
        "folds",
        "id 'a' is in both the train and valid folds",
    ),
    (None, {"audio": "absent.csd"}, "dir/absent.csd", "no such .csd file (given for audio)"),
    (
        lambda d, tmp: (d / "CMU_MOSI_COVAREP.csd").unlink(),
        {},
        "dir",
        "no .csd file for audio (looked for names containing covarep/opensmile/audio/acoustic); "
        "name it with --audio-csd FILE",
    ),
    (
        _broken_link,
        {},
        "dir/CMU_MOSI_COVAREP.csd",
        "a broken symbolic link: its target {tmp}/gone.csd does not exist (or links in a loop)",
    ),
    (
        lambda d, tmp: (d / "CMU_MOSI_COVAREP.csd").write_bytes(b"not hdf5"),
        {},
        "dir/CMU_MOSI_COVAREP.csd",
        "not a readable .csd (HDF5) file: Unable to synchronously open file (file signature not found)",
    ),
    (
        _two_roots,
        {},
        "dir/CMU_MOSI_COVAREP.csd",
        "not a computational sequence: expected one root group with a 'data' group",
    ),
    (_no_intervals, {}, "dir/CMU_MOSI_COVAREP.csd", "video 'a' lacks 'features' or 'intervals'"),
    (
        _metadata_group,
        {},
        "dir/CMU_MOSI_COVAREP.csd",
        "metadata entry 'nested' is a group, not a dataset",
    ),
    (
        None,
        {"audio": "CMU_MOSI_TimestampedWords.csd"},
        "dir/CMU_MOSI_TimestampedWords.csd",
        "holds non-numeric features; it cannot be the audio sequence",
    ),
    (
        None,
        {"label_column": 1},
        "dir/CMU_MOSI_Opinion_Labels.csd",
        "label column 1 does not exist (labels have 1 columns)",
    ),
    (
        None,
        {"emotions": ["happy"]},
        "dir",
        "--emotions names IEMOCAP label columns; it needs --dataset iemocap",
    ),
    (
        _short_intervals,
        {},
        "dir/CMU_MOSI_COVAREP.csd",
        "video 'b': features (63, 6) and intervals (3, 2) do not fit [T, 6] and [T, 2]",
    ),
    (
        _string_intervals,
        {},
        "dir/CMU_MOSI_COVAREP.csd",
        "video 'b': unreadable features/intervals: could not convert string to float: np.bytes_(b'x')",
    ),
]


@pytest.mark.parametrize(("change", "kwargs", "named", "message"), CSD_CASES)
def test_csd_refusals_word_for_word(
    tmp_path: Path,
    change: Callable[[Path, Path], object] | None,
    kwargs: dict,
    named: str,
    message: str,
) -> None:
    d, folds = _csd_dir(tmp_path)
    if change is not None:
        change(d, tmp_path)
    kwargs = dict(kwargs)
    src = tmp_path / kwargs.pop("src") if "src" in kwargs else d
    if isinstance(kwargs.get("folds", ""), str):
        kwargs["folds"] = tmp_path / kwargs.get("folds", "folds.json")
    out = tmp_path / "o.h5"
    with pytest.raises(ImportFormatError) as err:
        import_csd(src, out, **kwargs)
    where = {"missing": src, "dir": d, "folds": kwargs.get("folds")}.get(
        named, tmp_path / "csd" / named[4:]
    )
    assert str(err.value) == f"{where}: {message.replace('{tmp}', str(tmp_path))}"
    assert not out.exists() and not list(tmp_path.glob(".*"))


def test_csd_empty_directory_holds_no_csd_files(tmp_path: Path) -> None:
    with pytest.raises(ImportFormatError) as err:
        import_csd(tmp_path, tmp_path / "o.h5", "mosi")
    assert str(err.value) == f"{tmp_path}: holds no .csd files"
