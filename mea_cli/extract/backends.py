"""Extraction backends: one protocol per kind, a name -> factory map, provenance both ways.

Three kinds of backend make the three modalities of the feature store:

=========  ==========  =====================================================================
kind       modality    protocol (what the extraction pipeline calls)
=========  ==========  =====================================================================
``face``   ``vision``  ``extract(frames, frame_period) -> (x [T, D], times [T, 2], frames seen)``
``audio``  ``audio``   ``extract(signal, rate) -> (x [T, D], times [T, 2])``
``text``   ``text``    ``embed(words) -> TextFeatures`` (vectors, times, token and OOV counts)
=========  ==========  =====================================================================

Every backend also has ``feature_names`` (D of them), ``nominal_rate_hz`` (NaN when the rate
is not fixed) and ``provenance()``: an :class:`~mea_cli.artifacts.features.ExtractorInfo`
whose parameters hold ``backend`` (its name in :data:`REGISTRY`), ``options`` (every option
value it ran with, defaults included, paths absolute) and what identifies its content (a
model file's sha256, a feature-set name, ...). That record is written to the feature store's
modality attributes and from there into checkpoints, and :func:`from_provenance` re-creates
the same backend from it -- what ``mea predict`` does -- or raises :class:`BackendError`
naming what is unavailable (the package, the backend, the model file, a file whose content
changed).

Options come from the command line as ``--face-opt key=value`` (``--audio-opt``,
``--text-opt``): a backend declares them in ``OPTIONS`` (name -> :class:`Option`), and
:func:`create` refuses unknown keys and unparsable values in one line. A backend is one
module holding one class; adding one means adding that module and its line in
:data:`REGISTRY` (``"module:Class"``, imported only when used, so a backend whose package is
not installed costs nothing until it is asked for).
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from mea_cli.artifacts.features import ExtractorInfo, Word
from mea_cli.errors import MeaError

KINDS: dict[str, str] = {"face": "vision", "audio": "audio", "text": "text"}  # kind -> modality
KIND_OF_MODALITY: dict[str, str] = {m: k for k, m in KINDS.items()}

REGISTRY: dict[str, dict[str, str]] = {
    "face": {
        "blendshapes": "mea_cli.extract.face:BlendshapeBackend",
        "pyfeat": "mea_cli.extract.pyfeat_backend:PyFeatBackend",
    },
    "audio": {"opensmile": "mea_cli.extract.audio:OpenSmileBackend"},
    "text": {
        "glove": "mea_cli.extract.glove:GloveBackend",
        "minilm": "mea_cli.extract.minilm:MiniLMBackend",
    },
}
DEFAULTS: dict[str, str] = {"face": "blendshapes", "audio": "opensmile", "text": "glove"}


class BackendError(MeaError):
    """A backend that cannot be created or re-created: unknown, not installed, bad option,
    missing model file, or a file whose content differs from the recorded one."""


# -- options ---------------------------------------------------------------------------------
def parse_optional_float(text: str) -> float | None:
    """``""``/``native``/``none`` -> None, else a positive float."""
    if text.strip().lower() in ("", "native", "none"):
        return None
    x = float(text)
    if not (math.isfinite(x) and x > 0):
        raise ValueError("expected a positive number")
    return x


def parse_nonnegative_int(text: str) -> int:
    """A ``--*-opt`` value that counts something: 0 or more."""
    x = int(text)
    if x < 0:
        raise ValueError("expected 0 or a positive integer")
    return x


def parse_bool(text: str) -> bool:
    """``true``/``false`` (also ``yes``/``no``, ``on``/``off``, ``1``/``0``; any case)."""
    key = text.strip().lower()
    if key in ("true", "yes", "on", "1"):
        return True
    if key in ("false", "no", "off", "0"):
        return False
    raise ValueError("expected true or false")


def parse_choice(choices: Iterable[str]) -> Callable[[str], str]:
    """A parser of an option that takes one of ``choices`` (any case, outer spaces ignored)."""
    allowed = tuple(choices)

    def parse(text: str) -> str:
        key = text.strip().lower()
        if key not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}")
        return key

    return parse


def parse_path(text: str) -> str | None:
    """A file or folder path, made absolute (so the provenance names it unambiguously)."""
    return str(Path(text).expanduser().resolve()) if text.strip() else None


@dataclass(frozen=True)
class Option:
    """One backend option: its default (``None``: not set), parser and help line.

    ``absent`` (an option added after stores were made) is the value, as typed, that a recorded
    provenance without the option means: how the backend behaved before the option existed,
    which :func:`from_provenance` re-creates (``None``: the default)."""

    default: Any
    parse: Callable[[str], Any]
    help: str
    absent: str | None = None


@dataclass(frozen=True)
class BackendSpec:
    """Which backend of a kind and the options given for it (strings, as typed)."""

    kind: str
    name: str
    options: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, kind: str, name: str | None, opts: Sequence[str] = ()) -> BackendSpec:
        """``name`` (default: the kind's default) and ``["key=value", ...]`` -> a spec.

        Raises :class:`BackendError` for a malformed ``key=value`` or a repeated key.
        """
        if kind not in KINDS:
            raise BackendError(f"unknown backend kind {kind!r} (known: {', '.join(KINDS)})")
        pairs: dict[str, str] = {}
        for item in opts:
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep or not key:
                raise BackendError(f"--{kind}-opt {item!r}: expected key=value")
            if key in pairs:
                raise BackendError(f"--{kind}-opt {key} is given twice")
            pairs[key] = value.strip()
        return cls(kind, name or DEFAULTS[kind], tuple(sorted(pairs.items())))

    def with_options(self, extra: Mapping[str, str]) -> BackendSpec:
        """This spec with ``extra`` options added; a key given both ways is an error."""
        pairs = dict(self.options)
        for key, value in extra.items():
            if key in pairs and pairs[key] != value:
                raise BackendError(
                    f"--{self.kind}-opt {key}={pairs[key]} conflicts with {value!r} given "
                    "by another option"
                )
            pairs[key] = value
        return BackendSpec(self.kind, self.name, tuple(sorted(pairs.items())))

    def describe(self) -> str:
        opts = " ".join(f"{k}={v}" for k, v in self.options)
        return f"{self.kind} backend {self.name!r}" + (f" ({opts})" if opts else "")


# -- protocols -------------------------------------------------------------------------------
class Backend(Protocol):
    """What every backend has (see the module docstring)."""

    kind: ClassVar[str]
    name: ClassVar[str]
    OPTIONS: ClassVar[dict[str, Option]]
    feature_names: tuple[str, ...]
    nominal_rate_hz: float

    def provenance(self) -> ExtractorInfo: ...


class FaceBackend(Backend, Protocol):
    """Frames in, one step per frame with a face out. ``fps`` (``None``: every frame) and
    ``max_side`` (0: never shrink) say how the pipeline decodes frames for it, and so does
    ``display_rotation`` where a backend has it (frames turned as the file's display rotation
    says; without the attribute, frames as stored)."""

    fps: float | None
    max_side: int

    def extract(
        self, frames: Iterable[tuple[float, np.ndarray]], frame_period: float
    ) -> tuple[np.ndarray, np.ndarray, int]: ...


class AudioBackend(Backend, Protocol):
    """A mono float32 signal in, frame-level descriptors out. A backend may say, as
    ``window_s``, the shortest signal it makes a frame of (the failure row of a clip with
    fewer seconds of audio names it)."""

    def extract(self, signal: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass
class TextFeatures:
    """What a text backend makes of a list of words."""

    x: np.ndarray  # [T, D] float32
    times: np.ndarray  # [T, 2] seconds
    tokens: int  # steps made (T)
    oov: int  # of which had no vector


class TextBackend(Backend, Protocol):
    """Timed words in, one vector per token out."""

    def embed(self, words: Sequence[Word]) -> TextFeatures: ...


# -- factories -------------------------------------------------------------------------------
def names(kind: str) -> tuple[str, ...]:
    """The backend names registered for ``kind``."""
    return tuple(REGISTRY[kind])


def backend_class(kind: str, name: str) -> type:
    """Import the class registered as ``name`` for ``kind``."""
    table = REGISTRY.get(kind, {})
    if name not in table:
        raise BackendError(
            f"unknown {kind} backend {name!r} (known: {', '.join(table) or 'none'})"
        )
    module, _, attr = table[name].partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except ImportError as err:
        raise BackendError(
            f"{kind} backend {name!r} is not available here: cannot import {err.name or err}"
        ) from None


def parse_options(cls: type, spec: BackendSpec) -> dict[str, Any]:
    """The spec's option strings parsed by the backend's ``OPTIONS``, defaults filled in."""
    declared: dict[str, Option] = cls.OPTIONS  # type: ignore[attr-defined]
    values = {k: o.default for k, o in declared.items()}
    for key, raw in spec.options:
        if key not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise BackendError(
                f"--{spec.kind}-opt {key}: {spec.name} has no option {key!r} (options: {known})"
            )
        try:
            values[key] = declared[key].parse(raw)
        except ValueError as err:
            raise BackendError(f"--{spec.kind}-opt {key}={raw}: {err}") from None
    return values


def create(spec: BackendSpec) -> Backend:
    """Build the backend ``spec`` names; :class:`BackendError` (or the backend's own
    :class:`~mea_cli.errors.MeaError`) names what is wrong or missing."""
    cls = backend_class(spec.kind, spec.name)
    return cls(**parse_options(cls, spec))  # type: ignore[no-any-return]


def options_record(values: Mapping[str, Any]) -> dict[str, str]:
    """Option values as the strings :func:`create` parses back (``None`` -> ``""``)."""
    out = {}
    for key, value in sorted(values.items()):
        if value is None:
            out[key] = ""
        elif isinstance(value, bool):
            out[key] = "true" if value else "false"
        else:
            out[key] = str(value)
    return out


@dataclass
class Recreated:
    """A backend re-created from provenance, and what differs without changing features."""

    backend: Backend
    notes: list[str] = field(default_factory=list)  # e.g. another library version


def from_provenance(
    modality: str, info: ExtractorInfo, overrides: Mapping[str, str] | None = None
) -> Recreated:
    """Re-create the backend that made ``modality``'s features, as recorded in ``info``.

    ``overrides`` replace recorded options (e.g. ``{"model": "/new/place/face_landmarker.task"}``
    after a move); the content must still be the same. An option the record lacks takes its
    ``absent`` value where it declares one (:class:`Option`: the behaviour of the stores made
    before the option existed), else its default. Everything recorded besides the options and
    the tool version must match exactly -- model digests, feature sets, vector files -- or a
    :class:`BackendError` names the difference. A different tool version is allowed and
    reported in ``notes``.
    """
    kind = KIND_OF_MODALITY.get(modality)
    if kind is None:
        raise BackendError(f"no extraction backend makes a {modality!r} modality")
    params = dict(info.parameters)
    name = params.get("backend")
    if not isinstance(name, str) or not isinstance(params.get("options"), dict):
        raise BackendError(
            f"{modality} features were made by {info.name!r}, which records no mea-cli "
            "extraction backend (imported or synthetic data): they cannot be re-extracted"
        )
    recorded = {str(k): str(v) for k, v in params["options"].items()}
    recorded.update(overrides or {})
    try:
        declared: dict[str, Option] = backend_class(kind, name).OPTIONS
        for key, option in declared.items():
            if option.absent is not None and key not in recorded:
                recorded[key] = option.absent
        backend = create(BackendSpec(kind, name, tuple(sorted(recorded.items()))))
    except MeaError as err:
        raise BackendError(f"cannot re-create the {modality} extraction ({name}): {err}") from None
    now = backend.provenance()
    if now.name != info.name:
        raise BackendError(f"{modality}: backend {name!r} now makes {now.name!r}, not {info.name!r}")
    for key in sorted(set(params) | set(now.parameters)):
        if key == "options":
            continue
        was, got = params.get(key), now.parameters.get(key)
        if _canonical(was) != _canonical(got):
            # the files given in place of the recorded ones (--face-model ...): what differs
            given = ", ".join(f"{k}={v}" for k, v in sorted((overrides or {}).items()))
            raise BackendError(
                f"{modality} extraction ({name}): {key} is {_short(got)} here"
                f"{f' ({given})' if given else ''} but {_short(was)} in the recorded provenance"
            )
    notes = []
    if now.version != info.version:
        notes.append(f"{modality}: {info.name} version {now.version} (features made with {info.version})")
    return Recreated(backend, notes)


def identity(info: ExtractorInfo) -> str:
    """What decides the features of a provenance record, as canonical JSON: everything but
    the ``options`` (at the top and in ``words``), which hold where files are, not what they
    are (their digests are kept). Two stores with the same identity were made the same way,
    even on machines that keep the model files in other places (merges, cache reuse)."""

    def strip(params: Any) -> Any:
        if not isinstance(params, dict):
            return params
        return {k: strip(v) for k, v in params.items() if k != "options"}

    return json.dumps(
        {"name": info.name, "version": info.version, "parameters": strip(dict(info.parameters))},
        sort_keys=True,
        default=str,
    )


def _canonical(value: Any) -> Any:
    """JSON round trip: tuples and lists compare equal, as they do after a store is read."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


