"""Label cells -> a task and a label matrix, or an error naming the rows that do not fit.

Three tasks, stored as the feature store's ``task`` attribute:

* ``regression``: every label is a number (any range; ``--label-range a,b`` makes a value
  outside ``[a, b]`` an error naming its row). One label name, ``sentiment``; ``[N, 1]``.
* ``multiclass``: every label is one class name. Label names are the classes (``--classes``
  fixes their order and makes any other name an error naming its row; else sorted, numerically
  when every name is a number); the label matrix is one-hot ``[N, K]``. At least two classes.
* ``binary-multilabel``: every label is a set of names joined by ``;`` (``happy;sad``); one
  binary label per name, IEMOCAP's order ``happy, sad, angry, neutral`` when the names are
  among those, else as for multiclass; ``[N, K]`` of 0/1.

Class names are compared case-insensitively and stored lower-cased. ``--task auto`` (the
default) decides: all numbers -> ``regression``; no numbers -> ``binary-multilabel`` when a
label holds ``;`` or every name is one of IEMOCAP's four emotions (the paper's IEMOCAP
setting), else ``multiclass``. A column that mixes numbers and names is an error naming the
rows of the minority kind, never a silent change of task: one typo in a regression column
(``0,5`` for ``0.5``) stops the run with its line number. Classes written as numbers
(``0, 1, 2``) need ``--task multiclass``, and are then named by their value (``1``, ``1.0`` and
``01`` are class ``1``).

Cells are read as their author meant them, not byte for byte: Unicode NFC, zero-width
characters removed, a Unicode minus (``−0.5``, as word processors write it) a minus. Numbers as
a spreadsheet shows them (``0,5``, ``1,000``, ``50%``) are refused under ``--task auto``: read
as class names each value would be a class of its own.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mea_cli.artifacts.store_format import TASKS
from mea_cli.errors import MeaError

IEMOCAP_ORDER: tuple[str, ...] = ("happy", "sad", "angry", "neutral")
TASK_OPTIONS: tuple[str, ...] = ("auto", *TASKS)
"""``mea extract --task``: a store's task, or ``auto`` (read from the labels)."""
MAX_LISTED = 5


class LabelsError(MeaError):
    """A labels file (or label request) that cannot be used."""

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True)
class LabelSpec:
    """What the user says about the labels (``mea extract --task/--classes/--label-range``)."""

    task: str = "auto"
    classes: tuple[str, ...] = ()
    value_range: tuple[float, float] | None = None
    column: str = "label"

    def __post_init__(self) -> None:
        if self.task not in TASK_OPTIONS:
            raise LabelsError("--task", f"{self.task!r} is not one of {', '.join(TASK_OPTIONS)}")
        if self.classes and self.task == "regression":
            raise LabelsError("--classes", "class names make no sense for --task regression")
        if self.value_range is not None and self.task not in ("auto", "regression"):
            raise LabelsError("--label-range", f"only for regression, not --task {self.task}")
        lowered = [c.strip().lower() for c in self.classes]
        if len(set(lowered)) != len(lowered) or any(not c for c in lowered):
            raise LabelsError("--classes", "class names must be distinct and non-empty")
        if self.value_range is not None:
            a, b = self.value_range
            if not (math.isfinite(a) and math.isfinite(b) and a < b):
                raise LabelsError("--label-range", f"{a:g},{b:g} is not a range a < b")

    @staticmethod
    def parse_classes(text: str | None) -> tuple[str, ...]:
        """``"pos,neg,neu"`` -> ``("pos", "neg", "neu")``."""
        return tuple(c.strip() for c in text.split(",")) if text else ()

    @staticmethod
    def parse_range(text: str | None) -> tuple[float, float] | None:
        """``"-3,3"`` -> ``(-3.0, 3.0)``."""
        if not text:
            return None
        try:
            a, b = (float(x) for x in text.split(","))
        except ValueError:
            raise LabelsError("--label-range", f"{text!r}: expected two numbers a,b") from None
        return a, b


@dataclass(frozen=True)
class ParsedLabels:
    """Labels read from the CSV's label cells: the task, the label names and one row per cell
    (a CSV row: a clip, or one segment of it)."""

    task: str
    names: tuple[str, ...]
    values: np.ndarray  # [N, K] float32


_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))  # zero-width marks

# numbers as a spreadsheet shows them, not as a CSV should hold them: a decimal comma (0,5),
# thousands separators (1,000), a percent sign (50%)
_SHEET_NUMBER = re.compile(r"[+\-\u2212]?(\d{1,3}(,\d{3})+|\d+,\d+|\d+(\.\d+)?%|\d+,\d+%)")


def _clean(text: str) -> str:
    """A label cell as its author meant it: Unicode NFC (macOS writes é as e + accent),
    zero-width characters from copy and paste removed, outer whitespace stripped; without this
    two spellings of one class name would be two classes that print alike."""
    return unicodedata.normalize("NFC", text).translate(_INVISIBLE).strip()


def parse_number(text: str) -> float | None:
    """A finite number as a CSV writes it (``0.5``, ``-1e-1``, ``+.5``; a Unicode minus, as word
    processors write it, is a minus), else None. Not Python's underscores (``1_5``)."""
    if "_" in text:
        return None
    try:
        x = float(text.replace("\u2212", "-"))
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def _non_finite(text: str) -> bool:
    """``text`` reads as a number that is not finite (``nan``, ``inf``, ``1e999``)."""
    try:
        return not math.isfinite(float(text))
    except ValueError:
        return False


def _class_name(text: str) -> str:
    """One class's name: lower case, and a number (``--task multiclass`` on star ratings) by its
    value, so that ``1``, ``1.0`` and ``01`` are one class, ``1``."""
    x = parse_number(text)
    return f"{x:g}" if x is not None else text.lower()


def _listed(items: Sequence[tuple[int, str]]) -> str:
    shown = ", ".join(f"line {n} ({text!r})" for n, text in items[:MAX_LISTED])
    more = len(items) - MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def _order(found: set[str], given: tuple[str, ...], iemocap: bool) -> tuple[str, ...]:
    if given:
        return tuple(_class_name(_clean(c)) for c in given)
    if iemocap and found <= set(IEMOCAP_ORDER):
        return IEMOCAP_ORDER
    if all(parse_number(x) is not None for x in found):
        return tuple(sorted(found, key=lambda x: float(x)))
    return tuple(sorted(found))


def parse_labels(
    cells: Sequence[tuple[int, str]], spec: LabelSpec, where: object = "labels"
) -> ParsedLabels:
    """``[(line, cell), ...]`` -> task, label names and ``[N, K]`` values (module docstring)."""
    empty = [(n, t) for n, t in cells if not t.strip()]
    if empty:
        raise LabelsError(where, f"empty label in {_listed(empty)}")
    cells = [(n, _clean(t)) for n, t in cells]
    task = spec.task
    if task == "auto":
        sheet = [(n, t) for n, t in cells if _SHEET_NUMBER.fullmatch(t)]
        if sheet:  # read as class names they would be one class per value: never meant
            raise LabelsError(
                where,
                f"{spec.column} column has numbers written as a spreadsheet shows them "
                f"(decimal comma, thousands separator or percent sign): {_listed(sheet)}; "
                "write plain numbers (0.5, 1000, 0.5 for 50%) or save the sheet with '.' as the "
                "decimal separator, or pass --task multiclass to read them as class names",
            )
        # "nan" / "inf" read as numbers that are not finite: missing values, not class names
        bad = [(n, t) for n, t in cells if _non_finite(t)]
        if bad:
            raise LabelsError(
                where,
                f"{spec.column} column has labels that are not finite numbers: {_listed(bad)}; "
                "give every row a number or a class name (or pass --task multiclass to read "
                "them as class names)",
            )
        numbers = [(n, t) for n, t in cells if parse_number(t) is not None]
        names = [(n, t) for n, t in cells if parse_number(t) is None]
        if numbers and names:
            if len(names) <= len(numbers):
                raise LabelsError(
                    where,
                    f"{spec.column} column mixes numbers and names: {_listed(names)} "
                    f"{'is' if len(names) == 1 else 'are'} not a number while "
                    f"{len(numbers)} rows are; fix the typo(s), or pass --task multiclass "
                    "to read every label as a class name",
                )
            raise LabelsError(
                where,
                f"{spec.column} column mixes names and numbers: {_listed(numbers)} "
                f"{'is a number' if len(numbers) == 1 else 'are numbers'} while {len(names)} "
                "rows are class names; fix them, or pass --task multiclass",
            )
        if numbers:
            task = "regression"
        else:
            split = {x.strip().lower() for _, t in cells for x in t.split(";") if x.strip()}
            multi = any(";" in t for _, t in cells)
            task = "binary-multilabel" if multi or split <= set(IEMOCAP_ORDER) else "multiclass"
    if task == "regression":
        return _regression(cells, spec, where)
    return _classes(cells, spec, task, where)


def _regression(cells: Sequence[tuple[int, str]], spec: LabelSpec, where: object) -> ParsedLabels:
    bad = [(n, t) for n, t in cells if parse_number(t) is None]
    if bad:
        raise LabelsError(where, f"regression labels must be numbers: {_listed(bad)}")
    values = [float(parse_number(t)) for _, t in cells]  # every one a number (checked above)
    y = np.array(values, np.float32).reshape(-1, 1)
    if spec.value_range is not None:
        a, b = spec.value_range
        out = [(n, t) for (n, t), v in zip(cells, values, strict=True) if not a <= v <= b]
        if out:
            raise LabelsError(where, f"outside --label-range {a:g},{b:g}: {_listed(out)}")
    return ParsedLabels("regression", ("sentiment",), y)


def _classes(
    cells: Sequence[tuple[int, str]], spec: LabelSpec, task: str, where: object
) -> ParsedLabels:
    multi = task == "binary-multilabel"
    sets = []
    for n, t in cells:
        parts = [_class_name(x.strip()) for x in t.split(";") if x.strip()] if multi else [_class_name(t)]
        sets.append((n, t, parts))
    if not multi:
        several = [(n, t) for n, t in cells if ";" in t]
        if several:
            raise LabelsError(
                where,
                f"multiclass labels name one class each: {_listed(several)}; "
                "use --task binary-multilabel for several",
            )
    found = {x for _, _, parts in sets for x in parts}
    names = _order(found, spec.classes, iemocap=multi)
    unknown = [(n, t) for n, t, parts in sets if any(x not in names for x in parts)]
    if unknown:
        raise LabelsError(where, f"labels not among --classes {', '.join(names)}: {_listed(unknown)}")
    if not multi and len(names) < 2:
        raise LabelsError(
            where,
            f"only one class ({names[0]!r}): a classifier needs two or more "
            "(--classes names them all when this file holds only some)",
        )
    y = np.zeros((len(cells), len(names)), np.float32)
    index = {c: k for k, c in enumerate(names)}
    for i, (_, _, parts) in enumerate(sets):
        for x in parts:
            y[i, index[x]] = 1.0
    return ParsedLabels(task, names, y)
