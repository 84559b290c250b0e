"""The built-in ``soundmask batch`` jobs: thin wrappers over the library's entry points, one item each.

* ``synth`` — one scene per seed (:func:`soundmask.synth.generator.generate_scene`, scene presets) into
  ``OUT/scenes/<name>``; the summary writes ``OUT/scenes/index.csv``, so ``OUT/scenes`` is a dataset for ``lift``.
* ``lift`` — reconstruct (:func:`soundmask.splat.train.fit`, or reuse ``<models>/<scene>.ply``) and lift
  (:func:`soundmask.pipeline.lift3d.run_lift`) one scene; the summary is the EchoSegnet protocol over the scenes
  (:class:`~soundmask.metrics.scene3d.Scene3DMetric`: mean over scenes, pooled J/F over all test views), fed the
  items' test-view masks (bit-packed in the item's stats).
* ``run`` — ``soundmask run`` on one video (:func:`soundmask.pipeline.video.run_video`) into ``OUT/runs/<name>``.
* ``evaluate`` — a 2D method on one clip set (:func:`soundmask.avs2d.evaluate.evaluate`); the summary pools the
  items' J/F statistics (:class:`~soundmask.metrics.pooled.PooledJF`).
"""

from __future__ import annotations

import base64
import csv
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from soundmask.avs2d import MethodConfig
from soundmask.config import nested, option
from soundmask.data.io import atomic_path
from soundmask.errors import ConfigError
from soundmask.pipeline.batch import BatchItem, ItemOutput, ItemResult, batch_job
from soundmask.pipeline.lift3d import LiftConfig
from soundmask.pipeline.video import RunConfig
from soundmask.splat.train import ReconstructConfig
from soundmask.synth.config import SynthConfig

__all__ = [
    "EvaluateJobConfig",
    "LiftJobConfig",
    "evaluate_job",
    "lift_job",
    "lift_summary",
    "pack_masks",
    "run_job",
    "synth_job",
    "unpack_masks",
]


# ------------------------------------------------------------------------------------------------ masks
def pack_masks(masks: np.ndarray) -> dict[str, Any]:
    """(T, H, W) bool masks as a JSON-ready dict (bit-packed, base64)."""
    m = np.asarray(masks, bool)
    return {"shape": list(m.shape), "bits": base64.b64encode(np.packbits(m.reshape(-1)).tobytes()).decode()}


def unpack_masks(d: dict[str, Any]) -> np.ndarray:
    """The (T, H, W) bool masks of :func:`pack_masks`."""
    shape = tuple(int(s) for s in d["shape"])
    bits = np.frombuffer(base64.b64decode(d["bits"]), np.uint8)
    return np.unpackbits(bits, count=int(np.prod(shape))).astype(bool).reshape(shape)


# ------------------------------------------------------------------------------------------------ synth
def synth_summary(results: list[ItemResult], cfg: SynthConfig, out: Path) -> dict[str, Any]:
    """Write ``OUT/scenes/index.csv`` (name, seed, split, preset: the dataset index of ``soundmask synth``)."""
    rows = sorted(
        (r.metrics["scene"], int(r.metrics["seed"]), r.metrics["split"], r.metrics["preset"]) for r in results
    )
    with atomic_path(out / "scenes" / "index.csv") as tmp, tmp.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["name", "seed", "split", "preset"])
        w.writerows(rows)
    return {
        "scenes": str(out / "scenes"),
        "splits": {s: sum(r[2] == s for r in rows) for s in sorted({r[2] for r in rows})},
    }


@batch_job(inputs="seed", options=SynthConfig, summary=synth_summary)
def synth_job(item: BatchItem, cfg: SynthConfig, out: Path) -> ItemOutput:
    """One generated scene (scene presets: scene3d, scene4d) into ``OUT/scenes/<name>``."""
    from soundmask.data.scene import write_scene
    from soundmask.synth.generator import generate_scene

    cfg = cfg.resolved()
    if cfg.preset_spec().layout != "scene":
        raise ConfigError(
            f"batch synth writes scene folders; preset {cfg.preset} is a 2D dataset",
            fix="use --set preset=scene3d (or scene4d), or `soundmask synth` for 2D presets",
        )
    sc = generate_scene(cfg, int(item.input))
    path = out / "scenes" / sc.name
    write_scene(path, sc.scene, sc.rgb, sc.instances, sc.depth, sc.sound_masks, sc.stereo, sc.mono,
                object_audio=sc.object_audio)  # fmt: skip
    return ItemOutput(
        {
            "scene": sc.name,
            "seed": sc.seed,
            "split": sc.split,
            "preset": sc.preset,
            "frames": len(sc.rgb),
            "objects": len(sc.scene.objects),
            "path": str(path),
        }  # fmt: skip
    )


# ------------------------------------------------------------------------------------------------- lift
@dataclass
class LiftJobConfig:
    """Options of ``soundmask batch lift``: the lifting's and the reconstruction's (by their own names)."""

    models: str = option("", "folder of reconstructions <scene>.ply to reuse, and where new ones are saved ('': none)")
    save: bool = option(
        False, "write each scene's `soundmask lift --out` outputs (sound_scene.pt, renders) to OUT/lift/<scene>"
    )
    lift: LiftConfig = nested(LiftConfig)
    reconstruct: ReconstructConfig = nested(ReconstructConfig)


def _median(values: list[Any]) -> float | None:
    v = [x for x in values if x is not None and math.isfinite(x)]
    return float(np.median(v)) if v else None


def _mean(values: list[Any]) -> float | None:
    v = [x for x in values if x is not None and math.isfinite(x)]
    return float(np.mean(v)) if v else None


def lift_summary(results: list[ItemResult], cfg: LiftJobConfig, out: Path) -> dict[str, Any]:
    """The EchoSegnet protocol over the items' scenes (mean over scenes of mIoU / F, pooled J / F over all test
    views, mean centroid error) by :class:`~soundmask.metrics.scene3d.Scene3DMetric`, and the reconstructions'
    means (those ``benchmarks/bench_lift.py`` reports)."""
    from soundmask.metrics.scene3d import Scene3DMetric

    metric = Scene3DMetric(alpha_threshold=cfg.lift.alpha_threshold)
    for r in results:
        s = r.stats
        if not s.get("pred"):
            continue  # a scene without ground truth: nothing to score
        errs = [float("nan") if e is None else e for e in s["centroid_errors"]]
        metric.update(r.name, unpack_masks(s["pred"]), unpack_masks(s["gt"]), centroid_errors=errs)
    res = metric.compute().to_dict()
    rows = [r.metrics for r in results]
    psnr = [m.get("psnr_test") for m in rows]
    secs = [m.get("reconstruct_seconds") for m in rows]
    return {
        "miou": res["miou"],
        "fscore": res["fscore"],
        "pooled_j": res["pooled_j"],
        "pooled_f": res["pooled_f"],
        "centroid_error_m": res["centroid_error_m"],
        "centroid_failures": res["centroid_failures"],
        "scenes": res["num_scenes"],
        "test_views": res["num_views"],
        "track_error_m_median": _median([m.get("track_error_m") for m in rows]),
        "psnr_test_mean": _mean(psnr),
        "psnr_test_min": min((p for p in psnr if p is not None), default=None),
        "reconstruct_seconds_mean": _mean(secs),
        "reconstruct_seconds_max": max((s for s in secs if s is not None), default=None),
        "lift_seconds_mean": _mean([m.get("lift_seconds") for m in rows]),
    }


@batch_job(inputs="scene", options=LiftJobConfig, summary=lift_summary)
def lift_job(item: BatchItem, cfg: LiftJobConfig, out: Path) -> ItemOutput:
    """Reconstruct (or reuse ``<models>/<scene>.ply``) and lift one scene; test-view masks for the summary."""
    from soundmask.data.scene import load_sound_mask
    from soundmask.errors import DataError
    from soundmask.pipeline.lift3d import run_lift
    from soundmask.splat.io import load_model, save_model
    from soundmask.splat.train import fit, load_views

    scene = Path(item.input)
    rcfg = cfg.reconstruct
    model_path = Path(cfg.models) / f"{scene.name}.ply" if cfg.models else None
    recon: dict[str, Any] = {}
    if model_path is not None and model_path.is_file():
        g = load_model(model_path)
        info = model_path.with_suffix(".json")
        recon = json.loads(info.read_text()) if info.is_file() else {}
    else:
        res = fit(load_views(scene, scale=rcfg.scale), rcfg)
        g = res.gaussians
        recon = {"psnr_test": res.psnr_test, "reconstruct_seconds": res.seconds, "gaussians": len(g)}
        if model_path is not None:
            save_model(g, model_path)
            with atomic_path(model_path.with_suffix(".json")) as tmp:
                tmp.write_text(json.dumps(recon))
    t0 = time.perf_counter()
    # as benchmarks/bench_lift.py always has: views at full size
    r = run_lift(scene, cfg.lift, model=g, out_dir=out / "lift" / item.name if cfg.save else None)
    lift_s = time.perf_counter() - t0
    m = r.metrics
    stats: dict[str, Any] = {}
    views = load_views(scene)
    try:
        gts = np.stack([load_sound_mask(views.scene, i) for i in views.test])  # type: ignore[arg-type]
    except DataError:
        gts = None  # no ground truth: nothing for the summary
    if gts is not None and views.test:
        alpha = np.stack([r.test_masks[i] for i in views.test]).astype(np.float32)
        thr = np.float32(cfg.lift.alpha_threshold)  # Scene3DMetric's rule: alpha > threshold, in float32
        stats = {"pred": pack_masks(alpha > thr), "gt": pack_masks(gts > 0), "centroid_errors": m["centroid_errors_m"]}
    return ItemOutput(
        {
            "scene": m.get("scene") or scene.name,
            "miou": m.get("miou"),
            "fscore": m.get("fscore"),
            "pooled_j": m.get("pooled_j"),
            "centroid_error_m": m.get("centroid_error_m"),
            "track_error_m": m.get("track_error_m"),
            "tdoa_agreement_us": m.get("tdoa_agreement_us"),
            "tdoa_agreement_static_us": m.get("tdoa_agreement_static_us"),
            "num_tags": m.get("num_tags"),
            "lift_seconds": round(lift_s, 1),
            **recon,
        },
        stats,
    )


# -------------------------------------------------------------------------------------------------- run
@batch_job(inputs="video", options=RunConfig)
def run_job(item: BatchItem, cfg: RunConfig, out: Path) -> ItemOutput:
    """``soundmask run`` on one video into ``OUT/runs/<name>``."""
    from soundmask.pipeline.video import run_video

    dest = out / "runs" / item.name
    res = run_video(item.input, cfg, dest)
    lift = res.lift or {}
    return ItemOutput(
        {
            "mode": res.mode,
            "frames": res.frames,
            "sounding_frames": res.sounding_frames,
            "segments": res.segments,
            "camera_motion": res.camera_motion,
            "gaussians": lift.get("gaussians"),
            "sounding_objects": ", ".join(o["label"] for o in lift.get("sounding_objects", [])),
            "out": str(res.out),
        }
    )


# --------------------------------------------------------------------------------------------- evaluate
@dataclass
class EvaluateJobConfig(MethodConfig):
    """Options of ``soundmask batch evaluate``: the 2D method (``method_options=top_n=12,...`` for its own
    options), the split and AVSBench's batch size."""

    split: str = option("test", "split of each clip set to evaluate")
    batch_size: int = option(1, "clips per AVSBench batch (pooled J/F do not depend on it)")
    max_clips: int = option(0, "evaluate only the first N clips of each set (0: all)")


def evaluate_summary(results: list[ItemResult], cfg: EvaluateJobConfig, out: Path) -> dict[str, Any]:
    """Pooled J / F over every clip set's frames (the items' :class:`PooledJF` statistics, merged exactly)."""
    from soundmask.metrics.pooled import PooledJF

    total = PooledJF(from_logits=False)
    for r in results:
        total.merge(PooledJF.from_state_dict(r.stats["pooled"]))
    c = total.compute()
    return {
        "pooled_j": c["j"],
        "pooled_f": c["f"],
        "frames": c["frames"],
        "clips": sum(r.metrics["clips"] for r in results),
    }


@batch_job(inputs="clipset", options=EvaluateJobConfig, summary=evaluate_summary)
def evaluate_job(item: BatchItem, cfg: EvaluateJobConfig, out: Path) -> ItemOutput:
    """``soundmask evaluate`` of the method on one clip set (AVSBench layout or a folder of scenes)."""
    from soundmask.avs2d.evaluate import ClipScores, evaluate
    from soundmask.avs2d.features import open_training_dataset

    dataset = open_training_dataset(Path(item.input), cfg.split)
    if cfg.max_clips:
        dataset = dataset[: cfg.max_clips]
    scores = ClipScores(cfg.batch_size)
    rep = evaluate(cfg.load(), dataset, cfg.batch_size, data=item.input, split=cfg.split, scores=scores)
    d = asdict(rep)
    row = {
        k: d[k] for k in ("method", "clips", "frames", "miou", "fscore", "pooled_j", "pooled_f", "frames_per_second")
    }
    return ItemOutput(row, {"pooled": scores.pooled.state_dict()})
