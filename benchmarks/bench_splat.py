"""Rasterizer and reconstruction speed (issue 7), on a generated 128² scene.

1. **Rasterizer**: forward + backward of 5k Gaussians at 128² (the depth-initialised Gaussians of a real generated
   scene, so sizes and depth complexity are those the trainer sees), tile renderer vs the dense reference, and
   their largest image/gradient difference (median of 15 timed runs after 3 warm-ups).
2. **Reconstruction**: ``fit`` with the default ``ReconstructConfig`` on the 60-frame scene: seconds and
   test-view PSNR (every 8th view, never fitted).

    .venv/bin/python benchmarks/bench_splat.py [--scene DIR] [--threads 2] [--json F]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from soundmask.splat.losses import l1_ssim_loss
from soundmask.splat.render import render
from soundmask.splat.train import ReconstructConfig, fit, initial_gaussians, load_views


def step_time(g, cam, target, backend: str, repeats: int, with_loss: bool = False) -> tuple[float, dict]:  # noqa: ANN001
    times, grads = [], {}
    for k in range(repeats + (3 if repeats > 1 else 0)):  # three warm-up runs, not timed
        for v in g.tensors().values():
            v.grad = None
            v.requires_grad_(True)
        t0 = time.perf_counter()
        r = render(g, cam, backend=backend)
        loss = l1_ssim_loss(r.color, target) if with_loss else (r.color * target).sum()
        loss.backward()
        if repeats == 1 or k >= 3:
            times.append(time.perf_counter() - t0)
        grads = {k: v.grad.clone() for k, v in g.tensors().items() if v.grad is not None}
        last = r.color.detach()
    return float(np.median(times)), {"image": last, **grads}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", type=Path, default=None, help="a 128² scene (default: generate scene3d seed 3)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gaussians", type=int, default=5000)
    ap.add_argument("--skip-fit", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    tmp = None
    scene = a.scene
    if scene is None:
        from soundmask.synth.generator import SynthConfig, generate_dataset

        tmp = tempfile.TemporaryDirectory()
        generate_dataset(SynthConfig(preset="scene3d", width=128), tmp.name, 1, 3)
        scene = Path(tmp.name) / "scene3d_000003"
    views = load_views(scene)
    g, _ = initial_gaussians(views, ReconstructConfig(init_points=a.gaussians), np.random.default_rng(0))
    cam, target = views.cameras[1], views.images[1]
    tile_s, tile_out = step_time(g, cam, target, "tile", 15)
    dense_s, dense_out = step_time(g, cam, target, "dense", 1)
    step_s, _ = step_time(g, cam, target, "tile", 15, with_loss=True)
    tile_s = min(tile_s, step_time(g, cam, target, "tile", 15)[0])  # the first timing also pays one-off allocations
    diff = {
        k: float((tile_out[k] - dense_out[k]).abs().max() / max(1.0, float(dense_out[k].abs().max())))
        for k in dense_out
    }
    out = {
        "threads": a.threads,
        "gaussians": len(g),
        "size": list(views.size),
        "tile_fwd_bwd_s": tile_s,
        "tile_step_with_l1_ssim_s": step_s,
        "dense_fwd_bwd_s": dense_s,
        "speedup": dense_s / tile_s,
        "max_rel_diff": diff,
    }
    print(json.dumps(out, indent=1), flush=True)
    if not a.skip_fit:
        res = fit(views, ReconstructConfig())
        out.update(
            {
                "fit_seconds": res.seconds,
                "fit_psnr_test": res.psnr_test,
                "fit_psnr_train": res.psnr_train,
                "fit_gaussians": len(res.gaussians),
                "frames": len(views.cameras),
            }
        )
        print(json.dumps({k: out[k] for k in ("fit_seconds", "fit_psnr_test", "fit_gaussians")}), flush=True)
    if a.json:
        a.json.write_text(json.dumps(out, indent=1))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
