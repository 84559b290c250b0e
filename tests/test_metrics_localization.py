"""cIoU / AUC (LVS) and AP / max-F1 (SLAVC, Extended VGG-SS) on hand-made cases and transcribed loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from soundmask.metrics import (
    LocalizationMetric,
    average_precision,
    ciou,
    ciou_auc,
    ciou_success_rate,
    f1_curve,
    max_f1,
    precision_recall,
)


def test_ciou_hand() -> None:
    gt = np.zeros((4, 4))
    gt[:2, :2] = 1  # 4 pixels
    pred = np.zeros((4, 4))
    pred[0, :] = 0.7  # 4 pixels >= 0.5: 2 inside the box, 2 outside
    assert ciou(pred, gt, 0.5) == pytest.approx(2 / (4 + 2))
    assert ciou(pred, gt, 0.7) == pytest.approx(2 / 6)  # inclusive threshold
    assert ciou(pred, gt, 0.71) == 0.0
    assert ciou(torch.from_numpy(pred), torch.from_numpy(gt)) == pytest.approx(1 / 3)


def test_ciou_soft_consensus_map() -> None:
    gt = np.array([[1.0, 0.5], [0.0, 0.0]])  # Flickr: boxes / 2, clipped at 1
    pred = np.array([[1.0, 1.0], [1.0, 0.0]])
    # inter = 1 + 0.5; denominator = Σgt (1.5) + predicted pixels where gt == 0 (1)
    assert ciou(pred, gt) == pytest.approx(1.5 / 2.5)


def test_ciou_empty_is_nan_and_shape_checked() -> None:
    assert math.isnan(ciou(np.zeros((3, 3)), np.zeros((3, 3))))
    assert ciou(np.ones((3, 3)), np.zeros((3, 3))) == 0.0
    with pytest.raises(ValueError):
        ciou(np.zeros((3, 3)), np.zeros((3, 4)))


def test_success_rate_and_auc_hand() -> None:
    assert ciou_success_rate([0.4, 0.5, 0.9, 0.1]) == 0.5
    assert ciou_auc([1.0]) == pytest.approx(1.0)
    # success curve [1, 0, ..., 0]: one trapezoid of width 0.05 and mean height 0.5
    assert ciou_auc([0.0]) == pytest.approx(0.025)
    # 0.05 * 3 == 0.15000000000000002 > 0.15: a cIoU of exactly 0.15 fails the 4th threshold (LVS quirk)
    y = [1.0, 1.0, 1.0] + [0.0] * 18
    assert ciou_auc([0.15]) == pytest.approx(np.sum(np.diff(np.arange(21) * 0.05) * (np.array(y[1:]) + y[:-1]) / 2))
    assert ciou_auc([0.15]) == pytest.approx(0.05 * 2 + 0.025)


def ref_auc(cious: list[float]) -> float:
    """LVS cal_AUC with sklearn.metrics.auc replaced by np.trapezoid (what it computes for increasing x)."""
    results = [np.sum(np.array(cious) >= 0.05 * i) / len(cious) for i in range(21)]
    x = [0.05 * i for i in range(21)]
    return float(np.trapezoid(results, x))


def test_auc_matches_reference_random() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        c = rng.random(rng.integers(1, 50)).round(2).tolist()
        assert ciou_auc(c) == pytest.approx(ref_auc(c), abs=1e-12)


# ----------------------------------------------------------------------------------------------------
# SLAVC AP / F1
# ----------------------------------------------------------------------------------------------------

CIOUS = [0.8, 0.2, float("nan"), 0.6]
CONF = [0.9, 0.7, 0.6, 0.3]
NOBJ = [1, 1, 0, 1]


def test_precision_recall_hand() -> None:
    assert precision_recall(CIOUS, CONF, NOBJ, 0.7) == (0.5, 0.5)
    p, r = precision_recall(CIOUS, CONF, NOBJ, 0.6)
    assert (p, r) == (pytest.approx(1 / 3), 0.5)
    assert precision_recall(CIOUS, CONF, NOBJ, 0.3) == (0.5, 1.0)
    assert precision_recall(CIOUS, CONF, NOBJ, 2.0) == (1.0, 0.0)  # no detection → P = 1


def test_ap_hand() -> None:
    # thresholds 0.7, 0.6, 0.3 → (P, R) = (.5, .5), (1/3, .5), (.5, 1); running max P = .5, .5, .5
    # AP = .5·(.5 − .5) + .5·(1 − .5) = 0.25 (area starts at the first recall, as the original)
    assert average_precision(CIOUS, CONF, NOBJ) == pytest.approx(0.25)
    assert average_precision([0.9], [0.5], [1]) == 0.0  # one sample: no threshold left


def test_f1_hand() -> None:
    # thresholds 0.3, 0.6, 0.7, 0.9 → F1 2/3, 0.4, 0.5, 0.5
    np.testing.assert_allclose(f1_curve(CIOUS, CONF, NOBJ), [2 / 3, 0.4, 0.5, 0.5])
    assert max_f1(CIOUS, CONF, NOBJ) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        max_f1([0.1, 0.2], [0.5], [1, 1])


def ref_precision_recall(bb_list, ciou_list, confidence_list, confidence_thr, ciou_thr=0.5):
    """SLAVC EvaluatorFull.calc_precision_recall, transcribed."""
    tp = fp = fn = 0
    for bb, c, conf in zip(bb_list, ciou_list, confidence_list, strict=True):
        if bb == 0:
            if conf >= confidence_thr:
                fp += 1
        elif conf >= confidence_thr:
            if c >= ciou_thr:
                tp += 1
            else:
                fp += 1
        else:
            fn += 1
    precision = 1.0 if tp + fp == 0 else tp / (tp + fp)
    recall = 1.0 if tp + fn == 0 else tp / (tp + fn)
    return precision, recall


def ref_ap(bb, ciou_list, conf, iou_thr=0.5):
    """SLAVC EvaluatorFull.calc_ap, transcribed."""
    precision, recall, skip = [], [], max(1, len(ciou_list) // 200)
    for thr in np.sort(np.array(conf))[:-1][::-skip]:
        p, r = ref_precision_recall(bb, ciou_list, conf, thr, iou_thr)
        precision.append(p)
        recall.append(r)
    pmax = [np.max(precision[i:]) for i in range(len(precision))]
    return sum([pmax[i] * (recall[i + 1] - recall[i]) for i in range(len(pmax) - 1)])


def ref_f1(bb, ciou_list, conf, iou_thr=0.5):
    thrs = list(sorted(conf))[:: max(1, len(conf) // 10)]
    pr = [ref_precision_recall(bb, ciou_list, conf, t, iou_thr) for t in thrs]
    return [2 * r * p / (r + p) if r + p > 0 else 0.0 for p, r in pr]


@pytest.mark.parametrize("n", [3, 17, 250, 450])
def test_ap_f1_match_transcribed_loops(n: int) -> None:
    rng = np.random.default_rng(n)
    c = rng.random(n).tolist()
    s = rng.random(n).round(2).tolist()  # ties in confidence
    b = rng.integers(0, 3, n).tolist()
    for thr in (0.5, 0.75):
        assert average_precision(c, s, b, thr) == pytest.approx(ref_ap(b, c, s, thr), abs=1e-12)
        np.testing.assert_allclose(f1_curve(c, s, b, thr), ref_f1(b, c, s, thr), atol=1e-12)
        assert max_f1(c, s, b, thr) == pytest.approx(max(ref_f1(b, c, s, thr)), abs=1e-12)


def test_localization_metric_accumulator() -> None:
    gt = np.zeros((4, 4))
    gt[:2, :2] = 1
    perfect = gt.copy()
    m = LocalizationMetric()
    assert m.update(perfect, gt, confidence=0.9) == 1.0
    assert m.update(np.zeros((4, 4)), gt, confidence=0.2) == 0.0
    m.update(np.ones((4, 4)), np.zeros((4, 4)), confidence=0.5)  # non-visible sample, n_objects → 0
    out = m.compute()
    assert out["samples"] == 3 and out["visible_samples"] == 2
    assert out["ciou"] == 0.5 and out["mean_ciou"] == 0.5
    assert out["auc"] == pytest.approx(ciou_auc([1.0, 0.0]))
    assert out["ap"] == pytest.approx(average_precision([1.0, 0.0, float("nan")], [0.9, 0.2, 0.5], [1, 1, 0]))
    assert out["max_f1"] == pytest.approx(max_f1([1.0, 0.0, float("nan")], [0.9, 0.2, 0.5], [1, 1, 0]))
    other = LocalizationMetric()
    other.update(perfect, gt)
    m.merge(other)
    assert m.compute()["samples"] == 4
