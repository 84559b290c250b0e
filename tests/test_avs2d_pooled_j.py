"""Checkpoint selection's pooled J (soundmask.avs2d.supervised.pooled_j) is the metrics' pooled J."""

from __future__ import annotations

import pytest
import torch

from soundmask.avs2d.supervised import pooled_j
from soundmask.metrics import PooledJF


def metrics_j(pred: torch.Tensor, gt: torch.Tensor) -> float:
    m = PooledJF(from_logits=False)
    m.update(pred.float(), gt)
    return float(m.compute()["j"])


def test_a_frame_where_both_masks_are_empty_is_no_hit() -> None:
    pred = torch.zeros(2, 4, 4, dtype=torch.bool)
    gt = torch.zeros(2, 4, 4, dtype=torch.bool)
    pred[0, :2] = True  # 8 pixels
    gt[0, 1:3] = True  # 8 pixels, 4 shared: inter 4, union 12; frame 1: both empty
    assert pooled_j(pred, gt) == pytest.approx(4 / 12)  # the old definition gave (4 + 1) / (12 + 1)
    assert pooled_j(pred, gt) == metrics_j(pred, gt)
    assert pooled_j(pred[:1], gt[:1]) == pooled_j(pred, gt)  # adding the empty frame changes nothing


def test_edge_cases() -> None:
    empty = torch.zeros(3, 2, 2, dtype=torch.bool)
    assert pooled_j(empty, empty) == 1.0 == metrics_j(empty, empty)  # every union empty: as the metric
    assert pooled_j(empty[:0], empty[:0]) == 0.0  # no frame at all
    full = torch.ones(3, 2, 2, dtype=torch.bool)
    assert pooled_j(full, empty) == 0.0 and pooled_j(full, full) == 1.0


@pytest.mark.parametrize("seed", range(5))
def test_equals_the_metrics_pooled_j_on_random_masks(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    n = int(torch.randint(1, 12, (1,), generator=g))
    pred = torch.rand(n, 9, 7, generator=g) < torch.rand(n, 1, 1, generator=g)
    gt = torch.rand(n, 9, 7, generator=g) < torch.rand(n, 1, 1, generator=g)
    pred[0], gt[0] = False, False  # at least one both-empty frame
    assert pooled_j(pred, gt) == metrics_j(pred, gt)
    # any (N, ...) layout: SDAVS validates (N, H, W) rows, AVSC too; a flat (N, P) view gives the same
    assert pooled_j(pred.reshape(n, -1), gt.reshape(n, -1)) == metrics_j(pred, gt)
