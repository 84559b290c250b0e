"""AVSC's objectives (paper ``003_*``, Sec. 3.3–3.4) and the instance filtering of Sec. 3.3.

- :func:`hungarian_match`: bipartite matching σ of predicted (class, mask) pairs to ground-truth segments
  (scipy ``linear_sum_assignment``; cost = −p(class) + λ_f·focal + λ_d·dice, as in MaskFormer).
- :func:`mask_cls_loss`: Eq. 2–3, ``L_mask_cls = Σ_j [−log p_σ(j)(c_gt) + λ_f·L_focal + λ_d·L_dice]`` with
  λ_f = 20, λ_d = 1; queries matched to nothing take the no-object class (down-weighted by ``eos_weight``, the
  MaskFormer convention). A segment of unknown category (MS3 gives none) is supervised as "some object":
  ``−log(1 − p_∅)``.
- :func:`soas_loss`: Eq. 4, the silent-object-aware loss ``Σ_j |m_nj ∩ ∪_k m_gt_k| / |m_nj ∪ ∪_k m_gt_k|`` over
  the masks of the no-object set (soft IoU with the union of the ground truth): such masks may cover silent
  objects, but must stay off the sounding ones.
- :func:`asl_map`: Eq. 1, ``S_asl = Σ_j p_cj · m_j`` over the potential instance set; :func:`avc_loss`: Eq. 6,
  ``BCE(S_asl, M_gt)``.
- :func:`potential_instances`: the category filter (drop queries whose class is no-object) and the score
  filter (the most confident mask per category).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

__all__ = [
    "asl_map",
    "avc_loss",
    "dice_loss",
    "focal_loss",
    "gt_segments",
    "hungarian_match",
    "mask_cls_loss",
    "potential_instances",
    "soas_loss",
]


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Sigmoid focal loss (Lin et al. 2017) of (N, P) mask logits, mean over pixels → (N,)."""
    p = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    pt = p * target + (1 - p) * (1 - target)
    w = alpha * target + (1 - alpha) * (1 - target)
    return (w * ce * (1 - pt) ** gamma).mean(-1)


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 − soft Dice of (N, P) mask logits with (N, P) targets → (N,)."""
    p = logits.sigmoid()
    return 1 - (2 * (p * target).sum(-1) + 1) / (p.sum(-1) + target.sum(-1) + 1)


def _pairwise_focal(
    logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """(N, G) focal cost of every prediction with every segment (mean over the P pixels)."""
    p = logits.sigmoid()
    pos = (
        alpha * (1 - p) ** gamma * F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits), reduction="none")
    )
    neg = (
        (1 - alpha) * p**gamma * F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="none")
    )
    return (pos @ target.T + neg @ (1 - target).T) / logits.shape[-1]


def _pairwise_dice(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    p = logits.sigmoid()
    return 1 - (2 * p @ target.T + 1) / (p.sum(-1)[:, None] + target.sum(-1)[None] + 1)


def _class_prob(cls_logits: torch.Tensor, cats: torch.Tensor) -> torch.Tensor:
    """(N, G): probability of each segment's class under each query (unknown class −1: 1 − p_∅)."""
    prob = cls_logits.softmax(-1)
    known = prob[:, cats.clamp(min=0)]
    anyobj = 1 - prob[:, -1:]
    return torch.where(cats[None] >= 0, known, anyobj)


@torch.no_grad()
def hungarian_match(
    cls_logits: torch.Tensor,
    mask_logits: torch.Tensor,
    gt_masks: torch.Tensor,
    gt_cats: torch.Tensor,
    lambda_f: float = 20.0,
    lambda_d: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(query indices, segment indices) of the optimal assignment for one image: ``cls_logits`` (N, K+1),
    ``mask_logits`` (N, P), ``gt_masks`` (G, P) float, ``gt_cats`` (G,) long (−1: unknown)."""
    if len(gt_masks) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    cost = (
        -_class_prob(cls_logits, gt_cats)
        + lambda_f * _pairwise_focal(mask_logits, gt_masks)
        + lambda_d * _pairwise_dice(mask_logits, gt_masks)
    )
    q, g = linear_sum_assignment(cost.float().numpy())
    return q.astype(np.int64), g.astype(np.int64)


def soas_loss(noobj_logits: torch.Tensor, gt_union: torch.Tensor) -> torch.Tensor:
    """Eq. 4: Σ over the no-object set of soft IoU(m_nj, ∪ m_gt); ``noobj_logits`` (Nn, P), ``gt_union`` (P,).
    Zero when the ground truth is empty or the no-object masks do not overlap it."""
    if len(noobj_logits) == 0:
        return noobj_logits.sum() * 0
    p = noobj_logits.sigmoid()
    inter = (p * gt_union[None]).sum(-1)
    union = (p + gt_union[None] - p * gt_union[None]).sum(-1)
    return (inter / union.clamp(min=1e-6)).sum()


def mask_cls_loss(
    cls_logits: torch.Tensor,
    mask_logits: torch.Tensor,
    gt_masks: torch.Tensor,
    gt_cats: torch.Tensor,
    lambda_f: float = 20.0,
    lambda_d: float = 1.0,
    lambda_soas: float = 1.0,
    eos_weight: float = 0.1,
) -> dict[str, torch.Tensor]:
    """Eq. 5 for one image, ``L_sn = L_mask_cls + λ_soas·L_soas``: ``{"cls", "mask", "soas", "total"}``.

    Shapes as in :func:`hungarian_match`; the class term is averaged over queries (weights: 1 for matched,
    ``eos_weight`` for no-object targets), the mask term over matched segments."""
    N, K1 = cls_logits.shape
    q, g = hungarian_match(cls_logits, mask_logits, gt_masks, gt_cats, lambda_f, lambda_d)
    logp = cls_logits.log_softmax(-1)
    matched = torch.zeros(N, dtype=torch.bool)
    matched[torch.from_numpy(q)] = True
    terms = -logp[:, -1] * eos_weight
    if len(q):
        qi, gi = torch.from_numpy(q), torch.from_numpy(g)
        cats = gt_cats[gi]
        known = -logp[qi, cats.clamp(min=0)]
        anyobj = -torch.log1p(-logp[qi, -1].exp().clamp(max=1 - 1e-6))
        terms = terms.index_put((qi,), torch.where(cats >= 0, known, anyobj))
        m = lambda_f * focal_loss(mask_logits[qi], gt_masks[gi]) + lambda_d * dice_loss(mask_logits[qi], gt_masks[gi])
        mask = m.sum() / len(q)
    else:
        mask = mask_logits.sum() * 0
    weights = torch.where(matched, torch.ones(N), torch.full((N,), eos_weight))
    cls = terms.sum() / weights.sum()
    union = gt_masks.amax(0) if len(gt_masks) else torch.zeros(mask_logits.shape[-1])
    soas = soas_loss(mask_logits[~matched], union)
    return {"cls": cls, "mask": mask, "soas": soas, "total": cls + mask + lambda_soas * soas}


def gt_segments(mask: np.ndarray, category: int, min_area: float = 0.002) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth segments of one binary sound mask: with a known ``category`` (S4) the whole mask is one
    segment; with an unknown one (−1, MS3: several sources, no labels) each connected component of at least
    ``min_area`` of the image is one. → ((G, H, W) bool, (G,) category)."""
    mask = np.asarray(mask, bool)
    if not mask.any():
        return np.zeros((0, *mask.shape), bool), np.zeros(0, np.int64)
    if category >= 0:
        return mask[None], np.array([category], np.int64)
    import cv2

    n, lab = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    segs = [lab == k for k in range(1, n) if (lab == k).mean() >= min_area]
    if not segs:
        segs = [mask]
    return np.stack(segs), np.full(len(segs), -1, np.int64)


def potential_instances(
    cls_logits: torch.Tensor, mask_logits: torch.Tensor, rule: str = "argmax", threshold: float = 0.5
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The potential instance mask set of one image (Sec. 3.3).

    Category filter: drop the queries whose class is no-object (``rule="argmax"``: the arg-max of the K+1
    classes is ∅, the paper's rule; ``rule="threshold"``: p_∅ ≥ ``threshold``) and those with an empty mask.
    Each kept query takes its most
    probable real class; score filter: per category, the query with the highest confidence p_i(c).
    → (K, ...) bool masks (all False for a category without an instance), (K,) confidences, (K,) query index
    (−1: none)."""
    prob = cls_logits.softmax(-1)
    K = prob.shape[-1] - 1
    conf, cat = prob[:, :K].max(-1)
    keep = prob[:, :K].max(-1).values > prob[:, K] if rule == "argmax" else prob[:, K] < threshold
    keep &= (mask_logits > 0).flatten(1).any(1)  # an empty mask is no instance
    masks = torch.zeros((K, *mask_logits.shape[1:]), dtype=torch.bool)
    scores = torch.zeros(K)
    index = torch.full((K,), -1, dtype=torch.long)
    for i in torch.nonzero(keep).flatten().tolist():
        c = int(cat[i])
        if conf[i] > scores[c]:
            scores[c], index[c] = conf[i], i
    for c in torch.nonzero(index >= 0).flatten().tolist():
        masks[c] = mask_logits[index[c]] > 0
    return masks, scores, index


def asl_map(p_a: torch.Tensor, instances: torch.Tensor) -> torch.Tensor:
    """Eq. 1: ``S_asl = Σ_j p_cj · m_j``; ``p_a`` (B, K) audio category scores, ``instances`` (B, K, ...) the
    instance mask of each category (zero where none) → (B, ...) clamped to [0, 1] (instances may overlap)."""
    s = torch.einsum("bk,bk...->b...", p_a, instances.to(p_a.dtype))
    return s.clamp(0, 1)


def avc_loss(s_asl: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Eq. 6: ``L_avc = BCE(S_asl, M_gt)`` (mean over pixels and frames)."""
    return F.binary_cross_entropy(s_asl.clamp(1e-6, 1 - 1e-6), gt.to(s_asl.dtype))
