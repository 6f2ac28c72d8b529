"""``mea info STORE --sample ID``: one sample's labels, sequences and the words it was made from."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import warm

from mea_cli.artifacts.features import (
    ExtractorInfo,
    FeatureStoreWriter,
    ModalitySchema,
    Sample,
    Word,
)

SCHEMAS = [
    ModalitySchema("text", ("g0",), ExtractorInfo("glove-words")),
    ModalitySchema("vision", ("jawOpen",), ExtractorInfo("mp"), 25.0),
]


def mea(*args: str) -> subprocess.CompletedProcess[str]:
    return warm.run(list(args))


def _store(path: Path) -> Path:
    words = [Word("[laughs]", 0.6, 0.9), Word("great", 0.9, 1.3)]
    with FeatureStoreWriter(
        path, SCHEMAS, task="multiclass", label_names=["neg", "pos"]
    ) as w:
        w.add(
            Sample(
                id="clip_1",
                video="clip",
                start=0.5,
                end=2.0,
                split="test",
                label=np.array([0.0, 1.0], np.float32),
                features={"text": np.ones((2, 1)), "vision": np.ones((3, 1))},
                times={
                    "text": np.array([[0.6, 0.9], [0.9, 1.3]]),
                    "vision": np.array([[0.5, 0.54], [0.54, 0.58], [1.9, 1.94]]),
                },
                words=words,
                words_source="sidecar.json",
            )
        )
        w.add(Sample(id="clip_2", video="clip", features={"text": np.ones((0, 1)), "vision": np.ones((0, 1))}))
    return path


def test_sample_json_and_text(tmp_path: Path) -> None:
    store = _store(tmp_path / "s.h5")
    r = mea("info", str(store), "--sample", "clip_1", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["words_source"] == "sidecar.json" and d["text"] == "[laughs] great"
    assert d["words"][1] == {"text": "great", "start": 0.9, "end": 1.3}
    assert d["labels"] == {"neg": 0.0, "pos": 1.0} and d["task"] == "multiclass"
    assert d["modalities"]["vision"] == {"steps": 3, "span_s": [0.5, 1.94]}
    r = mea("info", str(store), "--sample", "clip_1")
    assert r.returncode == 0, r.stderr
    assert "words (sidecar.json): [laughs] great" in r.stdout  # brackets shown, not eaten
    assert "vision: 3 steps, 0.50-1.94 s" in r.stdout
    r = mea("info", str(store), "--sample", "clip_2")
    assert "words: not recorded in this store" in r.stdout and "text: 0 steps" in r.stdout


def test_unknown_sample_is_one_clear_line(tmp_path: Path) -> None:
    store = _store(tmp_path / "s.h5")
    r = mea("info", str(store), "--sample", "nope")
    assert r.returncode == 2 and "no sample 'nope' (2 samples, e.g. clip_1, clip_2)" in r.stderr
    assert "Traceback" not in r.stderr
    r = mea("info", "--model", "mea", "--sample", "x")
    assert r.returncode == 2 and "--sample needs FILE" in r.stderr
