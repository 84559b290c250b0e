"""Affinity features for grouping Gaussians into objects, learned from 2D instance masks, in the style of SAGA
("Segment Any 3D Gaussians", Cen et al., AAAI 2025).

Every Gaussian g carries a low-dimensional feature ``f_g`` (:attr:`AffinityConfig.dim` channels). As in SAGA,
the *unit* features ``f_g / ‖f_g‖`` are rendered like colour (front-to-back alpha compositing, so occlusion is
respected): ``F(u) = Σ_g w_g(u) f_g / ‖f_g‖``. The geometry is frozen; only the features are optimised, with
Adam. Each step picks one view, renders it at ``resolution`` × the camera size, samples up to
``pixels_per_view`` pixels P where the render is opaque (alpha > 0.5), and with ``c_uv = F̂(u)·F̂(v)`` the cosine
of the L2-normalised rendered features, ``m`` the margin and ``id`` the pixel's 2D instance id (background,
id 0, is an instance of its own) minimises

    L = Σ_{u≠v ∈ P} ω_uv [ 1[id(u) = id(v)] (1 − c_uv) + 1[id(u) ≠ id(v)] max(0, c_uv − m) ] / Σ_{u≠v} ω_uv
        + λ · mean_{u ∈ P} (1 − ‖F(u)‖ / alpha(u))²

The first term pulls pixels of the same 2D instance to one direction and pushes pixels of different instances
below cosine ``m``. The second (SAGA's rendered-feature-norm regulariser, weight λ = ``norm_weight``) is 0
exactly when all the Gaussians composited into a pixel carry the same feature: the first term alone only
constrains their weighted sum, which leaves the individual Gaussians (what gets clustered) inconsistent.

Pair weights ``ω_uv``: 1 for the plain loss. With ``scale_aware``: ``ω_uv = 1 / (A_id(u) A_id(v))``, with
``A_i`` the number of sampled pixels of instance i (a uniform sample of the view's opaque pixels, so
proportional to its area) floored at ``min_instance_fraction · |P|``: every instance, and every pair of
instances, weighs the same whatever its size, so small objects count as much as large ones, while mask slivers
of a few pixels cannot dominate. (This replaces SAGA's scale gate, which needs SAM's multi-granularity
masks with a 3D scale each, not one instance partition per view.)

Gaussians are then grouped by :func:`cluster_features`: two Gaussians are linked when one is among the other's
k nearest neighbours in 3D (optionally within a radius) *and* their normalised features have cosine ≥ a
threshold; the connected components are the objects.
"""

from __future__ import annotations

import math
import time as _time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from soundmask.config import check_choices, option
from soundmask.data.types import Camera
from soundmask.errors import ConfigError, DataError
from soundmask.splat.gaussians import Gaussians
from soundmask.splat.render import Backend, render

__all__ = ["AffinityConfig", "affinity_loss", "cluster_features", "group_by_affinity", "norm_loss", "train_affinity"]

Progress = Callable[[str, int, int], None]


@dataclass
class AffinityConfig:
    """Options of the SAGA-style affinity features (``--set KEY=VALUE``)."""

    dim: int = option(16, "channels of the per-Gaussian affinity feature")
    iterations: int = option(300, "optimisation steps (one view each)")
    lr: float = option(0.01, "Adam learning rate of the features")
    pixels_per_view: int = option(1024, "opaque pixels sampled per step (all pairs among them enter the loss)")
    margin: float = option(0.5, "pixels of different instances are pushed below this cosine similarity")
    scale_aware: bool = option(
        True, "weight pairs by inverse instance area, so small objects count as much as large ones"
    )
    min_instance_fraction: float = option(
        0.05,
        "with scale_aware, instances covering less than this fraction of "
        "the sampled pixels are weighted as if they covered that much",
    )
    resolution: float = option(0.5, "render the feature maps at this fraction of the camera size")
    norm_weight: float = option(
        1.0, "weight of the rendered-feature-norm term (1 − ‖F‖/alpha)², which aligns the Gaussians along each ray"
    )
    init_std: float = option(0.1, "standard deviation of the random initial features")
    seed: int = option(0, "random seed (initial features, view order, pixel sampling)")
    cluster_threshold: float = option(0.8, "cosine similarity at or above which neighbouring Gaussians are merged")
    cluster_k: int = option(8, "3D nearest neighbours each Gaussian may be merged with")
    cluster_radius: float = option(0.0, "only merge neighbours closer than this (metres; 0: no limit)")
    min_cluster_size: int = option(5, "groups with fewer Gaussians are left unassigned (label 0)")
    max_seconds: float = option(0.0, "stop training after this many seconds (0: no limit)")
    backend: Backend = option("auto", "rasterizer backend (auto, compiled, tile, dense, gsplat)")

    def __post_init__(self) -> None:
        check_choices(self)
        if self.dim < 1 or self.pixels_per_view < 2 or self.cluster_k < 1 or self.min_cluster_size < 1:
            raise ConfigError(
                "affinity dim, cluster_k and min_cluster_size must be >= 1, pixels_per_view >= 2",
                fix="e.g. --set dim=16 pixels_per_view=1024",
            )
        if self.iterations < 0:
            raise ConfigError(f"affinity iterations must be >= 0, got {self.iterations}")
        if not (self.lr > 0 and self.init_std > 0) or self.norm_weight < 0:
            raise ConfigError("affinity lr and init_std must be > 0, norm_weight >= 0")
        if not -1.0 <= self.margin < 1.0:
            raise ConfigError(f"affinity margin must be in [-1, 1), got {self.margin}")
        if not -1.0 <= self.cluster_threshold <= 1.0:
            raise ConfigError(f"cluster_threshold is a cosine similarity in [-1, 1], got {self.cluster_threshold}")
        if not 0.0 < self.resolution <= 1.0:
            raise ConfigError(f"affinity resolution must be in (0, 1], got {self.resolution}")
        if not 0.0 <= self.min_instance_fraction <= 1.0:
            raise ConfigError(f"min_instance_fraction must be in [0, 1], got {self.min_instance_fraction}")
        if self.max_seconds < 0 or self.cluster_radius < 0:
            raise ConfigError("max_seconds and cluster_radius must be >= 0 (0: no limit)")


# ---------------------------------------------------------------------------------------------- the loss
def affinity_loss(
    features: torch.Tensor, ids: torch.Tensor, margin: float = 0.5, scale_aware: bool = True, min_fraction: float = 0.05
) -> torch.Tensor:
    """The contrastive loss of the module docstring on sampled pixels: rendered ``features`` (P, F) (normalised
    here) and their instance ``ids`` (P,) (0 = background, its own instance).

    Mean over the pairs u ≠ v of ``[same] (1 − cos) + [different] relu(cos − margin)``, each pair weighted by
    ``1 / (A_id(u) · A_id(v))`` when ``scale_aware``, with A the instance's pixel count among ``ids`` (pass all
    opaque pixels, or a uniform sample of them), floored at ``min_fraction · P``. Fewer than two pixels → 0
    (still differentiable)."""
    P = features.shape[0]
    if P < 2:
        return features.sum() * 0.0
    f = features / features.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    cos = f @ f.T
    same = ids[:, None] == ids[None, :]
    loss = torch.where(same, 1.0 - cos, torch.relu(cos - margin))
    off = ~torch.eye(P, dtype=torch.bool, device=features.device)
    if scale_aware:
        _, inv, counts = torch.unique(ids, return_inverse=True, return_counts=True)
        w = 1.0 / counts[inv].to(f.dtype).clamp_min(min_fraction * P)
        weights = (w[:, None] * w[None, :]) * off
    else:
        weights = off.to(f.dtype)
    return (weights * loss).sum() / weights.sum().clamp_min(1e-12)


def norm_loss(features: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """SAGA's rendered-feature-norm regulariser on pixels rendered from *unit* Gaussian features:
    ``mean_u (1 − ‖F(u)‖ / alpha(u))²``. ‖F(u)‖ ≤ alpha(u), with equality exactly when all the Gaussians
    composited into pixel u carry the same feature, so this aligns the Gaussians along each ray (the
    contrastive term alone only constrains their weighted sum)."""
    ratio = features.norm(dim=-1) / alpha.clamp_min(1e-6)
    return ((1.0 - ratio) ** 2).mean()


def _resize_nearest(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resample of an (h, w) label image to (height, width) (pixel centres aligned)."""
    h, w = mask.shape
    rows = np.minimum(((np.arange(height) + 0.5) * h / height).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * w / width).astype(np.int64), w - 1)
    return mask[rows[:, None], cols[None, :]]


def _views(
    cameras: Sequence[Camera],
    instance_masks: Sequence[np.ndarray],
    times: Sequence[float | None] | None,
    resolution: float,
    device: torch.device,
) -> list[tuple[Camera, torch.Tensor, float | None]]:
    """(camera at the render resolution, instance ids (H', W') int64 on ``device``, time) of every view."""
    if len(cameras) == 0:
        raise DataError("affinity training needs at least one view")
    if len(instance_masks) != len(cameras):
        raise DataError(
            f"{len(cameras)} cameras but {len(instance_masks)} instance masks",
            fix="pass one (H, W) instance mask per camera",
        )
    if times is not None and len(times) != len(cameras):
        raise DataError(f"{len(cameras)} cameras but {len(times)} times", fix="pass one time per camera, or None")
    views = []
    for i, (cam, mask) in enumerate(zip(cameras, instance_masks, strict=True)):
        m = np.asarray(mask)
        if m.ndim != 2 or not (np.issubdtype(m.dtype, np.integer) or m.dtype == bool):
            raise DataError(f"instance mask {i} must be an (H, W) integer array, got {m.dtype} {m.shape}")
        k = cam.intrinsics
        w, h = max(1, round(k.width * resolution)), max(1, round(k.height * resolution))
        small = Camera(k.scaled(w, h), cam.camera_to_world, cam.name)
        ids = torch.as_tensor(_resize_nearest(m.astype(np.int64), h, w), device=device)
        views.append((small, ids, None if times is None else times[i]))
    return views


# ---------------------------------------------------------------------------------------------- training
def train_affinity(
    gaussians: Gaussians,
    cameras: Sequence[Camera],
    instance_masks: Sequence[np.ndarray],
    times: Sequence[float | None] | None = None,
    config: AffinityConfig | None = None,
    progress: Progress | None = None,
    *,
    init: torch.Tensor | None = None,
    history: list[float] | None = None,
) -> torch.Tensor:
    """Learn per-Gaussian affinity features (N, dim) float32, unit length, from 2D instance masks (SAGA-style; the
    loss, see the module docstring, is the mean over sampled pixel pairs of ``[same] (1 − cos) + [different]
    relu(cos − margin)`` plus ``norm_weight ·`` :func:`norm_loss`).

    ``instance_masks[i]`` is the (H, W) integer instance map of ``cameras[i]`` (0 = background), resized
    nearest-neighbour to the render size; ``times[i]`` the time of the view for a 4D model. The geometry is
    detached (frozen); only the features are optimised (Adam). ``init`` (N, dim), non-zero rows, warm-starts
    them (default: seeded normal noise of std ``config.init_std``). ``history``, when given, receives each step's loss;
    ``progress(text, step, total)`` is called after every step. Training stops after ``config.iterations``
    steps or ``config.max_seconds``."""
    cfg = config or AffinityConfig()
    geom = gaussians.detach().with_features(None)
    device = geom.means.device
    n = len(geom)
    gen = torch.Generator().manual_seed(cfg.seed)
    if init is not None:
        if tuple(init.shape) != (n, cfg.dim):
            raise ConfigError(f"init features must be ({n}, {cfg.dim}), got {tuple(init.shape)}")
        start = init.detach().to(device=device, dtype=torch.float32).clone()
    else:
        start = (torch.randn(n, cfg.dim, generator=gen) * cfg.init_std).to(device)
    feats = torch.nn.Parameter(start)
    if cfg.iterations == 0 or n == 0:
        return _unit(feats.detach())
    views = _views(cameras, instance_masks, times, cfg.resolution, device)
    opt = torch.optim.Adam([feats], lr=cfg.lr)
    t0 = _time.monotonic()
    order: list[int] = []
    useful = 0
    for step in range(cfg.iterations):
        if not order:
            order = torch.randperm(len(views), generator=gen).tolist()
        cam, ids, t = views[order.pop()]
        out = render(geom, cam, time=t, features=_unit(feats), backend=cfg.backend)
        assert out.features is not None
        alpha = out.alpha.reshape(-1)
        valid = torch.nonzero(alpha.detach() > 0.5).squeeze(1)
        if valid.numel() >= 2:
            if valid.numel() > cfg.pixels_per_view:
                pick = torch.randperm(valid.numel(), generator=gen)[: cfg.pixels_per_view]
                valid = valid[pick.to(valid.device)]
            rendered = out.features.reshape(-1, cfg.dim)[valid]
            loss = affinity_loss(
                rendered, ids.reshape(-1)[valid], cfg.margin, cfg.scale_aware, cfg.min_instance_fraction
            )
            if cfg.norm_weight:
                loss = loss + cfg.norm_weight * norm_loss(rendered, alpha[valid].detach())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            value = float(loss.detach())
            useful += 1
        else:
            value = math.nan
        if history is not None:
            history.append(value)
        if progress is not None:
            progress(f"affinity step {step + 1}/{cfg.iterations} loss {value:.4f}", step + 1, cfg.iterations)
        if cfg.max_seconds and _time.monotonic() - t0 > cfg.max_seconds:
            break
    if useful == 0 and step + 1 >= len(views):
        raise DataError(
            "no view renders an opaque pixel (alpha > 0.5), so no affinity could be learned",
            fix="check that the cameras look at the Gaussians",
        )
    return _unit(feats.detach())


def _unit(f: torch.Tensor) -> torch.Tensor:
    return f / f.norm(dim=-1, keepdim=True).clamp_min(1e-8)


# ---------------------------------------------------------------------------------------------- clustering
def cluster_features(
    features: torch.Tensor | np.ndarray,
    means: torch.Tensor | np.ndarray | None = None,
    threshold: float = 0.8,
    min_size: int = 5,
    spatial_radius: float | None = None,
    k: int = 8,
) -> np.ndarray:
    """Group Gaussians by affinity: labels (N,) int64, 1..K by decreasing group size, 0 = unassigned.

    Features are L2-normalised; Gaussian i is linked to each of its ``k`` nearest neighbours j (in 3D by
    ``means``, within ``spatial_radius`` when given; in feature space when ``means`` is None) whose cosine
    similarity is ≥ ``threshold``. The connected components of these links (undirected) are the groups;
    groups of fewer than ``min_size`` Gaussians get label 0."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    f = features.detach().cpu().numpy() if isinstance(features, torch.Tensor) else np.asarray(features)
    f = f.astype(np.float64)
    if f.ndim != 2:
        raise DataError(f"features must be (N, F), got shape {f.shape}")
    n = f.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    fn = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    if means is None:
        pts = fn
    else:
        pts = means.detach().cpu().numpy() if isinstance(means, torch.Tensor) else np.asarray(means)
        pts = pts.astype(np.float64)
        if pts.shape != (n, 3):
            raise DataError(f"means must be ({n}, 3) for {n} features, got shape {pts.shape}")
    kk = min(k, n - 1)
    if kk >= 1:
        bound = np.inf if not spatial_radius else float(spatial_radius)
        _, idx = cKDTree(pts).query(pts, k=kk + 1, distance_upper_bound=bound)
        rows = np.repeat(np.arange(n), kk + 1)
        cols = np.asarray(idx).reshape(-1)
        ok = (cols < n) & (cols != rows)
        rows, cols = rows[ok], cols[ok]
        sim = np.einsum("ij,ij->i", fn[rows], fn[cols])
        keep = sim >= threshold
        rows, cols = rows[keep], cols[keep]
    else:
        rows = cols = np.zeros(0, dtype=np.int64)
    graph = coo_matrix((np.ones(rows.shape[0]), (rows, cols)), shape=(n, n)).tocsr()
    _, comp = connected_components(graph, directed=False)
    sizes = np.bincount(comp)
    first = np.full(sizes.shape[0], n, dtype=np.int64)
    np.minimum.at(first, comp, np.arange(n))
    big = np.nonzero(sizes >= min_size)[0]
    big = big[np.lexsort((first[big], -sizes[big]))]  # largest first, ties by first member
    lut = np.zeros(sizes.shape[0], dtype=np.int64)
    lut[big] = np.arange(1, big.shape[0] + 1)
    return lut[comp]


def group_by_affinity(
    gaussians: Gaussians,
    cameras: Sequence[Camera],
    instance_masks: Sequence[np.ndarray],
    times: Sequence[float | None] | None = None,
    config: AffinityConfig | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """Object labels (N,) int64 of ``gaussians`` (0 = unassigned): :func:`train_affinity` (SAGA-style
    contrastive features from the 2D ``instance_masks``), then :func:`cluster_features` on the static centres
    with the config's ``cluster_threshold``, ``cluster_k``, ``cluster_radius`` and ``min_cluster_size``."""
    cfg = config or AffinityConfig()
    feats = train_affinity(gaussians, cameras, instance_masks, times, cfg, progress)
    return cluster_features(
        feats, gaussians.means, cfg.cluster_threshold, cfg.min_cluster_size, cfg.cluster_radius or None, cfg.cluster_k
    )
