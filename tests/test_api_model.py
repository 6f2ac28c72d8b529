"""``load_model(ckpt)`` feeds a checkpoint's model what ``mea predict`` feeds it: per-sample
summaries, each group's statistics under ``train.normalise=group`` (or a refusal saying why and
what to do), and a one-line :class:`MeaError` for samples of another schema."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mea_cli import api
from mea_cli.artifacts.features import (
    ExtractorInfo,
    FeatureStoreWriter,
    ModalitySchema,
    Sample,
)
from mea_cli.errors import MeaError

INFO = ExtractorInfo("test", "0", {})
SPLITS = ["train"] * 8 + ["valid"] * 2 + ["test"] * 2


def write_store(path: Path, task: str = "multiclass", audio_dim: int = 2) -> Path:
    """12 samples of two speakers (groups A, B) whose features sit on other levels, with one
    audio summary per sample (what the ``functionals`` model reads)."""
    schemas = [
        ModalitySchema("text", ("t0",), INFO, 10.0),
        ModalitySchema("vision", ("v0",), INFO, 10.0),
        ModalitySchema("audio", tuple(f"a{i}" for i in range(audio_dim)), INFO, 10.0),
    ]
    names = ["x", "y"] if task == "multiclass" else ["sentiment"]
    rng = np.random.default_rng(0)
    with FeatureStoreWriter(
        path, schemas, dataset="t", task=task, label_names=names,
        summaries=[ModalitySchema("audio", ("f0",), INFO)],
    ) as w:  # fmt: skip
        for i, split in enumerate(SPLITS):
            level = 10.0 * (i % 2)  # speaker B's features sit 10 higher
            label = np.eye(2, dtype=np.float32)[i % 2] if task == "multiclass" else np.zeros(1)
            w.add(
                Sample(
                    f"s{i}",
                    {
                        m.name: (level + rng.normal(size=(2 + i % 3, m.dim))).astype(np.float32)
                        for m in schemas
                    },
                    video=f"v{i}",
                    split=split,
                    label=np.asarray(label, np.float32),
                    group="AB"[i % 2],
                    summary={"audio": np.asarray([level + rng.normal()], np.float32)},
                )
            )
    return path


def train(store: Path, runs: Path, name: str, *sets: str) -> Path:
    """A ``functionals`` run on ``store`` (one regularisation candidate: fast)."""
    api.train(
        store, task="multiclass", model="functionals", sets=["c_grid=[1.0]", *sets],
        runs_dir=runs, name=name, threads=1, device="cpu",
    )  # fmt: skip
    return runs / name


def probabilities(predictions: list[dict]) -> np.ndarray:
    return np.asarray([[p["probabilities"][n] for n in ("x", "y")] for p in predictions])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("api_model")
    store = write_store(tmp / "s.h5")
    runs = tmp / "runs"
    return {
        "store": store,
        "plain": train(store, runs, "plain"),
        "group": train(store, runs, "group", "train.normalise=group"),
        "tmp": tmp,
    }


def test_a_functionals_checkpoint_reads_the_samples_summaries(
    world: dict[str, Path], one_torch_thread: None
) -> None:
    model = api.load_model(world["plain"])
    said = {c.clip: c.prediction for c in api.predict(world["store"], world["plain"]).clips}
    with api.load_store(world["store"]) as store:
        samples = [store[i] for i in range(len(store))]
    batch = model.batch(samples)
    assert set(batch.summary) == {"audio"}
    got = probabilities(model.predict(samples))
    np.testing.assert_allclose(got, probabilities([said[s.id] for s in samples]), atol=1e-5)


def test_a_group_normalised_model_needs_its_stores_groups(
    world: dict[str, Path], one_torch_thread: None
) -> None:
    model = api.load_model(world["group"])
    with api.load_store(world["store"]) as store:
        samples = [store[i] for i in range(len(store))]
        with pytest.raises(MeaError, match=r"train\.normalise=group.*fit_groups\(store\)") as err:
            model.predict(samples)  # the training statistics would give other answers
        assert "\n" not in str(err.value)
        model.fit_groups(store)
    said = {c.clip: c.prediction for c in api.predict(world["store"], world["group"]).clips}
    want = probabilities([said[s.id] for s in samples])
    np.testing.assert_allclose(probabilities(model.predict(samples)), want, atol=1e-5)
    alone = np.concatenate([probabilities(model.predict([s])) for s in samples])
    np.testing.assert_allclose(alone, want, atol=1e-5)  # a sample's group, not its batch's
    stranger = samples[0]
    stranger.group, stranger.video = "C", "elsewhere"
    with pytest.raises(MeaError, match="group 'C'.*fit_groups"):
        model.predict([stranger])
    plain = api.load_model(world["plain"])
    with api.load_store(world["store"]) as store:
        plain.fit_groups(store)  # a model of the training statistics: nothing to fit
    assert plain.groups is None


def test_samples_of_another_schema_name_modality_expected_and_found(
    world: dict[str, Path], one_torch_thread: None
) -> None:
    model = api.load_model(world["plain"])
    with api.load_store(write_store(world["tmp"] / "wide.h5", audio_dim=3)) as store:
        other = [store[i] for i in range(2)]
    with pytest.raises(MeaError, match=r"trained on audio with 2 features, but sample 's0' has 3"):
        model.predict(other)
    with api.load_store(world["store"]) as store:
        flat = store[0]
    flat.features["text"] = flat.features["text"].ravel()  # one step's row without its axis
    with pytest.raises(MeaError, match=r"text with 1 features, but sample 's0' has an array"):
        model.batch([flat])


def test_predict_from_a_store_of_another_task_ignores_its_labels(
    world: dict[str, Path], one_torch_thread: None
) -> None:
    """docs/predict.md: predicting from a store ignores its labels; the features must fit."""
    other = write_store(world["tmp"] / "regression.h5", task="regression")
    report = api.predict(other, world["plain"])
    assert report.failed == 0 and len(report.clips) == len(SPLITS)
    assert set(report.clips[0].prediction["probabilities"]) == {"x", "y"}
    with pytest.raises(MeaError, match="trained for task 'multiclass'"):
        api.evaluate(world["plain"], features=other)  # eval reads them: still refused
