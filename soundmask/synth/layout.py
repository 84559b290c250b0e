"""Where things go in a generated scene: objects on the floor without overlap, camera paths, lights.

Everything here is geometry in world metres (z up) driven by a ``numpy.random.Generator``; nothing renders.
Objects are first laid out around the origin, the camera path is planned around them, and the room box is
then fitted around both (:func:`room_around`) and everything shifted so the room is ``[0, size]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .catalog import CATEGORIES, ObjectModel
from .meshes import Mesh, rotation_z, translation
from .props import stand as make_stand
from .render import Light, Lighting

__all__ = [
    "Placement",
    "look_at",
    "orbit_path",
    "place_objects",
    "random_lighting",
    "room_around",
    "static_camera",
    "trajectory",
]

STAND_BELOW = 0.3  # m: objects lower than this stand on a small table (unless they are animals on the floor)
_GAP = 0.12  # m between footprints


@dataclass
class Placement:
    """One object placed in the scene: ``base`` is the floor point under its centre (world), ``z0`` the height
    it stands at (0, or the top of its stand), ``yaw`` radians about z. ``path`` (T, 2) holds per-frame xy of the
    base for a moving object (None when static)."""

    object_id: int
    model: ObjectModel
    base: np.ndarray
    yaw: float
    z0: float = 0.0
    stand: Mesh | None = None
    radius: float = 0.0
    path: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    def xy(self, frame: int | None = None) -> np.ndarray:
        """Floor position (x, y) of the base at ``frame`` (static objects, or ``frame`` None: ``base``)."""
        return self.base[:2] if self.path is None or frame is None else self.path[min(frame, len(self.path) - 1)]

    def matrix(self, frame: int | None = None) -> np.ndarray:
        """Model matrix of the object at ``frame`` (static objects: any frame)."""
        xy = self.xy(frame)
        return translation((xy[0], xy[1], self.z0)) @ rotation_z(self.yaw)

    def stand_matrix(self, frame: int | None = None) -> np.ndarray:
        xy = self.xy(frame)
        return translation((xy[0], xy[1], 0.0)) @ rotation_z(self.yaw)

    def source_point(self, frame: int | None = None) -> np.ndarray:
        """Where the sound comes from (world): above the base at the object's sound height (a person's mouth,
        mid-height for the rest)."""
        h = self.model.height
        frac = 0.9 if self.model.category == "person" else 0.5
        xy = self.xy(frame)
        return np.array([xy[0], xy[1], self.z0 + frac * h])

    @property
    def top(self) -> float:
        return self.z0 + self.model.height


def _footprint_radius(mesh: Mesh) -> float:
    b = mesh.bounds
    return float(max(np.hypot(b[:, 0], b[:, 1]).max(), 0.05))


def place_objects(
    models: list[ObjectModel],
    rng: np.random.Generator,
    *,
    spread: float | None = None,
    facing: float | None = None,
    facing_jitter: float = math.radians(40),
    moving: set[int] | frozenset[int] = frozenset(),
    num_frames: int = 1,
    max_tries: int = 400,
) -> list[Placement]:
    """Place ``models`` (object ids 1..n in order) around the origin without overlapping footprints.

    ``spread``: radius of the disc the centres are drawn from (grows automatically when crowded).
    ``facing``: world yaw the objects' fronts should turn towards (e.g. the camera), ± ``facing_jitter``;
    None = random. Objects lower than 0.3 m (and the categories that always do) stand on a small table.
    Indices in ``moving`` get a back-and-forth path of ``num_frames`` positions (the footprint covers the path).
    """
    placed: list[Placement] = []
    n = len(models)
    R = spread if spread is not None else 0.5 + 0.35 * n
    # never tighter than the objects' total footprint area allows
    R = max(R, 0.9 * math.sqrt(sum((_footprint_radius(m.mesh) + _GAP) ** 2 for m in models)))
    for k, m in enumerate(models):
        cat = CATEGORIES[m.category]
        on_stand = cat.placement == "stand" or (m.height < STAND_BELOW and cat.group != "animal")
        stand_mesh, z0 = None, 0.0
        if on_stand:
            ext = m.mesh.extents
            top = (max(0.4, ext[0] + 0.1), max(0.35, ext[1] + 0.1))
            h = float(rng.uniform(0.55, 0.8))
            stand_mesh, z0 = make_stand(rng, top, h), h
        r_obj = _footprint_radius(m.mesh)
        if stand_mesh is not None:
            r_obj = max(r_obj, _footprint_radius(stand_mesh))
        path_len = float(rng.uniform(0.6, 1.4)) if k in moving else 0.0
        path_dir = float(rng.uniform(0, 2 * np.pi))
        radius = r_obj + path_len / 2
        yaw_face = float(rng.uniform(-facing_jitter, facing_jitter))
        yaw_rand = float(rng.uniform(0, 2 * np.pi))
        for attempt in range(max_tries):
            rr = R * (1.0 + 2.0 * attempt / max_tries)
            rad, ang = rr * math.sqrt(float(rng.random())), float(rng.uniform(0, 2 * np.pi))
            c = np.array([rad * math.cos(ang), rad * math.sin(ang)])
            if all(np.linalg.norm(c - p.base[:2]) >= radius + p.radius + _GAP for p in placed):
                break
        else:
            raise RuntimeError(f"could not place {n} objects without overlap")
        if facing is None:
            yaw = yaw_rand
        else:
            # the mesh front faces −y; turn it towards `facing` (a direction from the object)
            yaw = facing + math.pi / 2 + yaw_face
        path = None
        if k in moving:
            d = np.array([math.cos(path_dir), math.sin(path_dir)])
            phase = float(rng.uniform(0, 2 * np.pi))
            period = float(rng.uniform(8.0, 20.0))
            t = np.arange(num_frames, dtype=np.float64)
            s = 0.5 * path_len * np.sin(2 * np.pi * t / period + phase)
            path = c[None, :] + s[:, None] * d[None, :]
        placed.append(
            Placement(
                k + 1,
                m,
                np.array([c[0], c[1], 0.0]),
                yaw,
                z0,
                stand_mesh,
                radius,
                path,
                {"on_stand": on_stand, "path_length": path_len},
            )
        )
    return placed


def trajectory(p: Placement, num_frames: int) -> np.ndarray:
    """Per-frame sound-source positions (T, 3) of a placement (repeats the static one)."""
    return np.stack([p.source_point(i) for i in range(num_frames)])


def look_at(eye: np.ndarray, target: np.ndarray, up: tuple[float, float, float] = (0.0, 0.0, 1.0)) -> np.ndarray:
    """Camera-to-world 4×4 (OpenCV: x right, y down, z forward) at ``eye`` looking at ``target``."""
    z = np.asarray(target, float) - np.asarray(eye, float)
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-9:
        x = np.cross(z, [0.0, 1.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = x, y, z, eye
    return m


def _cluster(placed: list[Placement]) -> tuple[np.ndarray, float]:
    pts = np.stack([p.base[:2] for p in placed])
    c = (pts.min(axis=0) + pts.max(axis=0)) / 2
    r = max(float(np.linalg.norm(p.base[:2] - c)) + p.radius for p in placed)
    return c, r


def static_camera(
    placed: list[Placement],
    rng: np.random.Generator,
    hfov: float,
    azimuth: float | None = None,
    frame: set[int] | None = None,
) -> tuple[np.ndarray, float]:
    """A fixed camera that frames a group tightly: (camera-to-world 4×4, azimuth it looks from).

    ``frame``: ids of the objects that must be in view (default: all; the others may be cut off). The distance
    is the smallest at which their footprints fit in 90 % of the horizontal field of view, times 1.0–1.15."""
    if frame:
        placed = [p for p in placed if p.object_id in frame] or placed
    c, _ = _cluster(placed)
    az = float(rng.uniform(0, 2 * np.pi)) if azimuth is None else azimuth
    towards = np.array([math.cos(az), math.sin(az)])  # from the group to the camera
    lateral = np.array([-towards[1], towards[0]])
    t = math.tan(hfov / 2) * 0.9
    d = 0.0
    for p in placed:
        a = float((p.base[:2] - c) @ towards)
        lat = abs(float((p.base[:2] - c) @ lateral))
        d = max(d, a + (lat + p.radius) / t, a + p.radius + 0.8)
    d *= float(rng.uniform(1.0, 1.15))
    top = max(p.top for p in placed)
    h = float(np.clip(rng.uniform(0.8, 1.3) * max(top, 0.8), 0.7, 1.9))
    eye = np.array([c[0] + d * towards[0], c[1] + d * towards[1], h])
    target = np.array([c[0], c[1], float(np.clip(0.55 * top + rng.uniform(-0.1, 0.1), 0.25, 1.1))])
    return look_at(eye, target), az


def orbit_path(placed: list[Placement], rng: np.random.Generator, num_frames: int, hfov: float) -> np.ndarray:
    """A smooth orbit around the group: (T, 4, 4) camera-to-world. Radius, height, angular span (200–360°),
    direction and a gentle height/radius/target wobble are random."""
    c, r = _cluster(placed)
    rho0 = max(r + 0.9, 0.8 * r / math.tan(hfov / 2)) * float(rng.uniform(0.95, 1.15))
    h0 = float(rng.uniform(1.2, 1.8))
    span = math.radians(float(rng.uniform(200, 360)))
    a0 = float(rng.uniform(0, 2 * np.pi))
    sign = 1.0 if rng.random() < 0.5 else -1.0
    wob = rng.uniform(0, 2 * np.pi, 4)
    top = max(p.top for p in placed)
    zt = float(np.clip(0.45 * top, 0.35, 0.9))
    u = np.linspace(0.0, 1.0, num_frames) if num_frames > 1 else np.zeros(1)
    out = np.empty((num_frames, 4, 4))
    for i, s in enumerate(u):
        a = a0 + sign * span * s
        rho = rho0 * (1 + 0.08 * math.sin(2 * np.pi * s + wob[0]))
        h = h0 + 0.2 * math.sin(4 * np.pi * s + wob[1])
        eye = np.array([c[0] + rho * math.cos(a), c[1] + rho * math.sin(a), h])
        target = np.array(
            [c[0] + 0.15 * math.sin(2 * np.pi * s + wob[2]), c[1] + 0.15 * math.cos(2 * np.pi * s + wob[3]), zt]
        )
        out[i] = look_at(eye, target)
    return out


def room_around(
    placed: list[Placement], cameras: np.ndarray, rng: np.random.Generator, height: tuple[float, float] = (2.6, 3.2)
) -> tuple[np.ndarray, np.ndarray]:
    """A shoebox room around the objects and every camera position, with random free space on each side.
    Returns (room size (3,), offset (3,)) — add ``offset`` to every world position to move into room coordinates
    (room box = ``[0, size]``)."""
    pts = [p.base[:2] + s * p.radius for p in placed for s in (-1.0, 1.0)]
    for p in placed:
        if p.path is not None:
            pts += [p.path.min(axis=0) - p.radius, p.path.max(axis=0) + p.radius]
    pts += list(cameras[:, :2, 3])
    P = np.array(pts)
    lo, hi = P.min(axis=0), P.max(axis=0)
    margin_lo = rng.uniform(0.4, 1.8, 2)
    margin_hi = rng.uniform(0.4, 1.8, 2)
    top = max(max(p.top for p in placed), float(cameras[:, 2, 3].max()))
    h = max(float(rng.uniform(*height)), top + 0.4)
    size = np.array([hi[0] - lo[0] + margin_lo[0] + margin_hi[0], hi[1] - lo[1] + margin_lo[1] + margin_hi[1], h])
    offset = np.array([margin_lo[0] - lo[0], margin_lo[1] - lo[1], 0.0])
    return size, offset


def random_lighting(rng: np.random.Generator, room_size: np.ndarray) -> tuple[Lighting, dict]:
    """Ambient plus 1–3 lights (directional with a warm/cool tint, sometimes a ceiling point light)."""
    ambient = float(rng.uniform(0.35, 0.55))
    lights = []
    n = int(rng.integers(1, 4))
    for _ in range(n):
        if rng.random() < 0.3:
            pos = (
                float(rng.uniform(0.5, room_size[0] - 0.5)),
                float(rng.uniform(0.5, room_size[1] - 0.5)),
                float(room_size[2] - 0.2),
            )
            lights.append(
                Light(
                    "point",
                    position=pos,
                    color=_tint(rng),
                    intensity=float(rng.uniform(0.4, 0.8)),
                    falloff=float(rng.uniform(2.5, 4.5)),
                )
            )
        else:
            a, e = float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(0.35, 1.3))
            d = (math.cos(a) * math.cos(e), math.sin(a) * math.cos(e), math.sin(e))
            lights.append(Light("directional", direction=d, color=_tint(rng), intensity=float(rng.uniform(0.25, 0.6))))
    info = {
        "ambient": round(ambient, 4),
        "lights": [{"kind": L.kind, "intensity": round(L.intensity, 4)} for L in lights],
    }
    return Lighting(ambient=ambient, lights=tuple(lights)), info


def _tint(rng: np.random.Generator) -> tuple[float, float, float]:
    """A light colour between cool (bluish) and warm (yellowish) white."""
    w = float(rng.uniform(-1, 1))
    return (1.0 - 0.12 * max(-w, 0.0), 1.0 - 0.05 * abs(w), 1.0 - 0.2 * max(w, 0.0))
