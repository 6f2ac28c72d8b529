"""Shared fixtures: every test makes its own data (no network, no downloads)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest
import torch

from mea_cli import cli
from mea_cli.data.synth import write_synthetic

TESTS = Path(__file__).resolve().parent

# A test run started in the background of a non-interactive shell (`make test &`, some CI
# runners) inherits SIGINT ignored, and so would every `mea` child a test starts: the commands
# honour an ignored SIGINT as Python does, so the tests that stop a child with Ctrl-C's signal
# need it back. A handler (not SIG_IGN) here makes each child start with SIGINT's default.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# The files that take longest (pytest --durations on 2 cores), started first: with
# ``--dist loadfile`` a file stays on one worker, and a long file drawn last leaves the other
# core idle while it runs (longest-first packing). A stale entry only costs time, never a result.
LONGEST_FIRST = (
    "test_compare_models.py", "battery/test_processes.py", "test_real_clips.py",
    "test_train_e2e.py", "test_train_resume.py", "test_extract_pipeline.py",
    "battery/test_diskfull.py", "test_ablate_e2e.py", "test_model_mult.py", "test_predict.py",
    "test_docs_examples.py", "test_demo.py", "test_train_errors.py",
)  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the files of ``LONGEST_FIRST`` first, in that order; the sort is stable, so the order
    of the tests inside a file and of every other file is kept."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.relative_to(TESTS).as_posix(), len(rank)))


@pytest.fixture
def one_torch_thread():
    """Tiny tensors: one intra-op thread is faster, and immune to a busy 2-core machine
    (OpenMP threads spinning against other processes made a step 100x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def synth_mosi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic MOSI-shaped store (shared, read-only)."""
    path = tmp_path_factory.mktemp("synth") / "mosi.h5"
    write_synthetic(path, "mosi", n=48, seed=3, max_seconds=4.0)
    return path


@pytest.fixture(scope="session")
def synth_iemocap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic IEMOCAP-shaped store (shared, read-only)."""
    path = tmp_path_factory.mktemp("synth") / "iemocap.h5"
    write_synthetic(path, "iemocap", n=48, seed=4, max_seconds=4.0)
    return path


@pytest.fixture
def mea(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """Run ``mea ARGS`` in-process through ``cli.main`` (the entry point of the ``mea`` script,
    so the exit code is the one a shell sees); return (exit code, stdout, stderr)."""
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGALRM)
    before = {sig: signal.getsignal(sig) for sig in signals}  # main() installs its own

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["mea", *args])
        with pytest.raises(SystemExit) as stop:
            cli.main()
        out, err = capsys.readouterr()
        return stop.value.code, out, err

    yield run
    for sig, handler in before.items():
        signal.signal(sig, handler)
