"""``mea import mmsa``: the MMSA pickles (``unaligned_50.pkl`` and friends, thuiar/MMSA).

Layout: ``{split: {"id": [N] "video$_$clip", "raw_text": [N], "text": [N, T_l, D_l],
"audio": [N, T_a, D_a], "vision": [N, T_v, D_v], "audio_lengths": [N], "vision_lengths": [N],
"regression_labels": [N], ...}}`` for ``split`` in train/valid/test. The audio and vision real
lengths are the stored ``*_lengths`` (the real steps come first; the rest is zero padding). Text
has no stored length: we use ``text_lengths`` when present, else the attention mask in
``text_bert`` (``[N, 3, T_l]``, row 1) when its ``T_l`` matches, else we strip trailing
all-zero rows; the report says which. Finite non-zero values past a stated length would be
lost, so they are counted in the report (``-inf`` or NaN padding is not). Non-finite values
become 0 (counted). ``raw_text`` is kept in the store as the extra column ``/samples/raw_text``.
MMSA has sentiment regression labels only, so ``--dataset iemocap`` does not fit.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mea_cli import MODALITIES
from mea_cli.artifacts.store_format import LABELLED_SPLITS
from mea_cli.data.importers.cleaning import true_lengths
from mea_cli.data.importers.datasets import DatasetLabels
from mea_cli.data.importers.errors import ImportFormatError, as_text
from mea_cli.data.importers.pipeline import Layout, PaddedReader, Pickle, Row, import_padded
from mea_cli.data.importers.report import ImportReport


def _stated_lengths(path: Path, part: dict, split: str, key: str, n: int, t: int) -> np.ndarray:
    try:
        lens = np.asarray(part[key], dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ImportFormatError(path, f"{split}/{key} is not numeric") from None
    if lens.shape != (n,):
        raise ImportFormatError(path, f"{split}/{key} has {lens.size} entries for {n} samples")
    if not np.all(np.isfinite(lens)) or np.any(lens != np.round(lens)):
        raise ImportFormatError(path, f"{split}/{key} holds values that are not whole numbers")
    bad = np.flatnonzero((lens < 0) | (lens > t))
    if len(bad):
        raise ImportFormatError(
            path,
            f"{split}/{key}[{bad[0]}] = {int(lens[bad[0]])} is outside [0, {t}] "
            f"(the padded length); {len(bad)} such samples",
        )
    return lens.astype(np.int64)


def _text_lengths(path: Path, part: dict, split: str, x: np.ndarray) -> tuple[np.ndarray, str]:
    n, t = x.shape[:2]
    if "text_lengths" in part:
        return _stated_lengths(path, part, split, "text_lengths", n, t), "text_lengths"
    if "text_bert" in part:
        try:
            tb = np.asarray(part["text_bert"], dtype=np.float64)
        except (TypeError, ValueError):
            raise ImportFormatError(path, f"{split}/text_bert is not a numeric array") from None
        if tb.ndim == 3 and tb.shape[0] == n and tb.shape[1] == 3 and tb.shape[2] == t:
            return tb[:, 1, :].sum(axis=1).astype(np.int64), "text_bert mask"
    return true_lengths(x, "right"), "trailing zero rows stripped"


class MmsaReader(PaddedReader):
    """MMSA's regression labels, stated lengths (right padding), ``video$_$clip`` ids and the
    ``raw_text`` column."""

    layout = Layout(
        title="MMSA",
        name="mmsa",
        label_key="regression_labels",
        missing="not an MMSA pickle: split {split} has no 'regression_labels'",
        other_key="labels",
        hint=" (it has 'labels': this is a MulT pickle, use `mea import mult`)",
    )
    extra_columns = ("raw_text",)

    def __init__(self, dataset: str | None) -> None:
        super().__init__(dataset)
        self.text_method: set[str] = set()

    def dataset_name(self, path: Path, splits: Mapping[str, Mapping[str, Any]]) -> str:
        if self.dataset == "iemocap":
            shape = np.asarray(splits["train"]["regression_labels"]).shape
            raise ImportFormatError(
                path,
                f"train/regression_labels has shape {shape}; iemocap needs four binary emotion "
                "labels per sample, which MMSA pickles do not hold",
            )
        return self.dataset or ""

    def labels(self, pk: Pickle, split: str, dataset: str) -> np.ndarray:
        n = pk.count(split)
        try:
            y = np.asarray(pk.splits[split]["regression_labels"], dtype=np.float64)
        except (TypeError, ValueError):
            raise ImportFormatError(
                pk.path, f"{split}/regression_labels is not a numeric array"
            ) from None
        if y.size != n or (y.ndim > 1 and int(np.prod(y.shape[1:])) != 1):
            raise ImportFormatError(
                pk.path,
                f"{split}/regression_labels has shape {y.shape}; expected one sentiment score "
                f"for each of the {n} samples",
            )
        return y.reshape(n, 1).astype(np.float32)

    def lengths(self, pk: Pickle) -> dict[str, dict[str, np.ndarray]]:
        out: dict[str, dict[str, np.ndarray]] = {}
        for split, part in pk.splits.items():
            n, out[split] = pk.count(split), {}
            for m in ("audio", "vision"):
                key = f"{m}_lengths"
                if key not in part:
                    raise ImportFormatError(
                        pk.path, f"not an MMSA pickle: split {split!r} has no {key!r}"
                    )
                t = pk.arrays[split][m].shape[1]
                out[split][m] = _stated_lengths(pk.path, part, split, key, n, t)
            x = pk.arrays[split]["text"]
            out[split]["text"], method = _text_lengths(pk.path, part, split, x)
            self.text_method.add(method)
        return out

    def side(self, modality: str) -> str:
        return "right"

    def modality_entry(
        self, pk: Pickle, modality: str, lengths: Mapping[str, Mapping[str, np.ndarray]]
    ) -> dict[str, Any]:
        past = 0
        for split in LABELLED_SPLITS:
            x, lens = pk.arrays[split][modality], lengths[split][modality]
            beyond = x[np.arange(x.shape[1])[None, :] >= lens[:, None]]
            past += int(np.count_nonzero(np.isfinite(beyond) & (beyond != 0)))  # not -inf padding
        method = ", ".join(sorted(self.text_method))
        return {
            "dim": pk.dims[modality],
            "padded_length": pk.padded_length(modality),
            "padding": "right",
            "lengths_from": f"{modality}_lengths" if modality != "text" else method,
            "nonzero_values_past_length": past,
            "nonfinite_fixed": 0,
        }

    def notes(self, spec: DatasetLabels, report: ImportReport) -> list[str]:
        return [
            f"{m}: {past} non-zero values lie past the stated lengths and were not imported"
            for m in MODALITIES
            if (past := report.modalities[m]["nonzero_values_past_length"])
        ]

    def rows(self, pk: Pickle, split: str, ids: list[list[str]] | None) -> list[Row]:
        part, n = pk.splits[split], pk.count(split)
        texts = list(part["raw_text"]) if "raw_text" in part else [""] * n
        if len(texts) != n:
            raise ImportFormatError(
                pk.path, f"{split}/raw_text has {len(texts)} entries for {n} samples"
            )
        out = []
        for i in range(n):
            sid = "_".join(ids[i]) if ids is not None else f"{split}_{i:05d}"
            out.append(
                Row(sid, sid.split("$_$")[0], split, i, extra={"raw_text": as_text(texts[i])})
            )
        return out

    def provenance(self, modality: str, entry: Mapping[str, Any]) -> dict[str, Any]:
        return {"lengths_from": entry["lengths_from"]}


def import_mmsa(src: str | Path, out: str | Path, dataset: str | None = None) -> ImportReport:
    """Import an MMSA pickle into a feature store at ``out``; return the report."""
    return import_padded(src, out, MmsaReader(dataset))
