"""Write the word-aligned copy of a feature store (``mea align STORE --to words``).

For each sample the reference spans are its words (``/words``, with their times); a sample
without words uses its text modality's step times (stores imported from the SDK's CSD files
keep each word vector's interval there). Every modality, text included, is collapsed onto
those spans (:func:`mea_cli.align.collapse.collapse`), so all modalities have one step per
word and step times equal to the word intervals. A text step that is exactly its word's
interval is copied unchanged by every reduction.

A sample that cannot be aligned -- no word and no timed text step, word times unknown, or a
modality whose steps have no times -- is not written and becomes a failure row
(``stage = "align"``) naming it, beside the source store's own failures; the count is printed.
The output records the alignment in the root attribute ``aligned`` (JSON: ``to``, ``reduce``,
``epsilon_s``, the source's path and sha256, the reference used per sample, and per modality
how many words had no step and got zeros), and per modality the ``observed`` mask (False for
such a word), which the data loader passes to the models that declare ``gap_masks``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from mea_cli.align.collapse import EPSILON, REDUCES, collapse
from mea_cli.artifacts.features import (
    ExtractorInfo,
    FeatureStore,
    FeatureStoreWriter,
    ModalitySchema,
    Sample,
)
from mea_cli.errors import MeaError
from mea_cli.paths import check_not_input, file_sha256

ATTR = "aligned"
"""Root attribute of an aligned store (its provenance)."""


class AlignError(MeaError):
    """A store that cannot be aligned (already aligned, no sample alignable)."""


@dataclass
class AlignReport:
    """What :func:`align_store` wrote: samples, failures, empty words per modality."""

    out: Path
    samples: int
    words: int
    reference: dict[str, int]
    empty_words: dict[str, int]
    failures: list[tuple[str, str]] = field(default_factory=list)  # (sample id, reason)


def aligned_setting(attrs: Any) -> str:
    """``"word-aligned"`` when a store's root attributes record ``mea align --to words``,
    else ``"unaligned"`` (native rates): the setting a paper's table row is compared with
    (the words a row's ``setting`` uses in ``mea_cli/train/paper_results.json``)."""
    return "word-aligned" if ATTR in attrs else "unaligned"


def gap_mask_note(store: FeatureStore, model: str, gap_masks: bool) -> str:
    """One line for ``mea train`` on a store with unobserved steps (``observed`` False): how
    many per modality, and whether ``model`` (declaring the ``gap_masks`` capability or not)
    leaves them out of its masks or sees them as the stored zero rows; ``""`` when there are
    none."""
    counts = {m: store.unobserved_steps(m) for m in store.modalities}
    said = ", ".join(f"{m} {n}" for m, n in counts.items() if n)
    if not said:
        return ""
    how = (
        "it declares gap_masks: they are gaps in its masks, left out like padding"
        if gap_masks
        else "it reads prefix masks: it sees them as the stored zero rows"
    )
    return f"unobserved steps (words no step reached: {said}); {model}: {how} (docs/align.md)"


ALIGN_PARAMS = ("aligned_to", "align_reduce")
"""Extractor parameters an aligned store adds to every modality's provenance."""


def _aligned_schema(schema: ModalitySchema, reduce: str) -> ModalitySchema:
    """``schema`` at word rate: its extractor provenance gains ``aligned_to`` and
    ``align_reduce``, so that a checkpoint trained on the aligned store records the setting,
    refuses unaligned features (:func:`mea_cli.artifacts.checkpoint.check_schema`) and
    ``mea predict`` aligns what it extracts."""
    ex = schema.extractor
    params = {**ex.parameters, "aligned_to": "words", "align_reduce": reduce}
    return ModalitySchema(
        schema.name, schema.feature_names, ExtractorInfo(ex.name, ex.version, params), float("nan")
    )


def native_schema(schema: ModalitySchema) -> ModalitySchema:
    """``schema`` without the alignment parameters: the extraction that made its steps."""
    ex = schema.extractor
    params = {k: v for k, v in ex.parameters.items() if k not in ALIGN_PARAMS}
    return ModalitySchema(
        schema.name, schema.feature_names, ExtractorInfo(ex.name, ex.version, params),
        schema.nominal_rate_hz,
    )  # fmt: skip


def schema_reduce(schemas: Mapping[str, ModalitySchema]) -> str | None:
    """The ``--reduce`` of the ``mea align`` that made these schemas; None when unaligned."""
    found = {str(s.extractor.parameters.get("align_reduce", "")) for s in schemas.values()}
    if found == {""}:
        return None
    if len(found) != 1 or "" in found or not found <= set(REDUCES):
        raise AlignError(f"inconsistent alignment provenance across modalities: {sorted(found)}")
    return found.pop()


def _reference(sample: Sample) -> tuple[np.ndarray, str]:
    """The spans ``sample`` is aligned to and what they are (``words`` / ``text``);
    raises ``ValueError`` with the reason when there are none."""
    if sample.words:
        spans = np.array([(w.start, w.end) for w in sample.words], np.float64)
        if not np.isfinite(spans).all():
            raise ValueError("its words have no (finite) times")
        return spans, "words"
    text = sample.times.get("text")
    if text is not None and len(text):
        spans = np.asarray(text, np.float64)
        if not np.isfinite(spans).all():
            raise ValueError("it has no words and its text steps have no times")
        return spans, "text"
    raise ValueError("it has no words and no timed text steps")


def align_sample(sample: Sample, reduce: str) -> tuple[Sample, str, dict[str, int]]:
    """``sample`` with every modality collapsed onto its words; also the reference used
    (``words`` / ``text``) and per modality the number of words no step reaches. Such a word
    is a row of zeros with ``observed`` False (``sample.observed[m]``). Raises ``ValueError``
    with the reason when the sample cannot be aligned."""
    spans, kind = _reference(sample)
    features, times, missing, observed = {}, {}, {}, {}
    for m, x in sample.features.items():
        t = np.asarray(sample.times.get(m, np.full((len(x), 2), np.nan)), np.float64)
        if len(x) and not np.isfinite(t).all():
            raise ValueError(f"its {m} steps have no times")
        features[m], covered = collapse(x, t, spans, reduce)
        times[m], observed[m] = spans, covered
        missing[m] = int((~covered).sum())
    return replace(sample, features=features, times=times, observed=observed), kind, missing


def align_store(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    reduce: str = "mean",
    progress: Callable[[int, int, str], None] | None = None,
) -> AlignReport:
    """Write ``out``: ``source`` with every modality collapsed onto each sample's words.

    ``progress(done, total, note)`` is called after each sample. Atomic: ``out`` appears only
    when complete. Raises :class:`AlignError` for a store that is already aligned or of
    which no sample can be aligned, and a :class:`~mea_cli.paths.PathError` when ``out`` is
    ``source``.
    """
    if reduce not in REDUCES:
        raise AlignError(f"--reduce must be one of {', '.join(REDUCES)}, got {reduce!r}")
    source, out = Path(source), Path(out)
    check_not_input(out, [source], "aligned store")
    with FeatureStore(source) as store:
        if ATTR in store.meta.attrs:
            raise AlignError(f"{source}: already aligned ({store.meta.attrs[ATTR]})")
        store.check_values()
        empty = {m: 0 for m in store.modalities}
        reference = {"words": 0, "text": 0}
        failures: list[tuple[str, str]] = []
        written = words = 0
        schemas = [_aligned_schema(s, reduce) for s in store.modalities.values()]
        with FeatureStoreWriter(  # streamed: one sample in memory at a time
            out,
            schemas,
            dataset=store.meta.dataset,
            task=store.meta.task,
            label_names=store.meta.label_names,
            attrs=dict(store.meta.attrs),
            summaries=list(store.summaries.values()),  # per sample: alignment keeps them
        ) as writer:
            for i in range(len(store)):
                try:
                    sample, kind, missing = align_sample(store[i], reduce)
                except ValueError as err:
                    failures.append((str(store.samples.id[i]), str(err)))
                else:
                    writer.add(sample)
                    written += 1
                    words += len(sample.times[next(iter(sample.times))])
                    reference[kind] += 1
                    for m, n in missing.items():
                        empty[m] += n
                if progress is not None:
                    progress(i + 1, len(store), f"failures {len(failures)}")
            if not written:  # leaving the block with an error removes the temporary file
                why = failures[0][1] if failures else "the store has no samples"
                raise AlignError(f"{source}: no sample can be aligned to words (e.g. {why})")
            for f in store.failures:
                writer.add_failure(f.video, f.stage, f.message)
            for sid, why in failures:
                writer.add_failure(sid, "align", f"sample {sid}: {why}")
            writer.attrs[ATTR] = {  # written at close
                "to": "words",
                "reduce": reduce,
                "epsilon_s": EPSILON,
                "source": str(source.resolve()),
                "source_sha256": file_sha256(source),
                "reference": reference,
                "words": words,
                "empty_words": empty,
                "failed": len(failures),
            }
    return AlignReport(out, written, words, reference, empty, failures)
