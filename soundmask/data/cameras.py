"""Cameras from files and novel cameras: :func:`read_camera_json`, :func:`scene_cameras` (a scene folder's training
cameras), :func:`camera_to_dict` / :func:`camera_from_dict` (plain-type records) and :func:`orbit_cameras`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from soundmask.constants import TEST_EVERY
from soundmask.data.types import Camera, Intrinsics, look_at
from soundmask.errors import DataError

__all__ = ["camera_from_dict", "camera_to_dict", "orbit_cameras", "read_camera_json", "scene_cameras"]


def camera_to_dict(camera: Camera) -> dict[str, Any]:
    """``{"name", "intrinsics": {"fx", "fy", "cx", "cy"}, "width", "height", "camera_to_world": 4×4 lists}`` (plain
    types: JSON, or a ``SoundScene``'s meta)."""
    k = camera.intrinsics
    return {
        "name": camera.name,
        "intrinsics": k.to_dict(),
        "width": k.width,
        "height": k.height,
        "camera_to_world": np.asarray(camera.camera_to_world, dtype=np.float64).tolist(),
    }


def camera_from_dict(d: Any, name: str | None = None) -> Camera:
    """The inverse of :func:`camera_to_dict`, named ``name`` when given (else the record's name); KeyError, TypeError
    or ValueError on a malformed record."""
    k = d["intrinsics"]
    intr = Intrinsics(float(k["fx"]), float(k["fy"]), float(k["cx"]), float(k["cy"]), int(d["width"]), int(d["height"]))
    return Camera(
        intr, np.asarray(d["camera_to_world"], dtype=np.float64), name=str(d.get("name", "")) if name is None else name
    )


def scene_cameras(path: str | Path, test_every: int = TEST_EVERY) -> list[Camera]:
    """The training cameras (every frame but each ``test_every``-th, the held-out protocol) of a posed scene folder:
    ours (``scene.json``) or 3DAVS-S34-O7 (COLMAP ``sparse/0``). Pixel data is not read."""
    from soundmask.data.layout import detect_layout
    from soundmask.data.scene import read_scene
    from soundmask.data.threedavs import read_3davs_scene

    layout = detect_layout(path)
    if layout not in ("scene", "3davs"):
        raise DataError(f"expected a posed scene (scene.json or 3DAVS input/ + sparse/0/), found {layout}", path)
    scene = read_scene(path) if layout == "scene" else read_3davs_scene(path)
    held = set(scene.test_views(test_every))
    return [f.camera for i, f in enumerate(scene.frames) if i not in held]


def read_camera_json(path: str | Path) -> Any:
    """A camera from JSON: ``{"intrinsics": {"fx", "fy", "cx", "cy"}, "width", "height", "camera_to_world": 4×4}``."""
    p = Path(path)
    if not p.is_file():
        raise DataError("camera file not found", p, "check the path")
    try:
        cam = camera_from_dict(json.loads(p.read_text()), name=p.stem)
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
