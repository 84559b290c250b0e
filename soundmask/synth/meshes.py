"""Triangle meshes, placed instances and procedural primitives for the scene generator.

World convention (the whole ``synth`` package): **right-handed, z up, metres**; the floor is the plane
z = 0. Objects stand on the floor with their lowest point at z = 0 (:func:`on_floor`). Cameras follow
:class:`soundmask.data.types.Camera` (OpenCV: x right, y down, z forward in the camera frame).

A :class:`Mesh` is plain numpy data (no GL, no trimesh needed): vertices, triangles, a colour per vertex
and, optionally, smooth normals and a texture. Textures follow OBJ/OpenGL UV conventions: ``uvs`` has
u to the right and v *up* (v = 0 is the bottom row of ``texture``, which is stored as an ordinary image,
row 0 on top). Several textures share one ``texture`` image as an atlas: ``uv_rects[i] = (u0, v0, du,
dv)`` is the atlas tile of vertex i, sampled at ``(u0, v0) + fract(uv) * (du, dv)`` so that repeating
UVs still work; ``du == 0`` marks an untextured vertex. The rendered colour is the vertex colour times
the texture sample (when textured).

Procedural primitives (:func:`box`, :func:`cylinder`, :func:`cone`, :func:`sphere`, :func:`capsule`,
:func:`composite`) are the fallback when no furniture package is installed and what the fast tests use.
Primitives are centred at the origin except where noted; :func:`on_floor` stands them on the floor.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

__all__ = [
    "Instance",
    "Mesh",
    "as_color",
    "box",
    "capsule",
    "composite",
    "concatenate",
    "cone",
    "cylinder",
    "normalized",
    "on_floor",
    "rotation_z",
    "scaling",
    "sphere",
    "translation",
]

ColorLike = Sequence[float] | Sequence[int] | np.ndarray | str

_NAMED_COLORS: dict[str, tuple[int, int, int]] = {
    "white": (235, 235, 235),
    "grey": (128, 128, 128),
    "gray": (128, 128, 128),
    "black": (25, 25, 25),
    "red": (200, 40, 40),
    "green": (40, 160, 60),
    "blue": (40, 70, 200),
    "yellow": (230, 200, 40),
    "orange": (235, 130, 30),
    "brown": (120, 75, 40),
    "wood": (160, 110, 60),
    "skin": (225, 180, 150),
    "purple": (130, 60, 170),
    "cyan": (40, 190, 200),
}


def as_color(color: ColorLike) -> np.ndarray:
    """A colour name, an RGB(A) triple in [0, 1] (floats) or 0–255 (ints) → uint8 (3,)."""
    if isinstance(color, str):
        try:
            return np.array(_NAMED_COLORS[color.lower()], dtype=np.uint8)
        except KeyError:
            raise ValueError(f"unknown colour {color!r}; known: {sorted(_NAMED_COLORS)}") from None
    c = np.asarray(color)
    if c.shape not in ((3,), (4,)):
        raise ValueError(f"a colour is 3 or 4 numbers, got shape {c.shape}")
    c = c[:3]
    if np.issubdtype(c.dtype, np.floating):
        if c.max(initial=0.0) <= 1.0:
            c = np.round(np.clip(c, 0.0, 1.0) * 255.0)
        return np.clip(c, 0, 255).astype(np.uint8)
    return np.clip(c, 0, 255).astype(np.uint8)


@dataclass(eq=False)
class Mesh:
    """A triangle mesh in its own model frame (metres, z up). Compared and hashed by identity.

    vertices (V, 3) float32; faces (F, 3) int32 (any winding: the renderer draws both sides);
    colors (V, 3) uint8 RGB (defaults to light grey); normals (V, 3) float32 unit or None (flat shading);
    uvs (V, 2) float32, texture (H, W, 3|4) uint8 and uv_rects (V, 4) float32 — see the module docstring.
    """

    vertices: np.ndarray
    faces: np.ndarray
    colors: np.ndarray | None = None
    normals: np.ndarray | None = None
    uvs: np.ndarray | None = None
    texture: np.ndarray | None = None
    uv_rects: np.ndarray | None = None
    name: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        v = np.ascontiguousarray(self.vertices, dtype=np.float32).reshape(-1, 3)
        f = np.ascontiguousarray(self.faces, dtype=np.int32).reshape(-1, 3)
        if len(f) and (f.min() < 0 or f.max() >= len(v)):
            raise ValueError(f"Mesh {self.name!r}: face indices out of range [0, {len(v)})")
        self.vertices, self.faces = v, f
        n = len(v)
        if self.colors is None:
            self.colors = np.full((n, 3), 200, dtype=np.uint8)
        else:
            c = np.asarray(self.colors)
            if c.ndim == 1:
                c = np.broadcast_to(as_color(c), (n, 3))
            if c.shape[-1] == 4:
                c = c[:, :3]
            if np.issubdtype(c.dtype, np.floating):
                c = np.round(np.clip(c, 0.0, 1.0) * 255.0)
            self.colors = np.ascontiguousarray(c, dtype=np.uint8)
            if self.colors.shape != (n, 3):
                raise ValueError(f"Mesh {self.name!r}: colors must be ({n}, 3), got {self.colors.shape}")
        if self.normals is not None:
            nn = np.ascontiguousarray(self.normals, dtype=np.float32).reshape(-1, 3)
            if nn.shape != (n, 3):
                raise ValueError(f"Mesh {self.name!r}: normals must be ({n}, 3), got {nn.shape}")
            self.normals = nn
        if (self.uvs is None) != (self.texture is None):
            raise ValueError(f"Mesh {self.name!r}: uvs and texture go together")
        if self.uvs is not None:
            uv = np.ascontiguousarray(self.uvs, dtype=np.float32).reshape(-1, 2)
            if uv.shape != (n, 2):
                raise ValueError(f"Mesh {self.name!r}: uvs must be ({n}, 2), got {uv.shape}")
            self.uvs = uv
            tex = np.asarray(self.texture)
            if tex.ndim == 2:
                tex = np.repeat(tex[..., None], 3, axis=-1)
            if tex.ndim != 3 or tex.shape[-1] not in (3, 4) or tex.dtype != np.uint8:
                raise ValueError(f"Mesh {self.name!r}: texture must be uint8 (H, W, 3|4), got {tex.dtype} {tex.shape}")
            self.texture = np.ascontiguousarray(tex[..., :3])
            if self.uv_rects is None:
                self.uv_rects = np.tile(np.array([0, 0, 1, 1], dtype=np.float32), (n, 1))
            r = np.ascontiguousarray(self.uv_rects, dtype=np.float32).reshape(-1, 4)
            if r.shape != (n, 4):
                raise ValueError(f"Mesh {self.name!r}: uv_rects must be ({n}, 4), got {r.shape}")
            self.uv_rects = r
        elif self.uv_rects is not None:
            raise ValueError(f"Mesh {self.name!r}: uv_rects needs uvs and a texture")

    # --- geometry -------------------------------------------------------------------------------
    @property
    def num_vertices(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def num_faces(self) -> int:
        return int(self.faces.shape[0])

    @property
    def bounds(self) -> np.ndarray:
        """(2, 3): min and max corner (zeros for an empty mesh)."""
        if self.num_vertices == 0:
            return np.zeros((2, 3))
        v = self.vertices.astype(np.float64)
        return np.stack([v.min(axis=0), v.max(axis=0)])

    @property
    def extents(self) -> np.ndarray:
        """(3,): size along x, y, z."""
        b = self.bounds
        return b[1] - b[0]

    @property
    def textured(self) -> bool:
        return self.texture is not None

    def face_normals(self) -> np.ndarray:
        """(F, 3) unit normals of the faces as wound (zero for degenerate faces)."""
        tri = self.vertices[self.faces].astype(np.float64)
        n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        ln = np.linalg.norm(n, axis=1, keepdims=True)
        return np.divide(n, ln, out=np.zeros_like(n), where=ln > 0)

    def transformed(self, matrix: np.ndarray) -> Mesh:
        """A copy with vertices (and normals) mapped by the 4×4 affine ``matrix``."""
        m = np.asarray(matrix, dtype=np.float64)
        if m.shape != (4, 4):
            raise ValueError(f"matrix must be 4x4, got {m.shape}")
        v = self.vertices.astype(np.float64) @ m[:3, :3].T + m[:3, 3]
        normals = None
        if self.normals is not None:
            nm = np.linalg.inv(m[:3, :3]).T
            n = self.normals.astype(np.float64) @ nm.T
            ln = np.linalg.norm(n, axis=1, keepdims=True)
            normals = np.divide(n, ln, out=np.zeros_like(n), where=ln > 0)
        faces = self.faces
        return replace(self, vertices=v, faces=faces, normals=normals, meta=dict(self.meta))

    def recolored(self, color: ColorLike) -> Mesh:
        """A copy with every vertex coloured ``color`` (textures, if any, are kept and modulated)."""
        return replace(
            self,
            colors=np.broadcast_to(as_color(color), (self.num_vertices, 3)).copy(),
            meta=dict(self.meta),
        )

    def to_trimesh(self):  # pragma: no cover - thin adapter
        """A ``trimesh.Trimesh`` with the same geometry (needs trimesh; colours as vertex colours)."""
        import trimesh

        return trimesh.Trimesh(self.vertices, self.faces, vertex_colors=self.colors, process=False)


@dataclass(eq=False)
class Instance:
    """A mesh placed in the world: ``model`` (4×4) maps mesh coordinates to world metres.

    ``object_id`` ≥ 1 labels an object in the id image; 0 is the background / room (walls, floor).
    """

    mesh: Mesh
    object_id: int = 0
    model: np.ndarray = field(default_factory=lambda: np.eye(4))

    def __post_init__(self) -> None:
        m = np.asarray(self.model, dtype=np.float64)
        if m.shape != (4, 4):
            raise ValueError(f"Instance.model must be 4x4, got {m.shape}")
        self.model = m
        if int(self.object_id) != self.object_id or self.object_id < 0:
            raise ValueError(f"Instance.object_id must be an int >= 0, got {self.object_id!r}")
        self.object_id = int(self.object_id)

    def world_mesh(self) -> Mesh:
        """The mesh with the model matrix applied (for ray casting, bounds, collisions)."""
        return self.mesh.transformed(self.model)

    @property
    def world_bounds(self) -> np.ndarray:
        b = self.mesh.bounds
        corners = np.array(list(itertools.product(*b.T)))
        w = corners @ self.model[:3, :3].T + self.model[:3, 3]
        return np.stack([w.min(axis=0), w.max(axis=0)])


# --- transforms -------------------------------------------------------------------------------------


def translation(t: Sequence[float] | np.ndarray) -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = np.asarray(t, dtype=np.float64)
    return m


def rotation_z(angle: float) -> np.ndarray:
    """Rotation about the world up axis by ``angle`` radians (counter-clockwise seen from above)."""
    c, s = np.cos(angle), np.sin(angle)
    m = np.eye(4)
    m[:2, :2] = [[c, -s], [s, c]]
    return m


def scaling(s: float | Sequence[float]) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = np.diag(np.broadcast_to(np.asarray(s, dtype=np.float64), (3,)))
    return m


# --- primitives -------------------------------------------------------------------------------------


def _solid(vertices, faces, normals, color: ColorLike, name: str) -> Mesh:
    v = np.asarray(vertices, dtype=np.float64)
    return Mesh(
        v,
        faces,
        colors=np.broadcast_to(as_color(color), (len(v), 3)).copy(),
        normals=normals,
        name=name,
    )


def box(
    extents: Sequence[float] = (1.0, 1.0, 1.0),
    color: ColorLike = "grey",
    name: str = "box",
) -> Mesh:
    """An axis-aligned box centred at the origin, 24 vertices (flat normals per side)."""
    e = np.broadcast_to(np.asarray(extents, dtype=np.float64), (3,)) / 2.0
    verts: list[np.ndarray] = []
    norms: list[np.ndarray] = []
    faces: list[list[int]] = []
    for axis in range(3):
        for sign in (-1.0, 1.0):
            u, w = [a for a in range(3) if a != axis]
            base = len(verts)
            for cu, cw in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
                p = np.zeros(3)
                p[axis], p[u], p[w] = sign * e[axis], cu * e[u], cw * e[w]
                verts.append(p)
                n = np.zeros(3)
                n[axis] = sign
                norms.append(n)
            quad = [[0, 1, 2], [0, 2, 3]]
            # outward winding: (u, w, axis) right-handed when axis order is cyclic
            cyclic = (u, w) == ((axis + 1) % 3, (axis + 2) % 3)
            if (sign > 0) != cyclic:
                quad = [[0, 2, 1], [0, 3, 2]]
            faces += [[base + i for i in q] for q in quad]
    return _solid(verts, faces, norms, color, name)


def _revolve(
    profile: np.ndarray, profile_normals: np.ndarray, sections: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Revolve a (P, 2) (r, z) polyline about the z axis; rings of ``sections`` + 1 vertices (seam duplicated)."""
    th = np.linspace(0.0, 2.0 * np.pi, sections + 1)
    c, s = np.cos(th), np.sin(th)
    r, z = profile[:, 0:1], profile[:, 1:2]
    verts = np.stack([r * c, r * s, np.broadcast_to(z, (len(profile), sections + 1))], -1)
    nr, nz = profile_normals[:, 0:1], profile_normals[:, 1:2]
    norms = np.stack([nr * c, nr * s, np.broadcast_to(nz, (len(profile), sections + 1))], -1)
    ring = sections + 1
    faces = []
    for i in range(len(profile) - 1):
        a = i * ring + np.arange(sections)
        b = a + ring
        faces.append(np.stack([a, a + 1, b + 1], 1))
        faces.append(np.stack([a, b + 1, b], 1))
    return verts.reshape(-1, 3), norms.reshape(-1, 3), np.concatenate(faces)


def _disc(radius: float, z: float, up: bool, sections: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    th = np.linspace(0.0, 2.0 * np.pi, sections, endpoint=False)
    rim = np.stack([radius * np.cos(th), radius * np.sin(th), np.full(sections, z)], 1)
    verts = np.concatenate([[[0.0, 0.0, z]], rim])
    norms = np.tile([0.0, 0.0, 1.0 if up else -1.0], (sections + 1, 1))
    i = np.arange(sections)
    j = (i + 1) % sections
    faces = (
        np.stack([np.zeros(sections, int), 1 + i, 1 + j], 1)
        if up
        else np.stack([np.zeros(sections, int), 1 + j, 1 + i], 1)
    )
    return verts, norms, faces


def _nondegenerate(v: np.ndarray, f: np.ndarray, scale: float) -> np.ndarray:
    """Drop the zero-area triangles (at poles and apexes)."""
    tri = v[f]
    area = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    return f[area > 1e-12 * scale * scale]


def _merge(
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    vs, ns, fs, off = [], [], [], 0
    for v, n, f in parts:
        vs.append(v)
        ns.append(n)
        fs.append(np.asarray(f) + off)
        off += len(v)
    return np.concatenate(vs), np.concatenate(ns), np.concatenate(fs)


def cylinder(
    radius: float = 0.5,
    height: float = 1.0,
    sections: int = 32,
    color: ColorLike = "grey",
    name: str = "cylinder",
) -> Mesh:
    """A closed cylinder along z, centred at the origin (smooth side, flat caps)."""
    h = height / 2.0
    side = _revolve(
        np.array([[radius, -h], [radius, h]]),
        np.array([[1.0, 0.0], [1.0, 0.0]]),
        sections,
    )
    v, n, f = _merge([side, _disc(radius, h, True, sections), _disc(radius, -h, False, sections)])
    return _solid(v, f, n, color, name)


def cone(
    radius: float = 0.5,
    height: float = 1.0,
    sections: int = 32,
    color: ColorLike = "grey",
    name: str = "cone",
) -> Mesh:
    """A closed cone along z: base disc at z = −height/2, apex at +height/2."""
    h = height / 2.0
    ln = np.hypot(radius, height)
    nrm = np.array([height / ln, radius / ln])
    side = _revolve(np.array([[radius, -h], [0.0, h]]), np.array([nrm, nrm]), sections)
    v, n, f = _merge([side, _disc(radius, -h, False, sections)])
    return _solid(v, _nondegenerate(v, f, radius), n, color, name)


def sphere(
    radius: float = 0.5,
    sections: int = 32,
    rings: int = 16,
    color: ColorLike = "grey",
    name: str = "sphere",
) -> Mesh:
    """A UV sphere centred at the origin (smooth normals)."""
    phi = np.linspace(-np.pi / 2, np.pi / 2, rings + 1)
    prof_n = np.stack([np.cos(phi), np.sin(phi)], 1)
    v, n, f = _revolve(prof_n * radius, prof_n, sections)
    return _solid(v, _nondegenerate(v, f, radius), n, color, name)


def capsule(
    radius: float = 0.25,
    height: float = 1.0,
    sections: int = 24,
    rings: int = 8,
    color: ColorLike = "grey",
    name: str = "capsule",
) -> Mesh:
    """A capsule along z with total length ``height`` (≥ 2·radius), centred at the origin."""
    h = max(height / 2.0 - radius, 0.0)
    phi_lo = np.linspace(-np.pi / 2, 0.0, rings + 1)
    phi_hi = np.linspace(0.0, np.pi / 2, rings + 1)
    n_lo = np.stack([np.cos(phi_lo), np.sin(phi_lo)], 1)
    n_hi = np.stack([np.cos(phi_hi), np.sin(phi_hi)], 1)
    prof = np.concatenate([n_lo * radius - [0, h], n_hi * radius + [0, h]])
    prof_n = np.concatenate([n_lo, n_hi])
    v, n, f = _revolve(prof, prof_n, sections)
    return _solid(v, _nondegenerate(v, f, radius), n, color, name)


def concatenate(meshes: Sequence[Mesh], name: str = "") -> Mesh:
    """One mesh from several (at most one of them textured; normals kept only if all have them)."""
    meshes = [m for m in meshes if m.num_vertices]
    if not meshes:
        return Mesh(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int32), name=name)
    textured = [m for m in meshes if m.textured]
    if len(textured) > 1:
        raise ValueError("concatenate: at most one textured mesh (build an atlas first)")
    offs = np.cumsum([0] + [m.num_vertices for m in meshes])
    v = np.concatenate([m.vertices for m in meshes])
    f = np.concatenate([m.faces + o for m, o in zip(meshes, offs[:-1], strict=True)])
    c = np.concatenate([m.colors for m in meshes])
    n = np.concatenate([m.normals for m in meshes]) if all(m.normals is not None for m in meshes) else None
    uvs = tex = rects = None
    if textured:
        tex = textured[0].texture
        uvs = np.concatenate([m.uvs if m.textured else np.zeros((m.num_vertices, 2), np.float32) for m in meshes])
        rects = np.concatenate(
            [m.uv_rects if m.textured else np.zeros((m.num_vertices, 4), np.float32) for m in meshes]
        )
    return Mesh(
        v,
        f,
        colors=c,
        normals=n,
        uvs=uvs,
        texture=tex,
        uv_rects=rects,
        name=name or meshes[0].name,
    )


def composite(parts: Sequence[tuple[Mesh, np.ndarray | Sequence[float]]], name: str = "composite") -> Mesh:
    """Merge primitives, each placed by a 4×4 matrix or a translation (x, y, z)."""
    placed = []
    for mesh, where in parts:
        w = np.asarray(where, dtype=np.float64)
        placed.append(mesh.transformed(w if w.shape == (4, 4) else translation(w)))
    return concatenate(placed, name=name)


# --- normalisation ----------------------------------------------------------------------------------


def normalized(
    mesh: Mesh,
    size: float,
    along: Literal["longest", "height", "width", "depth"] = "longest",
) -> Mesh:
    """Uniformly rescale ``mesh`` so that its bounding box measures ``size`` metres ``along``
    the longest side, the height (z), the width (x) or the depth (y); then stand it on the floor."""
    ext = mesh.extents
    cur = {"longest": ext.max(), "width": ext[0], "depth": ext[1], "height": ext[2]}[along]
    if not cur > 0:
        raise ValueError(f"normalized: mesh {mesh.name!r} has zero {along}")
    return on_floor(mesh.transformed(scaling(size / cur)))


def on_floor(mesh: Mesh, center: bool = True) -> Mesh:
    """Translate ``mesh`` so that its lowest point is at z = 0 (and, with ``center``, its bounding-box
    centre is above the origin, x = y = 0)."""
    b = mesh.bounds
    t = (
        np.array([-(b[0, 0] + b[1, 0]) / 2, -(b[0, 1] + b[1, 1]) / 2, -b[0, 2]])
        if center
        else np.array([0, 0, -b[0, 2]])
    )
    return mesh.transformed(translation(t))
