"""``mea extract``: a folder of videos -> one feature store (text, vision, audio, unaligned).

Three steps, one module each: :mod:`~mea_cli.extract.discover` (which videos, this shard's
share, which labelled segments), :mod:`~mea_cli.extract.run` (every video once, through the
per-video cache, in ``workers`` processes) and :mod:`~mea_cli.extract.pack` (cut into
samples, write the store atomically). The backends are built once up front in this process
(:class:`~mea_cli.extract.pipeline.Pipeline`), so a missing model, vector file or package is
one clear error before any work.

Failure table semantics: one row ``(video, stage, message)`` per problem; stages are
``decode`` (the file will not open, or breaks off part-way), ``vision`` (no video stream, no
face in any frame), ``audio`` (no audio stream, audio undecodable), ``text`` (no transcript
and ASR off, unreadable transcript, no words) and ``labels`` (a row naming a missing video, a
zero-length or inverted segment, a segment past the video's end, a video no row names). A
video that will not open yields no sample; any other problem leaves that modality's sequence
empty (zero steps) and keeps the sample.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mea_cli.errors import MeaError
from mea_cli.extract.discover import ExtractError, discover
from mea_cli.extract.labelparse import LabelSpec
from mea_cli.extract.pack import pack
from mea_cli.extract.pipeline import ExtractConfig, Pipeline
from mea_cli.extract.run import ExtractInterrupted, Progress, run
from mea_cli.interrupt import Interrupted
from mea_cli.locks import share
from mea_cli.paths import (
    PathError,
    check_not_input,
    check_output_dir,
    check_output_file,
    ensure_dir,
    same_file,
)

__all__ = ["ExtractConfig", "ExtractError", "ExtractInterrupted", "ExtractReport", "Progress", "extract"]


@dataclass
class ExtractReport:
    """The outcome of one ``mea extract`` run."""

    out: Path
    videos: int
    extracted: int
    cached: int
    skipped_files: list[str]  # files under the input that are not media, relative paths
    samples: int
    failures: list[tuple[str, str, str]]
    media_seconds: float  # of the videos extracted in this run
    wall_seconds: float
    compute_seconds: dict[str, float] = field(default_factory=dict)
    tokens: int = 0
    oov: int = 0
    text_sources: dict[str, int] = field(default_factory=dict)
    without_words: int = 0  # videos that opened but have an empty text sequence
    startup_seconds: float = float("nan")  # call -> first video begun: models loaded, workers up

    @property
    def rtf(self) -> float:
        return self.media_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def oov_rate(self) -> float:
        return self.oov / self.tokens if self.tokens else float("nan")


def _has_entries(cache_dir: Path) -> bool:
    """True when ``cache_dir`` holds at least one finished video (:mod:`mea_cli.extract.cache`)."""
    return cache_dir.is_dir() and any(cache_dir.glob("*.npz"))


def _writing(path: str, out: Path, cache_dir: Path) -> bool:
    """True when ``path`` is the store or a file of the cache folder: what extraction writes."""
    return same_file(path, out) or Path(path).parent.resolve() == cache_dir.resolve()


def extract(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    cfg: ExtractConfig | None = None,
    *,
    labels: str | os.PathLike[str] | None = None,
    label_spec: LabelSpec | None = None,
    workers: int = 1,
    cache_dir: str | os.PathLike[str] | None = None,
    shard: str | None = None,
    dataset: str = "",
    progress: Callable[[Progress], None] | None = None,
) -> ExtractReport:
    """Extract every video under ``source`` into the feature store ``out`` (module docstring)."""
    called = time.time()
    cfg = cfg or ExtractConfig()
    if workers < 1:
        raise ExtractError("--workers must be at least 1")
    if labels is None and label_spec is not None and label_spec != LabelSpec():
        raise ExtractError("--task, --classes, --label-range and --label-column need --labels")
    out = check_output_file(out, "feature store")
    cdir = Path(cache_dir) if cache_dir is not None else out.with_name(out.name + ".cache")
    if same_file(cdir, out):
        raise ExtractError(f"{out}: the feature store and the extraction cache folder are one path")
    check_output_dir(cdir, "extraction cache folder")
    new_cache = not cdir.exists()  # made by this call: removed again if no store is written
    try:
        plan = discover(source, labels, label_spec, shard)
        check_not_input(out, what="feature store")  # e.g. --out onto a video of the folder
        pipeline = Pipeline.from_config(cfg)  # one clear error for a missing model, not N failures
        pipeline.words.require_asr(plan.without_sidecar())
        schemas = pipeline.schemas()
        # shared with other extractions using this cache; alone, it removes a killed run's
        # temporary files (cache entries, the store)
        with share(ensure_dir(cdir, "extraction cache folder"), "extraction cache", [out]):
            done = run(plan, pipeline, cfg, cdir, workers, progress)
            packed = pack(plan, done.results, schemas, out, dataset, pipeline.summary_schemas())
    except Interrupted:
        raise  # what is cached stays for the rerun
    except MeaError as err:
        if isinstance(err, PathError) and _writing(err.path, out, cdir) and _has_entries(cdir):
            # e.g. a full disk while writing the store or a cache entry: the videos done stay
            raise PathError(
                err.path, f"{err.problem} (the videos extracted so far stay cached in {cdir})"
            ) from None
        if new_cache:  # a refused request leaves nothing behind
            shutil.rmtree(cdir, ignore_errors=True)
        raise
    except KeyboardInterrupt:
        if _has_entries(cdir):
            kept = f"videos finished so far are cached in {cdir}: run the same command again to resume"
        else:
            kept = "no video had finished"
            if new_cache:
                shutil.rmtree(cdir, ignore_errors=True)
        raise ExtractInterrupted(f"interrupted; no store was written; {kept}") from None
    return ExtractReport(
        out=out,
        videos=plan.found,
        extracted=done.extracted,
        cached=done.cached,
        skipped_files=plan.skipped_files,
        samples=packed.samples,
        failures=packed.failures,
        media_seconds=done.media_seconds,
        wall_seconds=done.wall_seconds,
        compute_seconds=done.compute_seconds,
        tokens=packed.tokens,
        oov=packed.oov,
        text_sources=packed.text_sources,
        without_words=packed.without_words,
        startup_seconds=done.first_started - called,
    )
