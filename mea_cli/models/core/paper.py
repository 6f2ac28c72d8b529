"""What a model's paper published, carried by the model's registration (as timm keeps
``default_cfgs`` beside each model): its training hyper-parameters per dataset, its test-split
result rows and its transcribed ablation table.

The values live in JSON next to the model, in the model's own package:

* ``paper_<model>.json``: ``{"training": {"source": ..., "<dataset>": {setting: value}},
  "results": {"<dataset>": {"model", "source", "metrics", ["setting"]}}}``. A training row gives
  ``batch_size``, ``epochs``, ``lr`` (and ``grad_clip`` where the paper does); a result row the
  test metrics as printed (accuracies and F1 in %, MAE and Corr plain; ``setting`` when the row
  was not measured on unaligned sequences, e.g. FDMER's ``word-aligned``). The rows are the
  test split with the unaligned CMU features (GloVe 300 / Facet 35 / COVAREP 74); the papers
  print one Acc-2/F1 pair without saying whether it is the non0 or has0 convention;
* ``ablation_<model>.json`` (optional): the paper's ablation table, ``{"source", "metrics",
  ["setting"], "rows": [{"key", "label", "group", "mosi": {metric: value}, "mosei": {...}}]}``
  (``setting`` as in a result row: absent for unaligned sequences).

:func:`load_paper` reads both; a model registers the result with
``register_model(..., paper=load_paper(__package__, "<model>"))``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class PaperInfo:
    """A model's published values (all optional: a model without a paper has none).

    Attributes:
        training_source: where the training values come from (e.g. ``"MEA (IEEE TCSVT) Table I"``).
        training: dataset -> ``{setting: value}`` (``batch_size``, ``epochs``, ``lr``, ...).
        results: dataset -> the paper's test row (``model``, ``source``, ``metrics``, ``setting``).
        ablation: the transcribed ablation table (``source``, ``metrics``, ``rows``) or None.
    """

    training_source: str = ""
    training: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    results: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    ablation: Mapping[str, Any] | None = None


def _read(package: str, name: str) -> Any:
    path = resources.files(package).joinpath(name)
    return json.loads(path.read_text("utf-8")) if path.is_file() else None


def load_paper(package: str, model: str) -> PaperInfo:
    """``paper_<model>.json`` and ``ablation_<model>.json`` (if present) of ``package``."""
    data = _read(package, f"paper_{model}.json") or {}
    training = dict(data.get("training", {}))
    source = str(training.pop("source", ""))
    return PaperInfo(
        training_source=source,
        training=training,
        results=dict(data.get("results", {})),
        ablation=_read(package, f"ablation_{model}.json"),
    )
