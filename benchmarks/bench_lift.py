"""3D/4D sound masks over many scenes (issue 7): reconstruction quality and time, lifted-mask metrics.

For every scene folder under ``--data`` whose ``index.csv`` split is ``--split`` (default ``test``):

1. reconstruct (or reuse ``<models>/<scene>.ply``), recording test-view PSNR and seconds;
2. ``run_lift`` with ground-truth 2D masks (``--method gt``) or a 2D method end to end;
3. aggregate by the EchoSegnet protocol (per-scene AVSBench mIoU / F over the test views, unweighted mean over
   scenes) plus pooled J/F over all test views and the mean 3D centroid error.

    .venv/bin/python benchmarks/bench_lift.py --data data/sc3 --method gt --models data/models --json out.json
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from soundmask.metrics.scene3d import Scene3DMetric
from soundmask.pipeline.lift3d import LiftConfig, run_lift
from soundmask.splat.io import load_model, save_model
from soundmask.splat.train import ReconstructConfig, fit, load_views


def scenes_of(data: Path, split: str) -> list[Path]:
    rows = list(csv.DictReader((data / "index.csv").open()))
    return [data / r["name"] for r in rows if split == "all" or r["split"] == split]


def _median(values: list) -> float | None:
    v = [x for x in values if x is not None and np.isfinite(x)]
    return float(np.median(v)) if v else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, action="append", required=True, help="generated scenes (repeatable)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--method", default="gt", help="gt (ground-truth 2D masks) or a 2D method name")
    ap.add_argument("--models", type=Path, default=None, help="cache folder for reconstructions")
    ap.add_argument("--iterations", type=int, default=None)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], help="LiftConfig KEY=VALUE")
    ap.add_argument("--recon-set", action="append", default=[], help="ReconstructConfig KEY=VALUE (e.g. motion=basis)")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    from soundmask.config import parse_overrides

    extra = parse_overrides(a.set, LiftConfig)
    cfg = LiftConfig(**{"use_gt_2d": a.method == "gt", "method": a.method if a.method != "gt" else "sdavs", **extra})
    rextra = parse_overrides(a.recon_set, ReconstructConfig)
    rcfg = ReconstructConfig(**({"iterations": a.iterations} if a.iterations else {}), **rextra)
    scenes = [s for d in a.data for s in scenes_of(d, a.split)]
    if a.limit:
        scenes = scenes[: a.limit]
    metric = Scene3DMetric(alpha_threshold=cfg.alpha_threshold)
    rows = []
    for sc in scenes:
        model_path = a.models / f"{sc.name}.ply" if a.models else None
        recon = {}
        if model_path is not None and model_path.is_file():
            g = load_model(model_path)
        else:
            views = load_views(sc, scale=rcfg.scale)
            res = fit(views, rcfg)
            g = res.gaussians
            recon = {"psnr_test": res.psnr_test, "reconstruct_seconds": res.seconds, "gaussians": len(g)}
            if model_path is not None:
                save_model(g, model_path)
                (model_path.with_suffix(".json")).write_text(json.dumps(recon))
        if not recon and model_path is not None and model_path.with_suffix(".json").is_file():
            recon = json.loads(model_path.with_suffix(".json").read_text())
        t0 = time.perf_counter()
        r = run_lift(sc, cfg, model=g)
        lift_s = time.perf_counter() - t0
        views = load_views(sc)
        from soundmask.data.scene import load_sound_mask

        gts = np.stack([load_sound_mask(views.scene, i) for i in views.test])
        preds = np.stack([r.test_masks[i] for i in views.test]).astype(np.float32)
        errs = [e if e is not None else float("nan") for e in r.metrics["centroid_errors_m"]]
        metric.update(sc.name, preds, gts, centroid_errors=errs)
        row = {
            "scene": sc.name,
            "miou": r.metrics["miou"],
            "fscore": r.metrics["fscore"],
            "pooled_j": r.metrics["pooled_j"],
            "centroid_error_m": r.metrics["centroid_error_m"],
            "track_error_m": r.metrics.get("track_error_m"),
            "tdoa_agreement_us": r.metrics.get("tdoa_agreement_us"),
            "tdoa_agreement_static_us": r.metrics.get("tdoa_agreement_static_us"),
            "lift_seconds": round(lift_s, 1),
            **recon,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    res = metric.compute().to_dict()
    rec = [r["psnr_test"] for r in rows if "psnr_test" in r]
    secs = [r["reconstruct_seconds"] for r in rows if "reconstruct_seconds" in r]
    summary = {
        "method": a.method,
        "scenes": len(rows),
        "miou": res["miou"],
        "fscore": res["fscore"],
        "pooled_j": res["pooled_j"],
        "pooled_f": res["pooled_f"],
        "centroid_error_m": res["centroid_error_m"],
        "centroid_failures": res["centroid_failures"],
        "track_error_m_median": _median([r["track_error_m"] for r in rows]),
        "psnr_test_mean": float(np.mean(rec)) if rec else None,
        "psnr_test_min": float(np.min(rec)) if rec else None,
        "reconstruct_seconds_mean": float(np.mean(secs)) if secs else None,
        "reconstruct_seconds_max": float(np.max(secs)) if secs else None,
        "lift_seconds_mean": float(np.mean([r["lift_seconds"] for r in rows])) if rows else None,
        "per_scene": rows,
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "per_scene"}, indent=1))
    if a.json:
        a.json.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
