"""COLMAP sparse models: read and write ``cameras``, ``images`` and ``points3D`` as text or binary.

Written from COLMAP's "Output format" specification (and checked against the layout its own
``scripts/python/read_write_model.py`` reads). All binary values are little-endian:

``cameras.bin``
    ``uint64 num_cameras``; per camera ``uint32 camera_id, int32 model_id, uint64 width, uint64 height,
    float64 params[num_params(model)]``.
``images.bin``
    ``uint64 num_images``; per image ``uint32 image_id, float64 qw qx qy qz, float64 tx ty tz,
    uint32 camera_id, char name[] (NUL-terminated), uint64 num_points2D`` then
    ``num_points2D × (float64 x, float64 y, int64 point3D_id)`` (``-1`` = no 3D point).
``points3D.bin``
    ``uint64 num_points``; per point ``uint64 point3D_id, float64 x y z, uint8 r g b, float64 error,
    uint64 track_length`` then ``track_length × (uint32 image_id, uint32 point2D_idx)``.

The text files hold the same records, one per line (images take two lines: the pose line and the
``X Y POINT3D_ID`` triplets, which may be empty); ``#`` starts a comment line.

Poses: ``qvec`` (w, x, y, z) and ``tvec`` map world to camera, ``x_cam = R(q) x_world + t``, with the
camera looking down +z, x right, y down — the OpenCV convention that :class:`soundmask.data.types.Camera`
uses, so conversion is a matrix inverse and nothing else. COLMAP's pixel grid puts the upper-left corner
at (0, 0) and the first pixel centre at (0.5, 0.5), the same as :class:`~soundmask.data.types.Intrinsics`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from soundmask.data.io import PathLike, atomic_path, require_dir
from soundmask.data.types import Camera, Intrinsics
from soundmask.errors import DataError

__all__ = [
    "CAMERA_MODELS",
    "ColmapCamera",
    "ColmapImage",
    "ColmapModel",
    "ColmapPoint3D",
    "camera_from_image",
    "image_from_camera",
    "qvec_to_rotmat",
    "read_model",
    "rotmat_to_qvec",
    "write_model",
]


@dataclass(frozen=True)
class CameraModelSpec:
    model_id: int
    name: str
    num_params: int
    num_focal: int  # 1: (f, cx, cy, ...), 2: (fx, fy, cx, cy, ...), 0: no focal length
    pinhole_family: bool  # projects like a pinhole once the extra (distortion) params are zero


# COLMAP's CameraModelId enum (src/colmap/sensor/models.h); ids 0-10 are the classic set every COLMAP
# version knows, 11-17 were added later (RAD_TAN_THIN_PRISM_FISHEYE in 3.9, the rest in 3.12+).
CAMERA_MODELS: dict[str, CameraModelSpec] = {
    s.name: s
    for s in [
        CameraModelSpec(0, "SIMPLE_PINHOLE", 3, 1, True),
        CameraModelSpec(1, "PINHOLE", 4, 2, True),
        CameraModelSpec(2, "SIMPLE_RADIAL", 4, 1, True),
        CameraModelSpec(3, "RADIAL", 5, 1, True),
        CameraModelSpec(4, "OPENCV", 8, 2, True),
        CameraModelSpec(5, "OPENCV_FISHEYE", 8, 2, False),
        CameraModelSpec(6, "FULL_OPENCV", 12, 2, True),
        CameraModelSpec(7, "FOV", 5, 2, False),  # omega = 0 is a pinhole but the model divides by it
        CameraModelSpec(8, "SIMPLE_RADIAL_FISHEYE", 4, 1, False),
        CameraModelSpec(9, "RADIAL_FISHEYE", 5, 1, False),
        CameraModelSpec(10, "THIN_PRISM_FISHEYE", 12, 2, False),
        CameraModelSpec(11, "RAD_TAN_THIN_PRISM_FISHEYE", 16, 2, False),
        CameraModelSpec(12, "SIMPLE_DIVISION", 4, 1, True),
        CameraModelSpec(13, "DIVISION", 5, 2, True),
        CameraModelSpec(14, "SIMPLE_FISHEYE", 3, 1, False),
        CameraModelSpec(15, "FISHEYE", 4, 2, False),
        CameraModelSpec(16, "EUCM", 6, 2, False),
        CameraModelSpec(17, "EQUIRECTANGULAR", 2, 0, False),
    ]
}
_MODEL_BY_ID: dict[int, CameraModelSpec] = {s.model_id: s for s in CAMERA_MODELS.values()}
_FILES = ("cameras", "images", "points3D")


# ------------------------------------------------------------------------------------------- records
@dataclass
class ColmapCamera:
    """One intrinsic calibration. ``params`` in COLMAP's order for ``model`` (e.g. PINHOLE: fx fy cx cy)."""

    id: int
    model: str
    width: int
    height: int
    params: np.ndarray

    def __post_init__(self) -> None:
        self.model = str(self.model).upper()
        spec = CAMERA_MODELS.get(self.model)
        if spec is None:
            raise ValueError(f"unknown COLMAP camera model {self.model!r}; known: {', '.join(CAMERA_MODELS)}")
        self.params = np.asarray(self.params, dtype=np.float64).reshape(-1)
        if self.params.size != spec.num_params:
            raise ValueError(f"{self.model} takes {spec.num_params} params, got {self.params.size}")
        self.id, self.width, self.height = int(self.id), int(self.width), int(self.height)

    @property
    def spec(self) -> CameraModelSpec:
        return CAMERA_MODELS[self.model]

    @property
    def is_pinhole(self) -> bool:
        """True when the camera projects exactly like a pinhole (a pinhole-family model, no distortion)."""
        s = self.spec
        extra = self.params[s.num_focal + 2 :]
        return s.pinhole_family and not np.any(extra)

    def to_intrinsics(self, allow_distortion: bool = False) -> Intrinsics:
        """The pinhole part of this camera. Distortion is an error unless ``allow_distortion`` (then ignored)."""
        s = self.spec
        if s.num_focal == 0 or (not s.pinhole_family and not allow_distortion):
            raise ValueError(f"COLMAP camera {self.id} is {self.model}, not a pinhole camera")
        if not allow_distortion and not self.is_pinhole:
            raise ValueError(f"COLMAP camera {self.id} ({self.model}) has non-zero distortion parameters")
        p = self.params
        if s.num_focal == 1:
            fx = fy = p[0]
            cx, cy = p[1], p[2]
        else:
            fx, fy, cx, cy = p[0], p[1], p[2], p[3]
        return Intrinsics(float(fx), float(fy), float(cx), float(cy), self.width, self.height)

    @classmethod
    def from_intrinsics(cls, intrinsics: Intrinsics, camera_id: int = 1) -> ColmapCamera:
        k = intrinsics
        return cls(camera_id, "PINHOLE", k.width, k.height, np.array([k.fx, k.fy, k.cx, k.cy]))


@dataclass
class ColmapImage:
    """A registered image: world-to-camera pose (``qvec`` w,x,y,z; ``tvec``), its camera and 2D points."""

    id: int
    qvec: np.ndarray
    tvec: np.ndarray
    camera_id: int
    name: str
    xys: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    point3D_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        self.id, self.camera_id, self.name = int(self.id), int(self.camera_id), str(self.name)
        self.qvec = np.asarray(self.qvec, dtype=np.float64).reshape(4)
        self.tvec = np.asarray(self.tvec, dtype=np.float64).reshape(3)
        self.xys = np.asarray(self.xys, dtype=np.float64).reshape(-1, 2)
        self.point3D_ids = np.asarray(self.point3D_ids, dtype=np.int64).reshape(-1)
        if self.xys.shape[0] != self.point3D_ids.shape[0]:
            raise ValueError(f"image {self.id}: {self.xys.shape[0]} points2D but {self.point3D_ids.shape[0]} ids")

    @property
    def rotation(self) -> np.ndarray:
        """World-to-camera rotation matrix."""
        return qvec_to_rotmat(self.qvec)

    @property
    def world_to_camera(self) -> np.ndarray:
        m = np.eye(4)
        m[:3, :3] = self.rotation
        m[:3, 3] = self.tvec
        return m

    @property
    def camera_to_world(self) -> np.ndarray:
        R = self.rotation
        m = np.eye(4)
        m[:3, :3] = R.T
        m[:3, 3] = -R.T @ self.tvec
        return m


@dataclass
class ColmapPoint3D:
    """A triangulated point with its colour, reprojection error and track (image_id, point2D_idx) pairs."""

    id: int
    xyz: np.ndarray
    rgb: np.ndarray
    error: float = 0.0
    image_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    point2D_idxs: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        self.id, self.error = int(self.id), float(self.error)
        self.xyz = np.asarray(self.xyz, dtype=np.float64).reshape(3)
        self.rgb = np.asarray(self.rgb).reshape(3).astype(np.uint8)
        self.image_ids = np.asarray(self.image_ids, dtype=np.int64).reshape(-1)
        self.point2D_idxs = np.asarray(self.point2D_idxs, dtype=np.int64).reshape(-1)
        if self.image_ids.shape != self.point2D_idxs.shape:
            raise ValueError(f"point {self.id}: track image_ids and point2D_idxs differ in length")


@dataclass
class ColmapModel:
    """A sparse reconstruction; dicts keyed by id, in file order."""

    cameras: dict[int, ColmapCamera] = field(default_factory=dict)
    images: dict[int, ColmapImage] = field(default_factory=dict)
    points3D: dict[int, ColmapPoint3D] = field(default_factory=dict)

    def camera_of(self, image: ColmapImage | int) -> ColmapCamera:
        img = self.images[image] if isinstance(image, int) else image
        return self.cameras[img.camera_id]

    def to_camera(self, image: ColmapImage | int, allow_distortion: bool = False) -> Camera:
        img = self.images[image] if isinstance(image, int) else image
        return camera_from_image(img, self.camera_of(img), allow_distortion=allow_distortion)

    def points_xyz_rgb(self) -> tuple[np.ndarray, np.ndarray]:
        """All 3D points as (N, 3) float64 and their colours (N, 3) uint8."""
        if not self.points3D:
            return np.zeros((0, 3)), np.zeros((0, 3), np.uint8)
        pts = list(self.points3D.values())
        return np.stack([p.xyz for p in pts]), np.stack([p.rgb for p in pts])


# ----------------------------------------------------------------------------------- rotation maths
def qvec_to_rotmat(qvec: np.ndarray) -> np.ndarray:
    """Unit quaternion (w, x, y, z) → 3×3 rotation matrix (the quaternion is normalised first)."""
    q = np.asarray(qvec, dtype=np.float64).reshape(4)
    n = np.linalg.norm(q)
    if not np.isfinite(n) or n == 0:
        raise ValueError(f"invalid quaternion {q}")
    w, x, y, z = q / n
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def rotmat_to_qvec(R: np.ndarray) -> np.ndarray:
    """3×3 rotation matrix → unit quaternion (w, x, y, z) with w ≥ 0 (Shepperd's method: divide by the
    largest of the four candidate components, which is stable for every rotation)."""
    m = np.asarray(R, dtype=np.float64).reshape(3, 3)
    if not np.all(np.isfinite(m)):
        raise ValueError("rotation matrix has NaN or infinite entries")
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    k = int(np.argmax([tr, m[0, 0], m[1, 1], m[2, 2]]))
    if k == 0:
        w = 0.5 * np.sqrt(max(1.0 + tr, 0.0))
        s = 0.25 / w
        q = [w, (m[2, 1] - m[1, 2]) * s, (m[0, 2] - m[2, 0]) * s, (m[1, 0] - m[0, 1]) * s]
    elif k == 1:
        x = 0.5 * np.sqrt(max(1.0 + m[0, 0] - m[1, 1] - m[2, 2], 0.0))
        s = 0.25 / x
        q = [(m[2, 1] - m[1, 2]) * s, x, (m[0, 1] + m[1, 0]) * s, (m[0, 2] + m[2, 0]) * s]
    elif k == 2:
        y = 0.5 * np.sqrt(max(1.0 + m[1, 1] - m[0, 0] - m[2, 2], 0.0))
        s = 0.25 / y
        q = [(m[0, 2] - m[2, 0]) * s, (m[0, 1] + m[1, 0]) * s, y, (m[1, 2] + m[2, 1]) * s]
    else:
        z = 0.5 * np.sqrt(max(1.0 + m[2, 2] - m[0, 0] - m[1, 1], 0.0))
        s = 0.25 / z
        q = [(m[1, 0] - m[0, 1]) * s, (m[0, 2] + m[2, 0]) * s, (m[1, 2] + m[2, 1]) * s, z]
    qv = np.asarray(q, dtype=np.float64)
    qv /= np.linalg.norm(qv)
    return -qv if qv[0] < 0 else qv


# ------------------------------------------------------------------------------------- conversions
def camera_from_image(image: ColmapImage, camera: ColmapCamera, allow_distortion: bool = False) -> Camera:
    """COLMAP image + its camera → :class:`Camera` (camera-to-world 4×4, OpenCV axes, named by the image)."""
    return Camera(camera.to_intrinsics(allow_distortion), image.camera_to_world, name=image.name)


def image_from_camera(camera: Camera, image_id: int, camera_id: int = 1, name: str | None = None) -> ColmapImage:
    """:class:`Camera` → COLMAP image (world-to-camera quaternion and translation), without 2D points."""
    c2w = np.asarray(camera.camera_to_world, dtype=np.float64)
    R = c2w[:3, :3].T
    t = -R @ c2w[:3, 3]
    return ColmapImage(image_id, rotmat_to_qvec(R), t, camera_id, camera.name if name is None else name)


# ------------------------------------------------------------------------------------------ reading
def read_model(path: PathLike) -> ColmapModel:
    """Read a sparse model folder (e.g. ``sparse/0``), binary if the three ``.bin`` files exist, else text."""
    folder = require_dir(path, "COLMAP model folder")
    for ext, readers in ((".bin", _BIN_READERS), (".txt", _TXT_READERS)):
        files = [folder / f"{n}{ext}" for n in _FILES]
        if all(f.is_file() for f in files):
            read_cameras, read_images, read_points = readers
            model = ColmapModel(read_cameras(files[0]), read_images(files[1]), read_points(files[2]))
            _check_references(model, folder / f"images{ext}")
            return model
    present = sorted(p.name for p in folder.iterdir() if p.suffix in (".bin", ".txt"))
    raise DataError(
        f"no complete COLMAP model (found {', '.join(present) or 'no model files'})",
        folder,
        "the folder needs cameras, images and points3D, all .bin or all .txt",
    )


def _check_references(model: ColmapModel, images_file: Path) -> None:
    for img in model.images.values():
        if img.camera_id not in model.cameras:
            raise DataError(f"image {img.id} ({img.name}) refers to missing camera {img.camera_id}", images_file)


class _Reader:
    """Bounds-checked little-endian reader over a whole file; a short read raises DataError naming it."""

    def __init__(self, path: Path):
        self.path = path
        self.buf = path.read_bytes()
        self.pos = 0

    def take(self, fmt: str) -> tuple:
        s = struct.Struct("<" + fmt)
        if self.pos + s.size > len(self.buf):
            self._truncated()
        out = s.unpack_from(self.buf, self.pos)
        self.pos += s.size
        return out

    def array(self, dtype: np.dtype, count: int) -> np.ndarray:
        dt = np.dtype(dtype)
        n = dt.itemsize * count
        if count < 0 or self.pos + n > len(self.buf):
            self._truncated()
        out = np.frombuffer(self.buf, dtype=dt, count=count, offset=self.pos)
        self.pos += n
        return out

    def cstring(self) -> str:
        end = self.buf.find(b"\x00", self.pos)
        if end < 0:
            self._truncated()
        raw = self.buf[self.pos : end]
        self.pos = end + 1
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(f"image name is not UTF-8 at byte {self.pos}", self.path) from e

    def count(self, per_item_min: int) -> int:
        (n,) = self.take("Q")
        if n * per_item_min > len(self.buf) - self.pos:
            self._truncated(f"header says {n} records but the file is too short for them")
        return int(n)

    def finish(self) -> None:
        if self.pos != len(self.buf):
            raise DataError(
                f"{len(self.buf) - self.pos} unexpected bytes after the last record",
                self.path,
                "the file is corrupt or not a COLMAP model file; re-export the model",
            )

    def _truncated(self, why: str | None = None):
        raise DataError(
            why or f"truncated COLMAP binary file (ends at byte {len(self.buf)} inside a record)",
            self.path,
            "re-export the model (colmap model_converter) or use the text format",
        )


_POINT2D_DT = np.dtype([("x", "<f8"), ("y", "<f8"), ("id", "<i8")])
_TRACK_DT = np.dtype([("image_id", "<u4"), ("idx", "<u4")])


def _read_cameras_bin(path: Path) -> dict[int, ColmapCamera]:
    r = _Reader(path)
    out: dict[int, ColmapCamera] = {}
    for _ in range(r.count(24)):
        cam_id, model_id, width, height = r.take("IiQQ")
        spec = _MODEL_BY_ID.get(model_id)
        if spec is None:
            raise DataError(f"camera {cam_id} has unknown camera model id {model_id}", path)
        params = r.array(np.dtype("<f8"), spec.num_params).astype(np.float64)
        out[cam_id] = ColmapCamera(cam_id, spec.name, width, height, params)
    r.finish()
    return out


def _read_images_bin(path: Path) -> dict[int, ColmapImage]:
    r = _Reader(path)
    out: dict[int, ColmapImage] = {}
    for _ in range(r.count(64 + 1 + 8)):
        vals = r.take("I7dI")
        name = r.cstring()
        (n2d,) = r.take("Q")
        pts = r.array(_POINT2D_DT, int(n2d))
        xys = np.stack([pts["x"], pts["y"]], axis=1).astype(np.float64)
        out[vals[0]] = ColmapImage(
            vals[0], np.asarray(vals[1:5]), np.asarray(vals[5:8]), vals[8], name, xys, pts["id"].astype(np.int64)
        )
    r.finish()
    return out


def _read_points_bin(path: Path) -> dict[int, ColmapPoint3D]:
    r = _Reader(path)
    out: dict[int, ColmapPoint3D] = {}
    for _ in range(r.count(43 + 8)):
        vals = r.take("Q3d3BdQ")
        track = r.array(_TRACK_DT, int(vals[8]))
        out[vals[0]] = ColmapPoint3D(
            vals[0],
            np.asarray(vals[1:4]),
            np.asarray(vals[4:7]),
            vals[7],
            track["image_id"].astype(np.int64),
            track["idx"].astype(np.int64),
        )
    r.finish()
    return out


def _text_lines(path: Path) -> list[tuple[int, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"not a UTF-8 text file ({e})", path, "re-export the model as text") from e
    return [(i + 1, ln.strip()) for i, ln in enumerate(text.splitlines()) if not ln.lstrip().startswith("#")]


def _parse_error(path: Path, lineno: int, what: str, e: Exception | None = None) -> DataError:
    detail = f" ({e})" if e else ""
    return DataError(f"line {lineno}: {what}{detail}", path, "fix or re-export the COLMAP text model")


def _read_cameras_txt(path: Path) -> dict[int, ColmapCamera]:
    out: dict[int, ColmapCamera] = {}
    for lineno, line in _text_lines(path):
        if not line:
            continue
        el = line.split()
        try:
            cam = ColmapCamera(int(el[0]), el[1], int(el[2]), int(el[3]), np.array([float(v) for v in el[4:]]))
        except (IndexError, ValueError) as e:
            raise _parse_error(path, lineno, "bad camera line", e) from e
        out[cam.id] = cam
    return out


def _read_images_txt(path: Path) -> dict[int, ColmapImage]:
    out: dict[int, ColmapImage] = {}
    lines = _text_lines(path)
    i = 0
    while i < len(lines):
        lineno, line = lines[i]
        i += 1
        if not line:
            continue
        el = line.split()
        if len(el) < 10:
            raise _parse_error(path, lineno, f"image line needs 10 fields, has {len(el)}")
        # the POINTS2D line always follows (possibly empty; missing at the very end of the file)
        pts_line = ""
        if i < len(lines):
            pts_line = lines[i][1]
            i += 1
        try:
            nums = pts_line.split()
            if len(nums) % 3:
                raise ValueError(f"{len(nums)} values, not a multiple of 3")
            xs = np.array([float(v) for v in nums[0::3]], dtype=np.float64)
            ys = np.array([float(v) for v in nums[1::3]], dtype=np.float64)
            ids = np.array([int(v) for v in nums[2::3]], dtype=np.int64)
            img = ColmapImage(
                int(el[0]),
                np.array([float(v) for v in el[1:5]]),
                np.array([float(v) for v in el[5:8]]),
                int(el[8]),
                " ".join(el[9:]),
                np.stack([xs, ys], axis=1),
                ids,
            )
        except ValueError as e:
            raise _parse_error(path, lineno, "bad image record", e) from e
        out[img.id] = img
    return out


def _read_points_txt(path: Path) -> dict[int, ColmapPoint3D]:
    out: dict[int, ColmapPoint3D] = {}
    for lineno, line in _text_lines(path):
        if not line:
            continue
        el = line.split()
        try:
            if len(el) < 8 or (len(el) - 8) % 2:
                raise ValueError(f"{len(el)} fields")
            rgb = [int(v) for v in el[4:7]]
            if not all(0 <= c <= 255 for c in rgb):
                raise ValueError(f"colour {rgb} out of 0..255")
            pt = ColmapPoint3D(
                int(el[0]),
                np.array([float(v) for v in el[1:4]]),
                np.array(rgb),
                float(el[7]),
                np.array([int(v) for v in el[8::2]], dtype=np.int64),
                np.array([int(v) for v in el[9::2]], dtype=np.int64),
            )
        except ValueError as e:
            raise _parse_error(path, lineno, "bad point3D line", e) from e
        out[pt.id] = pt
    return out


_BIN_READERS = (_read_cameras_bin, _read_images_bin, _read_points_bin)
_TXT_READERS = (_read_cameras_txt, _read_images_txt, _read_points_txt)


# ------------------------------------------------------------------------------------------ writing
def write_model(model: ColmapModel, path: PathLike, binary: bool = False) -> Path:
    """Write ``model`` into folder ``path`` (created if needed) as ``.bin`` or ``.txt`` files.

    Each file is written atomically; floats in text files use Python's shortest round-trip repr, so a
    text round trip is exact.
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    ext = ".bin" if binary else ".txt"
    writers: tuple[Callable[[Any], bytes | str], ...] = (
        (_write_cameras_bin, _write_images_bin, _write_points_bin)
        if binary
        else (_write_cameras_txt, _write_images_txt, _write_points_txt)
    )
    parts = (model.cameras, model.images, model.points3D)
    for name, writer, records in zip(_FILES, writers, parts, strict=True):
        with atomic_path(folder / f"{name}{ext}") as tmp:
            data = writer(records)
            if isinstance(data, bytes):
                tmp.write_bytes(data)
            else:
                tmp.write_text(data, encoding="utf-8")
    return folder


def _write_cameras_bin(cams: dict[int, ColmapCamera]) -> bytes:
    out = [struct.pack("<Q", len(cams))]
    for c in cams.values():
        out.append(struct.pack("<IiQQ", c.id, c.spec.model_id, c.width, c.height))
        out.append(c.params.astype("<f8").tobytes())
    return b"".join(out)


def _write_images_bin(imgs: dict[int, ColmapImage]) -> bytes:
    out = [struct.pack("<Q", len(imgs))]
    for im in imgs.values():
        name = im.name.encode("utf-8")
        if b"\x00" in name:
            raise ValueError(f"image name {im.name!r} contains a NUL byte")
        out.append(struct.pack("<I7dI", im.id, *im.qvec, *im.tvec, im.camera_id))
        out.append(name + b"\x00")
        out.append(struct.pack("<Q", im.xys.shape[0]))
        pts = np.empty(im.xys.shape[0], dtype=_POINT2D_DT)
        pts["x"], pts["y"], pts["id"] = im.xys[:, 0], im.xys[:, 1], im.point3D_ids
        out.append(pts.tobytes())
    return b"".join(out)


def _write_points_bin(pts: dict[int, ColmapPoint3D]) -> bytes:
    out = [struct.pack("<Q", len(pts))]
    for p in pts.values():
        out.append(struct.pack("<Q3d3BdQ", p.id, *p.xyz, *(int(c) for c in p.rgb), p.error, p.image_ids.size))
        track = np.empty(p.image_ids.size, dtype=_TRACK_DT)
        track["image_id"], track["idx"] = p.image_ids, p.point2D_idxs
        out.append(track.tobytes())
    return b"".join(out)


def _f(x: float) -> str:
    return repr(float(x))


def _write_cameras_txt(cams: dict[int, ColmapCamera]) -> str:
    lines = [
        "# Camera list with one line of data per camera:",
        "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]",
        f"# Number of cameras: {len(cams)}",
    ]
    for c in cams.values():
        lines.append(" ".join([str(c.id), c.model, str(c.width), str(c.height), *(_f(v) for v in c.params)]))
    return "\n".join(lines) + "\n"


def _write_images_txt(imgs: dict[int, ColmapImage]) -> str:
    mean_obs = np.mean([im.point3D_ids.size for im in imgs.values()]) if imgs else 0.0
    lines = [
        "# Image list with two lines of data per image:",
        "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME",
        "#   POINTS2D[] as (X, Y, POINT3D_ID)",
        f"# Number of images: {len(imgs)}, mean observations per image: {mean_obs}",
    ]
    for im in imgs.values():
        if any(ch.isspace() for ch in im.name) or not im.name:
            raise ValueError(f"image name {im.name!r} cannot be written to a COLMAP text model (empty or has spaces)")
        pose = [*(_f(v) for v in im.qvec), *(_f(v) for v in im.tvec)]
        lines.append(" ".join([str(im.id), *pose, str(im.camera_id), im.name]))
        lines.append(" ".join(f"{_f(x)} {_f(y)} {int(i)}" for (x, y), i in zip(im.xys, im.point3D_ids, strict=True)))
    return "\n".join(lines) + "\n"


def _write_points_txt(pts: dict[int, ColmapPoint3D]) -> str:
    mean_track = np.mean([p.image_ids.size for p in pts.values()]) if pts else 0.0
    lines = [
        "# 3D point list with one line of data per point:",
        "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)",
        f"# Number of points: {len(pts)}, mean track length: {mean_track}",
    ]
    for p in pts.values():
        track = " ".join(f"{int(a)} {int(b)}" for a, b in zip(p.image_ids, p.point2D_idxs, strict=True))
        head = " ".join([str(p.id), *(_f(v) for v in p.xyz), *(str(int(c)) for c in p.rgb), _f(p.error)])
        lines.append(f"{head} {track}" if track else head)
    return "\n".join(lines) + "\n"
