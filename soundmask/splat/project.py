"""EWA projection of 3D Gaussians into a pinhole camera (Zwicker et al. 2002, as used by 3DGS, Kerbl et al. 2023).

For a Gaussian with world centre μ and covariance Σ seen by a camera with world→camera rotation W and
translation t: the camera-frame centre is ``p = W μ + t``; the screen covariance is the local affine
approximation ``Σ' = J W Σ Wᵀ Jᵀ + 0.3 I`` with the projection Jacobian
``J = [[fx/z, 0, −fx·x/z²], [0, fy/z, −fy·y/z²]]`` (x/z and y/z clamped to 1.3× the field of view, as in
3DGS, so Gaussians far outside the image don't blow up), plus the 0.3 px² low-pass dilation.

Pixel (u, v) has its centre at (u + 0.5, v + 0.5) in the OpenCV continuous image coordinates that
``fx, fy, cx, cy`` refer to (the convention of :class:`soundmask.data.types.Intrinsics`).

Each Gaussian's footprint ends where its alpha drops below 1/255 (the rasterizers' skip rule): inside
``dᵀ Σ'⁻¹ d ≤ 2 ln(255 · opacity)``. :attr:`Projected.extent` is the half-size of that ellipse's bounding box,
so a tile renderer that bins by it sees every pixel a dense renderer would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["ALPHA_MAX", "ALPHA_MIN", "DILATION", "Projected", "project"]

ALPHA_MIN = 1.0 / 255.0
"""Contributions with alpha below this are skipped (3DGS)."""
ALPHA_MAX = 0.99
"""Alpha is clamped to this (3DGS), so transmittance never reaches 0 and gradients stay finite."""
DILATION = 0.3
"""Screen-space low-pass filter added to every 2D covariance (px²)."""


@dataclass
class Projected:
    """Screen-space Gaussians: ``means2d`` (N, 2) px, ``conics`` (N, 3) = (a, b, c) of Σ'⁻¹ = [[a, b], [b, c]],
    ``depths`` (N,) camera z, ``extent`` (N, 2) half-size in px of the alpha ≥ 1/255 footprint,
    ``visible`` (N,) bool (in front of the near plane, non-degenerate, footprint overlapping the image),
    ``cov2d`` (N, 2, 2)."""

    means2d: torch.Tensor
    conics: torch.Tensor
    depths: torch.Tensor
    extent: torch.Tensor
    visible: torch.Tensor
    cov2d: torch.Tensor
    opacities: torch.Tensor


def project(
    means: torch.Tensor,
    covs: torch.Tensor,
    opacities: torch.Tensor,
    world_to_camera: torch.Tensor,
    fx: float,
    fy: float,
    cx: float,
    cy: float,
    width: int,
    height: int,
    near: float = 0.01,
) -> Projected:
    """Project Gaussians (world ``means`` (N, 3), ``covs`` (N, 3, 3)) through a pinhole camera (see module doc)."""
    Rw = world_to_camera[:3, :3].to(means)
    tw = world_to_camera[:3, 3].to(means)
    p = means @ Rw.T + tw
    x, y, z = p.unbind(-1)
    in_front = z > near
    zs = torch.where(in_front, z, torch.ones_like(z))
    lo_x, hi_x = (-0.15 * width - cx) / fx, (1.15 * width - cx) / fx
    lo_y, hi_y = (-0.15 * height - cy) / fy, (1.15 * height - cy) / fy
    txz = (x / zs).clamp(lo_x, hi_x)
    tyz = (y / zs).clamp(lo_y, hi_y)
    zero = torch.zeros_like(zs)
    J = torch.stack(
        [torch.stack([fx / zs, zero, -fx * txz / zs], -1), torch.stack([zero, fy / zs, -fy * tyz / zs], -1)], dim=-2
    )  # (N, 2, 3)
    T = J @ Rw  # (N, 2, 3)
    cov2d = T @ covs @ T.transpose(1, 2)
    cov2d = cov2d + DILATION * torch.eye(2, dtype=means.dtype, device=means.device)
    a, b, c = cov2d[:, 0, 0], cov2d[:, 0, 1], cov2d[:, 1, 1]
    det = a * c - b * b
    ok = in_front & (det > 0)
    det_s = torch.where(ok, det, torch.ones_like(det))
    conics = torch.stack([c / det_s, -b / det_s, a / det_s], dim=-1)
    means2d = torch.stack([fx * x / zs + cx, fy * y / zs + cy], dim=-1)
    with torch.no_grad():
        pmax = 2.0 * torch.log((255.0 * opacities.detach()).clamp_min(1e-12))
        ok = ok & (pmax > 0)
        ext = torch.sqrt(pmax.clamp_min(0)[:, None] * torch.stack([a, c], -1).detach().clamp_min(0)) * 1.0001 + 1e-3
        m = means2d.detach()
        overlap = (
            (m[:, 0] + ext[:, 0] > 0)
            & (m[:, 0] - ext[:, 0] < width)
            & (m[:, 1] + ext[:, 1] > 0)
            & (m[:, 1] - ext[:, 1] < height)
        )
        visible = ok & overlap & torch.isfinite(m).all(-1)
    return Projected(
        means2d, conics, torch.where(in_front, z, torch.full_like(z, math.inf)), ext, visible, cov2d, opacities
    )
