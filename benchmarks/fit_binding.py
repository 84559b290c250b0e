"""Fit and measure the binding's cue weights (issue 29, item 3) on ``soundmask demo`` output folders.

Each folder is a finished ``soundmask demo --seed S --out DIR`` (its cache holds the model, the 2D masks and the
audio cues). For each, the lifting is run again up to the binding (``--binding joint``), and every (training view,
component) pair gets its cues and a label: the component's ground-truth object (the object whose instance mask
holds most of the component's rendered footprint over the training views, ≥ 50 % of it; else none) sounds in
that view's frame. Then:

* ``--fit``: logistic regression per binding (acoustic, joint; semantic when the cue is present) on these folders
  — train-split scenes only — and the weights to paste into ``soundmask.lift.binding.DEFAULT_WEIGHTS``;
* always: per binding (and the visual association's own decision), precision / recall / F1 of the selected pairs
  with the weights in the package (or just fitted), and the single-/two-source view accuracy.

    .venv/bin/python benchmarks/fit_binding.py /work/train/demo4* --fit
    .venv/bin/python benchmarks/fit_binding.py /work/obj/demo*
"""

from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from soundmask.data.images import resize_to
from soundmask.data.scene import load_instance_mask, read_scene
from soundmask.lift.associate import component_masks
from soundmask.lift.binding import DEFAULT_WEIGHTS, BindingWeights, _mask, decide
from soundmask.pipeline.demo import DemoConfig
from soundmask.pipeline.lift3d import LiftConfig, run_lift
from soundmask.splat.io import load_model
from soundmask.splat.train import load_views


def case(folder: Path, cfg: LiftConfig) -> dict:
    scene_dir = next(p for p in (folder / "scene").iterdir() if p.is_dir())
    cache = folder / "cache"
    g = load_model(cache / "model.ply")
    masks = np.load(cache / "masks2d.npz")["masks"]
    audio = pickle.loads((cache / "audio.pkl").read_bytes())
    rcfg = DemoConfig().reconstruct
    res = run_lift(scene_dir, cfg, model=g, reconstruct=rcfg, audio=audio, masks_2d={i: m for i, m in enumerate(masks)})
    cues = res.cues
    assert cues is not None
    scene = read_scene(scene_dir)
    views = load_views(scene_dir, scale=rcfg.scale, test_every=rcfg.test_every)
    H, W = views.size
    comps = res.components
    hit = np.zeros((len(comps), len(scene.objects) + 1))
    oid = [o.id for o in scene.objects]
    area = np.zeros(len(comps))
    for i in views.train:
        soft = component_masks(g, views.cameras[i], comps) > 0.5
        inst = resize_to(load_instance_mask(scene, i), W, H, nearest=True)
        for k in range(len(comps)):
            ids, n = np.unique(inst[soft[k]], return_counts=True)
            area[k] += soft[k].sum()
            for j, c in zip(ids, n, strict=True):
                if int(j) in oid:
                    hit[k, oid.index(int(j))] += c
    obj = np.full(len(comps), -1)
    for k in range(len(comps)):
        j = int(np.argmax(hit[k, :-1])) if len(oid) else -1
        if j >= 0 and area[k] > 0 and hit[k, j] >= 0.5 * area[k]:
            obj[k] = oid[j]
    sounding = [set(scene.frames[i].extra.get("sounding", [])) for i in views.train]
    label = np.array([[obj[k] >= 0 and obj[k] in s for k in range(len(comps))] for s in sounding])
    return {"scene": scene.name, "cues": cues, "label": label, "visual": cues.visual, "obj": obj}


def fit(cases: list[dict], binding: str) -> BindingWeights:
    m = _mask(binding)
    X = np.concatenate([c["cues"].features()[c["cues"].audible].reshape(-1, 5) for c in cases])[:, m]
    y = np.concatenate([c["label"][c["cues"].audible].reshape(-1) for c in cases]).astype(np.float64)
    pos = max(y.mean(), 1e-3)
    w_s = np.where(y > 0, 0.5 / pos, 0.5 / (1 - pos))  # balanced classes

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = X @ w
        p = 1 / (1 + np.exp(-z))
        nll = float(np.sum(w_s * (y * np.logaddexp(0, -z) + (1 - y) * np.logaddexp(0, z)))) / len(y)
        grad = -(X.T @ (w_s * (y - p))) / len(y)
        return nll + 1e-3 * float(w @ w), grad + 2e-3 * w

    w = minimize(loss, np.zeros(X.shape[1]), jac=True, method="L-BFGS-B").x
    full = np.zeros(5)
    full[m] = w
    return BindingWeights(*(round(float(v), 3) for v in full))


def score(cases: list[dict], binding: str, weights: BindingWeights | None) -> dict:
    tp = fp = fn = 0
    for c in cases:
        sel = c["visual"] if binding == "visual" else decide(c["cues"], binding, weights)  # type: ignore[arg-type]
        a = c["cues"].audible[:, None]
        sel, lab = sel & a, c["label"] & a
        tp += int((sel & lab).sum())
        fp += int((sel & ~lab).sum())
        fn += int((~sel & lab).sum())
    p = tp / max(tp + fp, 1)
    r = tp / max(tp + fn, 1)
    return {"precision": round(p, 3), "recall": round(r, 3), "f1": round(2 * p * r / max(p + r, 1e-9), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", type=Path, nargs="+")
    ap.add_argument("--fit", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    cfg = LiftConfig(binding="joint", render_views="none")
    cases = []
    for f in args.folders:
        if (f / "cache" / "model.ply").is_file():
            cases.append(case(f, cfg))
            print(f"{cases[-1]['scene']}: {cases[-1]['label'].sum()} sounding pairs", flush=True)
    weights: dict[str, BindingWeights] = dict(DEFAULT_WEIGHTS)
    if args.fit:
        for b in ("acoustic", "joint"):
            weights[b] = fit(cases, b)
            print(f"fitted {b}: {weights[b]}")
    out = {b: score(cases, b, None if b == "visual" else weights[b]) for b in ("visual", "acoustic", "joint")}
    for b, r in out.items():
        print(f"{b:9s} precision {r['precision']:.3f} recall {r['recall']:.3f} F1 {r['f1']:.3f}")
    if args.json:
        args.json.write_text(json.dumps({"scores": out, "weights": {b: vars(w) for b, w in weights.items()}}))


if __name__ == "__main__":
    main()
