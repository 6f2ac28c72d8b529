"""The text side of ``mea extract`` given what users have (an audit): word-vector files that are
broken, huge, gzipped or GloVe 840B's, the tokenizer GloVe 6B was made with, transcript
sidecars that are odd, and clips with no speech. Every user mistake is one line before any
work; every problem with one clip is a failure row."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest

from mea_cli.artifacts.features import ExtractorInfo, Word
from mea_cli.extract import backends, glove, language
from mea_cli.extract import words as words_mod
from mea_cli.extract.cache import VideoResult
from mea_cli.extract.glove import TOKENIZERS, GloveBackend, VectorsError, load_vectors, tokenize
from mea_cli.extract.pipeline import Pipeline
from mea_cli.extract.text import TranscriptError, find_sidecar, read_sidecar
from mea_cli.extract.words import WordSource
from tests.battery.harness import assert_refused, mea, snapshot
from tests.battery.test_loaders import _Payload
from tests.test_extract_units import _at

ROWS = "good 1 0 0 0.5\nbad 0 1 0 0\nfilm 0 0 1 0\n"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user cache of this test's own (what the loader converts goes there)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "mea-cli" / "glove"


def _file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _refused(path: Path, match: str) -> None:
    with pytest.raises(VectorsError, match=match) as err:
        load_vectors(path)
    assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)


def _binary(path: Path, words: list[str], vectors: np.ndarray) -> Path:
    from gensim.models import KeyedVectors

    kv = KeyedVectors(vector_size=vectors.shape[1])
    kv.add_vectors(words, vectors)
    kv.save_word2vec_format(str(path), binary=True)
    return path


# -- word-vector files -----------------------------------------------------------------------
def test_vectors_holding_nan_or_inf_are_refused_naming_the_word_and_line(tmp_path: Path, cache: Path) -> None:
    """They loaded, and every clip using those words put NaN into a store nothing could open."""
    _refused(_file(tmp_path, "a.txt", ROWS.replace("0 1 0 0", "0 nan 0 0")), r"line 2: the vector of 'bad' holds NaN")
    _refused(_file(tmp_path, "b.txt", "good 1 0 0 inf\n"), "line 1: the vector of 'good' holds NaN or infinite")
    _refused(_file(tmp_path, "c.txt", "3 4\n" + ROWS.replace("0 0 1 0", "0 0 1e39 0")), "line 4: .*'film'")
    vectors = np.eye(3, 4, dtype=np.float32)
    vectors[1, 2] = np.nan
    _refused(_binary(tmp_path / "d.bin", ["good", "bad", "film"], vectors), "the vector of 'bad' .* NaN")
    assert not cache.exists() or not list(cache.glob("*.npy"))  # nothing cached


@pytest.mark.parametrize(("text", "problem"), [
    ("", "no word vectors in it"),
    ("\n\n", "no word vectors in it"),
    ("0 50\n", r"header '0 50' declares no vectors"),
    ("-1 4\ngood 1 2 3 4\n", r"header '-1 4' declares no vectors"),
    ("3 1000000000\nhello 0.1 0.2\n", "says 3 words of 1,000,000,000 values.*is the header right"),
    ("100000 1000000\nhello 0.1\n", "100,000 words of 1,000,000 values"),
    ("1000000000000 1000000000000\n", "is the header right"),
    ("2 4\ngood 1.00 0.00 0.00 0.00\n", "the header says 2 words but the file holds 1; cut short"),
    ("1 4\ngood 1 0 0 0\nbad 0 1 0 0\n", "line 3: more words than the header's 1"),
])  # fmt: skip
def test_files_without_vectors_or_with_an_impossible_header_are_refused(
    tmp_path: Path, cache: Path, text: str, problem: str
) -> None:
    """Blank lines loaded as vectors of 0 dimensions (packing crashed after every video), a
    header '0 50' as an empty vocabulary (every token out of it, silently), a huge header had
    gensim allocate it (a MemoryError traceback)."""
    _refused(_file(tmp_path, "v.txt", text), problem)


def test_a_binary_header_is_checked_before_gensim_allocates_and_memory_errors_are_one_line(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"100000 1000000\nhello " + np.zeros(4, np.float32).tobytes())
    _refused(big, "100,000 words of 1,000,000 values, at least 400,000,200,000 bytes")
    good = _file(tmp_path, "g.txt", ROWS)

    def too_big(path: Path) -> None:
        raise MemoryError

    monkeypatch.setattr(glove, "_read_text", too_big)
    _refused(good, "too large to read into this machine's memory")


def test_a_folder_is_no_vector_file(tmp_path: Path, cache: Path) -> None:
    _refused(tmp_path, "a folder, not a word-vector file")


def test_tab_separated_glove_is_read_by_its_tabs(tmp_path: Path, cache: Path) -> None:
    kv = load_vectors(_file(tmp_path, "tabs.txt", ROWS.replace(" ", "\t")))
    assert kv.index_to_key == ["good", "bad", "film"] and kv.vector_size == 4
    np.testing.assert_array_equal(kv["good"], [1, 0, 0, 0.5])


def test_words_holding_spaces_are_read_whole_and_a_wrong_count_names_the_line(
    tmp_path: Path, cache: Path
) -> None:
    """GloVe 840B (the paper's vectors) has lines such as '. . . 0.1 ...' and
    'at name@domain.com 0.1 ...' (stanfordnlp/GloVe issue 191): gensim stopped at them with
    "could not convert string to float"."""
    text = (
        ROWS + ". . . 0.1 0.2 0.3 0.4\nat name@domain.com 1 1 1 1\n"
        "1 000 0.5 0.5 0.5 0.5\nto infinity 0.25 0.25 0.25 0.25\n"
    )  # a word may end in an integer or a word float() reads: not a value too many
    kv = load_vectors(_file(tmp_path, "840b.txt", text))
    assert kv.index_to_key[3:] == [". . .", "at name@domain.com", "1 000", "to infinity"]
    np.testing.assert_allclose(kv[". . ."], [0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(kv["to infinity"], [0.25] * 4)
    _refused(_file(tmp_path, "short.txt", "good 1 0 0 0\nbad 0 1 0\n"), "line 2 has 3 values, the first line says 4$")
    _refused(_file(tmp_path, "long.txt", "good 1 0 0 0\nbad 0.1 1 0 0 7\n"), "line 2 has 5 values, the first line says 4$")
    _refused(_file(tmp_path, "hdr.txt", "2 4\ngood 1 0 0 0\nbad 1 2\n"), "line 3 has 2 values, the header says 4")
    _refused(_file(tmp_path, "x.txt", "good 1 0 0 0\nbad 0 x 0 0\n"), "line 2: 'x' is not a number")


def test_gzipped_vector_files_load_like_plain_ones(tmp_path: Path, cache: Path) -> None:
    """``.txt.gz`` and ``.bin.gz`` (GoogleNews-vectors-negative300.bin.gz) were a raw codec
    error."""
    plain = load_vectors(_file(tmp_path, "v.txt", ROWS))
    (tmp_path / "v.txt.gz").write_bytes(gzip.compress(ROWS.encode()))
    binary = _binary(tmp_path / "w.bin", plain.index_to_key, np.asarray(plain.vectors))
    (tmp_path / "w.bin.gz").write_bytes(gzip.compress(binary.read_bytes()))
    for name in ("v.txt.gz", "w.bin.gz"):
        kv = load_vectors(tmp_path / name)
        assert kv.index_to_key == plain.index_to_key
        np.testing.assert_array_equal(kv.vectors, plain.vectors)


@pytest.mark.parametrize("protocol", [0, 1])
def test_a_protocol_0_or_1_pickle_named_txt_is_refused_as_a_pickle(
    tmp_path: Path, cache: Path, protocol: int
) -> None:
    """Only protocols 2+ (first byte 0x80) were recognised; an older pickle failed as text
    ("could not convert string to float") instead of naming the conversion command."""
    marker = tmp_path / "ran"
    path = tmp_path / "evil.txt"
    path.write_bytes(pickle.dumps(_Payload(marker), protocol=protocol))
    _refused(path, "pickle file, which runs any code.*save_word2vec_format")
    assert not marker.exists()
    assert load_vectors(_file(tmp_path, "c.txt", "cposix 1 2\n"))["cposix"].tolist() == [1, 2]


# -- tokens ----------------------------------------------------------------------------------
def test_tokens_are_split_as_glove_6b_was_tokenised() -> None:
    """The old tokenizer dropped apostrophes: it's -> its, he'll -> hell, we're -> were,
    don't -> dont, all found in the vocabulary as other words."""
    kv = load_vectors()
    vocab = kv.key_to_index
    got = tokenize("It's fine, he'll go; we're here. I'm sure you'd've said: don't, CAN'T, won't.", vocab)
    assert got == ["it", "'s", "fine", "he", "'ll", "go", "we", "'re", "here", "i", "'m", "sure",
                   "you", "'d", "'ve", "said", "do", "n't", "ca", "n't", "wo", "n't"]  # fmt: skip
    got = tokenize("The U.S. e-mail cost 3.5, or 1,000 dollars. Mr. Smith said no.", vocab)
    assert got == ["the", "u.s.", "e-mail", "cost", "3.5", "or", "1,000", "dollars", "mr", "smith", "said", "no"]
    assert tokenize("bla-bla x.y.z qqq,zzz", vocab) == ["bla", "bla", "x", "y", "z", "qqq", "zzz"]  # unknown whole
    x = GloveBackend().embed([Word("It\u2019s", 1.0, 2.0)])
    assert x.tokens == 2 and x.oov == 0 and x.times.tolist() == [[1.0, 1.5], [1.5, 2.0]]
    np.testing.assert_array_equal(x.x, [kv["it"], kv["'s"]])


def test_the_tokenizer_is_recorded_and_an_older_record_recreates_the_old_one() -> None:
    """A provenance without the option (stores and checkpoints made before it) re-creates the
    old tokenizer, so old checkpoints predict as trained; old and new never merge."""
    new = GloveBackend().provenance()
    assert new.parameters["options"]["tokenizer"] == "ptb"
    assert new.parameters["tokenizer"] == TOKENIZERS["ptb"]
    params = dict(new.parameters)
    params["options"] = {"vectors": ""}
    params["tokenizer"] = "lower-cased words, punctuation dropped"
    old = ExtractorInfo(new.name, new.version, params)
    made = backends.from_provenance("text", old).backend
    assert made.tokenizer == "words"  # type: ignore[attr-defined]
    assert backends.identity(made.provenance()) == backends.identity(old)
    kv = load_vectors()
    np.testing.assert_array_equal(made.embed([Word("it's", 0.0, 1.0)]).x, [kv["its"]])  # type: ignore[attr-defined]
    assert backends.identity(old) != backends.identity(new)


# -- the language of the words ---------------------------------------------------------------
GERMAN = "Guten Morgen, wie geht es Ihnen heute? Ich möchte gerne einen Kaffee trinken."


def test_not_english_speech_is_not_told_to_give_a_transcript_the_vectors_cannot_read() -> None:
    message = language.not_english_failure(language.Detection("de", 0.99, 0.0))
    assert "give a transcript sidecar, or" not in message
    assert "word vectors of that language, --glove" in message and "--no-asr" in message
    assert message.endswith("--language en)")
    assert language.oov_problem("sidecar.txt", 13, 4).startswith("sidecar.txt: 4 of 13 tokens (31%)")
    assert language.oov_problem("sidecar.txt", 13, 2) == ""
    assert language.oov_problem("sidecar.txt", 5, 5) == ""  # too few tokens to tell


def test_a_transcript_the_vectors_mostly_cannot_read_is_a_text_row(tmp_path: Path) -> None:
    """A German sidecar with English GloVe made zero vectors without a word of warning."""
    (tmp_path / "de.txt").write_text(GERMAN, encoding="utf-8")
    (tmp_path / "en.txt").write_text("Well, I mean, it was kind of a weird movie, honestly.")
    pipe = Pipeline(None, None, GloveBackend(), WordSource(asr=False))  # type: ignore[arg-type]
    rows = {}
    for key in ("de", "en"):
        res = VideoResult(key, {}, {}, duration=5.0)
        pipe._text(tmp_path / f"{key}.mp4", None, res)
        rows[key] = res.failures
    assert rows["en"] == []
    assert rows["de"] == [("text", language.oov_problem("sidecar.txt", 13, 4))]


# -- transcript sidecars ---------------------------------------------------------------------
def test_cue_entities_are_decoded_and_a_cue_ending_before_it_starts_is_refused(tmp_path: Path) -> None:
    """``&amp;`` became the token 'amp'; a reversed cue became zero-length words, where the
    same word in a .json is refused."""
    vtt = _file(tmp_path, "a.vtt", "WEBVTT\n\n00:00.500 --> 00:02.000\n<v Roger>We &amp; you</v> are here &lt;3 &nbsp;ok\n")
    assert [w.text for w in read_sidecar(vtt, _at((0, 9)))] == ["We", "&", "you", "are", "here", "<3", "ok"]
    srt = _file(tmp_path, "b.srt", "1\n00:00:00,500 --> 00:00:01,000\nfine\n\n2\n00:00:02,000 --> 00:00:01,000\nhello world\n")
    with pytest.raises(TranscriptError, match=r"b.srt: the cue at line 6 ends before it starts \(start 2 s, end 1 s\)"):
        read_sidecar(srt, _at((0, 9)))


def test_an_unreadable_sidecar_names_the_others_it_hides(tmp_path: Path) -> None:
    """A ``clip.json`` that is not a word list (a download's metadata) hid a good ``clip.srt``
    without a word: the row now names it (the first sidecar stays the clip's transcript)."""
    (tmp_path / "shadow.json").write_text('{"title": "youtube metadata", "id": "abc"}')
    (tmp_path / "shadow.srt").write_text("1\n00:00:00,500 --> 00:00:02,000\nhello world\n")
    got = WordSource(asr=False).words_for(tmp_path / "shadow.wav", None, 16000, 3.0)
    assert got.words == [] and got.source == "sidecar.json"
    assert got.failures == [("text", "shadow.json: expected a list of {word, start, end} objects; "
                             "shadow.srt not used in its place (fix or remove shadow.json)")]  # fmt: skip
    (tmp_path / "shadow.srt").unlink()
    got = WordSource(asr=False).words_for(tmp_path / "shadow.wav", None, 16000, 3.0)
    assert got.failures == [("text", "shadow.json: expected a list of {word, start, end} objects")]


def test_a_sidecar_suffix_in_mixed_case_is_found(tmp_path: Path) -> None:
    (tmp_path / "clip.Txt").write_text("hello world")
    (tmp_path / "CLIP.txt").write_text("not this clip's")  # the stem is matched as it is
    assert find_sidecar(tmp_path / "clip.wav") == tmp_path / "clip.Txt"
    got = WordSource(asr=False).words_for(tmp_path / "clip.wav", None, 16000, 2.0)
    assert [w.text for w in got.words] == ["hello", "world"] and got.source == "sidecar.txt"


def test_a_txt_far_longer_than_its_clip_is_a_text_row(tmp_path: Path) -> None:
    (tmp_path / "long.txt").write_text(" ".join(["word"] * 2000))
    (tmp_path / "ok.txt").write_text(" ".join(["word"] * 20))
    long = WordSource(asr=False).words_for(tmp_path / "long.wav", None, 16000, 2.6)
    assert len(long.words) == 2000 and long.failures == [("text", (
        "long.txt: 2000 words for a 2.60 s clip (769 per second; speech stays under 8): is it "
        "this clip's transcript? Words kept, squeezed into the clip"))]  # fmt: skip
    assert WordSource(asr=False).words_for(tmp_path / "ok.wav", None, 16000, 2.6).failures == []


def test_a_utf16_sidecar_is_named_as_such(tmp_path: Path) -> None:
    (tmp_path / "u.txt").write_bytes("hello world café".encode("utf-16"))
    with pytest.raises(TranscriptError, match="u.txt: UTF-16 text, not UTF-8; re-save it as UTF-8"):
        read_sidecar(tmp_path / "u.txt", _at((0, 1)))
    (tmp_path / "l.txt").write_bytes("hello\nworld café".encode("latin-1"))
    with pytest.raises(TranscriptError, match="not UTF-8 \\(line 2: byte 0xe9 .*Latin-1"):
        read_sidecar(tmp_path / "l.txt", _at((0, 1)))


def test_noise_with_asr_on_is_no_speech_not_a_language(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """White noise went to the language check ("speech is not English ('nn')"): the voice
    detector now runs first, and neither the language check nor ASR is asked."""

    def never(*args: object) -> None:
        raise AssertionError("not to be loaded for a clip without speech")

    monkeypatch.setattr(words_mod, "WhisperASR", never)
    monkeypatch.setattr(words_mod, "LanguageID", never)
    noise = (np.random.default_rng(0).standard_normal(3 * 16000) * 0.1).astype(np.float32)
    got = WordSource(asr=True).words_for(tmp_path / "noise.wav", noise, 16000, 3.0)
    assert got.words == [] and got.source == "asr"
    assert got.failures == [("text", "no speech found by the voice-activity detector: not transcribed, no words")]


# -- through the command line ----------------------------------------------------------------
@pytest.mark.parametrize(("name", "text", "words"), [
    ("nan.txt", ROWS.replace("0 1 0 0", "nan 1 0 0"), ["nan.txt", "line 2", "'bad'", "NaN"]),
    ("blank.txt", "\n\n", ["blank.txt", "no word vectors"]),
    ("huge.txt", "100000 1000000\nhello 0.1\n", ["huge.txt", "is the header right"]),
])  # fmt: skip
def test_extract_refuses_broken_vectors_in_one_line_before_any_work(
    tmp_path: Path, name: str, text: str, words: list[str]
) -> None:
    (tmp_path / "clips").mkdir()
    vectors = _file(tmp_path, name, text)
    before = snapshot(tmp_path)
    assert_refused(mea("extract", "clips", "--out", "o.h5", "--no-asr", "--glove", str(vectors), cwd=tmp_path),
                   words, before, [tmp_path])  # fmt: skip
