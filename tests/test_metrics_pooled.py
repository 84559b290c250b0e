"""PooledJF (batch-invariant) and AvsbenchJF (AVSBench's per-batch averaging)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from soundmask.metrics import AvsbenchJF, PooledJF, f_score, mask_iou


def make_frames(seed: int, n: int, h: int = 12, w: int = 10, scale: float = 3.0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, h, w, generator=gen) * scale
    target = (torch.rand(n, h, w, generator=gen) < torch.rand(n, 1, 1, generator=gen)).float()
    target[::3] = 0  # some frames with empty GT
    return logits, target


def pooled(logits: torch.Tensor, target: torch.Tensor, splits: list[int]) -> dict:
    m = PooledJF()
    start = 0
    for size in splits:
        if size:
            m.update(logits[start : start + size], target[start : start + size])
        start += size
    return m.compute()


def test_hand_computed_pooled_j_and_f() -> None:
    # two 1×2 frames, probabilities given directly.
    # frame 0: p [0.9, 0.2], gt [1, 1]; frame 1: p [0.8, 0.1], gt [0, 0]
    probs = torch.tensor([[[0.9, 0.2]], [[0.8, 0.1]]])
    target = torch.tensor([[[1, 1]], [[0, 0]]])
    m = PooledJF(from_logits=False)
    m.update(probs, target)
    out = m.compute()
    # J: binarised (> 0.5) pred [1,0] / [1,0]; inter 1, union 2 + 1 = 3
    assert out["j"] == pytest.approx(1 / 3)
    # per-frame: frame 0 → 1/2; frame 1 (empty GT) → 1 of 2 pixels both 0 → 1/2
    assert out["j_frame_mean"] == pytest.approx(0.5)
    # F: GT = 2. t <= 0.1: PRED 4, TP 2 → P .5, R 1 → 0.5652; t in (0.2, 0.8]: PRED 2, TP 1 → P .5 R .5 → .5
    # t in (0.1, 0.2]: PRED 3, TP 2 → P 2/3, R 1 → 1.3*(2/3)/(0.2+1) = 0.7222 (the best);
    # t in (0.8, 0.9]: PRED 1, TP 1 → P 1, R .5 → 0.8125 — better still.
    assert out["f"] == pytest.approx(0.8125)
    assert out["f_precision"] == pytest.approx(1.0) and out["f_recall"] == pytest.approx(0.5)
    assert 0.8 < out["f_threshold"] <= 0.9
    assert out["frames"] == 2 and out["empty_frames"] == 1


def test_single_frame_pooled_f_equals_avsbench_f() -> None:
    logits, target = make_frames(5, 6)
    for i in range(6):
        if target[i].sum() == 0:
            continue
        m = PooledJF()
        m.update(logits[i : i + 1], target[i : i + 1])
        assert m.compute()["f"] == pytest.approx(f_score(logits[i : i + 1], target[i : i + 1]), abs=1e-6)


def test_frame_mean_equals_avsbench_j_as_one_batch() -> None:
    logits, target = make_frames(6, 9)
    m = PooledJF()
    m.update(logits, target)
    assert m.compute()["j_frame_mean"] == pytest.approx(mask_iou(logits, target), abs=1e-6)


def test_empty_everything() -> None:
    m = PooledJF()
    assert m.compute()["frames"] == 0 and math.isnan(m.compute()["j"])
    m.update(torch.full((2, 3, 3), -20.0), torch.zeros(2, 3, 3))
    out = m.compute()
    assert out["j"] == 1.0 and out["j_frame_mean"] == 1.0 and out["f"] == 0.0


def test_validation() -> None:
    m = PooledJF()
    with pytest.raises(ValueError, match="3-D"):
        m.update(torch.zeros(4, 4), torch.zeros(4, 4))
    with pytest.raises(ValueError, match="differ"):
        m.update(torch.zeros(1, 4, 4), torch.zeros(1, 4, 5))
    with pytest.raises(ValueError, match="binary"):
        m.update(torch.zeros(1, 2, 2), torch.full((1, 2, 2), 255.0))
    with pytest.raises(ValueError, match="NaN"):
        m.update(torch.full((1, 2, 2), float("nan")), torch.zeros(1, 2, 2))
    with pytest.raises(ValueError, match="outside"):
        PooledJF(from_logits=False).update(torch.full((1, 2, 2), 2.0), torch.zeros(1, 2, 2))
    with pytest.raises(ValueError):
        m.merge(PooledJF(from_logits=False))
    assert m.compute()["frames"] == 0  # failed updates leave no trace


def test_accepts_numpy_and_bool() -> None:
    logits, target = make_frames(2, 4)
    a, b = PooledJF(), PooledJF()
    a.update(logits, target)
    b.update(logits.numpy(), target.bool().numpy())
    assert a.compute() == b.compute()


@settings(max_examples=20)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 10),
    cuts=st.lists(st.integers(0, 10), max_size=4),
    perm_seed=st.integers(0, 1000),
)
def test_pooled_invariant_to_batching_order_and_merge(seed: int, n: int, cuts: list[int], perm_seed: int) -> None:
    logits, target = make_frames(seed, n, h=9, w=7)
    reference = pooled(logits, target, [n])
    # any split into batches
    points = sorted({min(c, n) for c in cuts} | {0, n})
    splits = [b - a for a, b in zip(points[:-1], points[1:], strict=True)]
    assert pooled(logits, target, splits) == reference
    # any frame order
    perm = torch.from_numpy(np.random.default_rng(perm_seed).permutation(n))
    assert pooled(logits[perm], target[perm], [1] * n) == reference
    # merging accumulators == one update
    parts = [PooledJF() for _ in splits]
    start = 0
    for part, size in zip(parts, splits, strict=True):
        part.update(logits[start : start + size], target[start : start + size])
        start += size
    merged = PooledJF()
    for part in reversed(parts):
        merged.merge(part)
    assert merged.compute() == reference
    out = reference
    assert 0.0 <= out["j"] <= 1.0 and 0.0 <= out["f"] <= 1.0 and 0.0 <= out["j_frame_mean"] <= 1.0


def test_avsbench_jf_reproduces_batch_averaging() -> None:
    logits, target = make_frames(11, 10)
    m = AvsbenchJF()
    js, fs = [], []
    for start in range(0, 10, 4):  # batches of 4, 4, 2
        j, f = m.update(logits[start : start + 4], target[start : start + 4])
        js.append(mask_iou(logits[start : start + 4], target[start : start + 4]))
        fs.append(f_score(logits[start : start + 4], target[start : start + 4]))
        assert (j, f) == (js[-1], fs[-1])
    out = m.compute()
    # AverageMeter: J summed as float32 tensors, F as Python floats
    j_sum = 0.0
    for j in js:
        j_sum = j_sum + torch.tensor(j, dtype=torch.float32)
    assert out["j"] == (j_sum / 3).item()
    assert out["f"] == sum(fs) / 3
    assert out["batches"] == 3 and out["frames"] == 10 and out["batch_sizes"] == [2, 4]
    other = AvsbenchJF()
    other.update(logits[:2], target[:2])
    m.merge(other)
    assert m.compute()["batches"] == 4
    m.reset()
    assert m.compute()["batches"] == 0


def test_avsbench_f_depends_on_batch_size_pooled_does_not() -> None:
    logits, target = make_frames(21, 8, scale=2.0)
    by_size = {}
    for size in (1, 2, 8):
        m = AvsbenchJF()
        for start in range(0, 8, size):
            m.update(logits[start : start + size], target[start : start + size])
        by_size[size] = m.compute()["f"]
    assert len(set(by_size.values())) > 1
    assert pooled(logits, target, [1] * 8) == pooled(logits, target, [8])
