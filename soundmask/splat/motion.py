"""Rigid motion of groups of Gaussians over time (the object-aware 4D motion model).

A moving object is a rigid group of Gaussians: group ``k`` (1-based; 0 is the static background, which never
moves) has one pose per *knot* time — a translation and a rotation (axis-angle, about the group's pivot) —
and its pose at any time t is a cubic interpolation of the knots (Hermite, tangents by finite differences
over the neighbouring knots, i.e. Catmull–Rom on non-uniform times; the first and last poses hold outside the
knot range). Interpolation is linear in the knot values, so a pose at t is ``Σ_j w_j(t) · knot_j``
(:func:`knot_weights`), exact at the knots, and every knot gets its gradient through the weights.

This is per-component rigid motion in the sense of Shape of Motion (Wang et al. 2024) with one SE(3) track
per object and a hard assignment instead of a blend: it keeps the background exactly still, and an object's
Gaussians move together, so the 4D grouping is the motion grouping.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["RigidMotion", "axis_angle_to_rotmat", "knot_weights"]


def knot_weights(times: torch.Tensor, t: float) -> torch.Tensor:
    """Weights (F,) of the knots at ``times`` (F,) increasing whose weighted sum is the cubic Hermite
    interpolation at ``t`` (Catmull–Rom tangents on non-uniform times; one-sided at the ends; constant outside)."""
    F = int(times.shape[0])
    w = torch.zeros(F, dtype=torch.float64)
    if F == 1:
        w[0] = 1.0
        return w
    ts = times.detach().cpu().double().numpy()
    if t <= ts[0]:
        w[0] = 1.0
        return w
    if t >= ts[-1]:
        w[-1] = 1.0
        return w
    i = int(np.searchsorted(ts, t, side="right") - 1)  # ts[i] <= t < ts[i + 1]
    h = ts[i + 1] - ts[i]
    s = (t - ts[i]) / h
    h00, h10, h01, h11 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s, -2 * s**3 + 3 * s**2, s**3 - s**2

    def tangent(j: int) -> dict[int, float]:  # d pose / d time at knot j as weights of knots
        lo, hi = max(j - 1, 0), min(j + 1, F - 1)
        d = ts[hi] - ts[lo]
        return {hi: 1.0 / d, lo: -1.0 / d}

    w[i] += h00
    w[i + 1] += h01
    for j, c in tangent(i).items():
        w[j] += h10 * h * c
    for j, c in tangent(i + 1).items():
        w[j] += h11 * h * c
    return w


def axis_angle_to_rotmat(v: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (..., 3, 3) of axis-angle vectors ``v`` (..., 3) (Rodrigues; smooth at 0)."""
    theta2 = (v * v).sum(-1, keepdim=True)[..., None]  # (..., 1, 1)
    theta = torch.sqrt(theta2.clamp_min(1e-24))
    small = theta2 < 1e-8
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta2.clamp_min(1e-24))
    x, y, z = v.unbind(-1)
    zero = torch.zeros_like(x)
    K = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(v.shape[:-1] + (3, 3))
    eye = torch.eye(3, dtype=v.dtype, device=v.device).expand_as(K)
    return eye + a * K + b * (K @ K)


@dataclass
class RigidMotion:
    """The poses of K rigid groups at F knot times: ``translations`` and ``rotations`` (axis-angle) (K, F, 3),
    ``pivots`` (K, 3) the centres the rotations turn about, ``times`` (F,) seconds, increasing."""

    times: torch.Tensor
    translations: torch.Tensor
    rotations: torch.Tensor
    pivots: torch.Tensor

    def __post_init__(self) -> None:
        K, F = int(self.pivots.shape[0]), int(self.times.shape[0])
        for name in ("translations", "rotations"):
            if tuple(getattr(self, name).shape) != (K, F, 3):
                raise ValueError(f"RigidMotion.{name} must be ({K}, {F}, 3), got {tuple(getattr(self, name).shape)}")
        if F < 1 or (F > 1 and not bool((self.times[1:] > self.times[:-1]).all())):
            raise ValueError("RigidMotion.times must be one or more increasing times")

    @property
    def num_groups(self) -> int:
        return int(self.pivots.shape[0])

    def pose(self, t: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(R (K, 3, 3), T (K, 3)) at time ``t``: a point x of group k moves to R_k (x − p_k) + p_k + T_k."""
        w = knot_weights(self.times, float(t)).to(self.translations)
        T = torch.einsum("f,kfc->kc", w, self.translations)
        R = axis_angle_to_rotmat(torch.einsum("f,kfc->kc", w, self.rotations))
        return R, T

    def move(self, means: torch.Tensor, group: torch.Tensor, t: float) -> torch.Tensor:
        """``means`` (N, 3) of Gaussians in groups ``group`` (N,) (0 = static: returned unchanged) at time ``t``."""
        R, T = self.pose(t)
        k = (group - 1).clamp_min(0)
        moved = torch.einsum("nij,nj->ni", R[k], means - self.pivots[k]) + self.pivots[k] + T[k]
        return torch.where((group > 0)[:, None], moved, means)

    def rotate(self, cov: torch.Tensor, group: torch.Tensor, t: float) -> torch.Tensor:
        """Covariances (N, 3, 3) turned with their group's rotation at ``t`` (static ones unchanged)."""
        R, _ = self.pose(t)
        Rn = R[(group - 1).clamp_min(0)]
        return torch.where((group > 0)[:, None, None], Rn @ cov @ Rn.transpose(1, 2), cov)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"times": self.times, "translations": self.translations, "rotations": self.rotations,
                "pivots": self.pivots}  # fmt: skip

    def map(self, fn) -> RigidMotion:
        return RigidMotion(**{k: fn(v) for k, v in self.tensors().items()})

    def state_dict(self) -> dict:
        return {k: v.detach().cpu() for k, v in self.tensors().items()}

    @classmethod
    def from_state_dict(cls, d: dict) -> RigidMotion:
        return cls(**{k: torch.as_tensor(d[k], dtype=torch.float32) for k in ("times", "translations", "rotations",
                                                                              "pivots")})  # fmt: skip
