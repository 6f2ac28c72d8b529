"""Uni-modal extractor (Sec. III-B, Eq. 1): Conv1d to ``d``, positional embedding, Bi-LSTM.

``X_m [T_m, d_m] -> Conv1d(kernel k_m) -> X_m [T_m, d] -> + PE -> Bi-LSTM -> Z_m [T_m, d]``.

Decisions the paper leaves open (also in ``docs/model.md``):

* The convolution uses 'same' zero padding (``k // 2`` on both sides, odd ``k``: Table I has
  3 and 5), so that ``T_m`` is unchanged and the mask still applies; it is bias-free, as in the
  MulT code the paper builds on. Padded steps are zeroed *before* the convolution and the output
  is masked *after* it. A step near the true end of a sequence therefore sees zeros beyond the
  end, exactly as if the sequence were alone in its batch: padding a batch to a longer length
  changes nothing (tested). The residual effect of 'same' padding is the usual one: the last
  ``k // 2`` real steps are computed from a partly zero window, as they would be unbatched.
* The positional embedding is the fixed sinusoidal one of the Transformer [24], added after
  scaling the convolution output by ``sqrt(d)`` (MulT / fairseq convention).
* The Bi-LSTM has ``d / 2`` units per direction, so that its concatenated output is ``d``
  (Eq. 1 says ``Z_m in R^{T_m x d}``); it runs on ``pack_padded_sequence`` so that padding never
  enters the recurrence. A zero-length sequence is packed with length 1 (its single step is the
  zero vector) and its output is masked to zeros.

Efficient execution (same maths; ``docs/performance.md``): packing is exact but slow to train on
CPU (the backward pass of a packed LSTM zero-fills a gradient of the whole packed sequence at
every time step, which is quadratic in ``T``). By default the two directions therefore run as
two plain (unpacked, fused-kernel) LSTM passes over the padded batch: the forward direction is
causal, so trailing padding cannot reach a real step; the backward direction runs on each
sequence with its *real* steps reversed in place (padding stays at the end), and its outputs are
reversed back. Every real step gets exactly what the packed LSTM gives it; padded steps are
masked. ``explicit_attention()`` (:mod:`mea_cli.models.layers.attention`) selects the packed code.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from mea_cli.models.core.masking import apply_mask
from mea_cli.models.layers.attention import dropout, fused_enabled


def sinusoidal_positions(
    length: int, d: int, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """The Transformer's fixed positional embedding ``[length, d]`` (sin on even, cos on odd)."""
    pos = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    idx = torch.arange(0, d, 2, device=device, dtype=torch.float32)
    freq = torch.exp(-math.log(10000.0) * idx / d)
    pe = torch.zeros(length, d, device=device, dtype=torch.float32)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq[: d // 2])
    return pe.to(dtype)


class UnimodalExtractor(nn.Module):
    """Eq. 1 for one modality: masked Conv1d, positional embedding, Bi-LSTM (module docstring).

    ``recurrent=False`` stops after the convolution and positional embedding (no Bi-LSTM): the
    pre-processing of MulT-style models such as MCR (its Sec. 3.2), with the same masking.
    """

    def __init__(
        self, in_dim: int, d: int, kernel_size: int, dropout: float, recurrent: bool = True
    ) -> None:
        super().__init__()
        self.d = d
        self.conv = nn.Conv1d(in_dim, d, kernel_size, padding=kernel_size // 2, bias=False)
        self.drop = nn.Dropout(dropout)
        self.lstm = nn.LSTM(d, d // 2, batch_first=True, bidirectional=True) if recurrent else None

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x [B, T, d_m]``, ``mask [B, T]`` -> ``Z_m [B, T, d]`` (zero at padded steps)."""
        b, t, _ = x.shape
        x = apply_mask(x, mask)
        h = self.conv(x.transpose(1, 2)).transpose(1, 2)
        h = h * math.sqrt(self.d) + sinusoidal_positions(t, self.d, h.device, h.dtype)
        h = dropout(apply_mask(h, mask), self.drop)
        if self.lstm is None:
            return h
        if fused_enabled():
            return apply_mask(self._bilstm_unpacked(h, mask), mask)
        lengths = mask.sum(dim=1).clamp_min(1).cpu()
        packed = pack_padded_sequence(h, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        z, _ = pad_packed_sequence(out, batch_first=True, total_length=t)
        return apply_mask(z, mask)

    def _bilstm_unpacked(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The Bi-LSTM as two unpacked one-direction passes (module docstring); ``[B, T, d]``."""
        b, t, _ = h.shape
        steps = torch.arange(t, device=h.device)[None, :]
        n = mask.sum(dim=1, keepdim=True)
        # position t of the reversed sequence reads real step n-1-t; padded steps stay put
        rev = torch.where(steps < n, n - 1 - steps, steps)
        forward = self._direction(h, "")
        idx = rev[..., None].expand_as(h)
        backward = self._direction(h.gather(1, idx), "_reverse")
        backward = backward.gather(1, rev[..., None].expand_as(backward))
        return torch.cat([forward, backward], dim=-1)

    def _direction(self, x: torch.Tensor, suffix: str) -> torch.Tensor:
        """One direction of ``self.lstm`` (its own weights) over ``x`` from a zero state."""
        lstm = self.lstm
        weights = [
            getattr(lstm, f"{name}_l0{suffix}")
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        ]
        zero = x.new_zeros(1, x.shape[0], lstm.hidden_size)
        out, *_ = torch.lstm(x, (zero, zero), weights, True, 1, 0.0, self.training, False, True)
        return out
