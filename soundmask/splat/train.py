"""Fit a Gaussian scene to posed frames (3D Gaussian splatting, Kerbl et al. 2023; 4D with per-Gaussian motion).

Recipe (the 3DGS one, sized for a CPU):

* **Views.** Every frame of the scene is a view; by the EchoSegnet protocol every 8th (list position
  ``i % 8 == 0``) is a *test* view that is never used for fitting.
* **Initialisation.** Back-projected depth of the training views when the scene has depth (our generator),
  else the COLMAP points of ``sparse/0`` (3DAVS-S34-O7), else random points in the cameras' view.
  Isotropic Gaussians, scale = mean distance to the 3 nearest points, opacity 0.5 (the 3DGS initialisation).
* **Loss.** ``(1 − λ) L1 + λ (1 − SSIM)``, λ = 0.2 (3DGS Eq. 7), Adam with per-parameter learning rates
  (means scaled by the scene extent), exponential decay of the position rate.
* **Adaptive density control.** Every ``densify_every`` steps until ``densify_until``: Gaussians whose mean
  screen-space gradient exceeds ``grad_threshold`` are cloned (small) or split in two (large); Gaussians with
  opacity below ``prune_opacity`` or too large are removed; the count is capped at ``max_gaussians``.
* **4D** (``motion``; :func:`motion_model` resolves ``auto``). Frames are rendered at their own time.
  ``rigid`` (the default when an object moves and the scene has depth): the moving objects are found in the
  depth maps and become rigid bodies with one pose per training frame (:mod:`soundmask.splat.dynamic`,
  :mod:`soundmask.splat.motion`), fitted with the Gaussians; the background cannot move. ``basis``: each
  Gaussian learns displacement coefficients over the basis of :func:`soundmask.splat.gaussians.motion_basis`,
  and a small penalty keeps the static background static.
"""

from __future__ import annotations

import math
import time as _time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from soundmask.config import check_choices, option
from soundmask.constants import TEST_EVERY
from soundmask.data.images import resize_to
from soundmask.data.types import Camera, Scene
from soundmask.errors import ConfigError, DataError
from soundmask.splat.gaussians import Gaussians, knn_scale
from soundmask.splat.losses import l1_ssim_loss, psnr
from soundmask.splat.render import Backend, render

__all__ = [
    "FitResult",
    "ReconstructConfig",
    "SceneViews",
    "evaluate_views",
    "fit",
    "initial_gaussians",
    "load_views",
    "motion_model",
]


@dataclass
class ReconstructConfig:
    """Options of ``soundmask reconstruct`` (every field is a command-line option)."""

    iterations: int = option(650, "optimisation steps (one training view per step)")
    scale: float = option(1.0, "render at this fraction of the frame size (0.5 = half resolution)")
    sh_degree: int = option(0, "spherical-harmonic degree of the colours (0 = view-independent, up to 3)")
    init: Literal["auto", "depth", "colmap", "random"] = option(
        "auto", "initial points: auto = depth when the scene has it, else COLMAP points, else random"
    )
    init_points: int = option(8000, "number of initial Gaussians")
    init_fill: bool = option(
        True,
        "COLMAP init with fewer points than init-points: add jittered copies of them "
        "(spread by their local spacing) up to init-points",
    )
    ssim_weight: float = option(0.2, "λ of the loss (1 − λ)·L1 + λ·(1 − SSIM)")
    lr_means: float = option(1.6e-4, "position learning rate, × the scene extent (decays 100× over training)")
    lr_colors: float = option(0.0025, "colour (SH DC) learning rate (higher orders use 1/20 of it)")
    lr_opacity: float = option(0.05, "opacity learning rate")
    lr_scales: float = option(0.005, "log-scale learning rate")
    lr_rotations: float = option(0.001, "rotation learning rate")
    densify_from: int = option(100, "first step of adaptive density control")
    densify_until: float = option(0.6, "last step of density control, as a fraction of the iterations")
    densify_every: int = option(100, "steps between density-control rounds")
    grad_threshold: float = option(0.0002, "mean screen-space (NDC) gradient above which a Gaussian densifies (3DGS)")
    prune_opacity: float = option(0.005, "Gaussians less opaque than this are removed")
    max_gaussians: int = option(60000, "cap on the number of Gaussians")
    motion: Literal["auto", "none", "basis", "rigid"] = option(
        "auto",
        "4D motion model: auto = rigid when an object moves and the scene has depth, basis when it moves without "
        "depth, else none | none | basis (per-Gaussian displacement over a time basis) | rigid (moving objects "
        "found in the depth maps, one rigid pose per frame each)",
    )
    motion_terms: int = option(-1, "basis motion: basis size per Gaussian (-1 = auto: 6)")
    lr_rigid: float = option(2e-4, "rigid motion: translation learning rate, × the scene extent (rotations: rad)")
    lr_motion: float = option(1.6e-4, "motion-coefficient learning rate, × the scene extent")
    motion_penalty: float = option(1e-3, "L1 weight on motion coefficients (keeps the static background still)")
    test_every: int = option(
        TEST_EVERY, "every n-th frame (list position) is a test view, never fitted (EchoSegnet: 8)"
    )
    backend: Backend = option(
        "auto", "rasterizer: auto | compiled (C++, CPU) | tile (PyTorch, CPU) | dense (reference) | gsplat (CUDA)"
    )
    tile_size: int = option(0, "rasterizer tile size in pixels (0 = the backend's own: 16 compiled, 4 tile)")
    background: tuple[float, float, float] = option((0.0, 0.0, 0.0), "background colour")
    max_minutes: float = option(0.0, "stop after this many minutes (0 = no limit)")
    seed: int = option(0, "random seed")
    device: Literal["auto", "cpu", "cuda"] = option("auto", "auto (CUDA when available) | cpu | cuda")

    def __post_init__(self) -> None:
        check_choices(self)
        if self.iterations < 0:
            raise ConfigError(f"iterations must be >= 0, got {self.iterations}")
        if not 0 < self.scale <= 4:
            raise ConfigError(f"scale must be in (0, 4], got {self.scale}")
        if not 0 <= self.sh_degree <= 3:
            raise ConfigError(f"sh-degree must be 0..3, got {self.sh_degree}")
        if not 0 <= self.ssim_weight <= 1:
            raise ConfigError(f"ssim-weight must be in [0, 1], got {self.ssim_weight}")
        if self.test_every < 2:
            raise ConfigError(f"test-every must be >= 2, got {self.test_every}")
        if self.init_points < 1 or self.max_gaussians < 1:
            raise ConfigError("init-points and max-gaussians must be >= 1")
        if self.tile_size < 0:
            raise ConfigError(f"tile-size must be >= 0, got {self.tile_size}")
        if self.motion_terms < -1:
            raise ConfigError(f"motion-terms must be -1 (auto), 0 or more, got {self.motion_terms}")


@dataclass
class SceneViews:
    """The posed frames of a scene, ready for fitting: ``images`` (V, H, W, 3) float in [0, 1], one camera and
    time per view, the train/test split (list positions), optional ``depth`` (V, H, W) metres."""

    images: torch.Tensor
    cameras: list[Camera]
    times: list[float]
    train: list[int]
    test: list[int]
    depth: np.ndarray | None = None
    scene: Scene | None = None
    init_points: tuple[np.ndarray, np.ndarray] | None = None  # COLMAP (xyz, rgb)
    dynamic: bool = False

    @property
    def size(self) -> tuple[int, int]:
        return int(self.images.shape[1]), int(self.images.shape[2])


@dataclass
class FitResult:
    """A fitted model with what was measured on the way (``psnr_test``: mean over test views, dB)."""

    gaussians: Gaussians
    psnr_test: float
    psnr_train: float
    seconds: float
    iterations: int
    history: list[dict] = field(default_factory=list)


def load_views(path_or_scene: str | Path | Scene, scale: float = 1.0, test_every: int = TEST_EVERY) -> SceneViews:
    """Read a scene folder (ours or 3DAVS-S34-O7) into :class:`SceneViews` at ``scale`` × its frame size."""
    from soundmask.data.layout import detect_layout
    from soundmask.data.scene import load_depth, load_rgb, read_scene
    from soundmask.data.threedavs import read_3davs_scene

    if isinstance(path_or_scene, Scene):
        scene = path_or_scene
        layout = "3davs" if scene.extra.get("format") == "3davs" else "scene"
    else:
        layout = detect_layout(path_or_scene)
        if layout not in ("scene", "3davs"):
            raise DataError(
                f"expected a posed scene (scene.json or 3DAVS input/ + sparse/0/), found {layout}",
                path_or_scene,
                "pass one scene folder (e.g. from `soundmask synth --preset scene3d`)",
            )
        scene = read_scene(path_or_scene) if layout == "scene" else read_3davs_scene(path_or_scene)
    if not scene.frames:
        raise DataError("the scene has no frames", scene.root, "check input/ and the camera list")
    H0, W0 = scene.size
    W, H = max(8, int(round(W0 * scale))), max(8, int(round(H0 * scale)))
    imgs, cams, depth = [], [], []
    has_depth = layout == "scene" and scene.root is not None and (scene.root / "depth").is_dir()
    for i, f in enumerate(scene.frames):
        im = load_rgb(scene, i)
        imgs.append(resize_to(im, W, H))
        k = f.camera.intrinsics
        cams.append(Camera(k.scaled(W, H), f.camera.camera_to_world, name=f.camera.name))
        if has_depth:
            depth.append(resize_to(load_depth(scene, i), W, H, nearest=True))
    images = torch.as_tensor(np.stack(imgs).astype(np.float32) / 255.0)
    if not torch.isfinite(images).all():
        raise DataError("frames contain non-finite values", scene.root)
    V = len(cams)
    test = [i for i in range(V) if i % test_every == 0]
    train = [i for i in range(V) if i % test_every != 0]
    if not train:
        raise DataError(
            f"the scene has {V} frame(s): no training view is left after holding out every {test_every}th",
            scene.root,
            "use a scene with more frames or a larger --test-every",
        )
    init = None
    if layout == "3davs" or (scene.root is not None and (scene.root / "sparse" / "0").is_dir() and not has_depth):
        from soundmask.data.colmap import read_model

        try:
            init = read_model(scene.root / "sparse" / "0").points_xyz_rgb()  # type: ignore[operator]
        except DataError:
            init = None
    dynamic = any(o.moving for o in scene.objects)
    return SceneViews(
        images,
        cams,
        [float(f.time) for f in scene.frames],
        train,
        test,
        np.stack(depth) if depth else None,
        scene,
        init,
        dynamic,
    )


def _extent(cameras: list[Camera]) -> float:
    c = np.stack([cam.center for cam in cameras])
    return float(max(np.linalg.norm(c - c.mean(0), axis=1).max() * 1.1, 1e-2))


def initial_gaussians(views: SceneViews, cfg: ReconstructConfig, rng: np.random.Generator) -> tuple[Gaussians, str]:
    """The starting Gaussians and how they were made (``depth`` / ``colmap`` / ``random``)."""
    how = cfg.init
    if how == "auto":
        how = (
            "depth"
            if views.depth is not None
            else ("colmap" if views.init_points is not None and len(views.init_points[0]) else "random")
        )
    if how == "depth":
        if views.depth is None:
            raise ConfigError("--init depth needs a scene with depth/ maps", fix="use --init auto")
        pts, cols, scales = _points_from_depth(views, cfg.init_points)
    elif how == "colmap":
        if views.init_points is None or not len(views.init_points[0]):
            raise ConfigError("--init colmap needs COLMAP points in sparse/0/points3D", fix="use --init auto")
        pts, cols = views.init_points
        scales = None
        if len(pts) > cfg.init_points:
            pick = rng.choice(len(pts), cfg.init_points, replace=False)
            pts, cols = pts[pick], cols[pick]
        elif cfg.init_fill and 4 <= len(pts) < cfg.init_points:
            pts, cols = _fill_points(pts, cols, cfg.init_points, rng)
    else:
        pts, cols = _random_points(views, cfg.init_points, rng)
        scales = None
    model = motion_model(views, cfg)
    if model == "rigid":
        if how != "depth":
            raise ConfigError("--motion rigid needs the depth initialisation (a scene with depth/ maps)",
                              fix="use --motion basis or --motion auto")  # fmt: skip
        from soundmask.splat.dynamic import rigid_init

        g, report = rigid_init(views, cfg.init_points, sh_degree=cfg.sh_degree, rng=rng)
        g.extra["rigid_init"] = report
        return g, how
    motion = (cfg.motion_terms if cfg.motion_terms >= 0 else 6) if model == "basis" else 0
    t0, t1 = (min(views.times), max(views.times)) if views.times else (0.0, 1.0)
    if scales is not None:  # never larger than the 3-nearest-neighbour spacing
        scales = np.minimum(scales, knn_scale(pts))
    g = Gaussians.from_points(
        pts, cols, sh_degree=cfg.sh_degree, opacity=0.5, motion_terms=motion, scale=scales, time_range=(t0, t1)
    )
    return g, how


def motion_model(views: SceneViews, cfg: ReconstructConfig) -> str:
    """The motion model ``cfg.motion`` resolves to for ``views`` (``auto``: rigid when an object moves and the
    scene has depth maps, basis when it moves without them, else none)."""
    if cfg.motion != "auto":
        return cfg.motion
    if not views.dynamic:
        return "none"
    return "rigid" if views.depth is not None and cfg.init in ("auto", "depth") else "basis"


def _fill_points(pts: np.ndarray, cols: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``pts`` plus ``n - len(pts)`` jittered copies: each a random point moved by a normal offset of σ = half its
    distance to its 3rd nearest neighbour (sparse SfM points of a low-resolution video seed too few Gaussians
    for a short CPU optimisation to densify the surfaces between them)."""
    from scipy.spatial import cKDTree

    pts = np.asarray(pts, np.float64)
    k = min(4, len(pts))
    d, _ = cKDTree(pts).query(pts, k=k)
    sigma = 0.5 * d[:, -1]
    pick = rng.integers(0, len(pts), n - len(pts))
    extra = pts[pick] + rng.normal(size=(len(pick), 3)) * sigma[pick, None]
    return np.concatenate([pts, extra]), np.concatenate([np.asarray(cols), np.asarray(cols)[pick]])


def _points_from_depth(views: SceneViews, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Back-project the training views' depth, spread evenly over views and pixels; each point's scale is half
    the footprint of its sampling cell (depth · stride / f), so the seeds tile the surfaces they came from."""
    from soundmask.splat.dynamic import back_project

    assert views.depth is not None
    H, W = views.size
    per = max(1, n // len(views.train))
    stride = max(1, int(math.floor(math.sqrt(H * W / per))))
    pts = back_project(views, stride)
    P, C, S = pts.xyz, pts.rgb, pts.scale
    if len(P) > n:
        keep = np.random.default_rng(0).choice(len(P), n, replace=False)
        P, C, S = P[keep], C[keep], S[keep]
    if not len(P):
        raise DataError(
            "depth maps have no valid pixel",
            views.scene.root if views.scene else None,
            "check depth/ or use --init random",
        )
    return P, C.astype(np.float32), S


def _random_points(views: SceneViews, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Points spread in front of the training cameras (2–6 × the camera spread away)."""
    ext = _extent(views.cameras)
    pts = []
    for _ in range(n):
        cam = views.cameras[views.train[int(rng.integers(len(views.train)))]]
        k = cam.intrinsics
        u, v = rng.uniform(0, k.width), rng.uniform(0, k.height)
        z = rng.uniform(0.5, 2.5) * ext
        pc = np.array([(u - k.cx) / k.fx * z, (v - k.cy) / k.fy * z, z])
        pts.append(cam.camera_to_world[:3, :3] @ pc + cam.camera_to_world[:3, 3])
    return np.array(pts), rng.uniform(0.2, 0.8, (n, 3)).astype(np.float32)


class _Optim:
    """Adam over the Gaussians' tensors with 3DGS learning rates; rebuilt (state carried over) after densification."""

    def __init__(self, g: Gaussians, cfg: ReconstructConfig, extent: float):
        self.cfg, self.extent = cfg, extent
        self.g = g
        self._build(None, None)

    def _lrs(self) -> dict[str, float]:
        c = self.cfg
        return {
            "means": c.lr_means * self.extent,
            "log_scales": c.lr_scales,
            "quats": c.lr_rotations,
            "opacity_logits": c.lr_opacity,
            "sh": c.lr_colors,
            "motion": c.lr_motion * self.extent,
            "rigid_translations": c.lr_rigid * self.extent,
            "rigid_rotations": c.lr_rigid,
        }

    def _build(self, old_state: dict | None, keep: torch.Tensor | None) -> None:
        groups = []
        for name, t in self.g.tensors().items():
            if name in ("features", "group"):
                continue
            t.requires_grad_(True)
            groups.append({"params": [t], "lr": self._lrs()[name], "name": name})
        if self.g.rigid is not None:  # the bodies' poses (not per Gaussian: their state carries over whole)
            for name in ("translations", "rotations"):
                t = getattr(self.g.rigid, name)
                t.requires_grad_(True)
                groups.append({"params": [t], "lr": self._lrs()["rigid_" + name], "name": "rigid_" + name})
        self.opt = torch.optim.Adam(groups, eps=1e-15)
        if old_state is not None and keep is not None:
            for grp in self.opt.param_groups:
                st = old_state.get(grp["name"])
                if st is None:
                    continue
                p = grp["params"][0]
                if grp["name"].startswith("rigid_"):
                    self.opt.state[p] = st
                    continue
                n_new = p.shape[0] - keep.shape[0]
                pad = [torch.zeros((n_new,) + p.shape[1:], dtype=p.dtype)]
                self.opt.state[p] = {
                    "step": st["step"],
                    "exp_avg": torch.cat([st["exp_avg"][keep]] + pad),
                    "exp_avg_sq": torch.cat([st["exp_avg_sq"][keep]] + pad),
                }

    def state_by_name(self) -> dict:
        out = {}
        for grp in self.opt.param_groups:
            st = self.opt.state.get(grp["params"][0])
            if st:
                out[grp["name"]] = st
        return out

    def set_means_lr(self, lr: float) -> None:
        for grp in self.opt.param_groups:
            if grp["name"] == "means":
                grp["lr"] = lr

    def replace(self, g: Gaussians, keep: torch.Tensor) -> None:
        """Switch to ``g`` whose first ``len(keep)`` Gaussians are the old ``keep`` ones (the rest are new)."""
        old = self.state_by_name()
        self.g = g
        self._build(old, keep)


def _densify(
    g: Gaussians,
    grad_acc: torch.Tensor,
    count: torch.Tensor,
    cfg: ReconstructConfig,
    extent: float,
    rng: torch.Generator,
    prune_only: bool = False,
) -> tuple[Gaussians, torch.Tensor]:
    """One round of 3DGS adaptive density control: clone/split by screen-space gradient, prune by opacity.

    Returns the new model and the indices of the old Gaussians it keeps first (for the optimiser state)."""
    with torch.no_grad():
        n = len(g)
        mean_grad = grad_acc / count.clamp_min(1)
        big = g.scales().max(dim=1).values > 0.01 * extent
        grow = (mean_grad > cfg.grad_threshold) if not prune_only else torch.zeros(n, dtype=torch.bool)
        room = max(cfg.max_gaussians - n, 0)
        if int(grow.sum()) > room:  # keep the highest gradients within the cap
            idx = torch.nonzero(grow).squeeze(1)
            top = idx[torch.argsort(mean_grad[idx], descending=True)[:room]]
            grow = torch.zeros(n, dtype=torch.bool)
            grow[top] = True
        clone, split = grow & ~big, grow & big
        prune = (g.opacities() < cfg.prune_opacity) | (g.scales().max(dim=1).values > 0.5 * extent) | split
        keep = torch.nonzero(~prune).squeeze(1)
        parts = {k: [v.detach()[keep]] for k, v in g.tensors().items()}
        ci = torch.nonzero(clone).squeeze(1)
        for k, v in g.tensors().items():
            parts[k].append(v.detach()[ci])
        si = torch.nonzero(split).squeeze(1)
        if len(si):
            s = g.scales()[si]
            R = g.rotations()[si]
            for _ in range(2):
                offs = (R @ (torch.randn(len(si), 3, generator=rng) * s)[..., None]).squeeze(-1)
                for k, v in g.tensors().items():
                    x = v.detach()[si]
                    if k == "means":
                        x = x + offs
                    elif k == "log_scales":
                        x = x - math.log(1.6)
                    parts[k].append(x)
        new = {k: torch.cat(v).contiguous() for k, v in parts.items()}
        g2 = Gaussians(**new, time_range=g.time_range, rigid=g.rigid)  # type: ignore[arg-type]
    return g2, keep


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda but no CUDA GPU is available", fix="use --device auto or cpu")
    return torch.device(name)


def evaluate_views(g: Gaussians, views: SceneViews, which: list[int], cfg: ReconstructConfig) -> float:
    """Mean PSNR (dB) of the renders of views ``which``."""
    if not which:
        return float("nan")
    vals = []
    with torch.no_grad():
        for i in which:
            r = render(
                g,
                views.cameras[i],
                time=views.times[i],
                features=False,
                background=cfg.background,
                backend=cfg.backend,
                tile_size=cfg.tile_size or None,
            )
            vals.append(psnr(r.color.clamp(0, 1).cpu(), views.images[i]))
    return float(np.mean(vals))


def fit(
    views: SceneViews,
    cfg: ReconstructConfig | None = None,
    progress: Callable[[int, int, dict], None] | None = None,
    init: Gaussians | None = None,
) -> FitResult:
    """Fit Gaussians to the training views of ``views`` (see the module docstring); ``progress(step, total, info)``
    is called every few steps."""
    cfg = cfg or ReconstructConfig()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    dev = _device(cfg.device)
    t_start = _time.perf_counter()
    extent = _extent(views.cameras)
    g = init.detach() if init is not None else initial_gaussians(views, cfg, rng)[0]
    g = g.to(dev)
    opt = _Optim(g, cfg, extent)
    images = views.images.to(dev)
    bg = cfg.background
    grad_acc = torch.zeros(len(g), device=dev)
    count = torch.zeros(len(g), device=dev)
    densify_until = int(cfg.densify_until * cfg.iterations)
    history: list[dict] = []
    order: list[int] = []
    step = 0
    for step in range(1, cfg.iterations + 1):
        if not order:
            order = list(rng.permutation(views.train))
        i = int(order.pop())
        frac = (step - 1) / max(cfg.iterations - 1, 1)
        opt.set_means_lr(cfg.lr_means * extent * (0.01**frac))
        g = opt.g
        r = render(
            g,
            views.cameras[i],
            time=views.times[i],
            features=False,
            background=bg,
            backend=cfg.backend,
            tile_size=cfg.tile_size or None,
            retain_grad=True,
        )
        loss = l1_ssim_loss(r.color, images[i], cfg.ssim_weight)
        if g.motion is not None and cfg.motion_penalty > 0:
            loss = loss + cfg.motion_penalty * g.motion.abs().mean()
        opt.opt.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            if r.means2d.grad is not None:
                vis = r.visible
                half = torch.tensor([0.5 * images.shape[2], 0.5 * images.shape[1]], device=dev)  # px → NDC units
                grad_acc[vis] += (r.means2d.grad[vis] * half).norm(dim=-1)
                count[vis] += 1
        opt.opt.step()
        if cfg.densify_from <= step <= densify_until and step % cfg.densify_every == 0:
            g2, keep = _densify(opt.g, grad_acc, count, cfg, extent, gen)
            opt.replace(g2, keep)
            grad_acc = torch.zeros(len(g2), device=dev)
            count = torch.zeros(len(g2), device=dev)
        if step % 25 == 0 or step == cfg.iterations:
            info = {
                "step": step,
                "loss": float(loss.detach()),
                "gaussians": len(opt.g),
                "seconds": _time.perf_counter() - t_start,
            }
            history.append(info)
            if progress is not None:
                progress(step, cfg.iterations, info)
        if cfg.max_minutes > 0 and _time.perf_counter() - t_start > 60 * cfg.max_minutes:
            break
    g = opt.g.detach()
    # final clean-up: drop what became transparent
    g = g.subset(g.opacities() >= cfg.prune_opacity)
    seconds = _time.perf_counter() - t_start
    return FitResult(
        gaussians=g.to("cpu"),
        psnr_test=evaluate_views(g, views, views.test, cfg),
        psnr_train=evaluate_views(g, views, views.train[:: max(1, len(views.train) // 8)], cfg),
        seconds=seconds,
        iterations=step,
        history=history,
    )
