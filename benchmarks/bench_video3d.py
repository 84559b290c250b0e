"""3D from a user's video (issue 8), measured on generated scenes whose ground truth is known.

For every scene folder (``soundmask synth --preset scene3d``) under ``--data``:

1. write it as a video (``write_scene_video``: H.264 frames at the scene's fps + the stereo track as PCM);
2. ``soundmask run`` on that video (``run_video``): 2D masks, COLMAP poses, reconstruction, lifting;
3. score the poses against the generator's cameras (:func:`soundmask.metrics.poses.pose_errors`: centre error in
   metres after the best similarity alignment, rotation error in degrees), and the lifted sound masks of the
   held-out views (``lift/renders/mask_*.png``) against the ground-truth sound masks of the same frames
   (EchoSegnet protocol: per-scene mIoU / F, unweighted mean over scenes; pooled J);
4. with ``--compare``: ``run_lift`` on the scene itself (ground-truth poses, depth initialisation, same method,
   same reconstruction size), the upper bound for what the video path can reach.

    .venv/bin/python benchmarks/bench_video3d.py --data data/sc/s3 --data data/sc/s8 --method sdavs --compare
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from soundmask.data.images import resize_mask
from soundmask.data.io import read_mask
from soundmask.data.scene import load_sound_mask, read_scene, write_scene_video
from soundmask.data.threedavs import read_3davs_scene
from soundmask.metrics.poses import pose_errors
from soundmask.metrics.scene3d import Scene3DMetric
from soundmask.pipeline.lift3d import LiftConfig, run_lift
from soundmask.pipeline.video import RunConfig, run_video
from soundmask.splat.train import ReconstructConfig


def scenes_of(data: Path) -> list[Path]:
    if (data / "scene.json").is_file():
        return [data]
    return [data / r["name"] for r in csv.DictReader((data / "index.csv").open())]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, action="append", required=True, help="scene folders or synth outputs")
    ap.add_argument("--method", default="sdavs")
    ap.add_argument("--iterations", type=int, default=650)
    ap.add_argument("--size-3d", type=int, default=128)
    ap.add_argument("--compare", action="store_true", help="also lift each scene with its ground-truth poses")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    video_m = Scene3DMetric()
    gt_m = Scene3DMetric()
    rows = []
    for path in [s for d in a.data for s in scenes_of(d)]:
        scene = read_scene(path)
        row: dict = {"scene": scene.name}
        with tempfile.TemporaryDirectory() as tmp:
            video = write_scene_video(scene, Path(tmp) / f"{scene.name}.mkv")
            t0 = time.perf_counter()
            s = run_video(
                video,
                RunConfig(
                    fps=scene.fps,
                    size_3d=a.size_3d,
                    lift=LiftConfig(method=a.method),
                    reconstruct=ReconstructConfig(iterations=a.iterations),
                ),
                Path(tmp) / "out",
            )
            row.update(
                {"mode": s.mode, "run_seconds": round(time.perf_counter() - t0, 1), "timings_s": s.summary["timings_s"]}
            )
            if s.lift is not None:
                lift = s.lift
                gt_index = [int(n) for n in lift["video_frames"]]  # sampled at the scene's fps: name = frame
                vs = read_3davs_scene(Path(tmp) / "out" / "scene")
                est = {str(gt_index[j]): f.camera for j, f in enumerate(vs.frames)}
                err = pose_errors(est, {str(i): f.camera for i, f in enumerate(scene.frames)})
                preds, gts = [], []
                for j in lift["test_views"]:
                    m = read_mask(Path(tmp) / "out" / "lift" / "renders" / f"mask_{j:05d}.png")
                    preds.append(m.astype(np.float32))
                    gts.append(resize_mask(load_sound_mask(scene, gt_index[j]), m.shape[1], m.shape[0]))
                video_m.update(scene.name, np.stack(preds), np.stack(gts))
                one = Scene3DMetric()
                one.update(scene.name, np.stack(preds), np.stack(gts))
                row.update(
                    {
                        "registered": f"{len(vs.frames)}/{len(scene.frames)}",
                        "poses": err.to_dict(),
                        "psnr_test": lift["psnr_test"],
                        "miou": one.compute().miou,
                        "objects": [o["label"] for o in lift["sounding_objects"]],
                    }
                )
            else:
                row["reason"] = s.reason
        if a.compare:
            r = run_lift(
                path,
                LiftConfig(method=a.method),
                reconstruct=ReconstructConfig(iterations=a.iterations, scale=min(1.0, a.size_3d / max(scene.size))),
            )
            gts = np.stack([load_sound_mask(scene, i) for i in r.test_masks])
            gt_m.update(
                scene.name,
                np.stack([r.test_masks[i] for i in r.test_masks]).astype(np.float32),
                np.stack([resize_mask(g, r.test_masks[0].shape[1], r.test_masks[0].shape[0]) for g in gts]),
            )
            row.update({"gt_poses_miou": r.metrics["miou"], "gt_poses_psnr_test": r.metrics.get("psnr_test")})
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary: dict = {"method": a.method, "scenes": len(rows), "lifted_3d": sum(r["mode"] == "3d" for r in rows)}
    done = [r for r in rows if r["mode"] == "3d"]
    if done:
        v = video_m.compute().to_dict()
        summary.update(
            {
                "video_miou": v["miou"],
                "video_fscore": v["fscore"],
                "video_pooled_j": v["pooled_j"],
                "rotation_median_deg": float(np.median([r["poses"]["rotation_median_deg"] for r in done])),
                "centre_median_m": float(np.median([r["poses"]["centre_median"] for r in done])),
                "psnr_test_mean": float(np.mean([r["psnr_test"] for r in done])),
                "run_seconds_mean": float(np.mean([r["run_seconds"] for r in done])),
            }
        )
    if a.compare:
        g = gt_m.compute().to_dict()
        summary.update({"gt_poses_miou": g["miou"], "gt_poses_fscore": g["fscore"], "gt_poses_pooled_j": g["pooled_j"]})
    summary["per_scene"] = rows
    print(json.dumps({k: v for k, v in summary.items() if k != "per_scene"}, indent=1))
    if a.json:
        a.json.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
