"""The listening test (``soundmask evaluate --robust``, docs/avs2d.md "Listening") on held-out generator scenes.

``soundmask synth --count N`` numbers its scenes by seed and ~10 % of the seeds are test seeds, so a small
generated folder has few test clips and fewer still with a visible silent object whose category another clip
sounds (the ``swap`` condition). This script writes ``--scenes`` S4 clips of *test* seeds only (never trained on)
into a temporary AVSBench folder and runs :func:`soundmask.avs2d.robust.evaluate_robust` on it, as the command
does.

    .venv/bin/python benchmarks/bench_robust.py [--method sdavs] [--scenes 30] [--first-seed 100000]
        [--checkpoint CKPT] [--set KEY=VALUE] [--seed 0] [--conditions original,silence,...] [--json F]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from soundmask.avs2d import get_method, load_segmenter
from soundmask.avs2d.robust import NegativeResult, OriginalResult, SwapResult, evaluate_robust
from soundmask.config import parse_overrides
from soundmask.data.avsbench import AVSBenchDataset, write_avsbench
from soundmask.data.io import to_jsonable
from soundmask.synth.config import SynthConfig, split_of
from soundmask.synth.generator import generate_scene


def test_seeds(n: int, first: int) -> list[int]:
    out, s = [], first
    while len(out) < n:
        if split_of(s) == "test":
            out.append(s)
        s += 1
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="sdavs")
    ap.add_argument("--scenes", type=int, default=30)
    ap.add_argument("--first-seed", type=int, default=100_000)
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--set", action="append", default=[], help="method option KEY=VALUE")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--conditions", default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(2)
    opts = parse_overrides(args.set, *get_method(args.method).option_classes()[:1])
    seg = load_segmenter(args.method, args.checkpoint, **opts)
    cfg = SynthConfig(preset="s4")
    seeds = test_seeds(args.scenes, args.first_seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = write_avsbench(Path(tmp) / "s4", (generate_scene(cfg, s).to_clip() for s in seeds), "s4")
        rep = evaluate_robust(seg, AVSBenchDataset(root, split="test"), args.conditions, seed=args.seed)
    res: dict = {"method": args.method, "seeds": [seeds[0], seeds[-1]], "clips": rep.clips, "score": rep.score}
    for c, r in rep.results.items():
        row: dict = {"clips": r.clips, "skipped": r.skipped_clips, "frames": r.frames, "fps": r.frames_per_second}
        if isinstance(r, OriginalResult):
            row |= {"pooled_j": r.pooled_j, "pooled_f": r.pooled_f, "empty_on_empty": r.empty_predicted_on_empty}
        elif isinstance(r, NegativeResult):
            row |= {
                "negative_empty": r.negative_empty,
                "by_source": {k: v.negative_empty for k, v in r.by_source.items()},
            }
        elif isinstance(r, SwapResult):
            row |= {"moved": r.swap_moved, "stayed": r.swap_stayed, "pooled_j": r.pooled_j}
        res[c] = row
    print(json.dumps(to_jsonable(res), indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(to_jsonable(rep.to_dict()), indent=1))


if __name__ == "__main__":
    main()
