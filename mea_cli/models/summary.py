"""``mea info --model NAME --dataset D``: a model's preset, parameter counts per component.

Input dimensions come from a feature store when one is given (``--features F``), otherwise from
the paper's features (GloVe 300 / Facet 35 / COVAREP 74); the task and label count come from the
store, or from the dataset (MOSI/MOSEI regression, IEMOCAP four binary emotions).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from mea_cli import MODALITIES
from mea_cli.models.registry import config_for, create_model


def describe_model(
    name: str,
    dataset: str,
    features: str | Path | None = None,
    ablations: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Build model ``name`` with ``dataset``'s preset and summarise its size (JSON-able)."""
    input_dims: dict[str, int] | None = None
    task: str | None = None
    num_labels: int | None = None
    source = "paper features (GloVe 300, Facet 35, COVAREP 74)"
    if features is not None:
        from mea_cli.artifacts.features import FeatureStore

        with FeatureStore(features) as store:
            input_dims = {m: store.modalities[m].dim for m in MODALITIES if m in store.modalities}
            task = store.meta.task
            num_labels = len(store.meta.label_names) or None
        source = str(features)
    overrides: dict[str, Any] = {"ablations": tuple(ablations)} if ablations else {}
    cfg = config_for(name, dataset, input_dims, task, num_labels, **overrides)
    model = create_model(name, cfg)
    components = model.component_parameters() if hasattr(model, "component_parameters") else {}
    total = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "model": name,
        "dataset": dataset,
        "input_dims_from": source,
        "parameters": total,
        "components": components,
        "config": cfg.to_dict(),
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
    hyper = Table(title="configuration")
    hyper.add_column("field")
    hyper.add_column("value")
    for key, value in cfg.items():
        if key != "input_dims":
            hyper.add_row(key, str(value))
    console.print(hyper)
