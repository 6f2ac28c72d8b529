"""The model contract (docs/models/contract.md), checked for every registered model.

Parametrized over ``list_models()`` (plus the test-only ``tiny`` model of ``tiny_model.py``,
registered the obvious way), so a model added to the registry later is tested here with no
new test code. Each model runs in its registered ``tiny`` configuration on small random
batches with empty sequences, so the whole file stays fast.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import tiny_model
import torch
from model_helpers import pad_batch, random_sequences, store_batch

from mea_cli import MODALITIES
from mea_cli.artifacts.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from mea_cli.batch import Batch
from mea_cli.data.presets import list_presets
from mea_cli.models import ModelConfig, config_for, config_from_dict, create_model, list_models
from mea_cli.models.core.contract import CAPABILITIES, output_present
from mea_cli.models.core.registry import ModelEntry, get_entry
from mea_cli.models.core.summary import describe_model
from mea_cli.runtime.loading import model_from_checkpoint
from mea_cli.train.presets import preset_table

SUMMARY_DIM = 4  # the per-sample audio summary every contract batch carries (Batch.summary)
# registered models again with a tiny override: the functionals baseline on openSMILE's audio
# functionals (the store's /summary/audio) instead of, and beside, its own LLD statistics
VARIANTS = {
    f"functionals[{block}]": ("functionals", {"audio": block, "summary_dims": {"audio": SUMMARY_DIM}})
    for block in ("opensmile", "both")
}
MODELS = [*list_models(), tiny_model.NAME, *VARIANTS]
DIMS = {"text": 7, "vision": 5, "audio": 6}
# sample 1 has no text, 2 no vision, 3 no audio, 4 nothing at all
LENGTHS = {"text": [3, 0, 5, 1, 0], "vision": [8, 4, 0, 2, 0], "audio": [6, 6, 1, 0, 0]}
SWITCH_CASES = [
    (name, switch)
    for name in list_models()
    for switch in get_entry(name).switches
] + [(tiny_model.NAME, s) for s in tiny_model.SWITCHES]  # fmt: skip


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def entry(request: pytest.FixtureRequest) -> Iterator[ModelEntry]:
    """The registry entry of the parametrized model (``tiny`` registered meanwhile)."""
    name = request.param
    if name == tiny_model.NAME:
        with tiny_model.registered():
            yield get_entry(name)
    elif name in VARIANTS:
        base, tiny = VARIANTS[name]
        e = get_entry(base)
        yield dataclasses.replace(e, tiny={**e.tiny, **tiny})
    else:
        yield get_entry(name)


def _cfg(e: ModelEntry, dataset: str = "mosi", **overrides: object) -> ModelConfig:
    cfg = e.tiny_config(dataset, input_dims=DIMS)
    return cfg.override(overrides) if overrides else cfg


def _model(e: ModelEntry, cfg: ModelConfig, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model(e.name, cfg)


def _labels(cfg: ModelConfig, n: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if cfg.task == "regression":
        return torch.randn(n, 1, generator=g)
    if cfg.task == "multiclass":  # one-hot rows, as the feature store keeps single-label classes
        classes = torch.randint(0, cfg.num_labels, (n,), generator=g)
        return torch.nn.functional.one_hot(classes, cfg.num_labels).float()
    return torch.randint(0, 2, (n, cfg.num_labels), generator=g).float()


def _batch(cfg: ModelConfig, lengths=LENGTHS, seed: int = 0, **pad: object):  # noqa: ANN001, ANN202
    n = len(lengths["text"])
    batch = pad_batch(random_sequences(DIMS, lengths, seed), _labels(cfg, n, seed + 1), **pad)
    return _with_summary(batch, seed)


def _with_summary(batch: Batch, seed: int = 0) -> Batch:
    """``batch`` with a per-sample audio summary, as a store extracted with openSMILE gives
    (NaN for a sample without audio): models that do not read it must ignore it."""
    g = torch.Generator().manual_seed(seed + 2)
    summary = torch.randn(len(batch), SUMMARY_DIM, generator=g)
    summary[~batch.masks["audio"].any(dim=1)] = float("nan")
    batch.summary = {"audio": summary}
    return batch


def _call(e: ModelEntry, model: torch.nn.Module, batch):  # noqa: ANN001, ANN202
    if "attention_maps" in e.capabilities:
        return model(batch, return_attention=True)
    return model(batch)


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.allclose(a, b, atol=1e-5, rtol=1e-5)


def _tensors(out) -> dict[str, torch.Tensor]:  # noqa: ANN001 - ModelOutput
    """Every tensor a model output carries, by name (attention maps left out: see padding)."""
    found = {"pred": out.pred, **{f"loss/{k}": v for k, v in out.losses.items()}}
    for kind, per_mod in out.reps.items():
        found.update({f"reps/{kind}/{m}": v for m, v in per_mod.items()})
    found.update({f"psi/{i}": v for i, v in enumerate(out.psi)})
    found.update({f"xi/{k}": v for k, v in out.xi.items()})
    return found


# ------------------------------------------------------------------------ registration
@pytest.mark.parametrize("entry", MODELS, indirect=True)
def test_registration_is_complete(entry: ModelEntry) -> None:
    assert issubclass(entry.config_cls, ModelConfig)
    assert entry.config_cls.datasets() == list_presets(), "a preset for every dataset"
    assert entry.config_cls.PRESET_SOURCE, "say where the preset values come from"
    assert entry.capabilities <= set(CAPABILITIES)
    assert set(entry.tiny) <= set(entry.config_cls.field_names())
    for name, switch in entry.switches.items():
        assert name == switch.name and switch.table_row


@pytest.mark.parametrize("dataset", list_presets())
@pytest.mark.parametrize("entry", MODELS, indirect=True)
def test_builds_and_predicts_from_every_dataset_preset(entry: ModelEntry, dataset: str) -> None:
    cfg = config_for(entry.name, dataset)  # the full-size preset, benchmark input dims
    model = create_model(entry.name, cfg).eval()
    seqs = {m: [torch.randn(n, cfg.input_dims[m]) for n in (3, 0)] for m in MODALITIES}
    with torch.no_grad():
        out = model(pad_batch(seqs, None))
    want = (2, 1) if cfg.task == "regression" else (2, cfg.num_labels, 2)
    assert tuple(out.pred.shape) == want and torch.isfinite(out.pred).all()
    assert out.loss is None and not out.losses  # no labels, no loss


@pytest.mark.parametrize("entry", MODELS, indirect=True)
def test_mea_info_describes_the_model(entry: ModelEntry) -> None:
    info = describe_model(entry.name, "iemocap", training=preset_table)
    assert info["parameters"] == sum(info["components"].values()) > 0
    assert info["switches"] == {n: s.table_row for n, s in entry.switches.items()}
    assert set(info["training"]) >= {"batch_size", "epochs", "lr", "grad_clip"}
    assert all(v["source"] for v in info["training"].values())
    json.dumps(info)  # --json


# ------------------------------------------------------------------------ gradients
@pytest.mark.parametrize("dataset", ["mosi", "iemocap"])
@pytest.mark.parametrize("entry", MODELS, indirect=True)
def test_every_parameter_gets_a_gradient(entry: ModelEntry, dataset: str) -> None:
    cfg = _cfg(entry, dataset)
    model = _model(entry, cfg).train()
    out = model(_batch(cfg))
    assert out.loss is not None and torch.isfinite(out.loss) and "task" in out.losses
    assert "loss" not in out.losses, "a term named loss would overwrite the logged total"
    out.loss.backward()
    missing = [
        n for n, p in model.named_parameters() if p.grad is None and not entry.is_unused(n)
    ]
    assert not missing, f"no gradient (declare them unused or remove them): {missing}"
    for n, p in model.named_parameters():
        if entry.is_unused(n):
            assert p.grad is None, f"{n} is declared unused but gets a gradient"


@pytest.mark.parametrize("entry", MODELS, indirect=True)
def test_iemocap_store_batch_gives_two_logits_per_emotion(
    entry: ModelEntry, synth_iemocap: Path
) -> None:
    """A batch read from a (synthetic) IEMOCAP-shaped store: ``pred [B, 4, 2]``, a finite loss
    that backpropagates."""
    batch, dims, task, k = store_batch(synth_iemocap, 8, crop=20)
    batch = _with_summary(batch)
    cfg = entry.tiny_config("iemocap", input_dims=dims, task=task, num_labels=k)
    out = _model(entry, cfg)(batch)
    assert out.pred.shape == (8, 4, 2)
    out.loss.backward()
    assert torch.isfinite(out.loss)


# ------------------------------------------------------------------------ tasks
@pytest.mark.parametrize("entry", MODELS, indirect=True)
def test_multiclass_task_logits_loss_gradients_and_masks(entry: ModelEntry) -> None:
    """Single-label classification over C classes: ``pred [B, C]`` logits (the shared
    ``prediction_size`` / ``shape_prediction``), the task loss is the cross-entropy against the
    one-hot label's class (computed here by hand), every parameter gets a gradient, padding
    changes nothing, and a row without a label is left out of the loss."""
    cfg = _cfg(entry, "iemocap", task="multiclass", num_labels=3)
    model = _model(entry, cfg).train()
    batch = _batch(cfg)
    out = model(batch)
    assert tuple(out.pred.shape) == (len(batch), 3)
    by_hand = -torch.log_softmax(out.pred.detach(), -1)[
        torch.arange(len(batch)), batch.labels.argmax(-1)
    ].mean()
    assert torch.allclose(out.losses["task"], by_hand, atol=1e-5), (out.losses["task"], by_hand)
    out.loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None and not entry.is_unused(n)]
    assert not missing, f"no gradient for a multiclass task: {missing}"
    model.eval()
    with torch.no_grad():
        a = model(_batch(cfg))
        b = model(_batch(cfg, extra=4, garbage=3.0))
        assert _close(a.pred, b.pred)
        partly = _batch(cfg)
        partly.labels[0] = float("nan")  # sample 0 unlabelled: out of the average
        kept = model(partly)
        want = -torch.log_softmax(kept.pred, -1)[
            torch.arange(1, len(partly)), partly.labels[1:].argmax(-1)
        ].mean()
        assert torch.allclose(kept.losses["task"], want, atol=1e-5)


# ------------------------------------------------------------------------ masks
@pytest.mark.parametrize("entry", MODELS, indirect=True)
def test_padding_to_a_longer_batch_changes_no_output(entry: ModelEntry) -> None:
    cfg = _cfg(entry)
    model = _model(entry, cfg).eval()
    with torch.no_grad():
        a = _call(entry, model, _batch(cfg))
        b = _call(entry, model, _batch(cfg, extra=7, garbage=5.0))
    ta, tb = _tensors(a), _tensors(b)
    assert ta.keys() == tb.keys()
    bad = [k for k in ta if not _close(ta[k], tb[k])]
    assert not bad, f"padding changed {bad}"
    for k in (a.attention or {}):  # maps grow with the padding: compare the real steps
        assert a.attention[k].shape[:2] == b.attention[k].shape[:2], k


# ------------------------------------------------------------------------ config and files
@pytest.mark.parametrize("dataset", list_presets())
@pytest.mark.parametrize("entry", MODELS, indirect=True)
def test_config_round_trips_through_json(entry: ModelEntry, dataset: str) -> None:
    for cfg in (config_for(entry.name, dataset), _cfg(entry, dataset)):
        back = config_from_dict(entry.name, json.loads(json.dumps(cfg.to_dict())))
        assert back == cfg and type(back) is type(cfg)


@pytest.mark.parametrize("entry", MODELS, indirect=True)
def test_checkpoint_save_load_gives_identical_predictions(
    entry: ModelEntry, tmp_path: Path
) -> None:
    cfg = _cfg(entry)
    model = _model(entry, cfg, seed=3).eval()
    batch = _batch(cfg)
    ckpt = Checkpoint(
        model=entry.name,
        model_config=cfg.to_dict(),
        dataset=cfg.dataset,
        task=cfg.task,
        label_names=["sentiment"],
        schema={},
        norm={},
        state_dict=model.state_dict(),
    )
    path = save_checkpoint(ckpt, tmp_path / "ckpt.pt")
    loaded = model_from_checkpoint(load_checkpoint(path), path).eval()
    with torch.no_grad():
        assert torch.equal(model(batch).pred, loaded(batch).pred)


# ------------------------------------------------------------------------ learning
@pytest.mark.parametrize("entry", MODELS, indirect=True)
def test_overfits_32_samples(entry: ModelEntry) -> None:
    """The task loss on 32 fixed samples falls below a tenth of its start within 300 steps."""
    cfg = _cfg(entry)
    g = torch.Generator().manual_seed(7)
    lengths = {m: torch.randint(1, 6, (32,), generator=g).tolist() for m in MODALITIES}
    batch = _batch(cfg, lengths, seed=7)
    model = _model(entry, cfg).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first, step = None, 0
    for step in range(300):  # noqa: B007 - reported below
        out = model(batch)
        task = float(out.losses["task"])
        first = task if first is None else first
        if task < 0.1 * first:
            break
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    assert task < 0.1 * first, f"task loss {first:.3f} -> {task:.3f} after {step} steps"


# ------------------------------------------------------------------------ switches
@pytest.mark.parametrize(
    ("entry", "switch"), SWITCH_CASES, indirect=["entry"], ids=[f"{m}-{s}" for m, s in SWITCH_CASES]
)
def test_every_switch_builds_runs_and_changes_what_it_says(entry: ModelEntry, switch: str) -> None:
    declared = entry.switches[switch]
    cfg = _cfg(entry)
    full, ablated = _model(entry, cfg), _model(entry, cfg.override({"ablations": [switch]}))
    assert ablated.cfg.ablations == (switch,)
    batch = _batch(cfg)
    out_full, out = _call(entry, full, batch), _call(entry, ablated, batch)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    missing = [
        n for n, p in ablated.named_parameters() if p.grad is None and not entry.is_unused(n)
    ]
    assert not missing, f"built but unused under {switch}: {missing}"
    names_full = [n for n, _ in full.named_parameters()]
    names = [n for n, _ in ablated.named_parameters()]
    for pattern in declared.removes:
        assert fnmatch.filter(names_full, pattern), f"{switch}: {pattern} matches nothing"
        assert not fnmatch.filter(names, pattern), f"{switch} kept {pattern}"
    for term in declared.drops_losses:
        assert term in out_full.losses and term not in out.losses, term
    for term in declared.adds_losses:
        assert term not in out_full.losses and term in out.losses, term
    for name in declared.drops_outputs:
        assert output_present(out_full, name) and not output_present(out, name), name
    _check_capabilities(entry, ablated, out)


# ------------------------------------------------------------------------ capabilities
def _check_capabilities(e: ModelEntry, model: torch.nn.Module, out) -> None:  # noqa: ANN001
    active = e.active_capabilities(model.cfg)
    n = len(out.pred)
    if "representations" in active:
        assert out.reps and set(out.reps) <= {"exclusive", "agnostic"}
        for per_mod in out.reps.values():
            assert set(per_mod) == set(MODALITIES)
            assert all(v.ndim == 2 and len(v) == n for v in per_mod.values())
    if "modality_weights" in active:
        assert out.psi, "declares modality weights but returns no psi"
        for psi in out.psi:
            assert psi.shape == (n, len(MODALITIES)) and (psi >= 0).all()
            assert torch.allclose(psi.sum(-1), torch.ones(n), atol=1e-5)
    else:
        assert not out.psi
    if "attention_maps" in active:
        square = {}
        for key, amap in (out.attention or {}).items():
            parts = key.split("/")
            if len(parts) == 3:
                square.setdefault(parts[2], []).append(amap)
                assert amap.ndim == 4 and amap.shape[0] == n and amap.shape[-1] == amap.shape[-2]
        assert set(square) == set(MODALITIES), "self-attention maps <block>/<layer>/<modality>"


@pytest.mark.parametrize("entry", MODELS, indirect=True)
def test_declared_capabilities_are_delivered(entry: ModelEntry) -> None:
    cfg = _cfg(entry)
    model = _model(entry, cfg).eval()
    with torch.no_grad():
        _check_capabilities(entry, model, _call(entry, model, _batch(cfg)))


# ------------------------------------------------------------------------ closed-form fit
CLOSED_FORM = [m for m in list_models() if "closed_form_fit" in get_entry(m).capabilities]
CLOSED_FORM += [v for v, (base, _) in VARIANTS.items() if base in CLOSED_FORM]


@pytest.mark.parametrize(
    ("dataset", "task", "k"),
    [("mosi", None, None), ("iemocap", None, None), ("iemocap", "multiclass", 3)],
)
@pytest.mark.parametrize("entry", CLOSED_FORM, indirect=True)
def test_closed_form_fit_learns_and_keeps_the_contract(
    entry: ModelEntry, dataset: str, task: str | None, k: int | None, tmp_path: Path
) -> None:
    """A model declaring ``closed_form_fit``: ``prepare_fit`` + ``fit_candidate`` on 32
    samples fit them (the least regularised candidate's task loss below half the unfitted
    one's), the returned loss is the model's own task loss, padding still changes nothing and
    the fitted model survives a checkpoint round trip."""
    cfg = _cfg(entry, dataset, **({"task": task, "num_labels": k} if task else {}))
    g = torch.Generator().manual_seed(7)
    lengths = {m: torch.randint(0, 6, (32,), generator=g).tolist() for m in MODALITIES}
    batch = _batch(cfg, lengths, seed=7)
    model = _model(entry, cfg).eval()
    with torch.no_grad():
        before = float(model(batch).losses["task"])
        model.prepare_fit(model.summaries(batch), batch.labels)
        losses = [model.fit_candidate(c) for c in model.candidates()]
        assert float(model(batch).losses["task"]) == pytest.approx(losses[-1], rel=1e-4, abs=1e-6)
        assert losses[-1] < 0.5 * before, (before, losses)
        padded = model(_batch(cfg, lengths, seed=7, extra=5, garbage=4.0))
        assert _close(model(batch).pred, padded.pred)
    ckpt = Checkpoint(
        model=entry.name, model_config=cfg.to_dict(), dataset=cfg.dataset, task=cfg.task,
        label_names=[f"y{i}" for i in range(cfg.num_labels)], schema={}, norm={},
        state_dict=model.state_dict(),
    )  # fmt: skip  (a checkpoint names one label per output: load_checkpoint checks it)
    path = save_checkpoint(ckpt, tmp_path / "ckpt.pt")
    loaded = model_from_checkpoint(load_checkpoint(path), path).eval()
    with torch.no_grad():
        assert torch.equal(model(batch).pred, loaded(batch).pred)


# ------------------------------------------------------------------------ masks with gaps
GAP_MASKS = [m for m in list_models() if "gap_masks" in get_entry(m).capabilities]


@pytest.mark.parametrize("entry", GAP_MASKS, indirect=True)
def test_a_gap_in_the_mask_equals_the_step_removed(entry: ModelEntry) -> None:
    """A model declaring ``gap_masks``: an interior step with mask False (garbage under it)
    gives every output of the same batch with that step removed, and a sequence with no step
    observed gives that of an empty sequence (``mea align``'s unobserved words)."""
    cfg = _cfg(entry)
    model = _model(entry, cfg).eval()
    seqs = random_sequences(DIMS, LENGTHS, seed=3)
    labels = _labels(cfg, len(LENGTHS["text"]))
    gapped = pad_batch(seqs, labels)
    removed = {m: list(v) for m, v in seqs.items()}
    for m in MODALITIES:  # sample 0: step 1 unobserved in every modality (each has 3 or more)
        gapped.inputs[m][0, 1], gapped.masks[m][0, 1] = 50.0, False
        removed[m][0] = torch.cat([seqs[m][0][:1], seqs[m][0][2:]])
    gapped.inputs["vision"][1], gapped.masks["vision"][1] = 50.0, False  # sample 1: no vision
    removed["vision"][1] = seqs["vision"][1][:0]
    with torch.no_grad():
        a, b = _tensors(_call(entry, model, gapped)), _tensors(_call(entry, model, pad_batch(removed, labels)))
    assert a.keys() == b.keys()
    bad = [k for k in a if not _close(a[k], b[k])]
    assert not bad, f"a gap is not the step removed in {bad}"
