"""``soundmask demo``: the whole pipeline on a generated sounding scene, offline, with a report.

Stages (each cached in ``OUT/cache``, see :mod:`soundmask.pipeline.cache`; a killed run resumes):

1. **scene** — a small ``scene3d`` (or ``scene4d``) scene from the generator (:mod:`soundmask.synth`), a seed of
   the *test* split by default, so none of the shipped checkpoints has seen it.
2. **audio** — activity chunking, YAMNet tags and GCC-PHAT TDoA per frame window
   (:func:`soundmask.audio.cues.frame_audio`).
3. **2d** — 2D sound masks of every frame from a 2D AVS method (SDAVS with its shipped weights by default).
4. **reconstruct** — a Gaussian-splatting model of the training views (:func:`soundmask.splat.train.fit`).
5. **lift** — grouping, association with the TDoA tie-break, voting, tagging and the EchoSegnet evaluation on
   the held-out views (:func:`soundmask.pipeline.lift3d.run_lift`).
6. **render** — novel views around the scene with the 3D sound masks as a heat map.
7. **report** — ``OUT/report.html`` (self-contained) and ``OUT/metrics.json``.
"""

from __future__ import annotations

import json
import time as _time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from soundmask.config import check_choices, nested, option
from soundmask.data.io import atomic_path, write_json
from soundmask.errors import ConfigError
from soundmask.pipeline.lift3d import LiftConfig
from soundmask.pipeline.stages import Progress, Runner, StageProgress, StageRun, quiet, stage_key
from soundmask.splat.io import load_model, save_model
from soundmask.splat.train import ReconstructConfig

__all__ = ["STAGES", "DemoConfig", "DemoResult", "run_demo"]

STAGES = ("scene", "audio", "2d", "reconstruct", "lift", "render", "report")


@dataclass
class DemoConfig:
    """Options of ``soundmask demo`` (every field is a command-line option; those of the lifting and of the
    reconstruction too, by their own names: ``--method``, ``--iterations``, ``--backend``, ...)."""

    preset: Literal["scene3d", "scene4d"] = option(
        "scene3d", "generated scene: scene3d (static objects) | scene4d (objects move)"
    )
    seed: int = option(210, "scene seed (210 is in the generator's test split: no shipped checkpoint saw it)")
    width: int = option(256, "frame width and height in pixels")
    frames: int = option(40, "frames (1 per second of audio)")
    orbit: int = option(6, "novel views rendered on a circle around the scene")
    report_frames: int = option(8, "input frames shown in the report")
    resume: bool = option(True, "reuse the stages already finished in OUT/cache (same options)")
    lift: LiftConfig = nested(lambda: LiftConfig(render_views="test"))
    reconstruct: ReconstructConfig = nested(ReconstructConfig)

    def __post_init__(self) -> None:
        check_choices(self)
        every = self.reconstruct.test_every
        if not 32 <= self.width <= 1024:
            raise ConfigError(f"width must be in 32..1024, got {self.width}")
        if self.frames < every + 1:
            raise ConfigError(
                f"frames must be >= {every + 1} (every {every}th frame is a held-out test view), got {self.frames}"
            )
        if self.orbit < 0 or self.report_frames < 1:
            raise ConfigError("report-frames must be >= 1, orbit >= 0")


@dataclass
class DemoResult:
    """What ``soundmask demo`` made: the report, the metrics (``metrics.json``) and the stage timings."""

    report: Path
    metrics: dict[str, Any]
    stages: list[StageRun] = field(default_factory=list)


def run_demo(cfg: DemoConfig, out: str | Path, progress: Progress | None = None) -> DemoResult:
    """Run the stages of the module docstring into ``out``; returns the report path, metrics and timings."""
    from soundmask.pipeline.cache import file_id

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runner = Runner(out / "cache", progress or quiet, resume=cfg.resume)
    lcfg, rcfg, ckpt = cfg.lift, cfg.reconstruct, cfg.lift.checkpoint
    t_all = _time.perf_counter()

    # 1. scene
    name = f"{cfg.preset}_{cfg.seed:06d}"
    scene_dir = out / "scene" / name
    k_scene = stage_key("scene", cfg.preset, cfg.seed, cfg.width, cfg.frames, 1)
    runner.run(
        "scene",
        lambda say: _make_scene(cfg, out / "scene", say),
        key=k_scene,
        outputs=[scene_dir / "scene.json"],
        load=lambda: None,
    )
    from soundmask.splat.train import load_views

    views = load_views(scene_dir, scale=rcfg.scale, test_every=rcfg.test_every)
    scene = views.scene
    assert scene is not None

    # 2. audio
    from soundmask.audio.cues import frame_audio

    k_audio = stage_key("audio", k_scene)
    fa = runner.run("audio", lambda say: frame_audio(scene, views.times), key=k_audio)

    # 3. 2D sound masks of every frame
    k_2d = stage_key("2d", k_scene, lcfg.method, file_id(ckpt), lcfg.method_options)
    masks_path = out / "cache" / "masks2d.npz"

    def make_2d(say: StageProgress) -> None:
        from soundmask.audio.cues import scene_mono
        from soundmask.pipeline.lift3d import sound_masks_2d

        m = sound_masks_2d(views, lcfg, list(range(len(views.cameras))), scene_mono(scene))
        with atomic_path(masks_path) as tmp:
            with tmp.open("wb") as f:
                np.savez_compressed(f, masks=np.stack([m[i] for i in range(len(m))]))

    def load_2d() -> np.ndarray:
        with np.load(masks_path) as z:
            return z["masks"].astype(bool)

    masks2d = runner.run("2d", make_2d, key=k_2d, outputs=[masks_path], load=load_2d)

    # 4. reconstruction
    k_rec = stage_key("reconstruct", k_scene, asdict(rcfg))
    model_path = out / "cache" / "model.ply"
    rec_path = out / "cache" / "reconstruct.json"

    def make_model(say: StageProgress) -> None:
        from soundmask.splat.train import fit

        res = fit(views, rcfg, progress=lambda s, n, info: say(s / max(n, 1), f"{info['gaussians']} Gaussians"))
        save_model(res.gaussians, model_path)
        write_json(
            rec_path,
            {
                "psnr_test": res.psnr_test,
                "psnr_train": res.psnr_train,
                "iterations": res.iterations,
                "gaussians": len(res.gaussians),
            },
        )

    # always read the model file, so a resumed run lifts exactly the same model
    g, rec = runner.run(
        "reconstruct",
        make_model,
        key=k_rec,
        outputs=[model_path, rec_path],
        load=lambda: (load_model(model_path), json.loads(rec_path.read_text())),
    )

    # 5. lifting
    from soundmask.lift.tags import SoundScene

    k_lift = stage_key("lift", k_audio, k_2d, k_rec, asdict(lcfg))
    lift_dir = out / "lift"

    def make_lift(say: StageProgress) -> None:
        from soundmask.pipeline.lift3d import run_lift

        run_lift(
            scene_dir,
            lcfg,
            model=g,
            reconstruct=rcfg,
            out_dir=lift_dir,
            audio=fa,
            masks_2d={i: masks2d[i] for i in range(len(masks2d))},
            progress=lambda s, frac, note: say(frac, s),
        )

    sound, lift_metrics = runner.run(
        "lift",
        make_lift,
        key=k_lift,
        outputs=[lift_dir / "sound_scene.pt", lift_dir / "lift.json"],
        load=lambda: (SoundScene.load(lift_dir / "sound_scene.pt"), json.loads((lift_dir / "lift.json").read_text())),
    )

    # 6. novel views
    k_render = stage_key("render", k_lift, cfg.orbit)
    render_dir = out / "renders"
    orbit_files = [render_dir / f"orbit_{k:03d}.png" for k in range(cfg.orbit)]

    def make_render(say: StageProgress) -> None:
        from soundmask.report.figures import orbit_heatmaps

        orbit_heatmaps(sound, views, cfg.orbit, render_dir, backend=lcfg.backend)

    runner.run(
        "render", make_render, key=k_render, outputs=[*orbit_files, render_dir / "captions.json"], load=lambda: None
    )

    # 7. report + metrics (always rebuilt: cheap, and it shows this run's stage times)
    from soundmask.report.html import write_demo_report

    metrics = _metrics(cfg, ckpt, scene, views, masks2d, rec, lift_metrics, sound)
    metrics["stages"] = runner.summary()

    def make_report(say: StageProgress) -> Path:
        return write_demo_report(
            out / "report.html",
            metrics,
            scene,
            views,
            fa,
            masks2d,
            sound,
            render_dir,
            lift_dir,
            cfg.report_frames,
            backend=lcfg.backend,
        )

    report = runner.run("report", make_report)
    metrics["stages"] = runner.summary()
    metrics["seconds"] = round(_time.perf_counter() - t_all, 2)
    write_json(out / "metrics.json", metrics, indent=2)
    return DemoResult(report, metrics, runner.runs)


def _make_scene(cfg: DemoConfig, root: Path, say: StageProgress) -> None:
    from soundmask.synth.config import SynthConfig
    from soundmask.synth.generator import generate_dataset

    scfg = SynthConfig(preset=cfg.preset, width=cfg.width, frames=cfg.frames)
    generate_dataset(scfg, root, 1, cfg.seed, progress=lambda s: say(0.5, s))


def _metrics(
    cfg: DemoConfig,
    ckpt: str,
    scene: Any,
    views: Any,
    masks2d: np.ndarray,
    rec: dict[str, Any],
    lift: dict[str, Any],
    sound: Any,
) -> dict[str, Any]:
    """The numbers of ``metrics.json``: 2D sound masks vs ground truth, reconstruction, 3D lifting, tags."""
    from soundmask.data.images import resize_mask
    from soundmask.data.scene import load_sound_mask
    from soundmask.metrics.objects import OBJECT_KEYS
    from soundmask.metrics.pooled import PooledJF
    from soundmask.metrics.separation import SEPARATION_KEYS

    H, W = views.size
    gt = np.stack([resize_mask(load_sound_mask(scene, i), W, H) for i in range(len(masks2d))])
    pj = PooledJF(from_logits=False)
    pj.update(torch.from_numpy(masks2d.astype(np.float32)), torch.from_numpy(gt))
    m2 = pj.compute()
    objects = []
    for o in scene.objects:
        ev = [(e.start, e.end) for e in scene.sound_events if e.object_id == o.id]
        objects.append(
            {
                "id": o.id,
                "category": o.category,
                "sounding": bool(ev),
                "events": ev,
                "position": np.asarray(o.positions).mean(axis=0).round(3).tolist(),
            }
        )
    return {
        "scene": scene.name,
        "preset": cfg.preset,
        "seed": cfg.seed,
        "frames": len(views.cameras),
        "size": [H, W],
        "test_views": list(views.test),
        "method": cfg.lift.method,
        "checkpoint": ckpt or "(shipped default)",
        "masks_2d": {
            "pooled_j": m2["j"],
            "pooled_f": m2["f"],
            "j_frame_mean": m2["j_frame_mean"],
            "frames": m2["frames"],
        },
        "reconstruction": {
            "psnr_test": rec["psnr_test"],
            "psnr_train": rec["psnr_train"],
            "gaussians": rec["gaussians"],
            "iterations": rec["iterations"],
        },
        "scene3d": {
            k: lift.get(k)
            for k in (
                "miou",
                "fscore",
                "pooled_j",
                "pooled_f",
                "centroid_error_m",
                "track_error_m",
                "track_errors_m",
                *OBJECT_KEYS,
                "label_accuracy_mixture",
                *SEPARATION_KEYS,
                "separation_objects",
                "num_components",
                "num_tags",
                "grouping",
            )
        }
        | {"object_matches": lift.get("objects")},
        "tags": [
            {
                "component": int(t.component_id),
                "label": t.label,
                "scores": t.scores,
                "spans": [list(s) for s in t.spans],
                "gaussians": len(t.index),
                "centroid": np.asarray(t.centroid).round(3).tolist(),
                "audio": f"lift/objects/{int(t.component_id)}.wav" if t.audio is not None else None,
            }
            for t in sound.tags
        ],
        "objects": objects,
        "config": asdict(cfg),
    }
