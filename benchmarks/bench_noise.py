"""Noise robustness of a 2D method (SDAVS paper ``004_*``, Table IX): evaluate an AVSBench-layout split with the
clean audio, with Brownian noise and with a real traffic recording mixed in over the whole clip at scale 0.1.

Noise is generated to the clip's exact length, normalised to unit peak, multiplied by ``--scale`` and added to
every channel. Brownian noise is integrated white noise (strong low frequencies, like wind or machinery). The
real recording is Tux Paint's ``vehicles/emergency/firetruck.ogg`` (Debian ``tuxpaint-stamps-default``, GPL-2:
an engine and siren; the paper used a moving train, which no installed package has), looped to the clip length.

    .venv/bin/python benchmarks/bench_noise.py --method sdavs [--checkpoint CKPT] --data DIR [--split test]
        [--set KEY=VALUE] [--json F]

Run it once per checkpoint (e.g. with and without SNRP: train with ``--set snrp=false``) and compare the drops.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from soundmask.avs2d import get_method, load_segmenter
from soundmask.avs2d.evaluate import evaluate
from soundmask.config import parse_overrides
from soundmask.data.avsbench import AVSBenchDataset

TRAFFIC = Path("/usr/share/tuxpaint/stamps/vehicles/emergency/firetruck.ogg")


def brownian(n: int, rng: np.random.Generator) -> np.ndarray:
    x = np.cumsum(rng.standard_normal(n))
    x -= np.linspace(x[0], x[-1], n)  # no drift: starts and ends at 0
    return x / max(1e-9, np.abs(x).max())


def recording(n: int, sr: int) -> np.ndarray:
    from soundmask.audio.io import load_audio

    x = load_audio(TRAFFIC, sr=sr, mono=True)[0][0]
    x = np.tile(x, int(np.ceil(n / len(x))))[:n]
    return x / max(1e-9, np.abs(x).max())


class Noisy:
    """A dataset whose clips carry ``kind`` noise at ``scale`` (deterministic per clip)."""

    def __init__(self, ds, kind: str, scale: float) -> None:
        self.ds, self.kind, self.scale = ds, kind, scale

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int):
        c = self.ds[i]
        n = c.audio.shape[-1]
        noise = brownian(n, np.random.default_rng(i)) if self.kind == "brownian" else recording(n, c.sample_rate)
        return replace(c, audio=(c.audio + self.scale * noise[None]).astype(np.float32))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="sdavs")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(2)
    opts = parse_overrides(args.set, *get_method(args.method).option_classes()[:1])
    seg = load_segmenter(args.method, args.checkpoint, **opts)
    ds = AVSBenchDataset(args.data, split=args.split)
    res = {
        "method": args.method,
        "checkpoint": args.checkpoint,
        "data": args.data,
        "split": args.split,
        "scale": args.scale,
    }
    for kind in ("clean", "brownian", "traffic"):
        data = ds if kind == "clean" else Noisy(ds, kind, args.scale)
        r = evaluate(seg, data, data=args.data, split=args.split)
        res[kind] = {"pooled_j": r.pooled_j, "pooled_f": r.pooled_f, "miou": r.miou, "fscore": r.fscore}
        print(kind, json.dumps(res[kind]), flush=True)
    for kind in ("brownian", "traffic"):
        res[f"{kind}_drop_j"] = res["clean"]["pooled_j"] - res[kind]["pooled_j"]
    print(json.dumps(res, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
