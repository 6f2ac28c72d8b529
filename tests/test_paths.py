"""mea_cli.paths: checked outputs and inputs, atomic writes with umask permissions."""

from __future__ import annotations

import os
import pathlib
import stat

import pytest

from mea_cli.paths import (
    PathError,
    atomic_output,
    check_input_file,
    check_output_dir,
    check_output_file,
    ensure_dir,
    file_sha256,
    write_json,
    write_text,
)


def test_output_file_problems(tmp_path):
    afile = tmp_path / "f.txt"
    afile.write_text("x")
    with pytest.raises(PathError, match="existing directory"):
        check_output_file(tmp_path)
    with pytest.raises(PathError, match="is a file, not a directory"):
        check_output_file(afile / "out.h5")
    with pytest.raises(PathError, match="does not exist"):
        check_output_file(tmp_path / "missing" / "deeper" / "out.h5")
    assert not (tmp_path / "missing").exists()
    assert check_output_file(tmp_path / "ok.h5") == tmp_path / "ok.h5"


def test_output_file_unwritable(tmp_path):
    if os.geteuid() == 0:  # root writes through permissions; a pseudo file system refuses it
        target = "/sys/mea-test.h5"
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        target = ro / "x.h5"
    with pytest.raises(PathError, match="not writable"):
        check_output_file(target)
    with pytest.raises(PathError, match="not writable"):
        check_output_dir("/sys" if os.geteuid() == 0 else target.parent)


def test_special_files_are_refused_and_links_written_through(tmp_path: pathlib.Path) -> None:
    """The output is written beside its path and renamed over it: as root that replaced
    /dev/null, a FIFO or a socket by a regular file; a symbolic link was replaced by the file
    instead of the file it points at being written."""
    import socket

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "to-fifo").symlink_to(fifo)
    sock = tmp_path / "s.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock))
    try:
        for path, kind in (
            (fifo, "a FIFO"), (tmp_path / "to-fifo", "a FIFO"), (sock, "a socket"),
            (pathlib.Path("/dev/null"), "a character device"),
        ):  # fmt: skip
            with pytest.raises(PathError, match=f"is {kind}.*not a regular file"):
                check_output_file(path)
            with pytest.raises(PathError, match=f"is {kind}"), atomic_output(path) as tmp:
                tmp.write_text("x")
    finally:
        server.close()
    assert stat.S_ISFIFO(fifo.stat().st_mode) and stat.S_ISSOCK(sock.stat().st_mode)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    real, link = tmp_path / "real.csv", tmp_path / "link.csv"
    real.write_text("old")
    link.symlink_to(real)
    with atomic_output(link) as tmp:
        tmp.write_text("new")
    assert link.is_symlink() and real.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "fifo", "link.csv", "real.csv", "s.sock", "to-fifo"
    ]


def test_output_dir_and_ensure(tmp_path):
    afile = tmp_path / "f"
    afile.write_text("x")
    with pytest.raises(PathError, match="is a file"):
        check_output_dir(afile)
    with pytest.raises(PathError, match="does not exist"):
        ensure_dir(tmp_path / "a" / "b")
    assert not (tmp_path / "a").exists()
    assert ensure_dir(tmp_path / "a").is_dir()


def test_input_file(tmp_path):
    with pytest.raises(PathError, match="no such"):
        check_input_file(tmp_path / "nope")
    with pytest.raises(PathError, match="is a directory"):
        check_input_file(tmp_path)
    empty = tmp_path / "e"
    empty.write_bytes(b"")
    with pytest.raises(PathError, match="empty"):
        check_input_file(empty)
    assert check_input_file(empty, allow_empty=True) == empty


def test_atomic_output_success_failure_and_mode(tmp_path):
    target = tmp_path / "out.bin"
    old = os.umask(0o022)
    try:
        with atomic_output(target) as tmp:
            assert tmp.exists() and tmp.parent == tmp_path and tmp != target
            tmp.write_bytes(b"abc")
            assert not target.exists()
    finally:
        os.umask(old)
    assert target.read_bytes() == b"abc"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    with pytest.raises(KeyboardInterrupt), atomic_output(target) as tmp:
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt
    assert target.read_bytes() == b"abc"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_write_json_strict_and_sha(tmp_path):
    p = write_json(tmp_path / "a.json", {"x": 1})
    assert p.read_text() == '{\n  "x": 1\n}\n'
    with pytest.raises(ValueError):
        write_json(tmp_path / "b.json", {"x": float("nan")})
    assert not (tmp_path / "b.json").exists()
    assert file_sha256(p) == "c5e1c113d5c75240d109ea470244fa988c5d9970f26bdbbb885876ae1da9d2d7"


def test_a_killed_writers_temp_file_is_removed_by_the_next_write(tmp_path: pathlib.Path) -> None:
    """kill -9 skips atomic_output's clean-up; the next write of the same output removes the
    leftover (nobody holds its lock), keeps a live writer's and a look-alike of another name."""
    import fcntl
    import struct

    out = tmp_path / "s.h5"
    dead = tmp_path / ".s.h5.0123abcd.tmp"
    dead.write_bytes(b"half")
    live = tmp_path / ".s.h5.89abcdef.tmp"
    live.write_bytes(b"writing")
    other = tmp_path / ".t.h5.0123abcd.tmp"
    other.write_bytes(b"another output's")
    held = os.open(live, os.O_RDWR)  # a live writer: its open-file-description lock
    fcntl.fcntl(held, fcntl.F_OFD_SETLK, struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
    try:
        write_text(out, "done")
    finally:
        os.close(held)
    assert out.read_text() == "done"
    assert not dead.exists() and live.exists() and other.exists()
