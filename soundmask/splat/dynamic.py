"""Initial Gaussians of a scene with moving objects: what moves, as rigid bodies with their tracks.

From posed frames with depth (each frame at its own time), :func:`rigid_init`:

1. **Back-projects** every training view's depth (a pixel grid, ``stride`` apart).
2. **Finds what moved** by free-space violations: a point seen at time i that lies clearly *in front of* the
   surface another view j sees at its pixel (the 5 × 5 minimum of view j's depth, so a static point at a depth
   edge is not flagged) was not there at time j. A point violated in more than ``dynamic_fraction`` of the
   views it projects into is dynamic. Static points are never violated, only occluded (behind view j's surface).
3. **Splits the dynamic points into bodies**: connected components (radius = twice the sampling spacing) of
   the dynamic points of *all* frames — one body's positions over time form one connected tube, disjoint from
   the others'. Components seen in fewer than ``min_views`` of the views, or with fewer points than
   ``min_share`` of the largest, are noise and return to the static set.
4. **Tracks each body** (translation): trimmed ICP between every pair of views up to 3 apart (nearby
   viewpoints see the same side of the body; neighbours are found on position and ``color_weight`` × colour),
   joined into one track by robust least squares (Cauchy IRLS: a bad pair, e.g. a body half out of view, is
   outvoted by the pairs around it), then groupwise ICP against all other views; views that did not see the
   body take the translation interpolated in time.
5. **Fuses** each body's points, aligned into one canonical pose, into its Gaussians (thinned on a voxel grid).

The result is a :class:`~soundmask.splat.gaussians.Gaussians` with ``group`` / ``rigid``
(:mod:`soundmask.splat.motion`), which the photometric fit then refines (poses and Gaussians together).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from soundmask.splat.gaussians import Gaussians, knn_scale
from soundmask.splat.motion import RigidMotion

__all__ = ["DepthPoints", "RigidInitReport", "back_project", "dynamic_mask", "rigid_init", "track_bodies"]


@dataclass
class DepthPoints:
    """Back-projected pixels: ``xyz`` (M, 3) world, ``rgb`` (M, 3) in [0, 1], ``scale`` (M,) half the sampling
    cell's footprint, ``view`` (M,) the list position of the view each came from."""

    xyz: np.ndarray
    rgb: np.ndarray
    scale: np.ndarray
    view: np.ndarray

    def take(self, keep: np.ndarray) -> DepthPoints:
        return DepthPoints(self.xyz[keep], self.rgb[keep], self.scale[keep], self.view[keep])


@dataclass
class RigidInitReport:
    """What :func:`rigid_init` found: the number of points of each kind and each body's track length (m)."""

    points: int
    dynamic: int
    bodies: list[dict]


def back_project(views, stride: int) -> DepthPoints:  # views: soundmask.splat.train.SceneViews
    """The training views' depth maps back-projected on a pixel grid ``stride`` apart (shifted between views)."""
    H, W = views.size
    xyz, rgb, scl, vid = [], [], [], []
    for j, i in enumerate(views.train):
        off = (j * 7) % stride
        vs, us = np.mgrid[off:H:stride, (off * 3) % stride : W : stride]
        z = views.depth[i][vs, us].astype(np.float64)
        ok = np.isfinite(z) & (z > 0)
        k = views.cameras[i].intrinsics
        x = (us[ok] + 0.5 - k.cx) / k.fx * z[ok]
        y = (vs[ok] + 0.5 - k.cy) / k.fy * z[ok]
        c2w = views.cameras[i].camera_to_world
        xyz.append(np.stack([x, y, z[ok]], 1) @ c2w[:3, :3].T + c2w[:3, 3])
        rgb.append(views.images[i].numpy()[vs[ok], us[ok]])
        scl.append(z[ok] * stride / (0.5 * (k.fx + k.fy)) * 0.5)
        vid.append(np.full(int(ok.sum()), i))
    return DepthPoints(np.concatenate(xyz), np.concatenate(rgb).astype(np.float32), np.concatenate(scl),
                       np.concatenate(vid))  # fmt: skip


def violation_fraction(views, pts: DepthPoints, *, rel_margin: float = 0.04, abs_margin: float = 0.03,
                       max_views: int = 32) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Per point (M,): the fraction of the other training views it projects into in which it lies in front of
    the surface that view sees (by more than ``rel_margin`` · depth + ``abs_margin``), and that view count."""
    from scipy.ndimage import minimum_filter

    H, W = views.size
    refs = (
        views.train
        if len(views.train) <= max_views
        else list(np.asarray(views.train)[np.linspace(0, len(views.train) - 1, max_views).round().astype(int)])
    )
    seen = np.zeros(len(pts.xyz), np.int32)
    hits = np.zeros(len(pts.xyz), np.int32)
    for j in refs:
        d = np.where(np.isfinite(views.depth[j]) & (views.depth[j] > 0), views.depth[j], np.inf)
        d = minimum_filter(d, size=5, mode="nearest")
        cam = views.cameras[j]
        w2c = np.asarray(cam.world_to_camera, dtype=np.float64)
        pc = pts.xyz @ w2c[:3, :3].T + w2c[:3, 3]
        z = pc[:, 2]
        k = cam.intrinsics
        zs = np.where(z > 1e-3, z, 1.0)
        u = np.floor(pc[:, 0] / zs * k.fx + k.cx).astype(np.int64)
        v = np.floor(pc[:, 1] / zs * k.fy + k.cy).astype(np.int64)
        ok = (z > 1e-3) & (u >= 0) & (u < W) & (v >= 0) & (v < H) & (pts.view != j)
        viol = z[ok] < d[v[ok], u[ok]] - (rel_margin * z[ok] + abs_margin)
        seen[ok] += 1
        hits[np.flatnonzero(ok)[viol]] += 1
    return np.where(seen > 0, hits / np.maximum(seen, 1), 0.0), seen


def dynamic_mask(
    views, pts: DepthPoints, *, fraction: float = 0.2, grow_fraction: float = 0.03, radius: float | None = None
) -> np.ndarray:
    """(M,) bool: the points that moved — violated (:func:`violation_fraction`) in more than ``fraction`` of the
    views they project into, grown (hysteresis) over the points violated in more than ``grow_fraction`` that
    connect to them within ``radius`` (default: twice the sampling spacing). The growth recovers the parts of
    a large object that overlap its own other positions (rarely violated, never static)."""
    frac, seen = violation_fraction(views, pts)
    ok = seen >= 3
    seed = ok & (frac > fraction)
    cand = np.flatnonzero(ok & (frac > grow_fraction))
    if not seed.any() or len(cand) == 0:
        return seed
    r = radius if radius is not None else 4.0 * float(np.median(pts.scale))
    comp = _components(pts.xyz[cand], r)
    grown = np.isin(comp, np.unique(comp[seed[cand]]))
    out = seed.copy()
    out[cand[grown]] = True
    return out


def _components(xyz: np.ndarray, radius: float) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    pairs = cKDTree(xyz).query_pairs(radius, output_type="ndarray")
    n = len(xyz)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def track_bodies(
    xyz: np.ndarray,
    view: np.ndarray,
    times: dict[int, float],
    iterations: int = 30,
    rgb: np.ndarray | None = None,
    color_weight: float = 0.0,
) -> tuple[np.ndarray, dict[int, float]]:
    """One body's track: per-view translations (V, 3) (views in ``sorted(times)``) such that every view's points
    minus its translation overlap the other views' (mean translation 0) — a robust pose graph of pairwise ICP,
    then groupwise ICP — and, for diagnostics, each observed view's final median nearest-neighbour distance."""
    from scipy.spatial import cKDTree

    order = sorted(times)
    seen = [i for i in order if np.any(view == i)]
    # start: pairwise alignments of views up to `links` apart (near viewpoints see the same parts of the body;
    # view centroids alone are biased by which side is seen), joined by robust least squares (a bad pair — a
    # body half out of view — is outvoted by the pairs around it)
    feats = xyz if rgb is None or color_weight <= 0 else np.concatenate([xyz, color_weight * rgb], axis=1)
    t = dict(zip(seen, _pose_graph(feats, view, seen), strict=True))
    mean = np.mean([t[i] for i in seen], axis=0)
    t = {i: v - mean for i, v in t.items()}
    resid: dict[int, float] = {}
    for _ in range(iterations):
        aligned = xyz - np.stack([t.get(int(i), np.zeros(3)) for i in view])
        tree = cKDTree(aligned)
        kq = min(16, len(aligned))
        for i in seen:
            sel = np.flatnonzero(view == i)
            d, nn = tree.query(aligned[sel], k=kq)
            nn = np.atleast_2d(nn)
            other = view[nn] != i
            first = np.argmax(other, axis=1)
            has = other[np.arange(len(sel)), first]
            if has.sum() < 3:
                continue
            tgt = aligned[nn[np.arange(len(sel)), first]][has]
            off = tgt - aligned[sel][has]
            dist = np.linalg.norm(off, axis=1)
            close = dist <= np.quantile(dist, 0.7)  # trimmed: the nearest 70 %
            t[i] = t[i] - np.median(off[close], axis=0)
            resid[i] = float(np.median(dist))
        mean = np.mean([t[i] for i in seen], axis=0)
        t = {i: v - mean for i, v in t.items()}
    ts = np.array([times[i] for i in seen])
    full = np.stack([[np.interp(times[i], ts, [t[s][c] for s in seen]) for c in range(3)] for i in order])
    for j, i in enumerate(order):
        if i in t:
            full[j] = t[i]
    return full, resid


def _pose_graph(feats: np.ndarray, view: np.ndarray, seen: list[int], links: int = 3, iterations: int = 10,
                scale: float = 0.1) -> np.ndarray:  # fmt: skip
    """Translations (len(seen), 3), mean 0, from ICP between views up to ``links`` apart (IRLS, Cauchy weights
    of scale ``scale`` m; each pair also weighted by the smaller of its two point counts)."""
    V = len(seen)
    if V == 1:
        return np.zeros((1, 3))
    pts = {i: feats[view == i] for i in seen}
    rows, d, w0 = [], [], []
    for a in range(V):
        for b in range(a + 1, min(a + links, V - 1) + 1):
            va, vb = seen[a], seen[b]
            rows.append((a, b))
            d.append(_icp_translation(pts[vb], pts[va]))
            w0.append(min(len(pts[va]), len(pts[vb])))
    D, W0 = np.array(d), np.sqrt(np.array(w0, dtype=np.float64))
    A = np.zeros((len(rows) + 1, V))
    for r, (a, b) in enumerate(rows):
        A[r, a], A[r, b] = -1.0, 1.0
    A[-1] = 1.0  # the mean is 0
    w = np.ones(len(rows))
    t = np.zeros((V, 3))
    for _ in range(iterations):
        sw = np.concatenate([W0 * np.sqrt(w), [W0.max() * 10]])
        rhs = np.concatenate([D, np.zeros((1, 3))])
        t = np.linalg.lstsq(A * sw[:, None], rhs * sw[:, None], rcond=None)[0]
        e = np.linalg.norm(A[:-1] @ t - D, axis=1)
        w = 1.0 / (1.0 + (e / scale) ** 2)
    return t


def _icp_translation(src: np.ndarray, dst: np.ndarray, iterations: int = 20) -> np.ndarray:
    """Translation t such that ``src − t`` lies on ``dst`` (trimmed point-to-point ICP from the centroids).
    Points may carry colour columns after xyz (already scaled to metres): neighbours are found in that space,
    and only xyz moves."""
    from scipy.spatial import cKDTree

    t = np.zeros(src.shape[1])
    t[:3] = np.median(src[:, :3], axis=0) - np.median(dst[:, :3], axis=0)
    tree = cKDTree(dst)
    for _ in range(iterations):
        d, nn = tree.query(src - t)
        close = d <= np.quantile(d, 0.7)
        step = np.zeros_like(t)
        step[:3] = np.median((src - t)[close, :3] - dst[nn[close], :3], axis=0)
        t = t + step
        if np.linalg.norm(step) < 1e-4:
            break
    return t[:3]


def _voxel_thin(xyz: np.ndarray, voxel: float, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of one point per ``voxel``-sized cell (a random one), at most ``cap`` of them."""
    cells = np.floor(xyz / voxel).astype(np.int64)
    perm = rng.permutation(len(xyz))
    _, first = np.unique(cells[perm], axis=0, return_index=True)
    keep = perm[first]
    return rng.choice(keep, cap, replace=False) if len(keep) > cap else keep


def rigid_init(
    views,
    num_points: int,
    *,
    sh_degree: int = 0,
    stride: int | None = None,
    dynamic_fraction: float = 0.2,
    min_views: float = 0.25,
    min_share: float = 0.05,
    color_weight: float = 0.3,
    rng: np.random.Generator | None = None,
) -> tuple[Gaussians, RigidInitReport]:
    """Gaussians of ``views`` (a :class:`~soundmask.splat.train.SceneViews` with depth) whose moving parts are
    rigid bodies with tracks (see the module docstring); about ``num_points`` of them."""
    rng = rng or np.random.default_rng(0)
    H, W = views.size
    stride = stride or max(1, int(round(max(H, W) / 64)))
    pts = back_project(views, stride)
    dyn = dynamic_mask(views, pts, fraction=dynamic_fraction)
    spacing = float(np.median(pts.scale)) * 2.0
    labels = np.full(len(pts.xyz), -1)
    bodies: list[np.ndarray] = []
    if dyn.sum() >= 10:
        di = np.flatnonzero(dyn)
        comp = _components(pts.xyz[di], 2.0 * spacing)
        need = max(3, int(math.ceil(min_views * len(views.train))))
        ids, sizes = np.unique(comp, return_counts=True)
        for c in ids[np.argsort(-sizes, kind="stable")]:
            members = di[comp == c]
            # a body is seen in enough views, and is not a sliver next to the largest (depth-edge noise)
            if len(np.unique(pts.view[members])) >= need and len(members) >= max(20, min_share * sizes.max()):
                labels[members] = len(bodies)
                bodies.append(members)
    times = {i: float(views.times[i]) for i in views.train}
    knots = sorted(times)

    body_xyz, body_rgb, tracks, info = [], [], [], []
    for b, members in enumerate(bodies):
        p = pts.take(members)
        tr, resid = track_bodies(p.xyz, p.view, times, rgb=p.rgb, color_weight=color_weight)
        shift = tr[np.searchsorted(knots, p.view)]
        canon = p.xyz - shift
        budget = max(200, num_points // 4)
        keep = _voxel_thin(canon, spacing, budget, rng)
        body_xyz.append(canon[keep])
        body_rgb.append(p.rgb[keep])
        tracks.append(tr)
        residual = float(np.median(list(resid.values()))) if resid else float("nan")
        info.append({"body": b + 1, "points": int(len(members)), "views": int(len(np.unique(p.view))),
                     "track_m": float(np.linalg.norm(np.diff(tr, axis=0), axis=1).sum()),
                     "icp_residual_m": residual})  # fmt: skip
    static = pts.take(labels < 0)
    n_body = sum(len(x) for x in body_xyz)
    n_static = max(num_points - n_body, 1)
    pick = rng.choice(len(static.xyz), min(n_static, len(static.xyz)), replace=False)
    xyz = np.concatenate([static.xyz[pick], *body_xyz]) if body_xyz else static.xyz[pick]
    rgb = np.concatenate([static.rgb[pick], *body_rgb]) if body_rgb else static.rgb[pick]
    group = np.concatenate([np.zeros(len(pick), np.int64)] + [np.full(len(x), b + 1) for b, x in enumerate(body_xyz)])
    # the 3DGS scale (mean distance to the 3 nearest), per set: the seeds tile the surfaces they were drawn from
    scl = np.concatenate([knn_scale(static.xyz[pick]), *(knn_scale(x) for x in body_xyz)])
    t0, t1 = min(views.times), max(views.times)
    g = Gaussians.from_points(xyz, rgb, sh_degree=sh_degree, opacity=0.5, scale=scl, time_range=(t0, t1))
    K = len(bodies)
    if K:
        g.group = torch.as_tensor(group)
        g.rigid = RigidMotion(
            times=torch.as_tensor(np.array([times[i] for i in knots]), dtype=torch.float32),
            translations=torch.as_tensor(np.stack(tracks), dtype=torch.float32),
            rotations=torch.zeros(K, len(knots), 3),
            pivots=torch.as_tensor(np.stack([x.mean(0) for x in body_xyz]), dtype=torch.float32),
        )
        g.__post_init__()
    return g, RigidInitReport(len(pts.xyz), int(dyn.sum()), info)
