"""Rasterizer and reconstruction speed (issues 7 and 32), on generated scenes.

1. **Rasterizer at 128²**: forward + backward of 5k Gaussians (the depth-initialised Gaussians of a real generated
   scene, so sizes and depth complexity are those the trainer sees): the compiled C++ kernel, the pure-PyTorch tile
   renderer and the dense reference, side by side in one run, with each one's largest image/gradient difference
   from the dense reference (median of 15 timed runs after 3 warm-ups; the compiled/tile ratio is issue 32's
   target, ≥ 5×).
2. **Rasterizer at 256²**: the same with 30k Gaussians (compiled and tile).
3. **Reconstruction**: ``fit`` with the default ``ReconstructConfig`` (backend ``auto``: the compiled kernel when it
   is built) on a 60-frame scene at ``--fit-width`` (default 256): seconds and test-view PSNR (every 8th view,
   never fitted).

    .venv/bin/python benchmarks/bench_splat.py [--threads 2] [--fit-width 256] [--skip-fit] [--json F]
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


def rel_diff(a: dict, b: dict) -> dict[str, float]:
    return {k: float((a[k] - b[k]).abs().max() / max(1.0, float(b[k].abs().max()))) for k in b}


def scene_of(width: int, seed: int, tmp: Path) -> Path:
    from soundmask.synth.generator import SynthConfig, generate_dataset

    generate_dataset(SynthConfig(preset="scene3d", width=width), tmp / str(width), 1, seed)
    return tmp / str(width) / f"scene3d_{seed:06d}"


def raster_times(scene: Path, n: int, dense: bool) -> dict:
    views = load_views(scene)
    g, _ = initial_gaussians(views, ReconstructConfig(init_points=n), np.random.default_rng(0))
    cam, target = views.cameras[1], views.images[1]
    out: dict = {"gaussians": len(g), "size": list(views.size)}
    # interleaved, so that both renderers see the same machine load; the best of two rounds each
    tile_s, tile_out = step_time(g, cam, target, "tile", 15)
    comp_s, comp_out = step_time(g, cam, target, "compiled", 15)
    tile_s = min(tile_s, step_time(g, cam, target, "tile", 15)[0])
    comp_s = min(comp_s, step_time(g, cam, target, "compiled", 15)[0])
    out.update({"tile_fwd_bwd_s": tile_s, "compiled_fwd_bwd_s": comp_s, "compiled_speedup_over_tile": tile_s / comp_s})
    out["compiled_step_with_l1_ssim_s"] = step_time(g, cam, target, "compiled", 15, with_loss=True)[0]
    if dense:
        dense_s, dense_out = step_time(g, cam, target, "dense", 1)
        out.update(
            {
                "dense_fwd_bwd_s": dense_s,
                "tile_speedup_over_dense": dense_s / tile_s,
                "compiled_speedup_over_dense": dense_s / comp_s,
                "tile_max_rel_diff": rel_diff(tile_out, dense_out),
                "compiled_max_rel_diff": rel_diff(comp_out, dense_out),
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=3, help="scene3d seed of the generated scenes")
    ap.add_argument("--gaussians", type=int, default=5000, help="at 128²")
    ap.add_argument("--big-gaussians", type=int, default=30000, help="at 256²")
    ap.add_argument("--fit-width", type=int, default=256)
    ap.add_argument("--skip-fit", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from soundmask.splat.raster_compiled import available

    if not available():
        raise SystemExit("the compiled rasterizer is not built: run ./install.sh")
    out: dict = {"threads": a.threads}
    with tempfile.TemporaryDirectory() as tmp:
        out["raster_128"] = raster_times(scene_of(128, a.seed, Path(tmp)), a.gaussians, dense=True)
        print(json.dumps(out["raster_128"], indent=1), flush=True)
        big = scene_of(256, a.seed, Path(tmp))
        out["raster_256"] = raster_times(big, a.big_gaussians, dense=False)
        print(json.dumps(out["raster_256"], indent=1), flush=True)
        if not a.skip_fit:
            views = load_views(big if a.fit_width == 256 else scene_of(a.fit_width, a.seed, Path(tmp)))
            res = fit(views, ReconstructConfig())
            out["fit"] = {
                "size": list(views.size),
                "frames": len(views.cameras),
                "seconds": res.seconds,
                "psnr_test": res.psnr_test,
                "psnr_train": res.psnr_train,
                "gaussians": len(res.gaussians),
            }
            print(json.dumps(out["fit"]), flush=True)
    if a.json:
        a.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
