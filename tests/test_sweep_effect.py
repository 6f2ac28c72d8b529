"""``mea sweep``'s no-effect flag (mea_cli.ablate.effect): a swept value that builds the same
model (weights, prediction, loss and gradients on a fixed batch) is flagged; one that changes
the forward pass or the loss is not."""

from __future__ import annotations

from pathlib import Path

from mea_cli.ablate.effect import fixed_batch, identical_values, no_effect_note
from mea_cli.artifacts.features import FeatureStore
from mea_cli.models.core.registry import get_entry

TINY = {"d": 8, "heads": 2, "d_h": 8, "hca_layers": 1}


def _config(store: Path, **over: object) -> dict:
    with FeatureStore(store) as s:
        dims = {m: sch.dim for m, sch in s.modalities.items()}
        task, k = s.meta.task, len(s.meta.label_names)
    cfg = get_entry("mea").config_cls.preset("mosi", dims, task, k)
    return cfg.override({**TINY, **over}).to_dict()


def test_mu_with_one_psa_layer_is_flagged_and_fields_that_act_are_not(
    synth_mosi: Path, one_torch_thread
) -> None:
    batch = fixed_batch(synth_mosi)
    one = _config(synth_mosi, psa_layers=1)
    two = _config(synth_mosi, psa_layers=2)
    groups = identical_values("mea", one, "mu", [0.0, 0.3, 0.6], ["0", "0.3", "0.6"], batch)
    assert groups == [["0", "0.3", "0.6"]]
    assert no_effect_note("mu", groups).startswith("NO EFFECT: mu=0 and mu=0.3 and mu=0.6 build")
    # two layers: mu mixes their attention maps; alpha weighs a loss term; d changes shapes
    assert identical_values("mea", two, "mu", [0.0, 0.3], ["0", "0.3"], batch) == []
    assert identical_values("mea", one, "alpha", [0.1, 0.9], ["0.1", "0.9"], batch) == []
    assert identical_values("mea", one, "d", [8, 12], ["8", "12"], batch) == []
    assert no_effect_note("mu", []) == ""
