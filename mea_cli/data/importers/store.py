"""Writing an imported store: each modality's schema with the source's provenance, and the
atomic write of samples, extra columns and the import report."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from mea_cli import MODALITIES, __version__
from mea_cli.artifacts.features import ExtractorInfo, FeatureStoreWriter, ModalitySchema, Sample
from mea_cli.data.importers.datasets import BENCHMARK_FEATURES
from mea_cli.data.importers.report import ImportReport
from mea_cli.paths import atomic_output


def modality_schema(
    modality: str,
    dim: int,
    fmt: str,
    source: Path,
    sha256: str,
    extra: Mapping[str, Any],
    feature_names: Sequence[str] | None = None,
) -> ModalitySchema:
    """Schema of one imported modality; the provenance names the file, its hash and the layout."""
    params: dict[str, Any] = {"source": source.name, "sha256": sha256, **extra}
    known = BENCHMARK_FEATURES.get((modality, dim))
    if known:
        params["features_if_cmu_benchmark"] = known
    names = tuple(feature_names) if feature_names else tuple(f"{modality}_{j}" for j in range(dim))
    return ModalitySchema(modality, names, ExtractorInfo(f"import-{fmt}", __version__, params))


def write_import(
    out: Path,
    schemas: Sequence[ModalitySchema],
    samples: Iterable[Sample],
    report: ImportReport,
    sha256: str,
    extra_columns: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """Write the store atomically: samples, then extra ``/samples/<name>`` string columns, then
    the provenance attributes; the output path appears only when everything is written."""
    attrs = {
        "import_format": report.format,
        "import_source": report.source,
        "import_sha256": sha256,
        "import_report": json.dumps(report.to_dict(), sort_keys=True),
        "synthetic": False,
    }
    with atomic_output(out, "feature store") as tmp:
        with FeatureStoreWriter(
            tmp,
            [s for s in schemas if s.name in MODALITIES] or list(schemas),
            dataset=report.dataset,
            task=report.task,
            label_names=report.label_names,
            attrs=attrs,
        ) as writer:
            for sample in samples:
                writer.add(sample)
            for sid, reason in report.dropped_rows:  # never a silent drop: `mea info` lists them
                writer.add_failure(sid, "import", f"sample {sid}: {reason}")
        with h5py.File(tmp, "a") as f:
            for key, values in (extra_columns or {}).items():
                f["samples"].create_dataset(
                    key, data=np.array(list(values), dtype=object), dtype=h5py.string_dtype()
                )
            # the report is final only now (samples were streamed while it was filled)
            f.attrs["import_report"] = json.dumps(report.to_dict(), sort_keys=True)
