"""Splitting merged components (issue 29, item 7): geometry alone joins objects that touch (instruments on one
stand, a guitar leaning on a washing machine), so each component is cut again by evidence it did not use.

* :func:`split_by_instances` — multi-view voting of per-view 2D instance proposals (e.g. the learned proposer's
  masks, :mod:`soundmask.vision.proposals`), Gaussian-Grouping / SAGA style but without ids that agree across
  views: the component's Gaussians are cut into small k-means clusters; in each view that sees a cluster it takes
  the proposal (or background) most of its visible centres fall in; two clusters that the views put in the same
  proposal vote *same*, in different ones *different*. Neighbouring clusters are then merged greedily, best
  pair first (average linkage over all their co-observed cluster pairs), while
  ``(same + 1.2) / (same + different + 2) > 0.5`` — clusters no view compares stay together (prior 0.6).
* :func:`objectness` — the Gaussians most views put inside some proposal: kept by the geometry grouping although
  they lie on a large plane (a xylophone lying on a table top is within the plane's band).
* :func:`instance_label_maps` — one id map per image from :class:`~soundmask.vision.types.Proposals`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from soundmask.lift.grouping import Component, _means
from soundmask.lift.voting import _lookup, _pixels

if TYPE_CHECKING:
    from soundmask.data.types import Camera
    from soundmask.splat.gaussians import Gaussians
    from soundmask.vision.types import Proposals

__all__ = ["cluster_affinity", "instance_label_maps", "merge_clusters", "objectness", "split_by_instances"]

PRIOR_SAME = 0.6  # an unobserved pair of neighbouring clusters counts as "probably the same object"
PRIOR_WEIGHT = 2.0


def instance_label_maps(proposals: Sequence[Proposals]) -> list[np.ndarray]:
    """(H, W) int32 per image: 0 background, k + 1 inside proposal k (the better proposal wins an overlap)."""
    out = []
    for p in proposals:
        h, w = p.masks.shape[1:]
        lab = np.zeros((h, w), np.int32)
        for k in range(len(p.masks) - 1, -1, -1):  # best first in Proposals: paint it last
            lab[p.masks[k]] = k + 1
        out.append(lab)
    return out


def objectness(
    gaussians: Gaussians,
    cameras: Sequence[Camera],
    label_maps: Sequence[np.ndarray | None],
    *,
    times: Sequence[float | None] | None = None,
    visible: Any = None,
    share: float = 0.5,
    min_votes: int = 3,
) -> np.ndarray:
    """(N,) bool: the Gaussians inside some proposal (``label_maps`` > 0) in more than ``share`` of the (at least
    ``min_votes``) views that see them (:func:`soundmask.lift.voting.vote_masks`)."""
    from soundmask.lift.voting import vote_masks

    masks = [None if m is None else np.asarray(m) > 0 for m in label_maps]
    return vote_masks(gaussians, cameras, masks, times=times, visible=visible).select(share, min_votes=min_votes)


def cluster_affinity(labels: np.ndarray, cluster: np.ndarray, n_clusters: int, min_seen: int = 3) -> np.ndarray:
    """(2, C, C) same / different votes between clusters. ``labels`` (V, n): the id under each Gaussian in each
    view (−1: not visible); ``cluster`` (n,): its cluster. In a view, a cluster with at least ``min_seen`` visible
    Gaussians takes the id most of them have (when it holds more than half of them)."""
    C = n_clusters
    same = np.zeros((C, C))
    diff = np.zeros((C, C))
    for lab in labels:
        vis = lab >= 0
        if not vis.any():
            continue
        c, l_ = cluster[vis], lab[vis].astype(np.int64)
        L = int(l_.max()) + 1
        keys, counts = np.unique(c * L + l_, return_counts=True)
        kc, kl = keys // L, keys % L
        seen = np.bincount(kc, weights=counts, minlength=C)
        order = np.lexsort((-counts, kc))  # per cluster, its most common id first
        first = np.ones(len(order), bool)
        first[1:] = kc[order][1:] != kc[order][:-1]
        top = order[first]
        ok = (counts[top] * 2 > seen[kc[top]]) & (seen[kc[top]] >= min_seen)
        cs, ls = kc[top][ok], kl[top][ok]
        if len(cs) < 2:
            continue
        eq = ls[:, None] == ls[None, :]
        same[np.ix_(cs, cs)] += eq
        diff[np.ix_(cs, cs)] += ~eq
    return np.stack([same, diff])


def merge_clusters(
    votes: np.ndarray, adjacent: np.ndarray, sizes: np.ndarray, min_size: int = 1, threshold: float = 0.5
) -> np.ndarray:
    """(C,) group of each cluster: neighbouring (``adjacent`` (C, C) bool) groups merged greedily, best first,
    while their average-linkage score ``(same + 1.2) / (same + different + 2)`` (``votes`` (2, C, C)) exceeds
    ``threshold``; then each group smaller than ``min_size`` Gaussians (``sizes`` per cluster) joins its best
    neighbour. Groups are numbered 0, 1, … ."""
    S, D = votes[0].astype(np.float64).copy(), votes[1].astype(np.float64).copy()
    A = adjacent.astype(bool).copy()
    np.fill_diagonal(A, False)
    C = len(S)
    alive = np.ones(C, bool)
    size = sizes.astype(np.float64).copy()
    group = np.arange(C)

    def merge(i: int, j: int) -> None:
        for M in (S, D):
            M[i] += M[j]
            M[:, i] += M[:, j]
        A[i] |= A[j]
        A[:, i] |= A[:, j]
        A[i, i] = False
        A[j] = False
        A[:, j] = False
        alive[j] = False
        size[i] += size[j]
        group[group == j] = i

    def score() -> np.ndarray:
        return np.where(A, (S + PRIOR_SAME * PRIOR_WEIGHT) / (S + D + PRIOR_WEIGHT), -np.inf)

    while True:
        sc = score()
        k = int(np.argmax(sc))
        i, j = divmod(k, C)
        if not np.isfinite(sc[i, j]) or sc[i, j] <= threshold:
            break
        merge(i, j)
    while True:
        small = np.flatnonzero(alive & (size < min_size) & A.any(axis=1))
        if not len(small):
            break
        sc = score()[small]
        r = int(np.argmax(sc.max(axis=1)))
        merge(int(np.argmax(sc[r])), int(small[r]))
    _, out = np.unique(group, return_inverse=True)
    return out


def split_by_instances(
    components: list[Component],
    gaussians: Gaussians,
    cameras: Sequence[Camera],
    label_maps: Sequence[np.ndarray | None],
    *,
    times: Sequence[float | None] | None = None,
    visible: Any = None,
    cluster_size: int = 40,
    max_clusters: int = 256,
    min_size: int = 20,
    seed: int = 0,
) -> list[Component]:
    """Cut each component where the views' instance proposals (``label_maps``, one id map per camera, 0 =
    background; None: the view does not vote) disagree (module notes). ``visible`` (V, N): which views see which
    centres (e.g. :func:`soundmask.lift.voting.centre_visibility` with depth maps; default: every centre in the
    image). Parts smaller than ``min_size`` Gaussians join a neighbour. Ids are renumbered 1, 2, … in the order
    of the input."""
    from scipy.cluster.vq import kmeans2
    from scipy.spatial import cKDTree

    from soundmask.lift.grouping import default_radius

    means = _means(gaussians.means)
    cams = list(cameras)
    ts = list(times) if times is not None else [None] * len(cams)
    vis = None if visible is None else np.asarray(visible, bool)
    todo = [c for c in components if c.size >= 2 * min_size]
    idx_all = np.unique(np.concatenate([c.index for c in todo])) if todo else np.zeros(0, np.int64)
    labels = np.full((len(cams), len(idx_all)), -1, np.int64)
    for v, (cam, t, lab) in enumerate(zip(cams, ts, label_maps, strict=True)):
        if lab is None or not len(idx_all):
            continue
        with torch.no_grad():
            centres = gaussians.centres_at(t)[idx_all]
        col, row, _, inside = _pixels(cam, centres)
        if vis is not None:
            inside &= vis[v, idx_all]
        ids = _lookup(np.asarray(lab).astype(np.int64), cam, col, row, "instance map")
        labels[v] = np.where(inside, ids, -1)
    parts: list[np.ndarray] = []
    for comp in components:
        idx = np.asarray(comp.index, dtype=np.int64)
        if comp.size < 2 * min_size:
            parts.append(idx)
            continue
        pts = means[idx]
        C = int(min(max_clusters, max(2, round(len(idx) / cluster_size))))
        _, cl = kmeans2(pts, C, minit="++", seed=seed)
        _, cl = np.unique(cl, return_inverse=True)  # drop empty clusters
        C = int(cl.max()) + 1
        lab = labels[:, np.searchsorted(idx_all, idx)]
        votes = cluster_affinity(lab, cl, C)
        pairs = cKDTree(pts).query_pairs(default_radius(pts), output_type="ndarray")
        adj = np.zeros((C, C), bool)
        if len(pairs):
            adj[cl[pairs[:, 0]], cl[pairs[:, 1]]] = True
            adj |= adj.T
        group = merge_clusters(votes, adj, np.bincount(cl, minlength=C), min_size=min_size)[cl]
        for gi in range(int(group.max()) + 1):
            sel = idx[group == gi]
            if len(sel):
                parts.append(sel)
    return [Component(k + 1, np.sort(p), means[p].mean(axis=0), int(p.size)) for k, p in enumerate(parts)]
