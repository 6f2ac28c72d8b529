"""Decoupled Graph Fusion (Sec. III-F, Eq. 17-19) and the Table V alternatives.

For one graph whose nodes are the three modalities' vectors ``h_i`` (exclusive: heterogeneous
graph; agnostic: homogeneous graph, same procedure with its own parameters)::

    delta_ij = Q([W_e h_i, W_e h_j])                    Eq. 17, Q = one Linear(2 d_h -> 1)
    xi_ij    = softmax_{j in N_i}(GeLU(delta_ij))       Eq. 18
    h_fin    = sum_i sigmoid(sum_{j in N_i} xi_ij W_e h_j)   Eq. 19

``W_e`` (``d_h x d_h``, bias-free) is shared by all nodes of a graph. The paper calls the graph
directed with neighbours ``N_i``; in a three-node graph we take ``N_i`` to be the two *other*
modalities (no self-loop; ``dgf_self_loops=True`` adds them). The model concatenates
``[h_fin^e, h_fin^a]`` and predicts with fully connected layers.

Table V alternatives, in the same slot (they replace the per-graph aggregation):

* ``dgf`` switch (w/o DGF): concatenation of all six vectors ``[h^e_L, h^e_V, h^e_A, h^a_L, ...]``.
* ``add`` (w/ feature addition): ``sum_m h_m`` per graph, then concatenation of the two sums.
* ``mul`` (w/ feature multiplication [77]): ``prod_m h_m`` (element-wise) per graph, then
  concatenation. [77] is not specified further in the paper; this is the plain multiplicative
  interaction, documented as our reading.

**Absent modalities** (config ``fusion_absent``). A modality whose sequence is empty in a sample
(no speech, no face, no words) still has a node: the encoders' response to a zero vector, the
same constant for every such sample. ``"keep"`` (the default, the paper's graph of three nodes)
fuses it like any other. ``"drop"`` leaves it out of that sample's graphs: it is nobody's
neighbour, it adds no term to the sum of Eq. 19, and a node left without neighbours attends to
itself (``xi_ii = 1``); add and mul skip it, concatenation puts zeros in its place. A sample
with no modality at all keeps every node (there is nothing else to fuse). With every modality
present ``"drop"`` gives the paper's numbers. On an audio-only corpus the default graph mixes the
one real node with two constants before its sigmoid (docs/training.md, ``--preset small``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from mea_cli.models.core.masking import masked_softmax

FUSIONS: tuple[str, ...] = ("dgf", "concat", "add", "mul")
ABSENT: tuple[str, ...] = ("keep", "drop")
"""``fusion_absent`` values: fuse an empty modality's constant node (the paper) or leave it out."""


class GraphFusion(nn.Module):
    """One graph of Eq. 17-19 over ``M`` nodes."""

    def __init__(self, d_h: int, self_loops: bool = False) -> None:
        super().__init__()
        self.self_loops = self_loops
        self.W = nn.Linear(d_h, d_h, bias=False)
        self.Q = nn.Linear(2 * d_h, 1)

    def neighbours(self, m: int, device: torch.device) -> torch.Tensor:
        """``[M, M]`` bool, ``True`` where ``j`` is a neighbour of ``i``."""
        full = torch.ones(m, m, dtype=torch.bool, device=device)
        if self.self_loops or m == 1:
            return full
        return full & ~torch.eye(m, dtype=torch.bool, device=device)

    def forward(
        self, nodes: torch.Tensor, present: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``nodes [B, M, d_h]`` -> ``(h_fin [B, d_h], xi [B, M, M])``; ``present [B, M]``
        (bool, optional): the nodes of each sample's graph (``fusion_absent="drop"``)."""
        b, m, _ = nodes.shape
        p = self.W(nodes)
        pairs = torch.cat(
            [p.unsqueeze(2).expand(b, m, m, -1), p.unsqueeze(1).expand(b, m, m, -1)], dim=-1
        )
        delta = self.Q(pairs).squeeze(-1)  # Eq. 17
        nb = self.neighbours(m, nodes.device)
        if present is None:
            xi = masked_softmax(F.gelu(delta), nb)  # Eq. 18
            return torch.sigmoid(xi @ p).sum(dim=1), xi  # Eq. 19
        nb = nb.unsqueeze(0) & present.unsqueeze(1)  # [B, M, M]: absent nodes are no neighbours
        alone = ~nb.any(dim=-1, keepdim=True)  # no neighbour left: attend to itself
        nb = nb | (alone & torch.eye(m, dtype=torch.bool, device=nodes.device))
        xi = masked_softmax(F.gelu(delta), nb)
        h = (torch.sigmoid(xi @ p) * present.unsqueeze(-1).to(p.dtype)).sum(dim=1)
        return h, xi


class Fusion(nn.Module):
    """Turn the exclusive and/or agnostic vectors into one vector for the prediction head."""

    def __init__(
        self,
        mode: str,
        d_h: int,
        graphs: tuple[str, ...],
        n_modalities: int,
        self_loops: bool,
        absent: str = "keep",
    ) -> None:
        super().__init__()
        if mode not in FUSIONS or absent not in ABSENT:
            raise ValueError(f"unknown fusion {mode!r} or fusion_absent {absent!r}")
        self.mode = mode
        self.drop_absent = absent == "drop"
        self.graphs = graphs
        self.gnn = (
            nn.ModuleDict({g: GraphFusion(d_h, self_loops) for g in graphs})
            if mode == "dgf"
            else None
        )
        self.out_dim = d_h * (n_modalities * len(graphs) if mode == "concat" else len(graphs))

    def forward(
        self,
        reps: dict[str, dict[str, torch.Tensor]],
        present: dict[str, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``reps[graph][modality] [B, d_h]`` -> ``(fused [B, out_dim], {graph: xi})``;
        ``present[modality] [B]`` (bool: at least one real step) is read with
        ``fusion_absent="drop"`` only."""
        parts, xis = [], {}
        for g in self.graphs:
            nodes = torch.stack(list(reps[g].values()), dim=1)
            keep = self._nodes(reps[g], present) if self.drop_absent else None
            if keep is not None and self.mode != "dgf":  # absent: 0 for concat / add, 1 for mul
                w = keep.unsqueeze(-1).to(nodes.dtype)
                nodes = nodes * w + (1.0 - w) * float(self.mode == "mul")
            if self.mode == "dgf":
                h, xis[g] = self.gnn[g](nodes, keep)
            elif self.mode == "concat":
                h = nodes.flatten(1)
            elif self.mode == "add":
                h = nodes.sum(dim=1)
            else:
                h = nodes.prod(dim=1)
            parts.append(h)
        return torch.cat(parts, dim=-1), xis

    @staticmethod
    def _nodes(
        graph: dict[str, torch.Tensor], present: dict[str, torch.Tensor] | None
    ) -> torch.Tensor | None:
        """``[B, M]`` bool: the nodes each sample keeps (all of them where none is present)."""
        if present is None:
            raise ValueError("fusion_absent='drop' needs the modalities' presence")
        keep = torch.stack([present[m] for m in graph], dim=1)
        return keep | ~keep.any(dim=1, keepdim=True)
