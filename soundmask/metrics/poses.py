"""Accuracy of estimated camera poses against ground truth, up to the similarity transform SfM cannot know.

Structure from motion recovers cameras up to a rotation, translation and scale of the whole model.
:func:`pose_errors` first finds the similarity ``x_gt ≈ s·R·x_est + t`` that best maps the estimated camera
centres onto the true ones (least squares: the rotation by :meth:`scipy.spatial.transform.Rotation.align_vectors`
on the centred positions, then the optimal scale and the translation), then reports per camera

* the **centre error** ``‖s·R·c_est + t − c_gt‖`` in ground-truth units (metres for our generator), and
* the **rotation error**: the angle of ``R·R_est · R_gtᵀ`` (camera-to-world rotations), in degrees.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from soundmask.data.types import Camera

__all__ = ["PoseErrors", "align_similarity", "pose_errors"]


@dataclass(frozen=True)
class PoseErrors:
    """Median / max centre error (GT units), median / max rotation error (degrees) over ``cameras`` matched by
    name, and the ``scale`` GT units per estimated unit."""

    cameras: int
    centre_median: float
    centre_max: float
    rotation_median_deg: float
    rotation_max_deg: float
    scale: float

    def to_dict(self) -> dict[str, float]:
        return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def align_similarity(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """``(s, R, t)`` minimising ``Σ ‖s·R·src_i + t − dst_i‖²`` for (N, 3) point sets (N ≥ 3, not collinear)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3 or len(src) < 3:
        raise ValueError(f"need two (N >= 3, 3) point sets of one shape, got {src.shape} and {dst.shape}")
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    rot, _ = Rotation.align_vectors(b, a)  # b ≈ R a
    R = rot.as_matrix()
    ra = a @ R.T
    denom = float((a**2).sum())
    s = float((b * ra).sum()) / denom if denom > 0 else 1.0
    return s, R, md - s * R @ ms


def pose_errors(estimated: Mapping[str, Camera], truth: Mapping[str, Camera]) -> PoseErrors:
    """Errors of the ``estimated`` cameras against ``truth`` over the names both have (see the module)."""
    names = [n for n in estimated if n in truth]
    if len(names) < 3:
        raise ValueError(f"{len(names)} camera(s) in common: at least 3 are needed to align the two")
    ce = np.array([estimated[n].center for n in names])
    cg = np.array([truth[n].center for n in names])
    s, R, t = align_similarity(ce, cg)
    centre = np.linalg.norm(ce @ R.T * s + t - cg, axis=1)
    rot = []
    for n in names:
        d = R @ estimated[n].camera_to_world[:3, :3] @ truth[n].camera_to_world[:3, :3].T
        rot.append(np.degrees(np.arccos(np.clip((np.trace(d) - 1) / 2, -1.0, 1.0))))
    r = np.asarray(rot)
    return PoseErrors(len(names), float(np.median(centre)), float(centre.max()), float(np.median(r)), float(r.max()), s)
