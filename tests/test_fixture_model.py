"""A model registered from outside ``mea_cli`` joins every command (issue 25, docs/models/contract.md).

``tests/fixture_model/`` holds model ``fixture`` with its paper values (training preset, a MOSI
result row, an ablation table) in JSON beside it, as a model of ``mea_cli/models/<family>/``
does. With ``MEA_MODELS=fixture_model.model`` the real CLI, in a subprocess, lists it in
``mea info``, trains it with its paper's training values, shows its result row under ``mea eval
--paper``, its ablation table under ``mea ablate --paper`` and its row in ``mea compare``: no
file of ``mea_cli`` names it.

Those commands run in children of a warm interpreter started with the fixture's folder on
``PYTHONPATH`` (``tests/warm.py``, ``warm_start_up``): the entry point and the registry's
loading of ``MEA_MODELS`` happen in each child, as in a fresh ``python -m mea_cli``. The
unimportable module starts a fresh interpreter: the real start-up refuses it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import warm

HERE = Path(__file__).parent
ENV = {
    **os.environ,
    "MEA_MODELS": "fixture_model.model",
    "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
    "OMP_NUM_THREADS": "1",
    "COLUMNS": "240",
}


def _mea(cwd: Path, *args: str, env: dict[str, str] = ENV) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mea_cli", *args], capture_output=True, text=True, cwd=cwd, env=env
    )


def _ok(cwd: Path, *args: str) -> str:
    r = warm.run(list(args), cwd=cwd, env=ENV, warm_start_up=True)
    assert r.returncode == 0, (args, r.stdout[-3000:], r.stderr[-3000:])
    return r.stdout + r.stderr


def test_no_file_of_the_package_names_the_fixture_model() -> None:
    package = HERE.parent / "mea_cli"
    assert not [p for p in package.rglob("*.py") if "fixture" in p.read_text("utf-8")]


def test_an_unimportable_model_module_is_one_line_and_exit_2(tmp_path: Path) -> None:
    r = _mea(tmp_path, "info", "--model", "mea", env={**ENV, "MEA_MODELS": "no_such_module_x"})
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "MEA_MODELS" in r.stderr
    assert "no_such_module_x" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_fixture_model_in_info_train_eval_ablate_compare(tmp_path: Path) -> None:
    store = tmp_path / "s.h5"
    _ok(tmp_path, "synth", "--like", "mosi", "--n", "24", "--seed", "0", "--max-seconds", "2",
        "--out", str(store))  # fmt: skip

    info = json.loads(_ok(tmp_path, "info", "--model", "fixture", "--json"))
    assert info["model"] == "fixture" and info["switches"] == {"no-audio": "w/o audio"}
    assert info["training"]["lr"] == {
        "value": 0.004,
        "source": "Fixture paper (made up for the tests) Table 9",
    }

    runs = tmp_path / "runs"
    _ok(tmp_path, "train", str(store), "--dataset", "mosi", "--model", "fixture", "--epochs", "1",
        "--threads", "1", "--runs-dir", str(runs), "--name", "fx")  # fmt: skip
    config = json.loads((runs / "fx" / "config.json").read_text())
    assert config["model"] == "fixture"
    assert config["train"]["batch_size"] == 6  # its paper's training value

    ev = warm.run(["eval", str(runs / "fx"), "--paper", "--json"], cwd=tmp_path, env=ENV,
                  warm_start_up=True)
    assert ev.returncode == 0, ev.stderr[-3000:]
    rows = json.loads(ev.stdout)["paper"]
    assert {r["model"] for r in rows} >= {"Fixture", "MEA"}
    assert next(r for r in rows if r["model"] == "Fixture")["metrics"]["mae"] == 0.789

    ab = _ok(tmp_path, "ablate", "--run", "fx", "--drop", "all", "--paper", "--seeds", "1",
             "--runs-dir", str(runs), "--format", "csv", "--device", "cpu")  # fmt: skip
    assert "w/o audio,Modalities" in ab and ",41.2,40.9" in ab  # its paper's row, its values
    assert "Table 7: fixture ablation" in (runs / "fx" / "ablation.md").read_text()

    cmp_out = _ok(tmp_path, "compare", str(store), "--dataset", "mosi", "--models", "fixture,mea",
                  "--seeds", "1", "--epochs", "1", "--set", "mea.d=8", "--set", "mea.heads=2",
                  "--set", "mea.d_h=8", "--set", "mea.psa_layers=1", "--set", "mea.hca_layers=1",
                  "--runs-dir", str(runs), "--format", "csv", "--device", "cpu")  # fmt: skip
    assert "fixture" in cmp_out
    assert (runs / "compare-mosi-s" / "fixture" / "1111" / "metrics.json").is_file()
