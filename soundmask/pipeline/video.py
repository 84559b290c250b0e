"""``soundmask run VIDEO``: a user's own video → 2D sound masks per frame, the audio analysis, and what 3D needs.

1. **Read** the video at ``fps`` frames per second with its sound track (or ``--audio``), at most at the video's
   own rate: above it every frame is taken once, and ``run.json`` reports the rate used. Refused with one line
   (exit 2): no sound, a single frame, audio shorter than the video, NaNs in the audio.
2. **Audio**: activity segments, YAMNet tags and, for stereo, the TDoA/direction per segment
   (:func:`soundmask.audio.analyze.analyze`).
3. **2D**: the sound masks of every frame from a 2D method (:func:`predict_source`).
4. **Camera motion** from tracked corners (OpenCV Lucas–Kanade): the median displacement between consecutive
   distinct sampled frames (a repeated frame is skipped), as a fraction of the frame diagonal.
5. **3D**: mono audio or a static camera → 2D only, and the reason is written. A moving camera with stereo
   audio goes on to 3D:

   a. **Camera poses** by structure from motion (COLMAP through pycolmap, :func:`soundmask.vision.poses.
      estimate_poses`). Too few registered frames → 2D only, with COLMAP's count in the reason.
   b. The registered frames become a **3DAVS-S34-O7-layout scene** (``OUT/scene/``: ``input/``, ``sparse/0/``,
      per-frame binaural/mono clips, ``camera_splits.json``; no ``semantic_masks/``: a user's video has no
      ground truth), which ``soundmask lift --scene OUT/scene`` can also read later.
   c. **Lifting** (:func:`soundmask.pipeline.lift3d.run_lift`) with this run's 2D masks and audio cues: a Gaussian
      reconstruction from the poses (every 8th registered frame held out as a novel view), grouping,
      association with the TDoA tie-break, tagging. The microphones are placed on the camera's x axis,
      ``spacing`` apart (left = −x), so the direction cone cos θ = c·τ/spacing is the one measured, whatever
      COLMAP's unknown scale. Outputs in ``OUT/lift/`` (``sound_scene.pt`` for ``soundmask view``, renders of
      the held-out views with their sound masks, ``lift.json``).

Every stage runs on the one staged runner (:class:`~soundmask.pipeline.stages.Runner`: timings in ``run.json``,
progress as ``(stage, fraction, note)``). The 2D masks ("2d"), the poses ("poses", a COLMAP failure included) and
the fitted model ("reconstruct") are cached in ``.OUT.cache`` beside ``OUT`` until the run succeeds, so a killed
run resumes with the same result.

Outputs (in ``OUT``, written as a whole to a temporary folder, then renamed): ``masks/<frame>.png`` (0/255),
``input/<frame>.png`` (the sampled frames), ``overlay.mp4``, ``audio/stereo.wav`` (or ``mono.wav``),
``scene/`` and ``lift/`` (3D only) and ``run.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from soundmask.config import nested, option
from soundmask.constants import MIC_SPACING
from soundmask.errors import ConfigError, DataError
from soundmask.pipeline.lift3d import LiftConfig
from soundmask.pipeline.stages import (
    Progress,
    Runner,
    StageFailure,
    StageProgress,
    StageRun,
    quiet,
    stage_key,
)
from soundmask.splat.train import ReconstructConfig

__all__ = ["RunConfig", "RunResult", "camera_motion", "check_source", "open_video", "predict_source", "run_video"]


@dataclass
class RunConfig:
    """Options of ``soundmask run`` (every field is a command-line option; those of the 2D method and the lifting,
    and of the reconstruction, too, by their own names: ``--method``, ``--set``, ``--iterations``, ...)."""

    fps: float = option(
        2.0, "frames per second sampled from the video (at most its own rate: above it, every frame once)"
    )
    max_frames: int = option(0, "process at most this many frames (0: all)")
    spacing: float = option(MIC_SPACING, "microphone spacing in metres (stereo direction)")
    motion_threshold: float = option(
        0.004,
        "the camera moves when tracked corners shift by more than this share of "
        "the frame diagonal between sampled frames (median)",
    )
    lift_3d: bool = option(
        True, "go on to 3D (COLMAP poses, reconstruction, lifting) when the camera moves and the audio is stereo"
    )
    min_registered: float = option(0.6, "3D needs COLMAP to register at least this share of the frames")
    size_3d: int = option(128, "the 3D reconstruction fits the frames at this longest side (pixels)")
    resume: bool = option(
        True,
        "reuse what a killed run of the same video and options finished (2D masks, poses, "
        "reconstruction), kept in a hidden .OUT.cache folder beside OUT until the run succeeds",
    )
    dense_init: bool = option(
        True,
        "seed the reconstruction with plane-sweep stereo depth of the training frames "
        "(else with COLMAP's sparse points)",
    )
    lift: LiftConfig = nested(LiftConfig)
    reconstruct: ReconstructConfig = nested(lambda: ReconstructConfig(iterations=650))

    def __post_init__(self) -> None:
        if self.fps <= 0 or self.max_frames < 0 or self.spacing <= 0 or self.motion_threshold < 0:
            raise ConfigError("fps and spacing must be > 0; max-frames and motion-threshold >= 0")
        if not 0 < self.min_registered <= 1 or self.size_3d < 32 or self.reconstruct.iterations < 1:
            raise ConfigError("min-registered must be in (0, 1], size-3d >= 32 and iterations >= 1")


def predict_source(seg: Any, src: Any, progress: Callable[[int], None] | None = None, chunk: int = 16) -> np.ndarray:
    """(T, H, W) float sound masks of a :class:`~soundmask.avs2d.frames.FrameSource`, ``chunk`` frames at a time
    (each chunk gets the audio of its own frame windows)."""
    from soundmask.avs2d.base import frame_windows

    wins = frame_windows(len(src), src.audio.shape[1], src.sample_rate, src.frame_times)
    parts = []
    for a in range(0, len(src), chunk):
        b = min(len(src), a + chunk)
        s0, s1 = wins[a][0], wins[b - 1][1]
        pred = seg.predict(
            src.frames[a:b], src.audio[:, s0:s1], src.sample_rate, src.frame_times[a:b] - s0 / src.sample_rate
        )
        parts.append(pred.masks)
        if progress is not None:
            progress(b)
    return np.concatenate(parts)


def camera_motion(frames: np.ndarray, max_corners: int = 200, same: float = 1.0) -> float:
    """Median displacement of tracked corners between consecutive distinct frames, as a fraction of the frame
    diagonal (the median over frame pairs; 0 when nothing can be tracked).

    A frame whose mean absolute grey difference to the last kept frame is at most ``same`` (of 255) repeats it
    (a video sampled above its own rate, a shot held still, an encoder's duplicate) and is skipped, so repeats
    cannot pull the median to 0; a static camera keeps giving about 0. Being compared to the last kept frame,
    a slow drift is measured over the few frames it takes to differ by ``same`` (a fraction of a pixel on a
    textured image), and frames that all differ (a normal video) are all kept."""
    import cv2

    grey: list[np.ndarray] = []
    for f in frames:
        g = cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)
        if not grey or float(cv2.absdiff(g, grey[-1]).mean()) > same:
            grey.append(g)
    diag = float(np.hypot(*frames.shape[1:3]))
    shifts = []
    for a, b in zip(grey[:-1], grey[1:], strict=True):
        pts = cv2.goodFeaturesToTrack(a, maxCorners=max_corners, qualityLevel=0.01, minDistance=5)
        if pts is None or len(pts) < 4:
            continue
        nxt, ok, _ = cv2.calcOpticalFlowPyrLK(a, b, pts, None)  # type: ignore[call-overload]  # None: no initial guess
        ok = ok.reshape(-1).astype(bool)
        if ok.sum() < 4:
            continue
        d = np.linalg.norm((nxt - pts).reshape(-1, 2)[ok], axis=1)
        shifts.append(float(np.median(d)) / diag)
    return float(np.median(shifts)) if shifts else 0.0


def check_source(src: Any, video: Path, audio: Path | None, min_frames: int = 2) -> None:
    """Refuse (one-line :class:`DataError`) a source without sound, with fewer than ``min_frames`` frames, with
    non-finite audio, or whose audio ends before its last frame window."""
    where = audio or video
    if src.audio is None:
        raise DataError(
            "the video has no sound track", video, "pass a video with sound, or its recording with --audio FILE"
        )
    if len(src) < min_frames:
        raise DataError(
            f"the video has {len(src)} frame(s) at the sampled rate; at least {min_frames} are needed",
            video,
            "pass a longer video or a higher --fps (for one image use `soundmask segment`)",
        )
    a = np.asarray(src.audio)
    if not np.isfinite(a).all():
        raise DataError("the audio has NaN or infinite samples", where, "re-export the recording")
    dur_a = a.shape[1] / float(src.sample_rate)
    dur_v = float(src.frame_times[-1]) + 1.0 / src.fps
    if dur_a + 0.5 / src.fps < dur_v:
        raise DataError(
            f"the audio ({dur_a:.2f} s) is shorter than the video ({dur_v:.2f} s)",
            where,
            "pass the full recording with --audio, or trim the video to the audio",
        )


def open_video(video: str | Path, cfg: RunConfig, audio: str | Path | None = None) -> Any:
    """Read and check ``video`` (and ``audio``) as a :class:`~soundmask.avs2d.frames.FrameSource`, sampled at
    ``cfg.fps`` but never above the video's own rate (its ``fps`` is the rate used); an unknown method or a bad
    input fails here, before any work is done or any output is written."""
    from soundmask.avs2d.frames import read_frame_source

    video = Path(video)
    src = read_frame_source(video, audio=audio, fps=cfg.fps, max_frames=cfg.max_frames or None, upsample=False)
    check_source(src, video, Path(audio) if audio else None)
    return src


@dataclass
class RunResult:
    """What ``soundmask run`` made in ``out``: the mode (2D or 3D) and why, what was read, and ``summary``, the
    contents of ``run.json``."""

    out: Path
    mode: Literal["2d", "3d"]
    reason: str
    frames: int
    fps: float
    method: str
    sounding_frames: int
    camera_motion: float
    segments: int
    """sound segments the audio analysis found"""
    poses: dict[str, Any] | None
    """COLMAP's summary (3D only)"""
    lift: dict[str, Any] | None
    """the 3D summary (3D only; ``lift_video``)"""
    stages: list[StageRun] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def cached_stages(self) -> list[str]:
        """The stages reused from a killed run's cache."""
        return [r.name for r in self.stages if r.cached]


def run_video(
    video: str | Path,
    cfg: RunConfig,
    out: str | Path,
    *,
    audio: str | Path | None = None,
    progress: Progress | None = None,
    source: Any = None,
) -> RunResult:
    """Run the stages of the module docstring on ``video`` into ``out``; ``run.json`` holds the result's
    ``summary``. ``source``: the video already read by :func:`open_video`. ``progress``: ``(stage, fraction,
    note)``."""
    import shutil

    from soundmask.audio.analyze import analyze
    from soundmask.data.io import atomic_dir, to_jsonable, write_audio, write_json
    from soundmask.pipeline.cache import file_id
    from soundmask.report.overlay import write_mask_pngs, write_overlay_video

    video, out = Path(video), Path(out)
    say = progress or quiet
    runner = Runner(cache_dir(out), say, resume=cfg.resume)
    k_src = stage_key("source", file_id(video), file_id(audio), cfg.fps, cfg.max_frames)

    def read(report: StageProgress) -> tuple[Any, Any]:
        src = source if source is not None else open_video(video, cfg, audio)
        # a bad checkpoint fails here, before the slow stages
        return src, cfg.lift.load()

    src, seg = runner.run("read", read, silent=True)
    rep = runner.run(
        "audio", lambda report: analyze(src.audio, int(src.sample_rate), path=str(audio or video), spacing=cfg.spacing)
    )

    def make_2d(report: StageProgress) -> np.ndarray:
        # kept as uint8 steps of 1/255 (a quarter of the memory and cache), the same values whether fresh or resumed
        soft = predict_source(seg, src, progress=lambda b: report(b / len(src), ""))
        return np.round(soft * 255).astype(np.uint8)

    masks = runner.run(
        "2d",
        make_2d,
        key=stage_key("2d", k_src, cfg.lift.method, file_id(cfg.lift.checkpoint), cfg.lift.method_options),
    )
    motion = runner.run("camera", lambda report: camera_motion(src.frames))
    stereo = src.audio.shape[0] == 2
    moving = motion > cfg.motion_threshold
    poses = None
    mode: Literal["2d", "3d"] = "2d"
    if not stereo:
        reason = "the audio is mono: 3D needs two microphones (stereo) for the time-difference cue; 2D sound masks only"
    elif not moving:
        reason = (
            f"the camera is static (median motion {motion:.4f} of the frame diagonal ≤ "
            f"{cfg.motion_threshold}): 3D needs views from several positions; 2D sound masks only"
        )
    elif not cfg.lift_3d:
        reason = "the camera moves and the audio is stereo, but 3D was turned off (--no-lift-3d); 2D sound masks only"
    else:
        k_poses = stage_key("poses", k_src, cfg.min_registered)
        found = runner.run("poses", lambda report: _poses(src, cfg, report), key=k_poses)
        if isinstance(found, StageFailure):
            reason = f"the camera moves and the audio is stereo, but {found.reason}; 2D sound masks only" + (
                f" (to get 3D: {found.fix})" if found.fix else ""
            )
        else:
            poses = found
            mode, reason = (
                "3d",
                (
                    f"the camera moves and the audio is stereo: COLMAP registered {len(poses.names)} "
                    f"of {len(src)} frames, and the sound masks were lifted onto a Gaussian "
                    "reconstruction (lift/)"
                ),
            )
    binary = masks > 127  # probability > 0.5
    soft = masks.astype(np.float32) / 255.0
    sounding = int(binary.reshape(len(binary), -1).any(1).sum())
    summary: dict[str, Any] = {
        "video": str(video),
        "audio": str(audio) if audio else None,
        "frames": len(src),
        "fps": src.fps,
        "size": list(src.size),
        "channels": int(src.audio.shape[0]),
        "sample_rate": int(src.sample_rate),
        "method": cfg.lift.method,
        "checkpoint": cfg.lift.checkpoint or "(shipped default)",
        "sounding_frames": sounding,
        "camera_motion": round(motion, 5),
        "mode": mode,
        "reason": reason,
        "audio_report": rep.to_dict(),
        "config": to_jsonable(asdict(cfg)),
    }
    if poses is not None:
        summary["poses"] = poses.summary()
    say("write", 0.0, "")
    with atomic_dir(out, overwrite=True) as tmp:
        write_mask_pngs(tmp / "masks", src.names, binary)
        _write_frames(tmp / "input", src)
        write_overlay_video(tmp / "overlay.mp4", src.frames, soft, fps=src.fps)
        write_audio(tmp / "audio" / ("stereo.wav" if stereo else "mono.wav"), src.audio, int(src.sample_rate))
        if poses is not None:
            k_model = stage_key("model", k_poses, cfg.size_3d, asdict(cfg.reconstruct), cfg.dense_init)
            summary["lift"] = runner.run(
                "3d",
                lambda report: lift_video(
                    tmp, src, binary, poses, cfg, video.stem, runner, model_key=k_model, report=report
                ),
            )
        summary["timings_s"] = runner.timings
        summary["cached_stages"] = [r.name for r in runner.runs if r.cached]
        write_json(tmp / "run.json", summary, indent=2)
    shutil.rmtree(cache_dir(out), ignore_errors=True)  # the run is complete: nothing left to resume
    say("done", 1.0, "")
    return RunResult(
        out=out,
        mode=mode,
        reason=reason,
        frames=len(src),
        fps=float(src.fps),
        method=cfg.lift.method,
        sounding_frames=sounding,
        camera_motion=summary["camera_motion"],
        segments=len(summary["audio_report"]["segments"]),
        poses=summary.get("poses"),
        lift=summary.get("lift"),
        stages=list(runner.runs),
        summary=summary,
    )


def _poses(src: Any, cfg: RunConfig, report: StageProgress) -> Any:
    """COLMAP's camera poses of ``src``'s frames, or the :class:`StageFailure` of too few registered frames (a
    result too: cached, so a resumed run does not retry it)."""
    from soundmask.vision.poses import PoseConfig, PoseError, estimate_poses

    try:
        return estimate_poses(
            src.frames,
            src.names,
            PoseConfig(min_registered=cfg.min_registered),
            progress=lambda what, frac: report(frac, ""),
        )
    except PoseError as e:
        return StageFailure("poses", e.problem, fix=e.fix or "")


def cache_dir(out: Path) -> Path:
    """Where a run into ``out`` keeps its finished stages until it succeeds: ``.<out name>.cache`` beside it."""
    return out.parent / f".{out.name}.cache"


def video_scene(src: Any, poses: Any, spacing: float, name: str = "") -> Any:
    """The registered frames of ``src`` as a :class:`~soundmask.data.types.Scene` (frames renamed ``00000``…
    in video order, at their video times; microphones ``spacing`` apart on each camera's x axis, left = −x)."""
    from soundmask.data.types import Scene, SceneFrame

    pos = {n: p for p, n in enumerate(src.names)}
    frames = []
    for j, n in enumerate(poses.names):
        cam = poses.cameras[n]
        c, x = cam.center, cam.camera_to_world[:3, 0]
        frames.append(
            SceneFrame(
                index=j,
                time=float(src.frame_times[pos[n]]),
                file=f"input/{j:05d}.png",
                camera=cam,
                mic_left=c - 0.5 * spacing * x,
                mic_right=c + 0.5 * spacing * x,
                extra={"video_frame": n},
            )
        )
    return Scene(
        frames=frames, fps=float(src.fps), sample_rate=int(src.sample_rate), name=name, extra={"format": "3davs"}
    )


def lift_video(
    folder: Path,
    src: Any,
    masks: np.ndarray,
    poses: Any,
    cfg: RunConfig,
    name: str,
    runner: Runner | None = None,
    *,
    model_key: str | None = None,
    report: StageProgress | None = None,
) -> dict[str, Any]:
    """Stages 5b–c of the module docstring into ``folder`` (``scene/`` and ``lift/``); returns the 3D summary.
    The fitted model is the ``runner``'s stage "reconstruct", cached under ``model_key`` (None: not cached);
    ``report(fraction, note)`` shows the lifting's progress."""
    from soundmask.audio.cues import audio_cues
    from soundmask.avs2d.base import frame_windows
    from soundmask.data.threedavs import write_3davs_files
    from soundmask.pipeline.lift3d import run_lift
    from soundmask.splat.train import fit, load_views
    from soundmask.vision.mvs import plane_sweep_depth

    runner = runner or Runner()
    scene = video_scene(src, poses, cfg.spacing, name)
    where = {n: p for p, n in enumerate(src.names)}
    pos = [where[n] for n in poses.names]  # scene frame j is video frame pos[j]
    wins = frame_windows(len(src), src.audio.shape[1], int(src.sample_rate), src.frame_times)
    (folder / "scene").mkdir()
    write_3davs_files(
        folder / "scene",
        scene,
        [src.frames[p] for p in pos],
        None,
        [src.audio[:, wins[p][0] : wins[p][1]] for p in pos],
        points=poses.points,
        point_colors=poses.colors,
    )
    scene.root = folder / "scene"
    H, W = src.frames.shape[1:3]
    scale = min(1.0, cfg.size_3d / max(H, W))
    rcfg = replace(cfg.reconstruct, scale=scale, init="depth" if cfg.dense_init else "colmap")
    views = load_views(scene, scale=scale, test_every=rcfg.test_every)

    def make_model(say: StageProgress) -> Any:
        if cfg.dense_init:
            say(0.0, "depth")
            depth = plane_sweep_depth(
                views.images.numpy(), views.cameras, views.train, poses.points, progress=lambda f: say(f, "depth")
            )
            blank = np.full(views.size, np.nan, np.float32)
            views.depth = np.stack([depth.get(i, blank) for i in range(len(views.cameras))])
        return fit(views, rcfg, progress=lambda s, n, info: say(s / max(n, 1), ""))

    fitted = runner.run("reconstruct", make_model, key=model_key)
    lcfg = cfg.lift
    fa = audio_cues(src.audio, int(src.sample_rate), [f.time for f in scene.frames], 1.0 / src.fps)
    show = report or (lambda fraction, note: None)
    res = run_lift(
        scene,
        lcfg,
        model=fitted.gaussians,
        reconstruct=rcfg,
        audio=fa,
        masks_2d={j: masks[p] for j, p in enumerate(pos)},
        progress=lambda stage, frac, note: show(frac, stage),
    )
    m = res.metrics
    m.update(
        {
            "psnr_test": fitted.psnr_test,
            "psnr_train": fitted.psnr_train,
            "reconstruct_seconds": fitted.seconds,
            "init": rcfg.init,
        }
    )
    res.write(folder / "lift", views, lcfg)
    return {
        "registered_frames": len(scene.frames),
        "video_frames": [f.extra["video_frame"] for f in scene.frames],
        "test_views": m["test_views"],
        "gaussians": m["num_gaussians"],
        "psnr_test": m.get("psnr_test"),
        "init": rcfg.init,
        "components": m["num_components"],
        "sounding_objects": [
            {
                "label": t.label,
                "gaussians": int(len(t.index)),
                "spans_s": [[round(a, 3), round(b, 3)] for a, b in t.spans],
            }
            for t in res.sound_scene.tags
        ],
        "reconstruct_seconds": round(fitted.seconds, 3),
        "lift_seconds": m["seconds"],
    }


def _write_frames(folder: Path, src: Any) -> None:
    from soundmask.data.io import write_image

    for name, f in zip(src.names, src.frames, strict=True):
        write_image(folder / f"{name}.png", f)
