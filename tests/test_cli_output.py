"""What the ``mea`` process prints and returns when nobody watches a terminal: help and messages
keep their brackets, tables are not cropped when piped, Ctrl-C and SIGTERM end any command with
one line, their own exit code and no file left behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gates import gate_env, wait_blocked

MEA = [sys.executable, "-m", "mea_cli"]
ENV = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MEA, *args], capture_output=True, text=True, env=ENV, timeout=120)


def test_help_shows_its_brackets_whole() -> None:
    r = run("extract", "--help")
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())  # help may wrap lines; it must not drop text
    assert "[default: OUT.cache]" in text and "video,start,end,label[,split]" in text
    assert "[default: 15, the CMU features' rate; --face-opt fps=native: every frame]" in text
    assert "…" not in r.stdout
    r = run("import", "--help")
    assert "[default: the labels' dimension names]" in " ".join(r.stdout.split())
    assert "cuda:N" in run("train", "--help").stdout


def test_messages_show_their_brackets(tmp_path: Path) -> None:
    odd = tmp_path / "clip[asr].h5"
    r = run("info", str(odd))
    assert r.returncode == 2 and r.stderr.strip() == f"error: {odd}: no such feature store"


def test_piped_tables_are_not_cropped(tmp_path: Path) -> None:
    """``mea info --model`` prints a table whose rows are wider than 80 columns; through a pipe
    each row must stay one whole line (Rich would crop it to 80 columns with an ellipsis)."""
    r = run("info", "--model", "mea", "--dataset", "mosi")
    assert r.returncode == 0, r.stderr
    assert "…" not in r.stdout
    widest = max(len(line) for line in r.stdout.splitlines())
    assert widest > 80, widest  # the case this test is about
    rows = [line for line in r.stdout.splitlines() if "discriminators D_i, D_m (Eq. 15-16)" in line]
    assert len(rows) == 1 and rows[0].rstrip().endswith("│")


@pytest.mark.parametrize("columns", ["0", "-5", "wide"])
def test_a_columns_that_is_not_a_width_is_ignored(tmp_path: Path, columns: str) -> None:
    """``COLUMNS=0`` made Rich print nothing at all: the error line was lost (exit 2, empty
    stderr), and so were ``mea info``'s tables."""
    env = {**ENV, "COLUMNS": columns}
    missing = tmp_path / "missing.h5"
    r = subprocess.run([*MEA, "info", str(missing)], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and r.stderr.strip() == f"error: {missing}: no such feature store"
    r = subprocess.run(
        [*MEA, "info", "--model", "mea", "--dataset", "mosi"], capture_output=True, text=True,
        env=env, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    rows = [line for line in r.stdout.splitlines() if "discriminators D_i, D_m (Eq. 15-16)" in line]
    assert len(rows) == 1 and rows[0].rstrip().endswith("│")  # whole, as when COLUMNS is unset


@pytest.mark.parametrize(("sig", "code", "word"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_interrupted_command_says_so_and_leaves_nothing(tmp_path: Path, sig, code, word) -> None:
    out = tmp_path / "big.h5"
    gate = tmp_path.parent / f"{tmp_path.name}-gate"  # held after 500 samples, mid-write
    proc = subprocess.Popen(
        [*MEA, "synth", "--like", "mosei", "--n", "2000", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=gate_env(gate, "sample", 500, ENV),
    )  # fmt: skip
    try:
        wait_blocked(gate, proc)
        assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # being written
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == code, stderr
    lines = [x for x in stderr.splitlines() if x.strip()]
    # plain progress lines (stderr is not a terminal), then the one-line message
    assert "Traceback" not in stderr and lines[-1] == (
        f"{word} ({'Ctrl-C' if sig == signal.SIGINT else 'SIGTERM'})"
    ), stderr
    assert all(x.startswith("synth-mosei: ") for x in lines[:-1]), stderr
    assert list(tmp_path.iterdir()) == [], list(tmp_path.iterdir())


def test_an_interrupt_inside_a_finaliser_is_deferred_not_lost() -> None:
    """CPython drops an exception raised in ``__del__`` or a weakref callback ("Exception
    ignored"); a stop signal arriving there must be retried, not raised into the void."""
    from mea_cli import interrupt

    seen = {}

    class Finalised:
        def __del__(self) -> None:
            seen["del"] = interrupt._swallowed_here(sys._getframe())

    Finalised()  # collected at once: __del__ runs
    assert seen["del"] is True
    assert interrupt._swallowed_here(sys._getframe()) is False
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM)}
    try:
        interrupt.install()
        received = list(interrupt._received)
        with pytest.raises(KeyboardInterrupt):  # ordinary code: raised at once
            interrupt._stop(signal.SIGTERM, sys._getframe())
        assert interrupt.received() == signal.SIGTERM

        class Deferred:
            def __del__(self) -> None:
                interrupt._stop(signal.SIGINT, sys._getframe())  # must not raise here

        Deferred()
        with pytest.raises(KeyboardInterrupt):  # ... but from the retry alarm (in 20 ms)
            time.sleep(120)  # a bound on a hang, not on the machine's speed
        interrupt._received[:] = received
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for s, handler in before.items():
            signal.signal(s, handler)


def test_no_markup_tags_or_escapes_in_printed_text() -> None:
    """The ``mea`` consoles print text as it is (``markup=False``), so a ``[bold]...[/]`` tag
    or a ``rich.markup.escape`` would show up literally; style with ``Text`` / ``style=``."""
    root = Path(__file__).resolve().parents[1] / "mea_cli"
    offenders = []
    for path in sorted(root.rglob("*.py")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "rich.markup" in line or "[/]" in line:
                offenders.append(f"{path.relative_to(root)}:{n}: {line.strip()}")
    assert offenders == []


@pytest.mark.parametrize(
    "args", [("--version",), ("info", "STORE"), ("info", "STORE", "--json"), ("info", "--model", "mea", "--json")]
)
def test_a_full_stdout_is_one_line_not_a_traceback(synth_mosi: Path, args: tuple[str, ...]) -> None:
    """``> /dev/full`` (a full disk behind stdout): JSON dumps and Rich tables alike used to end
    in a traceback (exit 1) from wherever the write happened."""
    argv = [str(synth_mosi) if a == "STORE" else a for a in args]
    with open("/dev/full", "w") as full:
        r = subprocess.run([*MEA, *argv], stdout=full, stderr=subprocess.PIPE, text=True, env=ENV,
                           timeout=120)  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == (
        "error: standard output (/dev/full): cannot write the command's output: no space left on device"
    )


def test_a_reader_that_stops_ends_the_command_quietly() -> None:
    """``mea ... | head``: a closed pipe is no error of the user's or of mea: exit 141 (as a
    program ended by SIGPIPE), nothing on stderr (Rich's own answer was a bare exit 1, a JSON
    dump's a traceback)."""
    p = subprocess.Popen([*MEA, "info", "--model", "mea", "--json"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=ENV)  # fmt: skip
    p.stdout.close()  # before the child prints anything: its first write finds no reader
    err = p.stderr.read()
    assert p.wait(timeout=120) == 141, err
    assert err == ""


def test_a_narrow_page_still_shows_every_value_of_a_table(synth_mosi: Path) -> None:
    """``COLUMNS=20``: Rich squeezed the tables to 20 columns, every cell empty or cropped to
    "…"; stdout's tables are laid out for at least 80 columns (the terminal wraps the rest)."""
    env = {**ENV, "COLUMNS": "20"}
    r = subprocess.run([*MEA, "info", str(synth_mosi)], capture_output=True, text=True, env=env,
                       timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "…" not in r.stdout
    row = [line for line in r.stdout.splitlines() if "│ vision" in line]
    assert len(row) == 1 and row[0].split("│")[2].strip() == "35", r.stdout  # its D
    r = subprocess.run([*MEA, "info", "--model", "mea"], capture_output=True, text=True, env=env,
                       timeout=120)  # fmt: skip
    rows = [line for line in r.stdout.splitlines() if "discriminators D_i, D_m (Eq. 15-16)" in line]
    assert len(rows) == 1 and re.search(r"│ +[\d,]+ │ +[\d.]+% │", rows[0]), r.stdout


_STOP_WHILE_LOADING = """
import sys


class Stop:  # Ctrl-C while the command line's modules load
    def find_spec(self, name, path, target=None):
        if name == "mea_cli.cli":
            raise KeyboardInterrupt


sys.meta_path.insert(0, Stop())
from mea_cli.__main__ import main

main()
"""


def test_ctrl_c_while_the_command_line_loads_is_one_line() -> None:
    """The first few tenths of a second (importing mea_cli.cli) printed Python's traceback."""
    done = subprocess.run(
        [sys.executable, "-c", _STOP_WHILE_LOADING], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 130, done.stderr
    assert done.stderr == "interrupted (Ctrl-C)\n", done.stderr
    project = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert '\nmea = "mea_cli.__main__:main"\n' in project  # the script goes through it


def test_an_ignored_sigint_stays_ignored() -> None:
    """A background job of a non-interactive shell starts with SIGINT ignored; installing the
    handlers turned Ctrl-C back on for it (Python itself leaves it ignored)."""
    code = (
        "import signal; from mea_cli import interrupt; interrupt.install(); "
        "print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN, "
        "signal.getsignal(signal.SIGTERM) is interrupt._stop)"
    )

    def ignore_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
        preexec_fn=ignore_sigint,
    )  # fmt: skip
    assert done.stdout.split() == ["True", "True"], done.stdout + done.stderr
    plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert plain.stdout.split() == ["False", "True"], plain.stdout + plain.stderr
