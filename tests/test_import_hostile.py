"""``mea import`` on hostile and unusual inputs: pickles of every protocol, damaged and crafted
pickles (one error line, never a crash), imports that would keep no train or no valid sample,
``.csd`` files as the SDK's align and deploy leave them (``video[k]`` keys), empty and
malformed videos, steps out of time order, and what the report notes about them."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import warm
from test_import_csd import make_dir, steps, write_csd
from test_import_mmsa import make_mmsa
from test_import_mult import SIZES, make_mult, write_pickle
from test_train_errors import one_clear_line

from mea_cli.artifacts.features import FeatureStore
from mea_cli.data.importers import ImportFormatError, import_csd, import_mmsa, import_mult
from mea_cli.data.importers.csd import standard_folds


def _one_error_line(args: list[str], *words: str) -> str:
    """``mea ARGS`` in a subprocess (a segfault is a negative exit code): exit 2, one line."""
    return one_clear_line(warm.run(args), *words)


def _same_store(a: Path, b: Path) -> None:
    with FeatureStore(a) as x, FeatureStore(b) as y:
        assert list(x.samples.id) == list(y.samples.id)
        np.testing.assert_array_equal(x.samples.label, y.samples.label)
        for i in range(len(x)):
            for m in ("text", "vision", "audio"):
                np.testing.assert_array_equal(x.sequence(i, m), y.sequence(i, m))


# -- pickles -----------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", range(6))
def test_every_pickle_protocol_imports(tmp_path: Path, protocol: int) -> None:
    """Python 3 writes bytes as ``_codecs.encode(text, 'latin1')`` at protocols 0-2 (and empty
    bytes as ``bytes()``): the arrays' data, so such pickles are benchmark pickles too."""
    mult, _ = make_mult(np.random.default_rng(20), "left")
    mult["test"]["extra"] = np.zeros((0, 3))  # an empty array: empty bytes
    big_endian = np.dtype(">f4")  # one dtype object, pickled once and then from the memo
    for part in mult.values():
        part["labels"] = part["labels"].astype(big_endian)
    mmsa, _ = make_mmsa(np.random.default_rng(21), True)  # object arrays: id, raw_text
    for name, data, run in (("mult", mult, import_mult), ("mmsa", mmsa, import_mmsa)):
        ref = write_pickle(tmp_path / f"{name}_ref.pkl", data)
        src = tmp_path / f"{name}_p{protocol}.pkl"
        src.write_bytes(pickle.dumps(data, protocol=protocol))
        report = run(src, tmp_path / f"{name}_p{protocol}.h5", "mosi")
        run(ref, tmp_path / f"{name}_ref.h5", "mosi")
        assert report.samples == sum(len(p["text"]) for p in data.values())
        _same_store(tmp_path / f"{name}_p{protocol}.h5", tmp_path / f"{name}_ref.h5")


# numpy's own Python 2 pickle (numpy's test_regression.py, test_pickle_py2_array_latin1_hack)
_PY2_ARRAY = (
    b"cnumpy.core.multiarray\n_reconstruct\np0\n(cnumpy\nndarray\np1\n(I0\n"
    b"tp2\nS'b'\np3\ntp4\nRp5\n(I1\n(I1\ntp6\ncnumpy\ndtype\np7\n(S'i1'\np8\n"
    b"I0\nI1\ntp9\nRp10\n(I3\nS'|'\np11\nNNNI-1\nI-1\nI0\ntp12\nbI00\nS'\\x81'\n"
    b"p13\ntp14\nb."
)


@pytest.mark.parametrize("protocol", [0, 2, 3])  # (4 and 5 are framed: no edit in place)
def test_pickles_of_numpy_before_1_19_import(tmp_path: Path, protocol: int) -> None:
    """numpy wrote ``dtype('f4', 0, 1)``, its flags as integers, until 1.19 (2020): the 2019
    MulT pickles and every Python 2 one. They were refused as damaged."""
    mult, _ = make_mult(np.random.default_rng(22), "left")
    new = pickle.dumps(mult, protocol=protocol)
    old = (
        new.replace(b"I00\nI01\n", b"I0\nI1\n")
        if protocol == 0
        else new.replace(b"\x89\x88", b"K\x00K\x01")  # NEWFALSE NEWTRUE -> BININT1 0, 1
    )
    assert old != new and pickle.loads(old).keys() == mult.keys()
    (tmp_path / "old.pkl").write_bytes(old)
    (tmp_path / "new.pkl").write_bytes(new)
    import_mult(tmp_path / "old.pkl", tmp_path / "old.h5", "mosi")
    import_mult(tmp_path / "new.pkl", tmp_path / "new.h5", "mosi")
    _same_store(tmp_path / "old.h5", tmp_path / "new.h5")
    (tmp_path / "py2.pkl").write_bytes(_PY2_ARRAY)
    from mea_cli.data.importers.pickles import load_pickle

    assert load_pickle(tmp_path / "py2.pkl").tolist() == [-127]


class _Crafted:
    """Pickles as ``func(*args)`` then ``BUILD`` with ``state``: what numpy writes for an array
    or a dtype, with a state numpy never writes."""

    def __init__(self, func: object, args: tuple, state: object) -> None:
        self.reduced = (func, args, state)

    def __reduce__(self) -> tuple:
        return self.reduced


_RECONSTRUCT = np.zeros(1).__reduce__()[0]  # numpy's _reconstruct, under its module's name
_F8 = ("f8", False, True)


def _recipe(data: dict) -> bytes:
    """The auditor's recipe: 3 bytes of a float dtype's state changed (``NNN`` -> ``MNN``,
    item size and alignment shift into the fields), which segfaulted ``numpy.dtype.__setstate__``."""
    b = pickle.dumps(data, protocol=3)
    p = b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t"
    assert p in b
    return b.replace(p, b"M" + p[1:], 1)


def _array(shape: tuple, dtype: object, data: object) -> _Crafted:
    """An array pickled as numpy does, with the state given."""
    return _Crafted(_RECONSTRUCT, (np.ndarray, (0,), b"b"), (1, shape, dtype, False, data))


CRAFTED = {
    "recipe": None,
    # an f8 dtype flagged as holding object references: numpy reads the bytes as pointers
    "refcount-flag": _array(
        (2,), _Crafted(np.dtype, _F8, (3, "<", None, None, None, -1, -1, 1)), b"A" * 16
    ),
    # an object array whose list is shorter than its shape: numpy reads past the list's end
    "short-object-list": _array((4096,), np.dtype("O"), ["a", "b"]),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_crafted_numpy_state_is_one_error_line_not_a_crash(tmp_path: Path, case: str) -> None:
    data, _ = make_mult(np.random.default_rng(22), "left")
    src = tmp_path / f"{case}.pkl"
    if CRAFTED[case] is None:
        src.write_bytes(_recipe(data))
    else:
        data["train"]["audio"] = CRAFTED[case]
        src.write_bytes(pickle.dumps(data, protocol=3))
    out = tmp_path / "o.h5"
    line = _one_error_line(
        ["import", "mult", str(src), "--out", str(out), "--dataset", "mosi"],
        str(src),
        "not a readable pickle (damaged or not a pickle of arrays)",
    )
    assert line.startswith("error: ")
    assert not out.exists() and not list(tmp_path.glob(".*.tmp"))


_MUTATE = r"""
import pathlib, pickle, random, sys, traceback
import numpy as np
from mea_cli.data.importers.errors import ImportFormatError
from mea_cli.data.importers.pickles import load_pickle

d = {"train": {"text": np.arange(24, dtype=np.float32).reshape(2, 3, 4),
               "id": np.array([[b"a", b"1", b"2"]] * 2), "labels": np.ones((2, 1, 1)),
               "raw_text": np.array(["x", "yy"], dtype=object), "n": np.int64(3),
               "be": np.arange(3, dtype=">i4"), "empty": np.zeros((0, 3))}}
blobs = [pickle.dumps(d, protocol=p) for p in range(6)]
rng = random.Random(int(sys.argv[1]))
path = pathlib.Path(sys.argv[2])
for it in range(int(sys.argv[3])):
    b = bytearray(rng.choice(blobs))
    if rng.random() < 0.2:
        b = b[: rng.randrange(len(b))]
    else:
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
    path.write_bytes(bytes(b))
    try:
        load_pickle(path)
    except ImportFormatError as err:
        assert "\n" not in str(err), str(err)
    except BaseException:
        print("mutation", it, "escaped:")
        traceback.print_exc()
        sys.exit(1)
print("ok")
"""


def test_seeded_mutations_never_crash_or_escape(tmp_path: Path) -> None:
    """Random bytes changed in small pickles of every protocol: each load gives data or one
    ImportFormatError line; never a segfault (negative exit code) or another exception."""
    r = subprocess.run(
        [sys.executable, "-c", _MUTATE, "0", str(tmp_path / "m.pkl"), "3000"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0 and r.stdout.strip() == "ok", (r.returncode, r.stdout, r.stderr)


# -- imports that would keep no train or valid sample ------------------------------------------
def _mosi_dir(tmp_path: Path) -> Path:
    folds = standard_folds("mosi")
    videos = [folds["train"][0], folds["valid"][0], folds["test"][0], folds["train"][1]]
    d, _ = make_dir(tmp_path, videos, np.random.default_rng(23))
    return d


def _refusal(args: list[str], out: Path, *words: str) -> None:
    """``mea import ARGS --out OUT`` is refused in one line and leaves ``out`` as it was."""
    before = out.read_bytes()
    _one_error_line(["import", *args, "--out", str(out)], *words)
    assert out.read_bytes() == before and not list(out.parent.glob(".*.tmp"))


def test_no_train_or_valid_sample_is_an_error_and_leaves_the_output(tmp_path: Path) -> None:
    d = _mosi_dir(tmp_path)
    out = tmp_path / "o.h5"
    import_csd(d, out, "mosi")  # an existing store at --out: a failed import must leave it
    with pytest.raises(ImportFormatError) as err:
        import_csd(d, tmp_path / "x.h5", "mosei")  # MOSI videos are in no MOSEI fold
    assert str(err.value) == (
        f"{d}: no sample would be imported into train and valid (12 of 12 samples dropped, "
        "12: video is in no fold; do the folds fit these files? --dataset picks the standard "
        "folds, --folds FILE.json others); a store needs train and valid samples"
    )
    _refusal(["csd", str(d), "--dataset", "mosei"], out, str(d), "video is in no fold")
    data, _ = make_mult(np.random.default_rng(24), "left")
    for part in data.values():
        part["labels"][:] = np.nan
    nan = write_pickle(tmp_path / "nan.pkl", data)
    _refusal(
        ["mult", str(nan), "--dataset", "mosi"],
        out,
        "nan.pkl: no sample would be imported into train and valid (14 of 14 samples dropped, "
        "14: label is not finite)",
    )
    data, _ = make_mult(np.random.default_rng(25), "left")
    data["valid"] = {k: v[:0] for k, v in data["valid"].items()}
    empty = write_pickle(tmp_path / "novalid.pkl", data)
    _refusal(
        ["mult", str(empty), "--dataset", "mosi"],
        out,
        "novalid.pkl: no sample would be imported into valid (the source holds none)",
    )
    assert not (tmp_path / "x.h5").exists()


def _aligned(videos: dict[str, tuple[np.ndarray, np.ndarray]], segs: dict, nested: bool) -> dict:
    """What the SDK's ``align`` + ``deploy`` write: one entry ``video[k]`` per labelled segment
    (``video[k][0]`` after a second alignment) holding that segment's steps."""
    out = {}
    for v, (x, iv) in videos.items():
        for k, (s, e) in enumerate(segs[v]):
            sel = (iv[:, 0] < e) & (iv[:, 1] > s)
            out[f"{v}[{k}]" + ("[0]" if nested else "")] = (x[sel], iv[sel])
    return out


@pytest.mark.parametrize("nested", [False, True])
def test_sdk_aligned_video_keys_find_their_fold(tmp_path: Path, nested: bool) -> None:
    folds = standard_folds("mosi")
    names = {"train": folds["train"][:2], "valid": folds["valid"][:1], "test": folds["test"][:1]}
    rng = np.random.default_rng(26)
    segs = {v: np.array([[0.5, 2.0], [2.0, 3.7]]) for vs in names.values() for v in vs}
    d = tmp_path / "aligned"
    d.mkdir()
    labels = {v: (rng.uniform(-3, 3, (2, 1)).astype(np.float32), segs[v]) for v in segs}
    write_csd(d / "CMU_MOSI_Opinion_Labels.csd", "Opinion Segment Labels", _aligned(
        {v: (y, iv) for v, (y, iv) in labels.items()}, segs, nested
    ))  # fmt: skip
    for name, root, rate, dim in (
        ("CMU_MOSI_TimestampedWordVectors.csd", "glove_vectors", 3.0, 3),
        ("CMU_MOSI_Visual_Facet_42.csd", "FACET", 15.0, 4),
        ("CMU_MOSI_COVAREP.csd", "COVAREP", 12.5, 6),
    ):
        write_csd(d / name, root, _aligned({v: steps(rng, 4.0, rate, dim) for v in segs}, segs, nested))
    report = import_csd(d, tmp_path / "o.h5", "mosi")
    assert report.splits == {"train": 4, "valid": 2, "test": 2} and not report.dropped
    with FeatureStore(tmp_path / "o.h5") as store:
        for split, vs in names.items():
            for v in vs:
                k = store.index_of(f"{v}[1]" + ("[0]" if nested else "") + "[0]")
                assert store.samples.split[k] == split
                assert store.samples.video[k] == v  # the video, as the folds name it
                assert store.samples.label[k, 0] == labels[v][0][1, 0]


# -- odd .csd videos ---------------------------------------------------------------------------
def _rewrite(path: Path, change: object) -> None:
    with h5py.File(path, "a") as f:
        root = next(iter(f))
        change(f[root]["data"])


def _empty_1d(data: h5py.Group) -> None:
    first = list(data)[0]
    del data[first]
    g = data.create_group(first)
    g.create_dataset("features", data=np.zeros((0,), np.float32))
    g.create_dataset("intervals", data=np.zeros((0,)))


def test_csd_empty_videos_of_any_shape(tmp_path: Path) -> None:
    d = _mosi_dir(tmp_path)
    vision = d / "CMU_MOSI_Visual_Facet_42.csd"
    with h5py.File(vision) as f:
        first = list(f["FACET/data"])[0]  # the video the feature width was read from
    _rewrite(vision, _empty_1d)  # the first video is empty, written as 1-d arrays
    report = import_csd(d, tmp_path / "o.h5", "mosi")
    assert report.modalities["vision"]["dim"] == 4
    with FeatureStore(tmp_path / "o.h5") as store:
        assert store.sequence(store.index_of(f"{first}[0]"), "vision").shape == (0, 4)
        assert store.times(store.index_of(f"{first}[0]"), "vision").shape == (0, 2)

    def all_empty(data: h5py.Group) -> None:
        for v in list(data):
            del data[v]
            data.create_group(v).create_dataset("features", data=np.zeros((0, 4), np.float32))
            data[v].create_dataset("intervals", data=np.zeros((0, 2)))

    _rewrite(vision, all_empty)
    with pytest.raises(ImportFormatError) as err:
        import_csd(d, tmp_path / "x.h5", "mosi")
    assert str(err.value) == f"{vision}: no feature row to read: its 3 videos are all empty"

    def no_video(data: h5py.Group) -> None:
        for v in list(data):
            del data[v]

    _rewrite(vision, no_video)
    with pytest.raises(ImportFormatError) as err:
        import_csd(d, tmp_path / "x.h5", "mosi")
    assert str(err.value) == f"{vision}: no feature row to read: it holds no video"
    assert not (tmp_path / "x.h5").exists()


def _no_intervals(data: h5py.Group) -> None:
    del data[sorted(data)[-1]]["intervals"]


def _dataset_video(data: h5py.Group) -> None:
    last = sorted(data)[-1]
    del data[last]
    data.create_dataset(last, data=np.zeros((2,)))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (_no_intervals, "lacks 'features' or 'intervals'"),
        (_dataset_video, "is not a group of 'features' and 'intervals'"),
    ],
)
def test_csd_malformed_video_is_one_error(tmp_path: Path, change: object, problem: str) -> None:
    d = _mosi_dir(tmp_path)
    audio = d / "CMU_MOSI_COVAREP.csd"
    _rewrite(audio, change)
    with h5py.File(audio) as f:
        last = sorted(f["COVAREP/data"])[-1]
    with pytest.raises(ImportFormatError) as err:
        import_csd(d, tmp_path / "x.h5", "mosi")
    assert str(err.value) == f"{audio}: video {last!r} {problem}"
    _one_error_line(
        ["import", "csd", str(d), "--dataset", "mosi", "--out", str(tmp_path / "x.h5")],
        str(audio),
        problem,
    )
    assert not (tmp_path / "x.h5").exists()


def test_csd_steps_out_of_time_order_are_sorted_and_counted(tmp_path: Path) -> None:
    d = _mosi_dir(tmp_path)
    ref = tmp_path / "ref.h5"
    import_csd(d, ref, "mosi")
    rng = np.random.default_rng(27)
    vision = d / "CMU_MOSI_Visual_Facet_42.csd"
    nan_label = f"{standard_folds('mosi')['valid'][0]}[1]"  # make_dir's NaN label: not cut
    disordered = 0
    with h5py.File(vision, "a") as f:
        for v, g in f["FACET/data"].items():
            x, iv = g["features"][:], g["intervals"][:]
            p = rng.permutation(len(x))
            g["features"][:], g["intervals"][:] = x[p], iv[p]
            for k, (s, e) in enumerate(((0.5, 2.0), (2.0, 3.7))):  # make_dir's segments with steps
                starts = iv[p][(iv[p][:, 0] < e) & (iv[p][:, 1] > s), 0]
                disordered += f"{v}[{k}]" != nan_label and bool(np.any(np.diff(starts) < 0))
    report = import_csd(d, tmp_path / "o.h5", "mosi")
    assert disordered > 0
    assert (
        f"vision: {disordered} segment(s) have steps stored out of time order; stored sorted "
        "by start time" in report.notes
    )
    _same_store(tmp_path / "o.h5", ref)
    with FeatureStore(tmp_path / "o.h5") as a, FeatureStore(ref) as b:
        for i in range(len(a)):
            np.testing.assert_array_equal(a.times(i, "vision"), b.times(i, "vision"))


# -- report notes ------------------------------------------------------------------------------
def test_samples_with_no_step_are_kept_and_noted(tmp_path: Path) -> None:
    """make_mult's sample 0 of every split has length 0 in all three modalities."""
    data, _ = make_mult(np.random.default_rng(28), "left")
    report = import_mult(write_pickle(tmp_path / "m.pkl", data), tmp_path / "o.h5", "mosi")
    assert report.splits == SIZES
    assert (
        "3 sample(s) have no step in any modality (e.g. trainvid0_0.5_2.25, "
        "validvid0_0.5_2.25, testvid0_0.5_2.25); kept, as the source's split holds them "
        "(a model sees no input for them)" in report.notes
    )
    d = _mosi_dir(tmp_path)  # make_dir's third segment [4.0, 4.0) holds no step
    report = import_csd(d, tmp_path / "c.h5", "mosi")
    assert any(n.startswith("4 sample(s) have no step in any modality") for n in report.notes)


def test_mmsa_infinite_padding_is_not_data_past_the_length(tmp_path: Path) -> None:
    data, _ = make_mmsa(np.random.default_rng(29), True)
    for part in data.values():
        x, lens = part["vision"], part["vision_lengths"]
        x[np.arange(x.shape[1])[None, :] >= lens[:, None]] = -np.inf  # MOSEI-style padding
    report = import_mmsa(write_pickle(tmp_path / "u.pkl", data), tmp_path / "o.h5", "mosi")
    assert report.modalities["vision"]["nonzero_values_past_length"] == 0
    assert not any("past the stated lengths" in n for n in report.notes)
    data["test"]["vision"][0, -1, 0] = 5.0  # a real value past a stated length still counts
    report = import_mmsa(write_pickle(tmp_path / "v.pkl", data), tmp_path / "p.h5", "mosi")
    assert report.modalities["vision"]["nonzero_values_past_length"] == 1


def test_empty_test_split_is_noted(tmp_path: Path) -> None:
    data, _ = make_mmsa(np.random.default_rng(30), True)
    data["test"] = {k: v[:0] for k, v in data["test"].items()}
    report = import_mmsa(write_pickle(tmp_path / "u.pkl", data), tmp_path / "o.h5", "mosi")
    assert report.splits["test"] == 0
    assert "no test sample was imported: the store has nothing to test on" in report.notes
    with FeatureStore(tmp_path / "o.h5") as store:
        assert json.loads(store.meta.attrs["import_report"])["notes"] == report.notes
