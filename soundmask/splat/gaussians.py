"""The Gaussian scene model (3D Gaussian splatting, Kerbl et al. 2023), optionally time-dependent (4D).

A :class:`Gaussians` holds raw, unconstrained parameters (what an optimiser updates); the activated
quantities come from its methods:

* ``means`` (N, 3) world metres; ``log_scales`` (N, 3) → ``scales() = exp``; ``quats`` (N, 4) ``wxyz``,
  normalised on use → ``rotations()``; ``opacity_logits`` (N,) → ``opacities() = sigmoid``.
* ``sh`` (N, K, 3) real spherical-harmonic colour coefficients, K = (degree + 1)², ``sh[:, 0]`` the DC term;
  colour = ``0.5 + Σ_k Y_k(d) · sh[:, k]`` (the 3DGS convention, so PLY files round-trip with other tools).
* ``features`` (N, F), optional extra channels rendered like colour (affinity features, sound scores).
* ``motion`` (N, B, 3), optional 4D displacement coefficients: ``means_at(t) = means + Σ_b φ_b(τ) motion[:, b]``
  with τ = t mapped from ``time_range`` to [−1, 1] and φ the basis of :func:`motion_basis` (polynomial and
  Fourier terms that all vanish at τ = 0, so ``means`` is the pose at mid-time).
* ``group`` (N,) int64 and ``rigid``, optional rigid 4D motion (:mod:`soundmask.splat.motion`): Gaussians of
  group k ≥ 1 move with rigid body k's pose at t (centres and covariances), group 0 never moves; ``means``
  is then each body's canonical pose.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import torch

from soundmask.splat.motion import RigidMotion

__all__ = ["SH_C0", "Gaussians", "eval_sh", "motion_basis", "quat_to_rotmat", "rgb_to_sh", "sh_to_rgb"]

SH_C0 = 0.28209479177387814
_SH_C1 = 0.4886025119029199
_SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
_SH_C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154, -0.4570457994644658,
          1.445305721320277, -0.5900435899266435)  # fmt: skip


def rgb_to_sh(rgb: torch.Tensor) -> torch.Tensor:
    """DC coefficient whose colour is ``rgb`` (in [0, 1])."""
    return (rgb - 0.5) / SH_C0


def sh_to_rgb(dc: torch.Tensor) -> torch.Tensor:
    return dc * SH_C0 + 0.5


def eval_sh(sh: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
    """Σ_k Y_k(d) · sh[:, k] for unit view directions ``dirs`` (N, 3); ``sh`` (N, K, 3), K ∈ {1, 4, 9, 16}.

    The real spherical harmonics of degree ≤ 3 with the sign convention of the 3DGS reference code."""
    K = sh.shape[1]
    out = SH_C0 * sh[:, 0]
    if K == 1:
        return out
    x, y, z = dirs[:, 0:1], dirs[:, 1:2], dirs[:, 2:3]
    out = out - _SH_C1 * y * sh[:, 1] + _SH_C1 * z * sh[:, 2] - _SH_C1 * x * sh[:, 3]
    if K == 4:
        return out
    xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
    out = (
        out
        + _SH_C2[0] * xy * sh[:, 4]
        + _SH_C2[1] * yz * sh[:, 5]
        + _SH_C2[2] * (2 * zz - xx - yy) * sh[:, 6]
        + _SH_C2[3] * xz * sh[:, 7]
        + _SH_C2[4] * (xx - yy) * sh[:, 8]
    )
    if K == 9:
        return out
    return (out + _SH_C3[0] * y * (3 * xx - yy) * sh[:, 9] + _SH_C3[1] * xy * z * sh[:, 10]
            + _SH_C3[2] * y * (4 * zz - xx - yy) * sh[:, 11] + _SH_C3[3] * z * (2 * zz - 3 * xx - 3 * yy) * sh[:, 12]
            + _SH_C3[4] * x * (4 * zz - xx - yy) * sh[:, 13] + _SH_C3[5] * z * (xx - yy) * sh[:, 14]
            + _SH_C3[6] * x * (xx - 3 * yy) * sh[:, 15])  # fmt: skip


def quat_to_rotmat(q: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (N, 3, 3) of quaternions ``q`` (N, 4) ``wxyz`` (normalised here)."""
    q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    w, x, y, z = q.unbind(-1)
    return torch.stack(
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
         2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
         2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], dim=-1,
    ).reshape(q.shape[:-1] + (3, 3))  # fmt: skip


def motion_basis(tau: float | torch.Tensor, num: int) -> torch.Tensor:
    """The 4D displacement basis at normalised times ``tau`` ∈ [−1, 1]: ``num`` functions that vanish at τ = 0.

    Terms, in order: τ, τ², then sin(πkτ), 1 − cos(πkτ) for k = 1, 2, … (so a few coefficients give smooth,
    bounded trajectories). Returns (…, num)."""
    t = torch.as_tensor(tau, dtype=torch.float32)
    terms = [t, t * t]
    k = 1
    while len(terms) < num:
        terms += [torch.sin(math.pi * k * t), 1 - torch.cos(math.pi * k * t)]
        k += 1
    return torch.stack(terms[:num], dim=-1)


@dataclass
class Gaussians:
    """A set of N Gaussians (raw parameters; see the module docstring)."""

    means: torch.Tensor
    log_scales: torch.Tensor
    quats: torch.Tensor
    opacity_logits: torch.Tensor
    sh: torch.Tensor
    features: torch.Tensor | None = None
    motion: torch.Tensor | None = None
    time_range: tuple[float, float] = (0.0, 1.0)
    extra: dict = field(default_factory=dict)
    group: torch.Tensor | None = None
    rigid: RigidMotion | None = None

    def __post_init__(self) -> None:
        n = self.means.shape[0]
        want = {"means": (n, 3), "log_scales": (n, 3), "quats": (n, 4), "opacity_logits": (n,)}
        for name, shape in want.items():
            if tuple(getattr(self, name).shape) != shape:
                raise ValueError(f"Gaussians.{name} must be {shape}, got {tuple(getattr(self, name).shape)}")
        if self.sh.ndim != 3 or self.sh.shape[0] != n or self.sh.shape[2] != 3 or self.sh.shape[1] not in (1, 4, 9, 16):
            raise ValueError(f"Gaussians.sh must be (N, 1|4|9|16, 3), got {tuple(self.sh.shape)}")
        if self.features is not None and (self.features.ndim != 2 or self.features.shape[0] != n):
            raise ValueError(f"Gaussians.features must be (N, F), got {tuple(self.features.shape)}")
        if self.motion is not None and (
            self.motion.ndim != 3 or self.motion.shape[0] != n or self.motion.shape[2] != 3
        ):
            raise ValueError(f"Gaussians.motion must be (N, B, 3), got {tuple(self.motion.shape)}")
        if (self.group is None) != (self.rigid is None):
            raise ValueError("Gaussians.group and Gaussians.rigid come together (rigid 4D motion)")
        if self.group is not None and self.rigid is not None:
            if tuple(self.group.shape) != (n,) or self.group.dtype != torch.int64:
                got = f"{tuple(self.group.shape)} {self.group.dtype}"
                raise ValueError(f"Gaussians.group must be (N,) int64, got {got}")
            if n and (int(self.group.min()) < 0 or int(self.group.max()) > self.rigid.num_groups):
                raise ValueError(f"Gaussians.group must be in 0..{self.rigid.num_groups}")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_points(
        cls,
        points: np.ndarray | torch.Tensor,
        colors: np.ndarray | torch.Tensor | None = None,
        *,
        sh_degree: int = 0,
        opacity: float = 0.5,
        scale: float | np.ndarray | None = None,
        num_features: int = 0,
        motion_terms: int = 0,
        time_range: tuple[float, float] = (0.0, 1.0),
    ) -> Gaussians:
        """Isotropic Gaussians at ``points`` (N, 3) with ``colors`` (N, 3, uint8 or [0, 1] floats).

        The scale of each is the mean distance to its 3 nearest neighbours (the 3DGS initialisation) unless
        ``scale`` (one value, or one per point) is given."""
        p = torch.as_tensor(np.asarray(points, dtype=np.float32))
        n = p.shape[0]
        if colors is None:
            rgb = torch.full((n, 3), 0.5)
        else:
            c = np.asarray(colors)
            rgb = torch.as_tensor(c.astype(np.float32) / (255.0 if c.dtype == np.uint8 else 1.0))
        if scale is not None:
            s = torch.as_tensor(np.broadcast_to(np.asarray(scale, dtype=np.float32), (n,)).copy())
        else:
            s = torch.as_tensor(knn_scale(p.numpy()), dtype=torch.float32)
        sh = torch.zeros(n, (sh_degree + 1) ** 2, 3)
        sh[:, 0] = rgb_to_sh(rgb.clamp(0, 1))
        o = min(max(opacity, 1e-4), 1 - 1e-4)
        return cls(
            means=p.clone(),
            log_scales=torch.log(s.clamp_min(1e-7))[:, None].repeat(1, 3),
            quats=torch.tensor([1.0, 0.0, 0.0, 0.0]).repeat(n, 1),
            opacity_logits=torch.full((n,), math.log(o / (1 - o))),
            sh=sh,
            features=torch.zeros(n, num_features) if num_features else None,
            motion=torch.zeros(n, motion_terms, 3) if motion_terms else None,
            time_range=time_range,
        )

    # ------------------------------------------------------------------ activated values
    def __len__(self) -> int:
        return int(self.means.shape[0])

    @property
    def sh_degree(self) -> int:
        return int(round(math.sqrt(self.sh.shape[1]))) - 1

    @property
    def dynamic(self) -> bool:
        return (self.motion is not None and self.motion.shape[1] > 0) or self.rigid is not None

    def scales(self) -> torch.Tensor:
        return torch.exp(self.log_scales)

    def rotations(self) -> torch.Tensor:
        return quat_to_rotmat(self.quats)

    def opacities(self) -> torch.Tensor:
        return torch.sigmoid(self.opacity_logits)

    def covariances(self, t: float | None = None) -> torch.Tensor:
        """World covariances Σ = R S Sᵀ Rᵀ, (N, 3, 3) (at time ``t``: turned with their rigid body)."""
        M = self.rotations() * self.scales()[:, None, :]
        cov = M @ M.transpose(1, 2)
        if t is not None and self.rigid is not None and self.group is not None:
            cov = self.rigid.rotate(cov, self.group, t)
        return cov

    def normalised_time(self, t: float) -> float:
        t0, t1 = self.time_range
        return 0.0 if t1 <= t0 else float(np.clip(2.0 * (t - t0) / (t1 - t0) - 1.0, -1.0, 1.0))

    def means_at(self, t: float | None) -> torch.Tensor:
        """Centres at time ``t`` (seconds); the static centres when the model has no motion or ``t`` is None."""
        if t is None or not self.dynamic:
            return self.means
        m = self.means
        if self.motion is not None and self.motion.shape[1] > 0:
            phi = motion_basis(self.normalised_time(t), self.motion.shape[1]).to(m)
            m = m + torch.einsum("b,nbc->nc", phi, self.motion)
        if self.rigid is not None and self.group is not None:
            m = self.rigid.move(m, self.group, t)
        return m

    def centres_at(self, t: float | None) -> np.ndarray:
        """:meth:`means_at` as a float64 numpy array (N, 3), without gradients (for the lifting's geometry)."""
        with torch.no_grad():
            return self.means_at(t).detach().cpu().numpy().astype(np.float64)

    def colors(self, camera_center: torch.Tensor | None = None, means: torch.Tensor | None = None) -> torch.Tensor:
        """RGB (N, 3) seen from ``camera_center`` (view-dependent when sh_degree > 0), clamped at 0."""
        if self.sh.shape[1] == 1 or camera_center is None:
            return (self.sh[:, 0] * SH_C0 + 0.5).clamp_min(0.0)
        m = self.means if means is None else means
        d = m - camera_center.to(m)
        d = d / d.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return (eval_sh(self.sh, d) + 0.5).clamp_min(0.0)

    # ------------------------------------------------------------------ bookkeeping
    TENSORS = ("means", "log_scales", "quats", "opacity_logits", "sh", "features", "motion", "group")

    def tensors(self) -> dict[str, torch.Tensor]:
        """The per-Gaussian tensors present (name → tensor; ``group`` is the one that is not a parameter)."""
        return {k: getattr(self, k) for k in self.TENSORS if getattr(self, k) is not None}

    def map(self, fn, rigid_fn=None) -> Gaussians:
        """A copy with ``fn`` applied to every per-Gaussian tensor (and ``rigid_fn`` to the rigid tracks')."""
        rigid = self.rigid if self.rigid is None or rigid_fn is None else self.rigid.map(rigid_fn)
        return replace(self, **{k: fn(v) for k, v in self.tensors().items()}, extra=dict(self.extra), rigid=rigid)

    def subset(self, index: torch.Tensor | np.ndarray) -> Gaussians:
        """The Gaussians selected by a boolean mask or an index array (detached copies; the same rigid tracks)."""
        idx = torch.as_tensor(np.asarray(index)) if not isinstance(index, torch.Tensor) else index
        return self.map(lambda v: v.detach()[idx.to(v.device)].clone(), lambda v: v.detach().clone())

    def detach(self) -> Gaussians:
        return self.map(lambda v: v.detach().clone(), lambda v: v.detach().clone())

    def to(self, device: str | torch.device) -> Gaussians:
        return self.map(lambda v: v.to(device), lambda v: v.to(device))

    def with_features(self, features: torch.Tensor | None) -> Gaussians:
        return replace(self, features=features, extra=dict(self.extra))

    def state_dict(self) -> dict:
        d: dict[str, Any] = {k: v.detach().cpu() for k, v in self.tensors().items()}
        d["time_range"] = tuple(self.time_range)
        if self.rigid is not None:
            d["rigid"] = self.rigid.state_dict()
        return d

    @classmethod
    def from_state_dict(cls, d: dict) -> Gaussians:
        names = {f.name for f in fields(cls)}
        rigid = d.get("rigid")
        return cls(
            **{k: v for k, v in d.items() if k in names and k not in ("time_range", "rigid")},
            time_range=tuple(d.get("time_range", (0.0, 1.0))),
            rigid=None if rigid is None else RigidMotion.from_state_dict(rigid),
        )


def knn_scale(points: np.ndarray, k: int = 3) -> np.ndarray:
    """Mean distance from each point to its ``k`` nearest neighbours (floored at 1e-4 of the cloud's extent)."""
    from scipy.spatial import cKDTree

    p = np.asarray(points, dtype=np.float64)
    if p.shape[0] < 2:
        return np.full(p.shape[0], 0.01)
    kk = min(k, p.shape[0] - 1)
    d, _ = cKDTree(p).query(p, k=kk + 1)
    s = np.asarray(d)[:, 1:].mean(axis=1)
    extent = float(np.linalg.norm(p.max(0) - p.min(0))) or 1.0
    return np.maximum(s, 1e-4 * extent)
