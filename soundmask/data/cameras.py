"""Cameras from files and novel cameras: :func:`read_camera_json` and :func:`orbit_cameras`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from soundmask.data.types import Camera, Intrinsics, look_at
from soundmask.errors import DataError

__all__ = ["orbit_cameras", "read_camera_json"]


def read_camera_json(path: str | Path) -> Any:
    """A camera from JSON: ``{"intrinsics": {"fx", "fy", "cx", "cy"}, "width", "height", "camera_to_world": 4×4}``."""
    p = Path(path)
    if not p.is_file():
        raise DataError("camera file not found", p, "check the path")
    try:
        d = json.loads(p.read_text())
        k = d["intrinsics"]
        intr = Intrinsics(
            float(k["fx"]), float(k["fy"]), float(k["cx"]), float(k["cy"]), int(d["width"]), int(d["height"])
        )
        cam = Camera(intr, np.asarray(d["camera_to_world"], dtype=np.float64), name=p.stem)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(
            f"not a camera file ({type(e).__name__}: {e})",
            p,
            'write {"intrinsics": {"fx":..,"fy":..,"cx":..,"cy":..}, "width":.., "height":.., '
            '"camera_to_world": [[4x4]]}',
        ) from e
    if not np.isfinite(cam.camera_to_world).all():
        raise DataError("camera_to_world has non-finite values", p)
    return cam


def orbit_cameras(cameras: list[Any], count: int) -> list[Any]:
    """``count`` novel cameras on a circle around the point the given cameras look at (least-squares meeting
    point of their optical axes), at their mean distance and height, between the input cameras' angles."""
    C = np.stack([c.center for c in cameras])
    D = np.stack([c.camera_to_world[:3, 2] for c in cameras])
    A = np.zeros((3, 3))
    b = np.zeros(3)
    for c, d in zip(C, D, strict=True):
        P = np.eye(3) - np.outer(d, d)
        A += P
        b += P @ c
    target = np.linalg.lstsq(A, b, rcond=None)[0]
    up = -np.mean([c.camera_to_world[:3, 1] for c in cameras], axis=0)
    up /= max(np.linalg.norm(up), 1e-12)
    rel = C - target
    h = float(np.mean(rel @ up))
    flat = rel - np.outer(rel @ up, up)
    r = float(np.mean(np.linalg.norm(flat, axis=1)))
    e1 = flat[0] / max(np.linalg.norm(flat[0]), 1e-12)
    e2 = np.cross(up, e1)
    out = []
    for k in range(count):
        ang = 2 * np.pi * (k + 0.5) / max(count, 1)
        eye = target + h * up + r * (np.cos(ang) * e1 + np.sin(ang) * e2)
        out.append(Camera(cameras[0].intrinsics, look_at(eye, target, up), name=f"orbit_{k:03d}"))
    return out
