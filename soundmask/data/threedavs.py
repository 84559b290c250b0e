"""3DAVS-S34-O7 scenes (EchoSegnet, x-up-lab/3d-audio-visual-segmentation): read and write.

One scene folder holds::

    input/<name>.png              RGB frames (1008×1008 in the release)
    semantic_masks/<name>.png     GT of the sounding instance (0 / 255)
    audio_clips_binaural/frame_<n>.wav   1 s, 44.1 kHz, 2 channels (0 = left), one per frame
    audio_clips_mono/frame_<n>.wav       the same as mono (the release's are 2 s: see below)
    sparse/0/{cameras,images,points3D}.{bin|txt}   COLMAP model (undistorted, PINHOLE)
    camera_splits.json            the train/test split
    (images/, distorted/, stereo/ are COLMAP/3D-GS by-products; only images/ is read, as a fallback)

What the original code does, and what this module copies (checked against its sources):

* cameras are the registered COLMAP images, sorted by ``image_name`` = the image file's base name up to its
  first ``.`` (plain string sort); test views are positions ``idx % 8 == 0`` of that sorted list
  (3D-GS ``readColmapSceneInfo`` with ``llffhold=8``), train views the rest;
* GT masks are ``semantic_masks/<image_name>.png`` and RGB ``input/<image_name>.png``;
* a frame's clip is found by number: ``n = int(image_name.split('_')[-1])``; mono clips are
  ``audio_clips_mono/frame_<n>.wav``; binaural clips are keyed by the part of their stem after the last
  ``_``.

Not verifiable from the public sources (no sample scene is published with the code): the JSON structure of
``camera_splits.json`` (we write ``{"train": [names], "test": [names]}`` and read that, a name → split
mapping, or a list of ``{"img_name", "split"}`` records), the exact image names and zero padding in the
release, the binaural clip prefix (we write ``frame_<n>.wav`` like the mono clips), and the sample rate of
the mono clips. The release's mono clips are 2 s (1 s plus 0.5 s of each neighbour, train/test-leakage
aware); the writer here writes 1 s mono clips covering the same window as the binaural clip.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from soundmask.constants import SCENE_SAMPLE_RATE, TEST_EVERY
from soundmask.data.colmap import (
    ColmapCamera,
    ColmapModel,
    ColmapPoint3D,
    image_from_camera,
    read_model,
    write_model,
)
from soundmask.data.io import (
    PathLike,
    atomic_dir,
    read_audio,
    read_image,
    read_json,
    read_mask,
    require_dir,
    write_audio,
    write_image,
    write_json,
    write_mask,
)
from soundmask.data.types import Intrinsics, Scene, SceneFrame
from soundmask.errors import DataError

__all__ = [
    "SPLIT_FILE",
    "TEST_EVERY",
    "audio_clip_name",
    "frame_number",
    "image_name",
    "load_3davs_binaural",
    "load_3davs_mask",
    "load_3davs_mono",
    "load_3davs_rgb",
    "read_3davs_scene",
    "read_camera_splits",
    "split_by_rule",
    "write_3davs_scene",
]

SPLIT_FILE = "camera_splits.json"
RGB_DIR, MASK_DIR, BINAURAL_DIR, MONO_DIR, SPARSE_DIR = (
    "input",
    "semantic_masks",
    "audio_clips_binaural",
    "audio_clips_mono",
    "sparse/0",
)
_IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".JPG", ".PNG", ".JPEG")


# ------------------------------------------------------------------------------------------- naming
def image_name(colmap_name: str) -> str:
    """EchoSegnet's key for an image: base name up to the first dot (``sub/frame_012.png`` → ``frame_012``)."""
    return Path(colmap_name.replace("\\", "/")).name.split(".")[0]


def frame_number(name: str) -> int | None:
    """The frame number EchoSegnet reads from a name (``int(name.split('_')[-1])``), or None if not a number."""
    tail = name.split("_")[-1]
    return int(tail) if tail.isdigit() else None


def audio_clip_name(name: str) -> str:
    """File stem of a frame's clips as we write them: ``frame_<n>`` (unpadded), or the name itself."""
    n = frame_number(name)
    return f"frame_{n}" if n is not None else name


def _audio_key(stem: str) -> str:
    n = frame_number(stem)
    return str(n) if n is not None else stem


def split_by_rule(names: Sequence[str], every: int = TEST_EVERY) -> dict[str, list[str]]:
    """EchoSegnet / 3D-GS split: sort the names, every ``every``-th (``idx % every == 0``) is a test view."""
    ordered = sorted(names)
    return {
        "train": [n for i, n in enumerate(ordered) if i % every != 0],
        "test": [n for i, n in enumerate(ordered) if i % every == 0],
    }


def read_camera_splits(path: PathLike) -> dict[str, list[str]]:
    """Read ``camera_splits.json`` into ``{"train": [image_name...], "test": [...]}`` (names without extension).

    Accepted shapes (the release's is not documented): ``{"train": [...], "test": [...]}`` whose items are
    names or records with ``img_name``/``image_name``/``name``; ``{name: "train"|"test"}``; or a list of
    records with a name and ``split``.
    """
    p = Path(path)
    obj = read_json(p, "camera split file")
    out: dict[str, list[str]] = {"train": [], "test": []}

    def name_of(item: Any) -> str:
        if isinstance(item, str):
            return image_name(item)
        if isinstance(item, dict):
            for k in ("img_name", "image_name", "name", "file", "image"):
                if isinstance(item.get(k), str):
                    return image_name(item[k])
        raise DataError(f"cannot find an image name in entry {item!r}", p, _SPLIT_FIX)

    def split_of(value: Any) -> str:
        s = str(value).lower()
        if s in ("train", "training"):
            return "train"
        if s in ("test", "testing", "eval", "val"):
            return "test"
        raise DataError(f"unknown split {value!r}", p, _SPLIT_FIX)

    lower = {str(k).lower(): v for k, v in obj.items()} if isinstance(obj, dict) else {}
    if isinstance(obj, dict) and any(k in lower for k in ("train", "test")):
        for key in ("train", "test"):
            items = lower.get(key, lower.get(key + "_cameras", []))
            if not isinstance(items, list):
                raise DataError(f"'{key}' must be a list of image names", p, _SPLIT_FIX)
            out[key] = [name_of(i) for i in items]
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out[split_of(v)].append(image_name(str(k)))
    elif isinstance(obj, list):
        for item in obj:
            if not isinstance(item, dict) or "split" not in item:
                raise DataError(f"list entries need a name and a 'split', got {item!r}", p, _SPLIT_FIX)
            out[split_of(item["split"])].append(name_of(item))
    else:
        raise DataError("expected a JSON object or list", p, _SPLIT_FIX)
    return {k: sorted(v) for k, v in out.items()}


_SPLIT_FIX = 'write it as {"train": [image names], "test": [image names]}'


# ------------------------------------------------------------------------------------------ reading
def read_3davs_scene(path: PathLike, allow_distortion: bool = False) -> Scene:
    """Read a 3DAVS-S34-O7 scene folder (or one of our scenes, which carry the same files).

    Frames are the registered COLMAP images in EchoSegnet's order (sorted by image name). Each frame's
    ``index`` is the number in its name (``frame_012`` → 12; the list position when there is none), its
    ``time`` is ``index`` seconds (one 1 s clip per frame), ``file`` is its RGB path relative to the scene.
    ``scene.extra`` holds ``format`` ("3davs"), ``split`` (train/test image names), ``split_source``
    (the split file or "rule"), ``split_matches_rule``, ``image_names``, ``colmap_image_ids`` and
    ``unregistered`` (frames in ``input/`` that COLMAP did not register). Objects and sound events are
    not part of the format and stay empty.
    """
    root = require_dir(path, "3DAVS scene folder")
    sparse = root / SPARSE_DIR
    if not sparse.is_dir():
        raise DataError("no COLMAP model folder sparse/0", root, "a 3DAVS scene needs input/ and sparse/0/")
    model = read_model(sparse)

    entries = []
    for img in model.images.values():
        entries.append((image_name(img.name), img))
    entries.sort(key=lambda e: e[0])
    names = [n for n, _ in entries]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DataError(f"several COLMAP images share the name(s) {', '.join(dupes[:5])}", sparse)

    frames: list[SceneFrame] = []
    for pos, (name, img) in enumerate(entries):
        rel = _find_rgb(root, img.name, name)
        try:
            cam = model.to_camera(img, allow_distortion=allow_distortion)
        except ValueError as e:
            raise DataError(
                str(e), sparse, "undistort the images first (colmap image_undistorter writes PINHOLE cameras)"
            ) from e
        cam.name = name
        n = frame_number(name)
        index = n if n is not None else pos
        frames.append(SceneFrame(index=index, time=float(index), file=rel, camera=cam))
    if not frames:
        raise DataError("the COLMAP model has no registered images", sparse)

    rule = split_by_rule(names)
    split_file = root / SPLIT_FILE
    if split_file.is_file():
        split = read_camera_splits(split_file)
        source = SPLIT_FILE
    else:
        split, source = rule, "rule"
    registered = set(names)
    input_dir = root / RGB_DIR
    in_input = []
    if input_dir.is_dir():
        in_input = [p.name.split(".")[0] for p in input_dir.iterdir() if p.suffix in _IMAGE_EXTS]
    unregistered = sorted(n for n in in_input if n not in registered)
    return Scene(
        frames=frames,
        fps=1.0,
        sample_rate=_clip_rate(root) or SCENE_SAMPLE_RATE,
        root=root,
        name=root.name,
        extra={
            "format": "3davs",
            "split": split,
            "split_source": source,
            "split_matches_rule": split == rule,
            "image_names": names,
            "colmap_image_ids": [img.id for _, img in entries],
            "unregistered": unregistered,
        },
    )


def _find_rgb(root: Path, colmap_name: str, name: str) -> str:
    base = Path(colmap_name.replace("\\", "/")).name
    candidates = [f"{RGB_DIR}/{base}"] + [f"{RGB_DIR}/{name}{e}" for e in _IMAGE_EXTS]
    candidates += [f"images/{base}"] + [f"images/{name}{e}" for e in _IMAGE_EXTS]
    for c in candidates:
        if (root / c).is_file():
            return c
    raise DataError(
        f"frame '{colmap_name}' is registered in sparse/0 but has no image in input/ or images/",
        root / RGB_DIR / base,
        "restore the frame or remove it from the COLMAP model",
    )


def _clip_rate(root: Path) -> int | None:
    d = root / BINAURAL_DIR
    if not d.is_dir():
        return None
    for p in sorted(d.iterdir()):
        if p.suffix.lower() in (".wav", ".flac"):
            try:
                return int(sf.info(str(p)).samplerate)
            except (sf.LibsndfileError, RuntimeError):
                return None
    return None


# ------------------------------------------------------------------------------------------ loaders
def _frame(scene: Scene, i: int) -> tuple[Path, SceneFrame]:
    """(the scene's root folder, frame ``i``)."""
    if scene.root is None:
        raise ValueError("scene has no root folder (it was not read from disk)")
    if not -len(scene.frames) <= i < len(scene.frames):
        raise IndexError(f"frame {i} out of range (scene has {len(scene.frames)} frames)")
    return Path(scene.root), scene.frames[i]


def load_3davs_rgb(scene: Scene, i: int) -> np.ndarray:
    """Frame ``i`` (list position) as uint8 (H, W, 3); a size other than the camera's is a DataError."""
    root, f = _frame(scene, i)
    return read_image(root / f.file, size=(f.camera.intrinsics.height, f.camera.intrinsics.width))


def load_3davs_mask(scene: Scene, i: int) -> np.ndarray:
    """GT sounding-instance mask of frame ``i`` (``semantic_masks/<name>.png``) as bool (H, W)."""
    root, f = _frame(scene, i)
    k = f.camera.intrinsics
    return read_mask(root / MASK_DIR / f"{f.stem}.png", size=(k.height, k.width))


def _find_clip(scene: Scene, i: int, folder: str) -> Path:
    root, f = _frame(scene, i)
    d = root / folder
    require_dir(d, f"{folder} folder")
    key = _audio_key(f.stem)
    exact = [d / f"{f.stem}.wav", d / f"{audio_clip_name(f.stem)}.wav"]
    for p in exact:
        if p.is_file():
            return p
    for p in sorted(d.iterdir()):
        if p.suffix.lower() in (".wav", ".flac") and _audio_key(p.name.split(".")[0].split("_")[-1]) == key:
            return p
    raise DataError(
        f"no clip for frame {f.stem} (looked for {audio_clip_name(f.stem)}.wav or *_{key}.wav)",
        d,
        "add the frame's audio clip",
    )


def load_3davs_binaural(scene: Scene, i: int) -> tuple[np.ndarray, int]:
    """Binaural clip of frame ``i``: float32 (2, samples), channel 0 = left, and its sample rate."""
    return read_audio(_find_clip(scene, i, BINAURAL_DIR), channels=2)


def load_3davs_mono(scene: Scene, i: int) -> tuple[np.ndarray, int]:
    """Mono clip of frame ``i``: float32 (samples,) and its sample rate (a stereo file is averaged)."""
    audio, sr = read_audio(_find_clip(scene, i, MONO_DIR))
    return audio.mean(axis=0), sr


# ------------------------------------------------------------------------------------------ writing
def write_3davs_scene(
    path: PathLike,
    scene: Scene,
    rgb: np.ndarray | Sequence[np.ndarray],
    sound_masks: np.ndarray | Sequence[np.ndarray],
    binaural: np.ndarray | Sequence[np.ndarray],
    mono: np.ndarray | Sequence[np.ndarray] | None = None,
    *,
    points: np.ndarray | None = None,
    point_colors: np.ndarray | None = None,
    colmap_binary: bool = False,
    overwrite: bool = True,
) -> Path:
    """Write ``scene`` as a 3DAVS-S34-O7 folder at ``path`` (atomically: all or nothing).

    ``rgb`` (T, H, W, 3) uint8, ``sound_masks`` (T, H, W) bool, ``binaural`` T clips (2, S) at
    ``scene.sample_rate``, ``mono`` T clips (S,) (default: the binaural mean). Frames are named by their
    ``file`` stem (``<index:05d>`` when empty); names must sort in frame order so that EchoSegnet's
    sorted order and split agree with ours. ``points`` (N, 3) / ``point_colors`` (N, 3) uint8 seed the
    COLMAP ``points3D`` (empty otherwise).
    """
    with atomic_dir(path, overwrite=overwrite) as tmp:
        write_3davs_files(
            tmp, scene, rgb, sound_masks, binaural, mono,
            points=points, point_colors=point_colors, colmap_binary=colmap_binary,
        )  # fmt: skip
    return Path(path)


def frame_names(scene: Scene) -> list[str]:
    """The names the writers give the frames: their ``file`` stems, or ``<index:05d>`` for frames without one."""
    names = [f.stem if f.file else f"{f.index:05d}" for f in scene.frames]
    if len(set(names)) != len(names):
        raise ValueError("frame file names must be unique")
    if names != sorted(names):
        raise ValueError("frame file names must sort in frame order (zero-pad the numbers: 00000.png, 00001.png ...)")
    clips = [audio_clip_name(n) for n in names]
    if len(set(clips)) != len(clips):
        raise ValueError("frame names map to the same audio clip name (two frames with the same number)")
    return names


def write_3davs_files(
    root: Path,
    scene: Scene,
    rgb: np.ndarray | Sequence[np.ndarray],
    sound_masks: np.ndarray | Sequence[np.ndarray] | None,
    binaural: np.ndarray | Sequence[np.ndarray],
    mono: np.ndarray | Sequence[np.ndarray] | None = None,
    *,
    points: np.ndarray | None = None,
    point_colors: np.ndarray | None = None,
    colmap_binary: bool = False,
) -> dict[str, list[str]]:
    """Write the 3DAVS files of ``scene`` into the existing folder ``root``; return the train/test split.
    ``sound_masks`` None: a scene without ground truth (e.g. a user's video), no ``semantic_masks/``."""
    names = frame_names(scene)
    T = len(names)
    if T == 0:
        raise ValueError("scene has no frames")
    H, W = scene.size
    _check_len("rgb", rgb, T)
    if sound_masks is not None:
        _check_len("sound_masks", sound_masks, T)
    _check_len("binaural", binaural, T)
    if mono is not None:
        _check_len("mono", mono, T)
    sr = int(scene.sample_rate)
    for i, name in enumerate(names):
        img = np.asarray(rgb[i])
        if img.shape != (H, W, 3) or img.dtype != np.uint8:
            raise ValueError(f"rgb[{i}] must be uint8 ({H}, {W}, 3), got {img.dtype} {img.shape}")
        m = None if sound_masks is None else np.asarray(sound_masks[i])
        if m is not None and m.shape != (H, W):
            raise ValueError(f"sound_masks[{i}] must be ({H}, {W}), got {m.shape}")
        b = np.asarray(binaural[i], dtype=np.float32)
        if b.ndim != 2 or b.shape[0] != 2:
            raise ValueError(f"binaural[{i}] must be (2, samples), got {b.shape}")
        mo = b.mean(axis=0) if mono is None else np.asarray(mono[i], dtype=np.float32).reshape(-1)
        write_image(root / RGB_DIR / f"{name}.png", img)
        if m is not None:
            write_mask(root / MASK_DIR / f"{name}.png", m)
        clip = audio_clip_name(name)
        write_audio(root / BINAURAL_DIR / f"{clip}.wav", b, sr)
        write_audio(root / MONO_DIR / f"{clip}.wav", mo, sr)

    model = _colmap_model(scene, names, points, point_colors)
    write_model(model, root / SPARSE_DIR, binary=colmap_binary)
    split = split_by_rule(names)
    write_json(root / SPLIT_FILE, split)
    return split


def _check_len(what: str, seq: Any, n: int) -> None:
    if len(seq) != n:
        raise ValueError(f"{what} has {len(seq)} entries, the scene has {n} frames")


def _colmap_model(scene: Scene, names: list[str], points: np.ndarray | None, colors: np.ndarray | None) -> ColmapModel:
    model = ColmapModel()
    cam_ids: dict[Intrinsics, int] = {}
    for i, (frame, name) in enumerate(zip(scene.frames, names, strict=True)):
        k = frame.camera.intrinsics
        if k not in cam_ids:
            cam_ids[k] = len(cam_ids) + 1
            model.cameras[cam_ids[k]] = ColmapCamera.from_intrinsics(k, cam_ids[k])
        model.images[i + 1] = image_from_camera(frame.camera, i + 1, cam_ids[k], name=f"{name}.png")
    if points is not None:
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        cols = (
            np.full(pts.shape, 128, np.uint8) if colors is None else np.asarray(colors).reshape(-1, 3).astype(np.uint8)
        )
        if cols.shape != pts.shape:
            raise ValueError(f"point_colors must be {pts.shape}, got {cols.shape}")
        for j, (xyz, c) in enumerate(zip(pts, cols, strict=True)):
            model.points3D[j + 1] = ColmapPoint3D(j + 1, xyz, c, 0.0)
    return model
