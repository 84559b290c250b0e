"""AVSBench-exact J/F and AVSS metrics against slow, step-by-step references of the original semantics."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from soundmask.metrics import AVSSMetric, avss_batch_stats, f_score, mask_iou

# ----------------------------------------------------------------------------------------------------
# slow references: one frame at a time, one threshold at a time, float32 torch, as AVSBench does it
# ----------------------------------------------------------------------------------------------------


def ref_mask_iou(logits: torch.Tensor, target: torch.Tensor) -> float:
    """AVSBench ``mask_iou`` (avs_s4/utils/utility.py), frame by frame; terms summed with ``torch.sum``."""
    n, h, w = logits.shape
    terms = []
    for i in range(n):
        pred = (torch.sigmoid(logits[i]) > 0.5).int()
        gt = target[i]
        if gt.sum(1).sum(0) == 0:  # no object: pixels where both are 0, over all pixels
            inter = ((1 - gt) * (1 - pred)).sum(1).sum(0)
            union = torch.tensor(float(h * w), dtype=target.dtype)
        else:
            inter = (pred * gt).sum(1).sum(0)
            union = torch.max(pred, gt).sum(1).sum(0)
        terms.append(inter / (union + 1e-7))
    return float((torch.sum(torch.stack(terms)) / n).item())


def ref_f_score(logits: torch.Tensor, target: torch.Tensor, num: int = 255) -> float:
    """AVSBench ``Eval_Fmeasure`` + ``_eval_pr`` (cuda_flag=False), 255 Python iterations per frame."""
    probs = torch.sigmoid(logits)
    beta2 = 0.3
    avg_f, img_num = 0.0, 0
    score = torch.zeros(num)
    thlist = torch.linspace(0, 1 - 1e-10, num)
    for k in range(probs.shape[0]):
        if torch.mean(target[k]) == 0.0:
            continue
        prec, recall = torch.zeros(num), torch.zeros(num)
        for i in range(num):
            y_temp = (probs[k] >= thlist[i]).float()
            tp = (y_temp * target[k]).sum()
            prec[i] = tp / (y_temp.sum() + 1e-20)
            recall[i] = tp / (target[k].sum() + 1e-20)
        f = (1 + beta2) * prec * recall / (beta2 * prec + recall)
        f[f != f] = 0
        avg_f = avg_f + f
        img_num += 1
        score = avg_f / img_num
    return float(score.max().item())


def random_batch(
    gen: torch.Generator, n: int, size: int, empty: list[int], scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    logits = torch.randn(n, size, size, generator=gen) * scale
    target = (torch.rand(n, size, size, generator=gen) < torch.rand(n, 1, 1, generator=gen)).float()
    for i in empty:
        target[i] = 0
    return logits, target


# ----------------------------------------------------------------------------------------------------
# hand-computed cases
# ----------------------------------------------------------------------------------------------------


def test_mask_iou_hand_2x2() -> None:
    # frame 0: pred [[1,0],[1,0]] vs gt [[1,1],[0,0]] → inter 1, union 3; frame 1: empty GT, pred has
    # one positive pixel → 3 pixels where both are 0, out of 4 → 0.75.
    logits = torch.tensor([[[5.0, -5.0], [5.0, -5.0]], [[5.0, -5.0], [-5.0, -5.0]]])
    target = torch.tensor([[[1.0, 1.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    expected = (1 / (3 + 1e-7) + 3 / (4 + 1e-7)) / 2
    assert mask_iou(logits, target) == pytest.approx(expected, abs=1e-7)


def test_f_score_hand_2x2() -> None:
    # probs = sigmoid(logits); gt has 2 positives. At thresholds <= 0.25: all 4 pixels positive, tp=2:
    # P=0.5, R=1 → F = 1.3*0.5/(0.15+1) = 0.5652; thresholds in (0.25, 0.75]: pixels with p=0.75, 0.9
    # positive (one is the GT 1 at 0.9, the other a GT 0 at 0.75) → P=0.5, R=0.5 → F=0.5;
    # in (0.75, 0.9]: only the 0.9 pixel → P=1, R=0.5 → F = 1.3*0.5/(0.3+0.5) = 0.8125.
    p = torch.tensor([[[0.9, 0.75], [0.25, 0.1]]])
    logits = torch.log(p / (1 - p))
    target = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])
    assert f_score(logits, target) == pytest.approx(0.8125, abs=1e-6)
    assert f_score(logits, target) == ref_f_score(logits, target)


def test_f_score_skips_empty_frames_and_all_empty_is_zero() -> None:
    logits = torch.full((3, 4, 4), 10.0)
    target = torch.zeros(3, 4, 4)
    assert f_score(logits, target) == 0.0
    target[1, :2] = 1  # only frame 1 counts; its best F: P = 8/16 ... at every threshold (all p = 1)
    expected = 1.3 * 0.5 * 1.0 / (0.3 * 0.5 + 1.0)
    assert f_score(logits, target) == pytest.approx(expected, abs=1e-6)


def test_perfect_and_saturated() -> None:
    target = torch.zeros(2, 8, 8)
    target[0, 2:5, 2:6] = 1
    logits = (target * 2 - 1) * 30
    assert mask_iou(logits, target) == pytest.approx(1.0, abs=1e-6)
    assert f_score(logits, target) == pytest.approx(1.0, abs=1e-6)
    # sigmoid(+30) is exactly 1.0 in float32: positive even at the last threshold (exactly 1.0)
    assert f_score(torch.full((1, 4, 4), 30.0), torch.ones(1, 4, 4)) == pytest.approx(1.0, abs=1e-7)


def test_thresholds_match_original_linspace() -> None:
    from soundmask.metrics import avsbench_thresholds

    t = avsbench_thresholds()
    assert t.dtype == torch.float32 and t.numel() == 255
    assert t[-1].item() == 1.0 and t[0].item() == 0.0
    assert torch.equal(t, torch.linspace(0, 1 - 1e-10, 255))


def test_input_types_and_validation() -> None:
    gen = torch.Generator().manual_seed(3)
    logits, target = random_batch(gen, 3, 16, [1], 2.0)
    want = (mask_iou(logits, target), f_score(logits, target))
    for tgt in (target.bool(), target.long(), target.to(torch.uint8), target.numpy()):
        assert (mask_iou(logits, tgt), f_score(logits, tgt)) == want
    assert (mask_iou(logits.numpy(), target.numpy()), f_score(logits.numpy(), target)) == want
    with pytest.raises(ValueError, match="3-D"):
        mask_iou(logits[0], target[0])
    with pytest.raises(ValueError, match="differ"):
        f_score(logits, target[:, :8])
    with pytest.raises(ValueError, match="3-D"):
        f_score(logits[:, None], target[:, None])


# ----------------------------------------------------------------------------------------------------
# fast vs slow reference on random batches
# ----------------------------------------------------------------------------------------------------


def test_random_batches_match_reference() -> None:
    gen = torch.Generator().manual_seed(0)
    sizes = [16, 17, 32, 48, 64, 96, 224]
    cases = 0
    for trial in range(40):
        n = 1 + trial % 8
        size = sizes[trial % len(sizes)]
        empty_pattern = trial % 4  # none, one, all, half
        empty = {0: [], 1: [0], 2: list(range(n)), 3: list(range(0, n, 2))}[empty_pattern]
        scale = [0.5, 3.0, 30.0][trial % 3]  # 30: sigmoid saturates to exactly 0/1
        logits, target = random_batch(gen, n, size, empty, scale)
        assert abs(mask_iou(logits, target) - ref_mask_iou(logits, target)) <= 1e-6
        assert abs(f_score(logits, target) - ref_f_score(logits, target)) <= 1e-6
        cases += 1
    assert cases == 40


def test_many_small_batches_match_reference_exactly() -> None:
    gen = torch.Generator().manual_seed(1)
    for trial in range(40):
        n = 1 + trial % 8
        size = 16 + trial % 5
        empty = list(range(0, n, 3)) if trial % 2 else []
        logits, target = random_batch(gen, n, size, empty, float(1 + trial % 7))
        assert f_score(logits, target) == ref_f_score(logits, target)
        assert mask_iou(logits, target) == ref_mask_iou(logits, target)


@settings(max_examples=25)
@given(
    n=st.integers(1, 4),
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    seed=st.integers(0, 2**31 - 1),
    scale=st.sampled_from([0.1, 1.0, 5.0, 40.0]),
    p_fg=st.floats(0.0, 1.0),
)
def test_bounds_property(n: int, h: int, w: int, seed: int, scale: float, p_fg: float) -> None:
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, h, w, generator=gen) * scale
    target = (torch.rand(n, h, w, generator=gen) < p_fg).float()
    j, f = mask_iou(logits, target), f_score(logits, target)
    assert 0.0 <= j <= 1.0 and 0.0 <= f <= 1.0
    assert f == ref_f_score(logits, target)
    # perfect prediction with large logits: J = 1 (empty frames: TN/all = 1 as well)
    perfect = (target * 2 - 1) * 50
    assert mask_iou(perfect, target) == pytest.approx(1.0, abs=1e-6)
    if bool(target.sum() > 0):
        assert f_score(perfect, target) == pytest.approx(1.0, abs=1e-6)


# ----------------------------------------------------------------------------------------------------
# AVSS
# ----------------------------------------------------------------------------------------------------


def ref_avss_batch(output: torch.Tensor, target: torch.Tensor, beta2: float = 0.3):
    """AVSBench ``calc_color_miou_fscore`` → ``_batch_miou_fscore`` (histc-based), transcribed."""
    nclass = output.shape[1]
    predict = torch.argmax(torch.softmax(output, dim=1), 1) + 1
    tgt = target.float() + 1
    predict = predict.float() * (tgt > 0).float()
    intersection = predict * (predict == tgt).float()
    cls_count = torch.zeros(nclass)
    ious = torch.zeros(nclass)
    fscores = torch.zeros(nclass)
    for i in range(tgt.shape[0]):
        a_inter = torch.histc(intersection[i], bins=nclass, min=1, max=nclass)
        a_pred = torch.histc(predict[i], bins=nclass, min=1, max=nclass)
        a_lab = torch.histc(tgt[i], bins=nclass, min=1, max=nclass)
        a_union = a_pred + a_lab - a_inter
        iou = 1.0 * a_inter.float() / (2.220446049250313e-16 + a_union.float())
        ious += iou
        cls_count[torch.nonzero(a_union).squeeze(-1)] += 1
        precision = a_inter / a_pred
        recall = a_inter / a_lab
        fs = (1 + beta2) * precision * recall / (beta2 * precision + recall)
        fs[torch.isnan(fs)] = 0.0
        fscores += fs
    return ious, fscores, cls_count


def ref_avss_dataset(batches: list[tuple[torch.Tensor, torch.Tensor]], nclass: int) -> tuple[float, float]:
    """The aggregation of avss/test.py."""
    miou_pc, fs_pc, cls_pc = torch.zeros(nclass), torch.zeros(nclass), torch.zeros(nclass)
    for out, tgt in batches:
        a, b, c = ref_avss_batch(out, tgt)
        miou_pc += a
        cls_pc += c
        fs_pc += b
    miou_pc = miou_pc / cls_pc
    miou_pc[torch.isnan(miou_pc)] = 0
    f_pc = fs_pc / cls_pc
    f_pc[torch.isnan(f_pc)] = 0
    return torch.mean(miou_pc).item(), torch.mean(f_pc).item()


def test_avss_hand_three_classes() -> None:
    # 1 frame, 2×3, classes 0 (background), 1, 2.
    # GT   [[0,0,1],[1,2,2]]   PRED [[0,1,1],[1,1,2]]
    # class 0: inter 1, pred 1, gt 2, union 2 → IoU 1/2, P 1, R 1/2, F = 1.3*0.5/(0.3+0.5) = 0.8125
    # class 1: inter 2, pred 4, gt 2, union 4 → IoU 1/2, P 1/2, R 1, F = 1.3*0.5/(0.15+1) = 0.565217
    # class 2: inter 1, pred 1, gt 2, union 2 → IoU 1/2, F 0.8125
    gt = torch.tensor([[[0, 0, 1], [1, 2, 2]]])
    pred = torch.tensor([[[0, 1, 1], [1, 1, 2]]])
    stats = avss_batch_stats(pred, gt, num_classes=3)
    assert stats.iou_sum.tolist() == pytest.approx([0.5, 0.5, 0.5])
    assert stats.fscore_sum.tolist() == pytest.approx([0.8125, 1.3 * 0.5 / 1.15, 0.8125], abs=1e-6)
    assert stats.count.tolist() == [1.0, 1.0, 1.0]
    # the same through logits: one-hot logits
    logits = torch.nn.functional.one_hot(pred, 3).permute(0, 3, 1, 2).float() * 10
    m = AVSSMetric(num_classes=3)
    m.update(logits, gt)
    # a second frame where only background is present and predicted: class 0 IoU 1, F 1; classes 1, 2 absent
    m.update(torch.zeros(1, 2, 3, dtype=torch.long), torch.zeros(1, 2, 3, dtype=torch.long))
    out = m.compute()
    assert out["class_count"] == [2.0, 1.0, 1.0]
    assert out["per_class_iou"] == pytest.approx([0.75, 0.5, 0.5])
    assert out["miou"] == pytest.approx((0.75 + 0.5 + 0.5) / 3)
    f0 = (0.8125 + 1.0) / 2
    assert out["fscore"] == pytest.approx((f0 + 1.3 * 0.5 / 1.15 + 0.8125) / 3, abs=1e-6)
    assert out["frames"] == 2


def test_avss_absent_classes_count_as_zero() -> None:
    m = AVSSMetric()  # 71 classes; a perfect prediction of class 0 and 5 only
    gt = torch.zeros(2, 4, 4, dtype=torch.long)
    gt[:, :2] = 5
    m.update(gt, gt)
    out = m.compute()
    assert out["classes_present"] == 2
    assert out["miou"] == pytest.approx(2 / 71, abs=1e-7)
    assert out["fscore"] == pytest.approx(2 / 71, abs=1e-7)


def test_avss_matches_transcribed_original() -> None:
    gen = torch.Generator().manual_seed(7)
    nclass = 9
    batches = []
    for b in range(5):
        bf = 2 + b
        logits = torch.randn(bf, nclass, 12, 10, generator=gen) * 2
        target = torch.randint(0, nclass, (bf, 12, 10), generator=gen)
        target[target >= 6] = 0  # some classes never in GT
        if b == 2:
            target[0] = 255  # an ignore-like label outside the class range
        batches.append((logits, target))
    metric = AVSSMetric(num_classes=nclass)
    for out, tgt in batches:
        stats = metric.update(out, tgt)
        ri, rf, rc = ref_avss_batch(out, tgt)
        assert torch.equal(stats.iou_sum, ri) and torch.equal(stats.fscore_sum, rf) and torch.equal(stats.count, rc)
    got = metric.compute()
    miou, fs = ref_avss_dataset(batches, nclass)
    assert got["miou"] == miou and got["fscore"] == fs
    # merge of two halves equals the single accumulator up to float32 rounding
    a, b = AVSSMetric(num_classes=nclass), AVSSMetric(num_classes=nclass)
    for k, (out, tgt) in enumerate(batches):
        (a if k < 2 else b).update(out, tgt)
    a.merge(b)
    assert a.compute()["miou"] == pytest.approx(miou, abs=1e-6)


def test_avss_validation() -> None:
    with pytest.raises(ValueError):
        avss_batch_stats(torch.zeros(2, 3, 4, 4), torch.zeros(2, 4, 5, dtype=torch.long))
    with pytest.raises(ValueError):
        avss_batch_stats(torch.zeros(2, 3, 4, 4), torch.zeros(4, 4, dtype=torch.long))
    with pytest.raises(ValueError):
        AVSSMetric(num_classes=3).update(torch.zeros(1, 4, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))
