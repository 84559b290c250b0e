"""C++ or Numba for the compiled rasterizer (issue 32: "choose by measurement").

The compositing forward pass written both ways with the same algorithm: per tile row the 16 pixels as one vector
(the same polynomial ``exp``), only the Gaussians whose rows reach it, 3DGS early termination, parallel over tiles
(C++: torch's OpenMP threads; Numba: ``prange`` on its own threading layer). Both read the same projection and the
same binning of a generated 128² scene (5k depth-initialised Gaussians, as ``bench_splat.py``), must give the same
image, and are timed side by side; Numba's just-in-time compile of the kernel (which every new process pays, or
which ``cache=True`` keeps beside the source) is reported too. Needs ``numba`` (it comes with the test extras).

    .venv/bin/python benchmarks/bench_raster_numba.py [--threads 2] [--json F]
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

L = 16


def numba_forward():  # noqa: ANN201 - builds the jitted kernel (numba imported here: it is optional)
    import numba
    from numba import njit, prange

    @njit(inline="always", fastmath={"nnan", "ninf", "nsz", "contract"})
    def fast_exp(x):  # noqa: ANN001, ANN202 - the C++ kernel's polynomial, clamped at -30
        x = -30.0 if x < -30.0 else (0.0 if x > 0.0 else x)
        k = math.floor(x * 1.44269504088896341 + 0.5)
        r = x - k * 0.693359375 - k * -2.12194440e-4
        p = 1.9875691500e-4
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        return (p * r * r + r + 1.0) * 2.0**k

    @njit(parallel=True, fastmath={"nnan", "ninf", "nsz", "contract"})
    def forward(mu, con, op, vals, gi, ranges, nx, ny, ts, W, H, amin, amax, tmin, out, t_final, last):  # noqa: ANN001, ANN202
        K = vals.shape[1]
        for tile in prange(nx * ny):
            lo, hi = ranges[tile], ranges[tile + 1]
            x0, y0 = (tile % nx) * ts, (tile // nx) * ts
            cols, rows = min(W - x0, ts), min(H - y0, ts)
            n = hi - lo
            # the rows each pair's footprint reaches (the C++ kernel's per-row lists, as a bounds test)
            r_lo = np.empty(n, np.int32)
            r_hi = np.empty(n, np.int32)
            for p in range(n):
                g = gi[lo + p]
                a, b, c = con[g, 0], con[g, 1], con[g, 2]
                det = a * c - b * b
                r2 = 2.0 * math.log(max(op[g] / amin, 1.0)) * 1.001 + 1e-3
                ey = math.sqrt(r2 * a / det) if det > 0 else 1e7
                r_lo[p] = max(0, int(math.ceil(mu[g, 1] - ey - 0.5 - 1e-3) - y0))
                r_hi[p] = min(rows - 1, int(math.floor(mu[g, 1] + ey - 0.5 + 1e-3) - y0))
            acc = np.zeros((K, L), np.float32)
            trans = np.empty(L, np.float32)
            live = np.empty(L, np.float32)
            w = np.empty(L, np.float32)
            end = np.empty(L, np.int32)
            for r in range(rows):
                py = y0 + r + 0.5
                acc[:] = 0.0
                for c in range(L):
                    trans[c] = 1.0
                    live[c] = 1.0 if c < cols else 0.0
                    end[c] = 0
                remaining = cols
                pos = 0
                for p in range(n):
                    if remaining == 0:
                        break
                    if r < r_lo[p] or r > r_hi[p]:
                        continue
                    pos += 1
                    g = gi[lo + p]
                    mx, dy = mu[g, 0] - x0 - 0.5, py - mu[g, 1]
                    a, b, cc, o = con[g, 0], con[g, 1], con[g, 2], op[g]
                    for c in range(L):
                        dx = c - mx
                        power = -0.5 * (a * dx * dx + cc * dy * dy) - b * dx * dy
                        araw = o * fast_exp(power)
                        ok = live[c] if (power <= 0.0 and araw >= amin) else 0.0
                        alpha = ok * (araw if araw < amax else amax)
                        w[c] = alpha * trans[c]
                        trans[c] = trans[c] * (1.0 - alpha)
                        if ok > 0.0:
                            end[c] = pos
                        if trans[c] < tmin:
                            live[c] = 0.0
                    for k in range(K):
                        vk = vals[g, k]
                        for c in range(L):
                            acc[k, c] += w[c] * vk
                    remaining = 0
                    for c in range(L):
                        remaining += live[c] > 0.0
                for c in range(cols):
                    for k in range(K):
                        out[y0 + r, x0 + c, k] = acc[k, c]
                    t_final[y0 + r, x0 + c] = trans[c]
                    last[y0 + r, x0 + c] = end[c]

    return forward, numba


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gaussians", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from soundmask.splat.project import ALPHA_MAX, ALPHA_MIN
    from soundmask.splat.raster_compiled import T_MIN, _extension, project_compiled
    from soundmask.splat.render import camera_tensors
    from soundmask.splat.train import ReconstructConfig, initial_gaussians, load_views
    from soundmask.synth.generator import SynthConfig, generate_dataset

    with tempfile.TemporaryDirectory() as tmp:
        generate_dataset(SynthConfig(preset="scene3d", width=128), tmp, 1, 3)
        views = load_views(Path(tmp) / "scene3d_000003")
    g, _ = initial_gaussians(views, ReconstructConfig(init_points=a.gaussians), np.random.default_rng(0))
    cam = views.cameras[1]
    w2c, (fx, fy, cx, cy, W, H) = camera_tensors(cam)
    with torch.no_grad():
        p = project_compiled(g.means, g.covariances(), g.opacities(), w2c, fx, fy, cx, cy, W, H)
        colors = g.colors(torch.as_tensor(cam.center, dtype=torch.float32), g.means)
    vals = torch.cat([colors, p.depths.clamp(max=1e3)[:, None], torch.ones(len(g), 1)], 1).contiguous()
    ext, ts = _extension(), 16
    nx, ny = (W + ts - 1) // ts, (H + ts - 1) // ts
    d = [t.contiguous() for t in (p.means2d, p.conics, p.opacities, p.depths)]
    extent = p.extent.contiguous()
    gi, ranges = ext.bin(*d, p.visible, extent, nx, ny, ts, ALPHA_MIN)
    args = (d[0], d[1], d[2], vals, gi, ranges, nx, ny, ts, W, H, ALPHA_MIN, ALPHA_MAX, T_MIN)
    cpp_args = (*args[:3], extent, *args[3:])

    def timed(f) -> float:  # noqa: ANN001
        for _ in range(3):
            f()
        t = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            f()
            t.append(time.perf_counter() - t0)
        return float(np.median(t))

    cpp_s = timed(lambda: ext.forward(*cpp_args))
    cpp_out = ext.forward(*cpp_args)[0]

    t0 = time.perf_counter()
    forward, numba = numba_forward()
    numba.set_num_threads(a.threads)
    np_args = [x.numpy() if isinstance(x, torch.Tensor) else x for x in args]
    out = np.zeros((H, W, vals.shape[1]), np.float32)
    t_final, last = np.ones((H, W), np.float32), np.zeros((H, W), np.int32)
    forward(*np_args, out, t_final, last)
    jit_s = time.perf_counter() - t0
    numba_s = timed(lambda: forward(*np_args, out, t_final, last))
    diff = float(np.abs(out - cpp_out.numpy()).max() / max(1.0, float(cpp_out.abs().max())))
    res = {
        "threads": a.threads,
        "gaussians": len(g),
        "pairs": int(gi.numel()),
        "cpp_forward_s": cpp_s,
        "numba_forward_s": numba_s,
        "numba_over_cpp": numba_s / cpp_s,
        "numba_first_call_s (jit compile)": jit_s,
        "numba_threading_layer": numba.threading_layer(),
        "max_rel_diff": diff,
    }
    print(json.dumps(res, indent=1))
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
