"""The gsplat CUDA rasterizer behind our :class:`~soundmask.splat.project.Projected` interface.

Only the compositing runs in gsplat (``isect_tiles`` → ``isect_offset_encode`` → ``rasterize_to_pixels``, the
public gsplat ≥ 1.0 API); projection stays ours, so every backend sees identical screen-space Gaussians.
gsplat uses the same rules (pixel centres at +0.5, alpha clamped to 0.99, skipped below 1/255) and adds
early termination once transmittance falls below 1e-4, which changes results only below that level.

Not exercised by the CPU test suite (no CUDA here): ``pytest -m gpu`` runs the tile-vs-gsplat check on a
machine with a GPU and ``pip install gsplat``.
"""

from __future__ import annotations

import torch

from soundmask.errors import ConfigError
from soundmask.splat.project import Projected

__all__ = ["rasterize_gsplat"]


def rasterize_gsplat(
    proj: Projected,
    values: torch.Tensor,
    width: int,
    height: int,
    background: torch.Tensor | None = None,
    tile_size: int = 16,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Composite ``values`` (N, C) with gsplat on the GPU; returns image (H, W, C) and alpha (H, W)."""
    try:
        import gsplat
    except ImportError as e:  # pragma: no cover - depends on the machine
        raise ConfigError(
            "the gsplat backend needs the gsplat package", fix="pip install gsplat, or use --backend tile"
        ) from e
    if not values.is_cuda:
        raise ConfigError("the gsplat backend needs the model on a CUDA device", fix="use --device cuda")
    ts = 16
    tw, th = (width + ts - 1) // ts, (height + ts - 1) // ts
    vis = proj.visible
    depths = torch.where(vis, proj.depths, torch.zeros_like(proj.depths))
    ext = torch.where(vis[:, None], torch.ceil(proj.extent), torch.zeros_like(proj.extent)).int()
    means2d, conics = proj.means2d[None], proj.conics[None]
    try:  # gsplat >= 1.5 takes per-axis radii (C, N, 2)
        _, isect_ids, flatten_ids = gsplat.isect_tiles(means2d, ext[None], depths[None], ts, tw, th)
    except (RuntimeError, TypeError, ValueError):
        _, isect_ids, flatten_ids = gsplat.isect_tiles(means2d, ext.max(dim=1).values[None], depths[None], ts, tw, th)
    offsets = gsplat.isect_offset_encode(isect_ids, 1, tw, th)
    opac = torch.where(vis, proj.opacities, torch.zeros_like(proj.opacities))[None]
    bg = None if background is None else background[None]
    img, alpha = gsplat.rasterize_to_pixels(
        means2d, conics, values[None], opac, width, height, ts, offsets, flatten_ids, backgrounds=bg
    )
    return img[0], alpha[0, ..., 0]
