"""Dense depth from posed frames by plane-sweep stereo (CPU, PyTorch), to seed a Gaussian reconstruction.

COLMAP's dense stereo (PatchMatch) needs CUDA, and the sparse points of a low-resolution video leave small
objects with a handful of seeds, which a short CPU optimisation turns into large translucent blobs. This
module computes a depth map for each reference view the classical way (Collins 1996; Gallup et al. 2007):

1. **Hypotheses**: ``num_depths`` fronto-parallel planes, uniform in inverse depth between ``near`` and ``far``
   (from the sparse points seen by the view, widened by 20 %).
2. **Cost volume**: for each plane, every neighbour view is warped onto the reference through the plane
   (back-project the reference pixel at that depth, project into the neighbour, bilinear sampling); the cost
   is the absolute colour difference averaged over a ``window`` × ``window`` box. Neighbour costs are
   combined by the mean of the best half (so a neighbour in which the pixel is occluded does not vote).
3. **Winner-takes-all** depth, kept only where it is reliable: the reference is textured (grey-level standard
   deviation over the window ≥ ``min_texture``: a blank wall matches at every depth), the best cost is below
   ``max_cost`` and clearly lower than the mean cost over the planes (``min_contrast``), and
   the depth agrees within ``consistency`` (relative) with the depth maps of at least ``min_agree`` neighbours
   at the reprojected pixels (geometric consistency). Other pixels are NaN (no seed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from soundmask.data.types import Camera

__all__ = ["SweepConfig", "depth_range", "plane_sweep_depth"]


@dataclass
class SweepConfig:
    """Plane-sweep settings (see the module docstring)."""

    num_depths: int = 64
    neighbours: int = 4
    window: int = 5
    max_cost: float = 0.08
    min_contrast: float = 0.6
    min_texture: float = 0.01
    consistency: float = 0.03
    min_agree: int = 2


def depth_range(camera: Camera, points: np.ndarray, margin: float = 0.2) -> tuple[float, float] | None:
    """(near, far) of the sparse ``points`` in front of ``camera`` and inside its image (1st–99th percentile,
    widened by ``margin``), or None when fewer than 10 are seen."""
    if len(points) == 0:
        return None
    uv, z = camera.project(np.asarray(points, np.float64))
    k = camera.intrinsics
    ok = (z > 1e-6) & (uv[:, 0] >= 0) & (uv[:, 0] < k.width) & (uv[:, 1] >= 0) & (uv[:, 1] < k.height)
    if ok.sum() < 10:
        return None
    lo, hi = np.percentile(z[ok], [1, 99])
    return float(lo * (1 - margin)), float(hi * (1 + margin))


def _rays(camera: Camera, H: int, W: int) -> torch.Tensor:
    """(3, H·W) camera-frame directions with z = 1 through the pixel centres."""
    k = camera.intrinsics
    v, u = torch.meshgrid(
        torch.arange(H, dtype=torch.float64) + 0.5, torch.arange(W, dtype=torch.float64) + 0.5, indexing="ij"
    )
    return torch.stack(
        [(u.reshape(-1) - k.cx) / k.fx, (v.reshape(-1) - k.cy) / k.fy, torch.ones(H * W, dtype=torch.float64)]
    )


def _project(cam: Camera, X: torch.Tensor, H: int, W: int) -> tuple[torch.Tensor, torch.Tensor]:
    """World points (3, N) → (grid (N, 2) in [-1, 1] for grid_sample, depth (N,)) in ``cam``."""
    w2c = torch.as_tensor(cam.world_to_camera, dtype=torch.float64)
    pc = w2c[:3, :3] @ X + w2c[:3, 3:4]
    z = pc[2]
    k = cam.intrinsics
    zs = z.clamp_min(1e-9)
    u = pc[0] / zs * k.fx + k.cx
    v = pc[1] / zs * k.fy + k.cy
    grid = torch.stack([u / W * 2 - 1, v / H * 2 - 1], dim=-1)
    grid = torch.where((z > 1e-9)[:, None], grid, torch.full_like(grid, -2.0))  # behind: outside the image
    return grid, z


def _world(cam: Camera, rays: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
    c2w = torch.as_tensor(cam.camera_to_world, dtype=torch.float64)
    return c2w[:3, :3] @ (rays * depth) + c2w[:3, 3:4]


def _sweep(
    ref: int, images: torch.Tensor, cams: Sequence[Camera], nbrs: list[int], near: float, far: float, cfg: SweepConfig
) -> np.ndarray:
    """Winner-takes-all depth (H, W) of view ``ref`` with reliability filtering (NaN: unreliable)."""
    _, H, W, _ = images.shape
    rays = _rays(cams[ref], H, W)
    inv = torch.linspace(1.0 / near, 1.0 / far, cfg.num_depths, dtype=torch.float64)
    ref_img = images[ref].permute(2, 0, 1)[None]  # (1, 3, H, W)
    costs = torch.empty(cfg.num_depths, len(nbrs), H, W)
    pad = cfg.window // 2
    for d, iv in enumerate(inv):
        X = _world(cams[ref], rays, 1.0 / iv)
        for j, n in enumerate(nbrs):
            grid, _ = _project(cams[n], X, H, W)
            warped = F.grid_sample(
                images[n].permute(2, 0, 1)[None],
                grid.float().reshape(1, H, W, 2),
                mode="bilinear",
                padding_mode="zeros",
                align_corners=False,
            )
            valid = ((grid.abs() <= 1).all(dim=-1)).reshape(1, 1, H, W).float()
            diff = (warped - ref_img).abs().mean(dim=1, keepdim=True)
            diff = diff * valid + (1 - valid) * 1.0  # outside the neighbour: maximal cost
            costs[d, j] = F.avg_pool2d(diff, cfg.window, stride=1, padding=pad, count_include_pad=False)[0, 0]
    k = max(1, len(nbrs) // 2)
    best_half = costs.sort(dim=1).values[:, :k].mean(dim=1)  # (D, H, W)
    cmin, arg = best_half.min(dim=0)
    contrast = cmin / best_half.mean(dim=0).clamp_min(1e-6)
    depth = (1.0 / inv[arg]).float()
    grey = ref_img.mean(dim=1, keepdim=True)
    mean = F.avg_pool2d(grey, cfg.window, stride=1, padding=pad, count_include_pad=False)
    var = F.avg_pool2d(grey**2, cfg.window, stride=1, padding=pad, count_include_pad=False) - mean**2
    texture = var.clamp_min(0).sqrt()[0, 0]
    ok = (cmin < cfg.max_cost) & (contrast < cfg.min_contrast) & (texture >= cfg.min_texture)
    return torch.where(ok, depth, torch.full_like(depth, float("nan"))).numpy()


def _consistent(
    ref: int, depths: dict[int, np.ndarray], cams: Sequence[Camera], nbrs: list[int], tol: float, min_agree: int
) -> np.ndarray:
    """(H, W) bool: the reference depth lands within ``tol`` (relative) of the depth maps of at least
    ``min_agree`` neighbours (of those that have one) at the reprojected pixels."""
    d = torch.as_tensor(depths[ref], dtype=torch.float64)
    H, W = d.shape
    X = _world(cams[ref], _rays(cams[ref], H, W), torch.nan_to_num(d.reshape(1, -1), nan=1.0))
    agree = torch.zeros(H * W, dtype=torch.int64)
    have = 0
    for n in nbrs:
        if n not in depths:
            continue
        grid, z = _project(cams[n], X, H, W)
        dn = torch.as_tensor(depths[n], dtype=torch.float32)[None, None]
        got = (
            F.grid_sample(
                dn, grid.float().reshape(1, H, W, 2), mode="nearest", padding_mode="zeros", align_corners=False
            )
            .reshape(-1)
            .double()
        )
        agree += (torch.isfinite(got) & (got > 0) & ((got - z).abs() <= tol * z)).long()
        have += 1
    ok = agree >= max(1, min(min_agree, have))
    return (ok.reshape(H, W) & torch.isfinite(d)).numpy()


def plane_sweep_depth(
    images: np.ndarray | torch.Tensor,
    cameras: Sequence[Camera],
    views: Sequence[int],
    points: np.ndarray,
    cfg: SweepConfig | None = None,
    progress: Callable[[float], None] | None = None,
) -> dict[int, np.ndarray]:
    """Depth maps (H, W) float32, NaN where unreliable, for ``views`` (indices into ``images`` (V, H, W, 3) in
    [0, 1] and ``cameras``), each matched against its ``cfg.neighbours`` nearest views in list order among
    ``views`` (only these views are read: pass the training views so that held-out views never inform the
    model). ``points`` (N, 3) are the sparse SfM points that bound the depth range."""
    cfg = cfg or SweepConfig()
    imgs = torch.as_tensor(np.asarray(images), dtype=torch.float32)
    if imgs.ndim != 4 or imgs.shape[-1] != 3:
        raise ValueError(f"images must be (V, H, W, 3), got {tuple(imgs.shape)}")
    order = list(views)
    raw: dict[int, np.ndarray] = {}
    nbr_of: dict[int, list[int]] = {}
    for a, r in enumerate(order):
        by_gap = sorted((o for o in order if o != r), key=lambda o: (abs(order.index(o) - a), o))
        nbr_of[r] = by_gap[: cfg.neighbours]
        rng = depth_range(cameras[r], points)
        if rng is None or not nbr_of[r]:
            continue
        raw[r] = _sweep(r, imgs, cameras, nbr_of[r], rng[0], rng[1], cfg)
        if progress is not None:
            progress(0.9 * (a + 1) / len(order))
    out = {}
    for r, d in raw.items():
        keep = _consistent(r, raw, cameras, nbr_of[r], cfg.consistency, cfg.min_agree)
        out[r] = np.where(keep, d, np.nan).astype(np.float32)
    if progress is not None:
        progress(1.0)
    return out
