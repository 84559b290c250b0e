"""4D reconstructions against the generator's truth (issue 31): where the held-out PSNR is lost, and how far each
rigid body's track is from the true path.

For each ``--scene`` with its fitted ``--model`` (same order):

* PSNR of the held-out views (``--views train``: every 4th training view) split into the pixels of moving objects
  (ground-truth instance masks) and the rest;
* for a rigid model, each body's knot translations against the best-matching moving object's positions in
  ``scene.json`` (both centred: the median distance over the knots, m), and its largest rotation (rad).

    .venv/bin/python benchmarks/bench_motion.py --scene data/s4d/226/scene4d_000226 --model models/scene4d_000226.ply
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from soundmask.data.images import resize_to
from soundmask.data.scene import load_instance_mask
from soundmask.splat.io import load_model
from soundmask.splat.render import render
from soundmask.splat.train import load_views


def _db(mse: float) -> float:
    return float(10 * np.log10(1.0 / max(mse, 1e-10)))


def measure(scene: Path, model: Path, which: str = "test") -> dict:
    views = load_views(scene)
    g = load_model(model)
    movers = [o for o in views.scene.objects if o.moving]  # type: ignore[union-attr]
    H, W = views.size
    se = {"moving": 0.0, "static": 0.0}
    n = {"moving": 0, "static": 0}
    per_view = []
    for i in views.test if which == "test" else views.train[::4]:
        with torch.no_grad():
            r = render(g, views.cameras[i], time=views.times[i], features=False).color.clamp(0, 1).numpy()
        err = ((r - views.images[i].numpy()) ** 2).mean(-1)
        inst = resize_to(load_instance_mask(views.scene, i), W, H, nearest=True)
        m = np.isin(inst, [o.id for o in movers])
        for key, sel in (("moving", m), ("static", ~m)):
            se[key] += float(err[sel].sum())
            n[key] += int(sel.sum())
        per_view.append(_db(float(err.mean())))
    out = {
        "scene": views.scene.name,  # type: ignore[union-attr]
        "views": which,
        "psnr": float(np.mean(per_view)),
        "psnr_moving_px": _db(se["moving"] / max(n["moving"], 1)) if n["moving"] else None,
        "psnr_static_px": _db(se["static"] / max(n["static"], 1)),
        "moving_px_share": n["moving"] / max(n["moving"] + n["static"], 1),
        "bodies": [],
    }
    if g.rigid is not None and movers:
        knots = g.rigid.times.numpy().round().astype(int)
        frame_of = {round(float(t)): k for k, t in enumerate(views.times)}
        rows = [frame_of.get(int(t), min(int(t), len(views.times) - 1)) for t in knots]
        for b in range(g.rigid.num_groups):
            tr = g.rigid.translations[b].detach().numpy()
            errs = []
            for o in movers:
                p = np.asarray(o.positions)[rows]
                errs.append(float(np.median(np.linalg.norm((tr - tr.mean(0)) - (p - p.mean(0)), axis=1))))
            out["bodies"].append({"body": b + 1, "gaussians": int((g.group == b + 1).sum()),
                                  "track_error_m": min(errs), "object": movers[int(np.argmin(errs))].id,
                                  "max_rotation_rad": float(g.rigid.rotations[b].abs().max())})  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", type=Path, action="append", required=True)
    ap.add_argument("--model", type=Path, action="append", required=True)
    ap.add_argument("--views", choices=("test", "train"), default="test")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    if len(a.scene) != len(a.model):
        ap.error("give one --model per --scene")
    rows = [measure(s, m, a.views) for s, m in zip(a.scene, a.model, strict=True)]
    for r in rows:
        print(json.dumps(r), flush=True)
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
