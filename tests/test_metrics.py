"""The literature's metrics on hand-made vectors, every expected value worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mea_cli.train.metrics import (
    format_mean_std,
    format_metric,
    mean_std,
    metric_keys,
    multilabel_metrics,
    regression_metrics,
    selection_metric,
)

# truth contains two exact zeros, so non0 (drops them) and has0 (keeps them) differ.
TRUTH = [-2.6, -0.6, 0.0, 0.0, 1.2, 2.8]
PRED = [-1.6, 0.4, 0.3, -0.2, 1.4, 3.6]


def test_regression_metrics_by_hand() -> None:
    m = regression_metrics(PRED, TRUTH)
    # |errors| = 1.0, 1.0, 0.3, 0.2, 0.2, 0.8 -> 3.5 / 6 (unclipped: 3.6 counts as 3.6)
    assert m["mae"] == pytest.approx(3.5 / 6)
    # Acc-7: truth rounds to -3,-1,0,0,1,3; prediction (clipped to 3) to -2,0,0,0,1,3 -> 4/6
    assert m["acc7"] == pytest.approx(4 / 6)
    # Acc-5: clipped to [-2,2]: truth -2,-1,0,0,1,2; prediction -2,0,0,0,1,2 -> 5/6
    assert m["acc5"] == pytest.approx(5 / 6)
    # non0 drops the two zeros: truth -,-,+,+ ; prediction -,+,+,+ -> 3/4
    assert m["acc2_non0"] == pytest.approx(3 / 4)
    # weighted F1: negative class P=1, R=1/2, F1=2/3; positive P=2/3, R=1, F1=4/5; supports 2, 2
    assert m["f1_non0"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    # has0: truth <0,<0,>=0,>=0,>=0,>=0 ; prediction <0,>=0,>=0,<0,>=0,>=0 -> 4/6
    assert m["acc2_has0"] == pytest.approx(4 / 6)
    # negative: P=1/2, R=1/2, F1=1/2 (support 2); non-negative: P=3/4, R=3/4 (support 4)
    assert m["f1_has0"] == pytest.approx((0.5 * 2 + 0.75 * 4) / 6)
    assert m["acc2_non0"] != m["acc2_has0"] and m["f1_non0"] != m["f1_has0"]


def test_corr_by_hand_and_constant_prediction() -> None:
    # deviations (-1,0,1) and (-1,1,0): covariance sum 1, variance sums 2 and 2 -> r = 1/2
    assert regression_metrics([1, 2, 3], [1, 3, 2])["corr"] == pytest.approx(0.5)
    assert regression_metrics([3, 5, 7], [1, 2, 3])["corr"] == pytest.approx(1.0)
    constant = regression_metrics([0.2, 0.2, 0.2], [1, -1, 2])
    assert math.isnan(constant["corr"])
    assert constant["mae"] == pytest.approx((0.8 + 1.2 + 1.8) / 3)


def test_acc7_rounds_half_to_even_like_the_reference_code() -> None:
    # np.round(0.5) = 0 and np.round(2.5) = 2, so both match their truths
    m = regression_metrics([0.5, 2.5, -1.5], [0.0, 2.0, -2.0])
    assert m["acc7"] == 1.0
    assert m["acc5"] == 1.0


def test_all_zero_truth_has_no_non0_metric() -> None:
    m = regression_metrics([0.5, -0.5], [0.0, 0.0])
    assert math.isnan(m["acc2_non0"]) and m["acc2_has0"] == pytest.approx(0.5)


def test_multilabel_metrics_by_hand() -> None:
    # two emotions, four samples; class = argmax of the two logits
    logits = np.array(
        [
            [[2.0, 0.0], [0.0, 1.0]],  # happy 0, sad 1
            [[0.0, 3.0], [1.0, 0.0]],  # happy 1, sad 0
            [[1.0, 0.5], [0.2, 0.1]],  # happy 0, sad 0
            [[0.0, 1.0], [0.0, 2.0]],  # happy 1, sad 1
        ]
    )
    truth = np.array([[0, 1], [1, 0], [1, 0], [0, 0]], dtype=np.float32)
    m = multilabel_metrics(logits, truth, ["happy", "sad"])
    # happy: pred 0,1,0,1 vs truth 0,1,1,0 -> 2/4; each class P=R=1/2 -> weighted F1 1/2
    assert m["acc_happy"] == pytest.approx(0.5)
    assert m["f1_happy"] == pytest.approx(0.5)
    # sad: pred 1,0,0,1 vs truth 1,0,0,0 -> 3/4; class 0: P=1, R=2/3, F1=4/5 (support 3);
    # class 1: P=1/2, R=1, F1=2/3 (support 1) -> (3*4/5 + 2/3) / 4
    assert m["acc_sad"] == pytest.approx(0.75)
    assert m["f1_sad"] == pytest.approx((3 * 0.8 + 2 / 3) / 4)
    assert m["acc_mean"] == pytest.approx(0.625)
    assert m["f1_mean"] == pytest.approx((0.5 + (3 * 0.8 + 2 / 3) / 4) / 2)


def test_shape_errors_and_helpers() -> None:
    with pytest.raises(ValueError, match="expected"):
        multilabel_metrics(np.zeros((3, 2)), np.zeros((3, 2)), ["a", "b"])
    with pytest.raises(ValueError, match="values"):
        regression_metrics([1, 2], [1, 2, 3])
    assert metric_keys("binary-multilabel", ["happy"]) == [
        "acc_happy",
        "f1_happy",
        "acc_mean",
        "f1_mean",
    ]
    sel = selection_metric("regression")
    assert sel.name == "mae" and sel.better(0.5, 0.6) and not sel.better(0.7, 0.6)
    assert not sel.better(float("nan"), 0.6) and sel.better(0.9, None)
    assert selection_metric("binary-multilabel").better(0.7, 0.6)
    assert format_metric("acc7", 0.4251) == "42.5" and format_metric("mae", 0.8436) == "0.844"
    assert format_metric("corr", float("nan")) == "n/a"
    ms = mean_std([{"mae": 1.0}, {"mae": 3.0}])
    assert ms["mae"]["mean"] == 2.0 and ms["mae"]["std"] == pytest.approx(math.sqrt(2))


def test_mean_std_of_one_seed_is_n1() -> None:
    ms = mean_std([{"mae": 0.8, "corr": None}])
    assert ms["mae"] == {"mean": 0.8, "std": None, "n": 1}
    assert ms["corr"] == {"mean": None, "std": None, "n": 0}
    assert format_mean_std("mae", 0.8, None, 1) == "0.800 (n=1)"
    assert format_mean_std("acc7", 0.42, 0.028, 2) == "42.0 ± 2.8"
    assert format_mean_std("corr", None, None, 0) == "n/a"
    two = mean_std([{"mae": 1.0}, {"mae": float("nan")}])  # a NaN seed is not counted
    assert two["mae"] == {"mean": 1.0, "std": None, "n": 1}
