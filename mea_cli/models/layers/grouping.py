"""Length-grouped execution of per-sample layers: cut a padded batch into groups of samples of
similar length, trim each group to its own longest sequences, run the layer per group, and put
the outputs back in batch order at the batch's padded length.

Why: attention costs grow with ``T_q x T_k`` per sample, and a batch pads every sample to the
batch's longest sequence. MOSI-like lengths vary tenfold within a batch (vision 50 to 500
frames), so most of the entries of a padded ``[B, K, T, T]`` map belong to padded pairs: for
lengths uniform on ``[T/10, T]`` only about a third are real. PSA (Eq. 2-4) and HCA (Eq. 7-10)
act on each sample separately (nothing in them mixes samples) and ignore padded steps (masks;
tested), so running them on trimmed groups gives the same numbers as the padded batch, up to
floating-point summation order, while forming far fewer map entries; the group size also bounds
the memory that one group's maps take at a time.

A *plan* sorts the samples by length (longest first) and adds samples to the current group while
``group size x cost(group's longest lengths) <= budget`` (at least one sample per group). The
plan depends only on the masks, so every layer that sees the same masks can reuse it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional as F


@dataclass(frozen=True)
class Group:
    """One group of samples: their batch indices and the length each modality is trimmed to."""

    index: torch.Tensor  # [g] long, positions in the batch
    lengths: dict[str, int]  # modality -> trimmed length (>= 1)
    full: bool  # every member has exactly the trimmed length of every modality: no padding


@dataclass(frozen=True)
class Plan:
    """The groups of one batch and the permutation that undoes their concatenation."""

    groups: tuple[Group, ...]
    inverse: torch.Tensor  # [B] long: row of the concatenated group outputs for each sample
    order: torch.Tensor  # [B] long: the groups' batch indices, concatenated (inverse of inverse)

    def __len__(self) -> int:
        return len(self.groups)


def plan_groups(
    masks: Mapping[str, torch.Tensor],
    cost: Callable[[Mapping[str, int]], int],
    budget: int,
) -> Plan:
    """Group the samples of ``masks`` (modality -> ``[B, T]`` bool) under ``budget``.

    ``cost(lengths)`` is the work or memory of *one* sample padded to ``lengths`` (e.g. the
    entries of its attention maps); a group's cost is its size times the cost at its longest
    lengths. Samples are taken longest first (by the sum of their lengths), ties in batch order.
    """
    names = list(masks)
    device = next(iter(masks.values())).device
    lens = {m: masks[m].sum(dim=1).tolist() for m in names}
    n = len(lens[names[0]])
    order = sorted(range(n), key=lambda i: -sum(lens[m][i] for m in names))
    groups: list[Group] = []
    current: list[int] = []
    top: dict[str, int] = {}
    for i in order:
        cand = {m: max(top.get(m, 1), lens[m][i], 1) for m in names}
        if current and (len(current) + 1) * cost(cand) > budget:
            groups.append(_group(current, top, lens, device))
            current, cand = [], {m: max(lens[m][i], 1) for m in names}
        current.append(i)
        top = cand
    if current:
        groups.append(_group(current, top, lens, device))
    order = torch.tensor([i for g in groups for i in g.index.tolist()], dtype=torch.long)
    inverse = torch.empty(n, dtype=torch.long)
    inverse[order] = torch.arange(n)
    return Plan(tuple(groups), inverse.to(device), order.to(device))


def _group(
    members: list[int], top: dict[str, int], lens: dict[str, list[int]], device: torch.device
) -> Group:
    full = all(lens[m][i] == top[m] for m in top for i in members)
    return Group(torch.tensor(members, dtype=torch.long, device=device), dict(top), full)


def take(x: torch.Tensor, group: Group, modality: str) -> torch.Tensor:
    """Rows of ``group`` from ``x [B, T, ...]``, trimmed to the group's length of ``modality``."""
    return x.index_select(0, group.index)[:, : group.lengths[modality]]


def take_groups(x: torch.Tensor, plan: Plan, modality: str) -> list[torch.Tensor]:
    """:func:`take` of every group of ``plan`` (same values), from one gather of the batch.

    The rows are put in the plan's order once and split into the groups; then each part is
    trimmed. Why: the backward pass of a per-group ``index_select`` zero-fills a gradient of the
    whole ``[B, T, ...]`` batch for every group (at MOSI lengths nearly every sample is a group
    of its own), while this one scatters once and concatenates the groups' gradients.
    """
    parts = x.index_select(0, plan.order).split([len(g.index) for g in plan.groups])
    return [p[:, : g.lengths[modality]] for p, g in zip(parts, plan.groups, strict=True)]


def put_back(parts: Sequence[torch.Tensor], plan: Plan, length: int) -> torch.Tensor:
    """Inverse of :func:`take` over a whole plan: ``parts[i] [g_i, t_i, ...]`` -> ``[B, length, ...]``.

    Each part is zero-padded in time to ``length`` (the batch's padded length; padded steps of
    every layer's output are zero anyway) and the samples are returned to batch order.
    """
    padded = []
    for p in parts:
        extra = length - p.shape[1]
        if extra:
            pad = [0, 0] * (p.dim() - 2) + [0, extra]
            p = F.pad(p, pad)
        padded.append(p)
    return torch.cat(padded, dim=0).index_select(0, plan.inverse)
