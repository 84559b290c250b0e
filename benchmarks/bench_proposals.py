"""Proposal recall on an AVSBench-layout folder with instance masks (issue 30): for every sounding object of the
first frame of each clip, the best IoU of any proposal with it (the ceiling of J for proposal-based methods), and
the same for the silent objects.

    .venv/bin/python benchmarks/bench_proposals.py --data /work/data/s4real --split test \
        [--proposer learned|yolo|hybrid] [--weights W.pt] [--max-clips 0] [--json F]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from soundmask.data.avsbench import AVSBenchDataset
from soundmask.data.io import write_json
from soundmask.vision.proposals import get_proposer, mask_iou


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--proposer", default="learned")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--top-n", type=int, default=8)
    ap.add_argument("--max-clips", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(2)
    kw = {"top_n": args.top_n}
    if args.weights:
        kw["weights"] = args.weights
    prop = get_proposer(args.proposer, **kw)
    ds = AVSBenchDataset(args.data, split=args.split)
    n = len(ds) if not args.max_clips else min(args.max_clips, len(ds))
    sounding, silent = [], []
    for i in range(n):
        clip = ds[i]
        if clip.instances is None:
            continue
        p = prop.propose(clip.frames[0])
        ids = clip.instances[0]
        gt = clip.masks[0] if clip.masks is not None else np.zeros(ids.shape, bool)
        for k in np.unique(ids[ids > 0]):
            m = ids == k
            best = float(mask_iou(p.masks, m[None]).max()) if len(p) else 0.0
            (sounding if (m & gt).sum() > 0.5 * m.sum() else silent).append(best)
    s, q = np.array(sounding), np.array(silent)
    out = {
        "data": args.data,
        "split": args.split,
        "proposer": args.proposer,
        "weights": args.weights,
        "clips": n,
        "sounding_objects": len(s),
        "sounding_mean_iou": float(s.mean()) if len(s) else float("nan"),
        "sounding_median_iou": float(np.median(s)) if len(s) else float("nan"),
        "sounding_recall_50": float((s >= 0.5).mean()) if len(s) else float("nan"),
        "sounding_recall_75": float((s >= 0.75).mean()) if len(s) else float("nan"),
        "silent_objects": len(q),
        "silent_mean_iou": float(q.mean()) if len(q) else float("nan"),
    }
    print(json.dumps(out, indent=1))
    if args.json:
        write_json(args.json, out)


if __name__ == "__main__":
    main()
