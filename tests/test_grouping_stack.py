"""Cutting a batch into length groups once (issue 27, item 4): the same numbers as per layer.

``take_groups`` gathers every group of a plan from one ``index_select`` (values and gradients
equal to a per-group ``take``); ``hca.run_grouped`` runs a stack of HCA layers on the groups of
one plan, layer by layer, and must give exactly what the layers give one after the other, in
training mode with dropout too (the same random draws in the same order); gradients to float32
rounding.
"""

from __future__ import annotations

import pytest
import torch

from mea_cli.models.layers.grouping import plan_groups, put_back, take, take_groups
from mea_cli.models.mea.hca import HCALayer, run_grouped

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NAMES = ("text", "vision", "audio")
LENGTHS = {"text": [3, 0, 5, 1, 5, 9], "vision": [8, 4, 0, 2, 8, 12], "audio": [6, 6, 1, 0, 9, 9]}


def _masks() -> dict[str, torch.Tensor]:
    return {m: torch.arange(12)[None, :] < torch.tensor(v)[:, None] for m, v in LENGTHS.items()}


def test_take_groups_equals_take_per_group_values_and_gradients() -> None:
    masks = _masks()
    plan = plan_groups(masks, lambda n: max(n.values()) ** 2, budget=300)
    assert 1 < len(plan) < 6  # some groups of several samples, some alone
    assert sorted(plan.order.tolist()) == list(range(6))
    assert torch.equal(plan.order[plan.inverse], torch.arange(6))
    x = torch.randn(6, 12, 3, requires_grad=True)
    y = x.detach().clone().requires_grad_()
    weights = torch.randn(6, 12, 3)
    parts = take_groups(x, plan, "vision")
    ref = [take(y, g, "vision") for g in plan.groups]
    assert all(torch.equal(a, b) for a, b in zip(parts, ref, strict=True))
    (put_back(parts, plan, 12) * weights).sum().backward()
    (put_back(ref, plan, 12) * weights).sum().backward()
    assert torch.equal(x.grad, y.grad)


def _layers(dropout: float) -> torch.nn.ModuleList:
    torch.manual_seed(0)
    return torch.nn.ModuleList(
        HCALayer(NAMES, 8, 2, dropout, 0.0, 2, group_budget=400) for _ in range(2)
    )


@pytest.mark.parametrize("train", [False, True])
def test_grouped_stack_equals_layers_one_after_the_other(train: bool) -> None:
    """Outputs bit for bit, gradients to float32 rounding (the same terms, summed in another
    order: a source's gradient now gathers both layers' before its one scatter); train mode:
    dropout 0.3 from the same seed, so the same draws in the same order."""
    masks = _masks()
    layers = _layers(0.3).train(train)
    z = {m: torch.randn(6, 12, 8) * masks[m][..., None] for m in NAMES}
    results = []
    for stacked in (True, False):
        zs = {m: v.clone().requires_grad_() for m, v in z.items()}
        layers.zero_grad()
        torch.manual_seed(7)
        if stacked:
            out = run_grouped(tuple(layers), zs, dict(zs), masks)
        else:
            out = dict(zs)
            for layer in layers:
                out = layer(zs, out, masks)
        sum((o * (1 + torch.arange(8.0))).sum() for o in out.values()).backward()
        grads = [p.grad.clone() for p in layers.parameters()] + [zs[m].grad for m in NAMES]
        results.append(([out[m].detach() for m in NAMES], grads))
    (a, ga), (b, gb) = results
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    for x, y in zip(ga, gb, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6)
    assert all(bool((o[~masks[m]] == 0).all()) for o, m in zip(a, NAMES, strict=True))
