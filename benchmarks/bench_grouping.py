"""Does the sounding object get a clean component of its own (issue 29, item 7)? Measured on ``soundmask demo``
output folders (their cache holds the model, the 2D masks and the audio cues).

For each folder the lifting's grouping stage is run on the cached inputs (the same views, visibility and 2D sound
masks as ``run_lift``), once per grouping variant, and each component's footprint over the training views (its
occluded render > 0.5, :func:`soundmask.lift.associate.component_masks`) is compared with the ground-truth
instance masks. A sound event is a maximal run of consecutive frames with the same non-empty sounding set; each
sounding object of an event counts once. The object has a **clean** component when one component holds ≥ 50 % of
the object's footprint and has ≥ 50 % of its own footprint inside the object. Otherwise:

* **merged** — a component holds ≥ 50 % of the object but most of it is something else;
* **fragmented** — no component holds half the object, but the components together cover ≥ 50 % of it;
* **missing** — the components cover less than half the object (or the training views never see it).

    .venv/bin/python benchmarks/bench_grouping.py /work/obj/demo* --variants default,proposals
"""

from __future__ import annotations

import argparse
import json
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from soundmask.data.images import resize_mask, resize_to
from soundmask.data.scene import load_instance_mask, load_rgb, read_scene
from soundmask.data.types import Scene
from soundmask.lift.associate import component_masks
from soundmask.lift.grouping import Component, split_by_sound
from soundmask.lift.objects import group_gaussians
from soundmask.lift.splitting import instance_label_maps, split_by_instances
from soundmask.lift.views import LiftViews
from soundmask.lift.voting import centre_visibility, sounded_gaussians
from soundmask.pipeline.demo import DemoConfig
from soundmask.pipeline.lift3d import LiftConfig
from soundmask.splat.gaussians import Gaussians
from soundmask.splat.io import load_model
from soundmask.splat.render import render
from soundmask.splat.train import load_views

KINDS = ("clean", "merged", "fragmented", "missing")
ABBREV = {"clean": "ok", "merged": "M", "fragmented": "F", "missing": "X"}


@dataclass
class Case:
    name: str
    scene: Scene
    g: Gaussians
    lv: LiftViews
    audio: Any
    images: np.ndarray  # (V, H, W, 3) uint8 training frames at the views' size
    inst: list[np.ndarray]  # ground-truth instance maps of the training views
    events: list[set[int]]  # sounding set of each event


def events_of(scene: Scene) -> list[set[int]]:
    """The sounding set of each maximal run of consecutive frames with the same non-empty sounding set."""
    out: list[set[int]] = []
    prev: set[int] = set()
    for f in scene.frames:
        s = {int(i) for i in f.extra.get("sounding", [])}
        if s and s != prev:
            out.append(s)
        prev = s
    return out


def load_case(folder: Path, cache_dir: Path | None = None) -> Case:
    """The scene's training views, visibility, 2D masks, frames and instance maps (pickled in ``cache_dir``)."""
    if cache_dir is not None:
        hit = cache_dir / f"{folder.name}.pkl"
        if hit.is_file():
            return pickle.loads(hit.read_bytes())
        case = load_case(folder)
        cache_dir.mkdir(parents=True, exist_ok=True)
        hit.write_bytes(pickle.dumps(case))
        return case
    scene_dir = next(p for p in (folder / "scene").iterdir() if p.is_dir())
    cache = folder / "cache"
    g = load_model(cache / "model.ply").detach()
    masks = np.load(cache / "masks2d.npz")["masks"]
    audio = pickle.loads((cache / "audio.pkl").read_bytes())
    rcfg = DemoConfig().reconstruct
    views = load_views(scene_dir, scale=rcfg.scale, test_every=rcfg.test_every)
    scene = views.scene
    assert scene is not None
    H, W = views.size
    train = views.train
    cams = [views.cameras[i] for i in train]
    times = [views.times[i] for i in train]
    with torch.no_grad():
        depths = [render(g, c, time=t, features=False).depth.numpy() for c, t in zip(cams, times, strict=True)]
    visible = centre_visibility(g, cams, times=times, depth_maps=depths)
    m2d = [resize_mask(masks[i], W, H) for i in train]
    lv = LiftViews(cams, times, m2d, visible, [scene.frames[i] for i in train], train)
    images = np.stack([resize_to(load_rgb(scene, i), W, H) for i in train])
    inst = [resize_to(load_instance_mask(scene, i), W, H, nearest=True) for i in train]
    return Case(scene.name, read_scene(scene_dir), g, lv, audio, images, inst, events_of(scene))


def footprints(case: Case, comps: list[Component]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """hit (K, O): pixels of component k inside object o over the training views; area (K,); objarea (O,)."""
    oid = [o.id for o in case.scene.objects]
    K, n_obj = len(comps), len(oid)
    hit, area, objarea = np.zeros((K, n_obj)), np.zeros(K), np.zeros(n_obj)
    for cam, t, inst in zip(case.lv.cameras, case.lv.times, case.inst, strict=True):
        for j, o in enumerate(oid):
            objarea[j] += (inst == o).sum()
        if not K:
            continue
        soft = component_masks(case.g, cam, comps, time=t) > 0.5
        for k in range(K):
            ids, n = np.unique(inst[soft[k]], return_counts=True)
            area[k] += soft[k].sum()
            for i, c in zip(ids, n, strict=True):
                if int(i) in oid:
                    hit[k, oid.index(int(i))] += c
    return hit, area, objarea, oid


def kinds(hit: np.ndarray, area: np.ndarray, objarea: np.ndarray) -> list[str]:
    """The failure kind (or clean) of each object."""
    out = []
    for o in range(hit.shape[1]):
        if objarea[o] <= 0:
            out.append("missing")
            continue
        cover = hit[:, o] / objarea[o]
        purity = np.divide(hit[:, o], area, out=np.zeros_like(area), where=area > 0)
        if ((cover >= 0.5) & (purity >= 0.5)).any():
            out.append("clean")
        elif (cover >= 0.5).any():
            out.append("merged")
        elif cover.sum() >= 0.5:
            out.append("fragmented")
        else:
            out.append("missing")
    return out


def measure(case: Case, comps: list[Component]) -> dict[str, Any]:
    hit, area, objarea, oid = footprints(case, comps)
    kind = dict(zip(oid, kinds(hit, area, objarea), strict=True))
    per_event = [kind.get(o, "missing") for s in case.events for o in sorted(s)]
    counts = {k: per_event.count(k) for k in KINDS}
    sounding = sorted({o for s in case.events for o in s})
    return {"components": len(comps), "events": len(per_event), **counts, "objects": {o: kind[o] for o in sounding}}


def variants(cfg: LiftConfig) -> dict[str, Callable[[Case], list[Component]]]:
    def default(c: Case) -> list[Component]:
        return group_gaussians("geometry", c.g, c.lv, cfg)

    def no_split(c: Case) -> list[Component]:
        return group_gaussians("geometry", c.g, c.lv, replace(cfg, sound_split=0.0))

    def gt_instances(c: Case) -> list[Component]:  # upper bound: the ground-truth instance masks voted
        return group_gaussians("instances", c.g, c.lv, cfg, c.inst)

    def instances_then_sound(source: str) -> Callable[[Case], list[Component]]:
        def run(c: Case) -> list[Component]:
            comps = group_gaussians("geometry", c.g, c.lv, replace(cfg, sound_split=0.0))
            comps = split_by_instances(
                comps, c.g, c.lv.cameras, proposal_maps(c, source), times=c.lv.times, visible=c.lv.visible
            )
            return split_by_sound(comps, c.g.means.numpy(), sounded(c), max_share=cfg.sound_split)

        return run

    def sound_then_instances(source: str) -> Callable[[Case], list[Component]]:
        def run(c: Case) -> list[Component]:
            comps = group_gaussians("geometry", c.g, c.lv, cfg)
            return split_by_instances(
                comps, c.g, c.lv.cameras, proposal_maps(c, source), times=c.lv.times, visible=c.lv.visible
            )

        return run

    def sounded(c: Case) -> np.ndarray:
        return sounded_gaussians(c.g, c.lv.cameras, c.lv.masks, times=c.lv.times, visible=c.lv.visible)

    out: dict[str, Callable[[Case], list[Component]]] = {
        "default": default,
        "no-split": no_split,
        "gt-instances": gt_instances,
        "gt-split": lambda c: split_by_instances(
            group_gaussians("geometry", c.g, c.lv, cfg),
            c.g,
            c.lv.cameras,
            c.inst,
            times=c.lv.times,
            visible=c.lv.visible,
        ),
    }

    def grouped(source: str) -> Callable[[Case], list[Component]]:  # what --instance-split does
        return lambda c: group_gaussians("geometry", c.g, c.lv, cfg, proposals=proposal_maps(c, source))

    out["gt-grouped"] = lambda c: group_gaussians("geometry", c.g, c.lv, cfg, proposals=c.inst)
    for src in ("learned", "yolo"):
        out[src] = grouped(src)
        out[f"{src}-split"] = sound_then_instances(src)
        out[f"{src}-first"] = instances_then_sound(src)
    return out


_MAPS: dict[tuple[str, str], list[np.ndarray]] = {}


def proposal_maps(c: Case, source: str) -> list[np.ndarray]:
    """Instance-id maps of the training frames from proposer ``source`` (memoised per scene)."""
    key = (c.name, source)
    if key not in _MAPS:
        from soundmask.vision.proposals import get_proposer

        _MAPS[key] = instance_label_maps(get_proposer(source).propose_batch(c.images))
    return _MAPS[key]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", type=Path, nargs="+")
    ap.add_argument("--variants", default="default")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--cache", type=Path, default=None, help="pickle each scene's loaded inputs here")
    args = ap.parse_args()
    cfg = LiftConfig(render_views="none")
    fns = variants(cfg)
    names = args.variants.split(",")
    res: dict[str, dict[str, Any]] = {n: {} for n in names}
    for f in args.folders:
        if not (f / "cache" / "model.ply").is_file():
            continue
        case = load_case(f, args.cache)
        for n in names:
            t0 = time.perf_counter()
            comps = fns[n](case)
            t1 = time.perf_counter() - t0
            r = measure(case, comps)
            r["seconds"] = round(t1, 2)
            res[n][case.name] = r
            objs = " ".join(f"{o}:{ABBREV[k]}" for o, k in r["objects"].items())
            print(
                f"{case.name} {n:14s} {r['components']:3d} comps  clean {r['clean']}/{r['events']}  "
                f"[{objs}]  {t1:.1f}s",
                flush=True,
            )
    print()
    for n in names:
        tot = {k: sum(r[k] for r in res[n].values()) for k in ("events", *KINDS)}
        rate = tot["clean"] / max(tot["events"], 1)
        fails = ", ".join(f"{k} {tot[k]}" for k in KINDS[1:])
        print(f"{n:14s} clean {tot['clean']}/{tot['events']} = {rate:.1%} (target ≥ 90 %)  {fails}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, default=str))


if __name__ == "__main__":
    main()
