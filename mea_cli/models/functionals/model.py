"""``functionals``: the strong simple baseline every comparison should have beside it.

Each modality's sequence is summarised over time by statistical *functionals* (the openSMILE
idea, applied to whatever the store holds: eGeMAPS low-level descriptors for audio,
blendshapes for vision, word vectors for text): per feature the mean, standard deviation
(population), minimum, maximum, the configured percentiles (linear interpolation, as
``numpy.percentile``) and the least-squares slope over the step index; per modality the number
of steps (``log(1 + n)``) and whether it has any. Padded steps take no part, nor do unobserved
ones (it declares ``gap_masks``: a ``mea align`` word no step reached is a gap in its mask);
an empty sequence (or one with nothing observed) gives missing statistics, which become the
training mean after standardisation (0).

For audio, where the store was extracted with openSMILE, the summary can instead (or as well)
be openSMILE's own Functionals of each sample (``/summary/audio``, carried by
``Batch.summary``; config ``audio``): 88 eGeMAPSv02 functionals. Which one a model uses is in
its config (``audio``, ``summary_dims``), so ``mea eval`` / ``mea predict`` of a model that
uses them on data without them is refused (:class:`SummaryMissingError`), never silently fed
another feature set.

The summaries are standardised with the train split's mean and standard deviation and fed to
one linear layer: scikit-learn's ``LogisticRegression`` (multinomial over C classes; one binary
model per label for multi-label tasks) or ``Ridge`` (regression). The regularisation is chosen
on the **valid** split: the trainer fits one candidate per value of ``c_grid`` (logistic
``C``; ridge ``alpha = 1 / C``) and keeps the one with the best validation selection metric,
exactly as it keeps the best epoch of a neural model (docs/training.md). The fitted
coefficients are the weights of an ``nn.Linear`` and the standardisation statistics are
buffers, so the checkpoint is tensors only (``weights_only`` loading) and ``mea eval`` /
``mea predict`` / ``mea compare`` treat it like any model.

The model is differentiable (a linear layer on fixed summaries), so the gradient parts of the
contract hold, but the trainer never takes gradient steps on it: it declares the
``closed_form_fit`` capability and has no ablation switches.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mea_cli import MODALITIES
from mea_cli.batch import Batch
from mea_cli.errors import MeaError
from mea_cli.models.core.losses import task_loss
from mea_cli.models.core.output import ModelOutput, prediction_size, shape_prediction
from mea_cli.models.core.registry import register_model
from mea_cli.models.functionals.config import FunctionalsConfig

_ABSENT_LOGIT = -30.0  # a class (or label value) the train split never shows


class SummaryMissingError(MeaError):
    """A batch without the openSMILE functionals the model was fitted on."""


def masked_functionals(
    x: torch.Tensor, mask: torch.Tensor, percentiles: tuple[float, ...]
) -> torch.Tensor:
    """``[B, D * S + 2]`` summaries of ``x [B, T, D]`` over its real steps (``mask [B, T]``):
    for each feature mean, std, min, max, slope, then the percentiles (the layout is
    statistic-major: ``[mean_1..mean_D, std_1..std_D, ...]``); then ``log(1 + n)`` and
    ``n > 0``. Statistics of an empty sequence are NaN. The mask may have gaps (capability
    ``gap_masks``): a False step anywhere is left out, the slope's step index is the rank among
    the real steps, so the summaries equal those of the sequence with the gap removed."""
    b, t, d = x.shape
    m = mask.to(torch.bool)
    n = m.sum(dim=1).to(x.dtype)  # [B]
    nn_ = n.clamp(min=1.0)[:, None]
    mf = m[..., None]
    xz = torch.where(mf, x, torch.zeros((), dtype=x.dtype))
    mean = xz.sum(dim=1) / nn_
    dev = torch.where(mf, x - mean[:, None], torch.zeros((), dtype=x.dtype))
    std = (dev.pow(2).sum(dim=1) / nn_).sqrt()
    inf = torch.tensor(float("inf"), dtype=x.dtype)
    lo = torch.where(mf, x, inf).amin(dim=1) if t else torch.full((b, d), float("nan"))
    hi = torch.where(mf, x, -inf).amax(dim=1) if t else torch.full((b, d), float("nan"))
    steps = (m.cumsum(dim=1) - 1).to(x.dtype)[..., None]  # rank among the real steps (gaps)
    tc = torch.where(mf, steps - ((n - 1.0) / 2.0)[:, None, None], torch.zeros((), dtype=x.dtype))
    denom = tc.pow(2).sum(dim=1)
    slope = torch.where(denom > 0, (tc * dev).sum(dim=1) / denom.clamp(min=1e-12), 0.0)
    stats = [mean, std, lo, hi, slope]
    if t:
        ordered = torch.where(mf, x, inf).sort(dim=1).values  # real steps first, ascending
    for p in percentiles:
        if not t:
            stats.append(torch.full((b, d), float("nan")))
            continue
        pos = (p / 100.0) * (n - 1.0).clamp(min=0.0)  # [B]
        below = pos.floor().long().clamp(0, t - 1)
        above = pos.ceil().long().clamp(0, t - 1)
        frac = (pos - below.to(x.dtype))[:, None]
        v_lo = ordered.gather(1, below[:, None, None].expand(b, 1, d))[:, 0]
        v_hi = ordered.gather(1, above[:, None, None].expand(b, 1, d))[:, 0]
        v_hi = torch.where(frac > 0, v_hi, v_lo)  # never inf * 0
        stats.append(v_lo + frac * (v_hi - v_lo))
    empty = (n == 0)[:, None]
    feats = torch.cat(stats, dim=1)
    feats = torch.where(empty, torch.full_like(feats, float("nan")), feats)
    extra = torch.stack([torch.log1p(n), (n > 0).to(x.dtype)], dim=1)
    return torch.cat([feats, extra], dim=1)


@register_model(
    "functionals",
    FunctionalsConfig,
    capabilities=("closed_form_fit", "gap_masks"),
    tiny={},
    description=(
        "functionals: per-modality summary statistics over time, standardised, then "
        "logistic regression (classes) or ridge (regression) with C chosen on valid"
    ),
)
class Functionals(nn.Module):
    """Summary statistics -> standardisation -> one linear layer (see the module docstring)."""

    def __init__(self, cfg: FunctionalsConfig) -> None:
        super().__init__()
        self.cfg = cfg
        size = cfg.summary_size
        self.register_buffer("summary_mean", torch.zeros(size))
        self.register_buffer("summary_std", torch.ones(size))
        self.head = nn.Linear(size, prediction_size(cfg))
        self._design: tuple[np.ndarray, np.ndarray] | None = None
        self._class_weight: str | None = None

    def component_parameters(self) -> dict[str, int]:
        """The linear layer's coefficients (the summaries have none)."""
        return {"linear head (fitted coefficients)": sum(p.numel() for p in self.head.parameters())}

    # ---- the summaries
    def summaries(self, batch: Batch) -> torch.Tensor:
        """``[B, summary_size]`` raw summaries of a batch (NaN where a modality is empty)."""
        block = self.cfg.audio_block
        parts = []
        for m in MODALITIES:
            if m != "audio" or block != "opensmile":
                x, mask = batch.inputs[m].float(), batch.masks[m]
                parts.append(masked_functionals(x, mask, self.cfg.percentiles))
            if m == "audio" and block != "lld":
                parts.append(self._opensmile(batch))
        return torch.cat(parts, dim=1)

    def _opensmile(self, batch: Batch) -> torch.Tensor:
        """The batch's openSMILE functionals ``[B, D]`` (NaN rows: no signal), or a refusal."""
        want = self.cfg.summary_dims["audio"]
        got = None if batch.summary is None else batch.summary.get("audio")
        if got is None:
            raise SummaryMissingError(
                f"this functionals model was fitted on openSMILE's audio functionals ({want} per "
                "sample, the store's /summary/audio) and the data has none: use a store made by "
                "mea extract with the opensmile audio backend, or a model trained with "
                "--set audio=lld"
            )
        if got.shape[-1] != want:
            raise SummaryMissingError(
                f"this functionals model was fitted on {want} openSMILE audio functionals per "
                f"sample; the data has {got.shape[-1]} (another openSMILE feature set)"
            )
        return got.float()

    def standardise(self, s: torch.Tensor) -> torch.Tensor:
        """Summaries standardised with the fitted statistics; missing ones become 0."""
        z = (s - self.summary_mean) / self.summary_std
        return torch.where(torch.isfinite(z), z, torch.zeros((), dtype=z.dtype))

    def forward(self, batch: Batch) -> ModelOutput:
        z = self.standardise(self.summaries(batch).to(self.summary_mean.device))
        pred = shape_prediction(self.head(z), self.cfg)
        out = ModelOutput(pred=pred)
        if batch.labels is not None:
            loss = task_loss(pred, batch.labels, self.cfg.task)
            out.loss, out.losses = loss, {"task": loss.detach()}
        return out

    # ---- the closed-form fit (capability closed_form_fit)
    def prepare_fit(
        self, summaries: torch.Tensor, labels: torch.Tensor, class_weights: str = "none"
    ) -> None:
        """Fix the standardisation from the train split's summaries and keep the design
        (standardised summaries, labels) for :meth:`fit_candidate`; ``class_weights``
        ``balanced`` weights the logistic regressions' classes (scikit-learn's "balanced")."""
        self._class_weight = "balanced" if class_weights == "balanced" else None
        s = summaries.double().numpy()
        finite = np.isfinite(s)
        cnt = finite.sum(axis=0)
        mean = np.divide(np.where(finite, s, 0.0).sum(axis=0), cnt, out=np.zeros(s.shape[1]), where=cnt > 0)
        var = np.divide(
            np.where(finite, (s - mean) ** 2, 0.0).sum(axis=0), cnt, out=np.zeros(s.shape[1]), where=cnt > 0
        )
        std = np.sqrt(var)
        std = np.where(std > 1e-8, std, 1.0)
        with torch.no_grad():
            self.summary_mean.copy_(torch.from_numpy(mean))
            self.summary_std.copy_(torch.from_numpy(std))
            z = self.standardise(summaries.float().to(self.summary_mean.device))
        self._design = (z.cpu().double().numpy(), labels.cpu().double().numpy())

    def candidates(self) -> tuple[float, ...]:
        """The regularisation values tried, in order (``c_grid``)."""
        return tuple(self.cfg.c_grid)

    def fit_candidate(self, c: float) -> float:
        """Fit the linear layer with inverse regularisation ``c`` on the prepared design;
        returns the task loss on it (the train split's, in the model's units)."""
        if self._design is None:
            raise RuntimeError("prepare_fit must run before fit_candidate")
        z, y = self._design
        weight = np.zeros((prediction_size(self.cfg), z.shape[1]))
        bias = np.zeros(prediction_size(self.cfg))
        task = self.cfg.task
        if task == "regression":
            from sklearn.linear_model import Ridge

            rows = np.isfinite(y[:, 0])
            r = Ridge(alpha=1.0 / c).fit(z[rows], y[rows, 0])
            weight[0], bias[0] = r.coef_, r.intercept_
        elif task == "multiclass":
            rows = np.isfinite(y).all(axis=1)
            self._logistic(z[rows], y[rows].argmax(axis=1), c, weight, bias, list(range(y.shape[1])))
        else:  # binary-multilabel: one model per label, logits (0, z) for (absent, present)
            for k in range(y.shape[1]):
                rows = np.isfinite(y[:, k])
                w, b = np.zeros((2, z.shape[1])), np.zeros(2)
                self._logistic(z[rows], y[rows, k].round().astype(int), c, w, b, [0, 1])
                weight[2 * k + 1], bias[2 * k + 1] = w[1] - w[0], b[1] - b[0]
        with torch.no_grad():
            self.head.weight.copy_(torch.from_numpy(weight))
            self.head.bias.copy_(torch.from_numpy(bias))
            zt = torch.from_numpy(z).to(self.head.weight)
            pred = shape_prediction(self.head(zt), self.cfg)
            return float(task_loss(pred, torch.from_numpy(y).to(zt), self.cfg.task))

    def _logistic(
        self, z: np.ndarray, y: np.ndarray, c: float, weight: np.ndarray, bias: np.ndarray,
        classes: list[int],
    ) -> None:
        """Logistic regression of class ids ``y`` into the rows of ``weight`` / ``bias`` for
        ``classes``; a class absent from ``y`` gets a very low constant logit."""
        from sklearn.linear_model import LogisticRegression

        present = sorted(set(int(v) for v in y))
        for k in classes:
            if k not in present:
                bias[k] = _ABSENT_LOGIT
        if len(present) == 1:  # one class only: predict it
            return
        lr = LogisticRegression(C=c, max_iter=self.cfg.max_iter, class_weight=self._class_weight).fit(z, y)
        if len(present) == 2:  # sklearn's one coefficient row: the second class vs the first
            weight[present[1]], bias[present[1]] = lr.coef_[0], lr.intercept_[0]
            return
        for row, k in enumerate(lr.classes_):
            weight[int(k)], bias[int(k)] = lr.coef_[row], lr.intercept_[row]
