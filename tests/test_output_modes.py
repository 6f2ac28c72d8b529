"""Every writer outside the feature store goes through ``mea_cli.paths``: complete files only,
the process umask's permissions (no 0600 PNGs beside 0644 JSON), no parent directory created
behind the user's back, the latest-run link replaced atomically."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from mea_cli import paths
from mea_cli.ablate.table import build_table
from mea_cli.artifacts.checkpoint import atomic_torch_save
from mea_cli.paths import PathError
from mea_cli.train import runs
from mea_cli.viz.figures import new_figure, save_npz, save_png


def _write_everything(d: Path) -> list[Path]:
    from mea_cli.ablate.api import write_tables

    atomic_torch_save({"w": torch.zeros(2)}, d / "ckpt.pt")
    paths.write_json(d / "metrics.json", {"mae": float("nan")}, nan="null")
    fig, axes = new_figure(2, 2)
    axes[0, 0].plot([0, 1])
    save_png(fig, d / "viz" / "curves.png")  # creates the picture folder (one level)
    save_npz(d / "viz" / "tsne.npz", x=np.zeros(3))
    table = build_table("t", [("full", "Full", "", {1: {"mae": 1.0}})], ["mae"])
    files = write_tables(table, d, "ablation")
    return [d / "ckpt.pt", d / "metrics.json", d / "viz" / "curves.png", d / "viz" / "tsne.npz",
            *files.values()]  # fmt: skip


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_outputs_get_umask_permissions(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        written = _write_everything(tmp_path)
    finally:
        os.umask(old)
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path
    assert runs.read_json(tmp_path / "metrics.json") == {"mae": None}  # strict JSON
    hidden = list(tmp_path.rglob(".*"))
    assert hidden == [], hidden  # no temporary file left


def test_no_parent_is_created_for_an_output(tmp_path: Path) -> None:
    with pytest.raises(PathError, match="does not exist"):
        atomic_torch_save({"w": torch.zeros(1)}, tmp_path / "missing" / "ckpt.pt")
    with pytest.raises(PathError, match="does not exist"):
        paths.write_json(tmp_path / "missing" / "config.json", {}, nan="null")
    fig, _ = new_figure(1, 1)
    with pytest.raises(PathError, match="does not exist"):
        save_png(fig, tmp_path / "missing" / "deeper" / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_latest_link_replaced_and_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        runs.update_latest(tmp_path, tmp_path / name)
        assert (tmp_path / "latest").is_symlink()
        assert runs.resolve_run(tmp_path, None) == (tmp_path / name).resolve()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "latest"]
    # where a symlink cannot be made, a text file names the run
    (tmp_path / "latest").unlink()

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("symlinks not supported here")

    monkeypatch.setattr(os, "symlink", refuse)
    runs.update_latest(tmp_path, tmp_path / "a")
    assert (tmp_path / "latest").read_text() == "a\n" and not (tmp_path / "latest").is_symlink()
    assert runs.resolve_run(tmp_path, None) == tmp_path / "a"
