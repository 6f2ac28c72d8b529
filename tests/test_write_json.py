"""The one ``write_json`` (mea_cli.paths): strict JSON always; a NaN is an error unless the
caller says it means "undefined" (run files: ``nan="null"``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mea_cli.paths import jsonable, write_json


def test_nan_is_refused_by_default_and_nothing_is_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="JSON compliant"):
        write_json(tmp_path / "a.json", {"x": float("nan")})
    assert list(tmp_path.iterdir()) == []  # no half-written file, no temporary left


def test_nan_as_null_for_run_files(tmp_path: Path) -> None:
    obj = {"corr": float("nan"), "inf": [float("inf"), 1.5], 3: np.float32(0.5), "t": torch.tensor(2)}
    path = write_json(tmp_path / "m.json", obj, nan="null")
    assert json.loads(path.read_text()) == {"corr": None, "inf": [None, 1.5], "3": 0.5, "t": 2}
    assert path.read_text().endswith("\n") and jsonable((1.0, float("-inf"))) == [1.0, None]
