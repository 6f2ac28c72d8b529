"""``config.coerce``: every refusal names the expected type in words (the message a config
error shows as ``field must be <this>``), and each accepted form of each type."""

from __future__ import annotations

from typing import Any

import pytest

from mea_cli.config import coerce


@pytest.mark.parametrize(
    ("hint", "value", "words"),
    [
        (bool, 1, "true or false"),
        (bool, "maybe", "true or false"),
        (int, "2.5", "an integer"),
        (int, "abc", "an integer"),
        (int, float("inf"), "an integer"),
        (int, [1], "an integer"),
        (int, False, "an integer"),
        (float, "nan", "a finite number"),
        (float, "abc", "a number"),
        (float, float("nan"), "a finite number"),
        (float, float("-inf"), "a finite number"),
        (float, True, "a number"),
        (float, None, "a number"),
        (str, None, "a string"),
        (str, True, "a string"),
        (tuple[int, ...], 3, "a list of an integer"),
        (tuple[int, ...], "1,x", "an integer"),
        (tuple[int, ...], {"a": 1}, "a list of an integer"),
        (dict[str, int], "{bad", "a mapping"),
        (dict[str, int], "[1, 2]", "a mapping"),
        (dict[str, int], [("a", 1)], "a mapping"),
        (dict[str, int], {"a": "x"}, "an integer"),
        (int | None, "x", "an integer or NoneType"),
        (int | str, [1], "an integer or a string"),
        (float | None, float("nan"), "a number or NoneType"),
    ],
)
def test_refusal_names_the_type(hint: Any, value: Any, words: str) -> None:
    with pytest.raises(ValueError) as err:
        coerce(hint, value)
    assert str(err.value) == words


@pytest.mark.parametrize(
    ("hint", "value", "want"),
    [
        (bool, True, True),
        (bool, " Yes ", True),
        (bool, "0", False),
        (int, "1e3", 1000),
        (int, 7, 7),
        (float, "3", 3.0),
        (float, 0.25, 0.25),
        (str, 3, "3"),
        (str, 2.5, "2.5"),
        (tuple[int, ...], "", ()),
        (tuple[int, ...], "[]", ()),
        (tuple[int, ...], "[1, 2]", (1, 2)),
        (tuple[int, ...], "(4, 5)", (4, 5)),
        (tuple[str, ...], "a,,b", ("a", "b")),
        (tuple[float, ...], (1, 2), (1.0, 2.0)),
        (tuple, ["x", 1], ["x", 1]),  # a bare tuple hint is not coerced
        (dict, {"k": [1]}, {"k": [1]}),
        (dict[str, float], {"a": 1}, {"a": 1.0}),
        (int | str, "abc", "abc"),
        (int | str, "5", 5),
        (str | None, None, None),
        (list[int], "kept as is", "kept as is"),
        (Any, object, object),
    ],
)
def test_accepted_forms(hint: Any, value: Any, want: Any) -> None:
    got = coerce(hint, value)
    assert got == want and type(got) is type(want)
