"""The model contract: what every registered model declares and promises (docs/models/contract.md).

A model is an ``nn.Module`` built as ``model_cls(cfg)`` from a frozen :class:`ModelConfig`
subclass, mapping a :class:`mea_cli.batch.Batch` to a
:class:`mea_cli.models.core.output.ModelOutput`. It registers itself with
:func:`mea_cli.models.core.registry.register_model`, declaring:

* its **ablation switches** (:class:`SwitchSet` of :class:`Switch`): each names what it
  changes in a checkable way (parameter groups it removes, loss terms it drops or adds, outputs
  it empties), and the contract test checks exactly that;
* its **capabilities** (:data:`CAPABILITIES`): which optional outputs it provides, so that
  ``mea viz`` can refuse a picture the model cannot give in one line;
* parameters that are **declared unused** (fnmatch patterns), if any: every other parameter
  receives a gradient from every labelled batch (DistributedDataParallel relies on it);
* a **tiny** override: a small configuration for fast tests;
* its **deviations** from its paper (:class:`Deviation`, none by default): one line each with
  the doc anchor that explains it, printed under every table of its results (``mea eval
  --paper``, ``mea compare --paper``, ``mea ablate --paper``) and by ``mea info --model``.

It promises: padded steps (``mask`` False) change no output; ``out.loss`` and ``out.losses["task"]``
exist for a labelled batch, and no term is named ``loss`` (the trainer logs the total under that
name, beside the terms); ``model(batch)`` works for every config its presets and switches
allow. ``tests/test_model_contract.py`` checks all of it for every registered model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from mea_cli import MODALITIES
from mea_cli.artifacts.store_format import TASKS
from mea_cli.config import Config, ConfigError
from mea_cli.data.presets import BENCHMARK_DIMS, get_preset

M = TypeVar("M", bound="ModelConfig")

# TASKS (the store format's): what a model predicts; shapes in mea_cli.models.core.output,
# losses in mea_cli.models.core.losses.task_loss.

CAPABILITIES: dict[str, str] = {
    "representations": (
        "pooled per-modality representations in ModelOutput.reps, as "
        "{'exclusive' | 'agnostic': {modality: [B, d]}} (mea viz --what tsne)"
    ),
    "modality_weights": (
        "modality weights psi in ModelOutput.psi, one [B, M] distribution per layer "
        "(mea viz --what wal)"
    ),
    "attention_maps": (
        "self-attention maps in ModelOutput.attention when called with return_attention=True, "
        "named <block>/<layer>/<modality>, each [B, K, T_m, T_m] (mea viz --what attention)"
    ),
    "closed_form_fit": (
        "fitted in one pass instead of by gradient steps: prepare_fit(summaries(batch) of the "
        "train split, labels, class_weights), then fit_candidate(value) for each value of "
        "candidates(), mea train keeping the best on valid (the functionals baseline)"
    ),
    "gap_masks": (
        "reads masks with gaps: a False step inside a sequence (a word no step reached in a "
        "mea align store, observed = False) is left out exactly like padding, so the data "
        "loader passes it mask = prefix & observed; a model without it gets the prefix mask "
        "and sees the stored zero rows (docs/align.md)"
    ),
}
"""Optional outputs (and ways of fitting) a model may declare, with what declaring one
promises."""

OUTPUTS: tuple[str, ...] = ("psi", "xi", "reps.<kind>", "attention.<block>")
"""Outputs a switch may declare it empties (``Switch.drops_outputs``): ``psi``, ``xi``, the
representations of one kind (``reps.exclusive``) or the attention maps of one block
(``attention.psa``: the maps named ``psa/...``)."""


def output_present(out: Any, name: str) -> bool:
    """Whether the :class:`~mea_cli.models.core.output.ModelOutput` ``out`` has output ``name``
    (one of the forms of :data:`OUTPUTS`) non-empty."""
    head, _, tail = name.partition(".")
    if head == "reps":
        return bool((out.reps or {}).get(tail))
    if head == "attention":
        return any(k.startswith(tail + "/") for k in (out.attention or {}))
    return bool(getattr(out, head))


def _valid_output(name: str) -> bool:
    head, dot, tail = name.partition(".")
    return name in ("psi", "xi") or (head in ("reps", "attention") and bool(dot and tail))


def _benchmark_dims() -> dict[str, int]:
    return dict(BENCHMARK_DIMS)


def _no_registry(config_cls: type) -> SwitchSet | None:
    return None


_switch_lookup: Callable[[type], SwitchSet | None] = _no_registry


def set_switch_lookup(lookup: Callable[[type], SwitchSet | None]) -> None:
    """Install ``lookup`` (config class -> its model's switches, None: not registered): the
    registry installs its own when imported, so that the contract never imports the registry
    (the registry imports the contract: one direction, no cycle)."""
    global _switch_lookup
    _switch_lookup = lookup


@dataclass(frozen=True)
class ModelConfig(Config):
    """Fields every model has; a model's config subclasses this and adds its own fields.

    ``PRESETS`` maps each dataset preset (``mosi``, ``mosei``, ``iemocap``) to the model's
    hyper-parameters on it (``{field: value}``, the paper's values, source in
    ``PRESET_SOURCE``); training hyper-parameters (batch size, epochs, learning rate, ...) are
    not model fields: the paper's values travel with the registration (``paper=``,
    :mod:`mea_cli.models.core.paper`) and :mod:`mea_cli.train.presets` resolves them.
    """

    dataset: str = "mosi"
    task: str = "regression"
    num_labels: int = 1
    input_dims: dict[str, int] = field(default_factory=_benchmark_dims)
    ablations: tuple[str, ...] = ()

    WHAT: ClassVar[str] = "model configuration"
    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    PRESET_SOURCE: ClassVar[str] = ""

    def problems(self) -> list[str]:
        out = super().problems()
        if self.task not in TASKS:
            out.append(f"task must be one of {', '.join(TASKS)}, not {self.task!r}")
        if self.num_labels < 1:
            out.append("num_labels must be at least 1")
        elif self.task == "regression" and self.num_labels != 1:
            out.append(f"a regression model predicts one value, not num_labels={self.num_labels}")
        elif self.task == "multiclass" and self.num_labels < 2:
            out.append(f"a multiclass model needs two or more classes, not num_labels={self.num_labels}")
        if sorted(self.input_dims) != sorted(MODALITIES):
            out.append(
                f"input_dims must name {', '.join(MODALITIES)}, got "
                f"{', '.join(self.input_dims) or 'none'}"
            )
        if any(v < 1 for v in self.input_dims.values()):
            out.append("every input dimension must be at least 1")
        switches = _switch_lookup(type(self))
        if switches is None:
            if self.ablations:
                out.append(f"{type(self).__name__} belongs to no registered model: no switches")
        else:
            out += switches.problems(self.ablations)
        return out

    def __post_init__(self) -> None:
        super().__post_init__()
        switches = _switch_lookup(type(self))
        if switches is not None:  # unique, in the switch set's order
            object.__setattr__(self, "ablations", switches.ordered(self.ablations))

    @classmethod
    def datasets(cls) -> list[str]:
        """The dataset presets this model has values for."""
        return list(cls.PRESETS)

    @classmethod
    def preset(
        cls: type[M],
        dataset: str,
        input_dims: Mapping[str, int] | None = None,
        task: str | None = None,
        num_labels: int | None = None,
    ) -> M:
        """The ``dataset`` preset for data of this shape (default: the benchmark's features)."""
        key = dataset.strip().lower()
        if key not in cls.PRESETS:
            raise ConfigError(
                f"invalid {cls.WHAT}",
                f"no preset for dataset {dataset!r}; valid: {', '.join(cls.PRESETS)}",
            )
        ds = get_preset(key)
        return cls(
            dataset=key,
            task=task or ds.task,
            num_labels=num_labels or ds.num_labels,
            input_dims=dict(input_dims or _benchmark_dims()),
            **dict(cls.PRESETS[key]),
        )


@dataclass(frozen=True)
class Switch:
    """One ablation: its name (``--drop NAME``), table label, and what it changes.

    The declared changes are checked by the contract test against the model's tiny config:
    ``removes``: fnmatch patterns of parameter names, each matching some parameter of the full
    model and none of the ablated one; ``drops_losses`` / ``adds_losses``: loss terms of
    ``out.losses`` present only without / only with the switch; ``drops_outputs``: entries of
    :data:`OUTPUTS` non-empty only without the switch. A switch must declare at least one.
    """

    name: str
    table_row: str
    description: str
    removes: tuple[str, ...] = ()
    drops_losses: tuple[str, ...] = ()
    adds_losses: tuple[str, ...] = ()
    drops_outputs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not (self.removes or self.drops_losses or self.adds_losses or self.drops_outputs):
            raise ValueError(f"switch {self.name!r} declares no checkable change")
        bad = [o for o in self.drops_outputs if not _valid_output(o)]
        if bad:
            raise ValueError(f"switch {self.name!r}: unknown outputs {bad}; valid: {OUTPUTS}")


@dataclass(frozen=True)
class Deviation:
    """One way a model, as built here, departs from its paper (printed where results are shown).

    ``key``: short name, unique within the model; ``text``: one line, what differs from the
    paper; ``doc``: where it is explained, ``docs/models/<model>.md#<heading-anchor>`` (the
    model doc's "Deviations shown with results" list repeats key and text, and a test keeps
    the two in step); ``applies``: ``cfg -> bool`` for a deviation that only some
    configurations have (None: every configuration); ``settings``: the store settings it holds
    on (``"unaligned"``, ``"word-aligned"``: :func:`mea_cli.align.aligned_setting`; empty:
    every setting), e.g. FDMER's "run unaligned" is no deviation on a ``mea align`` store.
    """

    key: str
    text: str
    doc: str
    applies: Callable[[Any], bool] | None = None
    settings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.key or not self.text or "\n" in self.text or "#" not in self.doc:
            raise ValueError(f"deviation {self.key!r}: needs a key, one line of text and doc#anchor")

    def holds(self, cfg: Any, setting: str | None = None) -> bool:
        """Whether a model built from ``cfg`` and run on a store of ``setting`` (None: not
        known, e.g. ``mea info --model``) has this deviation."""
        if setting is not None and self.settings and setting not in self.settings:
            return False
        return self.applies is None or bool(self.applies(cfg))


@dataclass(frozen=True)
class SwitchSet(Mapping[str, Switch]):
    """A model's ablation switches, in table order, and the groups that cannot be combined."""

    switches: tuple[Switch, ...] = ()
    exclusive_groups: tuple[frozenset[str], ...] = ()

    def __post_init__(self) -> None:
        names = [s.name for s in self.switches]
        if len(set(names)) != len(names) or "all" in names or "full" in names:
            raise ValueError(f"switch names must be unique and not 'all' / 'full': {names}")

    def __getitem__(self, name: str) -> Switch:
        for s in self.switches:
            if s.name == name:
                return s
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return (s.name for s in self.switches)

    def __len__(self) -> int:
        return len(self.switches)

    def problems(self, names: Iterable[str]) -> list[str]:
        """Unknown switch names and combinations of alternatives (empty: fine)."""
        given = {str(n).strip() for n in names if str(n).strip()}
        out = []
        unknown = sorted(given - set(self))
        if unknown:
            valid = ", ".join(self) or "none: this model declares no switches"
            out.append(f"unknown ablation switch {', '.join(unknown)} (valid switches: {valid})")
        for group in self.exclusive_groups:
            clash = sorted(given & group)
            if len(clash) > 1:
                out.append(
                    f"ablation switches {' and '.join(clash)} cannot be combined "
                    f"(they are alternative rows of the ablation table)"
                )
        return out

    def ordered(self, names: Iterable[str]) -> tuple[str, ...]:
        """Known ``names``, unique, in this set's order."""
        given = {str(n).strip() for n in names}
        return tuple(n for n in self if n in given)


MAX_LAYERS = 64
"""The most layers of one kind a configuration may ask for. The papers use 1 to 8; a count far
beyond (a typo such as ``psa_layers=1e9``) would spend minutes building modules, or exhaust the
memory, before :func:`~mea_cli.models.core.registry.check_size` could count the parameters."""


def layer_problems(counts: Mapping[str, int], hint: str = "") -> list[str]:
    """One problem per layer count in ``counts`` (``{field: value}``) outside 1..:data:`MAX_LAYERS`;
    ``hint`` is appended to each (e.g. which ablation switch removes the part instead)."""
    return [
        f"{name} must be between 1 and {MAX_LAYERS}, not {value}{hint}"
        for name, value in counts.items()
        if not 1 <= value <= MAX_LAYERS
    ]


def kernel_problems(kernel_sizes: tuple[int, ...]) -> list[str]:
    """What is wrong with a config's per-modality Conv1d kernel sizes (L/V/A) for
    :class:`~mea_cli.models.layers.extractor.UnimodalExtractor`: three odd positive sizes, so that
    'same' padding keeps every sequence's length (and its mask)."""
    if len(kernel_sizes) != len(MODALITIES) or any(k < 1 or k % 2 == 0 for k in kernel_sizes):
        return [f"kernel_sizes must be three odd positive sizes (L/V/A), not {kernel_sizes}"]
    return []


def kernel_by_modality(kernel_sizes: tuple[int, ...]) -> dict[str, int]:
    """The L/V/A kernel sizes of a config as ``{modality: size}``."""
    return dict(zip(MODALITIES, kernel_sizes, strict=True))


def choice_problems(field: str, value: str, allowed: Iterable[str]) -> list[str]:
    """The one problem of a string field whose ``value`` is not among ``allowed``."""
    allowed = tuple(allowed)
    return [] if value in allowed else [f"{field} must be one of {', '.join(allowed)}, not {value!r}"]


def apply_switches(cfg: M, names: Iterable[str]) -> M:
    """A copy of ``cfg`` with the switches ``names`` added to ``cfg.ablations``."""
    return cfg.override({"ablations": (*cfg.ablations, *names)})


def data_fields() -> tuple[str, ...]:
    """The :class:`ModelConfig` fields that describe the data (set from the store, not tuned)."""
    return ("dataset", "task", "num_labels", "input_dims")


def check_no_data_fields(overrides: Iterable[str], source: str) -> None:
    """Refuse (one :class:`~mea_cli.config.ConfigError`) model overrides of :func:`data_fields`,
    which come from ``source`` (``"the store and --dataset"``), never from ``--set``."""
    data = sorted(set(overrides) & set(data_fields()))
    if data:
        verb = "comes" if len(data) == 1 else "come"
        raise ConfigError("model overrides", f"{', '.join(data)} {verb} from {source}, not from --set")


def model_fields(cfg_dict: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a config dict that are the model's own (everything but :func:`data_fields`)."""
    return {k: v for k, v in cfg_dict.items() if k not in data_fields()}


__all__ = [
    "CAPABILITIES",
    "OUTPUTS",
    "TASKS",
    "ConfigError",
    "ModelConfig",
    "Switch",
    "SwitchSet",
    "apply_switches",
    "check_no_data_fields",
    "choice_problems",
    "data_fields",
    "kernel_by_modality",
    "kernel_problems",
    "model_fields",
    "output_present",
]
