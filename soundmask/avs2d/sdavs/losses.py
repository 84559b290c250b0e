"""SDAVS's objective (paper ``004_*``, Sec. IV): ``L = L_ce + L_iou + L_dice`` on the sound-mask logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["sdavs_loss"]


def sdavs_loss(logits: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """(F, h, w) logits and {0, 1} targets of F annotated frames → ``{"ce", "iou", "dice", "total"}``.

    ``ce``: binary cross-entropy (mean over pixels); ``iou``: 1 − soft IoU and ``dice``: 1 − soft Dice, each
    per frame (+1 smoothing, so an empty target with an empty prediction costs nothing), averaged."""
    t = target.to(logits.dtype)
    ce = F.binary_cross_entropy_with_logits(logits, t)
    p = logits.sigmoid().flatten(1)
    t = t.flatten(1)
    inter = (p * t).sum(1)
    iou = 1 - (inter + 1) / (p.sum(1) + t.sum(1) - inter + 1)
    dice = 1 - (2 * inter + 1) / (p.sum(1) + t.sum(1) + 1)
    return {"ce": ce, "iou": iou.mean(), "dice": dice.mean(), "total": ce + iou.mean() + dice.mean()}
