"""Four parts of MEA recomputed by hand from the modules' own parameters: the uni-modal
extractor (Eq. 1), the literal weighted attention layer (Eq. 5, ``wal_literal=true``), the
stacking of HCA layers (``docs/model.md`` decision 6) and the decoupled graph fusion as the
prediction head sees it (Eq. 17-19).

The references are written here with numpy or plain torch ops (``F.conv1d``, a fresh
``nn.LSTM`` given the extractor's weights, the sinusoid formula, ``tanh`` of a matrix product,
the three steps of Eq. 17-19), not through the module's own forward code. Each test fails under
a specific wrong model: the positional embedding removed or wrong, ``tanh`` dropped from Eq. 5,
the HCA sources carried from layer to layer, the two graphs of DGF swapped or merged.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from model_helpers import pad_batch, random_sequences
from torch import nn
from torch.nn import functional as F

from mea_cli import MODALITIES
from mea_cli.batch import Batch
from mea_cli.models import config_for, create_model
from mea_cli.models.layers.attention import explicit_attention
from mea_cli.models.layers.extractor import UnimodalExtractor
from mea_cli.models.mea.dgf import GraphFusion
from mea_cli.models.mea.hca import HCALayer
from mea_cli.models.mea.wal import WeightedAttentionLayer

DIMS = {"text": 5, "vision": 4, "audio": 3}
TINY = dict(d=8, heads=2, d_h=8, psa_layers=2, hca_layers=2, dropout=0.0, attn_dropout=0.0)
LENGTHS = {"text": [3, 0, 5, 2], "vision": [6, 4, 0, 2], "audio": [4, 5, 1, 0]}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _model(**overrides: object) -> nn.Module:
    torch.manual_seed(0)
    cfg = config_for("mea", "mosi", input_dims=DIMS, **{**TINY, **overrides})
    return create_model("mea", cfg).eval()


def _batch(seed: int = 0) -> Batch:
    seqs = random_sequences(DIMS, LENGTHS, seed=seed)
    return pad_batch(seqs, torch.randn(4, 1), extra=2, garbage=3.0)


def _mask(lengths: list[int], t: int) -> torch.Tensor:
    return torch.arange(t)[None, :] < torch.tensor(lengths)[:, None]


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


# ---------------------------------------------------------------- Eq. 1: the extractor
def _np_positions(t: int, d: int) -> np.ndarray:
    """The Transformer's sinusoid [24], written out: ``PE[p, 2i] = sin(p / 10000^(2i/d))``,
    ``PE[p, 2i+1] = cos(p / 10000^(2i/d))``, positions counted from 0 at each sequence's start."""
    pe = np.zeros((t, d))
    for p in range(t):
        for i in range(0, d, 2):
            angle = p / 10000.0 ** (i / d)
            pe[p, i] = math.sin(angle)
            pe[p, i + 1] = math.cos(angle)
    return pe


@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("packed", [False, True])
def test_extractor_is_eq_1_by_hand(kernel: int, packed: bool) -> None:
    """Eq. 1 with decision 4: ``Z_m = Bi-LSTM(sqrt(d) Conv1d(X_m) + PE)`` on each sample's real
    steps alone: the bias-free Conv1d with 'same' zero padding (``k // 2``) sees zeros beyond the
    real end, the sinusoidal embedding starts at position 0, the Bi-LSTM (``d / 2`` per direction)
    runs over the real steps only; padded steps (garbage in the input) come out as zeros, and a
    zero-length sequence is all zeros. Both the default unpacked Bi-LSTM and the packed reference
    path (``explicit_attention()``)."""
    d, d_in, t = 8, 5, 9
    lengths = [7, 4, 1, 0]
    torch.manual_seed(0)
    ext = UnimodalExtractor(d_in, d, kernel, dropout=0.0).eval()
    assert ext.conv.bias is None and ext.conv.padding == (kernel // 2,)
    g = torch.Generator().manual_seed(1)
    mask = _mask(lengths, t)
    x = torch.randn(len(lengths), t, d_in, generator=g).masked_fill(~mask[..., None], 5.0)
    with torch.no_grad(), explicit_attention(packed):
        z = ext(x, mask)
    assert z.shape == (len(lengths), t, d)
    lstm = nn.LSTM(d, d // 2, batch_first=True, bidirectional=True)
    lstm.load_state_dict(ext.lstm.state_dict())
    lstm.eval()
    for i, n in enumerate(lengths):
        assert torch.all(z[i, n:] == 0), i  # padded steps (and an empty sequence): zeros
        if n == 0:
            continue
        with torch.no_grad():
            conv = F.conv1d(x[i, :n].T[None], ext.conv.weight, None, padding=kernel // 2)[0].T
            h = conv * math.sqrt(d) + torch.from_numpy(_np_positions(n, d)).to(conv.dtype)
            expect, _ = lstm(h[None])
        torch.testing.assert_close(
            z[i, :n], expect[0], atol=1e-5, rtol=0, msg=lambda s, i=i: f"sample {i}: {s}"
        )


# ---------------------------------------------------------------- Eq. 5: the literal WAL
def _np_literal_gamma(wal: WeightedAttentionLayer, m: str, real: np.ndarray) -> float:
    """Eq. 5 to the letter: ``gamma_m = P_m^T tanh(W_m vec(Z^e_m) + b_m)`` with ``vec`` the
    row-major flattening (step after step) of the ``wal_max_len x d`` map whose first steps are
    the sample's real steps ``real [n, d]`` and the rest zeros."""
    d = real.shape[1]
    vec = np.zeros(wal.max_len * d)
    vec[: real.size] = real.reshape(-1)
    w = wal.W[m].weight.detach().double().numpy()
    b = wal.W[m].bias.detach().double().numpy()
    p = wal.P[m].weight.detach().double().numpy()[0]
    return float(p @ np.tanh(w @ vec + b))


def _np_psi(gammas: dict[str, float | None]) -> np.ndarray:
    """Eq. 6 over the modalities that have real steps (an empty one takes no share)."""
    present = {m: g for m, g in gammas.items() if g is not None}
    top = max(present.values())
    e = {m: math.exp(g - top) for m, g in present.items()}
    total = sum(e.values())
    return np.array([e[m] / total if m in e else 0.0 for m in gammas])


def test_wal_literal_score_is_eq_5_by_hand() -> None:
    """Eq. 5-6 with ``wal_literal=true`` (decision 5): ``W_m`` is ``(T d) x (T d)`` with its bias
    ``b_m``, ``P_m`` a ``T d`` vector (no bias), ``T = wal_max_len``; a sequence (zero at its
    padded steps, as a PSA layer hands it) is zero-padded to ``T`` steps and flattened step after
    step; ``psi`` is the softmax of the three scores, an empty modality scores lowest and gets 0."""
    d, max_len, t = 4, 6, 5
    lengths = {"text": [5, 2, 3], "vision": [5, 0, 1], "audio": [4, 5, 2]}
    torch.manual_seed(2)
    wal = WeightedAttentionLayer(MODALITIES, d, literal=True, max_len=max_len).eval()
    with torch.no_grad():  # sharper than at init, so that tanh is far from linear
        for m in MODALITIES:
            wal.W[m].weight.mul_(4.0)
            wal.W[m].bias.mul_(4.0)
    assert wal.W["text"].weight.shape == (max_len * d, max_len * d)
    assert wal.W["text"].bias.shape == (max_len * d,)
    assert wal.P["text"].weight.shape == (1, max_len * d) and wal.P["text"].bias is None
    g = torch.Generator().manual_seed(3)
    zs, masks = {}, {}
    for m in MODALITIES:
        masks[m] = _mask(lengths[m], t)
        zs[m] = torch.randn(3, t, d, generator=g) * masks[m][..., None]
    with torch.no_grad():
        gamma = wal.scores(zs, masks)
        weighted, psi = wal(zs, masks)
    for i in range(3):
        by_hand: dict[str, float | None] = {}
        for j, m in enumerate(MODALITIES):
            n = lengths[m][i]
            if n == 0:
                by_hand[m] = None
                assert gamma[i, j] == torch.finfo(gamma.dtype).min
                continue
            by_hand[m] = _np_literal_gamma(wal, m, zs[m][i, :n].double().numpy())
            assert abs(float(gamma[i, j]) - by_hand[m]) < 1e-5, (m, i)
        np.testing.assert_allclose(psi[i].double().numpy(), _np_psi(by_hand), atol=1e-6)
    for j, m in enumerate(MODALITIES):  # Eq. 6: Z^e_m <- psi_m Z^e_m
        torch.testing.assert_close(weighted[m], zs[m] * psi[:, j, None, None])
    garbage = {m: zs[m] + 7.0 * (~masks[m])[..., None] for m in MODALITIES}
    with torch.no_grad():  # the score reads the real steps only, whatever lies under the mask
        torch.testing.assert_close(wal.scores(garbage, masks), gamma)


def _record_wal_inputs(model: nn.Module) -> list[tuple[dict[str, torch.Tensor], torch.Tensor]]:
    """Wrap each WAL's ``scores`` so that its input maps and its scores are recorded."""
    seen: list[tuple[dict[str, torch.Tensor], torch.Tensor]] = []
    for wal in model.wal:
        original = wal.scores

        def scores(
            zs: dict[str, torch.Tensor],
            masks: dict[str, torch.Tensor],
            _original=original,
        ) -> torch.Tensor:
            gamma = _original(zs, masks)
            seen.append(({m: z.detach().clone() for m, z in zs.items()}, gamma.detach()))
            return gamma

        wal.scores = scores
    return seen


def test_wal_literal_in_the_model_scores_only_the_real_steps() -> None:
    """Eq. 5 inside MEA (``wal_literal=true``): every WAL receives PSA outputs that are zero at
    the padded steps (the batch is padded with garbage), so its score is the by-hand score of
    the sample's real steps alone, zero-padded to ``wal_max_len``; ``out.psi`` is Eq. 6 of it."""
    model = _model(wal_literal=True, wal_max_len=10)
    with torch.no_grad():
        for wal in model.wal:
            for m in MODALITIES:
                wal.W[m].weight.mul_(4.0)
    seen = _record_wal_inputs(model)
    batch = _batch()
    with torch.no_grad():
        out = model(batch)
    assert len(seen) == TINY["psa_layers"] == len(out.psi)
    for layer, (zs, gamma) in enumerate(seen):
        wal = model.wal[layer]
        for i in range(4):
            by_hand: dict[str, float | None] = {}
            for j, m in enumerate(MODALITIES):
                n = LENGTHS[m][i]
                assert torch.all(zs[m][i, n:] == 0), (layer, m, i)
                if n == 0:
                    by_hand[m] = None
                    continue
                by_hand[m] = _np_literal_gamma(wal, m, zs[m][i, :n].double().numpy())
                assert abs(float(gamma[i, j]) - by_hand[m]) < 1e-5, (layer, m, i)
            got = out.psi[layer][i].double().numpy()
            np.testing.assert_allclose(got, _np_psi(by_hand), atol=1e-6)


# ---------------------------------------------------------------- decision 6: HCA stacking
def _hca_layer_by_hand(
    layer: HCALayer,
    sources: dict[str, torch.Tensor],
    targets: dict[str, torch.Tensor],
    masks: dict[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """Eq. 10 for every target, one MRU at a time: mixed over ``[Z_L, Z_V, Z_A]``, coarse over
    the two other modalities, then the sum of the two fine MRUs, keys from ``sources``."""
    out = {}
    for t in MODALITIES:
        others = [s for s in MODALITIES if s != t]
        every = torch.cat([sources[m] for m in MODALITIES], 1)
        every_mask = torch.cat([masks[m] for m in MODALITIES], 1)
        z, _ = layer.mixed[t](every, every_mask, targets[t], masks[t])
        pair = torch.cat([sources[s] for s in others], 1)
        pair_mask = torch.cat([masks[s] for s in others], 1)
        z, _ = layer.coarse[t](pair, pair_mask, z, masks[t])
        out[t] = sum(layer.fine[t][s](sources[s], masks[s], z, masks[t])[0] for s in others)
    return out


@pytest.mark.parametrize("return_attention", [False, True])
def test_hca_stack_keeps_the_extractor_outputs_as_sources(return_attention: bool) -> None:
    """``docs/model.md`` decision 6: with N = 2 HCA layers, layer 2 reads layer 1's output as its
    target and the extractor outputs ``Z_m`` (not layer 1's outputs) as its sources; what the
    agnostic encoder receives is layer 2's output. Both execution paths: length groups
    (``return_attention=False``) and the layer loop that forms the maps."""
    model = _model()
    assert len(model.hca) == 2
    z: dict[str, torch.Tensor] = {}
    for m in MODALITIES:
        model.extractors[m].register_forward_hook(
            lambda mod, args, out, m=m: z.__setitem__(m, out.detach())
        )
    received: dict[str, torch.Tensor] = {}
    model.agnostic.register_forward_pre_hook(lambda mod, args: received.update(args[0]))
    batch = _batch()
    masks = {m: batch.masks[m].bool() for m in MODALITIES}
    with torch.no_grad():
        model(batch, return_attention=return_attention)
        first = _hca_layer_by_hand(model.hca[0], z, z, masks)
        second = _hca_layer_by_hand(model.hca[1], z, first, masks)
        carried = _hca_layer_by_hand(model.hca[1], first, first, masks)  # the wrong stacking
    for m in MODALITIES:
        torch.testing.assert_close(
            received[m], second[m], atol=1e-5, rtol=0, msg=lambda s, m=m: f"{m}: {s}"
        )
        assert _max_diff(second[m], carried[m]) > 1e-3, m  # the test tells the two apart
        assert _max_diff(second[m], first[m]) > 1e-3, m  # layer 2 did act


# ---------------------------------------------------------------- Eq. 17-19: DGF wiring
def _graph_by_hand(
    graph: GraphFusion, nodes: list[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 17-19 with the graph's own ``W`` and ``Q``, neighbours the two other nodes:
    ``delta_ij = q^T [W h_i, W h_j] + q_0``, ``xi_i = softmax_j GeLU(delta_ij)``,
    ``h_fin = sum_i sigmoid(sum_j xi_ij W h_j)``. Returns ``(h_fin [B, d_h], xi [B, 3, 3])``."""
    w = graph.W.weight
    q, q0 = graph.Q.weight[0], graph.Q.bias[0]
    p = [h @ w.T for h in nodes]
    n = len(nodes)
    h_fin = torch.zeros_like(p[0])
    xi = torch.zeros(p[0].shape[0], n, n)
    for i in range(n):
        nbr = [j for j in range(n) if j != i]
        delta = torch.stack([torch.cat([p[i], p[j]], -1) @ q + q0 for j in nbr], -1)  # Eq. 17
        weights = torch.softmax(F.gelu(delta), -1)  # Eq. 18
        xi[:, i, nbr] = weights
        mixed = sum(weights[:, k, None] * p[j] for k, j in enumerate(nbr))
        h_fin = h_fin + torch.sigmoid(mixed)  # Eq. 19
    return h_fin, xi


def test_head_receives_exclusive_and_agnostic_graphs_fused_separately() -> None:
    """Eq. 17-19 and Sec. III-F at model level (default fusion, decision 10): the heterogeneous
    graph fuses the exclusive vectors h^e with its own W_e and Q, the homogeneous graph fuses the
    agnostic vectors h^a with its own, and the prediction head receives ``[h_fin^e, h_fin^a]``
    in that order; ``out.xi`` are the two graphs' coefficients."""
    model = _model()
    gnn = model.fusion.gnn
    assert set(gnn) == {"exclusive", "agnostic"}
    assert gnn["exclusive"].W.weight.data_ptr() != gnn["agnostic"].W.weight.data_ptr()
    seen: list[torch.Tensor] = []
    hook = model.head.register_forward_pre_hook(lambda mod, args: seen.append(args[0]))
    with torch.no_grad():
        out = model(_batch())
        hook.remove()
        h_e = [out.reps["exclusive"][m] for m in MODALITIES]
        h_a = [out.reps["agnostic"][m] for m in MODALITIES]
        fin_e, xi_e = _graph_by_hand(gnn["exclusive"], h_e)
        fin_a, xi_a = _graph_by_hand(gnn["agnostic"], h_a)
        expect = torch.cat([fin_e, fin_a], dim=-1)
        swapped = torch.cat(
            [_graph_by_hand(gnn["agnostic"], h_e)[0], _graph_by_hand(gnn["exclusive"], h_a)[0]],
            dim=-1,
        )
        one_graph = torch.cat([fin_e, _graph_by_hand(gnn["exclusive"], h_a)[0]], dim=-1)
        pred = model.head(expect)
    assert len(seen) == 1 and seen[0].shape == (4, 2 * TINY["d_h"])
    torch.testing.assert_close(seen[0], expect, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.xi["exclusive"], xi_e, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.xi["agnostic"], xi_a, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.pred, pred, atol=1e-6, rtol=0)
    # the wrong wirings give other numbers, so the checks above tell them apart
    for wrong in (swapped, one_graph, torch.cat([fin_a, fin_e], dim=-1)):
        assert _max_diff(seen[0], wrong) > 1e-3
