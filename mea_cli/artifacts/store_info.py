"""What ``mea info`` says about a feature store or one of its samples: plain dicts (for
``--json``) and their rendering."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from rich.text import Text

from mea_cli.artifacts.features import FeatureStore
from mea_cli.errors import MeaError


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def summarize(store: FeatureStore) -> dict[str, Any]:
    """Counts, per-modality shapes and lengths, label statistics and failures of a store."""
    meta = store.meta
    t = store.samples
    splits = Counter(str(s) if s else "unlabelled" for s in t.split)
    modalities = {}
    for name, schema in store.modalities.items():
        lengths = store.lengths(name)
        modalities[name] = {
            "dim": schema.dim,
            "steps": int(lengths.sum()),
            "length_min": int(lengths.min()) if len(lengths) else 0,
            "length_median": float(np.median(lengths)) if len(lengths) else 0.0,
            "length_max": int(lengths.max()) if len(lengths) else 0,
            "empty_sequences": int((lengths == 0).sum()),
            # steps that hold no measurement (observed = False); None: the store keeps no mask
            "unobserved_steps": store.unobserved_steps(name) if store.has_observed(name) else None,
            "nominal_rate_hz": _finite(schema.nominal_rate_hz),
            "extractor": schema.extractor.to_dict(),
            "feature_names_head": list(schema.feature_names[:5]),
        }
    summaries = {}
    for name, schema in store.summaries.items():
        rows = store.summary(name)
        summaries[name] = {
            "dim": schema.dim,
            "missing_rows": int(np.isnan(rows).all(axis=1).sum()) if len(rows) else 0,
            "extractor": schema.extractor.to_dict(),
            "feature_names_head": list(schema.feature_names[:5]),
        }
    labels = {}
    for k, name in enumerate(meta.label_names):
        col = t.label[:, k]
        ok = col[np.isfinite(col)]
        entry: dict[str, Any] = {"present": int(ok.size), "missing": int(col.size - ok.size)}
        if ok.size:
            entry.update(
                mean=float(ok.mean()), std=float(ok.std()), min=float(ok.min()), max=float(ok.max())
            )
            if meta.task == "binary-multilabel":
                entry["positive_rate"] = float((ok > 0.5).mean())
        labels[name] = entry
    failures = store.failures
    return {
        "file": store.name,
        "dataset": meta.dataset,
        "task": meta.task,
        "synthetic": meta.synthetic,
        "created": meta.created,
        "mea_cli_version": meta.mea_cli_version,
        "format_version": store.version,
        "samples": len(store),
        "words_recorded": store.has_words,
        "splits": dict(sorted(splits.items())),
        "groups": _groups(store),
        "modalities": modalities,
        "summaries": summaries,
        "labels": labels,
        "failures": {
            "count": len(failures),
            "by_stage": dict(Counter(f.stage for f in failures)),
            "rows": [{"video": f.video, "stage": f.stage, "message": f.message} for f in failures],
        },
        "attrs": {
            k: (v.item() if isinstance(v, np.generic) else v)
            for k, v in meta.attrs.items()
            if isinstance(v, (str, int, float, bool, np.generic))
        },
    }


def _groups(store: FeatureStore) -> dict[str, Any]:
    """What grouped splits would keep together (``--split-by``): the group column's name and
    number of groups, and the number of videos."""
    t = store.samples
    out: dict[str, Any] = {"videos": len(set(t.video))}
    if t.group is not None:
        named = str(store.meta.attrs.get("group_by", "")) or "group"
        groups = {g or v for g, v in zip(t.group, t.video, strict=True)}
        out[named] = len(groups)
    return out


def render_summary(summary: dict[str, Any], console: Console, max_failures: int = 20) -> None:
    """Print a summary as rich tables."""
    kind = "synthetic" if summary["synthetic"] else "real"
    console.print(
        f"{summary['file']}  dataset={summary['dataset'] or '?'} "
        f"task={summary['task'] or 'unlabelled'} ({kind})  "
        f"samples={summary['samples']}  created={summary['created']}  "
        f"mea-cli {summary['mea_cli_version']}",
        highlight=False,
    )
    console.print(
        "splits: " + ", ".join(f"{k}={v}" for k, v in summary["splits"].items()), highlight=False
    )
    console.print(
        "groups (--split-by): " + ", ".join(f"{k}={v}" for k, v in summary["groups"].items()),
        highlight=False,
    )
    attrs = summary["attrs"]
    if "shard" in attrs:  # one shard of an extraction: merge it with the others
        console.print(f"extraction shard {attrs['shard']} of {attrs.get('source', '?')}", highlight=False)
    if "merged_from" in attrs:  # `mea merge` keeps lists as JSON text
        missing = json.loads(attrs.get("shards_missing", "[]"))
        gap = f"; shards {', '.join(missing)} not given: their videos are missing" if missing else ""
        console.print(f"merged from {', '.join(json.loads(attrs['merged_from']))}{gap}", highlight=False)
    if "aligned" in summary["attrs"]:  # a `mea align` output (docs/align.md)
        a = json.loads(summary["attrs"]["aligned"])
        empty = ", ".join(f"{m} {n}" for m, n in a["empty_words"].items())
        console.print(
            f"aligned to {a['to']} (reduce {a['reduce']}) from {a['source']}: {a['words']} "
            f"words, with no step (zeros): {empty}; {a['failed']} samples not aligned",
            highlight=False,
        )
    masked = {n: m["unobserved_steps"] for n, m in summary["modalities"].items()}
    if any(v is not None for v in masked.values()):
        console.print(
            "unobserved steps (observed = False, zeros): "
            + ", ".join(f"{n} {v}" for n, v in masked.items() if v is not None),
            highlight=False,
        )
    mt = Table(title="modalities")
    for col in ("modality", "D", "len min", "median", "max", "empty", "rate Hz", "extractor"):
        mt.add_column(col, justify="right" if col not in ("modality", "extractor") else "left")
    for name, m in summary["modalities"].items():
        ex = m["extractor"]
        rate = "-" if m["nominal_rate_hz"] is None else f"{m['nominal_rate_hz']:g}"
        mt.add_row(
            name,
            str(m["dim"]),
            str(m["length_min"]),
            f"{m['length_median']:g}",
            str(m["length_max"]),
            str(m["empty_sequences"]),
            rate,
            f"{ex['name']} {ex['version']}".strip(),
        )
    console.print(mt)
    for name, sm in summary.get("summaries", {}).items():
        ex = sm["extractor"]
        params = ex["parameters"]
        console.print(
            f"per-sample summary {name}: {sm['dim']} values ({ex['name']} {ex['version']}, "
            f"{params.get('feature_set', '?')} {params.get('feature_level', '?')}), "
            f"{sm['missing_rows']} samples without signal",
            highlight=False,
        )
    if summary["labels"]:
        lt = Table(title="labels")
        for col in ("label", "present", "missing", "mean", "std", "min", "max", "positive"):
            lt.add_column(col, justify="left" if col == "label" else "right")
        for name, s in summary["labels"].items():

            def fmt(key: str, s: dict[str, Any] = s) -> str:
                return f"{s[key]:.3f}" if key in s else "-"

            lt.add_row(
                name,
                str(s["present"]),
                str(s["missing"]),
                fmt("mean"),
                fmt("std"),
                fmt("min"),
                fmt("max"),
                fmt("positive_rate"),
            )
        console.print(lt)
    fail = summary["failures"]
    if fail["count"]:
        ft = Table(title=f"failures ({fail['count']})")
        for col in ("video", "stage", "message"):
            ft.add_column(col)
        for row in fail["rows"][:max_failures]:
            ft.add_row(row["video"], row["stage"], row["message"])
        console.print(ft)
        if fail["count"] > max_failures:
            console.print(f"... and {fail['count'] - max_failures} more (use --json for all)")
    else:
        console.print("failures: none")


def _span(times: np.ndarray) -> list[float | None]:
    """First start and last end of a sample's steps (``None`` when unknown)."""
    starts, ends = times[:, 0], times[:, 1]
    starts, ends = starts[np.isfinite(starts)], ends[np.isfinite(ends)]
    return [
        float(starts.min()) if starts.size else None,
        float(ends.max()) if ends.size else None,
    ]


def describe_sample(store: FeatureStore, sample_id: str) -> dict[str, Any]:
    """One sample: identity, labels by name, per-modality length and time span, its words."""
    try:
        i = store.index_of(sample_id)
    except KeyError:
        head = ", ".join(str(x) for x in store.samples.id[:3])
        raise MeaError(
            f"{store.name}: no sample {sample_id!r} ({len(store)} samples, e.g. {head})"
        ) from None
    t = store.samples
    labels = {
        name: _finite(float(t.label[i, k])) for k, name in enumerate(store.meta.label_names)
    }
    modalities = {}
    for name in store.modalities:
        times = store.times(i, name)
        modalities[name] = {"steps": int(store.lengths(name)[i]), "span_s": _span(times)}
    words = store.words(i)
    return {
        "file": store.name,
        "id": str(t.id[i]),
        "video": str(t.video[i]),
        "start": _finite(float(t.start[i])),
        "end": _finite(float(t.end[i])),
        "split": str(t.split[i]),
        "task": store.meta.task,
        "labels": labels,
        "modalities": modalities,
        "words_source": store.words_source(i) or None,
        "words": [{"text": w.text, "start": w.start, "end": w.end} for w in words],
        "text": " ".join(w.text for w in words),
    }


def render_sample(described: dict[str, Any], console: Console) -> None:
    """Print one sample as text and a table of its words."""

    def sec(x: float | None) -> str:
        return "?" if x is None else f"{x:.2f}"

    d = described
    console.print(
        Text(d["id"], style="bold"),
        f" video={d['video']}  {sec(d['start'])}-{sec(d['end'])} s  split={d['split'] or '-'}",
        highlight=False,
    )
    if d["labels"]:
        shown = ", ".join(
            f"{k}={'-' if v is None else f'{v:g}'}" for k, v in d["labels"].items()
        )
        console.print(f"labels ({d['task']}): {shown}", highlight=False)
    for name, m in d["modalities"].items():
        a, b = m["span_s"]
        span = f", {sec(a)}-{sec(b)} s" if m["steps"] else ""
        console.print(f"{name}: {m['steps']} steps{span}", highlight=False)
    if d["words_source"] is None:
        console.print("words: not recorded in this store", highlight=False)
        return
    if not d["words"]:
        console.print(f"words ({d['words_source']}): none", highlight=False)
        return
    console.print(f"words ({d['words_source']}): {d['text']}", highlight=False)
    wt = Table(show_header=True)
    for col in ("word", "start s", "end s"):
        wt.add_column(col, justify="left" if col == "word" else "right")
    for w in d["words"]:
        wt.add_row(w["text"], f"{w['start']:.2f}", f"{w['end']:.2f}")
    console.print(wt)
