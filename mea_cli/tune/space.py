"""The search space of ``mea tune``: which fields vary and how (``--space`` text or a TOML file).

One item per field, ``key=SPEC``::

    mu=0:0.5              a float range (uniform)
    lr=log:1e-4:3e-3      a log-uniform range (positive bounds)
    psa_layers=1:3        an int range, because psa_layers is an int field (both ends included)
    batch_size=16,32,64   a categorical choice (any field type, values typed by the field)

Keys name a model config field (``mu``, ``d``; ``model.mu`` too) or a training setting
(``lr``; ``train.lr`` too). A bare key that both configs have must take its prefix. The TOML
file holds the same specs in ``[model]`` and ``[train]`` tables, each value a spec string, a
list of choices or a table ``{low = .., high = .., log = true}``::

    [model]
    mu = "0:0.5"
    psa_layers = [1, 2, 3]

    [train]
    lr = {low = 1e-4, high = 3e-3, log = true}

Every problem (unknown field, a data field, a range on a text field, low >= high, a log range
that reaches zero, a bound the config itself refuses) is a :class:`SpaceError`, before any
trial starts. A bound is checked against the run's own configuration (``--preset``, ``--set``,
``--config`` and the store's dimensions, as every trial resolves it) where the caller gives it,
so ``--preset small --space heads=5,10`` is refused (its ``d=32`` is not divisible by 10).
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mea_cli.config import Config, ConfigError, coerce, parse_text
from mea_cli.errors import MeaError


class SpaceError(MeaError):
    """A search space that cannot be searched (unknown field, bad range, bad file)."""


@dataclass(frozen=True)
class Param:
    """One searched field: ``target`` is ``"model"`` or ``"train"``; ``kind`` is ``float``,
    ``int`` (ranges, both bounds included) or ``choice`` (``choices``)."""

    name: str
    target: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    @property
    def key(self) -> str:
        """The name Optuna stores: ``model.mu`` / ``train.lr`` (unique across both configs)."""
        return f"{self.target}.{self.name}"

    def describe(self) -> str:
        if self.kind == "choice":
            return f"{self.key} in {{{', '.join(map(repr, self.choices))}}}"
        return f"{self.key} in [{self.low}, {self.high}]" + (" (log)" if self.log else "")


def _field_types(cls: type[Config], skip: Sequence[str]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {n: hints[n] for n in cls.field_names() if n not in skip}


def _resolve_key(
    key: str, fields: Mapping[str, Mapping[str, Any]], where: str
) -> tuple[str, str]:
    """(target, field name) of a key, with or without its ``model.`` / ``train.`` prefix."""
    for target in ("model", "train"):
        if key.startswith(target + "."):
            name = key[len(target) + 1 :]
            if name not in fields[target]:
                break
            return target, name
    else:
        owners = [t for t in ("model", "train") if key in fields[t]]
        if len(owners) == 2:
            raise SpaceError(f"{where}: {key!r} is a model field and a training setting; write "
                             f"model.{key} or train.{key}")  # fmt: skip
        if owners:
            return owners[0], key
    raise SpaceError(
        f"{where}: {key!r} is not a searchable field; model fields: "
        f"{', '.join(sorted(fields['model']))}; training settings: "
        f"{', '.join(sorted(fields['train']))}"
    )


def _number(text: Any, hint: Any, where: str) -> float | int:
    try:
        value = coerce(hint, text)
    except ValueError as err:
        raise SpaceError(f"{where}: bound {text!r} must be {err}") from None
    return value


def _range(name: str, target: str, hint: Any, low: Any, high: Any, log: bool, where: str) -> Param:
    if hint not in (int, float):
        raise SpaceError(f"{where}: {name} is not a number field; give its choices (a,b,c)")
    lo, hi = _number(low, hint, where), _number(high, hint, where)
    if not lo < hi:
        raise SpaceError(f"{where}: the range of {name} needs low < high, got {lo} and {hi}")
    if log and lo <= 0:
        raise SpaceError(f"{where}: a log range of {name} needs a positive low bound, got {lo}")
    return Param(name, target, "int" if hint is int else "float", lo, hi, log)


def _choices(name: str, target: str, hint: Any, values: Sequence[Any], where: str) -> Param:
    if hint not in (int, float, bool, str):  # Optuna's choices are scalars
        raise SpaceError(f"{where}: {name} holds {hint} values, which cannot be searched")
    typed = []
    for v in values:
        try:
            typed.append(coerce(hint, parse_text(v) if isinstance(v, str) else v))
        except ValueError as err:
            raise SpaceError(f"{where}: choice {v!r} of {name} must be {err}") from None
    if len(typed) < 2 or len(set(map(repr, typed))) != len(typed):
        raise SpaceError(f"{where}: {name} needs at least two distinct choices, got {list(values)}")
    return Param(name, target, "choice", choices=tuple(typed))


def _from_text(name: str, target: str, hint: Any, spec: str, where: str) -> Param:
    parts = [p.strip() for p in spec.split(":")]
    if len(parts) == 3 and parts[0] == "log":
        return _range(name, target, hint, parts[1], parts[2], True, where)
    if len(parts) == 2:
        return _range(name, target, hint, parts[0], parts[1], False, where)
    if len(parts) == 1 and "," in spec:
        return _choices(name, target, hint, [p.strip() for p in spec.split(",")], where)
    raise SpaceError(
        f"{where}: {spec!r} is not a range (low:high, log:low:high) or choices (a,b,c)"
    )


def _check_bounds(param: Param, defaults: Config, where: str) -> None:
    """Each bound (or choice) alone must be a value the config accepts (lr > 0, 0 <= mu, d
    divisible by heads ...) with ``defaults``' other values (the run's resolved configuration
    when known) and, for a model field, give a model that fits this machine's memory with its
    other sizes (:func:`~mea_cli.models.core.registry.check_size`)."""
    # start-up time: the registry imports torch; tune's option checks run before it is needed
    from mea_cli.models.core.registry import ModelSizeError, check_config_size

    values = param.choices if param.kind == "choice" else (param.low, param.high)
    for v in values:
        try:
            check_config_size(defaults.override({param.name: v}))
        except ConfigError as err:
            raise SpaceError(f"{where}: {param.name}={v!r} is refused: "
                             f"{'; '.join(err.problems)}") from None  # fmt: skip
        except ModelSizeError as err:
            raise SpaceError(f"{where}: {param.name}={v!r} is refused: {err}") from None


def build_space(
    model_cls: type[Config],
    train_cls: type[Config],
    items: Sequence[str] = (),
    file: Path | None = None,
    skip_model: Sequence[str] = (),
    resolved: Mapping[str, Config] | None = None,
) -> list[Param]:
    """The searched fields from a TOML ``file`` and ``--space`` items (a field given twice is an
    error). ``skip_model`` are model fields that cannot be searched (the data fields).
    ``resolved``: the run's own ``model`` and ``train`` configurations (what every trial
    starts from), which each bound is checked with; without them, the classes' defaults."""
    fields = {
        "model": _field_types(model_cls, skip_model),
        "train": _field_types(train_cls, ()),
    }
    defaults = {"model": model_cls(), "train": train_cls(), **(resolved or {})}
    raw: list[tuple[str, Any, str]] = []  # (key, spec, where)
    if file is not None:
        raw += _read_file(file)
    for item in items:
        key, sep, spec = item.partition("=")
        if not sep or not key.strip() or not spec.strip():
            raise SpaceError(f"--space {item!r}: expected key=SPEC (e.g. mu=0:0.5, "
                             f"lr=log:1e-4:3e-3, heads=2,4)")  # fmt: skip
        raw.append((key.strip(), spec.strip(), f"--space {item}"))
    if not raw:
        raise SpaceError("mea tune needs a search space: --space key=SPEC or --space-file FILE")
    params: dict[str, Param] = {}
    for key, spec, where in raw:
        target, name = _resolve_key(key, fields, where)
        hint = fields[target][name]
        if isinstance(spec, str):
            param = _from_text(name, target, hint, spec, where)
        elif isinstance(spec, list):
            param = _choices(name, target, hint, spec, where)
        elif isinstance(spec, dict) and set(spec) <= {"low", "high", "log"} and {
            "low", "high"} <= set(spec):  # fmt: skip
            log = spec.get("log", False)
            if not isinstance(log, bool):
                raise SpaceError(f"{where}: log must be true or false, not {log!r}")
            param = _range(name, target, hint, spec["low"], spec["high"], log, where)
        else:
            raise SpaceError(f"{where}: expected a spec string, a list of choices or a table "
                             f"{{low, high, log}}, got {spec!r}")  # fmt: skip
        if param.key in params:
            raise SpaceError(f"{where}: {param.key} is given twice")
        _check_bounds(param, defaults[target], where)
        params[param.key] = param
    return list(params.values())


def _read_file(path: Path) -> list[tuple[str, Any, str]]:
    import tomllib

    try:
        data = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise SpaceError(f"{path}: no such file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise SpaceError(f"{path}: not valid TOML ({err})") from None
    extra = sorted(set(data) - {"model", "train"})
    if extra:
        raise SpaceError(f"{path}: unknown table(s) {extra}; use [model] and [train]")
    out = []
    for target in ("model", "train"):
        table = data.get(target, {})
        if not isinstance(table, dict):
            raise SpaceError(f"{path}: [{target}] must be a table")
        out += [(f"{target}.{k}", v, f"{path} [{target}] {k}") for k, v in table.items()]
    return out


def suggest(trial: Any, params: Sequence[Param]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(training overrides, model overrides) drawn for an Optuna ``trial``."""
    out: dict[str, dict[str, Any]] = {"train": {}, "model": {}}
    for p in params:
        if p.kind == "choice":
            value = trial.suggest_categorical(p.key, list(p.choices))
        elif p.kind == "int":
            value = trial.suggest_int(p.key, int(p.low), int(p.high), log=p.log)
        else:
            value = trial.suggest_float(p.key, float(p.low), float(p.high), log=p.log)
        out[p.target][p.name] = value
    return out["train"], out["model"]
