"""Lifting per-view 2D masks onto Gaussians by multi-view voting (DESIGN.md stage 6).

The rule is EchoSegnet's (3D Audio-Visual Segmentation, Sec. "Gaussian segmentation"): project every Gaussian
centre into every training view; a view in which the centre is visible votes 1 when the centre's pixel is in
that view's 2D mask and 0 otherwise; a Gaussian is kept when ``votes₁ / (votes₀ + votes₁) > τ``.

* :func:`centre_visibility` — which views see which centres (inside the image, in front of the camera and,
  with rendered depth maps, not hidden behind other Gaussians).
* :func:`vote_masks` — the binary vote above, as :class:`Votes` (``ratio()``, ``select(τ)``).
* :func:`vote_instances` — the same with instance-id maps: the majority id per Gaussian.

Everything is vectorised over Gaussians (one numpy pass per view, no per-Gaussian loop). For a 4D model the
centres of view ``v`` are ``gaussians.means_at(times[v])``. Masks may have another resolution than the camera
(e.g. 224² AVS masks of 256² frames): pixel coordinates are rescaled to the mask's size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from soundmask.constants import VOTE_THRESHOLD
from soundmask.data.types import Camera
from soundmask.errors import DataError
from soundmask.splat.gaussians import Gaussians

if TYPE_CHECKING:
    from soundmask.lift.grouping import Component
    from soundmask.lift.views import LiftViews

__all__ = ["Votes", "centre_visibility", "sounded_gaussians", "vote_instances", "vote_masks", "vote_members"]


def _np(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _times(times: Sequence[float | None] | None, num_views: int) -> list[float | None]:
    if times is None:
        return [None] * num_views
    out = list(times)
    if len(out) != num_views:
        raise DataError(f"{len(out)} times given for {num_views} cameras", fix="pass one time per camera")
    return out


def _pixels(camera: Camera, means: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(column, row) integer pixel of each centre, its camera depth, and whether it is in the image and in front."""
    uv, z = camera.project(means)
    k = camera.intrinsics
    finite = np.isfinite(uv).all(axis=1) & np.isfinite(z)
    u = np.where(finite, uv[:, 0], -1.0)
    v = np.where(finite, uv[:, 1], -1.0)
    inside = finite & (z > 0) & (u >= 0) & (u < k.width) & (v >= 0) & (v < k.height)
    col = np.clip(np.floor(u), 0, k.width - 1).astype(np.int64)
    row = np.clip(np.floor(v), 0, k.height - 1).astype(np.int64)
    return col, row, z, inside


def _lookup(image: np.ndarray, camera: Camera, col: np.ndarray, row: np.ndarray, what: str) -> np.ndarray:
    """``image`` values at camera pixels (col, row), rescaled when ``image`` has another size than the camera."""
    if image.ndim != 2:
        raise DataError(f"{what} must be (H, W), got shape {image.shape}")
    k = camera.intrinsics
    h, w = image.shape
    if (h, w) != (k.height, k.width):
        col = np.clip(((col + 0.5) * (w / k.width)).astype(np.int64), 0, w - 1)
        row = np.clip(((row + 0.5) * (h / k.height)).astype(np.int64), 0, h - 1)
    return image[row, col]


def centre_visibility(
    gaussians: Gaussians,
    cameras: Sequence[Camera],
    times: Sequence[float | None] | None = None,
    depth_maps: Sequence[Any] | None = None,
    rel_tol: float = 0.05,
    abs_tol: float = 0.05,
) -> np.ndarray:
    """(V, N) bool: whether view ``v`` sees the centre of Gaussian ``n``.

    A centre is visible when it projects inside the image and in front of the camera (z > 0). With
    ``depth_maps`` (one rendered (H, W) depth per view, e.g. ``render(...).depth``) it must also not be
    occluded: ``z ≤ depth · (1 + rel_tol) + abs_tol`` at its pixel, a depth of 0 (nothing rendered) counting as
    visible. This is the visibility test that EchoSegnet's voting needs so that hidden Gaussians are not voted
    into the mask of the object in front of them."""
    cams = list(cameras)
    ts = _times(times, len(cams))
    if depth_maps is not None and len(depth_maps) != len(cams):
        raise DataError(f"{len(depth_maps)} depth maps given for {len(cams)} cameras", fix="pass one per camera")
    out = np.zeros((len(cams), len(gaussians)), dtype=bool)
    for v, (cam, t) in enumerate(zip(cams, ts, strict=True)):
        col, row, z, inside = _pixels(cam, gaussians.centres_at(t))
        if depth_maps is not None and depth_maps[v] is not None:
            d = _lookup(_np(depth_maps[v]).astype(np.float64), cam, col, row, "depth map")
            inside &= (d <= 0) | ~np.isfinite(d) | (z <= d * (1.0 + rel_tol) + abs_tol)
        out[v] = inside
    return out


@dataclass
class Votes:
    """EchoSegnet mask votes per Gaussian: ``pos`` (N,) views that see it inside the mask, ``neg`` (N,) views
    that see it outside."""

    pos: np.ndarray
    neg: np.ndarray

    @property
    def total(self) -> np.ndarray:
        return self.pos + self.neg

    def ratio(self) -> np.ndarray:
        """votes₁ / (votes₀ + votes₁) per Gaussian (0 where no view voted)."""
        tot = self.total
        return np.divide(self.pos, tot, out=np.zeros(tot.shape, dtype=np.float64), where=tot > 0)

    def select(self, threshold: float = VOTE_THRESHOLD, min_votes: int = 1) -> np.ndarray:
        """(N,) bool: the EchoSegnet rule ``votes₁ / (votes₀ + votes₁) > threshold``, among Gaussians seen by at
        least ``min_votes`` views."""
        return (self.ratio() > threshold) & (self.total >= min_votes)


def _visibility(gaussians: Gaussians, cameras: list[Camera], times: list[float | None], visible: Any) -> np.ndarray:
    if visible is None:
        return centre_visibility(gaussians, cameras, times)
    vis = _np(visible).astype(bool)
    if vis.shape != (len(cameras), len(gaussians)):
        raise DataError(f"visibility must be (views, gaussians) = {(len(cameras), len(gaussians))}, got {vis.shape}")
    return vis


def vote_masks(
    gaussians: Gaussians,
    cameras: Sequence[Camera],
    masks: Sequence[Any],
    times: Sequence[float | None] | None = None,
    visible: Any = None,
) -> Votes:
    """Multi-view binary votes (EchoSegnet): each view that sees a centre (``visible`` (V, N), default
    :func:`centre_visibility` without occlusion) votes 1 if the centre's pixel is in its mask, 0 otherwise.

    ``masks``: one (H, W) bool/0-1 mask per camera, or None for a view without a mask (it does not vote).
    Use ``Votes.select(τ)`` for the kept Gaussians."""
    cams = list(cameras)
    ts = _times(times, len(cams))
    if len(masks) != len(cams):
        raise DataError(f"{len(masks)} masks given for {len(cams)} cameras", fix="pass one mask (or None) per camera")
    vis = _visibility(gaussians, cams, ts, visible)
    n = len(gaussians)
    pos, neg = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    for v, (cam, t, mask) in enumerate(zip(cams, ts, masks, strict=True)):
        if mask is None:
            continue
        col, row, _, _ = _pixels(cam, gaussians.centres_at(t))
        hit = _lookup(_np(mask) > 0, cam, col, row, "mask")
        pos += vis[v] & hit
        neg += vis[v] & ~hit
    return Votes(pos, neg)


def vote_instances(
    gaussians: Gaussians,
    cameras: Sequence[Camera],
    instance_masks: Sequence[Any],
    times: Sequence[float | None] | None = None,
    visible: Any = None,
    min_votes: int = 2,
    min_agreement: float = 0.5,
) -> np.ndarray:
    """(N,) int: the majority instance id of each Gaussian over the views that see it (EchoSegnet's vote with
    instance-id maps instead of a binary mask; id 0 = background).

    Every view that sees a centre votes for the id at its pixel (0 included). The result is 0 (background /
    undecided) when fewer than ``min_votes`` views voted, when the top id has less than ``min_agreement`` of the
    votes, or when two ids tie for the top. ``instance_masks``: one (H, W) integer map per camera or None."""
    cams = list(cameras)
    ts = _times(times, len(cams))
    if len(instance_masks) != len(cams):
        raise DataError(
            f"{len(instance_masks)} instance maps given for {len(cams)} cameras",
            fix="pass one instance map (or None) per camera",
        )
    vis = _visibility(gaussians, cams, ts, visible)
    n = len(gaussians)
    gs, ids = [], []
    for v, (cam, t, inst) in enumerate(zip(cams, ts, instance_masks, strict=True)):
        if inst is None:
            continue
        col, row, _, _ = _pixels(cam, gaussians.centres_at(t))
        lab = _lookup(_np(inst).astype(np.int64), cam, col, row, "instance map")
        g = np.flatnonzero(vis[v])
        gs.append(g)
        ids.append(lab[g])
    out = np.zeros(n, dtype=np.int64)
    if not gs or not sum(len(g) for g in gs):
        return out
    g, lab = np.concatenate(gs), np.concatenate(ids)
    uniq_ids, code = np.unique(lab, return_inverse=True)
    U = len(uniq_ids)
    keys, counts = np.unique(g * U + code, return_counts=True)  # (gaussian, id) pairs and their vote counts
    kg, kid = keys // U, keys % U
    total = np.bincount(g, minlength=n)
    order = np.lexsort((kid, -counts, kg))  # per gaussian: most votes first
    kg, kid, counts = kg[order], kid[order], counts[order]
    first = np.ones(len(kg), dtype=bool)
    first[1:] = kg[1:] != kg[:-1]
    second = np.zeros(len(kg), dtype=bool)  # the runner-up pair of each gaussian
    second[1:] = first[:-1] & ~first[1:]
    runner = np.zeros(n, dtype=np.int64)
    runner[kg[second]] = counts[second]
    top_g, top_id, top_n = kg[first], kid[first], counts[first]
    ok = (total[top_g] >= min_votes) & (top_n >= min_agreement * total[top_g]) & (top_n > runner[top_g])
    out[top_g[ok]] = uniq_ids[top_id[ok]]
    return out


def sounded_gaussians(
    gaussians: Gaussians,
    cameras: Sequence[Camera],
    masks: Sequence[np.ndarray],
    *,
    times: Sequence[float | None] | None = None,
    visible: Any = None,
    any_threshold: float = 0.15,
) -> np.ndarray:
    """(N,) bool: the Gaussians inside the sound ``masks`` (one per view, empty = no sound there) in ≥ 2 views and
    in more than ``any_threshold`` of the views with a sound that see them (``visible`` (V, N) as in
    :func:`vote_masks`)."""
    sel = [j for j, m in enumerate(masks) if np.asarray(m).any()]
    if not sel:
        return np.zeros(len(gaussians), bool)
    tl = _times(times, len(masks))
    vis = None if visible is None else _np(visible)[sel]
    votes = vote_masks(
        gaussians, [cameras[j] for j in sel], [masks[j] for j in sel], times=[tl[j] for j in sel], visible=vis
    )
    return (votes.pos >= 2) & (votes.ratio() > any_threshold)


def _near(means: np.ndarray, idx: np.ndarray, margin: float) -> np.ndarray:
    """Indices of the Gaussians inside the bounding box of ``idx`` grown by ``margin`` × its size on each side."""
    if idx.size == 0:
        return idx
    lo, hi = means[idx].min(axis=0), means[idx].max(axis=0)
    pad = margin * (hi - lo) + 1e-6
    inside = ((means >= lo - pad) & (means <= hi + pad)).all(axis=1)
    return np.flatnonzero(inside)


def vote_members(
    gaussians: Gaussians,
    components: Sequence[Component],
    active: Any,
    views: LiftViews,
    *,
    threshold: float = 0.5,
    grow_margin: float = 0.1,
    only_voted: bool = False,
) -> dict[int, np.ndarray]:
    """The Gaussians of each sounding component: component id → sorted indices (components that never sound, or
    keep nothing, are left out).

    ``active`` (V, K) says in which of the ``views`` component k sounds. EchoSegnet's vote (:func:`vote_masks`,
    ``> threshold``) over those views is taken for the Gaussians in and around the component (its bounding box
    grown by ``grow_margin`` × its size). ``only_voted`` (spatial components) keeps the component's voted Gaussians;
    otherwise (instance, affinity, geometric objects) the component takes in the voted neighbours the grouping left
    out, so the rendered mask is solid."""
    act_all = np.asarray(active, dtype=bool)
    means = _np(gaussians.means)
    members: dict[int, np.ndarray] = {}
    for k, comp in enumerate(components):
        act = np.flatnonzero(act_all[:, k])
        if act.size == 0:
            continue
        idx = np.asarray(comp.index)
        near = _near(means, idx, grow_margin)
        v = views.subset(act)
        vis = None if v.visible is None else v.visible[:, near]
        votes = vote_masks(gaussians.subset(torch.as_tensor(near)), v.cameras, v.masks, times=v.times, visible=vis)
        voted = near[votes.select(threshold)]
        keep = np.intersect1d(voted, idx) if only_voted else np.union1d(idx, voted)
        if keep.size:
            members[comp.id] = keep
    return members
