"""The 3D/4D sound-mask pipeline (3D SoundMask stages 1–8, with EchoSegnet's voting and evaluation protocol).

``run_lift(scene_dir, LiftConfig(...))``:

1. **Views and model.** The scene's frames; every 8th is a test view (EchoSegnet) that nothing below may look at
   except the final evaluation. The Gaussian model is fitted (:func:`soundmask.splat.train.fit`) or loaded.
2. **Audio.** Activity chunking (:func:`soundmask.audio.chunking.chunk`), YAMNet tagging per frame window, and
   GCC-PHAT TDoA per frame window from the stereo track (when the scene has one).
3. **2D sound masks** of the training frames: ground truth (``use_gt_2d``) or a 2D AVS method (``method``).
4. **Grouping** the Gaussians into objects: majority vote of the 2D *instance* masks (``instances``; needs
   instance masks, i.e. ground truth), SAGA-style affinity features trained on them (``affinity``), connected
   components of the Gaussians off the scene's large planes (``geometry``, the default without ground truth:
   needs no mask; a component mostly silent under the sound masks' votes loses its voted part to a component of
   its own, ``sound_split``, so an object is not lost in the table it stands on), or connected components of
   the Gaussians the sound masks vote for (``spatial``).
5. **Association** per training frame: each component's visible render vs. the frame's 2D sound mask, with the
   TDoA tie-break (:func:`soundmask.lift.associate.associate_frame`) → a component × frame timeline.
6. **Voting within** each component (EchoSegnet's rule, votes₁/(votes₀+votes₁) > τ over the frames where the
   component sounds) trims Gaussians that don't belong to the sounding object; optionally EchoSegnet-style
   refinement by direction (:func:`soundmask.lift.refine.refine_by_direction`).
7. **Tagging.** Each sounding component gets the YAMNet label/embedding of its active windows and its time spans
   → a :class:`~soundmask.lift.tags.SoundScene` (query by label, time, audio).
8. **Evaluation** on the test views (when the scene has ground truth): the sounding Gaussians at the view's time
   are rendered (occluded by the rest of the scene), mask = alpha > 0.8; AVSBench mIoU/F per scene (EchoSegnet
   protocol), pooled J/F, and the 3D centroid error of each sounding object.
"""

from __future__ import annotations

import json
import time as _time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from soundmask.config import option
from soundmask.data.io import atomic_path
from soundmask.data.types import Scene
from soundmask.errors import ConfigError, DataError
from soundmask.lift.associate import ComponentTimeline, associate_frame, component_masks
from soundmask.lift.grouping import PLANE_TOLERANCE, Component, components_from_labels, spatial_components
from soundmask.lift.tags import SoundScene, SoundTag, spans_from_activity
from soundmask.lift.voting import centre_visibility, vote_instances, vote_masks
from soundmask.splat.gaussians import Gaussians
from soundmask.splat.render import render
from soundmask.splat.train import ReconstructConfig, SceneViews, fit, load_views, resize_to

__all__ = ["FrameAudio", "LiftConfig", "LiftResult", "audio_cues", "frame_audio", "load_model", "resize_mask",
           "run_lift", "save_model"]

Progress = Callable[[str, float], None]


@dataclass
class LiftConfig:
    """Options of ``soundmask lift`` (every field is a command-line option)."""

    method: str = option("sdavs", "2D AVS method for the sound masks (seac | avsc | sdavs); ignored with --use-gt-2d")
    checkpoint: str = option("", "checkpoint of the 2D method (default: its shipped weights)")
    use_gt_2d: bool = option(False, "use the scene's ground-truth 2D sound masks (semantic_masks/) instead of a method")
    grouping: Literal["auto", "instances", "affinity", "geometry", "spatial"] = option(
        "auto", "how Gaussians become objects: auto = instances with --use-gt-2d when instance masks exist, else "
        "geometry | instances (2D instance-mask vote) | affinity (SAGA-style features from the instance masks) | "
        "geometry (connected components off the large planes: needs no mask) | spatial (sound-vote clusters)")
    plane_tolerance: float = option(PLANE_TOLERANCE, "geometry grouping: a Gaussian lies on one of the scene's large "
                                    "planes (floor, walls) within this fraction of the scene's extent")
    sound_split: float = option(0.8, "geometry grouping: a component of which less than this share is voted for by "
                                "the sound masks (see any-threshold) is split into its voted part and the rest (0: "
                                "off)")
    vote_threshold: float = option(0.5, "EchoSegnet vote rule: keep a Gaussian when votes1/(votes0+votes1) > this")
    any_threshold: float = option(0.15, "spatial grouping and sound-split: a Gaussian is voted for when this share "
                                  "of its votes (over frames with a sound) is positive")
    iou_threshold: float = option(0.5, "association: IoU of a component's render with the 2D mask to be a candidate")
    precision_threshold: float = option(0.6, "association: or this share of the component inside the mask")
    min_coverage: float = option(0.05, "association: ... while covering this share of the mask")
    angle_tolerance: float = option(0.35, "TDoA tie-break tolerance in radians (with --response-share 0)")
    response_share: float = option(0.0, "TDoA tie-break by steered response (SRP-PHAT): keep the best-aligned "
                                   "candidate and those whose GCC-PHAT correlation at their own delay is at least this "
                                   "share of the strongest candidate's; 0.2 helps learned 2D masks (docs/scene3d.md). "
                                   "0: by angle error within --angle-tolerance")
    refine: bool = option(False, "EchoSegnet-style refinement: keep the parts of a component the TDoA points at")
    alpha_threshold: float = option(0.8, "evaluation: rendered sound mask = alpha > this (EchoSegnet: 0.8)")
    min_component: int = option(20, "smallest object, in Gaussians")
    grow_margin: float = option(0.1, "voting looks for an object's Gaussians this far (× its size) beyond its box")
    render_views: Literal["test", "none"] = option("test", "write sound-mask renders of the test views, or none")
    occlusion: bool = option(True, "render selected Gaussians occluded by the rest of the scene (False: alone, "
                             "as EchoSegnet renders them)")
    backend: str = option("auto", "rasterizer: auto | tile | dense | gsplat")
    seed: int = option(0, "random seed")

    def __post_init__(self) -> None:
        if not 0 < self.plane_tolerance < 1:
            raise ConfigError(f"plane-tolerance must be in (0, 1), got {self.plane_tolerance}")
        for name in ("sound_split", "vote_threshold", "any_threshold", "iou_threshold", "precision_threshold",
                     "min_coverage", "alpha_threshold", "response_share"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise ConfigError(f"{name.replace('_', '-')} must be in [0, 1], got {v}")
        if self.min_component < 1:
            raise ConfigError(f"min-component must be >= 1, got {self.min_component}")


@dataclass
class LiftResult:
    """What ``soundmask lift`` measured and made; ``metrics`` holds the JSON fields."""

    sound_scene: SoundScene
    metrics: dict[str, Any]
    timeline: ComponentTimeline
    components: list[Component]
    test_masks: dict[int, np.ndarray] = field(default_factory=dict)  # test view → predicted mask


# ------------------------------------------------------------------------------------------ model files
def save_model(g: Gaussians, path: str | Path) -> Path:
    """Write a model: ``.ply`` (3DGS layout, opens in splat viewers) or ``.pt`` (torch state dict)."""
    p = Path(path)
    if p.suffix.lower() == ".ply":
        from soundmask.splat.ply import write_ply

        return write_ply(g, p)
    with atomic_path(p) as tmp:
        torch.save(g.state_dict(), tmp)
    return p


def load_model(path: str | Path) -> Gaussians:
    """Read a model written by :func:`save_model` (or any 3DGS ``.ply``)."""
    p = Path(path)
    if not p.is_file():
        raise DataError("model file not found", p, "run `soundmask reconstruct --scene DIR --out MODEL` first")
    if p.suffix.lower() == ".ply":
        from soundmask.splat.ply import read_ply

        g = read_ply(p)
    else:
        try:
            d = torch.load(p, map_location="cpu", weights_only=True)
            g = Gaussians.from_state_dict(d)
        except Exception as e:
            raise DataError(f"not a soundmask model ({type(e).__name__}: {e})", p, "pass a .ply or a .pt from "
                            "`soundmask reconstruct`") from e
    for name, v in g.state_dict().items():
        if torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all():
            raise DataError(f"the model has NaN or infinite values ({name})", p, "re-run `soundmask reconstruct`")
    return g


# ------------------------------------------------------------------------------------------ audio
@dataclass
class FrameAudio:
    """Per-frame audio cues: activity segments (s), one YAMNet tagging and one TDoA per frame window."""

    segments: list[tuple[float, float]]
    taggings: list[Any]
    tdoa: list[Any] | None
    window: float
    stereo: np.ndarray | None = field(default=None, repr=False)  # (2, S), kept for the steered responses
    sample_rate: int = 0
    windows: list[Any] | None = field(default=None, repr=False)  # the frame windows (Segment) of ``tdoa``

    def steered(self, frames: list[int], delays: list[np.ndarray]) -> list[np.ndarray] | None:
        """The GCC-PHAT correlation of frame window ``frames[j]`` at ``delays[j]`` (s) — see
        :func:`soundmask.audio.tdoa.steered_response`; None without stereo audio."""
        if self.stereo is None or not self.windows:
            return None
        from soundmask.audio.tdoa import steered_response

        return steered_response(self.stereo, self.sample_rate, [self.windows[i] for i in frames], delays)

    def active(self, t: float, min_share: float = 0.25) -> bool:
        """Whether audio-active segments cover at least ``min_share`` of the frame window [t, t + window) (so a
        sound that starts a few milliseconds before the next frame does not make this one sounding)."""
        cover = sum(max(0.0, min(b, t + self.window) - max(a, t)) for a, b in self.segments)
        return cover >= min_share * self.window


def frame_audio(scene: Scene, times: list[float]) -> FrameAudio:
    """Chunk the scene's audio, tag each frame window with YAMNet and estimate its TDoA (stereo only)."""
    from soundmask.data.scene import load_mono, load_stereo

    root = scene.root
    window = 1.0 / scene.fps if scene.fps > 0 else 1.0
    if root is not None and (root / "audio" / "stereo.wav").is_file():
        audio = load_stereo(scene)
    elif root is not None and (root / "audio" / "mono.wav").is_file():
        audio = load_mono(scene)
    else:
        audio = _clips_audio(scene, len(times))
    return audio_cues(audio, scene.sample_rate, times, window)


def audio_cues(audio: np.ndarray, sr: int, times: list[float], window: float) -> FrameAudio:
    """:class:`FrameAudio` of a recording ((2, S) stereo, channel 0 = left, or (S,) mono) for frames at ``times``
    (s), each owning ``[t, t + window)``: activity segments, YAMNet tags, TDoA (stereo only)."""
    from soundmask.audio.chunking import chunk
    from soundmask.audio.embed import get_embedder
    from soundmask.audio.tdoa import segment_tdoa
    from soundmask.audio.types import Segment

    audio = np.asarray(audio, dtype=np.float32)
    stereo = audio if audio.ndim == 2 and audio.shape[0] == 2 else None
    mono = stereo.mean(axis=0) if stereo is not None else audio.reshape(-1)
    dur = mono.shape[-1] / sr
    segs = [(s.start, s.end) for s in chunk(mono, sr, speech=False)]
    wins = [Segment(min(t, dur), min(t + window, dur)) for t in times]
    try:
        taggings = get_embedder("yamnet").tag(mono, sr, wins)
    except Exception:  # noqa: BLE001 - tagging is optional: the scene is still lifted without labels
        taggings = [None] * len(times)
    tdoa = segment_tdoa(stereo, sr, wins, spacing=None) if stereo is not None else None
    return FrameAudio(segs, taggings, tdoa, window, stereo=stereo, sample_rate=sr, windows=wins)


def scene_mono(scene: Scene) -> tuple[np.ndarray, int]:
    """(mono audio, sample rate) of a scene: ``audio/mono.wav``, else 3DAVS per-frame clips."""
    from soundmask.data.scene import load_mono

    root = scene.root
    if root is not None and (root / "audio" / "mono.wav").is_file():
        return load_mono(scene), scene.sample_rate
    return _clips_audio(scene, len(scene.frames)), scene.sample_rate


def _clips_audio(scene: Scene, n: int) -> np.ndarray:
    """Mono audio assembled from 3DAVS per-frame clips (audio_clips_mono/), one clip per frame."""
    from soundmask.data.threedavs import load_3davs_mono

    parts = []
    for i in range(n):
        try:
            a, _ = load_3davs_mono(scene, i)
        except DataError:
            a = np.zeros(int(scene.sample_rate / max(scene.fps, 1e-6)), np.float32)
        parts.append(np.asarray(a, np.float32).reshape(-1))
    return np.concatenate(parts) if parts else np.zeros(1, np.float32)


# ------------------------------------------------------------------------------------------ 2D masks
def sound_masks_2d(views: SceneViews, cfg: LiftConfig, which: list[int], audio: Any = None) -> dict[int, np.ndarray]:
    """2D sound masks (at the views' size) of frames ``which``: ground truth or the chosen 2D method."""
    from soundmask.data.scene import load_sound_mask

    scene = views.scene
    assert scene is not None
    H, W = views.size
    out: dict[int, np.ndarray] = {}
    if cfg.use_gt_2d:
        for i in which:
            try:
                m = load_sound_mask(scene, i)
            except DataError as e:
                raise DataError(f"--use-gt-2d needs semantic_masks/ ({e.problem})", e.path,
                                "drop --use-gt-2d to use a 2D method") from e
            out[i] = resize_mask(m, W, H)
        return out
    from soundmask.avs2d import METHODS
    from soundmask.data.scene import load_rgb
    from soundmask.registry import resolve

    cls = resolve(METHODS, cfg.method, "2D AVS method")
    seg = cls.load(cfg.checkpoint or None)
    frames = np.stack([load_rgb(scene, i) for i in range(len(scene.frames))])
    mono, sr = audio
    pred = seg.predict(frames, mono[None], sr, frame_times=np.array([f.time for f in scene.frames]))
    bm = pred.binary()
    for i in which:
        out[i] = resize_mask(bm[i], W, H)
    return out


def resize_mask(m: np.ndarray, W: int, H: int) -> np.ndarray:
    """A mask (any dtype, non-zero = inside) as bool at W × H pixels (nearest neighbour)."""
    return resize_to(np.asarray(m).astype(np.uint8), W, H, nearest=True) > 0


# ------------------------------------------------------------------------------------------ the pipeline
def _group(g: Gaussians, views: SceneViews, cfg: LiftConfig, masks: dict[int, np.ndarray],
           visible: np.ndarray, train: list[int]) -> tuple[list[Component], str]:
    from soundmask.data.scene import load_instance_mask

    scene = views.scene
    assert scene is not None
    how = cfg.grouping
    has_inst = scene.root is not None and (scene.root / "instance_masks").is_dir()
    if how == "auto":
        how = "instances" if (cfg.use_gt_2d and has_inst) else "geometry"
    cams = [views.cameras[i] for i in train]
    times = [views.times[i] for i in train]
    means = g.means.detach().numpy()
    if how == "geometry":
        from soundmask.lift.grouping import geometric_components

        with torch.no_grad():
            op = g.opacities().reshape(-1).numpy()
        comps = geometric_components(means, op, min_size=cfg.min_component, inlier_fraction=cfg.plane_tolerance)
        if cfg.sound_split > 0:
            from soundmask.lift.grouping import split_by_sound

            snd = _sounded(g, cams, times, masks, train, visible, cfg)
            comps = split_by_sound(comps, means, snd, max_share=cfg.sound_split, min_size=cfg.min_component)
        return comps, how
    if how in ("instances", "affinity"):
        if not has_inst:
            raise DataError(f"--grouping {how} needs instance masks (instance_masks/)", scene.root,
                            "use --grouping geometry")
        H, W = views.size
        inst = [resize_to(load_instance_mask(scene, i), W, H, nearest=True) for i in train]
        if how == "instances":
            labels = vote_instances(g, cams, inst, times=times, visible=visible)
        else:
            from soundmask.lift.affinity import group_by_affinity

            labels = group_by_affinity(g, cams, inst, times=times)
        return components_from_labels(labels, means, min_size=cfg.min_component), how
    return spatial_components(means, _sounded(g, cams, times, masks, train, visible, cfg),
                              min_size=cfg.min_component), how


def _responses(fa: FrameAudio, scene: Scene, train: list[int], components: list[Component]) -> list[Any] | None:
    """Per training frame, the steered response at the delay each component's centroid predicts for that frame's
    microphones; None without stereo audio, components or microphone positions."""
    from soundmask.synth.acoustics import geometric_tdoa

    frames = [scene.frames[i] for i in train]
    if not components or any(f.mic_left is None or f.mic_right is None for f in frames):
        return None
    cents = np.stack([np.asarray(c.centroid, dtype=np.float64) for c in components])
    delays = [np.atleast_1d(geometric_tdoa(cents, f.mic_left, f.mic_right, scene.speed_of_sound)) for f in frames]
    return fa.steered(train, delays)


def _sounded(g: Gaussians, cams: list[Any], times: list[float], masks: dict[int, np.ndarray], train: list[int],
             visible: np.ndarray, cfg: LiftConfig) -> np.ndarray:
    """(N,) bool: the Gaussians inside the sound masks in ≥ 2 views and in more than ``any_threshold`` of the
    views with a sound that see them."""
    sel = [j for j, i in enumerate(train) if masks[i].any()]
    if not sel:
        return np.zeros(len(g), bool)
    votes = vote_masks(g, [cams[j] for j in sel], [masks[train[j]] for j in sel],
                       times=[times[j] for j in sel], visible=visible[sel])
    return (votes.pos >= 2) & (votes.ratio() > cfg.any_threshold)


def run_lift(
    scene_dir: str | Path | Scene,
    cfg: LiftConfig | None = None,
    *,
    model: str | Path | Gaussians | None = None,
    reconstruct: ReconstructConfig | None = None,
    out_dir: str | Path | None = None,
    progress: Progress | None = None,
    audio: FrameAudio | None = None,
    masks_2d: dict[int, np.ndarray] | None = None,
) -> LiftResult:
    """Run the pipeline on one scene (see the module docstring); write renders/JSON/scene under ``out_dir``.

    ``audio`` (from :func:`frame_audio`) and ``masks_2d`` (from :func:`sound_masks_2d`, at least every training
    frame) skip those stages when a caller (e.g. ``soundmask demo``) has already computed them."""
    cfg = cfg or LiftConfig()
    if not cfg.use_gt_2d:  # an unknown method fails before any work
        from soundmask.avs2d import METHODS
        from soundmask.registry import resolve

        resolve(METHODS, cfg.method, "2D AVS method")
    rcfg = reconstruct or ReconstructConfig(backend=cfg.backend, seed=cfg.seed)
    say = progress or (lambda stage, frac: None)
    timings: dict[str, float] = {}
    t_all = _time.perf_counter()

    def lap(name: str, t0: float) -> None:
        timings[name] = round(_time.perf_counter() - t0, 3)

    t0 = _time.perf_counter()
    views = load_views(scene_dir, scale=rcfg.scale, test_every=rcfg.test_every)
    scene = views.scene
    assert scene is not None
    lap("load", t0)

    # 1. model
    t0 = _time.perf_counter()
    say("reconstruct", 0.0)
    fit_info: dict[str, Any] = {}
    if isinstance(model, Gaussians):
        g = model
    elif model is not None:
        g = load_model(model)
    else:
        res = fit(views, rcfg, progress=lambda s, n, info: say("reconstruct", s / max(n, 1)))
        g = res.gaussians
        fit_info = {"psnr_test": res.psnr_test, "psnr_train": res.psnr_train, "iterations": res.iterations,
                    "reconstruct_seconds": res.seconds}
    g = g.detach()
    lap("reconstruct", t0)

    # 2. audio
    t0 = _time.perf_counter()
    say("audio", 0.0)
    fa = audio if audio is not None else frame_audio(scene, views.times)
    lap("audio", t0)

    train = views.train
    # 3. 2D masks
    t0 = _time.perf_counter()
    say("2d masks", 0.0)
    if masks_2d is not None:
        missing = [i for i in train if i not in masks_2d]
        if missing:
            raise ConfigError(f"masks_2d lacks training frames {missing[:5]}")
        masks = {i: resize_mask(masks_2d[i], views.size[1], views.size[0]) for i in train}
    else:
        masks = sound_masks_2d(views, cfg, train, None if cfg.use_gt_2d else scene_mono(scene))
    lap("masks_2d", t0)

    # 4. visibility, grouping
    t0 = _time.perf_counter()
    say("grouping", 0.0)
    cams = [views.cameras[i] for i in train]
    times = [views.times[i] for i in train]
    with torch.no_grad():
        depths = [render(g, views.cameras[i], time=views.times[i], features=False, backend=cfg.backend)
                  .depth.numpy() for i in train]
    visible = centre_visibility(g, cams, times=times, depth_maps=depths)
    components, grouping = _group(g, views, cfg, masks, visible, train)
    lap("grouping", t0)

    # 5. association per training frame
    t0 = _time.perf_counter()
    say("association", 0.0)
    assocs = []
    responses = _responses(fa, scene, train, components) if cfg.response_share > 0 else None
    for j, i in enumerate(train):
        soft = component_masks(g, views.cameras[i], components, time=views.times[i], backend=cfg.backend)
        f = scene.frames[i]
        tau = fa.tdoa[i] if fa.tdoa is not None else None
        assocs.append(associate_frame(soft, masks[i], components, iou_threshold=cfg.iou_threshold,
                                      precision_threshold=cfg.precision_threshold, min_coverage=cfg.min_coverage,
                                      tdoa=tau, mic_left=f.mic_left, mic_right=f.mic_right,
                                      angle_tolerance=cfg.angle_tolerance, c=scene.speed_of_sound,
                                      response=responses[j] if responses is not None else None,
                                      response_share=cfg.response_share))
        say("association", (j + 1) / len(train))
    timeline = ComponentTimeline.from_associations(assocs, segments=fa.segments) if assocs and components else \
        ComponentTimeline(np.zeros(0, np.int64), np.zeros((len(train), 0), bool), fa.segments)
    lap("association", t0)

    # 6. voting within each sounding component (+ optional refinement)
    t0 = _time.perf_counter()
    members: dict[int, np.ndarray] = {}
    means_all = g.means.detach().numpy()
    for k, comp in enumerate(components):
        act = [j for j in range(len(train)) if timeline.active[j, k]]
        if not act:
            continue
        idx = np.asarray(comp.index)
        # EchoSegnet's vote over the frames where this component sounds, for the Gaussians in and around it:
        # spatial components keep only their voted Gaussians; instance/affinity objects also take in voted
        # neighbours the grouping left out (unassigned edge Gaussians), so the rendered mask is solid
        near = _near(means_all, idx, cfg.grow_margin)
        v = vote_masks(g.subset(torch.as_tensor(near)), [cams[j] for j in act], [masks[train[j]] for j in act],
                       times=[times[j] for j in act], visible=visible[act][:, near])
        voted = near[v.select(cfg.vote_threshold)]
        keep = np.intersect1d(voted, idx) if grouping == "spatial" else np.union1d(idx, voted)
        if cfg.refine and fa.tdoa is not None and keep.size:
            from soundmask.lift.refine import refine_by_direction

            taus = [fa.tdoa[train[j]].tau for j in act if np.isfinite(fa.tdoa[train[j]].tau)]
            f = scene.frames[train[act[len(act) // 2]]]
            if taus and f.mic_left is not None and f.mic_right is not None:
                keep = refine_by_direction(g.means.numpy(), keep, float(np.median(taus)), f.mic_left, f.mic_right,
                                           c=scene.speed_of_sound)
        if keep.size:
            members[comp.id] = keep
    lap("voting", t0)

    # 7. tags
    tags = _tags(g, components, members, timeline, train, views, fa)
    sound = SoundScene(g, tags, {"scene": scene.name, "grouping": grouping,
                                 "method": "gt" if cfg.use_gt_2d else cfg.method})

    # 8. evaluation and renders
    t0 = _time.perf_counter()
    say("evaluation", 0.0)
    train_times = [views.times[i] for i in train]
    sim = _audio_similarity(fa, views.times)
    test_masks: dict[int, np.ndarray] = {}
    for i in views.test:
        t = views.times[i]
        active = timeline.active_at(t, train_times, audio_active=sim, segments=[(-np.inf, np.inf)]) \
            if len(components) and fa.active(t) else [False] * len(components)
        ids = [comp.id for comp, a in zip(components, active, strict=True) if a and comp.id in members]
        test_masks[i] = _sound_alpha(g, views, i, [members[c] for c in ids], cfg)
    metrics = _evaluate(views, scene, test_masks, tags, cfg)
    lap("evaluation", t0)
    metrics.update({
        "scene": scene.name, "method": "gt" if cfg.use_gt_2d else cfg.method, "grouping": grouping,
        "num_gaussians": len(g), "num_components": len(components), "num_tags": len(tags),
        "test_views": list(views.test), "seconds": round(_time.perf_counter() - t_all, 3), "timings": timings,
        **fit_info, "config": asdict(cfg),
    })
    result = LiftResult(sound, metrics, timeline, components, test_masks)
    if out_dir is not None:
        write_outputs(result, views, out_dir, cfg)
    say("done", 1.0)
    return result


def _near(means: np.ndarray, idx: np.ndarray, margin: float) -> np.ndarray:
    """Indices of the Gaussians inside the bounding box of ``idx`` grown by ``margin`` × its size on each side."""
    if idx.size == 0:
        return idx
    lo, hi = means[idx].min(axis=0), means[idx].max(axis=0)
    pad = margin * (hi - lo) + 1e-6
    inside = ((means >= lo - pad) & (means <= hi + pad)).all(axis=1)
    return np.flatnonzero(inside)


def _audio_similarity(fa: FrameAudio, times: list[float]) -> Callable[[float, float], float] | None:
    """Cosine similarity of the YAMNet embeddings of the frame windows at two times (for timeline ties)."""
    emb = {}
    for t, tg in zip(times, fa.taggings, strict=True):
        if tg is not None and np.size(tg.embedding):
            e = np.asarray(tg.embedding, np.float64)
            emb[round(t, 6)] = e / max(np.linalg.norm(e), 1e-12)
    if not emb:
        return None

    def sim(t: float, u: float) -> float:
        a, b = emb.get(round(t, 6)), emb.get(round(u, 6))
        return float(a @ b) if a is not None and b is not None else 0.0

    return sim


def _sound_alpha(g: Gaussians, views: SceneViews, i: int, parts: list[np.ndarray], cfg: LiftConfig) -> np.ndarray:
    """Rendered alpha (H, W) of the selected Gaussians at view ``i`` (occluded by the rest unless disabled)."""
    H, W = views.size
    if not parts:
        return np.zeros((H, W), np.float32)
    idx = np.unique(np.concatenate(parts))
    with torch.no_grad():
        if cfg.occlusion:
            sel = torch.zeros(len(g), 1)
            sel[torch.as_tensor(idx)] = 1.0
            r = render(g, views.cameras[i], time=views.times[i], features=sel, backend=cfg.backend)
            return r.features[..., 0].clamp(0, 1).numpy()  # type: ignore[index]
        r = render(g.subset(torch.as_tensor(idx)), views.cameras[i], time=views.times[i], features=False,
                   backend=cfg.backend)
        return r.alpha.numpy()


def _tags(g: Gaussians, components: list[Component], members: dict[int, np.ndarray], timeline: ComponentTimeline,
          train: list[int], views: SceneViews, fa: FrameAudio) -> list[SoundTag]:
    from soundmask.audio.types import Tagging

    tags = []
    means = g.means.detach().numpy()
    for k, comp in enumerate(components):
        if comp.id not in members:
            continue
        act = timeline.active[:, k]
        times = [views.times[i] for i in train]
        spans = spans_from_activity(times, act, fa.window)
        tg = [fa.taggings[train[j]] for j in range(len(train)) if act[j] and fa.taggings[train[j]] is not None]
        label, scores, emb = "sound", {}, np.zeros(0, np.float32)
        if tg:
            sc = np.mean([t.scores for t in tg], axis=0)
            emb = np.mean([t.embedding for t in tg], axis=0).astype(np.float32)
            agg = Tagging(tg[0].labels, sc, emb, tg[0].model)
            top = agg.top(3)
            label, scores = top[0][0], dict(top)
        idx = members[comp.id]
        tags.append(SoundTag(comp.id, idx, label, scores, emb, spans, means[idx].mean(axis=0)))
    return tags


def _evaluate(views: SceneViews, scene: Scene, test_alpha: dict[int, np.ndarray], tags: list[SoundTag],
              cfg: LiftConfig) -> dict[str, Any]:
    """EchoSegnet protocol on the test views (when GT masks exist) and the centroid error of sounding objects."""
    from soundmask.data.scene import load_sound_mask
    from soundmask.metrics.scene3d import Scene3DMetric

    out: dict[str, Any] = {}
    H, W = views.size
    gts, preds = [], []
    for i, a in test_alpha.items():
        try:
            gts.append(resize_mask(load_sound_mask(scene, i), W, H))
        except DataError:
            return {"miou": None, "fscore": None, "pooled_j": None, "pooled_f": None, "centroid_error_m": None,
                    "note": "the scene has no ground-truth sound masks; nothing to score"}
        preds.append(a)
    errs = _centroid_errors(scene, tags)
    m = Scene3DMetric(alpha_threshold=cfg.alpha_threshold)
    if gts:
        m.update(scene.name or "scene", np.stack(preds).astype(np.float32), np.stack(gts), centroid_errors=errs)
        out.update({k: v for k, v in m.compute().to_dict().items() if k in ("miou", "fscore", "pooled_j", "pooled_f",
                                                                             "centroid_error_m")})
    out["centroid_errors_m"] = [None if not np.isfinite(e) else round(float(e), 4) for e in errs]
    return out


def _centroid_errors(scene: Scene, tags: list[SoundTag]) -> list[float]:
    """Per sounding object with events: distance from its (mean) position to the centroid of the tag whose spans
    overlap its events most (NaN when no tag overlaps it)."""
    errs = []
    for o in scene.objects:
        ev = [e for e in scene.sound_events if e.object_id == o.id]
        if not ev:
            continue
        best, best_ov = None, 0.0
        for t in tags:
            ov = sum(max(0.0, min(e.end, b) - max(e.start, a)) for e in ev for a, b in t.spans)
            if ov > best_ov:
                best, best_ov = t, ov
        pos = o.positions.mean(axis=0)
        errs.append(float(np.linalg.norm(best.centroid - pos)) if best is not None else float("nan"))
    return errs


def write_outputs(result: LiftResult, views: SceneViews, out_dir: str | Path, cfg: LiftConfig) -> Path:
    """Sound-mask renders (overlay PNGs) of the chosen views, ``sound_scene.pt`` and ``lift.json``."""
    from PIL import Image

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    g = result.sound_scene.gaussians
    rd = out / "renders"
    if cfg.render_views != "none":
        rd.mkdir(exist_ok=True)
        for i, a in result.test_masks.items():
            with torch.no_grad():
                rgb = render(g, views.cameras[i], time=views.times[i], features=False, backend=cfg.backend).color
            img = (rgb.clamp(0, 1).numpy() * 255).astype(np.float32)
            m = a > cfg.alpha_threshold
            img[m] = 0.45 * img[m] + 0.55 * np.array([255.0, 40.0, 40.0])
            with atomic_path(rd / f"view_{i:05d}.png") as tmp:
                Image.fromarray(img.astype(np.uint8)).save(tmp, format="PNG")
            with atomic_path(rd / f"mask_{i:05d}.png") as tmp:
                Image.fromarray((m * 255).astype(np.uint8)).save(tmp, format="PNG")
    result.sound_scene.save(out / "sound_scene.pt")
    with atomic_path(out / "lift.json") as tmp:
        tmp.write_text(json.dumps(_jsonable(result.metrics), indent=2))
    return out


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return None if not np.isfinite(x) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    return x


# ------------------------------------------------------------------------------------------ rendering
def read_camera_json(path: str | Path) -> Any:
    """A camera from JSON: ``{"intrinsics": {"fx", "fy", "cx", "cy"}, "width", "height", "camera_to_world": 4×4}``."""
    from soundmask.data.types import Camera, Intrinsics

    p = Path(path)
    if not p.is_file():
        raise DataError("camera file not found", p, "check the path")
    try:
        d = json.loads(p.read_text())
        k = d["intrinsics"]
        intr = Intrinsics(float(k["fx"]), float(k["fy"]), float(k["cx"]), float(k["cy"]), int(d["width"]),
                          int(d["height"]))
        cam = Camera(intr, np.asarray(d["camera_to_world"], dtype=np.float64), name=p.stem)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"not a camera file ({type(e).__name__}: {e})", p,
                        'write {"intrinsics": {"fx":..,"fy":..,"cx":..,"cy":..}, "width":.., "height":.., '
                        '"camera_to_world": [[4x4]]}') from e
    if not np.isfinite(cam.camera_to_world).all():
        raise DataError("camera_to_world has non-finite values", p)
    return cam


def orbit_cameras(cameras: list[Any], count: int) -> list[Any]:
    """``count`` novel cameras on a circle around the point the given cameras look at (least-squares meeting
    point of their optical axes), at their mean distance and height, between the input cameras' angles."""
    from soundmask.data.types import Camera, look_at

    C = np.stack([c.center for c in cameras])
    D = np.stack([c.camera_to_world[:3, 2] for c in cameras])
    A = np.zeros((3, 3))
    b = np.zeros(3)
    for c, d in zip(C, D, strict=True):
        P = np.eye(3) - np.outer(d, d)
        A += P
        b += P @ c
    target = np.linalg.lstsq(A, b, rcond=None)[0]
    up = -np.mean([c.camera_to_world[:3, 1] for c in cameras], axis=0)
    up /= max(np.linalg.norm(up), 1e-12)
    rel = C - target
    h = float(np.mean(rel @ up))
    flat = rel - np.outer(rel @ up, up)
    r = float(np.mean(np.linalg.norm(flat, axis=1)))
    e1 = flat[0] / max(np.linalg.norm(flat[0]), 1e-12)
    e2 = np.cross(up, e1)
    out = []
    for k in range(count):
        ang = 2 * np.pi * (k + 0.5) / max(count, 1)
        eye = target + h * up + r * (np.cos(ang) * e1 + np.sin(ang) * e2)
        out.append(Camera(cameras[0].intrinsics, look_at(eye, target, up), name=f"orbit_{k:03d}"))
    return out


def render_views(
    model: str | Path,
    out: str | Path,
    *,
    scene: str | Path | None = None,
    views: list[int] | None = None,
    camera: str | Path | None = None,
    orbit: int = 0,
    time: float | None = None,
    label: str = "",
    backend: str = "auto",
) -> list[Path]:
    """Render ``model`` (a model file or a sound_scene.pt) to PNGs; sounding Gaussians are highlighted in red."""
    from PIL import Image

    p = Path(model)
    sound: SoundScene | None = None
    if p.suffix.lower() == ".pt" and p.is_file():
        try:
            sound = SoundScene.load(p)
        except DataError:
            sound = None
    g = sound.gaussians if sound is not None else load_model(p)
    cams: list[tuple[Any, float | None]] = []
    if camera is not None:
        cams.append((read_camera_json(camera), time))
    if scene is not None:
        sv = load_views(scene)
        which = list(views) if views else ([] if orbit else list(sv.test))
        for i in which:
            if not 0 <= i < len(sv.cameras):
                raise ConfigError(f"--view {i} is out of range: the scene has {len(sv.cameras)} frames",
                                  fix=f"use 0..{len(sv.cameras) - 1}")
            cams.append((sv.cameras[i], sv.times[i] if time is None else time))
        if orbit:
            cams += [(c, time) for c in orbit_cameras(sv.cameras, orbit)]
    elif orbit or views:
        raise ConfigError("--view and --orbit need --scene (its cameras)", fix="add --scene DIR")
    if not cams:
        raise ConfigError("no camera to render from", fix="pass --scene DIR (with --view/--orbit) or --camera FILE")
    o = Path(out)
    single = len(cams) == 1 and o.suffix.lower() == ".png"
    if not single:
        o.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, (cam, t) in enumerate(cams):
        with torch.no_grad():
            sel = None
            if sound is not None:
                m = sound.mask_gaussians(t=t, label=label or None)
                sel = torch.as_tensor(m, dtype=torch.float32)[:, None]
            r = render(g, cam, time=t, features=sel if sel is not None else False, backend=backend)
        img = r.color.clamp(0, 1).numpy() * 255
        if r.features is not None:
            a = r.features[..., 0].clamp(0, 1).numpy()[..., None]
            img = img * (1 - 0.6 * a) + 0.6 * a * np.array([255.0, 40.0, 40.0])
        dest = o if single else o / f"{cam.name or 'view'}_{k:03d}.png"
        with atomic_path(dest) as tmp:
            Image.fromarray(img.astype(np.uint8)).save(tmp, format="PNG")
        paths.append(dest)
    return paths
