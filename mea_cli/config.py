"""Typed, frozen configuration dataclasses: one validation, one override path, one error.

Model configs (:class:`mea_cli.models.core.contract.ModelConfig`) and training settings
(:class:`mea_cli.train.config.TrainSettings`) both derive from :class:`Config`:

* every field is coerced to its annotated type on construction (a list becomes a tuple, an
  integral float an int, a command-line string such as ``"0.3"``, ``"true"``, ``"3/3/5"``,
  ``"psa,wal"`` or ``'{"text": 300}'`` the field's type), so ``Config.from_dict`` of a JSON
  round trip gives back an equal object;
* :meth:`Config.problems` lists what is wrong with the values (subclasses extend it), and
  construction raises **one** :class:`ConfigError` naming every problem at once, type errors
  and unknown fields included;
* :meth:`Config.override` applies a ``{field: value}`` dict (structured overrides: stages pass
  dicts, never ``--set`` strings to be re-parsed).
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, ClassVar, TypeVar, Union

from mea_cli.errors import MeaError

C = TypeVar("C", bound="Config")


class ConfigError(MeaError):
    """A configuration that cannot be used: unknown fields, values of the wrong type or out of
    range, a bad ``--set`` item or ``--config`` file. ``problems`` lists each problem."""

    def __init__(self, what: str, problems: list[str] | str) -> None:
        self.what = what
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__(f"{what}: {'; '.join(self.problems)}")


SEED_LIMIT = 2**32
"""Seeds of numpy's ``RandomState`` (scikit-learn's ``random_state``, Optuna's samplers) lie in
``0 .. SEED_LIMIT - 1``; :func:`check_seed` holds every seed option that is not a training seed
to it (training seeds: ``mea_cli.train.cli_support.parse_seeds``)."""


def check_seed(seed: int, option: str) -> int:
    """Return ``seed`` when it is an integer in ``0 .. SEED_LIMIT - 1``, else a
    :class:`ConfigError` naming ``option`` (``--seed``): checked before any work, as numpy,
    scikit-learn and Optuna would refuse it only deep inside the command (or, written as an
    HDF5 attribute, after all of it)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_LIMIT:
        raise ConfigError(option, f"must be an integer in 0..{SEED_LIMIT - 1}, got {seed!r}")
    return seed


def parse_text(text: str) -> Any:
    """A command-line value as a JSON / TOML literal when it is one (``1e-3``, ``20``,
    ``true``, ``[1, 2]``), else the string itself (``psa,wal``, ``3/3/5``)."""
    text = text.strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        import tomllib

        return tomllib.loads(f"v = {text}")["v"]
    except Exception:  # noqa: BLE001 - any TOML failure (or no tomllib) means "a plain string"
        return text


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is tuple:
        args = typing.get_args(hint)
        return f"a list of {_type_name(args[0])}" if args else "a list"
    if origin is dict:
        return "a mapping"
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(hint))
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(
        hint, getattr(hint, "__name__", str(hint))
    )


def _coerce_union(hint: Any, value: Any) -> Any:
    """The first member type that takes ``value`` (None for an optional hint)."""
    args = typing.get_args(hint)
    if value is None and type(None) in args:
        return None
    for arg in args:
        if arg is type(None):
            continue
        try:
            return coerce(arg, value)
        except ValueError:
            continue
    raise ValueError(_type_name(hint))


def _coerce_bool(hint: Any, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(_type_name(hint))


def _number(hint: Any, value: Any) -> int | float:
    """A number (command-line text parsed first); booleans are not numbers."""
    if isinstance(value, str):
        value = parse_text(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(_type_name(hint))
    return value


def _coerce_int(hint: Any, value: Any) -> int:
    number = _number(hint, value)
    if not math.isfinite(number) or int(number) != number:
        raise ValueError(_type_name(hint))
    return int(number)


def _coerce_float(hint: Any, value: Any) -> float:
    number = _number(hint, value)
    if not math.isfinite(number):  # inf / nan would only fail mid-training
        raise ValueError("a finite number")
    return float(number)


def _coerce_str(hint: Any, value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # command-line text that happened to look like a number
    if not isinstance(value, str):
        raise ValueError(_type_name(hint))
    return value


def _split_list(text: str) -> list[Any]:
    """Command-line text as list items: a JSON/TOML list, else ``a,b`` or ``3/3/5``."""
    text = text.strip()
    if text in ("", "()", "[]"):
        return []
    parsed = parse_text(text)
    items = (
        parsed
        if isinstance(parsed, list)
        else [s.strip() for s in text.replace("/", ",").strip("()[]").split(",")]
    )
    return [s for s in items if not (isinstance(s, str) and not s)]


def _coerce_tuple(hint: Any, value: Any) -> tuple[Any, ...]:
    (item,) = typing.get_args(hint)[:1] or (Any,)
    if isinstance(value, str):
        value = _split_list(value)
    if not isinstance(value, (list, tuple)):
        raise ValueError(_type_name(hint))
    return tuple(v if item is Any else coerce(item, v) for v in value)


def _coerce_dict(hint: Any, value: Any) -> dict[Any, Any]:
    key_t, val_t = typing.get_args(hint) or (Any, Any)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(_type_name(hint)) from None
    if not isinstance(value, Mapping):
        raise ValueError(_type_name(hint))
    return {
        (k if key_t is Any else coerce(key_t, k)): (v if val_t is Any else coerce(val_t, v))
        for k, v in value.items()
    }


# How each kind of hint is coerced: by its generic origin (``X | None``, ``tuple[X, ...]``,
# ``dict[K, V]``), else by the type itself; any other hint takes the value as it is.
_BY_ORIGIN: dict[Any, Callable[[Any, Any], Any]] = {
    Union: _coerce_union,
    types.UnionType: _coerce_union,
    tuple: _coerce_tuple,
    dict: _coerce_dict,
}
_BY_TYPE: dict[Any, Callable[[Any, Any], Any]] = {
    bool: _coerce_bool,
    int: _coerce_int,
    float: _coerce_float,
    str: _coerce_str,
}


def coerce(hint: Any, value: Any) -> Any:
    """``value`` as type ``hint`` (``int``, ``float``, ``bool``, ``str``, ``tuple[X, ...]``,
    ``dict[K, V]``, ``X | None``); strings are parsed as command-line text. ``ValueError``
    (with the expected type in words) when it cannot be."""
    convert = _BY_ORIGIN.get(typing.get_origin(hint)) or _BY_TYPE.get(hint)
    return value if convert is None else convert(hint, value)


def _type_problem(name: str, err: ValueError, value: Any) -> str:
    return f"{name} must be {err}, not {value!r}"


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


@dataclasses.dataclass(frozen=True)
class Config:
    """Base of every config dataclass (frozen; subclasses give every field a default)."""

    WHAT: ClassVar[str] = "configuration"
    """How error messages name this kind of config (``"MEA configuration"``)."""

    def __post_init__(self) -> None:
        problems: list[str] = []
        hints = _hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            try:
                object.__setattr__(self, f.name, coerce(hints[f.name], value))
            except ValueError as err:
                problems.append(_type_problem(f.name, err, value))
                default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
                object.__setattr__(self, f.name, default)
        problems += self.problems()  # a badly typed field holds its default meanwhile
        if problems:
            raise ConfigError(f"invalid {self.WHAT}", problems)

    def problems(self) -> list[str]:
        """Everything wrong with the (already typed) values; subclasses add theirs to
        ``super().problems()``. An empty list means valid."""
        return []

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def field_problems(cls, values: Mapping[str, Any]) -> list[str]:
        """What is wrong with ``values`` (``{field: value}``) field by field: unknown names and
        values of the wrong type, worded as :meth:`override` words them; checks between fields
        (:meth:`problems`) are left to the whole configuration. For values that come from one
        place (a ``--config`` file), so that the error can name it."""
        names, hints = cls.field_names(), _hints(cls)
        unknown = sorted(set(values) - set(names))
        out = [f"unknown field {', '.join(unknown)} (valid fields: {', '.join(names)})"] if unknown else []
        for name, value in values.items():
            if name in names:
                try:
                    coerce(hints[name], value)
                except ValueError as err:
                    out.append(_type_problem(name, err, value))
        return out

    def override(self: C, overrides: Mapping[str, Any]) -> C:
        """A copy with ``overrides`` (``{field: value}``) applied; values are typed, or text
        from the command line. Unknown fields and bad values are reported together."""
        names = self.field_names()
        unknown = sorted(set(overrides) - set(names))
        known = {k: v for k, v in overrides.items() if k in names}
        problems = (
            [f"unknown field {', '.join(unknown)} (valid fields: {', '.join(names)})"]
            if unknown
            else []
        )
        try:
            result = dataclasses.replace(self, **known)
        except ConfigError as err:
            problems += err.problems
        if problems:
            raise ConfigError(f"invalid {self.WHAT}", problems)
        return result

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        names = cls.field_names()
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ConfigError(
                f"invalid {cls.WHAT}",
                f"unknown field {', '.join(unknown)} (valid fields: {', '.join(names)})",
            )
        return cls(**dict(data))
