"""A configuration too big to train is refused in one line before anything is built.

``--set psa_layers=1000000000`` spent minutes building modules until the kernel killed the
process, and ``--set d=100000`` ended in an allocator traceback: layer counts are bounded
(``MAX_LAYERS``) and a changed configuration's parameters are counted on torch's ``meta`` device
(``registry.model_size``) against the machine's memory (``registry.check_size``).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mea_cli.config import ConfigError
from mea_cli.models import config_for, create_model, list_models
from mea_cli.models.core.contract import MAX_LAYERS, layer_problems
from mea_cli.models.core.registry import (
    TRAINING_BYTES_PER_PARAMETER,
    ModelSizeError,
    check_size,
    model_size,
)

LAYER_FIELDS = {
    "mea": ("psa_layers", "hca_layers"),
    "mfsa": ("psa_layers", "hca_layers"),
    "mcr": ("layers", "encoder_layers"),
    "mult": ("layers", "memory_layers"),
    "fdmer": ("transformer_layers",),
    "functionals": (),
}


def test_every_model_is_listed_here() -> None:
    assert sorted(LAYER_FIELDS) == sorted(list_models())


@pytest.mark.parametrize("name", list_models())
def test_meta_count_is_the_built_models(name: str) -> None:
    """The count taken without allocating equals the real model's parameters and buffers."""
    cfg = config_for(name, "mosi")
    model = create_model(name, cfg)
    real = (
        sum(p.numel() for p in model.parameters()),
        sum(b.numel() for b in model.buffers()),
    )
    assert model_size(name, cfg) == real
    assert real[0] > 0


@pytest.mark.parametrize("name", list_models())
def test_check_size_draws_the_line_at_the_training_bytes(name: str) -> None:
    cfg = config_for(name, "mosi")
    params, buffers = model_size(name, cfg)
    need = params * TRAINING_BYTES_PER_PARAMETER + buffers * 4
    check_size(name, cfg, memory=need)  # exactly enough: accepted
    with pytest.raises(ModelSizeError) as err:
        check_size(name, cfg, memory=need - 1)
    text = str(err.value)
    assert f"{params:,} parameters" in text and name in text and "\n" not in text


@pytest.mark.parametrize(
    ("name", "field", "value"),
    [("mea", "d", 100_000), ("mea", "ffn_mult", 100_000), ("mult", "d", 20_000),
     ("mcr", "d", 100_000), ("fdmer", "d_k", 1_000_000)],  # fmt: skip
)
def test_an_oversized_override_is_refused_without_building(
    name: str, field: str, value: int
) -> None:
    """config_for counts a changed config: the 10**10-parameter models are never allocated
    (a real build would raise the allocator's error or be killed, not ModelSizeError)."""
    with pytest.raises(ModelSizeError, match="more than this machine's"):
        config_for(name, "mosi", **{field: value})


@pytest.mark.parametrize("name", [n for n, f in LAYER_FIELDS.items() if f])
def test_layer_counts_are_bounded(name: str) -> None:
    base = config_for(name, "mosi")
    for field in LAYER_FIELDS[name]:
        current = getattr(base, field)
        wide = isinstance(current, tuple)
        ok = (MAX_LAYERS,) * len(current) if wide else MAX_LAYERS
        over = (*current[:-1], MAX_LAYERS + 1) if wide else MAX_LAYERS + 1
        assert dataclasses.replace(base, **{field: ok}).problems() == []  # type: ignore[call-overload]
        with pytest.raises(ConfigError, match=f"{field} must be .*between 1 and {MAX_LAYERS}"):
            dataclasses.replace(base, **{field: over})


def test_layer_problems_names_each_field() -> None:
    assert layer_problems({"a": 1, "b": MAX_LAYERS}) == []
    assert layer_problems({"a": 0, "b": MAX_LAYERS + 1}, " (hint)") == [
        f"a must be between 1 and {MAX_LAYERS}, not 0 (hint)",
        f"b must be between 1 and {MAX_LAYERS}, not {MAX_LAYERS + 1} (hint)",
    ]


def test_a_model_that_cannot_be_built_on_meta_is_let_through() -> None:
    """A plug-in whose constructor reads a tensor's value cannot be counted without allocating:
    check_size passes it (the real build then runs as before) instead of raising meta's error."""
    import tiny_model
    from torch import nn

    from mea_cli.models import register_model
    from mea_cli.models.core.registry import unregister_model

    @dataclasses.dataclass(frozen=True)
    class ReadsConfig(tiny_model.TinyConfig):
        WHAT = "reads-a-value configuration"

    class Reads(nn.Module):
        def __init__(self, cfg: ReadsConfig) -> None:
            super().__init__()
            self.scale = float(torch.ones(1).sum())  # .item(): no value on the meta device
            self.lin = nn.Linear(cfg.hidden, 1)

    register_model("reads-a-value", ReadsConfig)(Reads)
    try:
        cfg = config_for("reads-a-value", "mosi", hidden=4)  # not countable: let through
        check_size("reads-a-value", cfg, memory=1)
        assert create_model("reads-a-value", cfg).scale == 1.0
    finally:
        unregister_model("reads-a-value")
