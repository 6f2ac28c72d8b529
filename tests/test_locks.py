"""``mea_cli.locks``: one holder per run folder, stale temporary files of our own naming only."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from mea_cli.errors import MeaError
from mea_cli.locks import LOCK_NAME, InUseError, hold, share, stale_temps
from mea_cli.paths import atomic_output


def _files(folder: Path, names: list[str]) -> list[Path]:
    for n in names:
        (folder / n).write_text("x")
    return [folder / n for n in names]


OURS = [".ckpt.pt.0123abcd.tmp", ".log.jsonl.deadbeef.tmp", ".a b.h5.00000000.tmp"]
THEIRS = ["notes.tmp", ".ckpt.pt.tmp", ".ckpt.pt.0123ABCD.tmp", ".x.0123abc.tmp", "ckpt.pt.0123abcd.tmp",
          ".x.0123abcd.tmp.bak"]  # fmt: skip


def test_the_pattern_is_atomic_outputs_own(tmp_path: Path) -> None:
    with atomic_output(tmp_path / "store.h5") as tmp:  # the real temporary name matches
        assert stale_temps(tmp_path) == [tmp]
    _files(tmp_path, OURS + THEIRS)
    assert sorted(p.name for p in stale_temps(tmp_path)) == sorted(OURS)
    assert [p.name for p in stale_temps(tmp_path, "ckpt.pt")] == [".ckpt.pt.0123abcd.tmp"]


def test_hold_refuses_a_second_holder_and_cleans_when_alone(tmp_path: Path) -> None:
    ours, theirs = _files(tmp_path, OURS), _files(tmp_path, THEIRS)
    with hold(tmp_path, "run") as removed:
        assert sorted(removed) == sorted(ours) and all(p.exists() for p in theirs)
        assert (tmp_path / LOCK_NAME).read_text().split()[0] == str(os.getpid())
        with pytest.raises(InUseError, match=rf"in use by process {os.getpid()} on "), hold(tmp_path):
            pass
    with hold(tmp_path, "run"):  # released on exit: held again
        pass


def test_a_refusal_inside_leaves_the_lock_file_as_found(tmp_path: Path) -> None:
    (tmp_path / LOCK_NAME).write_text("123 elsewhere\n")
    with pytest.raises(MeaError), hold(tmp_path):
        raise MeaError("refused")
    assert (tmp_path / LOCK_NAME).read_text() == "123 elsewhere\n"
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    with pytest.raises(MeaError), hold(fresh):
        raise MeaError("refused")
    assert list(fresh.iterdir()) == []


def test_share_cleans_only_when_nobody_else_uses_the_folder(tmp_path: Path) -> None:
    cache, out = tmp_path / "cache", tmp_path / "out.h5"
    cache.mkdir()
    ours = _files(cache, [".0123.npz.0badf00d.tmp"]) + _files(tmp_path, [".out.h5.12345678.tmp"])
    other = _files(tmp_path, [".other.h5.12345678.tmp"])
    fd = os.open(cache / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # another extraction at work on this cache
        with share(cache, targets=[out]) as removed:
            assert removed == [] and all(p.exists() for p in ours)
    finally:
        os.close(fd)
    with share(cache, targets=[out]) as removed:  # alone now
        assert sorted(removed) == sorted(ours) and all(p.exists() for p in other)
        with share(cache, targets=[out]) as again:  # a second sharer is let in, cleans nothing
            assert again == []
