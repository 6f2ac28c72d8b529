"""Battery, labels: a labels file that names one segment on two lines is refused with both
line numbers, before any video is read: in one split it is a duplicated row (counted twice),
in two splits it is leakage (a test sample also trained on). One line, exit 2, no store, no
extraction cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from battery.harness import assert_refused, mea, snapshot

CASES = {
    "same-row-twice": (
        "video,start,end,label,split\na,0,1,0.5,train\nb,0,1,1.0,train\na,0,1,0.5,train\n",
        ("duplicated", "line 4", "line 2"),
    ),
    "same-segment-other-label": (
        "video,start,end,label,split\na,0,1,0.5,train\na,0,1,-1.0,train\nb,0,1,1,test\n",
        ("duplicated", "line 3", "line 2"),
    ),
    "same-segment-train-and-test": (
        "video,start,end,label,split\na,0,1,0.5,train\nb,0,1,1.0,test\na,0,1,0.5,test\n",
        ("line 4", "line 2", "train", "test", "leaks"),
    ),
    "whole-file-in-two-splits": (
        "video,label,split\na,0.5,train\nb,1.0,valid\na,0.5,valid\n",
        ("line 4", "line 2", "leaks"),
    ),
    "extension-spelled-differently": (
        "video,start,end,label,split\na.mp4,0,1,0.5,train\na,0,1,0.5,test\n",
        ("line 3", "line 2", "leaks"),
    ),
    "cmu-clip-in-two-splits": (
        "video_id,clip_id,label,mode\na,1,0.5,train\na,2,1.0,train\na,1,0.5,valid\n",
        ("line 4", "line 2", "leaks"),
    ),
    "duplicate-sample-id": (
        "id,video,start,end,label,split\ns1,a,0,1,0.5,train\ns1,b,0,1,1.0,train\n",
        ("duplicate sample id", "line 3", "line 2"),
    ),
}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("labels")
    videos = root / "videos"
    videos.mkdir()
    for name in ("a", "b"):  # never opened: the labels are refused first
        (videos / f"{name}.mp4").write_bytes(b"\0" * 64)
    return root


@pytest.mark.parametrize("case", sorted(CASES))
def test_labels_refused_with_the_lines_named(root: Path, case: str) -> None:
    text, words = CASES[case]
    labels = root / f"{case}.csv"
    labels.write_text(text)
    before = snapshot(root)
    r = mea("extract", str(root / "videos"), "--labels", str(labels), "--out",
            str(root / "out.h5"), "--no-asr")  # fmt: skip
    assert_refused(r, (str(labels), *words), before, [root])
