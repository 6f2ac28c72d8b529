"""``mea import mmsa``: the MMSA pickles (``unaligned_50.pkl`` and friends, thuiar/MMSA).

Layout: ``{split: {"id": [N] "video$_$clip", "raw_text": [N], "text": [N, T_l, D_l],
"audio": [N, T_a, D_a], "vision": [N, T_v, D_v], "audio_lengths": [N], "vision_lengths": [N],
"regression_labels": [N], ...}}`` for ``split`` in train/valid/test. The audio and vision real
lengths are the stored ``*_lengths`` (the real steps come first; the rest is zero padding). Text
has no stored length: we use ``text_lengths`` when present, else the attention mask in
``text_bert`` (``[N, 3, T_l]``, row 1) when its ``T_l`` matches, else we strip trailing
all-zero rows; the report says which. Non-zero values past a stated length would be lost, so
they are counted in the report. Non-finite values become 0 (counted). ``raw_text`` is kept in
the store as the extra column ``/samples/raw_text``. MMSA has sentiment regression labels only,
so ``--dataset iemocap`` does not fit.
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
    as_text,
    fix_nonfinite,
    label_spec,
    load_pickle,
    modality_schema,
    true_lengths,
    write_import,
)
from mea_cli.data.importers.padded import (
    check_counts,
    check_dims,
    check_no_leak,
    feature_array,
    get_splits,
    id_rows,
    unique,
)
from mea_cli.paths import file_sha256


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
        tb = np.asarray(part["text_bert"])
        if tb.ndim == 3 and tb.shape[0] == n and tb.shape[1] == 3 and tb.shape[2] == t:
            return tb[:, 1, :].astype(np.float64).sum(axis=1).astype(np.int64), "text_bert mask"
    return true_lengths(x, "right"), "trailing zero rows stripped"


def import_mmsa(src: str | Path, out: str | Path, dataset: str | None = None) -> ImportReport:
    """Import an MMSA pickle into a feature store at ``out``; return the report."""
    path, out = Path(src), Path(out)
    if dataset is not None and dataset not in DATASETS:
        raise ImportFormatError(
            path, f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}"
        )
    data = load_pickle(path)
    splits = get_splits(path, data, "MMSA")
    for split, part in splits.items():
        if "regression_labels" not in part:
            hint = (
                " (it has 'labels': this is a MulT pickle, use `mea import mult`)"
                if "labels" in part
                else ""
            )
            raise ImportFormatError(
                path, f"not an MMSA pickle: split {split!r} has no 'regression_labels'{hint}"
            )
    if dataset == "iemocap":
        shape = np.asarray(splits["train"]["regression_labels"]).shape
        raise ImportFormatError(
            path,
            f"train/regression_labels has shape {shape}; iemocap needs four binary emotion "
            "labels per sample, which MMSA pickles do not hold",
        )
    dataset_name = dataset or ""
    spec = label_spec(dataset_name)
    arrays: dict[str, dict[str, np.ndarray]] = {}
    lengths: dict[str, dict[str, np.ndarray]] = {}
    labels: dict[str, np.ndarray] = {}
    dims: dict[str, int] = {}
    text_method = set()
    for split, part in splits.items():
        arrays[split] = {m: feature_array(path, part, split, m) for m in MODALITIES}
        for m in MODALITIES:
            check_dims(path, dims, split, m, arrays[split][m])
        n = check_counts(path, split, arrays[split])
        y = np.asarray(part["regression_labels"], dtype=np.float64)
        if y.size != n or (y.ndim > 1 and int(np.prod(y.shape[1:])) != 1):
            raise ImportFormatError(
                path,
                f"{split}/regression_labels has shape {y.shape}; expected one sentiment score "
                f"for each of the {n} samples",
            )
        labels[split] = y.reshape(n, 1).astype(np.float32)
        lengths[split] = {}
        for m in ("audio", "vision"):
            key = f"{m}_lengths"
            if key not in part:
                raise ImportFormatError(path, f"not an MMSA pickle: split {split!r} has no {key!r}")
            lengths[split][m] = _stated_lengths(
                path, part, split, key, n, arrays[split][m].shape[1]
            )
        lengths[split]["text"], method = _text_lengths(path, part, split, arrays[split]["text"])
        text_method.add(method)
    report = ImportReport("mmsa", path.name, dataset_name, spec.task, spec.label_names)
    report.splits = dict.fromkeys(SPLIT_NAMES, 0)
    for m in MODALITIES:
        past = 0
        for split in SPLIT_NAMES:
            x, lens = arrays[split][m], lengths[split][m]
            beyond = np.arange(x.shape[1])[None, :] >= lens[:, None]
            past += int(np.count_nonzero(x[beyond]))
        report.modalities[m] = {
            "dim": dims[m],
            "padded_length": int(arrays["train"][m].shape[1]),
            "padding": "right",
            "lengths_from": f"{m}_lengths" if m != "text" else ", ".join(sorted(text_method)),
            "nonzero_values_past_length": past,
            "nonfinite_fixed": 0,
        }
        if past:
            report.notes.append(
                f"{m}: {past} non-zero values lie past the stated lengths and were not imported"
            )
    ids_all, meta, raw_text = [], [], []
    for split in SPLIT_NAMES:
        part = splits[split]
        n = len(labels[split])
        rows = id_rows(path, part, split, n)
        texts = list(part["raw_text"]) if "raw_text" in part else [""] * n
        if len(texts) != n:
            raise ImportFormatError(
                path, f"{split}/raw_text has {len(texts)} entries for {n} samples"
            )
        for i in range(n):
            sid = "_".join(rows[i]) if rows is not None else f"{split}_{i:05d}"
            video = sid.split("$_$")[0]
            ids_all.append(sid)
            meta.append((video, i, split, as_text(texts[i])))
    check_no_leak(path, ids_all, [m[2] for m in meta])
    unique_ids, renamed = unique(ids_all)
    if renamed:
        report.notes.append(f"{renamed} repeated sample ids were made unique with a #k suffix")
    kept: dict[str, list[int]] = {m: [] for m in MODALITIES}

    def samples():
        for (video, i, split, text), sid in zip(meta, unique_ids, strict=True):
            y = labels[split][i]
            if not np.isfinite(y).all():
                report.drop(sid, "label is not finite")
                continue
            feats = {}
            for m in MODALITIES:
                x, fixed = fix_nonfinite(arrays[split][m][i][: int(lengths[split][m][i])])
                report.modalities[m]["nonfinite_fixed"] += fixed
                feats[m] = x
                kept[m].append(len(x))
            report.splits[split] += 1
            raw_text.append(text)
            yield Sample(sid, feats, video=video, split=split, label=y)
        for m in MODALITIES:
            report.add_lengths(m, kept[m])

    sha = file_sha256(path)
    schemas = [
        modality_schema(
            m, dims[m], "mmsa", path, sha, {"lengths_from": report.modalities[m]["lengths_from"]}
        )
        for m in MODALITIES
    ]
    write_import(out, schemas, samples(), report, sha, extra_columns={"raw_text": raw_text})
    return report
