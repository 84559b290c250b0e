"""The synthetic sounding-scene generator: layout → rendering → sound timeline → room acoustics → ground truth.

One scene per seed (:func:`generate_scene`), written in the layout of its preset (:func:`generate_dataset`):

========== ===================== ====================================================================
preset     layout                scene
========== ===================== ====================================================================
``s4``     AVSBench S4           static camera, one sounding object among silent distractors, 5 s, 5 frames
``ms3``    AVSBench MS3          static camera, 2–3 sounding objects, 5 s, 5 frames
``avss``   AVSBench-semantic     like ``ms3``, with AVSS class labels (sounding objects from AVSS classes)
``scene3d`` 3DAVS-S34-O7 + ours  camera on a smooth orbit around static objects, 60 frames at 1 fps
``scene4d`` 3DAVS-S34-O7 + ours  like ``scene3d``, and 1–2 sounding objects move back and forth
``s4real``  AVSBench S4           real photos: one sounding Tux Paint cut-out among 1–2 silent ones on a photo
``ms3real`` AVSBench MS3          real photos: 2–3 sounding cut-outs among 3–4 (:mod:`soundmask.synth.photos`)
========== ===================== ====================================================================

Time and ground truth: frame ``i`` is shown at ``t_i = i / fps`` and owns the audio window ``[t_i, t_i + 1/fps)``;
the camera (and every moving object) keeps frame ``i``'s pose for that whole window in the acoustic simulation
(piecewise-static, crossfaded), so the stereo time difference of a window matches frame ``i``'s geometry.
Sound events are snapped to window boundaries, so "sounding at ``t_i``", "sounding during the window" and
"sounding for most of the window" all agree: the sound mask of frame ``i`` is the union of the instance masks of
the objects with an event overlapping its window.

Per-object audio: the room simulation is linear in the sources, so each sounding object is simulated on its own
(the same room, rig and geometry) and the stereo mixture is the sum of these stems (:attr:`SynthScene.object_audio`;
scene presets write them to ``audio/objects/<id>.wav``), the ground truth for scoring source separation.

Determinism: every random choice comes from ``numpy.random.SeedSequence([seed, preset])``, with one child stream
per stage (layout, lighting, sound, acoustics), so the same preset + seed + package versions give byte-identical
images, masks and audio, and changing e.g. the frame count does not change which objects are in the room.
A scene's split (train/val/test, 80/10/10) is a function of its seed alone (:func:`split_of`).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from soundmask.data.avss import AVSS_CLASSES
from soundmask.data.io import atomic_path
from soundmask.data.types import Camera, Clip, Intrinsics, Scene, SceneFrame, SoundEvent, SoundObject
from soundmask.errors import ConfigError

from . import acoustics
from .catalog import CATEGORIES, ObjectModel, make_object_model
from .config import PRESETS, Preset, SynthConfig, split_of
from .layout import Placement, orbit_path, place_objects, random_lighting, room_around, static_camera, trajectory
from .meshes import Instance
from .render import Lighting, Renderer
from .room import build_room
from .sounds import SoundLibrary, make_timeline, render_tracks

__all__ = [
    "PRESETS",
    "Preset",
    "SynthConfig",
    "SynthScene",
    "generate_dataset",
    "generate_scene",
    "split_of",
]


@dataclass
class SynthScene:
    """One generated scene in memory: the :class:`Scene` record and its pixels and audio."""

    scene: Scene
    rgb: np.ndarray  # (T, H, W, 3) uint8
    instances: np.ndarray  # (T, H, W) uint16, 0 = room
    depth: np.ndarray  # (T, H, W) float32 metres (camera z)
    sound_masks: np.ndarray  # (T, H, W) bool
    stereo: np.ndarray  # (2, S) float32, channel 0 = left mic
    mono: np.ndarray  # (S,) float32
    labels: np.ndarray | None  # (T, H, W) uint8 AVSS class ids of the sounding objects (avss preset)
    seed: int
    preset: str
    split: str
    timings: dict[str, float] = field(default_factory=dict)
    room_instances: list[Instance] = field(default_factory=list, repr=False)
    placements: list[Placement] = field(default_factory=list, repr=False)
    # each sounding object's own stereo contribution (object id → (2, S) float32, channel 0 = left mic, after the
    # same peak scale as ``stereo``), for the objects with sound; ``stereo`` is exactly their float32 sum
    object_audio: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def instances_at(self, frame: int) -> list[Instance]:
        """The world geometry of ``frame`` (room, objects, stands) — e.g. for an independent ray cast."""
        return frame_instances(self.room_instances, self.placements, frame)

    @property
    def name(self) -> str:
        return self.scene.name

    @property
    def frame_times(self) -> np.ndarray:
        return np.array([f.time for f in self.scene.frames])

    def sounding_ids(self, i: int) -> list[int]:
        f = self.scene.frames[i]
        return self.scene.sounding_ids(f.time, f.time + 1.0 / self.scene.fps)

    def to_clip(self) -> Clip:
        """The scene as an AVSBench/AVSS :class:`Clip` (2D presets)."""
        sounding = [o for o in self.scene.objects if o.sounding]
        cat = sounding[0].category if sounding else ""
        meta = {"start_time": 0, "seed": self.seed, "label": "v1s" if len(sounding) == 1 else "v1m", "vid": self.name}
        if self.preset == "avss":
            cat = "|".join(sorted({str(o.extra.get("avss_class")) for o in sounding}))
        return Clip(
            self.name,
            self.rgb,
            self.stereo,
            self.scene.sample_rate,
            masks=self.sound_masks,
            mask_valid=np.ones(len(self.rgb), bool),
            labels=self.labels,
            category=cat,
            split=self.split,
            frame_times=self.frame_times,
            meta=meta,
            instances=self.instances,
            instance_categories={o.id: o.category for o in self.scene.objects},
        )


# ---------------------------------------------------------------------------------------------- caches
@functools.lru_cache(maxsize=1)
def _library() -> SoundLibrary:
    return SoundLibrary()


@functools.lru_cache(maxsize=2)
def _renderer(width: int, height: int) -> Renderer:
    return Renderer(width, height, near=0.05, far=50.0)


# --------------------------------------------------------------------------------------------- helpers
def _snap(events: list[SoundEvent], step: float, duration: float) -> list[SoundEvent]:
    """Move event boundaries to the nearest multiple of ``step`` (frame windows) and merge what touches."""
    out: dict[int, list[list[float]]] = {}
    n_max = round(duration / step)
    for e in sorted(events, key=lambda e: (e.object_id, e.start)):
        a = min(max(round(e.start / step), 0), n_max)
        b = min(max(round(e.end / step), 0), n_max)
        if b <= a:
            continue
        spans = out.setdefault(e.object_id, [])
        if spans and a <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], b)
        else:
            spans.append([a, b])
    ev = [SoundEvent(oid, a * step, b * step) for oid, spans in out.items() for a, b in spans]
    ev.sort(key=lambda e: (e.start, e.object_id))
    return ev


def _choose_categories(pool: list[str], n: int, n_sounding: int, preset: Preset, rng: np.random.Generator) -> list[str]:
    """Categories for ``n`` objects, the first ``n_sounding`` of which will sound. 2D presets never repeat a
    sounding category among the distractors (mono-like 2D audio could not tell them apart); scene presets
    sometimes do on purpose (the stereo cue can)."""
    sound_pool = [c for c in pool if CATEGORIES[c].avss] if preset.name == "avss" else pool
    if not sound_pool:
        raise ConfigError("no category in --categories has an AVSS class", fix="add e.g. dog,piano,guitar")
    k = min(n_sounding, len(sound_pool))
    sounding = list(rng.choice(sound_pool, size=k, replace=False))
    rest_pool = [c for c in pool if c not in sounding] or pool
    rest = []
    for _ in range(n - k):
        if sounding and preset.same_category > 0 and rng.random() < preset.same_category:
            rest.append(str(rng.choice(sounding)))
        else:
            rest.append(str(rng.choice(rest_pool)))
    return [str(c) for c in sounding] + rest


def _framed_ids(framing: str, n: int, sounding_idx: set[int], rng: np.random.Generator) -> set[int] | None:
    """Ids of the objects a static camera must frame (None: all): the sounding ones (AVSBench-like), all, or a
    random non-empty subset that ignores which objects sound (so cut-off objects sound as often as framed ones)."""
    if framing == "sounding":
        return {i + 1 for i in sounding_idx}
    if framing == "all":
        return None
    pick = rng.random(n) < 0.5
    pick[int(rng.integers(n))] = True
    return {int(i) + 1 for i in np.flatnonzero(pick)}


def _intrinsics(width: int, height: int, hfov_deg: float) -> Intrinsics:
    fx = 0.5 * width / math.tan(math.radians(hfov_deg) / 2)
    return Intrinsics(fx, fx, width / 2.0, height / 2.0, width, height)


def frame_instances(room_instances: list[Instance], placed: list[Placement], frame: int) -> list[Instance]:
    """Everything in the scene at ``frame``: the room (id 0), each object (its id) and its stand (id 0)."""
    inst = list(room_instances)
    for p in placed:
        inst.append(Instance(p.model.mesh, p.object_id, p.matrix(frame)))
        if p.stand is not None:
            inst.append(Instance(p.stand, 0, p.stand_matrix(frame)))
    return inst


View = tuple[np.ndarray, np.ndarray, np.ndarray]  # rgb uint8 (H, W, 3), ids uint16 (H, W), depth float32 (H, W)


def _render_views(
    renderer: Renderer,
    room_instances: list[Instance],
    placed: list[Placement],
    cams: list[Camera],
    lighting: Lighting,
    frames: Iterable[int],
    views: dict[int, View],
    say: Callable[[str], None] | None = None,
) -> None:
    """Render the frames of ``frames`` that ``views`` (frame index → view) does not hold yet, into it."""
    todo = [i for i in frames if i not in views]
    for k, i in enumerate(todo):
        out = renderer.render(frame_instances(room_instances, placed, i), cams[i], lighting)
        views[i] = (out.rgb, out.ids.astype(np.uint16), out.depth)
        if say is not None:
            say(f"render frame {k + 1}/{len(todo)}")


# ------------------------------------------------------------------------------------------- generation
def generate_scene(
    config: SynthConfig, seed: int, *, progress: Callable[[str], None] | None = None, max_attempts: int = 40
) -> SynthScene:
    """Generate the scene of ``seed`` for ``config`` (see the module docstring)."""
    cfg = config.resolved()
    p = cfg.preset_spec()
    assert cfg.width and cfg.height and cfg.frames and cfg.sample_rate and cfg.min_objects and cfg.max_objects
    T, fps, sr = cfg.frames, cfg.fps, cfg.sample_rate
    duration = T / fps
    ss = np.random.SeedSequence([int(seed), p.index])
    r_layout, r_light, r_sound, r_acoustic = (np.random.default_rng(s) for s in ss.spawn(4))
    timings: dict[str, float] = {}
    say = progress or (lambda _s: None)
    t0 = time.perf_counter()
    pool = cfg.category_pool()
    renderer = _renderer(cfg.width, cfg.height)
    static = p.camera == "static"
    min_px = max(30, int((0.006 if static else 0.004) * cfg.width * cfg.height))

    # ---- layout (retried until every sounding object is visible enough)
    say("layout")
    for attempt in range(max_attempts):
        n = int(r_layout.integers(cfg.min_objects, cfg.max_objects + 1))
        n_sound = int(r_layout.integers(p.sounding[0], min(p.sounding[1], n - (p.name == "s4")) + 1))
        n_sound = max(1, n_sound)
        cats = _choose_categories(pool, n, n_sound, p, r_layout)
        models: list[ObjectModel] = [make_object_model(c, r_layout, cfg.meshes) for c in cats]
        # shuffle so the sounding objects are not always ids 1..k
        order = r_layout.permutation(n)
        models = [models[i] for i in order]
        sounding_idx = {int(np.where(order == i)[0][0]) for i in range(n_sound)}
        n_move = int(r_layout.integers(p.moving[0], p.moving[1] + 1)) if p.moving[1] else 0
        moving = set(sorted(sounding_idx)[: min(n_move, n_sound)])
        hfov = math.radians(float(r_layout.uniform(cfg.fov - 10, cfg.fov + 10)))
        az = float(r_layout.uniform(0, 2 * np.pi))
        spread = (0.25 + 0.2 * n) if static else (0.3 + 0.2 * n)
        placed = place_objects(
            models, r_layout, spread=spread, facing=az if static else None, moving=moving, num_frames=T
        )
        if static:
            framed = _framed_ids(cfg.framing, n, sounding_idx, r_layout)
            c2w, _ = static_camera(placed, r_layout, hfov, azimuth=az, frame=framed)
            poses = np.repeat(c2w[None], T, axis=0)
        else:
            poses = orbit_path(placed, r_layout, T, hfov)
        room_size, offset = room_around(placed, poses, r_layout)
        for q in placed:
            q.base = q.base + offset
            if q.path is not None:
                q.path = q.path + offset[:2]
        poses[:, :3, 3] += offset
        room = build_room(room_size, r_layout)
        K = _intrinsics(cfg.width, cfg.height, math.degrees(hfov))
        cams = [Camera(K, poses[i], name=f"{i:05d}") for i in range(T)]
        lighting, light_info = random_lighting(r_light, room_size)
        timings["layout"] = timings.get("layout", 0.0) + time.perf_counter() - t0
        t1 = time.perf_counter()
        say("render")
        # a cheap probe of ≤ 8 views first: a layout that hides a sounding object is redrawn before paying for
        # every frame
        # (a static camera sees the same image in every frame: frame 0 stands for all)
        probe = sorted({round(x) for x in np.linspace(0, T - 1, min(T, 1 if static else 8))})
        views: dict[int, View] = {}
        _render_views(renderer, room.instances, placed, cams, lighting, probe, views)
        pcounts = np.array([[int((views[i][1] == q.object_id).sum()) for i in probe] for q in placed])
        # after 15 attempts the demands relax step by step (down to "visible somewhere") so no seed can fail
        relax = min(1.0, max(0.0, (attempt - 15) / (max_attempts - 16)))
        need_px = max(1, round(min_px * (1.0 - relax)))
        need_frac = (1.0 if static else 0.4) * (1.0 - relax)
        visible_ok = all(
            (pcounts[i] >= need_px).mean() >= need_frac and (pcounts[i] >= need_px).any() for i in sounding_idx
        )
        if visible_ok:
            shown = [0] * T if static else list(range(T))
            _render_views(renderer, room.instances, placed, cams, lighting, shown, views, say)  # probe views reused
            rgb, ids, depth = (np.stack([views[i][k] for i in shown]) for k in range(3))
        timings["render"] = timings.get("render", 0.0) + time.perf_counter() - t1
        renderer.forget_all()  # the cached renderer outlives the scene: free this layout's meshes (no GL leak)
        t0 = time.perf_counter()
        if visible_ok:
            counts = np.stack([(ids == q.object_id).reshape(T, -1).sum(axis=1) for q in placed])  # (n, T)
            break
    else:
        raise RuntimeError(f"seed {seed}: no layout with every sounding object visible in {max_attempts} attempts")
    timings["attempts"] = attempt + 1

    # ---- objects, sound timeline, tracks
    t0 = time.perf_counter()
    say("sound")
    objects = []
    for q in placed:
        is_sounding = (q.object_id - 1) in sounding_idx
        positions = trajectory(q, T) if q.path is not None else q.source_point()[None]
        avss = q.model.avss
        extra = {
            "base": np.round(q.base, 6).tolist(),
            "yaw": round(q.yaw, 6),
            "height": round(q.model.height, 6),
            "footprint_radius": round(q.radius, 6),
            "on_stand": bool(q.extra.get("on_stand")),
            "stand_height": round(q.z0, 6),
            "avss_class": avss,
            "avss_id": AVSS_CLASSES.index(avss) if avss in AVSS_CLASSES else 0,
            "licence": q.model.licence,
            "attribution": q.model.attribution,
            "moving": q.path is not None,
            "visible_frames": int((counts[q.object_id - 1] > 0).sum()),
        }
        objects.append(SoundObject(q.object_id, q.model.category, is_sounding, q.model.source, positions, extra))
    step = 1.0 / fps
    raw = make_timeline(
        objects,
        duration,
        r_sound,
        min_on=max(p.min_on, step),
        min_gap=max(p.min_gap, step),
        p_silent=0.0,
        max_on=max(p.max_on, step),
        max_gap=max(p.max_gap, step),
    )
    events = _snap(raw, step, duration)
    lib = _library()
    tracks, events = render_tracks(lib, [o for o in objects if o.sounding], events, duration, sr, r_sound)
    gains = {oid: float(10 ** (r_sound.uniform(-6.0, 0.0) / 20)) for oid in sorted(tracks)}
    for o in objects:
        if o.id in gains:
            o.extra["gain_db"] = round(20 * math.log10(gains[o.id]), 3)
    timings["sound"] = time.perf_counter() - t0

    # ---- acoustics
    t0 = time.perf_counter()
    say("acoustics")
    rt60 = float(r_acoustic.uniform(0.0, cfg.rt60_max)) if cfg.rt60_max > 0 else 0.0
    mics = [acoustics.mic_pair(c.camera_to_world) for c in cams]
    ml = np.stack([m[0] for m in mics])
    mr = np.stack([m[1] for m in mics])
    n_samples = int(round(duration * sr))
    still = static and not any(o.moving for o in objects)
    times = np.arange(T) / fps + 0.5 / fps  # frame i's geometry holds for its whole window
    parts: dict[int, np.ndarray] = {}  # object id → its own (2, n_samples) contribution, before the peak scale
    for o in objects:
        tr = tracks.get(o.id)
        if tr is None or not np.any(tr):
            continue
        # the room is linear in the sources: one simulation per source gives each object's stem, and the
        # mixture is their sum (the RIR work is per source either way)
        src = [(o.positions if o.moving else o.positions[0], tr * gains[o.id])]
        if still:
            y = acoustics.simulate_static(src, ml[0], mr[0], room_size, rt60, sr)
        else:
            y = acoustics.simulate_moving(src, ml, mr, room_size, rt60, sr, times=times)
        y = y[:, :n_samples].astype(np.float64)
        parts[o.id] = np.pad(y, ((0, 0), (0, n_samples - y.shape[1])))
    mix = np.sum(list(parts.values()), axis=0) if parts else np.zeros((2, n_samples))
    peak = float(np.abs(mix).max())
    scale = 0.9 / peak if peak > 0.9 else 1.0
    object_audio = {oid: (y * scale).astype(np.float32) for oid, y in parts.items()}
    stereo = np.zeros((2, n_samples), np.float32)
    for oid in sorted(object_audio):  # the mixture is exactly the float32 sum of the stems, in id order
        stereo += object_audio[oid]
    mono = stereo.mean(axis=0).astype(np.float32)
    timings["acoustics"] = time.perf_counter() - t0

    # ---- ground truth and the Scene record
    frames = []
    name = f"{p.name}_{int(seed):06d}"
    split = split_of(seed) if cfg.split == "auto" else cfg.split
    scene = Scene(
        frames=[],
        objects=objects,
        sound_events=events,
        fps=fps,
        sample_rate=sr,
        speed_of_sound=acoustics.SPEED_OF_SOUND,
        name=name,
    )
    for i, c in enumerate(cams):
        t = i / fps
        frames.append(
            SceneFrame(i, t, f"input/{i:05d}.png", c, ml[i], mr[i], {"sounding": scene.sounding_ids(t, t + step)})
        )
    scene.frames = frames
    e_abs, image_order = acoustics.room_parameters(room_size, rt60) if rt60 > 0 else (1.0, 0)
    scene.room = {
        "size": np.round(room_size, 6).tolist(),
        "rt60": round(rt60, 6),
        "absorption": round(e_abs, 6),
        "image_order": image_order,
        **room.info,
    }
    scene.extra = {
        "generator": {
            "preset": p.name,
            "seed": int(seed),
            "split": split,
            "lighting": light_info,
            "fov_deg": round(math.degrees(hfov), 4),
            "audio_gain": round(scale, 6),
            "meshes": cfg.meshes,
            "framing": cfg.framing,
            "layout_attempts": attempt + 1,
        }
    }
    sound_masks = np.zeros(ids.shape, bool)
    labels = np.zeros(ids.shape, np.uint8) if p.layout == "avss" else None
    for i, f in enumerate(frames):
        for oid in f.extra["sounding"]:
            m = ids[i] == oid
            sound_masks[i] |= m
            if labels is not None:
                labels[i][m] = scene.object(oid).extra["avss_id"]
    timings["ground_truth"] = time.perf_counter() - t0 - timings["acoustics"]
    return SynthScene(
        scene,
        rgb,
        ids,
        depth,
        sound_masks,
        stereo,
        mono,
        labels,
        int(seed),
        p.name,
        split,
        timings,
        room.instances,
        placed,
        object_audio,
    )


# --------------------------------------------------------------------------------------------- datasets
def _scene_stream(
    cfg: SynthConfig,
    seeds: list[int],
    on_scene: Callable[[Any], None] | None,
    progress: Callable[[str], None] | None,
    make: Callable[..., Any] = generate_scene,
) -> Iterator[Any]:
    for s in seeds:
        sc = make(cfg, s, progress=progress)
        yield sc
        if on_scene is not None:  # after the consumer has written it
            on_scene(sc)


def _photo_dataset(
    cfg: SynthConfig,
    root: Path,
    subset: Literal["s4", "ms3"],
    seeds: list[int],
    on_scene: Callable[[Any], None] | None,
    progress: Callable[[str], None] | None,
) -> Path:
    """Real-photo presets: the AVSBench folder, then ``<subset>_licenses.csv`` (every asset the clips use)."""
    from soundmask.data.avsbench import write_avsbench

    from .photos import PhotoScene, generate_photo_clip, photo_assets, write_licences

    photo_assets()  # a missing package fails here, before anything is written
    usage: dict[str, tuple[str, str, int]] = {}

    def clips(stream: Iterator[PhotoScene]) -> Iterator[Clip]:
        for sc in stream:
            for asset, (licence, attribution) in sc.assets.items():
                usage[asset] = (licence, attribution, usage.get(asset, ("", "", 0))[2] + 1)
            yield sc.clip

    write_avsbench(root, clips(_scene_stream(cfg, seeds, on_scene, progress, generate_photo_clip)), subset)
    write_licences(root / f"{subset}_licenses.csv", usage)
    return root


def generate_dataset(
    config: SynthConfig,
    out: str | Path,
    count: int = 1,
    seed: int = 0,
    *,
    on_scene: Callable[[Any], None] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Generate ``count`` scenes with seeds ``seed .. seed + count - 1`` into ``out`` in the preset's layout.

    2D presets write one AVSBench S4 / MS3 / AVSS dataset (the whole data folder is replaced atomically);
    scene presets write ``out/<preset>_<seed>/`` per scene (each atomically) and update ``out/index.csv``
    (name, seed, split, preset). ``on_scene`` is called after each scene (e.g. to advance a progress bar) with
    the :class:`SynthScene` (or, for the real-photo presets, the :class:`~soundmask.synth.photos.PhotoScene`;
    both have ``name``, ``seed`` and ``split``). The real-photo presets also write ``<subset>_licenses.csv``
    (asset, licence, attribution, clips) beside the metadata CSV.
    """
    from soundmask.data.avsbench import write_avsbench
    from soundmask.data.avss import write_avss
    from soundmask.data.scene import write_scene

    cfg = config.resolved()
    if count < 1:
        raise ConfigError(f"count must be >= 1, got {count}")
    if seed < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")
    p = cfg.preset_spec()
    root = Path(out)
    seeds = list(range(int(seed), int(seed) + int(count)))
    if p.source == "photo":
        return _photo_dataset(cfg, root, "s4" if p.layout == "avsbench-s4" else "ms3", seeds, on_scene, progress)
    stream = _scene_stream(cfg, seeds, on_scene, progress)
    if p.layout == "avsbench-s4":
        return write_avsbench(root, (s.to_clip() for s in stream), "s4")
    if p.layout == "avsbench-ms3":
        return write_avsbench(root, (s.to_clip() for s in stream), "ms3")
    if p.layout == "avss":
        return write_avss(root, (s.to_clip() for s in stream), frame_format="png")
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for sc in stream:
        if progress is not None:
            progress(f"write {sc.name}")
        write_scene(
            root / sc.name,
            sc.scene,
            sc.rgb,
            sc.instances,
            sc.depth,
            sc.sound_masks,
            sc.stereo,
            sc.mono,
            object_audio=sc.object_audio,
        )
        rows.append((sc.name, sc.seed, sc.split, sc.preset))
    _update_index(root / "index.csv", rows)
    return root


def _update_index(path: Path, rows: list[tuple[str, int, str, str]]) -> None:
    import csv

    old: dict[str, tuple[str, int, str, str]] = {}
    if path.is_file():
        with path.open(newline="") as f:
            for rec in csv.DictReader(f):
                try:
                    old[rec["name"]] = (rec["name"], int(rec["seed"]), rec["split"], rec["preset"])
                except (KeyError, ValueError):
                    continue
    for r in rows:
        old[r[0]] = r
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["name", "seed", "split", "preset"])
        w.writerows(sorted(old.values()))
