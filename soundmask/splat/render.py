"""Render a :class:`~soundmask.splat.gaussians.Gaussians` model from a camera: colour, alpha, depth, features.

Backends (:data:`BACKENDS`, one registry line each):

* ``compiled`` — the C++ tile rasterizer (:mod:`soundmask.splat.raster_compiled`, built by ``install.sh``), the
  CPU default when it is built.
* ``tile`` — the pure-PyTorch tile rasterizer (:mod:`soundmask.splat.raster_tile`), the CPU fallback.
* ``dense`` — the slow reference (:mod:`soundmask.splat.raster_dense`), used by tests.
* ``gsplat`` — the gsplat CUDA rasterizer, chosen by ``auto`` when a CUDA GPU and the ``gsplat`` package are
  present (``pip install gsplat``).

Colour, feature channels and depth are composited in one pass as the channels of one value vector, so a
sound-mask render costs the same as a colour render.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from soundmask.data.types import Camera
from soundmask.errors import ConfigError
from soundmask.registry import resolve
from soundmask.splat.gaussians import Gaussians
from soundmask.splat.project import Projected, project

__all__ = ["BACKENDS", "PROJECTORS", "Backend", "RenderOutput", "choose_backend", "render"]

Backend = Literal["auto", "compiled", "tile", "dense", "gsplat"]
"""The rasterizer choices of the configs: ``auto`` or a :data:`BACKENDS` name (a test keeps them in step)."""

BACKENDS: dict[str, object] = {
    "compiled": "soundmask.splat.raster_compiled:rasterize_compiled",
    "tile": "soundmask.splat.raster_tile:rasterize_tiles",
    "dense": "soundmask.splat.raster_dense:rasterize_dense",
    "gsplat": "soundmask.splat.gsplat_backend:rasterize_gsplat",
}
PROJECTORS: dict[str, object] = {
    "compiled": "soundmask.splat.raster_compiled:project_compiled",  # `project` as one C++ pass, tested against it
}
"""Backends with their own EWA projection (the others use :func:`soundmask.splat.project.project`)."""


@dataclass
class RenderOutput:
    """One rendered view: ``color`` (H, W, 3) in [0, 1] (over ``background``), ``alpha`` (H, W) accumulated
    opacity, ``depth`` (H, W) expected camera depth (Σ wᵢ zᵢ / alpha; 0 where nothing is rendered),
    ``features`` (H, W, F) or None, and per Gaussian ``means2d`` (N, 2, screen px; its ``.grad`` after
    backward drives densification when ``render(..., retain_grad=True)``) and ``visible`` (N,) bool."""

    color: torch.Tensor
    alpha: torch.Tensor
    depth: torch.Tensor
    features: torch.Tensor | None
    means2d: torch.Tensor
    visible: torch.Tensor
    projected: Projected | None = None


def choose_backend(name: str = "auto") -> str:
    """``auto`` → ``gsplat`` when CUDA and gsplat are available, else ``compiled`` when it is built, else
    ``tile``; other names are checked."""
    if name == "auto":
        if torch.cuda.is_available():
            try:
                import gsplat  # noqa: F401

                return "gsplat"
            except ImportError:
                pass
        from soundmask.splat.raster_compiled import available

        return "compiled" if available() else "tile"
    if name not in BACKENDS:
        resolve(BACKENDS, name, "rasterizer backend")  # raises the one-line error listing the backends
    return name


def camera_tensors(
    camera: Camera, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, tuple[float, float, float, float, int, int]]:
    """World→camera (4, 4) float32 tensor and (fx, fy, cx, cy, width, height) of ``camera``."""
    k = camera.intrinsics
    w2c = torch.as_tensor(np.asarray(camera.world_to_camera, dtype=np.float32), device=device)
    return w2c, (float(k.fx), float(k.fy), float(k.cx), float(k.cy), int(k.width), int(k.height))


def render(
    gaussians: Gaussians,
    camera: Camera,
    *,
    time: float | None = None,
    features: torch.Tensor | None | bool = True,
    background: tuple[float, float, float] | torch.Tensor = (0.0, 0.0, 0.0),
    backend: str = "auto",
    tile_size: int | None = None,
    near: float = 0.01,
    retain_grad: bool = False,
    colors: torch.Tensor | None = None,
) -> RenderOutput:
    """Render ``gaussians`` (at ``time`` seconds for a 4D model) through ``camera``.

    ``features``: True renders the model's own feature channels (if any), False/None renders none, a tensor
    (N, F) renders those values instead (e.g. a 0/1 selection gives that subset's soft mask, without
    re-projecting). ``colors`` (N, 3) overrides the SH colours."""
    name = choose_backend(backend)
    if name == "gsplat" and not torch.cuda.is_available():
        raise ConfigError("the gsplat backend needs a CUDA GPU", fix="use --backend tile on a CPU")
    raster = resolve(BACKENDS, name, "rasterizer backend")
    means = gaussians.means_at(time)
    dev = means.device
    w2c, (fx, fy, cx, cy, W, H) = camera_tensors(camera, dev)
    projector = resolve(PROJECTORS, name, "projection") if name in PROJECTORS else project
    proj = projector(means, gaussians.covariances(time), gaussians.opacities(), w2c, fx, fy, cx, cy, W, H, near)
    if retain_grad and proj.means2d.requires_grad:
        proj.means2d.retain_grad()
    if colors is None:
        center = torch.as_tensor(camera.center, dtype=means.dtype, device=dev)
        colors = gaussians.colors(center, means)
    feats = gaussians.features if features is True else (None if features is False or features is None else features)
    parts = [colors]
    if feats is not None:
        parts.append(feats.to(colors))
    parts.append(torch.where(proj.visible, proj.depths, torch.zeros_like(proj.depths))[:, None])
    values = torch.cat(parts, dim=1)
    bg = torch.zeros(values.shape[1], dtype=values.dtype, device=dev)
    bg[:3] = torch.as_tensor(background, dtype=values.dtype, device=dev)
    image, alpha = raster(proj, values, W, H, bg, **({} if tile_size is None else {"tile_size": tile_size}))
    F = 0 if feats is None else feats.shape[1]
    depth_sum = image[..., 3 + F]
    depth = torch.where(alpha > 1e-6, depth_sum / alpha.clamp_min(1e-6), torch.zeros_like(alpha))
    return RenderOutput(
        color=image[..., :3],
        alpha=alpha,
        depth=depth,
        features=image[..., 3 : 3 + F] if F else None,
        means2d=proj.means2d,
        visible=proj.visible,
        projected=proj,
    )
