"""``mea import mult``: the MulT pickles (``mosi_data_noalign.pkl``, ``mosei_senti_data_noalign.pkl``,
``iemocap_data_noalign.pkl`` and their aligned twins).

Layout: ``{split: {"text": [N, T_l, 300], "audio": [N, T_a, 74], "vision": [N, T_v, 35],
"labels": ..., "id": ...}}`` for ``split`` in train/valid/test. Every sequence is zero-padded to
a fixed length; the real length is not stored, so we recover it by stripping the all-zero rows
on the padding side. Which side that is, is decided per modality from the data
(:func:`~mea_cli.data.importers.cleaning.decide_padding`: the side where zero rows pile up) unless
``padding`` forces it, and the report shows the evidence. The MulT release is left-padded
(zeros first, real steps last), which is why MulT can pool "the last step"; the detector finds
that on such data, and any store written here is unpadded either way.

Labels: MOSI/MOSEI ``[N, 1, 1]`` sentiment in [-3, 3]; IEMOCAP ``[N, 4, 2]`` one-hot pairs, read
as MulT reads them (argmax of the last axis: 1 = present). The four pairs are in MulT's order
:data:`MULT_IEMOCAP_ORDER` -- Neutral, Happy, Sad, Angry, the ``emos`` list of ``eval_iemocap``
in MulT's ``src/eval_metrics.py``, which every fork evaluates with -- and are moved to the
store's order (happy, sad, angry, neutral) under their own names.
Non-finite feature values (COVAREP has -inf) become 0 and are counted. Ids: MulT stores
``[N, 3]`` rows (video id, segment start, end) for MOSI/MOSEI; a sample's id is those joined
with ``_``, its video the first field and start/end the other two when they are numbers.
A sample whose label is not finite is dropped and counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mea_cli import MODALITIES
from mea_cli.artifacts.store_format import LABELLED_SPLITS
from mea_cli.data.importers.cleaning import (
    decide_padding,
    padding_evidence,
    true_lengths,
    unknown_if_reversed,
)
from mea_cli.data.importers.datasets import (
    DatasetLabels,
    iemocap_from_pairs,
    to_store_emotion_order,
)
from mea_cli.data.importers.errors import ImportFormatError
from mea_cli.data.importers.padded import to_float
from mea_cli.data.importers.pipeline import Layout, PaddedReader, Pickle, Row, import_padded
from mea_cli.data.importers.report import ImportReport

PADDING_CHOICES = ("auto", "left", "right")
# The emotion of each of the four label pairs, in the pickle's order (MulT src/eval_metrics.py).
MULT_IEMOCAP_ORDER: tuple[str, ...] = ("neutral", "happy", "sad", "angry")
EVIDENCE_KEYS = (
    "leading_zero_rows",
    "trailing_zero_rows",
    "samples_with_leading_zeros",
    "samples_with_trailing_zeros",
    "all_zero_samples",
)


def _labels(path: Path, raw: object, split: str, n: int, dataset: str) -> tuple[np.ndarray, int]:
    """``[N, K]`` labels for ``dataset`` from MulT's label array, and non-one-hot pair count."""
    try:
        y = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise ImportFormatError(path, f"{split}/labels is not a numeric array") from None
    if len(y) != n:
        raise ImportFormatError(path, f"{split}/labels has {len(y)} rows for {n} samples")
    if dataset == "iemocap":
        if y.shape[1:] != (4, 2):
            raise ImportFormatError(
                path,
                f"{split}/labels has shape {y.shape}; iemocap needs [N, 4, 2] "
                f"({'/'.join(MULT_IEMOCAP_ORDER)}, each a one-hot pair)",
            )
        binary, not_onehot = iemocap_from_pairs(y)
        return to_store_emotion_order(binary, MULT_IEMOCAP_ORDER), not_onehot
    if int(np.prod(y.shape[1:], dtype=np.int64)) != 1:
        raise ImportFormatError(
            path,
            f"{split}/labels has shape {y.shape}; {dataset or 'a regression dataset'} needs one "
            "sentiment score per sample ([N, 1, 1])"
            + ("; this looks like IEMOCAP: use --dataset iemocap" if y.shape[1:] == (4, 2) else ""),
        )
    return y.reshape(n, 1).astype(np.float32), 0


def _bounds(row: list[str]) -> tuple[float, float, int]:
    """Start and end of a ``(video, start, end)`` id row (NaN when absent, not numbers, or
    reversed), and 1 when they were reversed."""
    start = to_float(row[1]) if len(row) >= 3 else np.nan
    end = to_float(row[2]) if len(row) >= 3 else np.nan
    bounds, bad = unknown_if_reversed(np.array([start, end]))
    return float(bounds[0, 0]), float(bounds[0, 1]), bad


class MultReader(PaddedReader):
    """MulT's labels, padding found from the data (or forced), ids ``(video, start, end)``."""

    layout = Layout(
        title="MulT",
        name="mult",
        label_key="labels",
        missing="not a MulT pickle: split {split} has no 'labels' array",
        other_key="regression_labels",
        hint=" (it has regression_labels: this is an MMSA pickle, use `mea import mmsa`)",
    )

    def __init__(self, dataset: str | None, padding: str) -> None:
        super().__init__(dataset)
        self.padding = padding
        self.sides: dict[str, str] = {}
        self.detected: dict[str, str] = {}
        self.evidence: dict[str, dict[str, int]] = {}
        self.not_onehot = 0
        self.reversed_segments = 0

    def check_options(self, path: Path) -> None:
        super().check_options(path)
        if self.padding not in PADDING_CHOICES:
            raise ImportFormatError(path, f"padding must be one of {', '.join(PADDING_CHOICES)}")

    def dataset_name(self, path: Path, splits: Mapping[str, Mapping[str, Any]]) -> str:
        if self.dataset is not None:
            return self.dataset
        try:
            shape = np.asarray(splits["train"]["labels"]).shape
        except ValueError:  # ragged: not IEMOCAP's pairs; the labels check names the problem
            return ""
        return "iemocap" if shape[1:] == (4, 2) else ""

    def labels(self, pk: Pickle, split: str, dataset: str) -> np.ndarray:
        y, bad = _labels(pk.path, pk.splits[split]["labels"], split, pk.count(split), dataset)
        self.not_onehot += bad
        return y

    def lengths(self, pk: Pickle) -> dict[str, dict[str, np.ndarray]]:
        for m in MODALITIES:
            evidence = dict.fromkeys(EVIDENCE_KEYS, 0)
            for split in LABELLED_SPLITS:
                for k, v in padding_evidence(pk.arrays[split][m]).items():
                    evidence[k] += v
            self.evidence[m] = evidence
            self.detected[m] = decide_padding(evidence)
            self.sides[m] = self.detected[m] if self.padding == "auto" else self.padding
        return {
            split: {m: true_lengths(pk.arrays[split][m], self.sides[m]) for m in MODALITIES}
            for split in LABELLED_SPLITS
        }

    def side(self, modality: str) -> str:
        return self.sides[modality]

    def modality_entry(
        self, pk: Pickle, modality: str, lengths: Mapping[str, Mapping[str, np.ndarray]]
    ) -> dict[str, Any]:
        return {
            "dim": pk.dims[modality],
            "padded_length": pk.padded_length(modality),
            "padding": self.sides[modality],
            "padding_detected": self.detected[modality],
            "padding_evidence": self.evidence[modality],
            "nonfinite_fixed": 0,
        }

    def notes(self, spec: DatasetLabels, report: ImportReport) -> list[str]:
        notes = []
        if spec.dataset == "iemocap":
            notes.append(
                f"label pairs read in MulT's order {', '.join(MULT_IEMOCAP_ORDER)} "
                f"(eval_metrics.py) and stored as {', '.join(spec.label_names)}"
            )
        if self.not_onehot:
            notes.append(
                f"{self.not_onehot} IEMOCAP label pairs were not exactly one-hot; read by argmax "
                "as MulT does"
            )
        return notes

    def rows(self, pk: Pickle, split: str, ids: list[list[str]] | None) -> list[Row]:
        if ids is None:
            return [
                Row(f"{split}_{i:05d}", f"{split}_{i:05d}", split, i)
                for i in range(pk.count(split))
            ]
        out = []
        for i, r in enumerate(ids):
            start, end, bad = _bounds(r)
            self.reversed_segments += bad
            out.append(Row("_".join(r), r[0], split, i, start, end))
        return out

    def row_notes(self) -> list[str]:
        if not self.reversed_segments:
            return []
        return [
            f"{self.reversed_segments} segment(s) end before they start in their id; their "
            "start and end are stored as unknown (NaN)"
        ]

    def provenance(self, modality: str, entry: Mapping[str, Any]) -> dict[str, Any]:
        return {"padding": self.sides[modality], "padded_length": entry["padded_length"]}


def import_mult(
    src: str | Path, out: str | Path, dataset: str | None = None, padding: str = "auto"
) -> ImportReport:
    """Import a MulT pickle into a feature store at ``out``; return the report.

    ``dataset`` (mosi | mosei | iemocap) fixes the label layout; when None it is IEMOCAP for
    ``[N, 4, 2]`` labels and an unnamed regression dataset otherwise. ``padding`` is ``auto``
    (detect per modality) or forces ``left`` / ``right``.
    """
    return import_padded(src, out, MultReader(dataset, padding))
