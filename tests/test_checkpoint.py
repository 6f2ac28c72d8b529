"""The checkpoint artifact: typed round trip, safe loading, schema check, corrupt files."""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from mea_cli.artifacts.checkpoint import (
    FORMAT,
    Checkpoint,
    CheckpointError,
    check_schema,
    load_checkpoint,
    save_checkpoint,
    schema_to_dict,
)
from mea_cli.artifacts.features import (
    ExtractorInfo,
    FeatureStore,
    FeatureStoreWriter,
    ModalitySchema,
    Sample,
)


def _store(path: Path, vision_dim: int = 4, task: str = "regression") -> Path:
    schemas = [
        ModalitySchema("text", tuple(f"t{i}" for i in range(3)), ExtractorInfo("glove")),
        ModalitySchema("vision", tuple(f"v{i}" for i in range(vision_dim)), ExtractorInfo("face")),
        ModalitySchema("audio", tuple(f"a{i}" for i in range(2)), ExtractorInfo("smile"), 100.0),
    ]
    labels = ["sentiment"] if task == "regression" else ["happy", "sad"]
    with FeatureStoreWriter(path, schemas, dataset="tiny", task=task, label_names=labels) as w:
        for i in range(3):
            w.add(
                Sample(
                    id=f"s{i}",
                    features={s.name: np.ones((2, s.dim), np.float32) for s in schemas},
                    split="train",
                    label=np.zeros(len(labels), np.float32),
                )
            )
    return path


def _ckpt(store: FeatureStore) -> Checkpoint:
    net = torch.nn.Linear(3, 1)
    return Checkpoint(
        model="mea",
        model_config={"d": 40, "kernel_sizes": [3, 3, 5], "ablations": []},
        dataset="mosi",
        task=store.meta.task,
        label_names=list(store.meta.label_names),
        schema=schema_to_dict(store.modalities),
        norm={"split": "train", "modalities": {}},
        state_dict=net.state_dict(),
        train_config={"lr": 1e-3, "train_label_mean": [0.25]},
        seed=7,
        epoch=3,
        valid_metrics={"mae": 0.9, "corr": None},
        features={"path": str(store.name), "sha256": "0" * 64},
    )


def test_round_trip_loads_with_weights_only(tmp_path: Path) -> None:
    with FeatureStore(_store(tmp_path / "a.h5")) as store:
        ck = _ckpt(store)
        path = save_checkpoint(ck, tmp_path / "ckpt.pt")
        raw = torch.load(path, weights_only=True)  # no pickled classes inside
        assert raw["format"] == FORMAT and raw["schema"]["audio"]["nominal_rate_hz"] == 100.0
        assert raw["schema"]["text"]["nominal_rate_hz"] is None
        back = load_checkpoint(path)
        assert back.seed == 7 and back.epoch == 3 and back.model_config["kernel_sizes"] == [3, 3, 5]
        assert torch.equal(back.state_dict["weight"], ck.state_dict["weight"])
        check_schema(back, store, path)  # same store: no error
    assert not list(tmp_path.glob(".*tmp")), "temporary file left behind"


def test_schema_mismatch_names_modality_expected_and_found(tmp_path: Path) -> None:
    with FeatureStore(_store(tmp_path / "a.h5")) as store:
        ck = _ckpt(store)
    with (
        FeatureStore(_store(tmp_path / "b.h5", vision_dim=6)) as other,
        pytest.raises(CheckpointError, match=r"vision with 4 features, but .*b\.h5 has 6"),
    ):
        check_schema(ck, other, "ckpt.pt")
    with (
        FeatureStore(_store(tmp_path / "c.h5", task="binary-multilabel")) as other,
        pytest.raises(CheckpointError, match="task 'regression'"),
    ):
        check_schema(ck, other, "ckpt.pt")


def test_corrupt_and_foreign_files_give_one_clear_error(tmp_path: Path) -> None:
    with FeatureStore(_store(tmp_path / "a.h5")) as store:
        good = save_checkpoint(_ckpt(store), tmp_path / "ckpt.pt")
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="cut.pt: not a readable checkpoint"):
        load_checkpoint(cut)
    text = tmp_path / "notes.pt"
    text.write_text("hello\n")
    with pytest.raises(CheckpointError, match="notes.pt: not a"):
        load_checkpoint(text)
    hosts = tmp_path / "hosts.pt"
    hosts.write_text("127.0.0.1 localhost\n")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(hosts)
    # what was refused, not torch's advice to load it unsafely (with terminal escapes)
    assert str(err.value).endswith("safe load refuses): Unsupported operand 49"), err.value
    csv = tmp_path / "predictions.csv"  # torch reads the header as a global it will not load
    csv.write_text("clip,path,status\na,b,ok\n")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(csv)
    assert "Unsupported global" in str(err.value) and "\x1b" not in str(err.value)
    assert "weights_only" not in str(err.value) and "can still be loaded" not in str(err.value)
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "missing.pt")
    pickled = tmp_path / "pickled.pt"
    torch.save({"format": FORMAT, "evil": Path("x")}, pickled)  # a class a safe load refuses
    with pytest.raises(CheckpointError, match="pickled.pt: .*: Unsupported global: GLOBAL pathlib"):
        load_checkpoint(pickled)
    other = tmp_path / "other.pt"
    torch.save({"format": "something-else"}, other)
    with pytest.raises(CheckpointError, match="format is 'something-else'"):
        load_checkpoint(other)
    partial = tmp_path / "partial.pt"
    torch.save({"format": FORMAT, "version": 1, "model": "mea"}, partial)
    with pytest.raises(CheckpointError, match="missing entries: model_config"):
        load_checkpoint(partial)
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(CheckpointError, match="plain.pkl"):
        load_checkpoint(plain)
    # bytes read as a legacy pickle whose opcodes break torch's unpickler in other ways
    for name, raw in (("stop.pt", b"."), ("short.pt", b"\x80\x02J\x01"), ("memo.pt", b"\x80\x02]q\x00h\x05.")):
        bad = tmp_path / name
        bad.write_bytes(raw)
        with pytest.raises(CheckpointError, match=f"{name}: not a"):
            load_checkpoint(bad)


class _Calls:
    """A pickled object whose unpickling runs ``touch MARKER`` (``os.system``)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_calls_a_function_is_refused_without_advice_to_load_it_unsafely(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "MARKER"
    with FeatureStore(_store(tmp_path / "a.h5")) as store:
        raw = _ckpt(store).to_dict()
    raw["train_config"]["evil"] = _Calls(marker)
    torch.save(raw, tmp_path / "zip.pt")
    torch.save(raw, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    for name in ("zip.pt", "legacy.pt"):
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(tmp_path / name)
        said = str(err.value)
        assert said.startswith(f"{tmp_path / name}: not a mea-cli checkpoint"), said
        assert re.search(r"Unsupported global: GLOBAL \w+\.system$", said), said
        assert "weights_only" not in said and "\n" not in said
    assert not marker.exists(), "the pickle's code ran"


def _tampered(tmp_path: Path, change: Callable[[dict], None], task: str = "regression") -> Path:
    """A checkpoint whose raw dict ``change`` edited, saved as torch saves it."""
    with FeatureStore(_store(tmp_path / "a.h5", task=task)) as store:
        raw = _ckpt(store).to_dict()
    change(raw)
    path = tmp_path / "tampered.pt"
    torch.save(raw, path)
    return path


TAMPERED = {
    "model_config": (lambda d: d.update(model_config=[1, 2]), "entry model_config is a list"),
    "norm": (lambda d: d.update(norm=[1]), "entry norm is a list, not a dict"),
    "schema": (lambda d: d.update(schema=[1]), "entry schema is a list"),
    "valid_metrics": (lambda d: d.update(valid_metrics=[1]), "entry valid_metrics is a list"),
    "epoch": (lambda d: d.update(epoch="x"), "entry epoch 'x' is not an integer"),
    "features": (lambda d: d.update(features=None), "entry features is None, not a dict"),
    "label_names": (lambda d: d.update(label_names="sentiment"), "entry label_names is a str"),
    "task": (lambda d: d.update(task="weird"), "task 'weird' is not one of regression"),
    "dim": (lambda d: d["schema"]["text"].pop("dim"), "schema entry 'text' has no feature count"),
    "feature_names": (
        lambda d: d["schema"]["text"].pop("feature_names"),
        "schema entry 'text' has no list of feature_names",
    ),
    "extractor": (
        lambda d: d["schema"]["audio"].update(extractor="smile"),
        "schema entry 'audio' has no extractor record",
    ),
}


@pytest.mark.parametrize("entry", sorted(TAMPERED))
def test_a_tampered_entry_is_one_line_naming_file_and_entry(tmp_path: Path, entry: str, mea) -> None:
    change, said = TAMPERED[entry]
    path = _tampered(tmp_path, change)
    with pytest.raises(CheckpointError, match=re.escape(f"{path}: {said}")):
        load_checkpoint(path)
    code, out, err = mea("eval", str(path))
    assert (code, out) == (2, "") and err.count("\n") == 1 and said in err, err
    assert "Traceback" not in err


def test_class_names_must_match_the_models_labels(tmp_path: Path) -> None:
    def three(d: dict) -> None:
        d["model_config"].update(task="multiclass", num_labels=3)

    path = _tampered(tmp_path, three, task="multiclass")
    with pytest.raises(CheckpointError, match=r"predicts 3 labels .* label_names has 2: \['happy'"):
        load_checkpoint(path)
    path = _tampered(tmp_path, lambda d: d["model_config"].update(task="multiclass", num_labels=1))
    with pytest.raises(CheckpointError, match="task is 'regression', but the model was built for"):
        load_checkpoint(path)


def test_labels_are_checked_for_eval_not_for_predict(tmp_path: Path) -> None:
    with FeatureStore(_store(tmp_path / "a.h5")) as store:
        ck = _ckpt(store)
    with FeatureStore(_store(tmp_path / "c.h5", task="multiclass")) as other:
        with pytest.raises(CheckpointError, match="task 'regression'"):
            check_schema(ck, other, "ckpt.pt")
        check_schema(ck, other, "ckpt.pt", labels=False)  # predict reads features only


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_or_device_is_not_a_regular_file(tmp_path: Path, mea) -> None:
    fifo = tmp_path / "ckpt.pt"
    os.mkfifo(fifo)
    devices = [Path("/dev/zero")] if Path("/dev/zero").exists() else []
    for path in (fifo, *devices):
        code, out, err = mea("eval", str(path))
        assert (code, out) == (2, "") and err.count("\n") == 1, err
        assert f"{path}: not a regular file" in err and "empty" not in err, err
        with pytest.raises(CheckpointError, match="not a regular file"):
            load_checkpoint(path)  # refused before it is opened: reading would never end
