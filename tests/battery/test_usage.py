"""Usage errors through the real entry point, every command: an unknown option (with click's
hint at the option meant), a missing argument or option, a bare command. Each is one line on
stderr naming the command, exit 2, no traceback, nothing created; ``--help`` and ``--version``
still exit 0. Whatever click parses (typer's bundled copy ``typer._click`` or the ``click``
package), these hold: the error classes of both are caught (mea_cli.cli.main)."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from tests.battery.harness import assert_refused, mea, snapshot

# The kinds of usage error (an unknown option, an unknown command, an option without its value,
# --help / --version, a bare `mea`) start a fresh interpreter each: the real start-up, as a shell
# sees it. The many cases per command (near misses, missing arguments, --help) run in a child
# of the warm interpreter (tests/warm.py): the same entry point and parser, without the start-up.
fresh_mea = functools.partial(mea, fresh=True)

COMMANDS = [
    "extract", "merge", "align", "import", "synth", "info", "train",
    "eval", "predict", "ablate", "sweep", "tune", "compare", "viz",
]  # fmt: skip

# a near miss of a real option of each command -> the option click suggests
NEAR_MISS = {
    "extract": ("--worker", "--workers"),
    "merge": ("--outt", "--out"),
    "align": ("--reduc", "--reduce"),
    "import": ("--datset", "--dataset"),
    "synth": ("--seeed", "--seed"),
    "info": ("--jsn", "--json"),
    "train": ("--epoch", "--epochs"),
    "eval": ("--splt", "--split"),
    "predict": ("--ckp", "--ckpt"),
    "ablate": ("--seed", "--seeds"),
    "sweep": ("--seed", "--seeds"),
    "tune": ("--trial", "--trials"),
    "compare": ("--model", "--models"),
    "viz": ("--wat", "--what"),
}

# what each command misses when given only the arguments before it, and the word that says so
MISSING = [
    ("extract", [], "videos"),
    ("extract", ["clips"], "--out"),
    ("merge", [], "stores"),
    ("merge", ["a.h5"], "--out"),
    ("align", [], "store"),
    ("align", ["s.h5"], "--out"),  # --to has a default: words, the one target
    ("import", [], "kind"),
    ("import", ["mult"], "src"),
    ("import", ["mult", "src.pkl"], "--out"),
    ("synth", [], "--out"),
    ("eval", [], "ckpt"),
    ("predict", [], "clips"),
    ("predict", ["clips"], "--ckpt"),
    ("sweep", [], "settings"),
    ("tune", [], "features"),
    ("compare", [], "features"),
    ("compare", ["s.h5"], "--dataset"),
    ("compare", ["s.h5", "--dataset", "mosi"], "--models"),
    ("viz", [], "ckpt"),
    ("viz", ["ckpt.pt"], "--what"),
]


def test_every_command_is_covered() -> None:
    """The lists above name every command of the CLI (a new command must join them)."""
    from mea_cli.cli import app

    names = {c.name or c.callback.__name__ for c in app.registered_commands}
    assert names == set(COMMANDS) == set(NEAR_MISS)


@pytest.mark.parametrize("command", COMMANDS)
def test_unknown_option_is_one_line_naming_the_command(command: str, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    line = assert_refused(
        fresh_mea(command, "--no-such-option", cwd=tmp_path),
        ["no such option", "--no-such-option"],
        before, [tmp_path],
    )  # fmt: skip
    assert line.startswith(f"error: mea {command}:"), line


@pytest.mark.parametrize("command", COMMANDS)
def test_a_near_miss_keeps_the_hint_at_the_option_meant(command: str, tmp_path: Path) -> None:
    typo, meant = NEAR_MISS[command]
    line = assert_refused(mea(command, typo, cwd=tmp_path), ["no such option", typo])
    # click: "Did you mean --epochs?"; typer's bundled click: "(Possible options: --epochs)"
    hint = line.split(f"{typo} ", 1)[1]
    assert meant in hint, line


@pytest.mark.parametrize(("command", "given", "missing"), MISSING)
def test_missing_argument_or_option(command: str, given: list[str], missing: str,
                                    tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    line = assert_refused(mea(command, *given, cwd=tmp_path), ["missing", missing], before,
                          [tmp_path])
    assert line.startswith(f"error: mea {command}:"), line


@pytest.mark.parametrize(("command", "says"), [
    ("info", "exactly one of FILE"),
    ("train", "needs FEATURES"),
    ("ablate", "no runs yet"),
])  # fmt: skip
def test_commands_without_required_arguments_say_what_they_need(command: str, says: str,
                                                                tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    assert_refused(mea(command, cwd=tmp_path), [says], before, [tmp_path])


def test_an_unknown_command_is_one_line(tmp_path: Path) -> None:
    line = assert_refused(fresh_mea("trian", cwd=tmp_path), ["no such command", "trian"])
    assert line.startswith("error: mea:"), line


def test_an_option_without_its_value_is_one_line(tmp_path: Path) -> None:
    assert_refused(fresh_mea("train", "--epochs", cwd=tmp_path),
                   ["--epochs", "requires an argument"])


@pytest.mark.parametrize("command", COMMANDS)
def test_help_still_exits_0(command: str, tmp_path: Path) -> None:
    result = mea(command, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout and command in result.stdout, result.stdout
    assert result.stderr == ""


def test_version_and_top_level_help_exit_0(tmp_path: Path) -> None:
    from mea_cli import __version__

    version = fresh_mea("--version", cwd=tmp_path)
    assert (version.returncode, version.stdout.strip()) == (0, f"mea-cli {__version__}")
    top = fresh_mea("--help", cwd=tmp_path)
    assert top.returncode == 0 and all(c in top.stdout for c in COMMANDS), top.stdout


def test_bare_mea_shows_the_help_without_a_traceback(tmp_path: Path) -> None:
    result = fresh_mea(cwd=tmp_path)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert "Usage: " in result.stdout + result.stderr
    assert result.returncode in (0, 2)  # click >= 8.2 (and typer's copy): 2; click 8.1: 0
