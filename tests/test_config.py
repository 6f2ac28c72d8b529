"""Typed configs (``mea_cli.config``): coercion, one error listing every problem, round trips."""

from __future__ import annotations

import pytest

from mea_cli.config import ConfigError, coerce, parse_text
from mea_cli.models import config_for
from mea_cli.models.mea.config import MEAConfig
from mea_cli.train import config as train_config


@pytest.mark.parametrize(
    ("hint", "value", "want"),
    [
        (int, "32", 32),
        (int, 3.0, 3),
        (float, "5e-4", 5e-4),
        (float, 2, 2.0),
        (bool, "true", True),
        (bool, "off", False),
        (str, "l1", "l1"),
        (tuple[int, ...], "3/3/5", (3, 3, 5)),
        (tuple[int, ...], [3, 5], (3, 5)),
        (tuple[str, ...], "psa,wal", ("psa", "wal")),
        (tuple[str, ...], "psa", ("psa",)),
        (tuple[str, ...], "()", ()),
        (dict[str, int], '{"text": 300}', {"text": 300}),
        (int | None, None, None),
    ],
)
def test_coerce_types_command_line_text_and_json(hint: object, value: object, want: object) -> None:
    got = coerce(hint, value)
    assert got == want and type(got) is type(want)


@pytest.mark.parametrize(
    ("hint", "value"), [(int, 2.5), (int, True), (float, "abc"), (bool, "maybe"), (tuple[int, ...], 3)]
)
def test_coerce_refuses_what_is_not_of_the_type(hint: object, value: object) -> None:
    with pytest.raises(ValueError):
        coerce(hint, value)


def test_parse_text_reads_literals_and_keeps_other_text() -> None:
    assert parse_text("1e-3") == 1e-3 and parse_text("20") == 20 and parse_text("true") is True
    assert parse_text("psa,wal") == "psa,wal" and parse_text("3/3/5") == "3/3/5"


def test_one_error_lists_every_problem_of_a_model_config() -> None:
    with pytest.raises(ConfigError) as err:
        config_for("mea", "mosi", bogus=1, heads="x", mu=3, ablations="zz,dgf,add")
    problems = err.value.problems
    assert problems[0].startswith("unknown field bogus (valid fields: dataset, task")
    assert "heads must be an integer, not 'x'" in problems
    assert any("unknown ablation switch zz" in p for p in problems)
    assert any("add and dgf cannot be combined" in p for p in problems)
    assert "mu must lie in [0, 1], not 3.0" in problems
    assert str(err.value).startswith("invalid MEA configuration: ")


def test_ablations_are_unique_and_in_the_models_order() -> None:
    assert config_for("mea", "mosi", ablations=["wal", "psa", "wal"]).ablations == ("psa", "wal")


def test_older_mea_configs_with_training_fields_still_load() -> None:
    old = {**config_for("mea", "mosei").to_dict(), "batch_size": 64, "epochs": 100, "lr": 2e-3}
    assert MEAConfig.from_dict(old) == config_for("mea", "mosei")
    with pytest.raises(ConfigError, match="unknown field d_model"):
        MEAConfig.from_dict({**old, "d_model": 3})


def test_cli_overrides_split_into_training_and_model_dicts(tmp_path) -> None:  # noqa: ANN001
    toml = tmp_path / "c.toml"
    toml.write_text('[train]\nlr = 5e-4\nepochs = 9\n[model]\nablations = ["wal"]\n')
    train, model = train_config.overrides_from_cli(
        ["train.epochs=3", "d=16"], train_config.load_toml(toml), epochs=None
    )
    assert train == {"lr": 5e-4, "epochs": 3} and model == {"ablations": ["wal"], "d": 16}
    train, _ = train_config.overrides_from_cli(["train.epochs=3"], None, epochs=7)
    assert train == {"epochs": 7}  # --epochs wins over --set
    with pytest.raises(ConfigError, match="unknown table"):
        (tmp_path / "bad.toml").write_text("[optim]\nlr = 1\n")
        train_config.load_toml(tmp_path / "bad.toml")


def test_field_problems_check_each_value_alone() -> None:
    """Unknown names and wrongly typed values, worded as ``override`` words them; no check
    between fields (``d`` alone, whatever ``heads`` will be)."""
    cls = MEAConfig
    assert cls.field_problems({"d": 30, "dropout": 0.1}) == []
    assert cls.field_problems({"d": "abc", "zz": 1}) == [
        f"unknown field zz (valid fields: {', '.join(cls.field_names())})",
        "d must be an integer, not 'abc'",
    ]
    with pytest.raises(ConfigError, match="d must be an integer, not 'abc'"):
        MEAConfig().override({"d": "abc"})
