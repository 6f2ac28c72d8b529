"""Training-time augmentation (mea_cli/train/augment.py): real steps only, padding untouched,
off means the same batch, the span's width by hand, mixup's inputs and task term by hand."""

from __future__ import annotations

import pytest
import torch

from mea_cli.batch import Batch
from mea_cli.config import ConfigError
from mea_cli.train.augment import Mix, augment, mixed_task_loss, mixup
from mea_cli.train.config import TrainSettings


def _batch() -> Batch:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 10, 4, generator=g)
    mask = torch.zeros(3, 10, dtype=torch.bool)
    mask[0, :10] = True
    mask[1, :5] = True  # 5 padded steps
    x = x * mask.unsqueeze(-1)  # padded steps are zero (the batch contract)
    return Batch(
        inputs={"audio": x, "text": torch.zeros(3, 1, 3)},
        masks={"audio": mask, "text": torch.zeros(3, 1, dtype=torch.bool)},  # row 2: empty
        labels=torch.ones(3, 1),
        ids=["a", "b", "c"],
    )


def test_off_returns_the_same_batch() -> None:
    b = _batch()
    assert augment(b, 0.0, 0.0) is b


@pytest.mark.parametrize(("noise", "span"), [(0.5, 0.0), (0.0, 0.4), (0.3, 0.4)])
def test_padding_and_empty_sequences_stay_zero(noise: float, span: float) -> None:
    b = _batch()
    torch.manual_seed(1)
    out = augment(b, noise, span)
    for m in b.inputs:
        pad = ~b.masks[m]
        assert torch.equal(out.inputs[m][pad], torch.zeros_like(out.inputs[m][pad]))
        assert torch.equal(out.masks[m], b.masks[m])
    assert out.labels is b.labels and out.ids == b.ids
    real = b.masks["audio"]
    changed = (out.inputs["audio"] != b.inputs["audio"]).any(-1)
    assert bool(changed[real].any())  # the real steps did change


def test_time_mask_zeroes_one_span_of_the_rounded_width() -> None:
    b = _batch()
    torch.manual_seed(2)
    out = augment(b, 0.0, 0.4)
    zero = (out.inputs["audio"] == 0).all(-1)
    for row, length in ((0, 10), (1, 5)):
        steps = zero[row, :length].nonzero().flatten().tolist()
        width = round(0.4 * length)  # 4 of 10, 2 of 5
        assert len(steps) == width and steps == list(range(steps[0], steps[0] + width))
        kept = ~zero[row, :length]
        assert torch.equal(out.inputs["audio"][row, :length][kept], b.inputs["audio"][row, :length][kept])


def test_noise_has_the_stated_scale_on_real_steps() -> None:
    x = torch.zeros(8, 500, 4)
    mask = torch.ones(8, 500, dtype=torch.bool)
    torch.manual_seed(3)
    out = augment(Batch({"audio": x}, {"audio": mask}), input_noise=0.5)
    assert abs(float(out.inputs["audio"].std()) - 0.5) < 0.01


def test_settings_refuse_out_of_range_values() -> None:
    with pytest.raises(ConfigError, match="time_mask"):
        TrainSettings(time_mask=1.0)
    with pytest.raises(ConfigError, match="input_noise"):
        TrainSettings(input_noise=-0.1)
    with pytest.raises(ConfigError, match="mixup must not be negative"):
        TrainSettings(mixup=-0.2)


def test_augment_keeps_the_batchs_summaries() -> None:
    b = _batch()
    b.summary = {"audio": torch.arange(6.0).reshape(3, 2)}
    torch.manual_seed(4)
    assert augment(b, 0.3, 0.2).summary is b.summary


def test_mixup_off_returns_the_same_batch() -> None:
    b = _batch()
    assert mixup(b, 0.0) == (b, None)


def test_mixup_mixes_every_input_pairwise_and_unites_the_masks() -> None:
    """Row i of every input is ``lam x_i + (1 - lam) x_perm(i)``, a step is real when it is
    real in either sample, a step padded in both stays zero; labels untouched; summaries
    mixed the same way."""
    b = _batch()
    b.summary = {"audio": torch.tensor([[1.0, 2.0], [3.0, float("nan")], [5.0, 6.0]])}
    torch.manual_seed(5)
    out, mix = mixup(b, 0.4)
    assert mix is not None and 0.0 <= mix.lam <= 1.0
    assert sorted(mix.perm.tolist()) == [0, 1, 2]
    lam, perm = mix.lam, mix.perm
    for m, x in b.inputs.items():
        assert torch.allclose(out.inputs[m], lam * x + (1 - lam) * x[perm])
        assert torch.equal(out.masks[m], b.masks[m] | b.masks[m][perm])
        both_padded = ~out.masks[m]
        assert bool((out.inputs[m][both_padded] == 0).all())
    assert out.labels is b.labels and out.ids == b.ids
    want = lam * b.summary["audio"] + (1 - lam) * b.summary["audio"][perm]
    assert torch.allclose(out.summary["audio"], want, equal_nan=True)


def test_mixup_of_a_batch_padded_further_is_the_same_on_the_shared_steps() -> None:
    """Padding never changes what the model sees: the same samples padded to 14 steps instead of
    10 mix to the same values and masks on the first 10 steps, zeros beyond them."""
    b = _batch()
    wide = Batch(
        inputs={**b.inputs, "audio": torch.cat([b.inputs["audio"], torch.zeros(3, 4, 4)], dim=1)},
        masks={**b.masks, "audio": torch.cat([b.masks["audio"], torch.zeros(3, 4, dtype=torch.bool)], 1)},
        labels=b.labels, ids=b.ids,
    )  # fmt: skip
    torch.manual_seed(6)
    out, mix = mixup(b, 1.0)
    torch.manual_seed(6)
    out_wide, mix_wide = mixup(wide, 1.0)
    assert mix is not None and mix_wide is not None
    assert mix.lam == mix_wide.lam and torch.equal(mix.perm, mix_wide.perm)
    assert torch.equal(out_wide.inputs["audio"][:, :10], out.inputs["audio"])
    assert torch.equal(out_wide.masks["audio"][:, :10], out.masks["audio"])
    assert not bool(out_wide.masks["audio"][:, 10:].any())
    assert bool((out_wide.inputs["audio"][:, 10:] == 0).all())


def test_mixed_task_loss_by_hand_and_as_soft_target_cross_entropy() -> None:
    """Two rows of two classes, logits [0, ln 3] (p = 1/4, 3/4) and [0, 0] (1/2, 1/2), true
    classes 1 and 0, lam = 0.3, rows swapped: by hand ``0.3 mean(nll_y) + 0.7 mean(nll_swapped)``;
    unweighted it is the cross-entropy against the mixed one-hot targets."""
    import numpy as np
    import torch.nn.functional as F

    from mea_cli.runtime.targets import weighted_task_loss

    ln = np.log
    pred = torch.tensor([[0.0, float(ln(3.0))], [0.0, 0.0]])
    onehot = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    mix = Mix(0.3, torch.tensor([1, 0]))

    def loss(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return weighted_task_loss(p, y, "multiclass", None)

    own = (ln(4 / 3) + ln(2)) / 2  # row 1 class 1, row 2 class 0
    swapped = (ln(4) + ln(2)) / 2  # row 1 class 0, row 2 class 1
    got = mixed_task_loss(loss, pred, onehot, mix)
    assert float(got) == pytest.approx(0.3 * own + 0.7 * swapped, rel=1e-6)
    soft = F.cross_entropy(pred, 0.3 * onehot + 0.7 * onehot[mix.perm])
    assert float(got) == pytest.approx(float(soft), rel=1e-6)
    assert float(mixed_task_loss(loss, pred, onehot, None)) == pytest.approx(own, rel=1e-6)


def test_weight_average_by_hand_and_swap() -> None:
    from torch import nn

    from mea_cli.train.ema import WeightAverage

    lin = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        lin.weight.fill_(1.0)
    ema = WeightAverage(lin, decay=0.5)
    with torch.no_grad():
        lin.weight.fill_(3.0)
    ema.update(lin)  # t=1: r = min(0.5, 2/11) = 2/11
    r1 = 2 / 11
    want = r1 * 1.0 + (1 - r1) * 3.0
    assert abs(float(ema.shadow["weight"]) - want) < 1e-6
    for _ in range(10):  # from t=8 on (9/18) r is the decay
        ema.update(lin)
    assert ema.rate() == 0.5
    with torch.no_grad():
        lin.weight.fill_(5.0)
    before = float(ema.shadow["weight"])
    ema.update(lin)
    assert abs(float(ema.shadow["weight"]) - (0.5 * before + 0.5 * 5.0)) < 1e-6
    with ema.swapped_in(lin):
        assert torch.equal(lin.weight.detach(), ema.shadow["weight"])
    assert float(lin.weight.detach()) == 5.0  # the model's own weights are back
    restored = WeightAverage(lin, decay=0.5)
    restored.load_state_dict(ema.state_dict())
    assert restored.steps == ema.steps and torch.equal(restored.shadow["weight"], ema.shadow["weight"])
    with pytest.raises(ConfigError, match="ema_decay"):
        TrainSettings(ema_decay=1.0)
