"""``mea info --model NAME --dataset D``: a model's preset, parameter counts per component,
its training preset (with sources), ablation switches, capabilities and deviations from its
paper (those its registration declares for this configuration). ``--set key=value`` overrides
fields of the preset (e.g. MMSA's MulT settings); a model with ``block_settings()`` (MulT) also
shows each block's own settings (attention dropout per crossmodal transformer, future mask).

Input dimensions come from a feature store when one is given (``--features F``), otherwise from
the benchmark's features (GloVe 300 / Facet 35 / COVAREP 74); the task and label count come from
the store, or from the dataset (MOSI/MOSEI regression, IEMOCAP four binary emotions). Works for
every registered model; a model without ``component_parameters()`` is shown as one component.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from mea_cli import MODALITIES
from mea_cli.artifacts.features import FeatureStore
from mea_cli.models.core.contract import check_no_data_fields
from mea_cli.models.core.deviations import deviations_of
from mea_cli.models.core.params import trainable_parameters
from mea_cli.models.core.registry import config_for, create_model, get_entry


def describe_model(
    name: str,
    dataset: str,
    features: str | Path | None = None,
    ablations: tuple[str, ...] = (),
    overrides: dict[str, Any] | None = None,
    *,
    training: Callable[[str, str], Mapping[str, tuple[Any, str]]],
) -> dict[str, Any]:
    """Build model ``name`` with ``dataset``'s preset (and ``overrides``, ``field=value`` as
    typed or command-line text) and summarise it (JSON-able).

    ``training(model, dataset)`` gives the training preset as ``{setting: (value, source)}``
    (the caller passes the training stage's resolver: models never import the stages)."""
    input_dims: dict[str, int] | None = None
    task: str | None = None
    num_labels: int | None = None
    source = "paper features (GloVe 300, Facet 35, COVAREP 74)"
    entry = get_entry(name)
    fields = dict(overrides or {})
    check_no_data_fields(fields, "--dataset and --features")
    if features is not None:
        with FeatureStore(features) as store:
            input_dims = {m: store.modalities[m].dim for m in MODALITIES if m in store.modalities}
            task = store.meta.task
            num_labels = len(store.meta.label_names) or None
            if "summary_dims" in entry.config_cls.field_names():  # as a run on it is configured
                fields.setdefault("summary_dims", {m: s.dim for m, s in store.summaries.items()})
        source = str(features)
    if ablations:
        fields["ablations"] = tuple(ablations)
    cfg = config_for(name, dataset, input_dims, task, num_labels, **fields)
    model = create_model(name, cfg)
    total = trainable_parameters(model)
    components = (
        model.component_parameters()
        if hasattr(model, "component_parameters")
        else {f"{name} (all parameters)": total}
    )
    return {
        "model": name,
        "description": entry.description,
        "dataset": cfg.dataset,
        "input_dims_from": source,
        "parameters": total,
        "components": components,
        "config": cfg.to_dict(),
        "config_source": entry.config_cls.PRESET_SOURCE,
        "training": {
            k: {"value": v, "source": source} for k, (v, source) in training(name, cfg.dataset).items()
        },
        "switches": {n: s.table_row for n, s in entry.switches.items()},
        "capabilities": sorted(entry.active_capabilities(cfg)),
        "blocks": model.block_settings() if hasattr(model, "block_settings") else {},
        "deviations": deviations_of(name, cfg),
    }


def render_model_summary(summary: dict[str, Any], console: Console) -> None:
    """Print :func:`describe_model`'s result as rich tables."""
    cfg = summary["config"]
    console.print(
        f"{summary['model']} with the {summary['dataset']} preset: "
        f"{summary['parameters']:,} trainable parameters",
        highlight=False,
    )
    dims = ", ".join(f"{m} {d}" for m, d in cfg.get("input_dims", {}).items())
    console.print(f"inputs: {dims} (from {summary['input_dims_from']})", highlight=False)
    table = Table(title="parameters per component")
    table.add_column("component")
    table.add_column("parameters", justify="right")
    table.add_column("share", justify="right")
    for comp, count in summary["components"].items():
        share = count / summary["parameters"] if summary["parameters"] else 0.0
        table.add_row(comp, f"{count:,}", f"{share:.1%}")
    table.add_row("total", f"{summary['parameters']:,}", "100.0%", style="bold")
    console.print(table)
    hyper = Table(title=f"model configuration ({summary['config_source'] or 'preset'})")
    hyper.add_column("field")
    hyper.add_column("value")
    for key, value in cfg.items():
        if key != "input_dims":
            hyper.add_row(key, str(value))
    console.print(hyper)
    if summary["blocks"]:
        blocks = Table(title="settings per block")
        blocks.add_column("block")
        blocks.add_column("settings")
        for block, text in summary["blocks"].items():
            blocks.add_row(block, text)
        console.print(blocks)
    train = Table(title="training preset")
    train.add_column("setting")
    train.add_column("value")
    train.add_column("source")
    for key, item in summary["training"].items():
        train.add_row(key, str(item["value"]), item["source"])
    console.print(train)
    switches = ", ".join(summary["switches"]) or "none"
    console.print(f"ablation switches: {switches}", highlight=False)
    caps = ", ".join(summary["capabilities"]) or "none"
    console.print(f"capabilities: {caps}", highlight=False)
    devs = summary["deviations"]
    console.print(
        "deviations from the paper" + (":" if devs else ": none declared"), highlight=False
    )
    for d in devs:
        console.print(f"  {d['key']}: {d['text']} ({d['doc']})", highlight=False, soft_wrap=True)
