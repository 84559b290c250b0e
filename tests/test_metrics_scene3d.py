"""3D AVS metrics: EchoSegnet protocol (per-scene AVSBench J/F, unweighted mean), pooled J/F, centroid error."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from soundmask.errors import ConfigError, DataError
from soundmask.metrics import (
    ALPHA_THRESHOLD,
    TEST_EVERY,
    Scene3DMetric,
    centroid_error,
    f_score,
    mask_centroid_3d,
    mask_iou,
    test_view_indices,
)


def block(h: int, w: int, rows: slice, cols: slice) -> torch.Tensor:
    m = torch.zeros(h, w, dtype=torch.bool)
    m[rows, cols] = True
    return m


def random_scene(seed: int, n: int, h: int = 9, w: int = 11) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    alpha = torch.rand(n, h, w, generator=gen)
    target = torch.rand(n, h, w, generator=gen) < 0.4
    target[::3] = False  # some views with an empty GT
    return alpha, target


def test_constants_and_test_views() -> None:
    assert TEST_EVERY == 8 and ALPHA_THRESHOLD == 0.8
    assert test_view_indices(17) == [0, 8, 16]
    assert test_view_indices(8) == [0]
    assert test_view_indices(0) == []
    assert test_view_indices(5, every=2) == [0, 2, 4]
    with pytest.raises(ConfigError):
        test_view_indices(10, every=0)
    with pytest.raises(ConfigError):
        test_view_indices(-1)


def test_perfect_predictions() -> None:
    gt = torch.stack([block(8, 8, slice(0, 4), slice(0, 4)), block(8, 8, slice(2, 7), slice(1, 3))])
    m = Scene3DMetric()
    m.update("a", gt.clone(), gt)
    res = m.compute()
    assert res.miou == pytest.approx(1.0, abs=1e-6)  # inter / (union + 1e-7)
    assert res.fscore == pytest.approx(1.0, abs=1e-6)
    assert res.pooled_j == 1.0 and res.pooled_f == pytest.approx(1.0)
    assert res.num_scenes == 1 and res.num_views == 2


def test_empty_gt_convention() -> None:
    # AVSBench mask_iou: an empty-GT view scores the fraction of pixels where the prediction is empty too;
    # f_score skips empty-GT views, and returns 0.0 when all of them are empty.
    empty = torch.zeros(2, 4, 4, dtype=torch.bool)
    m = Scene3DMetric()
    m.update("empty_ok", empty, empty)
    fp = empty.clone()
    fp[0, 0, :] = True  # 4 false positives out of 16 pixels in view 0
    m.update("empty_fp", fp, empty)
    per = m.compute().per_scene
    assert per["empty_ok"]["miou"] == pytest.approx(1.0, abs=1e-6)
    assert per["empty_ok"]["fscore"] == 0.0
    assert per["empty_fp"]["miou"] == pytest.approx((12 / 16 + 1.0) / 2, abs=1e-6)
    assert per["empty_ok"]["empty_views"] == 2
    # a mixed scene: the empty-GT view only counts for J
    gt = torch.stack([block(4, 4, slice(0, 2), slice(0, 2)), torch.zeros(4, 4, dtype=torch.bool)])
    m2 = Scene3DMetric()
    m2.update("mixed", gt.clone(), gt)
    assert m2.compute().fscore == pytest.approx(1.0, abs=1e-6)


def test_half_overlap_hand_computed() -> None:
    gt = block(8, 8, slice(0, 4), slice(0, 4))  # 16 px
    pred = block(8, 8, slice(0, 4), slice(2, 6))  # shifted by 2 columns: inter 8, union 24
    m = Scene3DMetric()
    m.update("s", pred[None], gt[None])
    res = m.compute()
    assert res.miou == pytest.approx(8 / 24, abs=1e-6)
    # P = R = 0.5 → F = 0.5 (beats the "everything positive" value 1.3·0.25 / (0.3·0.25 + 1) ≈ 0.302)
    assert res.fscore == pytest.approx(0.5, abs=1e-6)
    assert res.pooled_j == 8 / 24


def test_f_score_everything_positive_floor() -> None:
    # AVSBench's threshold 0 makes every pixel positive: an empty prediction still scores 1.3g/(0.3g+1)
    gt = block(4, 4, slice(0, 1), slice(0, 1))  # g = 1/16
    m = Scene3DMetric()
    m.update("s", torch.zeros(1, 4, 4, dtype=torch.bool), gt[None])
    res = m.compute()
    g = 1 / 16
    assert res.fscore == pytest.approx(1.3 * g / (0.3 * g + 1), abs=1e-6)
    assert res.miou == 0.0
    assert res.pooled_j == 0.0


def test_binary_logits_match_echosegnet_and_pm20() -> None:
    # EchoSegnet passes the 0/1 masks themselves as logits; ±20 logits give the same J and F
    alpha, target = random_scene(0, 7)
    m = Scene3DMetric()
    m.update("s", alpha, target)
    per = m.compute().per_scene["s"]
    mask = alpha > 0.8
    pm20 = torch.where(mask, 20.0, -20.0)
    assert per["fscore"] == f_score(mask.float(), target.double()) == f_score(pm20, target)
    assert per["miou"] == mask_iou(mask.float(), target.double())
    assert per["miou"] == pytest.approx(mask_iou(pm20, target), abs=1e-6)


def test_alpha_threshold() -> None:
    gt = torch.tensor([[[True, False, False]]])
    m = Scene3DMetric()
    m.update("pos", torch.tensor([[[0.81, 0.79, 0.0]]]), gt)
    m.update("neg", torch.tensor([[[0.79, 0.81, 0.0]]]), gt)
    m.update("edge", torch.tensor([[[0.8, 0.0, 0.0]]]), gt)  # strict: alpha == 0.8 is negative
    per = m.compute().per_scene
    assert per["pos"]["miou"] == pytest.approx(1.0, abs=1e-6)
    assert per["neg"]["miou"] == 0.0
    assert per["edge"]["miou"] == 0.0
    # alphas give the same result as the boolean mask alpha > 0.8; uint8 0/1 masks are accepted
    alpha, target = random_scene(1, 5)
    a, b, c = Scene3DMetric(), Scene3DMetric(), Scene3DMetric()
    a.update("s", alpha, target)
    b.update("s", alpha > 0.8, target)
    c.update("s", (alpha > 0.8).to(torch.uint8).numpy(), target.numpy())
    assert a.compute().to_dict() == b.compute().to_dict() == c.compute().to_dict()
    # a custom threshold
    d = Scene3DMetric(alpha_threshold=0.5)
    d.update("s", torch.tensor([[[0.6, 0.4, 0.0]]]), gt)
    assert d.compute().miou == pytest.approx(1.0, abs=1e-6)


def test_unweighted_mean_over_scenes() -> None:
    gt = block(4, 4, slice(0, 2), slice(0, 2))
    m = Scene3DMetric()
    m.update("one_view_perfect", gt[None], gt[None])  # IoU 1 on 1 view
    wrong = block(4, 4, slice(2, 4), slice(2, 4))  # disjoint: IoU 0 on 3 views
    m.update("three_views_wrong", wrong.expand(3, 4, 4), gt.expand(3, 4, 4))
    res = m.compute()
    per = res.per_scene
    assert per["one_view_perfect"]["num_views"] == 1 and per["three_views_wrong"]["num_views"] == 3
    assert res.miou == pytest.approx(0.5, abs=1e-6)  # EchoSegnet: every scene weighs the same
    view_weighted = sum(s["miou"] * s["num_views"] for s in per.values()) / res.num_views
    assert view_weighted == pytest.approx(0.25, abs=1e-6)
    assert res.miou == pytest.approx(np.mean([s["miou"] for s in per.values()]))
    assert res.fscore == pytest.approx(np.mean([s["fscore"] for s in per.values()]))
    assert res.num_scenes == 2 and res.num_views == 4


def test_pooled_j_hand_count() -> None:
    gt = block(8, 8, slice(0, 4), slice(0, 4))
    pred = block(8, 8, slice(0, 4), slice(2, 6))  # inter 8, union 24
    small = block(3, 5, slice(0, 2), slice(0, 3))  # another scene, another resolution: inter 6, union 6
    fp = torch.zeros(3, 5, dtype=torch.bool)
    fp[2, 4] = True  # empty GT, 1 false positive: union 1
    m = Scene3DMetric()
    m.update("a", pred[None], gt[None])
    m.update("b", torch.stack([small, fp]), torch.stack([small, torch.zeros_like(small)]))
    res = m.compute()
    assert res.pooled_j == (8 + 6) / (24 + 6 + 1)
    assert res.per_scene["a"]["pooled_j"] == 8 / 24
    assert res.per_scene["b"]["pooled_j"] == 6 / 7


def test_multiple_updates_equal_one_update_and_merge() -> None:
    alpha, target = random_scene(2, 10)
    alpha2, target2 = random_scene(3, 4, h=6, w=5)
    one = Scene3DMetric()
    one.update("s", alpha, target, centroid_errors=[0.1, 0.2])
    one.update("t", alpha2, target2, centroid_errors=0.5)
    many = Scene3DMetric()
    many.update("s", alpha[:3], target[:3], centroid_errors=0.1)
    many.update("t", alpha2, target2, centroid_errors=0.5)
    many.update("s", alpha[3:4], target[3:4])
    many.update("s", alpha[4:], target[4:], centroid_errors=[0.2])
    assert one.compute() == many.compute()
    assert one.compute().per_scene["s"]["num_views"] == 10
    # merging two halves gives the same as well
    left, right = Scene3DMetric(), Scene3DMetric()
    left.update("s", alpha[:6], target[:6], centroid_errors=[0.1, 0.2])
    right.update("s", alpha[6:], target[6:])
    right.update("t", alpha2, target2, centroid_errors=0.5)
    left.merge(right)
    assert left.compute() == one.compute()
    assert right.compute().per_scene["s"]["num_views"] == 4  # `right` is untouched
    with pytest.raises(DataError):
        left.merge(Scene3DMetric(alpha_threshold=0.5))


def test_centroid_error() -> None:
    pts = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
    assert centroid_error(pts, [1.0, 3.0, 4.0]) == pytest.approx(5.0)
    assert centroid_error(torch.tensor(pts), torch.tensor([1.0, 0.0, 0.0])) == 0.0
    assert math.isnan(centroid_error(np.zeros((0, 3)), [0.0, 0.0, 0.0]))
    np.testing.assert_allclose(mask_centroid_3d(pts), [1.0, 0.0, 0.0])
    np.testing.assert_allclose(mask_centroid_3d(pts, weights=[1.0, 3.0]), [1.5, 0.0, 0.0])
    assert centroid_error(pts, [1.5, 0.0, 0.0], weights=[1.0, 3.0]) == pytest.approx(0.0)
    assert np.isnan(mask_centroid_3d(pts, weights=[0.0, 0.0])).all()
    for bad_pts, gt in [(np.zeros((4, 2)), [0, 0, 0]), (pts, [0, 0]), (np.full((1, 3), np.nan), [0, 0, 0])]:
        with pytest.raises(DataError):
            centroid_error(bad_pts, gt)
    with pytest.raises(DataError):
        mask_centroid_3d(pts, weights=[1.0, -1.0])
    # in the metric: mean of all finite errors; NaN (no predicted point) counted as a failure
    gt = block(4, 4, slice(0, 2), slice(0, 2))[None]
    m = Scene3DMetric()
    assert math.isnan(m.compute().centroid_error_m)
    m.update("a", gt, gt, centroid_errors=[5.0, float("nan")])
    m.update("b", gt, gt, centroid_errors=torch.tensor(3.0))
    m.update("c", gt, gt)
    res = m.compute()
    assert res.centroid_error_m == pytest.approx(4.0)
    assert res.num_centroids == 2 and res.centroid_failures == 1
    assert res.per_scene["a"]["centroid_error_m"] == 5.0
    assert math.isnan(res.per_scene["c"]["centroid_error_m"])


def test_bad_inputs() -> None:
    m = Scene3DMetric()
    ok = torch.zeros(2, 4, 4, dtype=torch.bool)
    with pytest.raises(DataError, match="differ"):
        m.update("s", ok, torch.zeros(2, 4, 5, dtype=torch.bool))
    with pytest.raises(DataError, match="T = 0"):
        m.update("s", ok[:0], ok[:0])
    with pytest.raises(DataError, match="pixels are empty"):
        m.update("s", ok[:, :0], ok[:, :0])
    with pytest.raises(DataError, match="3-D"):
        m.update("s", ok[0], ok[0])
    nan_alpha = torch.zeros(2, 4, 4)
    nan_alpha[0, 1, 1] = float("nan")
    with pytest.raises(DataError, match="NaN"):
        m.update("s", nan_alpha, ok)
    nan_gt = torch.zeros(2, 4, 4)
    nan_gt[1, 0, 0] = float("nan")
    with pytest.raises(DataError, match="NaN"):
        m.update("s", ok, nan_gt)
    with pytest.raises(DataError, match=r"outside \[0, 1\]"):
        m.update("s", torch.full((2, 4, 4), 3.0), ok)  # logits, not alphas
    with pytest.raises(DataError, match="binary"):
        m.update("s", ok, torch.full((2, 4, 4), 255, dtype=torch.uint8))
    with pytest.raises(DataError, match="0/1"):
        m.update("s", torch.full((2, 4, 4), 255, dtype=torch.uint8), ok)
    with pytest.raises(DataError, match="scene_name"):
        m.update("", ok, ok)
    with pytest.raises(DataError, match="centroid"):
        m.update("s", ok, ok, centroid_errors=-1.0)
    assert len(m) == 0  # nothing was recorded by the failed updates
    m.update("s", ok, ok)
    with pytest.raises(DataError, match="same resolution"):
        m.update("s", torch.zeros(1, 5, 5, dtype=torch.bool), torch.zeros(1, 5, 5, dtype=torch.bool))
    assert m.compute().num_views == 2
    with pytest.raises(ConfigError):
        Scene3DMetric(alpha_threshold=1.5)


def test_to_dict_json_ready() -> None:
    empty = Scene3DMetric().compute()
    assert empty.num_scenes == 0 and math.isnan(empty.miou)
    d = empty.to_dict()
    assert d["miou"] is None and d["pooled_j"] is None and d["centroid_error_m"] is None
    json.dumps(d, allow_nan=False)
    alpha, target = random_scene(4, 6)
    m = Scene3DMetric()
    m.update("s", alpha, target)
    m.update("t", alpha[:2], target[:2], centroid_errors=[float("nan")])
    d = m.compute().to_dict()
    text = json.dumps(d, allow_nan=False)  # raises on NaN / inf
    assert "NaN" not in text
    assert d["centroid_error_m"] is None and d["per_scene"]["s"]["centroid_error_m"] is None
    assert set(d["per_scene"]["s"]) >= {"miou", "fscore", "num_views", "pooled_j"}
    assert d["num_views"] == 8 and d["num_scenes"] == 2
