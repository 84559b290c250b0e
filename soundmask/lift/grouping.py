"""Grouping Gaussians into 3D components (the objects that stage 7 renders and compares with 2D sound masks).

Two sources of components:

* :func:`components_from_labels` — per-Gaussian labels (e.g. from :func:`soundmask.lift.voting.vote_instances`
  or from clustering affinity features, SAGA-style): one component per non-zero label.
* :func:`spatial_components` — connected components of candidate centres under a distance threshold (the
  spatial clustering EchoSegnet's refinement applies to the voted Gaussians; also a fallback when no affinity
  features were trained).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["Component", "candidate_index", "components_from_labels", "default_radius", "spatial_components"]


@dataclass
class Component:
    """A group of Gaussians: ``id`` (≥ 1), ``index`` (sorted indices into the Gaussians), ``centroid`` (3,) the
    mean of their centres (world metres), ``size`` the number of Gaussians."""

    id: int
    index: np.ndarray
    centroid: np.ndarray
    size: int


def _means(means: Any) -> np.ndarray:
    if isinstance(means, torch.Tensor):
        means = means.detach().cpu().numpy()
    m = np.asarray(means, dtype=np.float64)
    if m.ndim != 2 or m.shape[1] != 3:
        raise ValueError(f"means must be (N, 3), got {m.shape}")
    return m


def candidate_index(candidates: Any, n: int) -> np.ndarray:
    """Sorted int64 indices of ``candidates``: a bool (N,) mask or an index array."""
    c = candidates.detach().cpu().numpy() if isinstance(candidates, torch.Tensor) else np.asarray(candidates)
    if c.dtype == bool:
        if c.shape != (n,):
            raise ValueError(f"a boolean candidate mask must be ({n},), got {c.shape}")
        return np.flatnonzero(c)
    return np.unique(c.astype(np.int64).ravel())


def components_from_labels(labels: Any, means: Any, min_size: int = 1) -> list[Component]:
    """One :class:`Component` per non-zero label (its id = the label), dropping those with fewer than
    ``min_size`` Gaussians; sorted by id."""
    m = _means(means)
    lab = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    lab = lab.astype(np.int64).ravel()
    if lab.shape[0] != m.shape[0]:
        raise ValueError(f"{lab.shape[0]} labels for {m.shape[0]} Gaussians")
    keep = np.flatnonzero(lab != 0)
    order = keep[np.argsort(lab[keep], kind="stable")]
    ids, starts = np.unique(lab[order], return_index=True)
    out = []
    for cid, idx in zip(ids, np.split(order, starts[1:]), strict=True):
        if len(idx) >= min_size:
            out.append(Component(int(cid), np.sort(idx), m[idx].mean(axis=0), len(idx)))
    return out


def default_radius(points: np.ndarray, factor: float = 3.0) -> float:
    """``factor`` × the median nearest-neighbour distance of ``points`` (0 for fewer than two points)."""
    from scipy.spatial import cKDTree

    if len(points) < 2:
        return 0.0
    d, _ = cKDTree(points).query(points, k=2)
    return float(factor * np.median(d[:, 1]))


def spatial_components(means: Any, candidates: Any, radius: float | None = None, min_size: int = 5) -> list[Component]:
    """Connected components of the candidate centres, two centres linked when within ``radius`` (default: 3× the
    median nearest-neighbour distance of the candidates); components smaller than ``min_size`` are dropped.

    Returns components with ids 1, 2, … in order of decreasing size."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    m = _means(means)
    idx = candidate_index(candidates, m.shape[0])
    if idx.size == 0:
        return []
    pts = m[idx]
    r = default_radius(pts) if radius is None else float(radius)
    pairs = cKDTree(pts).query_pairs(r, output_type="ndarray") if r > 0 else np.zeros((0, 2), dtype=np.int64)
    k = len(pts)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(k, k))
    _, lab = connected_components(graph, directed=False)
    sizes = np.bincount(lab)
    order = np.argsort(-sizes, kind="stable")
    out = []
    for c in order:
        if sizes[c] < min_size:
            break
        sel = idx[lab == c]
        out.append(Component(len(out) + 1, sel, m[sel].mean(axis=0), int(sizes[c])))
    return out
