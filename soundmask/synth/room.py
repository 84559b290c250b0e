"""The room around a generated scene: a textured floor, four walls, a ceiling and framed photos on the walls.

Textures are real photographs where a package ships them: scikit-image's data folder (``brick``, ``grass``,
``gravel`` textures — BSD-licensed test images — and the ``astronaut``, ``chelsea``, ``coffee``, ``rocket``
... photos hung as posters; read straight from the installed files, ``skimage`` is never imported) and
procedural ones otherwise (wood planks, tiles, plaster; numpy only). Grey textures are tinted with a random
colour. Every surface of the room has object id 0 (background).

The room is the box ``[0, sx] × [0, sy] × [0, sz]`` (world metres, z up) — the same box the acoustic
simulation uses (:mod:`soundmask.synth.acoustics`).
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .meshes import Instance, Mesh

__all__ = ["Room", "build_room", "photo_names", "texture_names"]

TEXTURE_SIZE = 256
_GREY_TEXTURES = ("brick", "grass", "gravel")
_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "hubble_deep_field", "retina", "color")


@functools.lru_cache(maxsize=1)
def _skimage_data_dir() -> Path | None:
    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        return None
    d = Path(spec.origin).parent / "data"
    return d if d.is_dir() else None


@functools.lru_cache(maxsize=32)
def _load_image(name: str, size: int) -> np.ndarray | None:
    d = _skimage_data_dir()
    if d is None:
        return None
    for ext in (".png", ".jpg"):
        p = d / f"{name}{ext}"
        if p.is_file():
            with Image.open(p) as src:
                im = src.convert("RGB")
                w, h = im.size
                s = min(w, h)
                im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
                return np.asarray(im.resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)
    return None


def texture_names() -> list[str]:
    """Wall/floor textures available here (photographs first, then procedural)."""
    photo = [n for n in _GREY_TEXTURES if _load_image(n, TEXTURE_SIZE) is not None]
    return photo + ["planks", "tiles", "plaster"]


def photo_names() -> list[str]:
    """Photos that can hang on the walls (empty when scikit-image is not installed)."""
    return [n for n in _PHOTOS if _load_image(n, TEXTURE_SIZE) is not None]


def _procedural(kind: str, rng: np.random.Generator, n: int = TEXTURE_SIZE) -> np.ndarray:
    """Grey-level (n, n) texture in [0, 1]."""
    y, x = np.mgrid[0:n, 0:n] / n
    noise = rng.normal(0, 1, (n // 8, n // 8))
    noise = np.asarray(Image.fromarray(noise.astype(np.float32)).resize((n, n), Image.Resampling.BICUBIC))
    fine = rng.normal(0, 1, (n, n))
    if kind == "planks":
        rows = 4
        r = np.floor(y * rows)
        offset = rng.uniform(0, 1, rows)[r.astype(int)]
        grain = np.sin(2 * np.pi * (y * rows * 3 + 0.3 * noise)) * 0.08
        seam = (np.abs((y * rows) % 1 - 0.0) < 0.02) | (np.abs(((x + offset) * 2) % 1) < 0.01)
        g = 0.65 + grain + 0.05 * rng.uniform(-1, 1, rows)[r.astype(int)] + 0.03 * fine
        return np.clip(np.where(seam, 0.35, g), 0, 1)
    if kind == "tiles":
        k = 4
        grout = ((x * k) % 1 < 0.04) | ((y * k) % 1 < 0.04)
        tile = 0.8 + 0.05 * noise + 0.02 * fine
        return np.clip(np.where(grout, 0.55, tile), 0, 1)
    return np.clip(0.82 + 0.04 * noise + 0.03 * fine, 0, 1)  # plaster


def _texture(kind: str, rng: np.random.Generator, tint: np.ndarray) -> np.ndarray:
    img = _load_image(kind, TEXTURE_SIZE) if kind in _GREY_TEXTURES else None
    if img is not None:
        grey = img.astype(np.float32).mean(axis=-1) / 255.0
        grey = 0.45 + 0.55 * (grey - grey.min()) / max(float(np.ptp(grey)), 1e-6)
    else:
        grey = _procedural(kind, rng)
    rgb = grey[..., None] * tint[None, None, :]
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


def _quad(corners: np.ndarray, uv: np.ndarray, texture: np.ndarray | None, color, name: str) -> Mesh:
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    if texture is None:
        return Mesh(corners, faces, colors=color, name=name)
    return Mesh(corners, faces, colors=np.array((255, 255, 255)), uvs=uv, texture=texture, name=name)


@dataclass
class Room:
    """A generated room: ``size`` (x, y, z) metres, its ``instances`` (all id 0) and what was chosen."""

    size: np.ndarray
    instances: list[Instance]
    info: dict = field(default_factory=dict)


_WALL_TINTS = np.array([[235, 228, 215], [215, 225, 235], [230, 215, 200], [200, 215, 195], [240, 240, 240],
                        [215, 170, 150], [180, 190, 210]], float)  # fmt: skip
_FLOOR_TINTS = np.array([[190, 140, 95], [150, 110, 80], [210, 200, 185], [130, 130, 135], [170, 150, 120]], float)


def build_room(size: np.ndarray, rng: np.random.Generator, posters: int | None = None) -> Room:
    """Floor, walls, ceiling (and ``posters`` framed photos, random 0–3 when None) for a room of ``size``."""
    sx, sy, sz = (float(v) for v in size)
    kinds = texture_names()
    floor_kind = str(rng.choice([k for k in kinds if k != "brick"] or kinds))
    wall_kind = str(rng.choice([k for k in kinds if k not in ("grass", "gravel")] or kinds))
    floor_tint = _FLOOR_TINTS[rng.integers(len(_FLOOR_TINTS))] * rng.uniform(0.85, 1.1)
    wall_tint = _WALL_TINTS[rng.integers(len(_WALL_TINTS))] * rng.uniform(0.85, 1.05)
    floor_tex = _texture(floor_kind, rng, floor_tint)
    wall_tex = _texture(wall_kind, rng, wall_tint)
    tile_f, tile_w = float(rng.uniform(0.8, 1.6)), float(rng.uniform(1.0, 2.0))
    meshes: list[Mesh] = []
    floor = np.array([[0, 0, 0], [sx, 0, 0], [sx, sy, 0], [0, sy, 0]], float)
    meshes.append(_quad(floor, floor[:, :2] / tile_f, floor_tex, None, "floor"))
    ceil = floor + [0, 0, sz]
    meshes.append(_quad(ceil, ceil[:, :2], None, tuple(int(v) for v in rng.integers(215, 245, 3)), "ceiling"))
    walls = [((0, 0), (sx, 0)), ((sx, 0), (sx, sy)), ((sx, sy), (0, sy)), ((0, sy), (0, 0))]
    for k, (a, b) in enumerate(walls):
        c = np.array([[a[0], a[1], 0], [b[0], b[1], 0], [b[0], b[1], sz], [a[0], a[1], sz]], float)
        length = float(np.hypot(b[0] - a[0], b[1] - a[1]))
        uv = np.array([[0, 0], [length, 0], [length, sz], [0, sz]]) / tile_w
        meshes.append(_quad(c, uv, wall_tex, None, f"wall{k}"))
    # skirting boards make the floor/wall edge visible
    skirt = tuple(int(v) for v in rng.integers(40, 240, 3))
    for k, (a, b) in enumerate(walls):
        d = np.array([b[0] - a[0], b[1] - a[1]]) / np.hypot(b[0] - a[0], b[1] - a[1])
        inward = np.array([-d[1], d[0]]) * 0.012
        c = np.array(
            [
                [a[0] + inward[0], a[1] + inward[1], 0],
                [b[0] + inward[0], b[1] + inward[1], 0],
                [b[0] + inward[0], b[1] + inward[1], 0.08],
                [a[0] + inward[0], a[1] + inward[1], 0.08],
            ]
        )
        meshes.append(_quad(c, c[:, :2], None, skirt, f"skirting{k}"))
    photos = photo_names()
    n_post = int(rng.integers(0, 4)) if posters is None else int(posters)
    hung = []
    for _ in range(n_post if photos else 0):
        name = str(rng.choice(photos))
        k = int(rng.integers(4))
        (a, b) = walls[k]
        a_, b_ = np.array(a, float), np.array(b, float)
        length = float(np.linalg.norm(b_ - a_))
        d = (b_ - a_) / length
        inward = np.array([-d[1], d[0]])
        w = float(rng.uniform(0.6, 1.2))
        u0 = float(rng.uniform(0.3, max(0.31, length - w - 0.3)))
        z0 = float(rng.uniform(1.1, max(1.11, sz - w - 0.3)))
        p0 = a_ + d * u0 + inward * 0.02
        p1 = p0 + d * w
        c = np.array([[p0[0], p0[1], z0], [p1[0], p1[1], z0], [p1[0], p1[1], z0 + w], [p0[0], p0[1], z0 + w]])
        img = _load_image(name, TEXTURE_SIZE)
        assert img is not None
        meshes.append(_quad(c, np.array([[0, 0], [0.999, 0], [0.999, 0.999], [0, 0.999]]), img, None, f"photo:{name}"))
        hung.append({"photo": name, "wall": k, "width": round(w, 3)})
    info = {"floor": floor_kind, "walls": wall_kind, "photos": hung}
    return Room(np.array([sx, sy, sz]), [Instance(m, 0) for m in meshes], info)
