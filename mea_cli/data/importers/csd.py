"""``mea import csd``: CMU-MultimodalSDK computational sequences (``.csd``), unaligned.

A ``.csd`` file is HDF5 with one root group (the sequence's name) holding ``data/<video>/features``
``[T, D]`` and ``data/<video>/intervals`` ``[T, 2]`` (start, end seconds of each step) and
``metadata/<key>`` (one JSON string each, e.g. ``dimension names``). A directory holds one
sequence per modality plus a labels sequence whose steps are the labelled segments
(MOSI ``Opinion Labels`` ``[S, 1]``; MOSEI ``Labels`` ``[S, 7]``, sentiment first).

Each labelled segment ``k`` of video ``v`` becomes sample ``v[k]`` (the SDK's naming). Every
modality is **sliced** by the segment's interval, not aligned: a step belongs to the segment
when its interval overlaps ``[start, end)`` by a positive amount (an instantaneous step, start
== end, when it lies in ``[start, end)``), and keeps its own times. Splits come from the
standard folds, which list video ids (shipped as ``mea_cli/data/folds/{mosi,mosei}.json``, from
the CMU-MultimodalSDK); ``folds`` (a JSON file ``{"train": [...], "valid": [...], "test":
[...]}`` of video or sample ids) overrides them and is required for IEMOCAP; a video named
``video[k]`` (the SDK's aligned and deployed sequences) is looked up by the id before the first
``[`` when the folds do not name it. Segments of a video in no fold, and segments whose label
is not finite, are dropped and counted; an import left with no train or no valid sample is an
error. A video missing from a modality's sequence gives empty sequences (legal), counted in the
report; so does an empty video (``(0,)`` or ``(0, D)``). Steps stored out of time order are
sorted within each segment (counted).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from mea_cli import MODALITIES
from mea_cli.artifacts.features import ModalitySchema, Sample
from mea_cli.artifacts.store_format import LABELLED_SPLITS
from mea_cli.data.importers.cleaning import unknown_if_reversed
from mea_cli.data.importers.datasets import DatasetLabels, check_dataset, label_spec
from mea_cli.data.importers.errors import ImportFormatError
from mea_cli.data.importers.padded import unique
from mea_cli.data.importers.report import ImportReport
from mea_cli.data.importers.store import modality_schema, write_import
from mea_cli.data.presets import IEMOCAP_EMOTIONS
from mea_cli.paths import file_sha256, note_input

ROLE_KEYWORDS: dict[str, tuple[str, ...]] = {
    "labels": ("label",),
    "text": ("wordvector", "word_vector", "glove", "text", "bert", "words"),
    "vision": ("facet", "openface", "vision", "visual"),
    "audio": ("covarep", "opensmile", "audio", "acoustic"),
}


def standard_folds(dataset: str) -> dict[str, list[str]]:
    """The standard MOSI / MOSEI folds (video ids) shipped as package data."""
    ref = resources.files("mea_cli.data") / "folds" / f"{dataset}.json"
    raw = json.loads(ref.read_text(encoding="utf-8"))
    return {s: list(raw[s]) for s in LABELLED_SPLITS}


def load_folds(path: Path) -> dict[str, list[str]]:
    """A user's folds JSON: ``{"train": [...], "valid": [...], "test": [...]}``."""
    if not path.is_file():
        raise ImportFormatError(path, "no such folds file")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ImportFormatError(path, f"folds file is not JSON: {err}") from None
    if not isinstance(raw, Mapping) or any(not isinstance(raw.get(s), list) for s in LABELLED_SPLITS):
        raise ImportFormatError(
            path, 'folds file must be {"train": [ids], "valid": [ids], "test": [ids]}'
        )
    folds = {s: [str(x) for x in raw[s]] for s in LABELLED_SPLITS}
    seen: dict[str, str] = {}
    for s in LABELLED_SPLITS:
        for x in folds[s]:
            if x in seen and seen[x] != s:
                raise ImportFormatError(path, f"id {x!r} is in both the {seen[x]} and {s} folds")
            seen[x] = s
    return folds


def _read_metadata(path: Path, key: str, node: Any) -> Any:
    """One metadata entry as the SDK writes it: a ``(1,)`` variable-length string dataset whose
    one value is ``json.dumps(value)`` (``file_ops.write_CSD``), so it may decode to a string,
    number, boolean, ``None``, list or dict; text that is not JSON is kept as text, as the
    SDK's own reader does."""
    if not isinstance(node, h5py.Dataset):
        raise ImportFormatError(path, f"metadata entry {key!r} is a group, not a dataset")
    try:
        raw = node[()] if node.shape == () else node[0]
    except (TypeError, ValueError, IndexError, OSError) as err:
        raise ImportFormatError(path, f"metadata entry {key!r} is unreadable: {err}") from None
    if isinstance(raw, np.ndarray) and raw.size == 1:
        raw = raw.reshape(-1)[0]
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _provenance_value(value: Any) -> str | int | float | bool | None:
    """A metadata value as it is kept in the store's provenance: numbers, booleans and null as
    they are, strings and anything else (lists, dicts, non-finite numbers) as text of at most
    300 characters (citations can be long)."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    text = value if isinstance(value, str) else json.dumps(value)
    return text[:300]


class Sequence:
    """One opened computational sequence: name, per-video data, metadata."""

    def __init__(self, path: Path) -> None:
        self.path = path
        _check_link(path)
        note_input(path)  # the store written from it must not replace it
        try:
            self.file = h5py.File(path, "r")
        except (OSError, ValueError) as err:
            raise ImportFormatError(path, f"not a readable .csd (HDF5) file: {err}") from None
        roots = [k for k in self.file if isinstance(self.file[k], h5py.Group)]
        if len(roots) != 1 or "data" not in self.file[roots[0]]:
            self.file.close()
            raise ImportFormatError(
                path, "not a computational sequence: expected one root group with a 'data' group"
            )
        self.root = roots[0]
        self.data = self.file[self.root]["data"]
        self.metadata: dict[str, Any] = {}
        meta = self.file[self.root].get("metadata")
        if isinstance(meta, h5py.Group):
            for key in meta:
                self.metadata[key] = _read_metadata(path, key, meta[key])
        self.videos = list(self.data)
        try:
            self.dim, self.numeric = self._width()
        except ImportFormatError:
            self.file.close()
            raise

    def _width(self) -> tuple[int, bool]:
        """The feature width D and whether the features are numbers, from the first video
        with a row (an empty first video, ``(0,)`` or ``(0, D)``, says nothing of D)."""
        for video in self.videos:
            feats = self._group(video)["features"]
            if feats.size:
                if feats.ndim > 2:
                    raise ImportFormatError(
                        self.path, f"video {video!r}: features {feats.shape} are not [T, D]"
                    )
                return (int(feats.shape[1]) if feats.ndim == 2 else 1), feats.dtype.kind in "fiub"
        held = f"its {len(self.videos)} videos are all empty" if self.videos else "it holds no video"
        raise ImportFormatError(self.path, f"no feature row to read: {held}")

    def _group(self, video: str) -> h5py.Group:
        """One video's group, checked to hold the ``features`` and ``intervals`` datasets."""
        g = self.data.get(video)
        if not isinstance(g, h5py.Group):
            raise ImportFormatError(
                self.path, f"video {video!r} is not a group of 'features' and 'intervals'"
            )
        if not all(isinstance(g.get(k), h5py.Dataset) for k in ("features", "intervals")):
            raise ImportFormatError(self.path, f"video {video!r} lacks 'features' or 'intervals'")
        return g

    def close(self) -> None:
        self.file.close()

    def intervals(self, video: str) -> np.ndarray:
        """``intervals`` of one video as float64 (an empty array of any shape as ``[0, 2]``);
        the shape is checked by :meth:`get`."""
        iv = self._read(video, "intervals", np.float64)
        return iv if iv.size else np.zeros((0, 2))

    def _read(self, video: str, key: str, dtype: type) -> np.ndarray:
        """Dataset ``key`` of one video as ``dtype``; one line naming the video when the file
        cannot give it."""
        try:
            return np.asarray(self._group(video)[key][:], dtype=dtype)
        except (TypeError, ValueError, OSError) as err:
            raise ImportFormatError(
                self.path, f"video {video!r}: unreadable features/intervals: {err}"
            ) from None

    def get(self, video: str) -> tuple[np.ndarray, np.ndarray]:
        """``(features [T, D] float32, intervals [T, 2] float64)`` of one video, checked; empty
        arrays of any shape (the SDK's ``(0,)`` among them) are ``[0, D]`` and ``[0, 2]``."""
        iv = self.intervals(video)
        x = self._read(video, "features", np.float32)
        if not x.size:
            x = np.zeros((0, self.dim), np.float32)
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2 or x.shape[1] != self.dim or iv.shape != (len(x), 2):
            raise ImportFormatError(
                self.path,
                f"video {video!r}: features {x.shape} and intervals {iv.shape} do not fit "
                f"[T, {self.dim}] and [T, 2]",
            )
        return x, iv

    @property
    def feature_names(self) -> list[str] | None:
        names = self.metadata.get("dimension names")
        if isinstance(names, list) and len(names) == self.dim:
            return [str(n) for n in names]
        return None

    def rate_hz(self) -> float:
        """Median steps per second over a few videos (NaN for irregular steps such as words)."""
        diffs = []
        for v in self.videos[:20]:
            iv = self.intervals(v)
            if iv.ndim == 2 and len(iv) > 1:
                diffs.append(np.diff(iv[:, 0]))
        if not diffs:
            return float("nan")
        d = np.concatenate(diffs)
        d = d[d > 0]
        if not len(d) or np.std(d) > 0.1 * np.median(d):
            return float("nan")
        return float(1.0 / np.median(d))


def _check_link(path: Path) -> None:
    """A ``.csd`` that is a symbolic link whose target is missing (a dataset folder moved
    after linking, a download that never finished) is named as such, with its target."""
    if path.is_symlink() and not path.exists():
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        raise ImportFormatError(
            path, f"a broken symbolic link: its target {target} does not exist (or links in a loop)"
        )


def _pick(directory: Path, role: str, given: str | None, files: list[Path]) -> Path:
    if given is not None:
        p = Path(given)
        p = p if p.is_absolute() or p.exists() or p.is_symlink() else directory / given
        _check_link(p)
        if not p.is_file():
            raise ImportFormatError(p, f"no such .csd file (given for {role})")
        return p
    keys = ROLE_KEYWORDS[role]
    found = [
        f
        for f in files
        if any(k in f.name.lower() for k in keys)
        and (role == "labels" or "label" not in f.name.lower())
    ]
    if role == "text" and len(found) > 1:  # word strings are not features: keep vectors
        numeric = []
        for f in found:
            seq = Sequence(f)
            if seq.numeric:
                numeric.append(f)
            seq.close()
        found = numeric
    if len(found) == 1:
        return found[0]
    option = "--labels-csd" if role == "labels" else f"--{role}-csd"
    if not found:
        raise ImportFormatError(
            directory,
            f"no .csd file for {role} (looked for names containing {'/'.join(keys)}); "
            f"name it with {option} FILE",
        )
    raise ImportFormatError(
        directory,
        f"several .csd files could be {role}: {', '.join(f.name for f in found)}; "
        f"choose one with {option} FILE",
    )


# Names an emotion column may carry (lower case) for each of the store's four IEMOCAP emotions.
EMOTION_NAMES: dict[str, tuple[str, ...]] = {
    "happy": ("happy", "happiness", "hap", "joy"),
    "sad": ("sad", "sadness"),
    "angry": ("angry", "anger", "ang"),
    "neutral": ("neutral", "neu"),
}


def _emotion_columns(
    lab: Sequence, emotions: list[str] | tuple[str, ...] | None
) -> tuple[list[int], str]:
    """The labels column of each store emotion (``IEMOCAP_EMOTIONS`` order) and what named them.

    The CMU-MultimodalSDK defines no IEMOCAP labels sequence, so the column order of a user's
    file is not known in advance (MulT's pickles use Neutral, Happy, Sad, Angry; others differ).
    The columns are matched by name: ``emotions`` when given, else the sequence's own
    ``dimension names`` metadata; a file that names none is refused rather than guessed.
    """
    if emotions is not None:
        names, source = [str(e) for e in emotions], "--emotions"
        if len(names) != lab.dim:
            raise ImportFormatError(
                lab.path, f"--emotions names {len(names)} columns, the labels have {lab.dim}"
            )
    elif lab.feature_names is not None:
        names, source = lab.feature_names, "the labels' dimension names"
    else:
        raise ImportFormatError(
            lab.path,
            f"labels have {lab.dim} columns and no 'dimension names' metadata saying which "
            "emotion each is; give them in file order with --emotions "
            "(e.g. --emotions neutral,happy,sad,angry)",
        )
    norm = [n.strip().lower() for n in names]
    columns = []
    for emotion in IEMOCAP_EMOTIONS:
        hits = [j for j, n in enumerate(norm) if n in EMOTION_NAMES[emotion]]
        if len(hits) != 1:
            problem = f"no {emotion!r} column" if not hits else f"{len(hits)} {emotion!r} columns"
            raise ImportFormatError(
                lab.path,
                f"{source} ({', '.join(names)}) name {problem}; iemocap needs each of "
                f"{', '.join(IEMOCAP_EMOTIONS)} once",
            )
        columns.append(hits[0])
    return columns, source


def _in_segment(iv: np.ndarray, start: float, end: float) -> np.ndarray:
    a, b = iv[:, 0], iv[:, 1]
    overlap = (a < end) & (b > start)
    instant = (a == b) & (a >= start) & (a < end)
    return overlap | instant


def _csd_files(directory: Path, dataset: str | None, given: list[str | None]) -> list[Path]:
    """The ``.csd`` files of ``directory`` (checked to be one), after the dataset check; none
    at all is refused unless every role was named."""
    if not directory.is_dir():
        raise ImportFormatError(directory, "expected a directory of .csd files")
    check_dataset(directory, dataset)
    files = sorted(directory.glob("*.csd"))
    if not files and None in given:
        raise ImportFormatError(directory, "holds no .csd files")
    return files


def _folds(
    directory: Path, dataset: str | None, folds: str | Path | None
) -> tuple[dict[str, str], str]:
    """``{video or sample id: split}`` from the user's folds file or the standard folds, and
    where they came from (for the report)."""
    if folds is not None:
        fold_ids, source = load_folds(Path(folds)), Path(folds).name
    elif dataset in ("mosi", "mosei"):
        fold_ids, source = standard_folds(dataset), f"standard {dataset} folds (CMU-MultimodalSDK)"
    else:
        raise ImportFormatError(
            directory,
            "no folds: pass --dataset mosi|mosei for the standard folds, or --folds FILE.json"
            + (" (no standard IEMOCAP folds ship with mea-cli)" if dataset == "iemocap" else ""),
        )
    return {x: s for s in LABELLED_SPLITS for x in fold_ids[s]}, source


def _open_numeric(paths: Mapping[str, Path], seqs: dict[str, Sequence]) -> None:
    """Open each role's sequence into ``seqs`` (so the caller closes what was opened), refusing
    one whose features are not numbers (the words sequence given as text, say)."""
    for role, p in paths.items():
        seqs[role] = Sequence(p)
        if not seqs[role].numeric:
            raise ImportFormatError(
                p, f"holds non-numeric features; it cannot be the {role} sequence"
            )


def _label_columns(
    directory: Path,
    lab: Sequence,
    spec: DatasetLabels,
    emotions: list[str] | tuple[str, ...] | None,
    label_column: int,
) -> tuple[list[int], str]:
    """The labels columns to store, and (IEMOCAP) what named them."""
    if spec.task == "binary-multilabel":
        return _emotion_columns(lab, emotions)
    if emotions is not None:
        raise ImportFormatError(
            directory, "--emotions names IEMOCAP label columns; it needs --dataset iemocap"
        )
    if not 0 <= label_column < lab.dim:
        raise ImportFormatError(
            lab.path,
            f"label column {label_column} does not exist (labels have {lab.dim} columns)",
        )
    return [label_column], ""


def _report(
    directory: Path,
    spec: DatasetLabels,
    seqs: Mapping[str, Sequence],
    columns: list[int],
    named_by: str,
    fold_source: str,
) -> ImportReport:
    """The report before any sample: each modality's source and how the labels were read."""
    lab = seqs["labels"]
    report = ImportReport("csd", directory.name, spec.dataset, spec.task, spec.label_names)
    report.splits = dict.fromkeys(LABELLED_SPLITS, 0)
    for m in MODALITIES:
        report.modalities[m] = {
            "dim": seqs[m].dim,
            "source": seqs[m].path.name,
            "padding": "none (sliced by segment interval)",
            "nonfinite_fixed": 0,
        }
    if lab.dim > 1 and spec.task == "regression":
        report.notes.append(f"labels have {lab.dim} columns; column {columns[0]} used as sentiment")
    if spec.task == "binary-multilabel":
        named = zip(spec.label_names, columns, strict=True)
        report.notes.append(
            f"emotion columns named by {named_by}: "
            + ", ".join(f"{e} = column {c}" for e, c in named)
        )
    report.notes.append(f"splits from {fold_source}")
    return report


@dataclass
class _Segment:
    """One labelled segment of the labels sequence: sample ``video[k]``."""

    id: str
    video: str
    start: float
    end: float
    label: np.ndarray


def _segments(lab: Sequence, columns: list[int]) -> list[_Segment]:
    """Every labelled segment, named ``video[k]`` as the SDK does (made unique)."""
    found = []
    for video in lab.videos:
        y, iv = lab.get(video)
        for k in range(len(y)):
            found.append(
                _Segment(f"{video}[{k}]", video, float(iv[k, 0]), float(iv[k, 1]), y[k, columns])
            )
    ids, _ = unique([s.id for s in found])
    for seg, sid in zip(found, ids, strict=True):
        seg.id = sid
    return found


class _Slicer:
    """Cuts a segment's steps out of every modality; a video's rows are read once (segments
    come grouped by video); missing videos, steps out of time order and reversed step times
    are counted."""

    def __init__(self, seqs: Mapping[str, Sequence], report: ImportReport) -> None:
        self.seqs, self.report = seqs, report
        self.current: dict[str, tuple[str, tuple[np.ndarray, np.ndarray] | None]] = {}
        self.missing_videos = dict.fromkeys(MODALITIES, 0)
        self.unsorted = dict.fromkeys(MODALITIES, 0)
        self.reversed_steps = dict.fromkeys([*MODALITIES, "segment"], 0)

    def rows(self, m: str, video: str) -> tuple[np.ndarray, np.ndarray] | None:
        """One video's rows of ``m``, read once per video (segments come grouped)."""
        if m not in self.current or self.current[m][0] != video:
            if video in self.seqs[m].data:
                self.current[m] = (video, self.seqs[m].get(video))
            else:
                self.missing_videos[m] += 1
                self.current[m] = (video, None)
        return self.current[m][1]

    def cut(self, m: str, seg: _Segment) -> tuple[np.ndarray, np.ndarray]:
        """The features and times of ``m`` inside ``seg`` (empty for a missing video), in
        order of start time (stable: steps stored out of order are sorted, and counted)."""
        rows = self.rows(m, seg.video)
        if rows is None:
            return np.zeros((0, self.seqs[m].dim), np.float32), np.zeros((0, 2))
        sel = _in_segment(rows[1], seg.start, seg.end)
        x, iv = rows[0][sel], rows[1][sel]
        if np.any(iv[1:, 0] < iv[:-1, 0]):
            order = np.argsort(iv[:, 0], kind="stable")
            x, iv = x[order], iv[order]
            self.unsorted[m] += 1
        t, bad = unknown_if_reversed(iv)
        self.reversed_steps[m] += bad
        return x, t

    def bounds(self, seg: _Segment) -> tuple[float, float]:
        """The segment's start and end, unknown (NaN) when it ends before it starts."""
        bounds, bad = unknown_if_reversed(np.array([seg.start, seg.end]))
        self.reversed_steps["segment"] += bad
        return float(bounds[0, 0]), float(bounds[0, 1])

    def finish(self) -> None:
        """Length statistics, missing videos, unsorted steps and reversed times into the
        report."""
        self.report.finish_lengths()
        for m in MODALITIES:
            self.report.modalities[m]["videos_missing"] = self.missing_videos[m]
            if self.unsorted[m]:
                self.report.notes.append(
                    f"{m}: {self.unsorted[m]} segment(s) have steps stored out of time order; "
                    "stored sorted by start time"
                )
        for what, count in self.reversed_steps.items():
            if count:
                self.report.notes.append(
                    f"{what}: {count} interval(s) end before they start; stored as unknown "
                    "(NaN) times"
                )


def _fold(split_of: Mapping[str, str], seg: _Segment) -> tuple[str | None, str]:
    """The split of ``seg`` and its video as the folds name it: the sample id, else the video
    id, else (the SDK's aligned and deployed sequences name their videos ``video[k]``, nested
    ``video[k][j]``) the id before the first ``[``, as the SDK's tutorials look folds up."""
    for key in (seg.id, seg.video):
        if key in split_of:
            return split_of[key], seg.video
    base = seg.video.split("[", 1)[0]
    return split_of.get(base), base


def _samples(
    segments: list[_Segment], split_of: Mapping[str, str], slicer: _Slicer, source: Path
) -> Iterator[Sample]:
    """The samples, as the store writer asks for them; a segment of a video in no fold or
    with a label that is not finite is dropped (counted); an import left with no train or no
    valid sample is refused at the end (``source`` named; nothing is written)."""
    report = slicer.report
    for seg in segments:
        split, video = _fold(split_of, seg)
        if split is None:
            report.drop(seg.id, "video is in no fold")
            continue
        if not np.isfinite(seg.label).all():
            report.drop(seg.id, "label is not finite")
            continue
        feats, times = {}, {}
        for m in MODALITIES:
            x, times[m] = slicer.cut(m, seg)
            feats[m] = report.keep(m, x)
        report.count(seg.id, split, feats)
        start, end = slicer.bounds(seg)
        yield Sample(
            seg.id,
            feats,
            video=video,
            start=start,
            end=end,
            split=split,
            label=np.asarray(seg.label, np.float32),
            times=times,
        )
    slicer.finish()
    report.finish(source)


def _schema(m: str, s: Sequence) -> ModalitySchema:
    """A modality's schema: the sequence's names, metadata (as provenance) and step rate."""
    meta = {k: _provenance_value(v) for k, v in s.metadata.items() if k != "dimension names"}
    extra = {"root": s.root, "metadata": meta}
    schema = modality_schema(m, s.dim, "csd", s.path, file_sha256(s.path), extra, s.feature_names)
    return ModalitySchema(schema.name, schema.feature_names, schema.extractor, s.rate_hz())


def import_csd(
    src: str | Path,
    out: str | Path,
    dataset: str | None = None,
    *,
    text: str | None = None,
    vision: str | None = None,
    audio: str | None = None,
    labels: str | None = None,
    folds: str | Path | None = None,
    label_column: int = 0,
    emotions: list[str] | tuple[str, ...] | None = None,
) -> ImportReport:
    """Import a directory of ``.csd`` files into a feature store at ``out``; return the report.

    ``emotions`` (IEMOCAP only) names the emotion of each label column in file order, for a
    labels sequence whose metadata do not (see :func:`_emotion_columns`).
    """
    directory, out = Path(src), Path(out)
    given = {"labels": labels, "text": text, "vision": vision, "audio": audio}
    files = _csd_files(directory, dataset, list(given.values()))
    split_of, fold_source = _folds(directory, dataset, folds)
    paths = {role: _pick(directory, role, name, files) for role, name in given.items()}
    seqs: dict[str, Sequence] = {}
    try:
        _open_numeric(paths, seqs)
        spec = label_spec(dataset or "")
        columns, named_by = _label_columns(directory, seqs["labels"], spec, emotions, label_column)
        report = _report(directory, spec, seqs, columns, named_by, fold_source)
        segments = _segments(seqs["labels"], columns)
        schemas = [_schema(m, seqs[m]) for m in MODALITIES]
        samples = _samples(segments, split_of, _Slicer(seqs, report), directory)
        write_import(out, schemas, samples, report, file_sha256(seqs["labels"].path))
        return report
    finally:
        for s in seqs.values():
            s.close()
