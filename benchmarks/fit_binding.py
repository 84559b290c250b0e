"""Fit and measure the binding's cue weights (issue 29, item 3) on ``soundmask demo`` output folders.

Each folder is a finished ``soundmask demo --seed S --out DIR`` (its cache holds the model, the 2D masks and the
audio cues). For each, the lifting is run again up to the binding (``--binding joint``), and every (training view,
component) pair gets its cues and a label: the component holds an object that sounds in that view's frame
(≥ 50 % of the object's visible footprint over the training views, or the object is ≥ 50 % of the component's
rendered footprint; ground-truth instance masks).

Then, for every subset of the cues (visual, acoustic, semantic: each alone, each pair, all three), a
class-balanced logistic regression on the ``--train`` folders (train-split seeds only) and its scores on the
``--test`` folders: precision / recall / F1 of the selected (view, component) pairs, the share of single-source
views where exactly the source's component is selected, and of two-source views where both are, next to the
association's own decision. The weights of "acoustic", "semantic" and all three go into
``soundmask.lift.binding.DEFAULT_WEIGHTS``.

    .venv/bin/python benchmarks/fit_binding.py --train /work/train/demo4* --test /work/obj/demo* --cache /tmp/bc
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
from soundmask.lift.binding import DEFAULT_WEIGHTS, BindingWeights
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
    assert cues is not None and cues.visual is not None
    scene = read_scene(scene_dir)
    views = load_views(scene_dir, scale=rcfg.scale, test_every=rcfg.test_every)
    H, W = views.size
    comps = res.components
    oid = [o.id for o in scene.objects]
    hit = np.zeros((len(comps), len(oid)))  # rendered pixels of component k on object j, over the training views
    area = np.zeros(len(comps))  # rendered pixels of component k
    obj_area = np.zeros(len(oid))  # visible pixels of object j
    for i in views.train:
        soft = component_masks(g, views.cameras[i], comps) > 0.5
        inst = resize_to(load_instance_mask(scene, i), W, H, nearest=True)
        obj_area += [np.sum(inst == j) for j in oid]
        for k in range(len(comps)):
            ids, n = np.unique(inst[soft[k]], return_counts=True)
            area[k] += soft[k].sum()
            for j, c in zip(ids, n, strict=True):
                if int(j) in oid:
                    hit[k, oid.index(int(j))] += c
    sounding = [{oid.index(x) for x in scene.frames[i].extra.get("sounding", []) if x in oid} for i in views.train]
    return {"scene": scene.name, "cues": cues, "hit": hit, "area": area, "obj_area": obj_area, "sounding": sounding}


def label_of(c: dict) -> np.ndarray:
    """(V, K) bool: component k holds a sounding object of view v — most of the object's footprint, or the object
    is at least half of the component's (a component merged with furniture still carries its source)."""
    hit, area, obj_area = c["hit"], c["area"], c["obj_area"]
    holds = (hit >= 0.5 * np.maximum(area[:, None], 1)) | (hit >= 0.5 * np.maximum(obj_area[None, :], 1))
    holds &= hit > 0
    return np.array([[bool(holds[k, list(s)].any()) if s else False for k in range(len(area))] for s in c["sounding"]])


CUES = {"visual": [1, 2], "acoustic": [3], "semantic": [4]}


def cue_mask(cues: tuple[str, ...]) -> np.ndarray:
    m = np.zeros(5, bool)
    m[0] = True
    for c in cues:
        m[CUES[c]] = True
    return m


def fit(cases: list[dict], cues: tuple[str, ...]) -> BindingWeights:
    """Class-balanced logistic regression of the labels on the features of ``cues`` (audible views only)."""
    m = cue_mask(cues)
    X = np.concatenate([c["cues"].features()[c["cues"].audible].reshape(-1, 5) for c in cases])[:, m]
    y = np.concatenate([label_of(c)[c["cues"].audible].reshape(-1) for c in cases]).astype(np.float64)
    pos = max(y.mean(), 1e-3)
    w_s = np.where(y > 0, 0.5 / pos, 0.5 / (1 - pos))  # balanced classes

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = X @ w
        p = 1 / (1 + np.exp(-z))
        nll = float(np.sum(w_s * (y * np.logaddexp(0, -z) + (1 - y) * np.logaddexp(0, z)))) / len(y)
        grad = -(X.T @ (w_s * (y - p))) / len(y)
        return nll + 1e-3 * float(w @ w), grad + 2e-3 * w

    w = minimize(loss, np.zeros(X.shape[1]), jac=True, method="L-BFGS-B").x
    # the balanced fit favours recall; move the bias to the F1-best threshold on the same (train) pairs
    z = X @ w
    best = max(np.linspace(-4, 4, 81), key=lambda b: _f1(z + b > 0, y > 0))
    w[0] += best
    full = np.zeros(5)
    full[m] = w
    return BindingWeights(*(round(float(v), 3) for v in full))


def _f1(sel: np.ndarray, lab: np.ndarray) -> float:
    tp = float((sel & lab).sum())
    return 2 * tp / max(float(sel.sum() + lab.sum()), 1.0)


def select(c: dict, weights: BindingWeights | None) -> np.ndarray:
    """The pairs a weight set selects (None: the association's own visual decision)."""
    if weights is None:
        return c["cues"].visual & c["cues"].audible[:, None]
    return (c["cues"].features() @ weights.as_array() > 0) & c["cues"].audible[:, None]


def score(cases: list[dict], weights: BindingWeights | None) -> dict:
    tp = fp = fn = 0
    one = two = one_ok = two_ok = 0
    for c in cases:
        a = c["cues"].audible[:, None]
        sel, lab = select(c, weights), label_of(c) & a
        tp += int((sel & lab).sum())
        fp += int((sel & ~lab).sum())
        fn += int((~sel & lab).sum())
        n = lab.sum(axis=1)
        for v in np.flatnonzero(n == 1):
            one += 1
            one_ok += bool(np.array_equal(sel[v], lab[v]))
        for v in np.flatnonzero(n == 2):
            two += 1
            two_ok += bool((sel[v] & lab[v]).sum() == 2)
    p = tp / max(tp + fp, 1)
    r = tp / max(tp + fn, 1)
    return {
        "precision": round(p, 3),
        "recall": round(r, 3),
        "f1": round(2 * p * r / max(p + r, 1e-9), 3),
        "single_exact": round(one_ok / max(one, 1), 3),
        "single_views": one,
        "double_both": round(two_ok / max(two, 1), 3),
        "double_views": two,
    }


def load_cases(folders: list[Path], cfg: LiftConfig, cache: Path | None) -> list[dict]:
    out = []
    for f in folders:
        if not (f / "cache" / "model.ply").is_file():
            continue
        pk = cache / f"{f.name}.pkl" if cache else None
        if pk is not None and pk.is_file():
            out.append(pickle.loads(pk.read_bytes()))
        else:
            out.append(case(f, cfg))
            if pk is not None:
                pk.parent.mkdir(parents=True, exist_ok=True)
                pk.write_bytes(pickle.dumps(out[-1]))
        print(f"{out[-1]['scene']}: {label_of(out[-1]).sum()} sounding pairs", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=Path, nargs="*", default=[], help="demo folders of train-split seeds (fit)")
    ap.add_argument("--test", type=Path, nargs="*", default=[], help="demo folders to score on")
    ap.add_argument("--cache", type=Path, default=None, help="keep each folder's cues here")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    cfg = LiftConfig(binding="joint", render_views="none")
    train = load_cases(args.train, cfg, args.cache)
    test = load_cases(args.test, cfg, args.cache)
    subsets = [("visual",), ("acoustic",), ("semantic",), ("visual", "acoustic"), ("visual", "semantic")]
    subsets += [("acoustic", "semantic"), ("visual", "acoustic", "semantic")]
    rows: dict[str, dict] = {"association's own decision": {"test": score(test, None), "train": score(train, None)}}
    for cues in subsets:
        w = fit(train, cues) if train else DEFAULT_WEIGHTS["joint"]
        rows[" + ".join(cues)] = {"weights": vars(w), "test": score(test, w), "train": score(train, w)}
    for name, r in rows.items():
        t = r["test"]
        print(
            f"{name:28s} P {t['precision']:.3f} R {t['recall']:.3f} F1 {t['f1']:.3f} "
            f"single {t['single_exact']:.3f} (n={t['single_views']}) both-of-two {t['double_both']:.3f} "
            f"(n={t['double_views']})  weights {r.get('weights', '')}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
