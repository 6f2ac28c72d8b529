"""The literature's metrics on hand-made vectors, every expected value worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mea_cli.train.metrics import (
    Selection,
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


# ------------------------------------------------------------------ custom tasks
def test_range_regression_metrics_on_a_1_to_5_scale_by_hand() -> None:
    from mea_cli.train.metrics import range_regression_metrics

    truth = [1.0, 2.0, 3.0, 4.0, 5.0, 3.0]
    pred = [1.4, 3.4, 2.0, 4.6, 6.0, 3.2]
    m = range_regression_metrics(pred, truth, (1, 5))
    # |errors| 0.4, 1.4, 1.0, 0.6, 1.0, 0.2 -> 4.6 / 6 (unclipped)
    assert m["mae"] == pytest.approx(4.6 / 6)
    # Acc-5: truth 1,2,3,4,5,3; prediction clipped and rounded 1,3,2,5,5,3 -> 3/6
    assert m["acc5"] == pytest.approx(3 / 6)
    # vs the middle 3 (the two truths equal to 3 dropped): truth above? F,F,T,T; pred F,T,T,T
    assert m["acc2"] == pytest.approx(3 / 4)
    assert set(m) == {"mae", "corr", "acc5", "acc2", "f1"}
    assert metric_keys("regression", ["sentiment"], (1, 5)) == ["mae", "corr", "acc5", "acc2", "f1"]
    # a range whose ends are not integers has no integer-class accuracy
    assert set(range_regression_metrics(pred, truth, (0.5, 5.5))) == {"mae", "corr", "acc2", "f1"}


def test_multiclass_metrics_and_confusion_by_hand() -> None:
    from mea_cli.train.metrics import confusion, multiclass_metrics

    names = ["neg", "neu", "pos"]
    truth = np.eye(3)[[0, 0, 1, 2, 2, 2]]
    logits = np.array(
        [[2, 0, 0], [0, 1, 0], [0, 3, 1], [0, 0, 1], [1, 0, 0], [0, 0, 5]], np.float64
    )  # predicted 0, 1, 1, 2, 0, 2
    m = multiclass_metrics(logits, truth, names)
    assert m["acc"] == pytest.approx(4 / 6)
    # per-class F1: neg P 1/2 R 1/2 -> 1/2; neu P 1/2 R 1 -> 2/3; pos P 1 R 2/3 -> 4/5
    assert m["f1_macro"] == pytest.approx((1 / 2 + 2 / 3 + 4 / 5) / 3)
    assert m["f1_weighted"] == pytest.approx((2 * 1 / 2 + 1 * 2 / 3 + 3 * 4 / 5) / 6)
    assert confusion(logits, truth, names).tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert selection_metric("multiclass") == Selection("f1_macro", higher_is_better=True)
    assert metric_keys("multiclass", names) == ["acc", "f1_macro", "f1_weighted"]
    with pytest.raises(ValueError, match="expected"):
        multiclass_metrics(logits[:, :2], truth, names)


def test_predictions_read_the_same_way_as_the_metrics() -> None:
    from mea_cli.train.predictions import flat, readable, truth_readable

    reg = readable("regression", np.array([[4.6], [0.2], [3.0]]), ["sentiment"], (1.0, 5.0))
    assert reg == [
        {"score": 4.6, "polarity": "positive", "class": 5},
        {"score": 0.2, "polarity": "negative", "class": 1},
        {"score": 3.0, "polarity": "negative", "class": 3},  # the middle is not above it
    ]
    (mc,) = readable("multiclass", np.array([[0.0, np.log(3.0)]]), ["a", "b"])
    assert mc["class"] == "b" and mc["probabilities"] == pytest.approx({"a": 0.25, "b": 0.75})
    (ml,) = readable("binary-multilabel", np.array([[[0.0, 1.0], [2.0, 0.0]]]), ["x", "y"])
    assert ml["labels"] == ["x"] and ml["probabilities"]["y"] == pytest.approx(1 / (1 + np.e**2))
    assert truth_readable("multiclass", np.eye(2)[[1]], ["a", "b"]) == [{"class": "b"}]
    assert flat(mc, "pred_") == {"pred_class": "b", "pred_p_a": "0.250000", "pred_p_b": "0.750000"}
