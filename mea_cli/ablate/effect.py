"""Does a swept model-config value change anything? (``mea sweep``'s no-effect flag)

Some fields only matter in some configurations: the PSA coefficient ``mu`` mixes a layer's
attention with the previous layer's, so with one PSA layer every ``mu`` builds the same model
and trains to identical rows. A table of identical rows with no word is misleading, so before
tabulating, each swept value's model is built and run once, in the same conditions:

* the same torch seed before construction (so equal architectures get equal weights);
* one fixed batch: the first few training samples of the run's store, normalised with its
  train statistics, in training mode with the same torch seed before the forward pass;
* the fingerprint is the ``state_dict`` (names, shapes and values), the prediction, the total
  loss and every parameter's gradient of that loss.

Two values with equal fingerprints take identical first optimisation steps from identical
weights: the field has no effect **detected at initialisation** in this configuration (a field
whose effect appears only later in training would not be caught; the flag never claims more).
Training settings (``train.*``) are not checked: they act on the optimiser, not the model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from mea_cli.artifacts.features import FeatureStore
from mea_cli.data.dataset import FeatureDataset, NormStats, make_loader
from mea_cli.models import config_from_dict
from mea_cli.runtime.loading import build_model

FIXED_BATCH = 4
BUILD_SEED = 0


def fixed_batch(features: Any, size: int = FIXED_BATCH) -> Any:
    """The first ``size`` training samples of the store ``features`` as one model batch."""
    with FeatureStore(features) as store:
        stats = NormStats.fit(store, "train")
        ds = FeatureDataset(store, "train", stats)
        return next(iter(make_loader(ds, size, shuffle=False)))


def fingerprint(model: str, config: Mapping[str, Any], batch: Any) -> list[torch.Tensor]:
    """Weights, prediction, loss and gradients of ``model`` built from ``config`` on ``batch``."""
    torch.manual_seed(BUILD_SEED)
    net = build_model(model, config)
    net.train()
    torch.manual_seed(BUILD_SEED + 1)
    out = net(batch)
    prints = [t.detach().clone() for t in net.state_dict().values()]
    prints.append(out.pred.detach().float())
    if out.loss is not None:
        prints.append(out.loss.detach().float().reshape(1))
        out.loss.backward()
    prints += [
        p.grad.detach().clone() if p.grad is not None else torch.zeros(0)
        for p in net.parameters()
    ]
    shapes = [tuple(t.shape) for t in net.state_dict().values()]
    prints.append(torch.tensor([len(shapes), *(d for s in shapes for d in (len(s), *s))]))
    return prints


def _same(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(
        x.shape == y.shape and x.dtype == y.dtype and torch.equal(x, y) for x, y in zip(a, b, strict=True)
    )


def identical_values(
    model: str,
    base_config: Mapping[str, Any],
    key: str,
    values: Sequence[Any],
    texts: Sequence[str],
    batch: Any,
) -> list[list[str]]:
    """Groups (two or more) of swept values, as typed, that build the same model (module
    docstring); empty when every value makes a difference."""
    prints = []
    for v in values:
        cfg = config_from_dict(model, {**base_config, key: v}).to_dict()
        prints.append(fingerprint(model, cfg, batch))
    groups: list[list[int]] = []
    for i, p in enumerate(prints):
        for g in groups:
            if _same(prints[g[0]], p):
                g.append(i)
                break
        else:
            groups.append([i])
    return [[texts[i] for i in g] for g in groups if len(g) > 1]


def no_effect_note(display: str, groups: Sequence[Sequence[str]]) -> str:
    """The table note for :func:`identical_values`' groups ("" when there are none)."""
    if not groups:
        return ""
    which = "; ".join(" and ".join(f"{display}={t}" for t in g) for g in groups)
    return (
        f"NO EFFECT: {which} build the same model (same weights, prediction, loss and "
        f"gradients on a fixed batch at initialisation): {display} changes nothing there in "
        "this configuration, so those rows are the same training."
    )
