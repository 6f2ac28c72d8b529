"""RunConfig: the typed, frozen form of config.json, which it writes back byte for byte (key
order, keys an older run lacked, keys a newer one added), so old runs resume."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from mea_cli.train import runs
from mea_cli.train.runconfig import RunConfig, RunConfigError
from mea_cli.train.setup import StoreFacts, TrainRequest, read_run_config, resolve_config

FACTS = StoreFacts(
    features="/data/mosi.h5",
    sha256="abc",
    task="regression",
    label_names=("sentiment",),
    input_dims={"text": 300, "vision": 35, "audio": 74},
    schema={},
)

#: config.json's keys in the order mea train has written them since world_size was added
KEYS = [
    "format", "version", "mea_cli_version", "name", "features", "features_sha256", "dataset",
    "task", "label_names", "label_range", "label_range_source", "schema", "model",
    "model_config", "model_overrides", "train", "train_overrides", "train_sources", "preset",
    "preset_model_overrides", "task_loss", "targets", "seeds", "selection", "model_preset",
    "device", "world_size",
]  # fmt: skip


def _resolved() -> RunConfig:
    req = TrainRequest(
        features=Path("/data/mosi.h5"), dataset="mosi", seeds=[1111, 7],
        train_overrides={"lr": "5e-4"}, model_overrides={"d": 16},
    )  # fmt: skip
    return resolve_config(req, FACTS, "run")


def test_resolved_config_reads_by_attribute_and_writes_config_json_keys_in_order() -> None:
    cfg = _resolved()
    d = cfg.to_dict()
    assert list(d) == KEYS
    assert (cfg.name, cfg.dataset, cfg.model, cfg.seeds) == ("run", "mosi", "mea", (1111, 7))
    assert d["seeds"] == [1111, 7] and d["label_names"] == ["sentiment"]  # JSON lists
    assert cfg.settings.lr == 5e-4 == cfg.train["lr"] and cfg.model_config["d"] == 16
    assert RunConfig.from_dict(json.loads(json.dumps(d))) == cfg  # the file gives it back
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.name = "other"  # type: ignore[misc]


def test_an_older_config_json_comes_back_unchanged_with_the_same_digest(tmp_path: Path) -> None:
    """A config.json from before label_range_source / preset / task_loss / targets /
    world_size existed, with a key from some later version: to_dict() is the file's content,
    so the digest in the run's state.pt still matches and the run resumes."""
    old = {k: v for k, v in _resolved().to_dict().items()}
    for key in ("label_range_source", "preset", "preset_model_overrides", "task_loss",
                "targets", "world_size"):  # fmt: skip
        del old[key]
    old["from_the_future"] = {"x": 1}
    (tmp_path / "config.json").write_text(json.dumps(old, indent=2))
    cfg = read_run_config(tmp_path)
    assert cfg.to_dict() == old and list(cfg.to_dict()) == list(old)
    assert runs.config_digest(cfg.to_dict()) == runs.config_digest(old)
    assert cfg.world_size == 1 and cfg.preset == "paper"  # defaults for the reader


def test_nan_is_written_as_null() -> None:
    cfg = dataclasses.replace(_resolved(), model_config={"mu": float("nan")})
    assert cfg.to_dict()["model_config"] == {"mu": None}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"format": "mea-compare"}, "format 'mea-compare'"),
        ({"format": "mea-run", "name": "x"}, "without features, dataset, task, model"),
        ([1, 2], "format 'list'"),
    ],
)
def test_what_is_not_a_run_configuration_is_one_error(
    tmp_path: Path, content: object, message: str
) -> None:
    (tmp_path / "config.json").write_text(json.dumps(content))
    with pytest.raises(RunConfigError, match=message):
        RunConfig.from_dict(content)  # type: ignore[arg-type]
    with pytest.raises(runs.RunError, match="config.json: "):
        read_run_config(tmp_path)
