"""Labels files as spreadsheets and hands really write them (an audit of Excel, LibreOffice,
Google Sheets, pandas and R exports): each reads as its author meant, or is refused in one
line naming the file, the line and what to do -- never read as something else."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from mea_cli.extract.labelparse import LabelsError, LabelSpec
from mea_cli.extract.labels import LabelFile, read_labels


def _write(tmp_path: Path, text: str | bytes, name: str = "labels.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


def _read(tmp_path: Path, text: str | bytes, spec: LabelSpec | None = None) -> LabelFile:
    return read_labels(_write(tmp_path, text), spec)


def _values(f: LabelFile) -> np.ndarray:
    """``[N, K]``: each segment's label, in file order."""
    return np.stack([s.label for s in f.segments])


@pytest.mark.parametrize(
    ("text", "meant"),
    [
        ("video,label\r\na,\u22120.5\r\nb,\u22121.5\r\nc,2\r\n", [-0.5, -1.5, 2.0]),  # Word's minus
        ("\ufeffvideo,label\r\na,0.5\r\nb,.5\r\nc,+1e-1\r\n", [0.5, 0.5, 0.1]),  # Excel CSV UTF-8
    ],
)
def test_numbers_read_as_numbers(tmp_path: Path, text: str, meant: list[float]) -> None:
    f = _read(tmp_path, text)
    assert f.task == "regression"
    assert [float(v) for v in _values(f)[:, 0]] == pytest.approx(meant)


@pytest.mark.parametrize(
    ("cells", "shown"),
    [
        (['"0,5"', '"-1,5"', '"2,25"'], "'0,5'"),  # LibreOffice quote-all, a decimal comma
        (['"1,000"', '"2,500"', '"12,000"'], "'1,000'"),  # thousands separators
        (["50%", "20%", "10%"], "'50%'"),  # percentages
    ],
)
def test_numbers_as_a_spreadsheet_shows_them_are_refused(
    tmp_path: Path, cells: list[str], shown: str
) -> None:
    rows = "".join(f"{v},{c}\n" for v, c in zip("abc", cells, strict=True))
    with pytest.raises(LabelsError, match=rf"line 2 \({shown}\).*write plain numbers"):
        _read(tmp_path, "video,label\n" + rows)


@pytest.mark.parametrize(
    "cells",
    [
        ['a, "pos"', 'b, "neg"', "c, pos"],  # a space after the comma, then a quoted value
        ["a,pos\u200b", "b,neg", "c,pos"],  # a zero-width space from copy and paste
        ["a,col\u00e8re", "b,joie", "c,cole\u0300re"],  # NFC and NFD (macOS) spellings
    ],
)
def test_one_class_however_its_name_was_typed(tmp_path: Path, cells: list[str]) -> None:
    f = _read(tmp_path, "video,label\n" + "\n".join(cells) + "\n")
    assert f.task == "multiclass" and len(f.label_names) == 2, f.label_names
    y = _values(f)
    assert y[0].argmax() == y[2].argmax() != y[1].argmax()


def test_numeric_classes_are_one_class_per_value(tmp_path: Path) -> None:
    f = _read(tmp_path, "video,label\na,1\nb,1.0\nc,2\nd,02\n", LabelSpec(task="multiclass"))
    assert f.label_names == ("1", "2")
    assert [int(r.argmax()) for r in _values(f)] == [0, 0, 1, 1]


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ("video;label\na;0,5\nb;1,5\n", r"line 1: the header is split by semicolons, not commas"),
        ("video\tlabel\na\t0.5\nb\t1.5\n", r"line 1: the header is split by tabs"),
        ("video,label\na,happy\nb,sad\n".encode("utf-16"), r"UTF-16 text .*'CSV UTF-8'"),
        ("video,label\na,happy\nb,col\u00e8re\n".encode("latin-1"), r"line 3: not UTF-8 .*Latin-1"),
        ("video,start,end,label\na,NaN,1,0.5\nb,0,2,1\n", r"line 2: start 'NaN' is not a number"),
        ("video,label\na,1_5\nb,2\nc,3\n", r"line 2 \('1_5'\) is not a number"),
    ],
)
def test_refused_in_one_line_that_says_why(tmp_path: Path, data: str | bytes, match: str) -> None:
    with pytest.raises(LabelsError, match=match) as err:
        _read(tmp_path, data)
    assert "\n" not in str(err.value) and "labels.csv" in str(err.value)


def test_a_line_separator_inside_a_cell_does_not_break_its_row(tmp_path: Path) -> None:
    """``str.splitlines`` would end a row at U+2028 or a form feed; the file's own line breaks
    are ``\\n``, ``\\r\\n`` and ``\\r`` only, so the line numbers stay the file's."""
    f = _read(tmp_path, "video,note,label\na,x\u2028y,0.5\nb,p\x0cq,1.5\nc,,2\n")
    assert [float(v) for v in _values(f)[:, 0]] == [0.5, 1.5, 2.0]
    assert not any(math.isnan(s.start) for s in f.segments)
