"""SeAC's inference-time aggregation: similarity aggregation (Eq. 4) and category-aware aggregation (Eq. 5)."""

from __future__ import annotations

import numpy as np

__all__ = ["category_aware_aggregation", "minmax_normalise", "similarity_aggregation"]


def minmax_normalise(s: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """``ŝ_i = (s_i − min s) / (max s − min s)`` over the N masks of one image (Eq. 4). With a single mask (or all
    equal) every ``ŝ_i`` is 1: the only candidate is the most similar one."""
    s = np.asarray(s, dtype=np.float64)
    if s.size == 0:
        return s.astype(np.float32)
    lo, hi = s.min(), s.max()
    if hi - lo < eps:
        return np.ones_like(s, dtype=np.float32)
    return ((s - lo) / (hi - lo)).astype(np.float32)


def similarity_aggregation(masks: np.ndarray, s_hat: np.ndarray) -> np.ndarray:
    """Eq. 4: ``O(u, v) = max_i ŝ_i · M_i(u, v)`` — (H, W) float32 from N×H×W binary masks and their normalised
    similarities (0 where no mask covers the pixel)."""
    masks = np.asarray(masks, dtype=bool)
    if masks.shape[0] == 0:
        return np.zeros(masks.shape[1:], np.float32)
    s_hat = np.asarray(s_hat, np.float32).reshape(-1, 1, 1)
    return (masks * s_hat).max(axis=0).astype(np.float32)


def category_aware_aggregation(
    masks: np.ndarray, s_hat: np.ndarray, categories: np.ndarray, sigma: float = 0.9
) -> np.ndarray:
    """Eq. 5: ``C(u, v) = 1 + t[argmax_i ŝ_i M_i(u, v)]`` where ``max_i ŝ_i M_i(u, v) > σ``, else 0 — an (H, W)
    int32 semantic map from N×H×W masks, their normalised similarities and category indices ``t`` (N,)."""
    masks = np.asarray(masks, dtype=bool)
    h, w = masks.shape[1:]
    if masks.shape[0] == 0:
        return np.zeros((h, w), np.int32)
    weighted = masks * np.asarray(s_hat, np.float32).reshape(-1, 1, 1)
    best = weighted.argmax(axis=0)
    t = np.asarray(categories, np.int64).reshape(-1)
    return np.where(weighted.max(axis=0) > sigma, 1 + t[best], 0).astype(np.int32)
