"""Independent reference for the renderer and the generator: ray casting through pixel centres
(trimesh + embreex when installed, else a numpy Möller–Trumbore), and silhouette pixels."""

from __future__ import annotations

import numpy as np

from soundmask.data.types import Camera
from soundmask.synth import meshes as M


def _moller_trumbore(origin: np.ndarray, dirs: np.ndarray, tris: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest hit (t, triangle index or -1) of rays origin + t·dirs, float64, chunked over triangles."""
    best_t = np.full(len(dirs), np.inf)
    best_i = np.full(len(dirs), -1)
    for s in range(0, len(tris), 256):
        tri = tris[s : s + 256]
        v0, e1, e2 = tri[:, 0], tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
        p = np.cross(dirs[:, None, :], e2[None])  # (R, T, 3)
        det = np.einsum("rtk,tk->rt", p, e1)
        ok = np.abs(det) > 1e-15
        inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
        tv = origin - v0  # (T, 3)
        u = np.einsum("rtk,tk->rt", p, tv) * inv
        q = np.cross(tv, e1)  # (T, 3)
        v = np.einsum("rk,tk->rt", dirs, q) * inv
        t = np.einsum("tk,tk->t", e2, q)[None] * inv
        hit = ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 1e-9)
        t = np.where(hit, t, np.inf)
        j = np.argmin(t, axis=1)
        tj = t[np.arange(len(dirs)), j]
        better = tj < best_t
        best_t[better], best_i[better] = tj[better], s + j[better]
    return best_t, best_i


def raycast(instances: list[M.Instance], camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """ids (H, W) and camera-z depth (H, W, inf = miss) of the ray through every pixel centre."""
    K = camera.intrinsics
    # the float32 vertices the renderer sees, placed in float64
    tris = np.concatenate(
        [
            (inst.mesh.vertices.astype(np.float64) @ inst.model[:3, :3].T + inst.model[:3, 3])[inst.mesh.faces]
            for inst in instances
        ]
    )
    tri_id = np.concatenate([np.full(inst.mesh.num_faces, inst.object_id) for inst in instances])
    u, v = np.meshgrid(np.arange(K.width) + 0.5, np.arange(K.height) + 0.5)
    dc = np.stack([(u - K.cx) / K.fx, (v - K.cy) / K.fy, np.ones_like(u)], -1).reshape(-1, 3)
    c2w = camera.camera_to_world
    dirs = dc @ c2w[:3, :3].T  # camera z = 1 per unit t, so t is the camera-frame depth
    origin = c2w[:3, 3]
    try:
        from trimesh import Trimesh
        from trimesh.ray.ray_pyembree import RayMeshIntersector  # needs embreex

        mesh = Trimesh(tris.reshape(-1, 3), np.arange(len(tris) * 3).reshape(-1, 3), process=False)
        idx, ray, loc = RayMeshIntersector(mesh).intersects_id(
            np.broadcast_to(origin, dirs.shape),
            dirs,
            multiple_hits=False,
            return_locations=True,
        )
        t = np.full(len(dirs), np.inf)
        tri = np.full(len(dirs), -1)
        t[ray] = (loc - origin) @ c2w[:3, 2]
        tri[ray] = idx
    except ImportError:
        t, tri = _moller_trumbore(origin, dirs, tris)
    ids = np.where(tri >= 0, tri_id[np.maximum(tri, 0)], 0)
    return ids.reshape(K.height, K.width), t.reshape(K.height, K.width)


def boundary(ids: np.ndarray, hit: np.ndarray) -> np.ndarray:
    """Silhouette pixels: an 8-neighbour shows another id, or the room where this is empty (or vice versa)."""
    ids = np.where(hit, ids, -1)
    p = np.pad(ids, 1, mode="edge")
    b = np.zeros(ids.shape, bool)
    H, W = ids.shape
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            b |= p[1 + dy : 1 + dy + H, 1 + dx : 1 + dx + W] != ids
    return b
