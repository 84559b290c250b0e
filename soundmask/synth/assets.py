"""Real furniture, appliance, instrument, animal and people models from Sweet Home 3D's catalogs.

Source: the Debian package ``sweethome3d-furniture`` (``apt-get install sweethome3d-furniture``, ~130 MB,
no dependencies), which installs five zip catalogs (``*.sh3f``) under
``/usr/share/sweethome3d/furniture/`` (override with ``$SOUNDMASK_FURNITURE_DIR``): ~820 OBJ + MTL + JPG
models under Creative Commons licences (Blend Swap CC-0 = public domain; Blend Swap CC-BY, Kator Legaz,
Reallusion and Scopia = CC-BY 3.0). **CC-BY models must be credited**: every :class:`FurnitureEntry`
keeps the model's ``creator`` (``creator#N`` in the catalog) and the catalog's ``license`` — write both
into any dataset built from them (:meth:`FurnitureEntry.attribution`).

Each catalog is a zip holding ``PluginFurnitureCatalog.properties`` (Java properties: ``name#N``,
``category#N``, ``tags#N``, ``model#N`` = path of the OBJ inside the zip, ``creator#N``,
``width#N``/``depth#N``/``height#N`` in cm, optional ``modelRotation#N`` = a row-major 3×3 matrix, and a
catalog-wide ``license``) plus the model files.

Coordinates: Sweet Home 3D models are **y up, centimetres**, front facing +z. :func:`load_furniture`
returns a :class:`~soundmask.synth.meshes.Mesh` in our world convention — **z up, metres**, standing on
the floor (lowest point at z = 0), centred over the origin, the model's front facing **−y**
(the SH3D model rotation, then (x, y, z)_sh3d → (x, −z, y)_ours, then scaling). By default it is scaled
uniformly to fit the catalog's width (x) × depth (y) × height (z) box (see ``size`` of
:func:`load_furniture`).

When the package is not installed :func:`list_furniture` returns ``[]`` (and :func:`find_furniture` /
:func:`furniture_for` too); callers must then fall back to the procedural primitives of
:mod:`soundmask.synth.meshes`. Loading needs ``trimesh`` (and Pillow for textures).
"""

from __future__ import annotations

import functools
import io
import math
import os
import posixpath
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from .meshes import Mesh, concatenate, on_floor

__all__ = [
    "DEFAULT_FURNITURE_DIR",
    "SOUND_CATEGORIES",
    "FurnitureEntry",
    "find_furniture",
    "furniture_dir",
    "furniture_for",
    "list_furniture",
    "load_furniture",
    "parse_properties",
]

DEFAULT_FURNITURE_DIR = Path("/usr/share/sweethome3d/furniture")

# Our sounding categories → (regexes that must match the model's name or tags, regexes that must not).
# Matching is case-insensitive on "name | tags | category"; curated against sweethome3d-furniture 1.8.
SOUND_CATEGORIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "piano": ((r"^[^|]*\bpiano\b",), (r"\bbench\b",)),
    "guitar": ((r"^[^|]*\bguitar\b",), ()),
    "violin": ((r"^[^|]*\b(violin|cello|viola)\b",), ()),
    "drum": ((r"^[^|]*\bdrums?\b",), ()),
    "xylophone": ((r"^[^|]*\bxylophone\b",), ()),
    "speaker": ((r"^[^|]*\b(speakers?|stereo|mp3)\b",), (r"\bamplifier\b",)),
    "radio": ((r"^[^|]*\bradio\b", r"\|[^|]*\bradio\b[^|]*\|"), ()),
    "tv": (
        (r"^[^|]*(\btv\b|television)",),
        (r"^[^|]*(cabinet|stand|remote|plug|living room)",),
    ),
    "phone": (
        (r"^[^|]*\b(i?phone)\b", r"\|[^|]*\btelephone\b[^|]*\|"),
        (r"headphone",),
    ),
    "clock": ((r"^[^|]*\bclock\b",), ()),
    "fan": ((r"^[^|]*\bfan\b",), ()),
    "washing machine": ((r"^[^|]*\bwashing machine\b",), ()),
    "dryer": ((r"^[^|]*\bdryer machine\b",), ()),
    "microwave": ((r"^[^|]*\bmicrowave\b",), ()),
    "blender": ((r"^[^|]*\b(blender|mixer)\b",), ()),
    "coffee machine": (
        (r"^[^|]*\b(coffee (machine|maker|brewer)|espresso kettle)\b",),
        (),
    ),
    "kettle": ((r"^[^|]*\b(boiler|kettle)\b",), ()),
    "laptop": ((r"^[^|]*\b(laptop|imac)\b",), ()),
    "printer": ((r"^[^|]*\bprinter\b",), ()),
    "dog": ((r"^[^|]*\b(dog|bulldog)\b",), (r"\bhot dog\b|\bdog house\b",)),
    "cat": ((r"^[^|]*\bcat\b",), ()),
    "horse": ((r"^[^|]*\bhorse\b",), (r"\b(rocking|clothes) horse\b",)),
    "chicken": ((r"^[^|]*\bchicken\b",), (r"\broasted\b",)),
    "rabbit": ((r"^[^|]*\brabbit\b",), ()),
    "person": ((r"\|[^|]*\bhuman\b[^|]*\|",), ()),
    "vehicle": (
        (r"\|\s*vehicles\s*$",),
        (r"^[^|]*\b(bike|bicycle|tricycle|stroller|skateboard|yamaha|scooter)\b",),
    ),
    "motorbike": ((r"^[^|]*\b(motorbike|yamaha|scooter)\b",), (r"\|\s*exterior\s*$",)),
}


@dataclass(frozen=True)
class FurnitureEntry:
    """One catalog model. Sizes are the catalog's, in **metres**: ``width`` along our x, ``depth``
    along our y, ``height`` along our z (see the module docstring for the axes)."""

    id: str
    name: str
    category: str
    tags: tuple[str, ...]
    creator: str
    license: str
    catalog: str
    zip_path: str
    model_path: str  # inside the zip, no leading '/'
    width: float
    depth: float
    height: float
    # metres above the floor where SH3D places it (wall clocks, hoods…)
    elevation: float = 0.0
    # row-major 3×3, applied in SH3D model space
    model_rotation: tuple[float, ...] | None = None
    index: int = 0

    @property
    def size(self) -> tuple[float, float, float]:
        """(width, depth, height) in metres = our (x, y, z) extents."""
        return (self.width, self.depth, self.height)

    def attribution(self) -> str:
        """A credit line, e.g. ``"Radio" by Jay-Artist (Blend Swap CC-BY, Creative Commons Attribution 3.0
        license)``."""
        return f'"{self.name}" by {self.creator} ({self.catalog}, {self.license})'


# --- catalog parsing ------------------------------------------------------------------------------

_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def _unescape(s: str) -> str:
    out, i = [], 0
    while i < len(s):
        ch = s[i]
        if ch == "\\" and i + 1 < len(s):
            nxt = s[i + 1]
            if nxt == "u" and i + 6 <= len(s):
                try:
                    out.append(chr(int(s[i + 2 : i + 6], 16)))
                    i += 6
                    continue
                except ValueError:
                    pass
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def parse_properties(text: str) -> dict[str, str]:
    """Parse Java ``.properties`` text (comments, ``=``/``:``/space separators, line continuations,
    backslash and ``\\uXXXX`` escapes)."""
    props: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].lstrip()
        i += 1
        if not line or line[0] in "#!":
            continue
        # join continuation lines (odd number of trailing backslashes)
        while (len(line) - len(line.rstrip("\\"))) % 2 == 1 and i <= len(lines):
            line = line[:-1] + (lines[i].lstrip() if i < len(lines) else "")
            i += 1
        m = re.match(r"((?:\\.|[^\s=:\\])*)\s*[=:]?\s*(.*)$", line, re.DOTALL)
        if m is None:  # pragma: no cover - the regex matches any string
            continue
        props[_unescape(m.group(1))] = _unescape(m.group(2))
    return props


def furniture_dir() -> Path:
    """Where the ``.sh3f`` catalogs are looked for (``$SOUNDMASK_FURNITURE_DIR`` or the Debian path)."""
    return Path(os.environ.get("SOUNDMASK_FURNITURE_DIR", str(DEFAULT_FURNITURE_DIR)))


def _float(v: str | None, default: float = 0.0) -> float:
    try:
        return float(v) if v not in (None, "") else default
    except ValueError:
        return default


def _parse_catalog(zip_path: Path) -> list[FurnitureEntry]:
    with zipfile.ZipFile(zip_path) as zf:
        try:
            text = zf.read("PluginFurnitureCatalog.properties").decode("latin-1")
        except KeyError:
            return []
        names = set(zf.namelist())
    props = parse_properties(text)
    license_ = props.get("license", "").strip()
    catalog = props.get("name", zip_path.stem).strip()
    entries = []
    indices = sorted({int(m.group(1)) for k in props if (m := re.fullmatch(r"model#(\d+)", k))})
    for n in indices:

        def g(key: str, n: int = n) -> str:
            return props.get(f"{key}#{n}", "").strip()

        model = g("model").lstrip("/")
        if model not in names:
            continue
        rot = None
        if g("modelRotation"):
            vals = [float(x) for x in g("modelRotation").split()]
            if len(vals) == 9:
                rot = tuple(vals)
        entries.append(
            FurnitureEntry(
                id=g("id") or f"{catalog}#{n}",
                name=g("name"),
                category=g("category"),
                tags=tuple(t.strip() for t in g("tags").split(",") if t.strip()),
                creator=g("creator"),
                license=license_,
                catalog=catalog,
                zip_path=str(zip_path),
                model_path=model,
                width=_float(g("width")) / 100.0,
                depth=_float(g("depth")) / 100.0,
                height=_float(g("height")) / 100.0,
                elevation=_float(g("elevation")) / 100.0,
                model_rotation=rot,
                index=n,
            )
        )
    return entries


@functools.lru_cache(maxsize=8)
def _list_cached(directory: str) -> tuple[FurnitureEntry, ...]:
    d = Path(directory)
    if not d.is_dir():
        return ()
    out: list[FurnitureEntry] = []
    for z in sorted(d.glob("*.sh3f")):
        try:
            out += _parse_catalog(z)
        except (zipfile.BadZipFile, OSError):
            continue
    return tuple(out)


def list_furniture(directory: str | Path | None = None) -> list[FurnitureEntry]:
    """Every model of every catalog in ``directory`` (default :func:`furniture_dir`); ``[]`` when the
    package is not installed. Parsed once per directory (cached)."""
    return list(_list_cached(str(directory if directory is not None else furniture_dir())))


def _haystack(e: FurnitureEntry) -> str:
    return f"{e.name} | {', '.join(e.tags)} | {e.category}".lower()


def find_furniture(
    keywords: str | Iterable[str],
    exclude: str | Iterable[str] = (),
    *,
    fields: Sequence[Literal["name", "tags", "category"]] = ("name", "tags"),
    entries: Sequence[FurnitureEntry] | None = None,
) -> list[FurnitureEntry]:
    """Models whose ``fields`` contain any of ``keywords`` as whole words (case-insensitive) and none
    of ``exclude``. E.g. ``find_furniture("piano", exclude="bench")``."""
    kws = [keywords] if isinstance(keywords, str) else list(keywords)
    exc = [exclude] if isinstance(exclude, str) else list(exclude)
    pats = [re.compile(r"\b" + re.escape(k.lower()) + r"\b") for k in kws]
    xpats = [re.compile(r"\b" + re.escape(k.lower()) + r"\b") for k in exc]
    out = []
    for e in list_furniture() if entries is None else entries:
        text = " | ".join(
            {"name": e.name, "tags": ", ".join(e.tags), "category": e.category}[f] for f in fields
        ).lower()
        if any(p.search(text) for p in pats) and not any(p.search(text) for p in xpats):
            out.append(e)
    return out


def furniture_for(category: str, entries: Sequence[FurnitureEntry] | None = None) -> list[FurnitureEntry]:
    """The models curated for one of :data:`SOUND_CATEGORIES` (``[]`` if none or not installed)."""
    try:
        inc, exc = SOUND_CATEGORIES[category]
    except KeyError:
        raise KeyError(f"unknown category {category!r}; known: {sorted(SOUND_CATEGORIES)}") from None
    if isinstance(exc, str):  # tolerate a bare string
        exc = (exc,)
    out = []
    for e in list_furniture() if entries is None else entries:
        h = _haystack(e)
        if any(re.search(p, h) for p in inc) and not any(re.search(p, h) for p in exc):
            out.append(e)
    return out


# --- loading ----------------------------------------------------------------------------------------

# SH3D model space (y up, front +z) → ours (z up, front −y): (x, y, z) → (x, −z, y)
_SH3D_TO_WORLD = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


class _DictResolver:
    """Minimal trimesh resolver over the files of one model folder (names relative to the OBJ)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self._lower = {k.lower(): k for k in files}

    def get(self, name: str) -> bytes:
        if hasattr(name, "decode"):
            name = name.decode("utf-8")
        key = posixpath.normpath(str(name).replace("\\", "/")).lstrip("./")
        for cand in (key, posixpath.basename(key)):
            if cand in self.files:
                return self.files[cand]
            if cand.lower() in self._lower:
                return self.files[self._lower[cand.lower()]]
        raise KeyError(name)

    __getitem__ = get

    def write(self, name: str, data: bytes) -> None:  # pragma: no cover - resolver protocol
        raise OSError("read-only")

    def namespaced(self, namespace: str) -> _DictResolver:  # pragma: no cover - resolver protocol
        pre = namespace.rstrip("/") + "/"
        return _DictResolver({k[len(pre) :]: v for k, v in self.files.items() if k.startswith(pre)})


def _read_model_files(entry: FurnitureEntry) -> tuple[str, dict[str, bytes]]:
    folder = posixpath.dirname(entry.model_path)
    prefix = folder + "/" if folder else ""
    with zipfile.ZipFile(entry.zip_path) as zf:
        if prefix:
            files = {
                n[len(prefix) :]: zf.read(n) for n in zf.namelist() if n.startswith(prefix) and not n.endswith("/")
            }
        else:
            files = {entry.model_path: zf.read(entry.model_path)}
    return posixpath.basename(entry.model_path), files


def _material_color_and_image(
    visual,
) -> tuple[np.ndarray, object | None, np.ndarray | None]:
    """(RGB uint8 diffuse colour, PIL image or None, uv (V, 2) or None) of a trimesh visual."""
    kind = getattr(visual, "kind", None)
    if kind == "vertex" or type(visual).__name__ == "ColorVisuals":
        try:
            c = np.asarray(visual.vertex_colors)[:, :3]
            return c.astype(np.uint8), None, None
        except (AttributeError, IndexError, TypeError, ValueError):
            return np.array([200, 200, 200], np.uint8), None, None
    mat = getattr(visual, "material", None)
    color = np.array([200, 200, 200], np.uint8)
    image = None
    if mat is not None:
        diffuse = getattr(mat, "diffuse", None)
        if diffuse is None:
            diffuse = getattr(mat, "baseColorFactor", None)
        if diffuse is not None:
            d = np.asarray(diffuse)
            if np.issubdtype(d.dtype, np.floating) and d.max(initial=0) <= 1.0:
                d = np.round(d * 255)
            color = np.clip(d[:3], 0, 255).astype(np.uint8)
        image = getattr(mat, "image", None)
        if image is None:
            image = getattr(mat, "baseColorTexture", None)
    uv = getattr(visual, "uv", None)
    if image is None or uv is None:
        return color, None, None
    return color, image, np.asarray(uv, dtype=np.float64)


def _to_rgb(image, tile: int) -> np.ndarray:
    from PIL import Image

    im = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    im = im.convert("RGB").resize((tile, tile), Image.Resampling.BILINEAR)
    return np.asarray(im, dtype=np.uint8)


def load_furniture(
    entry: FurnitureEntry,
    *,
    size: Literal["fit", "catalog", "model"] = "fit",
    texture_size: int = 256,
    textures: bool = True,
) -> Mesh:
    """Load ``entry`` as one :class:`Mesh` in world convention (z up, metres, on the floor, front −y).

    ``size="fit"`` (default) keeps the model's proportions and scales it uniformly to the largest
    size that fits in the catalog's width × depth × height box (a few catalog boxes disagree with their
    model, e.g. the Blend Swap grand piano's height, so stretching would distort them);
    ``"catalog"`` scales each axis to the catalog box exactly (what Sweet Home 3D shows);
    ``"model"`` keeps the OBJ's own units, read as centimetres. Untextured materials
    become per-vertex colours (MTL ``Kd``); textured ones (``map_Kd``) are resized to
    ``texture_size``² tiles of one atlas (``uv_rects``), or baked to their ``Kd`` colour when
    ``textures`` is false. Texture alpha and material transparency are ignored (everything is opaque).
    """
    try:
        import trimesh
    except ImportError as e:  # pragma: no cover - depends on the install
        raise RuntimeError("load_furniture needs `pip install trimesh`") from e
    obj_name, files = _read_model_files(entry)
    scene = trimesh.load(
        io.BytesIO(files[obj_name]),
        file_type="obj",
        resolver=_DictResolver(files),  # type: ignore[arg-type]  # duck-typed: trimesh only calls .get(name)
        process=False,
        force="scene",
        group_material=True,
    )
    assert isinstance(scene, trimesh.Scene)  # force="scene"
    parts: list[
        tuple[
            np.ndarray,
            np.ndarray,
            np.ndarray | None,
            np.ndarray,
            object | None,
            np.ndarray | None,
        ]
    ] = []
    for node in scene.graph.nodes_geometry:
        transform, geom_name = scene.graph[node]
        g = scene.geometry[geom_name]
        if not hasattr(g, "faces") or len(g.faces) == 0:
            continue
        T = np.asarray(transform, dtype=np.float64)
        v = np.asarray(g.vertices, dtype=np.float64) @ T[:3, :3].T + T[:3, 3]
        try:
            n = np.asarray(g.vertex_normals, dtype=np.float64) @ np.linalg.inv(T[:3, :3])
        except (AttributeError, IndexError, ValueError, np.linalg.LinAlgError):
            n = None
        color, image, uv = _material_color_and_image(g.visual)
        if not textures:
            image = uv = None
        parts.append((v, np.asarray(g.faces, dtype=np.int64), n, color, image, uv))
    if not parts:
        raise ValueError(f"{entry.model_path} in {entry.zip_path} has no triangles")

    # texture atlas: one tile per textured material, wrap-padded so that repeat + filtering work
    textured = [i for i, p in enumerate(parts) if p[4] is not None]
    atlas = None
    rects: dict[int, np.ndarray] = {}
    if textured:
        pad = max(2, texture_size // 32)
        cell = texture_size + 2 * pad
        cols = math.ceil(math.sqrt(len(textured)))
        rows = math.ceil(len(textured) / cols)
        atlas = np.zeros((rows * cell, cols * cell, 3), np.uint8)
        H, W = atlas.shape[:2]
        for k, i in enumerate(textured):
            r, c = divmod(k, cols)
            tile = np.pad(
                _to_rgb(parts[i][4], texture_size),
                ((pad, pad), (pad, pad), (0, 0)),
                mode="wrap",
            )
            atlas[r * cell : (r + 1) * cell, c * cell : (c + 1) * cell] = tile
            x0, y0 = c * cell + pad, r * cell + pad
            rects[i] = np.array(
                [
                    x0 / W,
                    (H - (y0 + texture_size)) / H,
                    texture_size / W,
                    texture_size / H,
                ],
                np.float32,
            )

    meshes = []
    for i, (v, f, n, color, _image, uv) in enumerate(parts):
        nv = len(v)
        if i in rects:
            meshes.append(
                Mesh(
                    v,
                    f,
                    colors=np.full((nv, 3), 255, np.uint8),
                    normals=n,
                    uvs=uv,
                    texture=atlas,
                    uv_rects=np.tile(rects[i], (nv, 1)),
                )
            )
        else:
            cols_ = color if color.ndim == 2 and len(color) == nv else np.broadcast_to(color.reshape(-1)[:3], (nv, 3))
            m = Mesh(v, f, colors=np.array(cols_), normals=n)
            if atlas is not None:
                # give it (unused) uv fields so that it concatenates with the atlas parts
                m = Mesh(
                    v,
                    f,
                    colors=m.colors,
                    normals=n,
                    uvs=np.zeros((nv, 2)),
                    texture=atlas,
                    uv_rects=np.zeros((nv, 4)),
                )
            meshes.append(m)
    if atlas is not None:
        # all parts share the same atlas object: concatenate by hand (concatenate() allows one textured mesh)
        offs = np.cumsum([0] + [m.num_vertices for m in meshes])
        normals = [m.normals for m in meshes]
        mesh = Mesh(
            np.concatenate([m.vertices for m in meshes]),
            np.concatenate([m.faces + o for m, o in zip(meshes, offs[:-1], strict=True)]),
            colors=np.concatenate([m.colors for m in meshes if m.colors is not None]),  # all set by Mesh
            normals=np.concatenate([x for x in normals if x is not None])
            if all(x is not None for x in normals)
            else None,
            uvs=np.concatenate([m.uvs for m in meshes]),
            texture=atlas,
            uv_rects=np.concatenate([m.uv_rects for m in meshes]),
        )
    else:
        mesh = concatenate(meshes)

    # SH3D model rotation (model space), then axes to ours, then scale
    R = _SH3D_TO_WORLD.copy()
    if entry.model_rotation is not None:
        R = R @ np.asarray(entry.model_rotation, dtype=np.float64).reshape(3, 3)
    M = np.eye(4)
    M[:3, :3] = R
    mesh = mesh.transformed(M)
    ext = mesh.extents
    target = np.array(entry.size)
    valid = (ext > 1e-9) & (target > 0)
    ratio = np.where(valid, target / np.where(valid, ext, 1.0), np.nan)
    if size == "catalog":
        s = np.where(valid, ratio, 0.01)
    elif size == "fit":
        s = np.full(3, np.nanmin(ratio) if valid.any() else 0.01)
    elif size == "model":
        s = np.full(3, 0.01)
    else:
        raise ValueError(f"size must be 'fit', 'catalog' or 'model', got {size!r}")
    S = np.diag([*s, 1.0])
    mesh = on_floor(mesh.transformed(S))
    mesh.name = entry.name
    mesh.meta.update(
        {
            "source": "sweethome3d",
            "id": entry.id,
            "creator": entry.creator,
            "license": entry.license,
            "catalog": entry.catalog,
        }
    )
    return mesh
