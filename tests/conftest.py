"""Shared fixtures: every test makes its own data (no network, no downloads)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mea_cli.data.synth import write_synthetic


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
