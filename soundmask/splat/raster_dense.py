"""The slow, obviously-correct reference rasterizer (tests only).

Front-to-back alpha compositing exactly as 3DGS defines it, one Gaussian at a time over every pixel:
``αᵢ(x) = min(0.99, oᵢ · exp(−½ dᵀ Σ'ᵢ⁻¹ d))`` with d = x − μ'ᵢ (skipped when below 1/255),
``C(x) = Σᵢ cᵢ αᵢ Tᵢ + T_N · background``, ``Tᵢ = Πⱼ<ᵢ (1 − αⱼ)``, Gaussians sorted by camera depth.
No tiles, no binning, no early termination: a loop that anyone can check against the paper. The tile renderer
(:mod:`soundmask.splat.raster_tile`) is tested against it, image and gradients.
"""

from __future__ import annotations

import torch

from soundmask.splat.project import ALPHA_MAX, ALPHA_MIN, Projected

__all__ = ["rasterize_dense"]


def rasterize_dense(
    proj: Projected,
    values: torch.Tensor,
    width: int,
    height: int,
    background: torch.Tensor | None = None,
    **_: object,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Composite ``values`` (N, C) of the projected Gaussians; returns image (H, W, C) and alpha (H, W)."""
    C = values.shape[1]
    v, u = torch.meshgrid(
        torch.arange(height, dtype=values.dtype), torch.arange(width, dtype=values.dtype), indexing="ij"
    )
    px, py = u + 0.5, v + 0.5
    image = torch.zeros(height, width, C, dtype=values.dtype)
    T = torch.ones(height, width, dtype=values.dtype)
    order = torch.argsort(proj.depths.detach(), stable=True)
    for i in order.tolist():
        if not bool(proj.visible[i]):
            continue
        dx, dy = px - proj.means2d[i, 0], py - proj.means2d[i, 1]
        a, b, c = proj.conics[i]
        power = -0.5 * (a * dx * dx + c * dy * dy) - b * dx * dy
        alpha = torch.clamp(proj.opacities[i] * torch.exp(power), max=ALPHA_MAX)
        alpha = torch.where((power <= 0) & (alpha >= ALPHA_MIN), alpha, torch.zeros_like(alpha))
        image = image + (alpha * T)[..., None] * values[i]
        T = T * (1 - alpha)
    if background is not None:
        image = image + T[..., None] * background.to(values)
    return image, 1 - T
