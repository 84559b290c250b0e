"""A 2D method on generator test seeds (issues 5-6): proposals, "audio must matter", speed.

Scenes are generated in memory from seeds whose split is ``test`` (never trained on), so per-object instance
masks and categories are known:

1. **proposal recall** (methods with a proposal source, SeAC): for every sounding object, the best IoU among
   the frame's proposals (the ceiling of J);
2. **muted audio**: the clip's audio replaced by zeros → fraction of frames with an empty mask (target ≥ 0.9);
3. **swapped audio**: the audio replaced by a window of *another* test scene whose sounding object has the
   category of a visible silent object of this one → fraction of frames whose mask moves to that object
   (IoU with its instance mask ≥ 0.5; target ≥ 0.8), with the diagnosis: how often the mask stays on the
   originally sounding object, how often the target is among the method's candidate masks at all, and how often
   the audio ranks it first when it is;
4. **speed**: frames/s of ``predict`` on 224² frames that are all different (the identical-frame cache of a
   static camera does not apply), 2 threads.

    .venv/bin/python benchmarks/bench_avs2d.py [--method seac|avsc|sdavs] [--preset s4] [--scenes 60]
        [--checkpoint CKPT] [--set KEY=VALUE] [--json F]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict

import numpy as np
import torch

from soundmask.avs2d import load_segmenter
from soundmask.avs2d.base import frame_windows
from soundmask.synth.config import SynthConfig, split_of
from soundmask.synth.generator import generate_scene


def iou(a: np.ndarray, b: np.ndarray) -> float:
    u = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / u) if u else 1.0


def test_scenes(preset: str, n: int, first: int) -> list:
    out, s = [], first
    while len(out) < n:
        if split_of(s) == "test":
            out.append(generate_scene(SynthConfig(preset=preset), s))  # type: ignore[arg-type]
        s += 1
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="seac")
    ap.add_argument("--preset", default="s4")
    ap.add_argument("--scenes", type=int, default=60)
    ap.add_argument("--first-seed", type=int, default=100_000)
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--set", action="append", default=[], help="method option KEY=VALUE")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(2)
    from soundmask.avs2d import get_method
    from soundmask.config import parse_overrides

    opts = parse_overrides(args.set, *get_method(args.method).option_classes()[:1])
    seac = load_segmenter(args.method, args.checkpoint, **opts)
    proposer = getattr(seac, "proposer", None)
    scenes = test_scenes(args.preset, args.scenes, args.first_seed)
    sr = scenes[0].scene.sample_rate
    # sounding windows per category, for the swap test
    by_cat: dict[str, list[np.ndarray]] = defaultdict(list)
    for sc in scenes:
        wins = frame_windows(len(sc.rgb), sc.stereo.shape[1], sr, sc.frame_times)
        for t, (s0, s1) in enumerate(wins):
            ids = sc.sounding_ids(t)
            if len(ids) == 1:
                by_cat[sc.scene.object(ids[0]).category].append(sc.stereo[:, s0:s1])
    best_iou, muted_empty, muted_total = [], 0, 0
    moved, swaps, kept_original, target_candidate, top1_target = 0, 0, 0, 0, 0
    for k, sc in enumerate(scenes):
        if proposer is not None:
            props = proposer.propose(sc.rgb[0])
            for t in range(len(sc.rgb)):
                for oid in sc.sounding_ids(t):
                    m = sc.instances[t] == oid
                    if m.any():
                        best_iou.append(max([iou(p, m) for p in props.masks] or [0.0]))
        pred = seac.predict(sc.rgb, np.zeros_like(sc.stereo), sr, sc.frame_times)
        muted_empty += int((~pred.binary().reshape(len(sc.rgb), -1).any(1)).sum())
        muted_total += len(sc.rgb)
        # swap: pick a visible silent object whose category sounded in another test scene
        ids0 = np.unique(sc.instances[0])
        sounding = {o for t in range(len(sc.rgb)) for o in sc.sounding_ids(t)}
        for obj in sc.scene.objects:
            if obj.id in sounding or obj.id not in ids0 or (sc.instances[0] == obj.id).mean() < 0.006:
                continue
            pool = by_cat.get(obj.category, [])
            if not pool:
                continue
            clip_audio = pool[(k * 7 + obj.id) % len(pool)]
            T = 1
            p = seac.predict(sc.rgb[:1], clip_audio, sr, np.zeros(T))
            if not p.active[0]:
                continue
            swaps += 1
            target = sc.instances[0] == obj.id
            mask = p.binary()[0]
            moved += int(iou(mask, target) >= 0.5)
            kept_original += int(any(iou(mask, sc.instances[0] == o) >= 0.5 for o in sounding))
            cand = p.objects[0] if p.objects else None  # SDAVS has no candidate masks
            ious = [iou(m, target) for m in cand.masks] if cand is not None else []
            if ious and max(ious) >= 0.5:  # the target is a candidate: did the audio rank it first?
                target_candidate += 1
                rank = cand.confidence if cand.confidence is not None else cand.scores
                top1_target += int(int(np.argmax(rank)) == int(np.argmax(ious)))
            break
    # speed on distinct frames: one frame from each scene, one audio second each
    frames = np.stack([sc.rgb[0] for sc in scenes[:20]])
    audio = np.concatenate([sc.stereo[:, :sr] for sc in scenes[:20]], axis=1)
    seac.predict(frames[:2], audio[:, : 2 * sr], sr)  # warm-up
    t0 = time.perf_counter()
    seac.predict(frames, audio, sr, np.arange(len(frames), dtype=float))
    fps = len(frames) / (time.perf_counter() - t0)
    res = {"method": args.method, "preset": args.preset, "scenes": len(scenes)}
    if best_iou:
        b = np.array(best_iou)
        res.update(
            {
                "proposal_best_iou_mean": float(b.mean()),
                "proposal_recall_at_0.5": float(np.mean(b >= 0.5)),
                "proposal_recall_at_0.75": float(np.mean(b >= 0.75)),
            }
        )
    res |= {
        "muted_empty_fraction": muted_empty / max(1, muted_total),
        "muted_frames": muted_total,
        "swap_moved_fraction": moved / max(1, swaps),
        "swaps": swaps,
        "swap_kept_original_fraction": kept_original / max(1, swaps),
        "swap_target_is_candidate_fraction": target_candidate / max(1, swaps),
        "swap_top1_is_target_when_candidate": top1_target / max(1, target_candidate),
        "frames_per_second_distinct_224": fps,
    }
    print(json.dumps(res, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
