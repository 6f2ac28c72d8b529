"""``mea merge``: join feature stores extracted as shards (``mea extract --shard i/n``).

The inputs must agree on everything that makes features comparable: the same modalities (and
per-sample summaries, ``/summary``) with
the same feature names, nominal rates and extractor provenance (tool, version, parameters;
where a model file lies may differ between the machines of a job array, what it holds --
its sha256 -- may not, see :func:`mea_cli.extract.backends.identity`), and the same dataset,
task and label names. Sample ids must be unique across inputs.
Samples are written in the extraction order (video, segment start, id), failures sorted, and
the extraction counters (videos, skipped files, tokens, OOV tokens, text sources) summed, so
merging the shards of a run gives the same store as the unsharded run, sample by sample.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mea_cli.artifacts.features import FeatureStore, FeatureStoreWriter, Sample
from mea_cli.errors import MeaError
from mea_cli.extract.backends import identity
from mea_cli.extract.pack import sample_order
from mea_cli.paths import same_file

_SUMMED = ("extract_videos", "extract_skipped_files", "extract_text_tokens", "extract_text_oov")


class MergeError(MeaError):
    """Stores that cannot be merged."""


def _modalities_differ(first: FeatureStore, s: FeatureStore) -> str | None:
    if set(s.modalities) == set(first.modalities):
        return None
    return (
        f"{s.name}: modalities {sorted(s.modalities)} differ from {first.name}'s "
        f"{sorted(first.modalities)}"
    )


def _schemas_differ(first: FeatureStore, s: FeatureStore) -> str | None:
    """Feature names, then provenance and nominal rate, modality by modality."""
    for m, schema in first.modalities.items():
        other = s.modalities[m]
        if other.feature_names != schema.feature_names:
            return f"{s.name}: {m} feature names differ from {first.name}'s"
        if not other.same_as(schema, identity):
            mine, theirs = json.loads(identity(other.extractor)), json.loads(identity(schema.extractor))
            what = _first_difference(mine, theirs) or f"nominal rate {other.nominal_rate_hz} Hz vs {schema.nominal_rate_hz} Hz"
            return f"{s.name}: {m} extractor provenance differs from {first.name}'s ({what})"
    return None


def _first_difference(mine: Any, theirs: Any, where: str = "") -> str | None:
    """The first place two provenance records differ, as ``parameters.fps 10.0 vs 15.0``
    (records are kilobytes of JSON: the whole of both named nothing)."""
    if isinstance(mine, dict) and isinstance(theirs, dict):
        for key in sorted(set(mine) | set(theirs)):
            found = _first_difference(mine.get(key), theirs.get(key), f"{where}.{key}" if where else key)
            if found:
                return found
        return None
    if mine == theirs:
        return None
    shown = [text if len(text) <= 60 else text[:57] + "..." for text in (repr(mine), repr(theirs))]
    return f"{where} {shown[0]} vs {shown[1]}"


def _summaries_differ(first: FeatureStore, s: FeatureStore) -> str | None:
    """The same per-sample summaries (``/summary``), names and provenance."""
    if set(s.summaries) != set(first.summaries):
        return (
            f"{s.name}: summaries {sorted(s.summaries)} differ from {first.name}'s "
            f"{sorted(first.summaries)}"
        )
    for m, schema in first.summaries.items():
        if not s.summaries[m].same_as(schema, identity):
            return f"{s.name}: the {m} summary's names or provenance differ from {first.name}'s"
    return None


def _labels_differ(first: FeatureStore, s: FeatureStore) -> str | None:
    """Dataset, task and label names; the labels range and group column ``mea extract``
    recorded (``mea train`` reads the range: merged, it would be the first input's)."""
    for field in ("dataset", "task", "label_names"):
        mine, theirs = getattr(s.meta, field), getattr(first.meta, field)
        if mine != theirs:
            return f"{s.name}: {field} {mine!r} differs from {first.name}'s {theirs!r}"
    for key in ("label_range", "group_by"):
        mine, theirs = _plain(s.meta.attrs.get(key)), _plain(first.meta.attrs.get(key))
        if mine != theirs:
            return f"{s.name}: {key} {mine!r} differs from {first.name}'s {theirs!r}"
    return None


def _plain(value: object) -> object:
    """An attribute as plain Python: the store keeps lists as JSON text (HDF5 arrays in older
    files)."""
    if isinstance(value, str) and value.startswith("["):
        return json.loads(value)
    return value.tolist() if hasattr(value, "tolist") else value


# What every input must share with the first, checked in this order (the first problem is raised).
_AGREEMENT = (_modalities_differ, _schemas_differ, _summaries_differ, _labels_differ)


def _check_inputs(inputs: Sequence[str | os.PathLike[str]], out: Path) -> list[Path]:
    """At least one input, and the output none of them (symlinks and hard links included)."""
    if len(inputs) < 1:
        raise MergeError("mea merge needs at least one input store")
    paths = [Path(p) for p in inputs]
    if any(same_file(p, out) for p in paths):
        raise MergeError(f"{out}: the output is also an input")
    for k, p in enumerate(paths):
        twice = next((q for q in paths[:k] if same_file(p, q)), None)
        if twice is not None:
            raise MergeError(f"{p}: given twice ({twice} is the same file)")
    return paths


def shards_missing(stores: Sequence[FeatureStore]) -> list[str]:
    """The shards ``i/n`` of the inputs' extraction that none of them is, when every input is
    a shard (``mea extract --shard``): a merge without them lacks their videos. Inputs cut into
    different numbers of shards miss, of each count, the shards not given."""
    given = [s.meta.attrs.get("shard") for s in stores]
    if any(g is None for g in given):
        return []
    parsed = {tuple(int(x) for x in str(g).split("/")) for g in given}
    counts = sorted({n for _, n in parsed})
    return [f"{i}/{n}" for n in counts for i in range(1, n + 1) if (i, n) not in parsed]


def _check_agreement(stores: Sequence[FeatureStore]) -> None:
    """Values checked in every store; every store agrees with the first; no id in two."""
    for s in stores:
        s.check_values()
    for s in stores[1:]:
        for differs in _AGREEMENT:
            problem = differs(stores[0], s)
            if problem:
                raise MergeError(problem)
    owner: dict[str, str] = {}
    for s in stores:
        for sid in s.samples.id:
            if sid in owner:
                raise MergeError(f"{s.name}: duplicate sample id {sid!r} (also in {owner[sid]})")
            owner[str(sid)] = s.name


def _merged_attrs(stores: Sequence[FeatureStore], paths: Sequence[Path]) -> dict[str, object]:
    """The first store's attributes, the extraction counters summed (where every store has
    them), the text sources counted together, and the names of the inputs."""
    attrs: dict[str, object] = {
        key: value
        for key, value in stores[0].meta.attrs.items()
        if key not in _SUMMED and key not in ("shard", "extract_text_sources")
    }
    for key in _SUMMED:
        if all(key in s.meta.attrs for s in stores):
            attrs[key] = int(sum(int(s.meta.attrs[key]) for s in stores))
    sources: Counter[str] = Counter()
    for s in stores:
        raw = s.meta.attrs.get("extract_text_sources")
        if raw is not None:
            sources.update(json.loads(raw))
    if sources:
        attrs["extract_text_sources"] = dict(sorted(sources.items()))
    attrs["merged_from"] = [p.name for p in paths]
    missing = shards_missing(stores)
    if missing:  # recorded, so that `mea info` can say the store lacks their videos
        attrs["shards_missing"] = missing
    return attrs


def _extraction_order(stores: Sequence[FeatureStore]) -> list[tuple[int, int]]:
    """``(store, row)`` of every sample in the extraction order (video, start, id)."""
    order: list[tuple[tuple[str, float, str], int, int]] = []
    for k, s in enumerate(stores):
        t = s.samples
        for i in range(len(s)):
            probe = Sample(
                id=str(t.id[i]), video=str(t.video[i]), start=float(t.start[i]), features={}
            )
            order.append((sample_order(probe), k, i))
    order.sort()
    return [(k, i) for _, k, i in order]


def merge_stores(
    inputs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    warn: Callable[[str], None] | None = None,
) -> int:
    """Merge ``inputs`` into ``out`` (atomic); returns the number of samples written. Shards
    of the extraction that are not among the inputs (:func:`shards_missing`) are recorded in
    the store (``shards_missing``) and said through ``warn``: the merge is written, since a
    shard whose every video failed writes no store, and its videos are its failure rows'."""
    out = Path(out)
    paths = _check_inputs(inputs, out)
    stores = [FeatureStore(p) for p in paths]
    try:
        _check_agreement(stores)
        attrs = _merged_attrs(stores, paths)
        if warn is not None and "shards_missing" in attrs:
            warn(
                f"shards {', '.join(str(s.meta.attrs['shard']) for s in stores)} merged; "
                f"{', '.join(attrs['shards_missing'])} not given: {out} lacks their videos"
            )
        order = _extraction_order(stores)
        failures = sorted((f.video, f.stage, f.message) for s in stores for f in s.failures)
        first = stores[0]
        with FeatureStoreWriter(
            out,
            list(first.modalities.values()),
            dataset=first.meta.dataset,
            task=first.meta.task,
            label_names=first.meta.label_names,
            attrs=attrs,
            summaries=list(first.summaries.values()),
        ) as w:
            for k, i in order:
                w.add(stores[k][i])
            for f in failures:
                w.add_failure(*f)
        return len(order)
    finally:
        for s in stores:
            s.close()
