"""Regression targets in the model's range (mea_cli.runtime.targets), class weights, the loss a
run records, ``--preset small`` and ``--threads``."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from rich.console import Console
from torch.nn import functional as F

from mea_cli.artifacts.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from mea_cli.models import config_for, create_model
from mea_cli.models.core.losses import task_loss
from mea_cli.runtime.loading import model_from_checkpoint
from mea_cli.runtime.targets import (
    ScaledModel,
    TargetScale,
    balanced_class_weights,
    weighted_task_loss,
)
from mea_cli.train.presets import SMALL_HINT_BELOW, small_data_note
from mea_cli.train.setup import StoreFacts, TrainRequest, resolve_config
from mea_cli.train.trainer import train_run

TINY_MEA = {"d": 8, "heads": 2, "d_h": 8, "psa_layers": 1, "hca_layers": 1}


def test_target_scale_by_hand() -> None:
    y = np.array([[1.0, 5.0], [3.0, 5.0], [np.nan, 5.0], [5.0, np.nan]])
    s = TargetScale.fit(y)
    assert s.mean == pytest.approx((3.0, 5.0))
    assert s.std == pytest.approx((np.sqrt(8 / 3), 1.0))  # column 2 has no spread: std 1
    t = torch.tensor([[1.0, 5.0], [5.0, 7.0]])
    assert torch.allclose(s.scale(t), torch.tensor([[-2 / np.sqrt(8 / 3), 0.0], [2 / np.sqrt(8 / 3), 2.0]]).float())
    assert torch.allclose(s.unscale(s.scale(t)), t)
    assert TargetScale.from_dict(s.to_dict()) == s and TargetScale.from_dict(None) is None


def _tiny_ckpt(scale: dict | None) -> tuple[Checkpoint, torch.nn.Module]:
    cfg = config_for("mea", "mosi", input_dims={"text": 4, "vision": 3, "audio": 5}, **TINY_MEA)
    torch.manual_seed(0)
    model = create_model("mea", cfg).eval()
    ckpt = Checkpoint(
        model="mea", model_config=cfg.to_dict(), dataset="custom", task="regression",
        label_names=["score"], schema={}, norm={}, state_dict=model.state_dict(),
        target_scale=scale,
    )  # fmt: skip
    return ckpt, model


def test_checkpoint_keeps_the_scale_and_old_checkpoints_load_as_identity(tmp_path: Path) -> None:
    from model_helpers import pad_batch, random_sequences

    dims = {"text": 4, "vision": 3, "audio": 5}
    lengths = {"text": [3, 1], "vision": [2, 4], "audio": [5, 0]}
    batch = pad_batch(random_sequences(dims, lengths, 0), None)
    old, inner = _tiny_ckpt(None)
    raw = save_checkpoint(old, tmp_path / "old.pt")
    loaded = model_from_checkpoint(load_checkpoint(raw), raw)
    assert not isinstance(loaded, ScaledModel)  # no stats recorded: the identity
    with torch.no_grad():
        base = inner(batch).pred
        assert torch.equal(loaded.eval()(batch).pred, base)
    new, _ = _tiny_ckpt({"mean": [500.0], "std": [37.0]})
    path = save_checkpoint(new, tmp_path / "new.pt")
    torch.load(path, weights_only=True)  # still tensors and plain values only
    back = load_checkpoint(path)
    assert back.target_scale == {"mean": [500.0], "std": [37.0]}
    scaled = model_from_checkpoint(back, path).eval()
    assert isinstance(scaled, ScaledModel) and scaled.cfg is scaled.inner.cfg
    with torch.no_grad():
        assert torch.allclose(scaled(batch).pred, base * 37.0 + 500.0)


def _rescaled_copy(src: Path, dst: Path, a: float, b: float) -> Path:
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        f["samples/label"][...] = a * f["samples/label"][...] + b
    return dst


@pytest.mark.slow
def test_regression_is_invariant_to_the_labels_units(
    synth_mosi: Path, tmp_path: Path, one_torch_thread: None
) -> None:
    """Labels ``y`` and ``37 y + 500``: the same MAE / std(labels) and correlation (2 %); the
    predictions and checkpoints are in each store's own units."""
    out = {}
    for name, (a, b) in {"y": (1.0, 0.0), "big": (37.0, 500.0)}.items():
        store = _rescaled_copy(synth_mosi, tmp_path / f"{name}.h5", a, b)
        result = train_run(
            TrainRequest(
                features=store, dataset=None, task="regression", model="mea",
                train_overrides={"epochs": 2, "batch_size": 16}, model_overrides=TINY_MEA,
                runs_dir=tmp_path / "runs", name=name, live=False,
            )
        )  # fmt: skip
        test = result.seeds[1111]["test"]
        with h5py.File(store) as f:
            split = f["samples/split"][...].astype(str)
            std = float(np.std(f["samples/label"][...][split == "test"]))
        ck = load_checkpoint(result.run_dir / "ckpt.pt")
        out[name] = (test["mae"] / std, test["corr"], ck.target_scale)
    (mae_y, corr_y, scale_y), (mae_b, corr_b, scale_b) = out["y"], out["big"]
    assert mae_b == pytest.approx(mae_y, rel=0.02) and corr_b == pytest.approx(corr_y, rel=0.02)
    assert scale_b["mean"][0] == pytest.approx(37 * scale_y["mean"][0] + 500, rel=1e-4)
    assert scale_b["std"][0] == pytest.approx(37 * scale_y["std"][0], rel=1e-4)


def test_balanced_class_weights_and_weighted_loss_by_hand() -> None:
    onehot = np.eye(3)[[0, 0, 0, 1]]  # class 2 absent from train
    w = balanced_class_weights("multiclass", onehot)
    assert torch.allclose(w, torch.tensor([4 / (2 * 3), 4 / (2 * 1), 0.0]))
    pred = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.3, 0.2], [1.0, -1.0, 0.0]])
    labels = torch.tensor(np.eye(3)[[0, 1, 0]], dtype=torch.float32)
    nll = -torch.log_softmax(pred, -1)[torch.arange(3), torch.tensor([0, 1, 0])]
    wi = w[torch.tensor([0, 1, 0])]
    assert torch.allclose(weighted_task_loss(pred, labels, "multiclass", w), (wi * nll).sum() / wi.sum())
    ones = torch.ones(3)
    assert torch.allclose(weighted_task_loss(pred, labels, "multiclass", ones), task_loss(pred, labels, "multiclass"))
    # binary multi-label: per label (absent, present); NaN entries left out
    y = np.array([[1, 0], [0, 0], [0, np.nan], [0, 1]], float)
    wb = balanced_class_weights("binary-multilabel", y)
    assert torch.allclose(wb, torch.tensor([[4 / 6, 4 / 2], [3 / 4, 3 / 2]]))
    logits = torch.randn(4, 2, 2, generator=torch.Generator().manual_seed(0))
    lab = torch.tensor(y, dtype=torch.float32)
    assert torch.allclose(
        weighted_task_loss(logits, lab, "binary-multilabel", torch.ones(2, 2)),
        task_loss(logits, lab, "binary-multilabel"),
    )
    keep = ~torch.isnan(lab)
    tgt = torch.nan_to_num(lab).long()
    nll_b = F.cross_entropy(logits[keep], tgt[keep], reduction="none")
    wk = wb[torch.arange(2).expand(4, 2)[keep], tgt[keep]]
    assert torch.allclose(
        weighted_task_loss(logits, lab, "binary-multilabel", wb), (wk * nll_b).sum() / wk.sum()
    )


FACTS = StoreFacts(
    features="/data/emo.h5", sha256="", task="multiclass", label_names=("a", "b", "c"),
    input_dims={"text": 50, "vision": 55, "audio": 25}, schema={}, dataset="custom",
    hyperparameters="iemocap",
)  # fmt: skip


def test_config_records_the_loss_actually_used_and_the_small_preset() -> None:
    req = TrainRequest(features=Path("/data/emo.h5"), dataset=None, task="classification")
    cfg = resolve_config(req, FACTS, "run")
    assert cfg.task_loss == "cross-entropy over the classes"  # not the config's "mse"
    assert cfg.preset == "paper" and cfg.targets == "class labels as they are"
    weighted = resolve_config(
        TrainRequest(
            features=Path("/data/emo.h5"), dataset=None, task="classification",
            train_overrides={"class_weights": "balanced"},
        ),
        FACTS, "run",
    )  # fmt: skip
    assert weighted.task_loss.endswith("with balanced class weights")
    reg = resolve_config(
        TrainRequest(features=Path("/data/r.h5"), dataset="mosi"),
        StoreFacts("/data/r.h5", "", "regression", ("s",), FACTS.input_dims, {}),
        "run",
    )
    assert reg.task_loss == "mse" and reg.targets.startswith("standardised")
    small = resolve_config(
        TrainRequest(
            features=Path("/data/emo.h5"), dataset=None, task="classification", preset="small",
            train_overrides={"epochs": 3},
        ),
        FACTS, "run",
    )  # fmt: skip
    assert small.train["batch_size"] == 32 and small.train["epochs"] == 3  # MEA's own batch
    assert small.train["ema_decay"] == 0.98 and cfg.train["ema_decay"] == 0.0
    assert small.train_sources["batch_size"].startswith("--preset small")
    assert small.train_sources["epochs"] == "override"
    assert small.model_config["psa_layers"] == 1 and small.model_config["d"] == 32
    # MEA's small preset fuses by concatenation (Table V's w/o DGF); the paper preset keeps DGF
    assert list(small.model_config["ablations"]) == ["dgf"]
    assert list(cfg.model_config["ablations"]) == []
    # MEA's small preset weights the classes (its own training setting); MulT's does not
    assert small.train["class_weights"] == "balanced" and cfg.train["class_weights"] == "none"
    assert small.task_loss.endswith("with balanced class weights")
    assert small.train_sources["class_weights"].startswith("--preset small")
    mult = resolve_config(
        TrainRequest(
            features=Path("/data/emo.h5"), dataset=None, task="classification", preset="small",
            model="mult",
        ),
        FACTS, "run",
    )  # fmt: skip
    assert mult.train["class_weights"] == "none" and mult.train["ema_decay"] == 0.98
    assert mult.train["batch_size"] == 16
    full = resolve_config(
        TrainRequest(
            features=Path("/data/emo.h5"), dataset=None, task="classification", preset="small",
            model_overrides={"ablations": ""},
        ),
        FACTS, "run",
    )  # fmt: skip
    assert list(full.model_config["ablations"]) == [] and full.model_config["d"] == 32
    from mea_cli.config import ConfigError

    with pytest.raises(ConfigError, match="--preset"):
        resolve_config(
            TrainRequest(features=Path("/x.h5"), dataset=None, task="classification", preset="big"),
            FACTS, "run",
        )  # fmt: skip
    with pytest.raises(ConfigError, match="class_weights must be none or balanced"):
        resolve_config(
            TrainRequest(
                features=Path("/x.h5"), dataset=None, task="classification",
                train_overrides={"class_weights": "inverse"},
            ),
            FACTS, "run",
        )  # fmt: skip


def test_threads_option_sets_torch_threads_and_children(monkeypatch: pytest.MonkeyPatch) -> None:
    from mea_cli.runtime import apply_threads

    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    try:
        assert apply_threads(1) == 1 and torch.get_num_threads() == 1
        import os

        assert os.environ["OMP_NUM_THREADS"] == "1" == os.environ["MKL_NUM_THREADS"]
    finally:
        torch.set_num_threads(before)


def test_threads_below_one_is_refused_in_one_line(mea, synth_mosi: Path, tmp_path: Path) -> None:  # noqa: ANN001
    runs = tmp_path / "runs"
    code, _, err = mea("train", str(synth_mosi), "--task", "regression", "--threads", "0",
                       "--runs-dir", str(runs))  # fmt: skip
    assert code == 2 and "--threads must be at least 1" in err and len(err.strip().splitlines()) == 1
    assert not runs.exists()


def test_custom_classification_run_config_in_file(synth_iemocap: Path, tmp_path: Path) -> None:
    """The config.json of a real (1-epoch) functionals run records its loss and preset."""
    result = train_run(
        TrainRequest(
            features=synth_iemocap, dataset=None, task="classification", model="functionals",
            runs_dir=tmp_path, name="f", live=False,
        )
    )  # fmt: skip
    cfg = json.loads((result.run_dir / "config.json").read_text())
    assert cfg["task_loss"] == "cross-entropy per label (two logits each)"


def test_default_threads_and_passive_openmp(monkeypatch: pytest.MonkeyPatch) -> None:
    from mea_cli import runtime

    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert runtime.default_threads() == 3  # the environment wins
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert runtime.default_threads() == torch.get_num_threads()
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    runtime.passive_openmp()
    import os

    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    assert os.environ["GOMP_SPINCOUNT"] == runtime.SPIN_COUNT == "1000"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    monkeypatch.delenv("GOMP_SPINCOUNT")
    runtime.passive_openmp()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"  # a user's choice is kept, and nothing
    assert "GOMP_SPINCOUNT" not in os.environ  # overrides it (libgomp lets the count win)
    monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.setenv("GOMP_SPINCOUNT", "0")
    runtime.passive_openmp()
    assert os.environ["GOMP_SPINCOUNT"] == "0" and "OMP_WAIT_POLICY" not in os.environ


def test_label_smoothing_by_hand() -> None:
    """``(1 - eps) w_y nll_y + eps / C * sum_c w_c nll_c`` over the sum of ``w_y``, computed by
    hand on two rows of two classes (logits [0, ln 3]: p = 1/4, 3/4; logits [0, 0]: 1/2, 1/2)."""
    ln = np.log
    pred = torch.tensor([[0.0, float(ln(3.0))], [0.0, 0.0]])
    onehot = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # row 1: class 1, row 2: class 0
    unweighted = (0.9 * ln(4 / 3) + 0.05 * (ln(4) + ln(4 / 3))) / 2 + ln(2) / 2
    got = weighted_task_loss(pred, onehot, "multiclass", None, 0.1)
    assert float(got) == pytest.approx(unweighted, rel=1e-6)
    w = torch.tensor([1.0, 3.0])
    num = 0.8 * (3 * ln(4 / 3) + 1 * ln(2)) + 0.1 * ((ln(4) + 3 * ln(4 / 3)) + (ln(2) + 3 * ln(2)))
    weighted = num / (3 + 1)
    assert float(weighted_task_loss(pred, onehot, "multiclass", w, 0.2)) == pytest.approx(weighted, rel=1e-6)
    # eps 0 and no weights: the model's own task loss
    assert torch.allclose(
        weighted_task_loss(pred, onehot, "multiclass", None), task_loss(pred, onehot, "multiclass")
    )
    # binary multi-label: each label's two logits are one such row (C = 2), with that label's
    # weights; an unlabelled (NaN) entry adds nothing
    logits = torch.stack([pred, torch.tensor([[5.0, -2.0], [1.0, 1.0]])], dim=1)  # [B=2, K=2, 2]
    lab = torch.tensor([[1.0, float("nan")], [0.0, float("nan")]])
    wb = torch.tensor([[1.0, 3.0], [7.0, 7.0]])
    got_b = weighted_task_loss(logits, lab, "binary-multilabel", wb, 0.2)
    assert float(got_b) == pytest.approx(weighted, rel=1e-6)
    got_b = weighted_task_loss(logits, lab, "binary-multilabel", None, 0.1)
    assert float(got_b) == pytest.approx(unweighted, rel=1e-6)


def test_label_smoothing_is_recorded_off_by_default_and_refused_without_cross_entropy() -> None:
    from mea_cli.config import ConfigError
    from mea_cli.models import list_models

    def resolve(task: str = "classification", model: str = "mea", **train: object):  # noqa: ANN202
        facts = FACTS if task == "classification" else StoreFacts(
            "/data/r.h5", "", "regression", ("s",), FACTS.input_dims, {}
        )  # fmt: skip
        reg = task == "regression"
        return resolve_config(
            TrainRequest(
                features=Path(facts.features), dataset="mosi" if reg else None,
                task=None if reg else task, model=model, train_overrides=train,
            ),
            facts, "run",
        )  # fmt: skip

    smooth = resolve(label_smoothing=0.1, class_weights="balanced")
    assert smooth.train["label_smoothing"] == 0.1
    assert smooth.task_loss == (
        "cross-entropy over the classes with balanced class weights and label smoothing 0.1"
    )
    assert resolve(label_smoothing=0.1).task_loss.endswith("classes with label smoothing 0.1")
    for model in list_models():  # no preset smooths: every existing run trains as before
        for preset in ("paper", "small"):
            cfg = resolve_config(
                TrainRequest(
                    features=Path("/data/emo.h5"), dataset=None, task="classification",
                    model=model, preset=preset,
                ),
                FACTS, "run",
            )  # fmt: skip
            assert cfg.train["label_smoothing"] == 0.0 and "smoothing" not in cfg.task_loss
    with pytest.raises(ConfigError, match="label_smoothing.*a regression task trains none"):
        resolve("regression", label_smoothing=0.1)
    with pytest.raises(ConfigError, match="label_smoothing.*functionals \\(closed form\\)"):
        resolve(model="functionals", label_smoothing=0.1)
    with pytest.raises(ConfigError, match="label_smoothing must lie in"):
        resolve(label_smoothing=1.0)
    # mixup: recorded in the loss it trains, refused where no cross-entropy is trained
    assert resolve(mixup=0.2, class_weights="balanced").task_loss == (
        "cross-entropy over the classes with balanced class weights and mixup (Beta(0.2, 0.2))"
    )
    assert resolve().train["mixup"] == 0.0 and "mixup" not in resolve().task_loss
    with pytest.raises(ConfigError, match="mixup.*a regression task trains none"):
        resolve("regression", mixup=0.2)
    with pytest.raises(ConfigError, match="mixup.*functionals \\(closed form\\)"):
        resolve(model="functionals", mixup=0.2)


def test_trainer_passes_label_smoothing_to_the_task_loss(
    synth_iemocap: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 1-epoch tiny MEA run with ``train.label_smoothing=0.1`` trains its task term smoothed
    (binary multi-label: IEMOCAP-shaped store) and records it in config.json."""
    import mea_cli.train.trainer as trainer_mod

    seen: list[float] = []
    real = trainer_mod.weighted_task_loss

    def spy(pred, labels, task, weights, label_smoothing=0.0):  # noqa: ANN001, ANN202
        seen.append(label_smoothing)
        return real(pred, labels, task, weights, label_smoothing)

    monkeypatch.setattr(trainer_mod, "weighted_task_loss", spy)
    result = train_run(
        TrainRequest(
            features=synth_iemocap, dataset=None, task="classification", runs_dir=tmp_path,
            name="ls", live=False, model_overrides=TINY_MEA,
            train_overrides={"epochs": 1, "batch_size": 64, "label_smoothing": 0.1},
        )
    )  # fmt: skip
    cfg = json.loads((result.run_dir / "config.json").read_text())
    assert cfg["train"]["label_smoothing"] == 0.1 and cfg["train_sources"]["label_smoothing"] == "override"
    assert cfg["task_loss"].endswith("with label smoothing 0.1")
    assert seen and set(seen) == {0.1}  # every training batch's task term


def test_trainer_trains_the_mixed_task_term_reproducibly(
    synth_iemocap: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 1-epoch tiny MEA run with ``train.mixup=0.4`` mixes every training batch (the task
    term gets a :class:`Mix`), records it, and a second run of the same seed trains the same
    losses."""
    import mea_cli.train.trainer as trainer_mod

    seen: list[object] = []
    real = trainer_mod.mixed_task_loss

    def spy(loss, pred, labels, mix):  # noqa: ANN001, ANN202
        seen.append(mix)
        return real(loss, pred, labels, mix)

    monkeypatch.setattr(trainer_mod, "mixed_task_loss", spy)
    logs = []
    for name in ("mix1", "mix2"):
        result = train_run(
            TrainRequest(
                features=synth_iemocap, dataset=None, task="classification", runs_dir=tmp_path,
                name=name, live=False, model_overrides=TINY_MEA,
                train_overrides={"epochs": 1, "batch_size": 64, "mixup": 0.4},
            )
        )  # fmt: skip
        logs.append(json.loads((result.run_dir / "log.jsonl").read_text().splitlines()[0])["train"])
        cfg = json.loads((result.run_dir / "config.json").read_text())
        assert cfg["train"]["mixup"] == 0.4 and cfg["task_loss"].endswith("mixup (Beta(0.4, 0.4))")
    assert seen and all(m is not None and 0.0 <= m.lam <= 1.0 for m in seen)
    assert logs[0] == logs[1]


def test_class_weights_refused_for_regression_and_the_small_presets_dropped() -> None:
    """Class weights weight a cross-entropy: asked for on a regression task they are refused
    (no silent no-op); ``--preset small``'s (MEA's) become ``none`` there, and config.json says
    so with the reason."""
    from mea_cli.config import ConfigError

    facts = StoreFacts("/data/r.h5", "", "regression", ("s",), FACTS.input_dims, {})

    def resolve(preset: str = "paper", **train: object):  # noqa: ANN202
        return resolve_config(
            TrainRequest(
                features=Path(facts.features), dataset="mosi", task=None, model="mea",
                preset=preset, train_overrides=train,
            ),
            facts, "run",
        )  # fmt: skip

    with pytest.raises(ConfigError, match="class_weights.*a regression task has none"):
        resolve(class_weights="balanced")
    small = resolve("small")
    assert small.train["class_weights"] == "none"
    assert small.train_sources["class_weights"].endswith("none: a regression task has no classes")
    assert resolve(class_weights="none").train["class_weights"] == "none"


def test_small_data_note_says_what_the_preset_is_for() -> None:
    note = small_data_note("mea", "custom", "paper", 278)
    assert note.startswith("note: 278 training samples") and "--preset small" in note
    assert small_data_note("mea", "custom", "small", 278) == ""  # already small
    assert small_data_note("mea", "iemocap", "paper", 278) == ""  # a paper's own dataset
    assert small_data_note("mea", "custom", "paper", SMALL_HINT_BELOW) == ""
    assert small_data_note("functionals", "custom", "paper", 278) == ""  # nothing to shrink
    assert small_data_note("mea", "custom", "paper", 278, {"d": 16}) == ""  # a size chosen
    assert small_data_note("mea", "custom", "paper", 278, {"mu": 0.1}).startswith("note: 278")


def test_a_small_custom_store_trained_at_paper_sizes_gets_the_note(synth_iemocap: Path, tmp_path: Path) -> None:
    out = io.StringIO()
    train_run(
        TrainRequest(
            features=synth_iemocap, dataset=None, task="classification", model="mea",
            model_overrides={"d_h": 8}, train_overrides={"epochs": 1},  # paper d, heads, layers
            runs_dir=tmp_path, name="m", live=False,
        ),
        Console(file=out, width=300),
    )  # fmt: skip
    with h5py.File(synth_iemocap, "r") as f:
        n_train = int((f["samples/split"][:].astype(str) == "train").sum())
    assert f"note: {n_train} training samples; mea's paper sizes" in out.getvalue()
