"""``mea info`` and ``mea synth`` from the command line, including every kind of bad input."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import h5py
import warm


def mea(*args: str) -> subprocess.CompletedProcess[str]:
    return warm.run(list(args))


def test_synth_then_info(tmp_path: Path) -> None:
    out = tmp_path / "s.h5"
    r = mea("synth", "--like", "iemocap", "--n", "12", "--seed", "3", "--out", str(out))
    assert r.returncode == 0, r.stderr
    r = mea("info", str(out))
    assert r.returncode == 0, r.stderr
    assert "synth-iemocap" in r.stdout and "synthetic" in r.stdout and "happy" in r.stdout
    r = mea("info", str(out), "--json")
    summary = json.loads(r.stdout)
    assert summary["samples"] == 12 and summary["synthetic"] is True
    assert summary["modalities"]["audio"]["dim"] == 74
    assert sum(summary["splits"].values()) == 12


def test_a_warm_child_prints_what_a_fresh_interpreter_prints(synth_mosi: Path, tmp_path: Path) -> None:
    """tests/warm.py forks commands from one warm interpreter per start-up environment, whatever
    their ``COLUMNS`` and ``NO_COLOR`` (``warm.REMADE``): a child's consoles are made in its
    own environment, so a table wrapped at 60 columns or whole when piped, and an error line
    red or plain bold under ``FORCE_COLOR``, are what a fresh interpreter prints."""
    base = {k: v for k, v in os.environ.items() if k not in warm.CONSOLE or k == "TERM"}
    missing = str(tmp_path / "missing.h5")
    outs = {}
    for name, extra, store in (
        ("piped", {}, str(synth_mosi)), ("60", {"COLUMNS": "60"}, str(synth_mosi)),
        ("red", {"FORCE_COLOR": "1"}, missing),
        ("bold", {"FORCE_COLOR": "1", "NO_COLOR": "1"}, missing),
    ):  # fmt: skip
        child = warm.run(["info", store], env=base | extra)
        fresh = warm.run(["info", store], env=base | extra, fresh=True)
        assert (child.returncode, child.stdout, child.stderr) == (
            fresh.returncode, fresh.stdout, fresh.stderr), name  # fmt: skip
        outs[name] = child.stdout + child.stderr
    assert outs["piped"] != outs["60"] and "\x1b[" not in outs["piped"]
    assert "\x1b[1;31merror:" in outs["red"] and "\x1b[1merror:" in outs["bold"]


def _assert_one_clear_line(r: subprocess.CompletedProcess[str], path: Path, words: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, r.stderr
    assert str(path.name) in lines[0] and words in lines[0], lines[0]


def test_info_on_bad_inputs(tmp_path: Path, synth_mosi: Path) -> None:
    missing = tmp_path / "missing.h5"
    _assert_one_clear_line(mea("info", str(missing)), missing, "no such feature store")
    text = tmp_path / "notes.txt"
    text.write_text("not hdf5\n")
    _assert_one_clear_line(mea("info", str(text)), text, "not a readable HDF5")
    cut = tmp_path / "cut.h5"
    cut.write_bytes(synth_mosi.read_bytes()[:4096])
    _assert_one_clear_line(mea("info", str(cut)), cut, "not a readable HDF5")
    # bytes overwritten on disk where /vision/offsets lives: a readable HDF5 file whose store
    # invariant is broken; the one right answer is exit 2 naming the broken dataset
    with h5py.File(synth_mosi, "r") as f:
        where, size = f["vision/offsets"].id.get_offset(), f["vision/offsets"].id.get_storage_size()
    assert where is not None and size > 16  # contiguous storage, so the bytes are at `where`
    corrupt = tmp_path / "corrupt.h5"
    data = bytearray(synth_mosi.read_bytes())
    data[where + 8 : where + 16] = b"\xff" * 8  # offsets[1] = -1
    corrupt.write_bytes(bytes(data))
    _assert_one_clear_line(mea("info", str(corrupt)), corrupt, "/vision/offsets is not monotone")


def test_version_and_help() -> None:
    assert mea("--version").stdout.startswith("mea-cli ")
    r = mea("--help")
    assert r.returncode == 0 and "synth" in r.stdout and "info" in r.stdout
