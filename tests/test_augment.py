"""Training-time augmentation (mea_cli/train/augment.py): real steps only, padding untouched,
off means the same batch, the span's width by hand."""

from __future__ import annotations

import pytest
import torch

from mea_cli.batch import Batch
from mea_cli.config import ConfigError
from mea_cli.train.augment import augment
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
