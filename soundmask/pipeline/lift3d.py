"""The 3D/4D sound-mask pipeline (3D SoundMask stages 1–8, with EchoSegnet's voting and evaluation protocol).

``run_lift(scene_dir, LiftConfig(...))`` runs its stages on one :class:`~soundmask.pipeline.stages.Runner`: the
views (every 8th frame is a test view that only the evaluation sees) and the Gaussian model (fitted or loaded);
the audio cues per frame (:func:`soundmask.audio.cues.frame_audio`); the 2D sound masks of the training frames
(ground truth or a 2D method); grouping the Gaussians into objects (:mod:`soundmask.lift.objects`); association
of each object with each frame's sound mask, with the TDoA tie-break (:func:`soundmask.lift.associate.
associate_views`) and the binding of each sound to components over visual, acoustic and semantic cues
(:func:`soundmask.lift.binding.decide`); EchoSegnet's vote within each sounding object
(:func:`soundmask.lift.voting.vote_members`), optionally refined by direction; tagging
(:func:`soundmask.lift.tags.tags_from_timeline` → a :class:`~soundmask.lift.tags.SoundScene`), with each sounding
object's own signal and its tags from that signal (:mod:`soundmask.lift.separate`, ``--separation``); and the
evaluation on the test views (:func:`soundmask.metrics.scene3d.evaluate_scene`). docs/scene3d.md describes each
stage and its numbers.
"""

from __future__ import annotations

import time as _time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from soundmask.audio.cues import FrameAudio, frame_audio, scene_mono
from soundmask.avs2d import MethodConfig
from soundmask.config import check_choices, option
from soundmask.constants import ALPHA_THRESHOLD, VOTE_THRESHOLD
from soundmask.data.cameras import camera_to_dict
from soundmask.data.images import resize_mask, resize_to
from soundmask.data.types import Scene
from soundmask.errors import ConfigError, DataError
from soundmask.lift.associate import ComponentTimeline, associate_views, selection_alpha
from soundmask.lift.binding import Binding, BindingCues, acoustic_cues, decide
from soundmask.lift.grouping import PLANE_TOLERANCE, Component
from soundmask.lift.objects import group_gaussians
from soundmask.lift.tags import SoundScene, SoundTag, tags_from_timeline
from soundmask.lift.views import LiftViews
from soundmask.lift.voting import centre_visibility, vote_members
from soundmask.metrics.scene3d import evaluate_scene
from soundmask.pipeline.stages import Progress, Runner, StageProgress, quiet
from soundmask.splat.gaussians import Gaussians
from soundmask.splat.io import load_model
from soundmask.splat.render import Backend, render
from soundmask.splat.train import ReconstructConfig, SceneViews, fit, load_views

__all__ = ["LiftConfig", "LiftResult", "run_lift", "sound_masks_2d"]


@dataclass
class LiftConfig(MethodConfig):
    """Options of ``soundmask lift`` (every field is a command-line option): the 2D method's (ignored with
    ``--use-gt-2d``), then the lifting's."""

    use_gt_2d: bool = option(False, "use the scene's ground-truth 2D sound masks (semantic_masks/) instead of a method")
    grouping: Literal["auto", "instances", "affinity", "geometry", "spatial"] = option(
        "auto",
        "how Gaussians become objects: auto = instances with --use-gt-2d when instance masks exist, else "
        "geometry | instances (2D instance-mask vote) | affinity (SAGA-style features from the instance masks) | "
        "geometry (connected components off the large planes: needs no mask) | spatial (sound-vote clusters)",
    )
    plane_tolerance: float = option(
        PLANE_TOLERANCE,
        "geometry grouping: a Gaussian lies on one of the scene's large "
        "planes (floor, walls) within this fraction of the scene's extent",
    )
    sound_split: float = option(
        0.8,
        "geometry grouping: a component of which less than this share is voted for by "
        "the sound masks (see any-threshold) is split into its voted part and the rest (0: "
        "off)",
    )
    instance_split: Literal["none", "learned", "yolo"] = option(
        "none",
        "geometry grouping: 2D instance proposals of the training frames by this proposer (soundmask.vision."
        "proposals) keep the Gaussians they mark on the large planes and cut each component where they disagree "
        "across views, before the sound split (issue 29, item 7; docs/scene3d.md) | none",
    )
    vote_threshold: float = option(
        VOTE_THRESHOLD, "EchoSegnet vote rule: keep a Gaussian when votes1/(votes0+votes1) > this"
    )
    any_threshold: float = option(
        0.15,
        "spatial grouping and sound-split: a Gaussian is voted for when this share "
        "of its votes (over frames with a sound) is positive",
    )
    iou_threshold: float = option(0.5, "association: IoU of a component's render with the 2D mask to be a candidate")
    precision_threshold: float = option(0.6, "association: or this share of the component inside the mask")
    min_coverage: float = option(0.05, "association: ... while covering this share of the mask")
    angle_tolerance: float = option(0.35, "TDoA tie-break tolerance in radians (with --response-share 0)")
    response_share: float = option(
        0.0,
        "TDoA tie-break by steered response (SRP-PHAT): keep the best-aligned "
        "candidate and those whose GCC-PHAT correlation at their own delay is at least this "
        "share of the strongest candidate's; 0.2 helps learned 2D masks (docs/scene3d.md). "
        "0: by angle error within --angle-tolerance",
    )
    binding: Binding = option(
        "joint",
        "which cues bind each sound to a component, per view: visual (the 2D mask rule and TDoA tie-break) | "
        "acoustic (steered response at each component's Gaussians against off-object points) | semantic (audio tags "
        "vs the component's visual category) | joint (all, weights fitted on train scenes; docs/scene3d.md)",
    )
    acoustic_context: int = option(1, "acoustic cue: sum the steered response over this many views on each side")
    acoustic_model: Literal["direct", "images", "soft"] = option(
        "direct", "acoustic cue: direct path | images (+ floor/ceiling reflections) | soft (±30 µs tolerance)"
    )
    second_source: Literal["duet", "null", "none"] = option(
        "duet", "acoustic cue: take the best component out (DUET bin removal | nulling) and score the others again"
    )
    separation: Literal["mask", "mvdr", "das", "none"] = option(
        "mask",
        "each sounding object's own signal, which its audio tag comes from: mask (time-frequency mask from the "
        "bound objects' delays and their spectra where each sounds alone) | mvdr (steer at it, null the other bound "
        "objects) | das (delay-and-sum) | none (no per-object audio; tags from the mixture)",
    )
    refine: bool = option(False, "EchoSegnet-style refinement: keep the parts of a component the TDoA points at")
    alpha_threshold: float = option(
        ALPHA_THRESHOLD, f"evaluation: rendered sound mask = alpha > this (EchoSegnet: {ALPHA_THRESHOLD})"
    )
    min_component: int = option(20, "smallest object, in Gaussians")
    grow_margin: float = option(0.1, "voting looks for an object's Gaussians this far (× its size) beyond its box")
    render_views: Literal["test", "none"] = option("test", "write sound-mask renders of the test views, or none")
    occlusion: bool = option(
        True, "render selected Gaussians occluded by the rest of the scene (False: alone, as EchoSegnet renders them)"
    )
    backend: Backend = option("auto", "rasterizer: auto | compiled | tile | dense | gsplat")
    seed: int = option(0, "random seed")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choices(self)
        if not 0 < self.plane_tolerance < 1:
            raise ConfigError(f"plane-tolerance must be in (0, 1), got {self.plane_tolerance}")
        shares = "sound_split vote_threshold any_threshold iou_threshold precision_threshold min_coverage"
        for name in [*shares.split(), "alpha_threshold", "response_share"]:
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise ConfigError(f"{name.replace('_', '-')} must be in [0, 1], got {v}")
        if self.acoustic_context < 0:
            raise ConfigError(f"acoustic-context must be >= 0, got {self.acoustic_context}")
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
    cues: BindingCues | None = None  # the binding's cues over the training views (None with --binding visual)

    def write(self, out_dir: str | Path, views: SceneViews, cfg: LiftConfig) -> Path:
        """Renders of the test views, ``sound_scene.pt`` and ``lift.json`` (:func:`write_lift_outputs`)."""
        from soundmask.report.outputs import write_lift_outputs

        return write_lift_outputs(
            out_dir,
            self.sound_scene,
            self.metrics,
            self.test_masks,
            views,
            alpha_threshold=cfg.alpha_threshold,
            renders=cfg.render_views != "none",
            backend=cfg.backend,
        )


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
                raise DataError(
                    f"--use-gt-2d needs semantic_masks/ ({e.problem})", e.path, "drop --use-gt-2d to use a 2D method"
                ) from e
            out[i] = resize_mask(m, W, H)
        return out
    from soundmask.data.scene import load_rgb

    frames, (mono, sr) = np.stack([load_rgb(scene, i) for i in range(len(scene.frames))]), audio
    bm = cfg.load().predict(frames, mono[None], sr, frame_times=np.array([f.time for f in scene.frames])).binary()
    return {i: resize_mask(bm[i], W, H) for i in which}


# ------------------------------------------------------------------------------------------ the pipeline
def _binding_cues(
    scene: Scene,
    assocs: list[Any],
    fa: FrameAudio,
    lv: LiftViews,
    components: list[Component],
    g: Gaussians,
    cfg: LiftConfig,
    times: list[float],
    c: float,
) -> BindingCues | None:
    """The visual, acoustic (and, with a semantic binding, semantic) cues of every component in every view."""
    windows = list(lv.windows) or list(range(len(lv)))
    means = g.means.detach().cpu().numpy().astype(np.float64)
    remove = None if cfg.second_source == "none" else cfg.second_source
    ac = acoustic_cues(
        fa,
        lv.frames,
        windows,
        times,
        components,
        means,
        context=cfg.acoustic_context,
        model=cfg.acoustic_model,
        remove_mode=remove,
        c=c,
        seed=cfg.seed,
        positions_at=g.centres_at if g.dynamic else None,
    )
    if ac is None:
        return None
    ids = np.array([comp.id for comp in components], dtype=np.int64)
    semantic = (
        _semantic_cue(g, scene, lv, components, fa, windows, cfg) if cfg.binding in ("semantic", "joint") else None
    )
    return BindingCues(
        ids,
        np.stack([a.candidates for a in assocs]),
        np.stack([a.iou for a in assocs]),
        ac[0],
        np.array([fa.active(t) for t in times], dtype=bool),
        ac[1],
        semantic=semantic,
        visual=np.stack([a.selected for a in assocs]),
    )


def _tdoa_crosscheck(g: Gaussians, tags: list[SoundTag], tracks: np.ndarray, scene: Scene, views: SceneViews,
                     fa: FrameAudio) -> dict[str, Any]:  # fmt: skip
    """A moving model's cross-check against the audio alone: per sounding tag, the median |TDoA its position
    predicts − the audio-only TDoA track| over the frames where it sounds, at its moving position
    (``tdoa_agreement_us``) and, for comparison, at its static centre (``tdoa_agreement_static_us``)."""
    from soundmask.audio.tdoa import track_tdoa
    from soundmask.lift.separate import object_positions, tdoa_agreement

    if fa.stereo is None or not tags or len(views.times) != len(scene.frames):
        return {}
    tr = track_tdoa(fa.stereo, fa.sample_rate)
    active = np.array([[tag.active(t) for tag in tags] for t in views.times], dtype=bool)
    mid = [t + fa.window / 2 for t in views.times]
    still = object_positions(g, [t.index for t in tags], [None] * len(views.times))
    moving = tdoa_agreement(tracks, active, scene.frames, mid, tr.times, tr.tau, scene.speed_of_sound)
    static = tdoa_agreement(still, active, scene.frames, mid, tr.times, tr.tau, scene.speed_of_sound)

    def us(v: np.ndarray) -> float | None:
        v = v[np.isfinite(v)]
        return round(float(np.median(v)) * 1e6, 2) if len(v) else None

    return {"tdoa_agreement_us": us(moving), "tdoa_agreement_static_us": us(static)}


def _semantic_cue(
    g: Gaussians,
    scene: Scene,
    lv: LiftViews,
    components: list[Component],
    fa: FrameAudio,
    windows: list[int],
    cfg: LiftConfig,
) -> np.ndarray | None:
    """(V, K) the semantic cue (:func:`soundmask.lift.semantic.semantic_matrix`) from the training images and the
    views' audio tags; None when the offline text model is missing (``--binding semantic`` then fails)."""
    from soundmask.audio.textspace import TextSpace
    from soundmask.data.scene import load_rgb
    from soundmask.lift.associate import component_masks
    from soundmask.lift.semantic import component_categories, semantic_matrix

    try:
        space = TextSpace()
    except ConfigError:
        if cfg.binding == "semantic":
            raise
        return None
    images = [load_rgb(scene, i) for i in windows]
    masks = [
        component_masks(g, cam, components, time=t, backend=cfg.backend)
        for cam, t in zip(lv.cameras, lv.times, strict=True)
    ]
    cats = component_categories(images, masks, size=160)
    return semantic_matrix(cats, [fa.taggings[w] for w in windows], space)


def _frame_activity(
    timeline: ComponentTimeline, fa: FrameAudio, views: SceneViews, times: list[float], K: int
) -> np.ndarray:
    """(frames, K) bool: which components sound in each frame window of the scene, training and held-out: a
    training frame as the timeline decided, a held-out one as its nearest training frames (ties: the one whose
    audio sounds more alike), nothing where the window is silent."""
    out = np.zeros((len(views.times), K), dtype=bool)
    if K == 0:
        return out
    row = {i: j for j, i in enumerate(views.train)}
    sim = fa.similarity(views.times)
    for i, t in enumerate(views.times):
        if i in row:
            out[i] = timeline.active[row[i]]
        elif fa.active(t):
            out[i] = timeline.active_at(t, times, audio_active=sim, segments=[(-np.inf, np.inf)])
    return out


def _separate(
    g: Gaussians,
    tags: list[SoundTag],
    components: list[Component],
    activity: np.ndarray,
    fa: FrameAudio,
    views: SceneViews,
    cfg: LiftConfig,
) -> list[SoundTag]:
    """Each tag's own signal (:func:`soundmask.lift.separate.separate_objects`) over every frame window of the
    scene, and its audio tags from it (:func:`~soundmask.lift.separate.tag_objects`)."""
    from soundmask.lift.separate import object_positions, separate_objects, tag_objects

    scene = views.scene
    assert scene is not None
    if not fa.windows:
        return tags
    col = {c.id: k for k, c in enumerate(components)}
    act = activity[:, [col[t.component_id] for t in tags]]
    mid = [None if t is None else float(t) + fa.window / 2 for t in views.times]
    pos = object_positions(g, [t.index for t in tags], mid)
    frames = scene.frames
    mics = None
    if len(frames) == len(fa.windows) and all(f.mic_left is not None and f.mic_right is not None for f in frames):
        mics = np.stack([np.stack([np.asarray(f.mic_left), np.asarray(f.mic_right)]) for f in frames])
    if fa.stereo is not None:
        audio = fa.stereo
    else:
        from soundmask.audio.cues import scene_mono

        audio = scene_mono(scene)[0]
    assert cfg.separation != "none"  # the caller skips this stage then
    sep = separate_objects(
        audio,
        fa.sample_rate or scene.sample_rate,
        fa.windows,
        act,
        pos,
        [t.component_id for t in tags],
        mics,
        method=cfg.separation,
        c=scene.speed_of_sound,
        seed=cfg.seed,
    )
    return tag_objects(tags, sep, fa.windows)


def _group(
    g: Gaussians, views: SceneViews, cfg: LiftConfig, lv: LiftViews, train: list[int]
) -> tuple[list[Component], str]:
    """The grouping ``cfg`` asks for (``auto``: instances with ground-truth 2D masks when the scene has instance
    masks, else geometry) and its components."""
    from soundmask.data.scene import load_instance_mask

    scene = views.scene
    assert scene is not None
    has_inst = scene.root is not None and (scene.root / "instance_masks").is_dir()
    how = ("instances" if (cfg.use_gt_2d and has_inst) else "geometry") if cfg.grouping == "auto" else cfg.grouping
    inst = None
    if how in ("instances", "affinity"):
        if not has_inst:
            raise DataError(
                f"--grouping {how} needs instance masks (instance_masks/)", scene.root, "use --grouping geometry"
            )
        H, W = views.size
        inst = [resize_to(load_instance_mask(scene, i), W, H, nearest=True) for i in train]
    proposals = None
    if how == "geometry" and cfg.instance_split != "none":
        from soundmask.data.scene import load_rgb
        from soundmask.lift.splitting import instance_label_maps
        from soundmask.vision.proposals import get_proposer

        H, W = views.size
        images = np.stack([resize_to(load_rgb(scene, i), W, H) for i in train])
        proposals = instance_label_maps(get_proposer(cfg.instance_split).propose_batch(images))
    return group_gaussians(how, g, lv, cfg, inst, proposals), how


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

    ``audio`` (from :func:`~soundmask.audio.cues.frame_audio`) and ``masks_2d`` (from :func:`sound_masks_2d`, at
    least every training frame) skip those stages when a caller (e.g. ``soundmask demo``) has already computed
    them. Progress: ``(stage, fraction, note)``."""
    cfg = cfg or LiftConfig()
    rcfg = reconstruct or ReconstructConfig(backend=cfg.backend, seed=cfg.seed)
    runner = Runner(progress=progress or quiet)
    t_all = _time.perf_counter()
    views = runner.run(
        "load", lambda say: load_views(scene_dir, scale=rcfg.scale, test_every=rcfg.test_every), silent=True
    )
    scene = views.scene
    assert scene is not None
    train = views.train
    cams = [views.cameras[i] for i in train]
    times = [views.times[i] for i in train]

    # 1. model
    fit_info: dict[str, Any] = {}

    def make_model(say: StageProgress) -> Gaussians:
        if isinstance(model, Gaussians):
            return model.detach()
        if model is not None:
            return load_model(model).detach()
        res = fit(views, rcfg, progress=lambda s, n, info: say(s / max(n, 1), ""))
        fit_info.update(psnr_test=res.psnr_test, psnr_train=res.psnr_train, iterations=res.iterations)
        fit_info["reconstruct_seconds"] = res.seconds
        return res.gaussians.detach()

    g = runner.run("reconstruct", make_model)

    # 2. audio
    fa = runner.run("audio", lambda say: audio if audio is not None else frame_audio(scene, views.times))

    # 3. 2D masks
    def make_masks(say: StageProgress) -> dict[int, np.ndarray]:
        if masks_2d is None:
            return sound_masks_2d(views, cfg, train, None if cfg.use_gt_2d else scene_mono(scene))
        missing = [i for i in train if i not in masks_2d]
        if missing:
            raise ConfigError(f"masks_2d lacks training frames {missing[:5]}")
        return {i: resize_mask(masks_2d[i], views.size[1], views.size[0]) for i in train}

    masks = runner.run("masks_2d", make_masks)

    # 4. visibility, grouping
    def make_groups(say: StageProgress) -> tuple[LiftViews, list[Component], str]:
        views_at = zip(cams, times, strict=True)
        with torch.no_grad():
            depths = [render(g, c, time=t, features=False, backend=cfg.backend).depth.numpy() for c, t in views_at]
        visible = centre_visibility(g, cams, times=times, depth_maps=depths)
        lv = LiftViews(cams, times, [masks[i] for i in train], visible, [scene.frames[i] for i in train], train)
        return (lv, *_group(g, views, cfg, lv, train))

    lv, components, grouping = runner.run("grouping", make_groups)

    # 5. association per training frame, and the binding of each sound to components
    def make_timeline(say: StageProgress) -> tuple[ComponentTimeline, BindingCues | None]:
        if not components:
            return ComponentTimeline(np.zeros(0, np.int64), np.zeros((len(train), 0), bool), fa.segments), None
        assocs = associate_views(
            g, components, lv, cfg, audio=fa, c=scene.speed_of_sound, progress=lambda f: say(0.8 * f, "")
        )
        timeline = ComponentTimeline.from_associations(assocs, segments=fa.segments)
        if cfg.binding == "visual":
            return timeline, None
        say(0.85, "acoustic evidence")
        cues = _binding_cues(scene, assocs, fa, lv, components, g, cfg, times, scene.speed_of_sound)
        if cues is None and cfg.binding == "joint":  # mono audio or no microphone positions: the 2D masks decide
            return timeline, None
        if cues is None:
            raise DataError(
                f"--binding {cfg.binding} needs stereo audio and microphone positions",
                scene.root,
                "use --binding visual",
            )
        timeline.active = decide(cues, cfg.binding)
        return timeline, cues

    timeline, cues = runner.run("association", make_timeline)

    # 6. voting within each sounding component (+ optional refinement)
    def make_members(say: StageProgress) -> dict[int, np.ndarray]:
        spatial = grouping == "spatial"
        members = vote_members(
            g,
            components,
            timeline.active,
            lv,
            threshold=cfg.vote_threshold,
            grow_margin=cfg.grow_margin,
            only_voted=spatial,
        )
        if cfg.refine and fa.tdoa is not None:
            from soundmask.lift.refine import refine_members

            taus = [fa.tdoa[i].tau for i in train]
            members = refine_members(
                g.means.numpy(), components, members, timeline.active, taus, lv.frames, scene.speed_of_sound
            )
        return members

    members = runner.run("voting", make_members)

    # 7. tags: the mixture's, then (unless --separation none) each object's own signal and its tags
    tags = tags_from_timeline(
        g.means.detach().numpy(), components, members, timeline, times, [fa.taggings[i] for i in train], fa.window
    )
    activity = _frame_activity(timeline, fa, views, times, len(components))
    mixture_tags = tags
    if cfg.separation != "none" and tags:
        tags = runner.run("separation", lambda say: _separate(g, tags, components, activity, fa, views, cfg))
    sound = SoundScene(
        g,
        tags,
        {
            "scene": scene.name,
            "grouping": grouping,
            "method": "gt" if cfg.use_gt_2d else cfg.method,
            "cameras": [camera_to_dict(c) for c in cams],  # the training cameras: `soundmask view` opens at one
        },
    )

    # 8. evaluation and renders
    def make_eval(say: StageProgress) -> tuple[dict[int, np.ndarray], dict[str, Any]]:
        test_masks: dict[int, np.ndarray] = {}
        for i in views.test:
            t = views.times[i]
            active = activity[i]
            parts = [members[c.id] for c, a in zip(components, active, strict=True) if a and c.id in members]
            test_masks[i] = selection_alpha(
                g,
                views.cameras[i],
                np.concatenate(parts) if parts else np.zeros(0, int),
                time=t,
                occlusion=cfg.occlusion,
                backend=cfg.backend,
            )
        from soundmask.lift.separate import object_positions

        tracks = (  # each tag's Gaussians at each frame's time: the track error of moving sources
            object_positions(g, [t.index for t in tags], list(views.times))
            if len(views.times) == len(scene.frames)
            else None
        )
        out = evaluate_scene(scene, test_masks, tags, cfg.alpha_threshold, tracks=tracks)
        if tracks is not None and g.dynamic:
            out.update(_tdoa_crosscheck(g, tags, tracks, scene, views, fa))
        out["label_accuracy_mixture"] = out.get("label_accuracy")
        if mixture_tags is not tags and scene.sound_events:
            from soundmask.metrics.objects import score_objects

            out["label_accuracy_mixture"] = score_objects(scene, mixture_tags).label_accuracy
        return test_masks, out

    test_masks, metrics = runner.run("evaluation", make_eval)
    timings = runner.timings
    metrics.update(
        {
            "scene": scene.name,
            "method": "gt" if cfg.use_gt_2d else cfg.method,
            "grouping": grouping,
            "binding": cfg.binding if cues is not None or cfg.binding == "visual" else "visual (no stereo audio)",
            "num_gaussians": len(g),
            "num_components": len(components),
            "num_tags": len(tags),
            "test_views": list(views.test),
            "seconds": round(_time.perf_counter() - t_all, 3),
            "timings": timings,
            **fit_info,
            "config": asdict(cfg),
        }
    )
    result = LiftResult(sound, metrics, timeline, components, test_masks, cues)
    if out_dir is not None:
        result.write(out_dir, views, cfg)
    return result
