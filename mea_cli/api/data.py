"""The Python API's data side: synthesise, extract, import, merge and open feature stores.

Each function checks its paths first (:mod:`mea_cli.paths`: nothing is created for a path that
fails) and then calls the same code as its ``mea`` command; user mistakes raise
:class:`mea_cli.errors.MeaError`. Heavy modules (PyAV, openSMILE, h5py readers) are imported
inside the functions, so ``import mea_cli.api`` stays cheap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mea_cli.api.args import items
from mea_cli.api.guard import one_command
from mea_cli.config import ConfigError, check_seed
from mea_cli.errors import MeaError
from mea_cli.paths import (
    PathError,
    PathLike,
    check_input_file,
    check_name_length,
    check_output_file,
)

if TYPE_CHECKING:
    from mea_cli.align import AlignReport
    from mea_cli.artifacts.features import FeatureStore
    from mea_cli.data.importers import ImportReport
    from mea_cli.extract.driver import ExtractReport

IMPORT_KINDS = ("mult", "mmsa", "csd")


@dataclass(frozen=True)
class SynthResult:
    """A synthetic store written by :func:`synth`: where, how many samples, which shape."""

    path: Path
    count: int
    like: str


@one_command
def synth(
    out: PathLike,
    *,
    like: str = "mosi",
    n: int | None = None,
    seed: int = 0,
    max_seconds: float = 12.0,
    progress: Callable[[int], None] | None = None,
) -> SynthResult:
    """Write synthetic asynchronous data shaped like ``like`` (mosi, mosei, iemocap) to ``out``
    (``mea synth``). Synthetic data is not the benchmark: it only imitates its shapes."""
    out = Path(out)
    check_output_file(out, "feature store")
    check_seed(seed, "--seed")  # numpy refuses a negative one; HDF5 one beyond 64 bits, at the end
    # start-up time: a command loads only its own code, after its cheap checks
    from mea_cli.data.synth import SPECS, write_synthetic

    if like not in SPECS:
        raise MeaError(f"like must be one of {', '.join(SPECS)}, got {like!r}")
    if n is not None and n < 3:
        raise MeaError(f"n must be at least 3, got {n}")
    if not 2.0 <= max_seconds < math.inf:  # inf: numpy cannot draw a duration up to it
        raise MeaError(f"max_seconds must be a finite number of at least 2, got {max_seconds}")
    total = SPECS[like].default_n if n is None else n
    count = write_synthetic(out, like, total, seed, max_seconds, progress=progress)
    return SynthResult(out, count, like)


def load_store(path: PathLike, *, check_values: bool = False) -> FeatureStore:
    """Open a feature store for reading (use it as a context manager: ``with load_store(p) as
    s``); ``check_values`` also refuses non-finite features and reversed step times. A
    ``mea align`` store's per-step ``observed`` masks are ``s.observed(i, m)`` (None for a store
    without them), ``s.unobserved_steps(m)`` and ``s[i].observed``."""
    # start-up time: a command loads only its own code, after its cheap checks
    from mea_cli.artifacts.features import FeatureStore

    check_input_file(Path(path), "feature store")
    store = FeatureStore(path)
    if check_values:
        try:
            store.check_values()
        except BaseException:
            store.close()
            raise
    return store


def describe_store(path: PathLike, *, sample: str | None = None) -> dict[str, Any]:
    """``mea info FILE [--sample ID]`` as a dict: the store's summary (values checked), or one
    sample's labels, sequences and words."""
    # start-up time: a command loads only its own code, after its cheap checks
    from mea_cli.artifacts.store_info import describe_sample, summarize

    with load_store(path, check_values=sample is None) as store:
        return describe_sample(store, sample) if sample is not None else summarize(store)


def _classes(classes: str | Sequence[str] | None) -> tuple[str, ...] | None:
    # start-up time: a command loads only its own code, after its cheap checks
    from mea_cli.extract.labelparse import LabelSpec

    if classes is None or isinstance(classes, str):
        return LabelSpec.parse_classes(classes)
    return LabelSpec.parse_classes(",".join(classes))


def _range_text(value: str | Sequence[float] | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return ",".join(str(v) for v in value)


@one_command
def extract(
    videos: PathLike,
    out: PathLike,
    *,
    labels: PathLike | None = None,
    task: str = "auto",
    classes: str | Sequence[str] | None = None,
    label_range: str | Sequence[float] | None = None,
    label_column: str = "label",
    workers: int = 1,
    cache: PathLike | None = None,
    shard: str | None = None,
    dataset: str = "",
    face_backend: str = "blendshapes",
    face_opt: str | Sequence[str] = (),
    audio_backend: str = "opensmile",
    audio_opt: str | Sequence[str] = (),
    text_backend: str = "glove",
    text_opt: str | Sequence[str] = (),
    fps: float | None = None,
    max_side: int | None = None,
    face_model: PathLike | None = None,
    audio_set: str | None = None,
    glove: PathLike | None = None,
    asr: bool = True,
    asr_model: PathLike | None = None,
    threads: int | None = None,
    language: str | None = None,
    progress: Callable[..., None] | None = None,
) -> ExtractReport:
    """Extract text, face and audio sequences from a video or a folder of videos into the
    store ``out`` (``mea extract``; options as there, ``*_opt`` are ``key=value`` strings).
    ``progress`` receives the extraction driver's updates."""
    videos = Path(videos)
    check_name_length(videos, "video file or folder")
    if not videos.exists():
        raise PathError(videos, "no such file or folder")
    if not videos.is_dir():
        check_input_file(videos, "video file")
    for given, what in ((labels, "labels file"), (face_model, "face model"), (glove, "word-vector file")):
        if given is not None:
            check_input_file(Path(given), what)
    if workers < 1:
        raise MeaError(f"workers must be at least 1, got {workers}")
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise ConfigError("--fps", f"must be a positive number of frames per second, got {fps}")
    if max_side is not None and max_side < 0:
        raise ConfigError("--max-side", f"must be 0 (never shrink) or more, got {max_side}")
    # start-up time: a command loads only its own code, after its cheap checks
    from mea_cli.extract.backends import BackendSpec
    from mea_cli.extract.driver import ExtractConfig
    from mea_cli.extract.driver import extract as run_extract
    from mea_cli.extract.labelparse import LabelSpec
    from mea_cli.extract.language import check_language_code
    from mea_cli.runtime import apply_threads

    shortcuts = {
        "face": {"fps": fps, "max_side": max_side, "model": face_model},
        "audio": {"set": audio_set},
        "text": {"vectors": glove},
    }

    def spec(kind: str, name: str, opts: Sequence[str]) -> BackendSpec:
        given = {k: str(v) for k, v in shortcuts[kind].items() if v is not None}
        return BackendSpec.parse(kind, name, list(opts)).with_options(given)

    cfg = ExtractConfig(
        face=spec("face", face_backend, items(face_opt)),
        audio=spec("audio", audio_backend, items(audio_opt)),
        text=spec("text", text_backend, items(text_opt)),
        asr=asr,
        asr_model=str(asr_model) if asr_model else None,
        threads=apply_threads(threads),
        language=check_language_code(language),
    )
    label_spec = LabelSpec(
        task=task,
        classes=_classes(classes),
        value_range=LabelSpec.parse_range(_range_text(label_range)),
        column=label_column,
    )
    return run_extract(
        videos, Path(out), cfg, labels=None if labels is None else Path(labels),
        label_spec=label_spec, workers=workers, cache_dir=None if cache is None else Path(cache),
        shard=shard, dataset=dataset, progress=progress,
    )  # fmt: skip


@one_command
def import_features(
    kind: str,
    src: PathLike,
    out: PathLike,
    *,
    dataset: str | None = None,
    padding: str = "auto",
    folds: PathLike | None = None,
    text_csd: str | None = None,
    vision_csd: str | None = None,
    audio_csd: str | None = None,
    labels_csd: str | None = None,
    label_column: int = 0,
    emotions: str | Sequence[str] | None = None,
) -> ImportReport:
    """Import CMU benchmark features (``kind``: mult or mmsa pickle, csd: a folder of SDK
    ``.csd`` files) into the store ``out`` (``mea import``). Options of another kind are
    refused, naming the kind they belong to."""
    if kind not in IMPORT_KINDS:
        raise MeaError(f"import kind must be one of {', '.join(IMPORT_KINDS)}, got {kind!r}")
    if dataset is not None and dataset not in ("mosi", "mosei", "iemocap"):
        raise MeaError(f"dataset must be mosi, mosei or iemocap, got {dataset!r}")
    owners = {"--folds": folds, "--text-csd": text_csd, "--vision-csd": vision_csd,
              "--audio-csd": audio_csd, "--labels-csd": labels_csd, "--emotions": emotions,
              "--label-column": label_column or None}  # fmt: skip
    owner = {k: "csd" for k, v in owners.items() if v is not None}
    if padding != "auto":
        owner["--padding"] = "mult"
    misplaced = sorted(k for k, o in owner.items() if o != kind)
    if misplaced:
        raise MeaError(
            f"mea import {kind} does not take {', '.join(misplaced)} (options of "
            + ", ".join(sorted({f"mea import {owner[k]}" for k in misplaced}))
            + ")"
        )
    src, out = Path(src), Path(out)
    if kind == "csd":
        if not src.exists():
            raise PathError(src, "no such directory of .csd files")
        if not src.is_dir():
            raise PathError(src, "is a file; give the directory that holds the .csd files")
    else:
        check_input_file(src, f"{kind} pickle")
    if folds is not None:
        check_input_file(Path(folds), "folds file")
    check_output_file(out, "feature store")
    # start-up time: a command loads only its own code, after its cheap checks
    from mea_cli.data.importers import import_csd, import_mmsa, import_mult

    if kind == "mult":
        return import_mult(src, out, dataset, padding=padding)
    if kind == "mmsa":
        return import_mmsa(src, out, dataset)
    if isinstance(emotions, str):
        emotions = emotions.split(",")
    return import_csd(
        src, out, dataset, text=text_csd, vision=vision_csd, audio=audio_csd,
        labels=labels_csd, folds=None if folds is None else Path(folds), label_column=label_column,
        emotions=None if emotions is None else [e for e in emotions if e.strip()],
    )  # fmt: skip


@one_command
def merge(
    stores: PathLike | Sequence[PathLike],
    out: PathLike,
    warn: Callable[[str], None] | None = None,
) -> int:
    """Join feature stores made with ``mea extract --shard i/n`` into ``out`` (``mea merge``);
    returns the number of samples written. ``warn`` hears of shards not among ``stores``
    (also recorded in the store, ``shards_missing``)."""
    paths = [Path(s) for s in items(stores)]
    for store in paths:
        check_input_file(store, "feature store")
    check_output_file(Path(out), "feature store")
    # start-up time: a command loads only its own code, after its cheap checks
    from mea_cli.extract.merge import merge_stores

    return merge_stores(paths, Path(out), warn)


@one_command
def align(
    store: PathLike,
    out: PathLike,
    *,
    to: str = "words",
    reduce: str = "mean",
    progress: Callable[[int, int, str], None] | None = None,
) -> AlignReport:
    """Write ``out``: ``store`` with every modality collapsed onto each sample's words
    (``mea align``, CMU SDK semantics, docs/align.md); samples that cannot be aligned are
    failure rows of the returned report."""
    if to != "words":
        raise MeaError(f"--to must be 'words' (the one alignment target), got {to!r}")
    check_input_file(Path(store), "feature store")
    check_output_file(Path(out), "feature store")
    # start-up time: a command loads only its own code, after its cheap checks
    from mea_cli.align import align_store

    return align_store(store, out, reduce, progress)
