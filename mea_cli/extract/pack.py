"""Step 3 of ``mea extract``: cut every video into samples and write the store in one pass.

With labels, each usable row of ``labels.csv`` becomes one sample: every modality and the
words are sliced by time (a step or word belongs to the segment when its midpoint lies in
``[start, end)``, times stay in seconds of the source video). A segment that starts at or
after the end of its video is a failure row (stage ``labels``), not a sample. Without labels
each video is one unlabelled sample (``start = 0``, ``end`` = duration). Videos that would not
open give no sample. Samples are written by video, then segment start, then id
(:func:`sample_order`), failures sorted, so the shards of a run merge into the same store as
one unsharded run. A run that would write no sample at all is an error: nothing is written.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mea_cli.artifacts.features import FeatureStoreWriter, ModalitySchema, Sample, Word
from mea_cli.extract.cache import VideoResult
from mea_cli.extract.discover import ExtractError, FailureRow, Plan


@dataclass
class Packed:
    """What was written."""

    samples: int
    failures: list[FailureRow]
    tokens: int = 0
    oov: int = 0
    text_sources: dict[str, int] = field(default_factory=dict)
    without_words: int = 0  # videos (that opened) whose text is empty: no words found or given


def sample_order(s: Sample) -> tuple[str, float, str]:
    """Samples are written by video, then segment start, then id (shards merge to the same)."""
    return (s.video, s.start if math.isfinite(s.start) else -1.0, s.id)


def _slice(x: np.ndarray, t: np.ndarray, start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
    if not len(t):
        return x, t
    mid = t.mean(axis=1)
    keep = (mid >= start) & (mid < end)
    return x[keep], t[keep]


def _words_in(words: list[Word], start: float, end: float) -> list[Word]:
    return [w for w in words if start <= (w.start + w.end) / 2 < end]


def _summary(res: VideoResult, start: float, end: float) -> dict[str, np.ndarray]:
    """The audio summary made for the span (none when the extraction makes none)."""
    return {} if res.summary is None else {"audio": res.summary_for(start, end)}


def video_sample(key: str, res: VideoResult) -> Sample:
    """A whole video as one unlabelled sample (what ``mea extract`` without labels writes,
    and what ``mea predict`` feeds the model)."""
    return Sample(
        id=key,
        video=key,
        start=0.0,
        end=res.duration,
        features=dict(res.features),
        times=dict(res.times),
        words=list(res.words),
        words_source=res.text_source,
        summary=_summary(res, 0.0, math.inf),
    )


def _samples(plan: Plan, results: dict[str, VideoResult], failures: list[FailureRow]) -> list[Sample]:
    samples: list[Sample] = []
    for key, _path in plan.videos:
        res = results[key]
        if res.fatal:
            continue
        if plan.labels is None:
            samples.append(video_sample(key, res))
            continue
        for seg in plan.segments.get(key, []):
            if math.isfinite(res.duration) and seg.start >= res.duration:
                failures.append(
                    (
                        key,
                        "labels",
                        f"{plan.labels.path.name} line {seg.line}: segment starts at "
                        f"{seg.start:g} s, after the video's end ({res.duration:.2f} s)",
                    )
                )
                continue
            end = min(seg.end, res.duration) if math.isfinite(res.duration) else seg.end
            feats, times = {}, {}
            for m in res.features:
                feats[m], times[m] = _slice(res.features[m], res.times[m], seg.start, seg.end)
            samples.append(
                Sample(
                    id=seg.id,
                    video=key,
                    start=seg.start,
                    end=end,
                    split=seg.split,
                    label=seg.label,
                    features=feats,
                    times=times,
                    words=_words_in(res.words, seg.start, seg.end),
                    words_source=res.text_source,
                    group=seg.group,
                    summary=_summary(res, seg.start, seg.end),
                )
            )
    return samples


def pack(
    plan: Plan,
    results: dict[str, VideoResult],
    schemas: list[ModalitySchema],
    out: Path,
    dataset: str = "",
    summaries: list[ModalitySchema] | None = None,
) -> Packed:
    """Write the store ``out`` (atomically) from the run's results; see the module docstring."""
    failures: list[FailureRow] = list(plan.failures)
    tokens = oov = 0
    sources: Counter[str] = Counter()
    without_words = 0
    for key, _path in plan.videos:
        res = results[key]
        failures.extend((key, stage, msg) for stage, msg in res.failures)
        tokens += res.tokens
        oov += res.oov
        sources[res.text_source] += 1
        without_words += int(not res.fatal and not res.tokens)
    samples = _samples(plan, results, failures)
    samples.sort(key=sample_order)
    failures.sort()
    if not samples:
        by_stage = Counter(stage for _, stage, _ in failures)
        why = ", ".join(f"{k} {v}" for k, v in sorted(by_stage.items())) or "no video found"
        first = f"; first: {failures[0][0]}: {failures[0][2]}" if failures else ""
        raise ExtractError(
            f"{plan.root}: no sample to write ({plan.found} video(s) in this shard; failures: "
            f"{why}{first}); {out} was not written"
        )
    i, n = plan.shard
    label_file = plan.labels
    attrs: dict[str, object] = {
        "source": str(plan.root),
        "extract_videos": plan.found,
        "extract_skipped_files": len(plan.skipped_files),
        "extract_text_tokens": tokens,
        "extract_text_oov": oov,
        "extract_text_sources": dict(sorted(sources.items())),
        "shard": f"{i}/{n}",
    }
    if label_file is not None and label_file.value_range is not None:
        attrs["label_range"] = list(label_file.value_range)
    if label_file is not None and label_file.group_by:
        attrs["group_by"] = label_file.group_by
    with FeatureStoreWriter(
        out,
        schemas,
        dataset=dataset,
        task=label_file.task if label_file is not None else "",
        label_names=label_file.label_names if label_file is not None else (),
        attrs=attrs,
        summaries=summaries or (),
    ) as w:
        for s in samples:
            w.add(s)
        for f in failures:
            w.add_failure(*f)
    return Packed(len(samples), failures, tokens, oov, dict(sources), without_words)
