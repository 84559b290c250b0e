"""AVSC's equations (paper 003) on hand-made tensors: matching, Eq. 2-5 losses, the filters, Eq. 1 and Eq. 6."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from soundmask.avs2d.avsc.losses import (
    asl_map,
    avc_loss,
    dice_loss,
    gt_segments,
    hungarian_match,
    mask_cls_loss,
    potential_instances,
    soas_loss,
)
from soundmask.avs2d.avsc.model import AudioCategoryNet, AVSCNetConfig, PotentialObjectNet
from soundmask.avs2d.features import LEVEL_CHANNELS

BIG = 30.0  # a logit whose sigmoid is 1 to float precision


def _logits(mask: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.where(mask, BIG, -BIG).astype(np.float32))


def _boxes(n: int, size: int = 16) -> np.ndarray:
    m = np.zeros((n, size, size), bool)
    for i in range(n):
        m[i, i * 3 : i * 3 + 3, 2 + i : 8 + i] = True
    return m


def test_soas_is_zero_when_no_object_masks_miss_the_ground_truth():
    gt = np.zeros((16, 16), bool)
    gt[:6, :6] = True
    off = np.zeros((2, 16, 16), bool)
    off[0, 10:, 10:] = True
    off[1, 8:12, :4] = True
    loss = soas_loss(_logits(off).flatten(1), torch.from_numpy(gt.astype(np.float32)).flatten())
    assert float(loss) < 1e-6


def test_soas_sums_the_iou_of_each_no_object_mask_with_the_gt_union():
    gt = np.zeros((2, 16, 16), bool)
    gt[0, :4, :4] = True
    gt[1, 8:12, 8:12] = True
    union = gt.any(0)
    m = np.zeros((2, 16, 16), bool)
    m[0, :4, :8] = True  # covers gt[0] (16 px) and 16 px off: IoU with the union = 16 / (32 + 16)
    m[1] = union  # IoU 1
    loss = soas_loss(_logits(m).flatten(1), torch.from_numpy(union.astype(np.float32)).flatten())
    assert abs(float(loss) - (16 / 48 + 1.0)) < 1e-5


@settings(max_examples=20, deadline=None)
@given(st.permutations(list(range(4))))
def test_hungarian_matching_recovers_a_permutation(perm):
    gt = _boxes(4)
    pred = gt[list(perm)]
    cls = torch.full((4, 6), -5.0)
    q, g = hungarian_match(
        cls,
        _logits(pred).flatten(1),
        torch.from_numpy(gt.reshape(4, -1).astype(np.float32)),
        torch.tensor([0, 1, 2, 3]),
    )
    assert all(perm[qi] == gi for qi, gi in zip(q, g, strict=True))


def test_mask_cls_loss_prefers_the_right_masks_and_classes():
    gt = _boxes(2)
    gtf = torch.from_numpy(gt.reshape(2, -1).astype(np.float32))
    cats = torch.tensor([1, 3])
    N, K = 5, 4
    good_cls = torch.full((N, K + 1), -10.0)
    good_cls[0, 1] = good_cls[1, 3] = 10.0
    good_cls[2:, K] = 10.0
    good_masks = torch.full((N, 256), -BIG)
    good_masks[:2] = _logits(gt).flatten(1)
    good = mask_cls_loss(good_cls, good_masks, gtf, cats)
    assert float(good["total"]) < 1e-3
    bad = mask_cls_loss(torch.zeros(N, K + 1), torch.zeros(N, 256), gtf, cats)
    assert float(bad["total"]) > 1.0
    # Eq. 5: the soas term enters with λ_soas
    covered = good_masks.clone()
    covered[4] = _logits(gt.any(0)).flatten()
    with_soas = mask_cls_loss(good_cls, covered, gtf, cats, lambda_soas=1.0)
    no_soas = mask_cls_loss(good_cls, covered, gtf, cats, lambda_soas=0.0)
    assert abs(float(with_soas["total"] - no_soas["total"]) - 1.0) < 1e-4


def test_unknown_category_is_supervised_as_some_object():
    gt = torch.from_numpy(_boxes(1).reshape(1, -1).astype(np.float32))
    cls = torch.tensor([[2.0, 0.0, 1.0], [0.0, 0.0, 5.0]])  # K = 2; query 0 is an object, query 1 no-object
    masks = torch.stack([_logits(_boxes(1)[0]).flatten(), torch.full((256,), -BIG)])
    out = mask_cls_loss(cls, masks, gt, torch.tensor([-1]), eos_weight=0.1)
    p0 = cls[0].softmax(-1)
    expected = (-torch.log(1 - p0[-1]) + 0.1 * -cls[1].log_softmax(-1)[-1]) / 1.1
    assert torch.allclose(out["cls"], expected, atol=1e-5)


def test_gt_segments_split_unknown_sources_into_components():
    m = np.zeros((32, 32), bool)
    m[:8, :8] = True
    m[20:30, 20:30] = True
    segs, cats = gt_segments(m, category=-1)
    assert len(segs) == 2 and (cats == -1).all() and (segs.any(0) == m).all()
    segs, cats = gt_segments(m, category=5)
    assert len(segs) == 1 and cats.tolist() == [5]
    segs, _ = gt_segments(np.zeros((8, 8), bool), category=2)
    assert len(segs) == 0


def test_category_and_score_filters():
    K = 3
    cls = torch.tensor(
        [
            [5.0, 0, 0, 0],  # category 0, confident
            [2.0, 0, 0, 0],  # category 0, less confident: dropped by the score filter
            [0, 0, 0, 5.0],  # no-object: dropped by the category filter
            [0, 0, 3.0, 0],
        ]
    )  # category 2
    masks = torch.stack([_logits(b).flatten() for b in _boxes(4)]).reshape(4, 16, 16)
    inst, conf, index = potential_instances(cls, masks)
    assert index.tolist() == [0, -1, 3]
    assert inst.shape == (K, 16, 16) and not inst[1].any()
    assert (inst[0] == torch.from_numpy(_boxes(4)[0])).all()
    assert conf[0] > conf[2] > 0 and conf[1] == 0
    _, _, idx = potential_instances(cls, masks, rule="threshold", threshold=0.99)  # keeps query 2 as well
    assert idx[0] == 0 and idx[1] >= 0 or idx.tolist() == [0, -1, 3]


def test_eq1_and_eq6():
    m = torch.zeros(1, 3, 4, 4)
    m[0, 0, :2] = 1
    m[0, 2, 2:] = 1
    p = torch.tensor([[0.7, 0.2, 0.1]])
    s = asl_map(p, m)
    assert torch.allclose(s[0, 0], torch.full((4,), 0.7)) and torch.allclose(s[0, 3], torch.full((4,), 0.1))
    over = asl_map(torch.tensor([[0.8, 0.0, 0.9]]), torch.ones(1, 3, 4, 4))
    assert float(over.max()) == 1.0  # overlapping instances are clamped
    gt = (s > 0.5).float()
    assert torch.allclose(avc_loss(s, gt), F.binary_cross_entropy(s, gt))


def test_dice_loss_is_zero_for_a_perfect_mask():
    b = _boxes(1).reshape(1, -1)
    assert float(dice_loss(_logits(b), torch.from_numpy(b.astype(np.float32)))) < 1e-3


def test_networks_shapes_and_audio_simplex():
    cfg = AVSCNetConfig(num_classes=5, audio_dim=12, queries=6, layers=1)
    net = PotentialObjectNet(cfg)
    levels = [torch.randn(2, c, 112 // 2**k, 112 // 2**k) for k, c in enumerate(LEVEL_CHANNELS)]
    cls, masks = net(levels)
    assert cls.shape == (2, 6, 6) and masks.shape == (2, 6, 112, 112)
    p = AudioCategoryNet(AVSCNetConfig(5, 12, audio_activation="softmax"))(torch.randn(3, 12))
    assert p.shape == (3, 5) and torch.allclose(p.sum(-1), torch.ones(3), atol=1e-5)
    q = AudioCategoryNet(AVSCNetConfig(5, 12, audio_activation="sigmoid"))(torch.randn(3, 12))
    assert ((q >= 0) & (q <= 1)).all()
