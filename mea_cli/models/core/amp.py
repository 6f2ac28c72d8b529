"""Mixed precision for the models' hand-written autograd Functions.

A custom :class:`torch.autograd.Function` runs its ``forward`` under whatever autocast is
active (the trainer's bf16 autocast on CUDA), but autograd runs its ``backward`` outside it.
A backward that recomputes from saved tensors (the lean feed-forward recomputes ``fc1(x)``)
then mixes a bf16 activation with an fp32 weight and fails ("mat1 and mat2 must have the same
dtype"). :func:`keeps_autocast` records the autocast state in ``forward`` and re-enters it in
``backward``, as :func:`torch.amp.custom_fwd`/:func:`torch.amp.custom_bwd` do for one fixed
device type, here for whichever device's autocast was on.
"""

from __future__ import annotations

import functools
from contextlib import nullcontext
from typing import Any

import torch

_DEVICES = ("cuda", "cpu")


def _active() -> tuple[str, torch.dtype] | None:
    for device in _DEVICES:
        if torch.is_autocast_enabled(device):
            return device, torch.get_autocast_dtype(device)
    return None


def keeps_autocast(cls: type[torch.autograd.Function]) -> type[torch.autograd.Function]:
    """Class decorator: ``backward`` runs under the autocast state ``forward`` ran under."""
    forward, backward = cls.forward, cls.backward

    @functools.wraps(forward)
    def fwd(ctx: Any, *args: Any, **kwargs: Any) -> Any:
        ctx.autocast_state = _active()
        return forward(ctx, *args, **kwargs)

    @functools.wraps(backward)
    def bwd(ctx: Any, *grads: Any) -> Any:
        state = getattr(ctx, "autocast_state", None)
        scope = torch.autocast(state[0], dtype=state[1]) if state else nullcontext()
        with scope:
            return backward(ctx, *grads)

    cls.forward = staticmethod(fwd)  # type: ignore[assignment]
    cls.backward = staticmethod(bwd)  # type: ignore[assignment]
    return cls

