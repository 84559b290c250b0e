"""Audio front-end quality and speed (issue 4), three measurements:

1. TDoA and direction on generator audio: ``scene3d`` scenes with RT60 ≤ 0.3 s, every 1-s frame window where
   exactly one object sounds for the whole window; :func:`soundmask.audio.segment_tdoa` against the geometry in
   ``scene.json``. Reported over all windows and per source kind (recording / speech = broadband, gm, noise).
2. YAMNet on the real recordings of the sound library (Tux Paint OGGs, espeak-ng speech): top-1 / top-5 per
   category through ``soundmask.audio.audioset.CATEGORY_TO_AUDIOSET``.
3. Speed of the whole front-end (:func:`soundmask.audio.analyze.analyze`: tagger + chunking + TDoA) on 60 s of
   44.1 kHz stereo, warm (models loaded), with and without silero-vad; target ≥ 100× real time.

    .venv/bin/python benchmarks/bench_audio.py [--scenes 6] [--json F]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from soundmask.audio.analyze import analyze
from soundmask.audio.audioset import category_rank
from soundmask.audio.embed import get_embedder
from soundmask.audio.tdoa import direction_from_tdoa, segment_tdoa
from soundmask.audio.types import Segment
from soundmask.synth.acoustics import MIC_SPACING, geometric_tdoa
from soundmask.synth.generator import SynthConfig, generate_scene
from soundmask.synth.sounds import SoundLibrary


def tdoa_on_generator(n_scenes: int, first_seed: int = 2000) -> dict:
    errs: dict[str, list[float]] = defaultdict(list)
    dir_errs: dict[str, list[float]] = defaultdict(list)
    for seed in range(first_seed, first_seed + n_scenes):
        sc = generate_scene(SynthConfig(preset="scene3d", width=32, rt60_max=0.3), seed)
        scene, sr = sc.scene, sc.scene.sample_rate
        segs, truth, kinds = [], [], []
        for f in scene.frames:
            full = [e for e in scene.sound_events if e.start <= f.time and e.end >= f.time + 1.0]
            if len(scene.sounding_ids(f.time, f.time + 1.0)) != 1 or len(full) != 1:
                continue
            obj = scene.object(full[0].object_id)
            segs.append(Segment(f.time + 0.01, f.time + 0.99))
            truth.append(geometric_tdoa(obj.positions[0], f.mic_left, f.mic_right))
            kinds.append(full[0].source.split(":")[0])
        for d, t, k in zip(segment_tdoa(sc.stereo, sr, segs, spacing=MIC_SPACING), truth, kinds, strict=True):
            if np.isnan(d.tau):
                continue
            for key in ("all", k, "broadband" if k in ("tuxpaint", "speech") else "tonal/other"):
                errs[key].append(abs(d.tau - t) * 1e6)
                dir_errs[key].append(abs(np.degrees(direction_from_tdoa(d.tau) - direction_from_tdoa(t))))
    return {
        k: {
            "windows": len(v),
            "median_us": round(float(np.median(v)), 2),
            "p90_us": round(float(np.percentile(v, 90)), 2),
            "direction_median_deg": round(float(np.median(dir_errs[k])), 3),
            "direction_p90_deg": round(float(np.percentile(dir_errs[k], 90)), 3),
        }
        for k, v in sorted(errs.items())
    }


def yamnet_on_recordings(seconds: float = 3.0, seeds: int = 2) -> dict:
    lib = SoundLibrary()
    yam = get_embedder("yamnet")
    out = {}
    for cat in lib.categories():
        srcs = lib.sources(cat, kinds=("recording", "speech"))
        if not srcs:
            continue
        ranks = []
        for s in range(seeds):
            rng = np.random.default_rng(s)
            src = srcs[s % len(srcs)]
            x = lib.render(src, seconds, 16000, rng)
            tag = yam.tag(x, 16000)[0]
            rank = category_rank(cat, tag.labels, tag.scores)
            if rank is None:  # no AudioSet class for this category
                break
            ranks.append(rank)
        if ranks:
            r = np.array(ranks)
            out[cat] = {"top1": float(np.mean(r == 0)), "top5": float(np.mean(r < 5))}
    return out


def speed(seconds: float = 60.0) -> dict:
    sc = generate_scene(SynthConfig(preset="scene3d", width=32, frames=int(seconds)), 7)
    x, sr = sc.stereo, sc.scene.sample_rate
    analyze(x[:, : sr * 5], sr)  # warm up: load YAMNet and silero
    res = {}
    for speech in (False, "auto"):
        t = []
        for _ in range(3):
            t0 = time.perf_counter()
            analyze(x, sr, speech=speech)
            t.append(time.perf_counter() - t0)
        res["with_silero" if speech else "without_silero"] = {
            "seconds": round(min(t), 3),
            "x_real_time": round(seconds / min(t), 1),
        }
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=6)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    summary = {"cpus": os.cpu_count(), "tdoa_generator_rt60_le_0.3": tdoa_on_generator(a.scenes)}
    print(json.dumps(summary["tdoa_generator_rt60_le_0.3"], indent=1))
    ym = yamnet_on_recordings()
    summary["yamnet_recordings"] = {
        "categories": len(ym),
        "mean_top1": round(np.mean([v["top1"] for v in ym.values()]), 3),
        "mean_top5": round(np.mean([v["top5"] for v in ym.values()]), 3),
        "per_category": ym,
    }
    print(json.dumps({k: v for k, v in summary["yamnet_recordings"].items() if k != "per_category"}))
    summary["speed_60s_stereo"] = speed()
    print(json.dumps(summary["speed_60s_stereo"]))
    if a.json:
        a.json.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
