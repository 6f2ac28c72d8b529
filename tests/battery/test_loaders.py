"""Word-vector loaders never unpickle: a crafted gensim ``.kv`` whose unpickling would create a
marker file is refused (one line, exit 2, the reason named) under any name, through
``--glove`` and ``--text-opt vectors=``, and the marker never appears. The formats that are
plain data (GloVe text, word2vec text and binary) load to the same vectors, and the cache they
are converted into is ``.npy`` + JSON that loads with ``allow_pickle=False``."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from tests.battery.harness import assert_refused, mea, snapshot


class _Payload:
    """Unpickling this calls ``open(marker, "w")``: the file's existence proves code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (open, (str(self.marker), "w"))


def crafted(path: Path, marker: Path) -> Path:
    """A file that pickle (and so gensim's ``KeyedVectors.load``) would run: the payload."""
    path.write_bytes(pickle.dumps(_Payload(marker), protocol=4))
    return path


def test_the_crafted_file_is_live(tmp_path: Path) -> None:
    """The payload does run when unpickled, so the refusals below are real refusals."""
    marker = tmp_path / "ran"
    with open(crafted(tmp_path / "evil.kv", marker), "rb") as f:
        pickle.load(f).close()
    assert marker.exists()


@pytest.mark.parametrize(("how", "name"), [
    ("--glove", "evil.kv"), ("--glove", "evil.bin"), ("--glove", "evil.txt"),
    ("--text-opt", "evil.kv"),
])  # fmt: skip
def test_extract_refuses_a_pickle_and_never_runs_it(tmp_path: Path, name: str, how: str) -> None:
    marker = tmp_path / "marker"
    vectors = crafted(tmp_path / name, marker)
    (tmp_path / "clips").mkdir()
    given = [how, str(vectors)] if how == "--glove" else [how, f"vectors={vectors}"]
    from mea_cli.extract.usercache import user_cache_dir

    watched = [tmp_path, user_cache_dir() / "glove"]  # nothing converted or cached either
    before = snapshot(*watched)
    line = assert_refused(
        mea("extract", "clips", "--out", "o.h5", *given, cwd=tmp_path),
        [name, "pickle", "runs any code", "save_word2vec_format"], before, watched,
    )  # fmt: skip
    assert not marker.exists(), line


def test_load_vectors_refuses_every_pickle_in_process(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The one loader that extract and predict (``--glove``, re-running a checkpoint's
    extraction) share: refused before reading past the first byte."""
    from mea_cli.extract.glove import VectorsError, load_vectors

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    marker = tmp_path / "marker"
    for name in ("a.kv", "a.pkl", "a.bin", "a.txt", "a.vec"):
        with pytest.raises(VectorsError, match="pickle"):
            load_vectors(crafted(tmp_path / name, marker))
    assert not marker.exists()
    assert not (tmp_path / "cache").exists()


def _three_formats(tmp_path: Path) -> dict[str, Path]:
    from gensim.models import KeyedVectors

    words = ["good", "bad", "film", "naïve"]
    vectors = np.arange(16, dtype=np.float32).reshape(4, 4) / 4
    glove = tmp_path / "glove.txt"
    glove.write_text(
        "".join(f"{w} {' '.join(str(x) for x in v)}\n" for w, v in zip(words, vectors, strict=True)),
        encoding="utf-8",
    )
    kv = KeyedVectors(vector_size=4)
    kv.add_vectors(words, vectors)
    kv.save_word2vec_format(str(tmp_path / "w2v.txt"), binary=False)
    kv.save_word2vec_format(str(tmp_path / "w2v.bin"), binary=True)
    return {"glove": glove, "text": tmp_path / "w2v.txt", "binary": tmp_path / "w2v.bin"}


def test_text_and_binary_formats_load_alike_and_cache_as_plain_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mea_cli.extract.glove import load_vectors

    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    files = _three_formats(tmp_path)
    loaded = {k: load_vectors(p) for k, p in files.items()}
    for kv in loaded.values():
        assert kv.index_to_key == ["good", "bad", "film", "naïve"]
        assert np.array_equal(kv["naïve"], [3.0, 3.25, 3.5, 3.75])
    entries = sorted((cache / "mea-cli" / "glove").iterdir())
    assert len(entries) == 6  # per file: the matrix and its word list, nothing else
    for npy in (p for p in entries if p.suffix == ".npy"):
        matrix = np.load(npy, allow_pickle=False)  # plain float32, no object array
        assert matrix.dtype == np.float32 and matrix.shape == (4, 4)
        words = json.loads(npy.with_name(npy.name[: -len(".npy")] + ".words.json").read_text())
        assert words == ["good", "bad", "film", "naïve"]
    again = load_vectors(files["binary"])  # from the cache: memory-mapped, same vectors
    assert isinstance(again.vectors, np.memmap)
    assert np.array_equal(again.vectors, loaded["binary"].vectors)


def test_a_cache_entry_replaced_by_a_pickle_is_refused(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Someone who can write the user's cache still cannot make a load run code: the matrix is
    read with ``allow_pickle=False``."""
    from mea_cli.extract.glove import VectorsError, load_vectors

    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    glove = _three_formats(tmp_path)["glove"]
    load_vectors(glove)
    (npy,) = (cache / "mea-cli" / "glove").glob("*.npy")
    marker = tmp_path / "marker"
    np.save(npy, np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(VectorsError, match="cannot load the cached word vectors"):
        load_vectors(glove)
    assert not marker.exists()
