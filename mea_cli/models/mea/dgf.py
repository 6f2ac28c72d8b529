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
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from mea_cli.models.core.masking import masked_softmax

FUSIONS: tuple[str, ...] = ("dgf", "concat", "add", "mul")


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

    def forward(self, nodes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``nodes [B, M, d_h]`` -> ``(h_fin [B, d_h], xi [B, M, M])``."""
        b, m, _ = nodes.shape
        p = self.W(nodes)
        pairs = torch.cat(
            [p.unsqueeze(2).expand(b, m, m, -1), p.unsqueeze(1).expand(b, m, m, -1)], dim=-1
        )
        delta = self.Q(pairs).squeeze(-1)  # Eq. 17
        xi = masked_softmax(F.gelu(delta), self.neighbours(m, nodes.device))  # Eq. 18
        h = torch.sigmoid(xi @ p).sum(dim=1)  # Eq. 19
        return h, xi


class Fusion(nn.Module):
    """Turn the exclusive and/or agnostic vectors into one vector for the prediction head."""

    def __init__(
        self, mode: str, d_h: int, graphs: tuple[str, ...], n_modalities: int, self_loops: bool
    ) -> None:
        super().__init__()
        if mode not in FUSIONS:
            raise ValueError(f"unknown fusion {mode!r}")
        self.mode = mode
        self.graphs = graphs
        self.gnn = (
            nn.ModuleDict({g: GraphFusion(d_h, self_loops) for g in graphs})
            if mode == "dgf"
            else None
        )
        self.out_dim = d_h * (n_modalities * len(graphs) if mode == "concat" else len(graphs))

    def forward(
        self, reps: dict[str, dict[str, torch.Tensor]]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``reps[graph][modality] [B, d_h]`` -> ``(fused [B, out_dim], {graph: xi})``."""
        parts, xis = [], {}
        for g in self.graphs:
            nodes = torch.stack(list(reps[g].values()), dim=1)
            if self.mode == "dgf":
                h, xis[g] = self.gnn[g](nodes)
            elif self.mode == "concat":
                h = nodes.flatten(1)
            elif self.mode == "add":
                h = nodes.sum(dim=1)
            else:
                h = nodes.prod(dim=1)
            parts.append(h)
        return torch.cat(parts, dim=-1), xis
