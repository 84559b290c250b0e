"""Our scene format: the 3DAVS-S34-O7 layout plus depth, instance masks, full-length audio and ``scene.json``.

::

    scene.json                      the contract (DESIGN.md "Our scene"; docs/formats.md)
    input/<name>.png                RGB frames            ┐
    semantic_masks/<name>.png       sounding-object masks │ 3DAVS-compatible, so
    audio_clips_binaural/frame_<n>.wav   1 s per frame    │ ``read_3davs_scene`` reads
    audio_clips_mono/frame_<n>.wav                        │ our scenes too
    sparse/0/*.txt                  COLMAP (PINHOLE)      │
    camera_splits.json                                    ┘
    depth/<name>.npy | .png         float32 metres | uint16 millimetres (0 = no surface)
    instance_masks/<name>.png       uint16 object ids, 0 = background
    audio/stereo.wav                full length, channel 0 = left microphone
    audio/mono.wav                  full length
    audio/objects/<id>.wav          optional (generated scenes): object ``<id>``'s own stereo contribution, same
                                    rate, length and channel order as audio/stereo.wav; stereo.wav is their sum

``<name>`` is a frame's file stem (``input/00003.png`` → ``00003``); the writer names frames
``<position:05d>``. Scenes written before per-object audio existed have no ``audio/objects/`` folder and load
as before; only :func:`load_object_audio` needs it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from soundmask.constants import SPEED_OF_SOUND
from soundmask.data.io import (
    PathLike,
    atomic_dir,
    read_audio,
    read_json,
    read_label_image,
    require_dir,
    require_file,
    write_audio,
    write_image,
    write_json,
)
from soundmask.data.threedavs import (
    load_3davs_mask,
    load_3davs_rgb,
    write_3davs_files,
)
from soundmask.data.types import Camera, Intrinsics, Scene, SceneFrame, SoundEvent, SoundObject
from soundmask.errors import DataError

__all__ = [
    "SCENE_JSON",
    "load_depth",
    "load_instance_mask",
    "load_mono",
    "load_object_audio",
    "object_audio_ids",
    "load_rgb",
    "load_sound_mask",
    "load_stereo",
    "points_from_depth",
    "read_scene",
    "scene_from_json",
    "scene_to_json",
    "sound_masks_from_instances",
    "write_scene_video",
    "frame_clips",
    "write_scene",
]

SCENE_JSON = "scene.json"
DEPTH_DIR, INSTANCE_DIR, AUDIO_DIR = "depth", "instance_masks", "audio"
STEREO_FILE, MONO_FILE = "audio/stereo.wav", "audio/mono.wav"
OBJECT_AUDIO_DIR = "audio/objects"
_REGENERATE = "regenerate the scene with this version of soundmask (`soundmask synth`), which writes audio/objects/"
_FIX = "see the scene.json contract in docs/formats.md"
_TOP_KEYS = {
    "fps", "sample_rate", "width", "height", "speed_of_sound", "intrinsics", "room", "frames", "objects",
    "sound_events", "name",
}  # fmt: skip
_FRAME_KEYS = {"index", "time", "file", "camera_to_world", "mic_left", "mic_right"}
_OBJECT_KEYS = {"id", "category", "mesh", "sounding", "position", "positions"}
_EVENT_KEYS = {"object_id", "source", "start", "end"}
RIGID_TOL = 1e-4


# --------------------------------------------------------------------------------------- scene.json
def read_scene(path: PathLike) -> Scene:
    """Read and validate a scene folder (or its ``scene.json``); pixel and audio data stay on disk.

    Raises :class:`DataError` naming ``scene.json`` for a missing key, a wrong type, a non-finite or
    non-rigid ``camera_to_world``, an object ``positions`` list whose length is not the number of frames,
    an event on an unknown object; naming the frame file when one listed is missing.
    """
    p = Path(path)
    root = p.parent if p.name == SCENE_JSON and p.is_file() else p
    require_dir(root, "scene folder")
    js = root / SCENE_JSON
    obj = read_json(require_file(js, "scene.json", "a scene folder needs scene.json (soundmask writes it)"))
    scene = scene_from_json(obj, js)
    scene.root = root
    if not scene.name:
        scene.name = root.name
    for f in scene.frames:
        fp = root / f.file
        if not fp.is_file():
            raise DataError(f"frame {f.index} file listed in scene.json not found", fp, "restore it or fix 'file'")
    return scene


def scene_from_json(obj: Any, path: PathLike = SCENE_JSON) -> Scene:
    """Build a :class:`Scene` from parsed scene.json; ``path`` names the file in errors."""
    js = Path(path)
    v = _Validator(js)
    top = v.obj(obj, "scene.json")
    fps = v.positive(v.key(top, "fps"), "fps")
    sample_rate = v.int(v.key(top, "sample_rate"), "sample_rate", minimum=1)
    width = v.int(v.key(top, "width"), "width", minimum=1)
    height = v.int(v.key(top, "height"), "height", minimum=1)
    speed = v.positive(top.get("speed_of_sound", SPEED_OF_SOUND), "speed_of_sound")
    kin = v.obj(v.key(top, "intrinsics"), "intrinsics")
    k = Intrinsics(
        fx=v.positive(v.key(kin, "fx", "intrinsics"), "intrinsics.fx"),
        fy=v.positive(v.key(kin, "fy", "intrinsics"), "intrinsics.fy"),
        cx=v.finite(v.key(kin, "cx", "intrinsics"), "intrinsics.cx"),
        cy=v.finite(v.key(kin, "cy", "intrinsics"), "intrinsics.cy"),
        width=width,
        height=height,
    )
    room = top.get("room", {})
    if not isinstance(room, dict):
        raise DataError("'room' must be an object", js, _FIX)

    frames_js = v.key(top, "frames")
    if not isinstance(frames_js, list) or not frames_js:
        raise DataError("'frames' must be a non-empty list", js, _FIX)
    frames: list[SceneFrame] = []
    for i, fj in enumerate(frames_js):
        where = f"frames[{i}]"
        fj = v.obj(fj, where)
        file = v.key(fj, "file", where)
        if not isinstance(file, str) or not file:
            raise DataError(f"{where}.file must be a relative path string", js, _FIX)
        c2w = v.matrix(v.key(fj, "camera_to_world", where), f"{where}.camera_to_world")
        frames.append(
            SceneFrame(
                index=v.int(v.key(fj, "index", where), f"{where}.index", minimum=0),
                time=v.finite(v.key(fj, "time", where), f"{where}.time"),
                file=file,
                camera=Camera(k, c2w, name=Path(file).name.split(".")[0]),
                mic_left=v.vec3_or_none(fj.get("mic_left"), f"{where}.mic_left"),
                mic_right=v.vec3_or_none(fj.get("mic_right"), f"{where}.mic_right"),
                extra={kk: vv for kk, vv in fj.items() if kk not in _FRAME_KEYS},
            )
        )
    stems = [f.stem for f in frames]
    if len(set(stems)) != len(stems):
        raise DataError("two frames share a file name", js, "give every frame its own file")

    objects: list[SoundObject] = []
    for i, oj in enumerate(v.list(top.get("objects", []), "objects")):
        where = f"objects[{i}]"
        oj = v.obj(oj, where)
        if "positions" in oj:
            pos = v.points(oj["positions"], f"{where}.positions")
            if pos.shape[0] != len(frames):
                raise DataError(
                    f"{where}.positions has {pos.shape[0]} rows, the scene has {len(frames)} frames",
                    js,
                    "give one position per frame, or a single 'position' for a static object",
                )
        elif "position" in oj:
            pos = v.points([oj["position"]], f"{where}.position")
        else:
            raise DataError(f"{where}: missing key 'position' (or 'positions')", js, _FIX)
        category = v.key(oj, "category", where)
        if not isinstance(category, str):
            raise DataError(f"{where}.category must be a string", js, _FIX)
        objects.append(
            SoundObject(
                id=v.int(v.key(oj, "id", where), f"{where}.id"),
                category=category,
                sounding=v.bool(oj.get("sounding", True), f"{where}.sounding"),
                mesh=str(oj.get("mesh", "") or ""),
                positions=pos,
                extra={kk: vv for kk, vv in oj.items() if kk not in _OBJECT_KEYS},
            )
        )
    ids = [o.id for o in objects]
    if len(set(ids)) != len(ids):
        raise DataError("two objects share an id", js, "give every object its own id")

    events: list[SoundEvent] = []
    for i, ej in enumerate(v.list(top.get("sound_events", []), "sound_events")):
        where = f"sound_events[{i}]"
        ej = v.obj(ej, where)
        oid = v.int(v.key(ej, "object_id", where), f"{where}.object_id")
        if oid not in ids:
            raise DataError(f"{where}.object_id {oid} is not an object of the scene", js, _FIX)
        start = v.finite(v.key(ej, "start", where), f"{where}.start")
        end = v.finite(v.key(ej, "end", where), f"{where}.end")
        if end < start:
            raise DataError(f"{where} ends ({end}) before it starts ({start})", js, _FIX)
        events.append(
            SoundEvent(
                object_id=oid,
                start=start,
                end=end,
                source=str(ej.get("source", "") or ""),
                extra={kk: vv for kk, vv in ej.items() if kk not in _EVENT_KEYS},
            )
        )
    name = top.get("name", "")
    return Scene(
        frames=frames,
        objects=objects,
        sound_events=events,
        fps=fps,
        sample_rate=sample_rate,
        speed_of_sound=speed,
        room=room,
        name=name if isinstance(name, str) else "",
        extra={kk: vv for kk, vv in top.items() if kk not in _TOP_KEYS},
    )


def scene_to_json(scene: Scene) -> dict[str, Any]:
    """The scene.json object of ``scene`` (frames keep their ``file``; all frames must share intrinsics)."""
    if not scene.frames:
        raise ValueError("scene has no frames")
    k = scene.intrinsics
    for f in scene.frames:
        if f.camera.intrinsics != k:
            raise ValueError(f"frame {f.index} has other intrinsics than frame 0; scene.json holds one camera")
    out: dict[str, Any] = {
        "fps": float(scene.fps),
        "sample_rate": int(scene.sample_rate),
        "width": int(k.width),
        "height": int(k.height),
        "speed_of_sound": float(scene.speed_of_sound),
        "intrinsics": {"fx": k.fx, "fy": k.fy, "cx": k.cx, "cy": k.cy},
        "room": scene.room,
    }
    if scene.name:
        out["name"] = scene.name
    frames = []
    for f in scene.frames:
        fj: dict[str, Any] = {
            "index": int(f.index),
            "time": float(f.time),
            "file": f.file,
            "camera_to_world": np.asarray(f.camera.camera_to_world, dtype=np.float64).tolist(),
        }
        if f.mic_left is not None:
            fj["mic_left"] = np.asarray(f.mic_left, dtype=np.float64).reshape(3).tolist()
        if f.mic_right is not None:
            fj["mic_right"] = np.asarray(f.mic_right, dtype=np.float64).reshape(3).tolist()
        fj.update({kk: vv for kk, vv in f.extra.items() if kk not in fj and kk not in _FRAME_KEYS})
        frames.append(fj)
    out["frames"] = frames
    objects = []
    for o in scene.objects:
        oj: dict[str, Any] = {"id": int(o.id), "category": o.category, "mesh": o.mesh, "sounding": bool(o.sounding)}
        if o.moving:
            oj["positions"] = o.positions.tolist()
        else:
            oj["position"] = o.positions[0].tolist()
        oj.update({kk: vv for kk, vv in o.extra.items() if kk not in _OBJECT_KEYS})
        objects.append(oj)
    out["objects"] = objects
    events = []
    for e in scene.sound_events:
        ej: dict[str, Any] = {
            "object_id": int(e.object_id), "source": e.source, "start": float(e.start), "end": float(e.end),
        }  # fmt: skip
        ej.update({kk: vv for kk, vv in e.extra.items() if kk not in _EVENT_KEYS})
        events.append(ej)
    out["sound_events"] = events
    out.update({kk: vv for kk, vv in scene.extra.items() if kk not in _TOP_KEYS})
    return out


class _Validator:
    """Type checks that raise DataError naming scene.json and the offending key."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, problem: str) -> DataError:
        return DataError(problem, self.path, _FIX)

    def key(self, d: dict, key: str, where: str | None = None) -> Any:
        if key not in d:
            raise self.fail(f"{where + ': ' if where else ''}missing key '{key}'")
        return d[key]

    def obj(self, x: Any, where: str) -> dict:
        if not isinstance(x, dict):
            raise self.fail(f"{where} must be a JSON object")
        return x

    def list(self, x: Any, where: str) -> list:
        if not isinstance(x, list):
            raise self.fail(f"'{where}' must be a list")
        return x

    def finite(self, x: Any, where: str) -> float:
        if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
            raise self.fail(f"{where} must be a finite number, got {x!r}")
        return float(x)

    def positive(self, x: Any, where: str) -> float:
        val = self.finite(x, where)
        if val <= 0:
            raise self.fail(f"{where} must be positive, got {x!r}")
        return val

    def int(self, x: Any, where: str, minimum: int | None = None) -> int:
        if isinstance(x, float) and x.is_integer():
            x = int(x)
        if isinstance(x, bool) or not isinstance(x, int):
            raise self.fail(f"{where} must be an integer, got {x!r}")
        if minimum is not None and x < minimum:
            raise self.fail(f"{where} must be ≥ {minimum}, got {x}")
        return x

    def bool(self, x: Any, where: str) -> bool:
        if not isinstance(x, bool):
            raise self.fail(f"{where} must be true or false, got {x!r}")
        return x

    def _array(self, x: Any, where: str) -> np.ndarray:
        try:
            a = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise self.fail(f"{where} must be numbers ({e})") from e
        if not np.all(np.isfinite(a)):
            raise self.fail(f"{where} has NaN or infinite values")
        return a

    def matrix(self, x: Any, where: str) -> np.ndarray:
        m = self._array(x, where)
        if m.shape != (4, 4):
            raise self.fail(f"{where} must be a 4x4 matrix, got shape {m.shape}")
        R = m[:3, :3]
        if (
            np.abs(m[3] - [0, 0, 0, 1]).max() > 1e-6
            or np.abs(R.T @ R - np.eye(3)).max() > RIGID_TOL
            or np.linalg.det(R) <= 0
        ):
            raise self.fail(f"{where} is not a rigid transform (rotation + translation, last row 0 0 0 1)")
        return m

    def vec3_or_none(self, x: Any, where: str) -> np.ndarray | None:
        if x is None:
            return None
        a = self._array(x, where)
        if a.shape != (3,):
            raise self.fail(f"{where} must be [x, y, z], got shape {a.shape}")
        return a

    def points(self, x: Any, where: str) -> np.ndarray:
        a = self._array(x, where)
        if a.ndim != 2 or a.shape[1] != 3 or a.shape[0] == 0:
            raise self.fail(f"{where} must be [x, y, z] points, got shape {a.shape}")
        return a


# ------------------------------------------------------------------------------------------ loaders
def _root(scene: Scene) -> Path:
    if scene.root is None:
        raise ValueError("scene has no root folder (it was not read from disk)")
    return Path(scene.root)


def _frame(scene: Scene, i: int) -> SceneFrame:
    if not -len(scene.frames) <= i < len(scene.frames):
        raise IndexError(f"frame {i} out of range (scene has {len(scene.frames)} frames)")
    return scene.frames[i]


def load_rgb(scene: Scene, i: int) -> np.ndarray:
    """RGB of frame ``i`` (list position) as uint8 (H, W, 3)."""
    return load_3davs_rgb(scene, i)


def load_sound_mask(scene: Scene, i: int) -> np.ndarray:
    """Sounding-object mask of frame ``i`` (``semantic_masks/<name>.png``) as bool (H, W)."""
    return load_3davs_mask(scene, i)


def load_instance_mask(scene: Scene, i: int) -> np.ndarray:
    """Object ids of frame ``i`` (``instance_masks/<name>.png``, 0 = background) as int32 (H, W)."""
    f = _frame(scene, i)
    p = _root(scene) / INSTANCE_DIR / f"{f.stem}.png"
    return read_label_image(p, size=scene.size).astype(np.int32)


def load_depth(scene: Scene, i: int) -> np.ndarray:
    """Depth of frame ``i`` in metres as float32 (H, W): ``depth/<name>.npy`` (float metres) or, when
    absent, ``depth/<name>.png`` (uint16 millimetres). 0 (and +inf in ``.npy``) means no surface."""
    f = _frame(scene, i)
    d = _root(scene) / DEPTH_DIR
    npy, png = d / f"{f.stem}.npy", d / f"{f.stem}.png"
    H, W = scene.size
    if npy.is_file():
        try:
            arr = np.load(npy, allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            raise DataError(f"cannot read depth ({e})", npy, "re-export it with numpy.save") from e
        if arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if arr.dtype.kind not in "fiu":
            raise DataError(f"depth must be numeric, got {arr.dtype}", npy, "save float32 metres")
        depth = arr.astype(np.float32)
        path = npy
    elif png.is_file():
        arr = read_label_image(png)
        depth = arr.astype(np.float32) / 1000.0
        path = png
    else:
        raise DataError(f"no depth for frame {f.stem} (.npy or .png)", npy, "write the scene with depth")
    if depth.shape != (H, W):
        raise DataError(
            f"depth is {'x'.join(map(str, depth.shape))} (HxW), expected {H}x{W}",
            path,
            "render depth at the frame size",
        )
    if np.isnan(depth).any() or (depth < 0).any():
        raise DataError("depth has NaN or negative values", path, "use 0 for pixels without a surface")
    return depth


def load_stereo(scene: Scene) -> np.ndarray:
    """Full-length stereo audio, float32 (2, samples), channel 0 = left mic, at ``scene.sample_rate``."""
    p = _root(scene) / STEREO_FILE
    audio, _ = read_audio(p, expect_sr=scene.sample_rate)
    if audio.shape[0] != 2:
        kind = "mono" if audio.shape[0] == 1 else f"{audio.shape[0]}-channel"
        raise DataError(
            f"audio is {kind}; stereo (2 channels, channel 0 = left mic) is required",
            p,
            "provide the two-microphone recording (mono audio belongs in audio/mono.wav)",
        )
    return audio


def object_audio_ids(scene: Scene) -> list[int]:
    """Ids of the objects with their own audio (``audio/objects/<id>.wav``), sorted; ``[]`` for a scene written
    without per-object audio (an older or a non-generated scene)."""
    folder = _root(scene) / OBJECT_AUDIO_DIR
    if not folder.is_dir():
        return []
    return sorted(int(f.stem) for f in folder.glob("*.wav") if f.stem.lstrip("-").isdigit())


def load_object_audio(scene: Scene, object_id: int) -> np.ndarray:
    """Object ``object_id``'s own stereo contribution to ``audio/stereo.wav`` (``audio/objects/<id>.wav``):
    float32 (2, samples), channel 0 = left mic, at ``scene.sample_rate``; the stems sum to the stereo recording.

    Raises :class:`DataError` naming the missing file when the scene has no per-object audio (written before it
    existed) or the object has none (it does not sound).
    """
    root = _root(scene)
    p = root / OBJECT_AUDIO_DIR / f"{int(object_id)}.wav"
    if not p.is_file():
        if not (root / OBJECT_AUDIO_DIR).is_dir():
            raise DataError("the scene has no per-object audio", p, _REGENERATE)
        if int(object_id) not in {o.id for o in scene.objects}:
            raise DataError(f"object {object_id} is not an object of the scene", p, "use an id from scene.json")
        have = ", ".join(map(str, object_audio_ids(scene))) or "none"
        raise DataError(
            f"object {object_id} has no audio of its own (it does not sound in this scene)",
            p,
            f"use an object with audio: {have}",
        )
    audio, _ = read_audio(p, expect_sr=scene.sample_rate, channels=2)
    return audio


def write_scene_video(scene: Scene, path: PathLike, crf: int = 16) -> Path:
    """The scene as a user's video: its frames at ``scene.fps`` with the stereo recording as the sound track
    (exact PCM in .mkv/.mov, AAC in .mp4), e.g. to try ``soundmask run`` on a scene with known ground truth."""
    from soundmask.data.video import write_video

    frames = [load_rgb(scene, i) for i in range(len(scene.frames))]
    return write_video(path, frames, scene.fps, audio=load_stereo(scene), sample_rate=scene.sample_rate, crf=crf)


def load_mono(scene: Scene) -> np.ndarray:
    """Full-length mono audio, float32 (samples,), at ``scene.sample_rate``."""
    audio, _ = read_audio(_root(scene) / MONO_FILE, expect_sr=scene.sample_rate, channels=1)
    return audio[0]


# ---------------------------------------------------------------------------------------- helpers
def frame_clips(audio: np.ndarray, sample_rate: int, times: Sequence[float], seconds: float = 1.0) -> list[np.ndarray]:
    """Cut ``seconds`` of ``audio`` (C, S) or (S,) from each time in ``times`` (zero-padded past the end)."""
    a = np.asarray(audio, dtype=np.float32)
    one_d = a.ndim == 1
    if one_d:
        a = a[None]
    n = int(round(seconds * sample_rate))
    out = []
    for t in times:
        s0 = int(round(t * sample_rate))
        clip = np.zeros((a.shape[0], n), np.float32)
        lo, hi = max(s0, 0), min(s0 + n, a.shape[1])
        if hi > lo:
            clip[:, lo - s0 : hi - s0] = a[:, lo:hi]
        out.append(clip[0] if one_d else clip)
    return out


def sound_masks_from_instances(
    scene: Scene, instance_masks: np.ndarray | Sequence[np.ndarray], seconds: float = 1.0
) -> np.ndarray:
    """Per-frame masks of the objects with a sound event overlapping [time, time + seconds)."""
    out = []
    for f, inst in zip(scene.frames, instance_masks, strict=True):
        ids = scene.sounding_ids(f.time, f.time + seconds)
        out.append(np.isin(np.asarray(inst), ids) if ids else np.zeros(np.shape(inst), bool))
    return np.stack(out)


def points_from_depth(
    scene: Scene,
    rgb: np.ndarray | Sequence[np.ndarray],
    depth: np.ndarray | Sequence[np.ndarray],
    max_points: int = 20000,
) -> tuple[np.ndarray, np.ndarray]:
    """World points (N, 3) and colours (N, 3) back-projected from depth (a COLMAP/3D-GS seed cloud)."""
    T = len(scene.frames)
    if T == 0:
        return np.zeros((0, 3)), np.zeros((0, 3), np.uint8)
    H, W = scene.size
    per_frame = max(1, max_points // T)
    stride = max(1, int(math.ceil(math.sqrt(H * W / per_frame))))
    vs, us = np.mgrid[stride // 2 : H : stride, stride // 2 : W : stride]
    pts, cols = [], []
    for f, im, d in zip(scene.frames, rgb, depth, strict=True):
        z = np.asarray(d, dtype=np.float64)[vs, us]
        ok = np.isfinite(z) & (z > 0)
        k = f.camera.intrinsics
        x = (us[ok] + 0.5 - k.cx) / k.fx * z[ok]
        y = (vs[ok] + 0.5 - k.cy) / k.fy * z[ok]
        pc = np.stack([x, y, z[ok]], axis=1)
        c2w = f.camera.camera_to_world
        pts.append(pc @ c2w[:3, :3].T + c2w[:3, 3])
        cols.append(np.asarray(im)[vs[ok], us[ok]])
    P, C = np.concatenate(pts), np.concatenate(cols).astype(np.uint8)
    if P.shape[0] > max_points:
        keep = np.linspace(0, P.shape[0] - 1, max_points).astype(int)
        P, C = P[keep], C[keep]
    return P, C


# ------------------------------------------------------------------------------------------ writing
def write_scene(
    path: PathLike,
    scene: Scene,
    rgb: np.ndarray | Sequence[np.ndarray],
    instance_masks: np.ndarray | Sequence[np.ndarray] | None = None,
    depth: np.ndarray | Sequence[np.ndarray] | None = None,
    sound_masks: np.ndarray | Sequence[np.ndarray] | None = None,
    stereo: np.ndarray | None = None,
    mono: np.ndarray | None = None,
    *,
    depth_format: str = "npy",
    clip_seconds: float = 1.0,
    points: np.ndarray | None = None,
    point_colors: np.ndarray | None = None,
    colmap_binary: bool = False,
    overwrite: bool = True,
    object_audio: Mapping[int, np.ndarray] | None = None,
) -> Scene:
    """Write a scene folder — our files and the 3DAVS-compatible ones — in one atomic folder write.

    ``rgb`` (T, H, W, 3) uint8; ``instance_masks`` (T, H, W) ids 0..65535; ``depth`` (T, H, W) metres
    (``depth_format`` "npy" float32 or "png" uint16 mm; non-finite → no surface); ``sound_masks`` (T, H, W)
    bool, derived from ``instance_masks`` and the sound events when omitted; ``stereo`` (2, S) full-length
    audio at ``scene.sample_rate`` (required: the 3DAVS binaural clips are cut from it, ``clip_seconds``
    from each frame's time); ``mono`` (S,) defaults to the stereo mean. ``points`` seed COLMAP
    ``points3D``; by default they are back-projected from ``depth`` when given. ``object_audio`` (object id →
    (2, S) stereo, like ``stereo``) writes each object's own contribution to ``audio/objects/<id>.wav``
    (16-bit PCM like ``stereo.wav``; 32-bit float for a stem whose peak reaches full scale, so it never clips).

    Frames are renamed ``input/<position:05d>.png``. Returns the scene as written (root set to ``path``).
    """
    T = len(scene.frames)
    if T == 0:
        raise ValueError("scene has no frames")
    if depth_format not in ("npy", "png"):
        raise ValueError(f"depth_format must be 'npy' or 'png', got {depth_format!r}")
    H, W = scene.size
    if stereo is None:
        raise ValueError("stereo audio is required (the scene format stores audio/stereo.wav)")
    st = np.asarray(stereo, dtype=np.float32)
    if st.ndim != 2 or st.shape[0] != 2:
        raise ValueError(f"stereo must be (2, samples) with channel 0 = left mic, got {st.shape}")
    mo = st.mean(axis=0) if mono is None else np.asarray(mono, dtype=np.float32).reshape(-1)
    if sound_masks is None:
        if instance_masks is None:
            raise ValueError("give sound_masks, or instance_masks to derive them from the sound events")
        sound_masks = sound_masks_from_instances(scene, instance_masks, clip_seconds)
    stems: dict[int, np.ndarray] = {}
    object_ids = {o.id for o in scene.objects}
    for oid, a in (object_audio or {}).items():
        y = np.asarray(a, dtype=np.float32)
        if int(oid) not in object_ids:
            raise ValueError(f"object_audio has object {oid}, which is not an object of the scene")
        if y.shape != st.shape:
            raise ValueError(f"object_audio[{oid}] must have the stereo's shape {st.shape}, got {y.shape}")
        stems[int(oid)] = y
    for what, arr in (("instance_masks", instance_masks), ("depth", depth)):
        if arr is not None and len(arr) != T:
            raise ValueError(f"{what} has {len(arr)} entries, the scene has {T} frames")

    frames = [
        SceneFrame(f.index, f.time, f"input/{i:05d}.png", f.camera, f.mic_left, f.mic_right, dict(f.extra))
        for i, f in enumerate(scene.frames)
    ]
    out = Scene(
        frames=frames,
        objects=scene.objects,
        sound_events=scene.sound_events,
        fps=scene.fps,
        sample_rate=scene.sample_rate,
        speed_of_sound=scene.speed_of_sound,
        room=scene.room,
        name=scene.name,
        extra=_own_extra(scene),
    )
    meta = scene_to_json(out)  # validates (one set of intrinsics) before anything is written
    sr = int(scene.sample_rate)
    times = [f.time for f in frames]
    binaural = frame_clips(st, sr, times, clip_seconds)
    mono_clips = frame_clips(mo, sr, times, clip_seconds)
    if points is None and depth is not None:
        points, point_colors = points_from_depth(out, rgb, depth)

    with atomic_dir(path, overwrite=overwrite) as tmp:
        write_3davs_files(
            tmp, out, rgb, sound_masks, binaural, mono_clips,
            points=points, point_colors=point_colors, colmap_binary=colmap_binary,
        )  # fmt: skip
        for i, f in enumerate(frames):
            if instance_masks is not None:
                inst = np.asarray(instance_masks[i])
                if inst.shape != (H, W):
                    raise ValueError(f"instance_masks[{i}] must be ({H}, {W}), got {inst.shape}")
                if inst.min() < 0 or inst.max() > 65535:
                    raise ValueError(f"instance_masks[{i}] ids must be in 0..65535")
                write_image(tmp / INSTANCE_DIR / f"{f.stem}.png", inst.astype(np.uint16))
            if depth is not None:
                _write_depth(tmp / DEPTH_DIR, f.stem, np.asarray(depth[i]), (H, W), depth_format)
        write_audio(tmp / STEREO_FILE, st, sr)
        write_audio(tmp / MONO_FILE, mo, sr)
        for oid, y in sorted(stems.items()):
            subtype = "PCM_16" if float(np.abs(y).max(initial=0.0)) < 1.0 else "FLOAT"
            write_audio(tmp / OBJECT_AUDIO_DIR / f"{oid}.wav", y, sr, subtype=subtype)
        write_json(tmp / SCENE_JSON, meta)
    out.root = Path(path)
    return out


_3DAVS_READER_KEYS = {
    "format", "split", "split_source", "split_matches_rule", "image_names", "colmap_image_ids", "unregistered",
}  # fmt: skip


def _own_extra(scene: Scene) -> dict[str, Any]:
    """``scene.extra`` without what ``read_3davs_scene`` put there (that describes the source, not this scene)."""
    if scene.extra.get("format") != "3davs":
        return scene.extra
    return {k: v for k, v in scene.extra.items() if k not in _3DAVS_READER_KEYS}


def _write_depth(folder: Path, stem: str, d: np.ndarray, size: tuple[int, int], fmt: str) -> None:
    if d.shape != size:
        raise ValueError(f"depth for {stem} must be {size}, got {d.shape}")
    d = d.astype(np.float64)
    if np.isnan(d).any() or (d < 0).any():
        raise ValueError(f"depth for {stem} has NaN or negative values (use 0 or inf for no surface)")
    if fmt == "npy":
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / f"{stem}.npy", d.astype(np.float32))
        return
    finite = np.isfinite(d)
    mm = np.where(finite, np.round(d * 1000.0), 0.0)
    if mm.max(initial=0) > 65535:
        raise ValueError(f"depth for {stem} exceeds 65.535 m, which 16-bit millimetre PNG cannot hold; use npy")
    write_image(folder / f"{stem}.png", mm.astype(np.uint16))
