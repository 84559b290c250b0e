"""Typed records that the pipeline's stages exchange.

Conventions (DESIGN.md): images are ``uint8`` (H, W, 3) RGB; masks are ``bool`` (H, W); audio is
``float32`` (channels, samples) with channel 0 = left microphone; cameras follow OpenCV (x right, y down,
z forward), poses are 4×4 camera-to-world matrices in metres, intrinsics in pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from soundmask.constants import SCENE_SAMPLE_RATE, SPEED_OF_SOUND, TEST_EVERY

__all__ = ["Intrinsics", "Camera", "look_at", "Clip", "SoundObject", "SoundEvent", "SceneFrame", "Scene"]


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics (OpenCV convention, pixel centres at integer + 0.5 from the corner)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def scaled(self, width: int, height: int) -> Intrinsics:
        """The same camera resampled to ``width`` × ``height`` pixels."""
        sx, sy = width / self.width, height / self.height
        return Intrinsics(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, width, height)

    def to_dict(self) -> dict[str, float]:
        return {"fx": self.fx, "fy": self.fy, "cx": self.cx, "cy": self.cy}


@dataclass
class Camera:
    """A posed pinhole camera."""

    intrinsics: Intrinsics
    camera_to_world: np.ndarray  # (4, 4) float64
    name: str = ""

    def __post_init__(self) -> None:
        m = np.asarray(self.camera_to_world, dtype=np.float64)
        if m.shape != (4, 4):
            raise ValueError(f"camera_to_world must be 4x4, got {m.shape}")
        self.camera_to_world = m

    @property
    def world_to_camera(self) -> np.ndarray:
        R, t = self.camera_to_world[:3, :3], self.camera_to_world[:3, 3]
        out = np.eye(4)
        out[:3, :3] = R.T
        out[:3, 3] = -R.T @ t
        return out

    @property
    def center(self) -> np.ndarray:
        return self.camera_to_world[:3, 3].copy()

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points (N, 3) → pixel coordinates (N, 2) and camera-frame depth z (N,)."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        w2c = self.world_to_camera
        pc = p @ w2c[:3, :3].T + w2c[:3, 3]
        z = pc[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = (pc[:, :2] / z[:, None]) * [self.intrinsics.fx, self.intrinsics.fy] + [
                self.intrinsics.cx,
                self.intrinsics.cy,
            ]
        return uv, z


def look_at(eye: Any, target: Any = (0.0, 0.0, 0.0), up: Any = (0.0, 0.0, 1.0)) -> np.ndarray:
    """OpenCV camera-to-world (x right, y down, z forward) of a camera at ``eye`` looking at ``target``, with
    ``up`` (world) pointing up in the image."""
    eye = np.asarray(eye, dtype=np.float64)
    z = np.asarray(target, dtype=np.float64) - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, np.asarray(up, dtype=np.float64))
    x /= np.linalg.norm(x)
    m = np.eye(4)
    m[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)
    m[:3, 3] = eye
    return m


@dataclass
class Clip:
    """A short video with its audio and, when known, ground-truth sound masks (an AVSBench/AVSS sample).

    ``masks[t]`` marks the pixels of frame ``t`` that belong to a sounding object; ``mask_valid[t]`` says
    whether frame ``t`` has ground truth at all (AVSBench S4 *train* annotates only the first frame).
    ``labels`` holds AVSS semantic class ids (0 = background) when the dataset has them. ``instances`` holds
    every object's id per pixel (0 = background; the generator writes them, AVSBench does not) and
    ``instance_categories`` the category of each id, sounding or not. ``object_audio`` holds, where known, an
    object's own recording as it would sound in this clip (object id → (C, S) float32, as long as ``audio``),
    for silent objects too (the photo presets fill it for every visible object that has a recording).
    """

    name: str
    frames: np.ndarray  # (T, H, W, 3) uint8
    audio: np.ndarray  # (C, S) float32
    sample_rate: int
    masks: np.ndarray | None = None  # (T, H, W) bool
    mask_valid: np.ndarray | None = None  # (T,) bool
    labels: np.ndarray | None = None  # (T, H, W) int
    category: str = ""
    split: str = ""
    frame_times: np.ndarray | None = None  # (T,) seconds from the start of the audio
    meta: dict[str, Any] = field(default_factory=dict)
    instances: np.ndarray | None = None  # (T, H, W) int32 object ids, 0 = background
    instance_categories: dict[int, str] = field(default_factory=dict)  # object id → category
    object_audio: dict[int, np.ndarray] = field(default_factory=dict)  # object id → (C, S) float32, its own sound

    def __post_init__(self) -> None:
        f = np.asarray(self.frames)
        if f.ndim != 4 or f.shape[-1] != 3 or f.dtype != np.uint8:
            raise ValueError(f"Clip.frames must be uint8 (T, H, W, 3), got {f.dtype} {f.shape}")
        self.frames = f
        a = np.asarray(self.audio, dtype=np.float32)
        if a.ndim == 1:
            a = a[None]
        if a.ndim != 2:
            raise ValueError(f"Clip.audio must be (channels, samples), got {a.shape}")
        self.audio = a
        T, H, W = f.shape[:3]
        if self.masks is not None:
            m = np.asarray(self.masks).astype(bool, copy=False)
            if m.shape != (T, H, W):
                raise ValueError(f"Clip.masks must be {(T, H, W)}, got {m.shape}")
            self.masks = m
            if self.mask_valid is None:
                self.mask_valid = np.ones(T, dtype=bool)
        if self.mask_valid is not None:
            v = np.asarray(self.mask_valid, dtype=bool)
            if v.shape != (T,):
                raise ValueError(f"Clip.mask_valid must be ({T},), got {v.shape}")
            self.mask_valid = v
        if self.labels is not None:
            lab = np.asarray(self.labels)
            if lab.shape != (T, H, W):
                raise ValueError(f"Clip.labels must be {(T, H, W)}, got {lab.shape}")
            self.labels = lab
        if self.instances is not None:
            ins = np.asarray(self.instances).astype(np.int32, copy=False)
            if ins.shape != (T, H, W):
                raise ValueError(f"Clip.instances must be {(T, H, W)}, got {ins.shape}")
            self.instances = ins
        if self.object_audio:
            oa: dict[int, np.ndarray] = {}
            for oid, y in self.object_audio.items():
                y = np.asarray(y, dtype=np.float32)
                y = y[None] if y.ndim == 1 else y
                if y.ndim != 2 or y.shape[1] != a.shape[1]:
                    raise ValueError(f"Clip.object_audio[{oid}] must be (channels, {a.shape[1]}), got {y.shape}")
                oa[int(oid)] = y
            self.object_audio = oa
        if self.frame_times is None:
            self.frame_times = np.arange(T, dtype=np.float64) * (self.duration / max(T, 1))

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return int(self.frames.shape[1]), int(self.frames.shape[2])

    @property
    def duration(self) -> float:
        return self.audio.shape[1] / float(self.sample_rate)

    @property
    def mono(self) -> np.ndarray:
        return self.audio.mean(axis=0)


@dataclass
class SoundObject:
    """An object of a scene. ``positions`` is (1, 3) for a static object, (num_frames, 3) for a moving one."""

    id: int
    category: str
    sounding: bool = True
    mesh: str = ""
    positions: np.ndarray = field(default_factory=lambda: np.zeros((1, 3)))
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        p = np.asarray(self.positions, dtype=np.float64)
        if p.ndim == 1:
            p = p[None]
        if p.ndim != 2 or p.shape[1] != 3:
            raise ValueError(f"SoundObject.positions must be (N, 3), got {p.shape}")
        self.positions = p

    @property
    def moving(self) -> bool:
        return self.positions.shape[0] > 1

    def position_at(self, frame: int) -> np.ndarray:
        return self.positions[min(frame, self.positions.shape[0] - 1)] if self.moving else self.positions[0]


@dataclass
class SoundEvent:
    """Object ``object_id`` sounds from ``start`` to ``end`` seconds, playing ``source`` (a file or a name)."""

    object_id: int
    start: float
    end: float
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # unknown keys of a scene.json event, kept as read

    def active(self, t0: float, t1: float | None = None) -> bool:
        """True when the event overlaps [t0, t1) (or contains t0 when t1 is None)."""
        if t1 is None:
            return self.start <= t0 < self.end
        return self.start < t1 and t0 < self.end


@dataclass
class SceneFrame:
    """One posed frame of a scene, with its stereo microphone positions (world metres) when known."""

    index: int
    time: float
    file: str
    camera: Camera
    mic_left: np.ndarray | None = None
    mic_right: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # unknown per-frame keys of scene.json, kept as read

    @property
    def stem(self) -> str:
        """The frame's file name without folder and extension (``input/00003.png`` → ``00003``): the key
        that names its mask, depth and instance files."""
        return Path(self.file).name.split(".")[0]


@dataclass
class Scene:
    """A posed, sounding scene (our format, or 3DAVS-S34-O7 read into the same record).

    Pixel data stays on disk under ``root``; see ``soundmask.data.scene`` for the loaders.
    """

    frames: list[SceneFrame]
    objects: list[SoundObject] = field(default_factory=list)
    sound_events: list[SoundEvent] = field(default_factory=list)
    fps: float = 1.0
    sample_rate: int = SCENE_SAMPLE_RATE
    speed_of_sound: float = SPEED_OF_SOUND
    room: dict[str, Any] = field(default_factory=dict)
    root: Path | None = None
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cameras(self) -> list[Camera]:
        return [f.camera for f in self.frames]

    @property
    def intrinsics(self) -> Intrinsics:
        if not self.frames:
            raise ValueError("scene has no frames")
        return self.frames[0].camera.intrinsics

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        k = self.intrinsics
        return k.height, k.width

    def object(self, object_id: int) -> SoundObject:
        for o in self.objects:
            if o.id == object_id:
                return o
        raise KeyError(f"no object with id {object_id}")

    def sounding_ids(self, t0: float, t1: float | None = None) -> list[int]:
        """Ids of the objects with a sound event overlapping [t0, t1) (or at t0), sorted."""
        return sorted({e.object_id for e in self.sound_events if e.active(t0, t1)})

    def test_views(self, every: int = TEST_EVERY) -> list[int]:
        """Frame indices used as test views by the EchoSegnet protocol (``idx % 8 == 0``)."""
        return [i for i in range(len(self.frames)) if i % every == 0]
