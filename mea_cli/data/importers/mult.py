"""``mea import mult``: the MulT pickles (``mosi_data_noalign.pkl``, ``mosei_senti_data_noalign.pkl``,
``iemocap_data_noalign.pkl`` and their aligned twins).

Layout: ``{split: {"text": [N, T_l, 300], "audio": [N, T_a, 74], "vision": [N, T_v, 35],
"labels": ..., "id": ...}}`` for ``split`` in train/valid/test. Every sequence is zero-padded to
a fixed length; the real length is not stored, so we recover it by stripping the all-zero rows
on the padding side. Which side that is, is decided per modality from the data
(:func:`~mea_cli.data.importers.common.decide_padding`: the side where zero rows pile up) unless
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

from pathlib import Path

import numpy as np

from mea_cli import MODALITIES
from mea_cli.artifacts.features import Sample
from mea_cli.data.importers.common import (
    DATASETS,
    SPLIT_NAMES,
    ImportFormatError,
    ImportReport,
    decide_padding,
    fix_nonfinite,
    iemocap_from_pairs,
    label_spec,
    load_pickle,
    modality_schema,
    padding_evidence,
    strip,
    to_store_emotion_order,
    true_lengths,
    unknown_if_reversed,
    write_import,
)
from mea_cli.data.importers.padded import (
    check_counts,
    check_dims,
    check_no_leak,
    feature_array,
    get_splits,
    id_rows,
    to_float,
    unique,
)
from mea_cli.paths import file_sha256

PADDING_CHOICES = ("auto", "left", "right")
# The emotion of each of the four label pairs, in the pickle's order (MulT src/eval_metrics.py).
MULT_IEMOCAP_ORDER: tuple[str, ...] = ("neutral", "happy", "sad", "angry")


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


def import_mult(
    src: str | Path, out: str | Path, dataset: str | None = None, padding: str = "auto"
) -> ImportReport:
    """Import a MulT pickle into a feature store at ``out``; return the report.

    ``dataset`` (mosi | mosei | iemocap) fixes the label layout; when None it is IEMOCAP for
    ``[N, 4, 2]`` labels and an unnamed regression dataset otherwise. ``padding`` is ``auto``
    (detect per modality) or forces ``left`` / ``right``.
    """
    path, out = Path(src), Path(out)
    if dataset is not None and dataset not in DATASETS:
        raise ImportFormatError(
            path, f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}"
        )
    if padding not in PADDING_CHOICES:
        raise ImportFormatError(path, f"padding must be one of {', '.join(PADDING_CHOICES)}")
    data = load_pickle(path)
    splits = get_splits(path, data, "MulT")
    for split, part in splits.items():
        if "labels" not in part:
            hint = (
                " (it has regression_labels: this is an MMSA pickle, use `mea import mmsa`)"
                if "regression_labels" in part
                else ""
            )
            raise ImportFormatError(
                path, f"not a MulT pickle: split {split!r} has no 'labels' array{hint}"
            )
    if dataset is None:
        first = np.asarray(splits["train"]["labels"])
        dataset_name = "iemocap" if first.shape[1:] == (4, 2) else ""
    else:
        dataset_name = dataset
    spec = label_spec(dataset_name)
    # read and check every array first: nothing is written for a file that does not fit
    arrays: dict[str, dict[str, np.ndarray]] = {}
    dims: dict[str, int] = {}
    for split, part in splits.items():
        arrays[split] = {m: feature_array(path, part, split, m) for m in MODALITIES}
        for m in MODALITIES:
            check_dims(path, dims, split, m, arrays[split][m])
        check_counts(path, split, arrays[split])
    labels: dict[str, np.ndarray] = {}
    not_onehot = 0
    for split, part in splits.items():
        n = len(arrays[split]["text"])
        labels[split], bad = _labels(path, part["labels"], split, n, dataset_name)
        not_onehot += bad
    report = ImportReport("mult", path.name, dataset_name, spec.task, spec.label_names)
    report.splits = dict.fromkeys(SPLIT_NAMES, 0)
    sides: dict[str, str] = {}
    for m in MODALITIES:
        evidence = {
            k: 0
            for k in (
                "leading_zero_rows",
                "trailing_zero_rows",
                "samples_with_leading_zeros",
                "samples_with_trailing_zeros",
                "all_zero_samples",
            )
        }
        for split in SPLIT_NAMES:
            for k, v in padding_evidence(arrays[split][m]).items():
                evidence[k] += v
        detected = decide_padding(evidence)
        sides[m] = detected if padding == "auto" else padding
        report.modalities[m] = {
            "dim": dims[m],
            "padded_length": int(arrays["train"][m].shape[1]),
            "padding": sides[m],
            "padding_detected": detected,
            "padding_evidence": evidence,
            "nonfinite_fixed": 0,
        }
    if dataset_name == "iemocap":
        report.notes.append(
            f"label pairs read in MulT's order {', '.join(MULT_IEMOCAP_ORDER)} (eval_metrics.py) "
            f"and stored as {', '.join(spec.label_names)}"
        )
    if not_onehot:
        report.notes.append(
            f"{not_onehot} IEMOCAP label pairs were not exactly one-hot; read by argmax as MulT does"
        )
    ids_all: list[str] = []
    reversed_segments = 0
    meta: list[tuple[str, str, float, float, int, str]] = []  # id, video, start, end, row, split
    for split in SPLIT_NAMES:
        n = len(arrays[split]["text"])
        rows = id_rows(path, splits[split], split, n)
        for i in range(n):
            if rows is None:
                sid, video, start, end = f"{split}_{i:05d}", f"{split}_{i:05d}", np.nan, np.nan
            else:
                r = rows[i]
                sid, video = "_".join(r), r[0]
                start = to_float(r[1]) if len(r) >= 3 else np.nan
                end = to_float(r[2]) if len(r) >= 3 else np.nan
                bounds, bad = unknown_if_reversed(np.array([start, end]))
                start, end = float(bounds[0, 0]), float(bounds[0, 1])
                reversed_segments += bad
            ids_all.append(sid)
            meta.append((sid, video, start, end, i, split))
    if reversed_segments:
        report.notes.append(
            f"{reversed_segments} segment(s) end before they start in their id; their start and "
            "end are stored as unknown (NaN)"
        )
    check_no_leak(path, ids_all, [m[5] for m in meta])
    unique_ids, renamed = unique(ids_all)
    if renamed:
        report.notes.append(f"{renamed} repeated sample ids were made unique with a #k suffix")
    lengths = {
        split: {m: true_lengths(arrays[split][m], sides[m]) for m in MODALITIES}
        for split in SPLIT_NAMES
    }
    kept_lengths: dict[str, list[int]] = {m: [] for m in MODALITIES}

    def samples():
        for (_, video, start, end, i, split), sid in zip(meta, unique_ids, strict=True):
            y = labels[split][i]
            if not np.isfinite(y).all():
                report.drop(sid, "label is not finite")
                continue
            feats = {}
            for m in MODALITIES:
                x = strip(arrays[split][m][i], int(lengths[split][m][i]), sides[m])
                x, fixed = fix_nonfinite(x)
                report.modalities[m]["nonfinite_fixed"] += fixed
                feats[m] = x
                kept_lengths[m].append(len(x))
            report.splits[split] += 1
            yield Sample(sid, feats, video=video, start=start, end=end, split=split, label=y)
        for m in MODALITIES:
            report.add_lengths(m, kept_lengths[m])

    sha = file_sha256(path)
    schemas = [
        modality_schema(
            m,
            dims[m],
            "mult",
            path,
            sha,
            {"padding": sides[m], "padded_length": report.modalities[m]["padded_length"]},
        )
        for m in MODALITIES
    ]
    write_import(out, schemas, samples(), report, sha)
    return report
