"""Grouping Gaussians into 3D components (the objects that stage 7 renders and compares with 2D sound masks).

Sources of components:

* :func:`components_from_labels` — per-Gaussian labels (e.g. from :func:`soundmask.lift.voting.vote_instances`
  or from clustering affinity features, SAGA-style): one component per non-zero label.
* :func:`spatial_components` — connected components of candidate centres under a distance threshold (the
  spatial clustering EchoSegnet's refinement applies to the voted Gaussians; also a fallback when no affinity
  features were trained).
* :func:`geometric_components` — connected components off the scene's large planes (no mask at all), and
  :func:`split_by_sound`, which cuts the part the sound masks vote for out of a mostly silent component.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = [
    "PLANE_TOLERANCE",
    "Component",
    "candidate_index",
    "components_from_labels",
    "default_radius",
    "geometric_components",
    "moved_centroids",
    "spatial_components",
    "split_by_sound",
    "structure_planes",
    "with_bodies",
]


@dataclass
class Component:
    """A group of Gaussians: ``id`` (≥ 1), ``index`` (sorted indices into the Gaussians), ``centroid`` (3,) the
    mean of their centres (world metres), ``size`` the number of Gaussians."""

    id: int
    index: np.ndarray
    centroid: np.ndarray
    size: int


def moved_centroids(gaussians: Any, components: Sequence[Component], times: Sequence[float | None]) -> np.ndarray:
    """(V, K, 3): each component's centroid at each of ``times`` — the mean of its Gaussians moved to that time
    by a 4D model (``Gaussians.means_at``); a static model repeats ``Component.centroid``."""
    static = np.array([np.asarray(c.centroid, dtype=np.float64) for c in components]).reshape(len(components), 3)
    if not getattr(gaussians, "dynamic", False) or not components:
        return np.repeat(static[None], len(times), axis=0)
    out = np.empty((len(times), len(components), 3))
    for v, t in enumerate(times):
        m = gaussians.centres_at(t)
        out[v] = [m[c.index].mean(axis=0) for c in components]
    return out


def with_bodies(comps: list[Component], group: np.ndarray, still: np.ndarray, means: np.ndarray,
                min_size: int) -> list[Component]:  # fmt: skip
    """Components found among the Gaussians ``still`` (their indices) mapped back to all Gaussians, plus one
    component per rigid body of ``group`` (N,) (0 = static; :mod:`soundmask.splat.motion`): a body moves as one,
    so it is one object whatever planes or gaps its Gaussians show in its canonical pose."""
    out = [Component(c.id, np.sort(still[c.index]), c.centroid, c.size) for c in comps]
    next_id = max((c.id for c in out), default=0) + 1
    for k in np.unique(group[group > 0]):
        idx = np.flatnonzero(group == k)
        if len(idx) >= min_size:
            out.append(Component(next_id, idx, means[idx].mean(axis=0), len(idx)))
            next_id += 1
    return out


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
    out: list[Component] = []
    for c in order:
        if sizes[c] < min_size:
            break
        sel = idx[lab == c]
        out.append(Component(len(out) + 1, sel, m[sel].mean(axis=0), int(sizes[c])))
    return out


PLANE_TOLERANCE = 0.005  # plane band, × the scene's extent (1.5 % swallowed the low objects standing on the floor)


def structure_planes(
    means: Any,
    *,
    inlier_fraction: float = PLANE_TOLERANCE,
    min_share: float = 0.08,
    max_planes: int = 8,
    trials: int = 300,
    seed: int = 0,
) -> np.ndarray:
    """(N,) bool: the Gaussians on the scene's large planes (floor, walls, ceiling, table tops), found by
    sequential RANSAC: repeatedly the plane through 3 random remaining centres with the most centres within
    ``inlier_fraction`` × the scene's extent (2nd–98th percentile box diagonal) is removed, while it holds at
    least ``min_share`` of all the centres."""
    m = _means(means).astype(np.float64)
    n = len(m)
    on = np.zeros(n, bool)
    if n < 3:
        return on
    rng = np.random.default_rng(seed)
    extent = float(np.linalg.norm(np.percentile(m, 98, axis=0) - np.percentile(m, 2, axis=0))) or 1.0
    tol = inlier_fraction * extent
    for _ in range(max_planes):
        idx = np.flatnonzero(~on)
        if idx.size < 3:
            break
        tri = m[rng.choice(idx, size=(trials, 3))]  # (trials, 3 points, xyz)
        normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        norm = np.linalg.norm(normal, axis=1)
        ok = norm > 1e-12
        if not ok.any():
            break
        normal, tri = normal[ok] / norm[ok, None], tri[ok]
        offset = -(normal * tri[:, 0]).sum(axis=1)
        counts = (np.abs(m[idx] @ normal.T + offset) < tol).sum(axis=0)
        best = int(np.argmax(counts))
        if counts[best] < min_share * n:
            break
        on |= np.abs(m @ normal[best] + offset[best]) < tol
    return on


def geometric_components(
    means: Any,
    opacities: Any | None = None,
    min_size: int = 20,
    min_opacity: float = 0.1,
    *,
    keep: Any | None = None,
    **plane_options: Any,
) -> list[Component]:
    """Objects from geometry alone (no mask of any kind): the centres left after removing the large planes
    (:func:`structure_planes`) and the nearly transparent Gaussians, split into connected components
    (:func:`spatial_components`). ``keep`` (a bool (N,) mask or indices): Gaussians kept although they lie on a
    plane (e.g. a flat object on a table that 2D instance masks mark, :func:`soundmask.lift.splitting.objectness`)."""
    m = _means(means)
    on = structure_planes(m, **plane_options)
    if keep is not None:
        on[candidate_index(keep, len(m))] = False
    keep = ~on
    if opacities is not None:
        keep &= np.asarray(opacities, dtype=np.float64).reshape(-1) > min_opacity
    return spatial_components(m, keep, min_size=min_size)


def split_by_sound(
    components: list[Component], means: Any, sounded: Any, *, max_share: float = 0.8, min_size: int = 20
) -> list[Component]:
    """Cut the sounding part out of each component that is mostly silent — an object joined to the furniture it
    stands on, which geometry alone cannot separate. ``sounded`` (a bool (N,) mask or indices) marks the
    Gaussians the 2D sound masks vote for. In a component of which fewer than ``max_share`` of the Gaussians are
    sounded, those (if at least ``min_size``) become one component and the rest another (if at least
    ``min_size``); other components are kept whole. The sounded part is not split further: the voted centres of
    a small object are too sparse to stay connected at the component's own spacing. Ids are renumbered 1, 2, …
    in the order of the input."""
    m = _means(means)
    snd = np.zeros(len(m), bool)
    snd[candidate_index(sounded, len(m))] = True
    parts: list[np.ndarray] = []
    for comp in components:
        idx = np.asarray(comp.index, dtype=np.int64)
        inside = idx[snd[idx]]
        if inside.size < min_size or inside.size >= max_share * idx.size:
            parts.append(idx)
            continue
        parts.append(inside)
        rest = idx[~snd[idx]]
        if rest.size >= min_size:
            parts.append(rest)
    return [Component(k + 1, np.sort(p), m[p].mean(axis=0), int(p.size)) for k, p in enumerate(parts)]
