"""The feature store's records: what one sample, one modality's schema, one word and one
failure row are, and the store's metadata and sample table as the reader hands them out
(docs/feature-store.md)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ExtractorInfo:
    """Provenance of one modality's features: which tool, which version, which settings."""

    name: str
    version: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """``{name, version, parameters}`` (what ``mea info`` shows)."""
        return {"name": self.name, "version": self.version, "parameters": dict(self.parameters)}

    def to_json(self) -> str:
        """The form the store keeps in a modality's ``extractor`` attribute."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ExtractorInfo:
        """The inverse of :meth:`to_json` (missing version and parameters read as empty)."""
        raw = json.loads(text)
        return cls(raw["name"], raw.get("version", ""), raw.get("parameters", {}))


@dataclass(frozen=True)
class ModalitySchema:
    """What one modality holds: its feature names (their count is D), provenance, rate."""

    name: str
    feature_names: tuple[str, ...]
    extractor: ExtractorInfo
    nominal_rate_hz: float = float("nan")

    @property
    def dim(self) -> int:
        """D, the number of features per step."""
        return len(self.feature_names)

    def same_as(
        self,
        other: ModalitySchema,
        extractor_key: Callable[[ExtractorInfo], str] = ExtractorInfo.to_json,
    ) -> bool:
        """Equal schema, treating NaN rates as equal (dataclass ``==`` does not); the extractors
        compared by ``extractor_key`` (default: the whole record; ``mea merge`` compares what
        decides the features, :func:`mea_cli.extract.backends.identity`)."""
        rates_equal = self.nominal_rate_hz == other.nominal_rate_hz or (
            np.isnan(self.nominal_rate_hz) and np.isnan(other.nominal_rate_hz)
        )
        return (
            self.name == other.name
            and self.feature_names == other.feature_names
            and extractor_key(self.extractor) == extractor_key(other.extractor)
            and rates_equal
        )


@dataclass(frozen=True)
class Word:
    """One word as transcribed (before tokenisation) and its span in seconds of the video."""

    text: str
    start: float
    end: float


@dataclass
class Sample:
    """One segment: its identity, label and one ``[T, D]`` sequence per modality.

    ``times[m]`` is ``[T, 2]`` (start, end seconds of each step); when omitted it is NaN.
    ``label`` is a 1-d float array of length K (K = number of label names), NaN where absent.
    ``words`` are the words the text sequence was made from and ``words_source`` where they
    came from (``sidecar.txt``, ``asr``, ...; ``""`` when not recorded, e.g. imported data).
    ``summary[m]`` is an optional ``[D]`` per-sample summary of modality ``m`` (``/summary``:
    openSMILE's Functionals of the sample's audio); NaN where the sample had no signal.
    ``group`` is what grouped splits keep together (a speaker, a session; ``""``: none given,
    the video is the group; :mod:`mea_cli.data.splits`). ``observed[m]`` is ``bool [T]``,
    False for a step that holds no measurement (zeros written by ``mea align`` for a word no
    step reached); a modality not in it has every step observed.
    """

    id: str
    features: dict[str, np.ndarray]
    video: str = ""
    start: float = float("nan")
    end: float = float("nan")
    split: str = ""
    label: np.ndarray | None = None
    times: dict[str, np.ndarray] = field(default_factory=dict)
    words: list[Word] = field(default_factory=list)
    words_source: str = ""
    group: str = ""
    observed: dict[str, np.ndarray] = field(default_factory=dict)
    summary: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Failure:
    """A video (or part of one) that could not be extracted, and why."""

    video: str
    stage: str
    message: str


@dataclass(frozen=True)
class StoreMeta:
    """Root attributes of a store."""

    dataset: str
    task: str
    label_names: tuple[str, ...]
    created: str
    mea_cli_version: str
    attrs: Mapping[str, Any]

    @property
    def synthetic(self) -> bool:
        """Whether ``mea synth`` made the store (its ``synthetic`` attribute): not real data."""
        return bool(self.attrs.get("synthetic", False))


@dataclass(frozen=True)
class SampleTable:
    """The per-sample columns of a store (no features)."""

    id: np.ndarray
    video: np.ndarray
    start: np.ndarray
    end: np.ndarray
    split: np.ndarray
    label: np.ndarray  # always [N, K]
    group: np.ndarray | None = None  # /samples/group, None when the store has none

    def __len__(self) -> int:
        return len(self.id)
