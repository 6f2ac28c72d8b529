"""A run's resolved configuration (``runs/<name>/config.json``) as a typed, frozen value.

:func:`mea_cli.train.setup.resolve_config` builds it, the trainer and ``mea ablate`` /
``compare`` / ``sweep`` read it by attribute. :meth:`RunConfig.to_dict` gives ``config.json``
exactly as it has always been written (same keys, same order, strict JSON), so that a run
written before this class existed resumes: :meth:`RunConfig.from_dict` keeps the keys an older
``config.json`` lacks out of :meth:`~RunConfig.to_dict` again (``missing``) and the keys this
version does not know in it (``extra``), and the digest tying ``state.pt`` to its run
(:func:`mea_cli.train.runs.config_digest`) is unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mea_cli.errors import MeaError
from mea_cli.paths import jsonable
from mea_cli.train.config import TrainSettings

RUN_FORMAT = "mea-run"


class RunConfigError(MeaError):
    """A ``config.json`` that is not a mea-cli run configuration."""


#: Keys every run's ``config.json`` has had since the format began.
REQUIRED = ("name", "features", "dataset", "task", "model", "model_config", "train", "seeds")


@dataclass(frozen=True)
class RunConfig:
    """Everything a run was resolved to: the store it trains on, the model and its config, the
    training settings, where each value came from, the seeds and the selection metric."""

    name: str
    features: str  # absolute path of the feature store
    dataset: str  # the dataset preset: mosi, mosei, iemocap or custom
    task: str  # regression, multiclass or multilabel
    model: str  # registered model name
    model_config: dict[str, Any]  # the model config's to_dict()
    train: dict[str, Any]  # TrainSettings.to_dict()
    seeds: tuple[int, ...]
    format: str = RUN_FORMAT
    version: int = 1
    mea_cli_version: str = ""
    features_sha256: str = ""
    label_names: tuple[str, ...] = ()
    label_range: tuple[float, float] | None = None  # custom regression: the metrics' range
    label_range_source: str | None = None
    schema: dict[str, Any] = field(default_factory=dict)  # the store's modalities
    model_overrides: dict[str, Any] = field(default_factory=dict)
    train_overrides: dict[str, Any] = field(default_factory=dict)
    train_sources: dict[str, str] = field(default_factory=dict)
    preset: str = "paper"
    preset_model_overrides: dict[str, Any] = field(default_factory=dict)
    task_loss: str = ""
    targets: str = ""
    selection: str = ""
    model_preset: str = ""  # the paper preset whose hyper-parameters the model uses
    device: str = "auto"
    world_size: int = 1
    #: keys of the config.json read that it lacked (written before they existed): not written
    missing: frozenset[str] = frozenset()
    #: keys of the config.json read that this version does not know: written back as they were
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def settings(self) -> TrainSettings:
        """The training settings, typed."""
        return TrainSettings.from_dict(self.train)

    def to_dict(self) -> dict[str, Any]:
        """``config.json``'s content: strict JSON (NaN / inf as ``null``), keys in the order
        :func:`~mea_cli.train.setup.resolve_config` has always written them."""
        out: dict[str, Any] = {}
        for name in _ORDER:
            if name in self.missing:
                continue
            value = getattr(self, name)
            if isinstance(value, tuple):
                value = list(value)
            out[name] = value
        out.update(self.extra)
        return jsonable(out)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunConfig:
        """The configuration a ``config.json`` holds (a :class:`RunConfigError` when it is not
        one: another format or a key every run has is absent)."""
        if not isinstance(d, Mapping) or d.get("format", RUN_FORMAT) != RUN_FORMAT:
            got = d.get("format") if isinstance(d, Mapping) else type(d).__name__
            raise RunConfigError(f"not a mea-cli run configuration (format {got!r})")
        lacking = [k for k in REQUIRED if k not in d]
        if lacking:
            raise RunConfigError(f"run configuration without {', '.join(lacking)}")
        known = {k: v for k, v in d.items() if k in _FIELDS}
        for k in ("seeds", "label_names"):
            if k in known:
                known[k] = tuple(known[k])
        if known.get("label_range") is not None:
            known["label_range"] = tuple(float(x) for x in known["label_range"])
        return cls(
            **known,
            missing=frozenset(k for k in _ORDER if k not in d),
            extra={k: v for k, v in d.items() if k not in _FIELDS},
        )


#: config.json's key order (the order resolve_config has always written).
_ORDER = (
    "format", "version", "mea_cli_version", "name", "features", "features_sha256", "dataset",
    "task", "label_names", "label_range", "label_range_source", "schema", "model",
    "model_config", "model_overrides", "train", "train_overrides", "train_sources", "preset",
    "preset_model_overrides", "task_loss", "targets", "seeds", "selection", "model_preset",
    "device", "world_size",
)  # fmt: skip
_FIELDS = frozenset(_ORDER)
