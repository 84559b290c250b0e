"""Scene-generator speed: a ``scene3d`` scene (60 frames at 256², 60 s of 44.1 kHz stereo) end to end, per stage.

    .venv/bin/python benchmarks/bench_synth.py [--preset scene3d] [--seeds 3] [--frames 60] [--size 256] [--json F]

Target (issue 3): ≤ 20 s per scene on 2 cores, audio and writing included. The first scene also pays for
one-time work (furniture catalogue, sound library, EGL context); it is reported separately as ``warm-up``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from soundmask.data.scene import write_scene
from soundmask.synth.generator import SynthConfig, generate_scene


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="scene3d")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=1000)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    cfg = SynthConfig(preset=a.preset, width=a.size, frames=a.frames)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, seed in enumerate(range(a.first_seed, a.first_seed + a.seeds)):
            t0 = time.perf_counter()
            sc = generate_scene(cfg, seed)
            t1 = time.perf_counter()
            write_scene(
                Path(tmp) / sc.name, sc.scene, sc.rgb, sc.instances, sc.depth, sc.sound_masks, sc.stereo, sc.mono
            )
            t2 = time.perf_counter()
            row = {
                "seed": seed,
                "warm_up": k == 0,
                **{s: round(v, 3) for s, v in sc.timings.items()},
                "write": round(t2 - t1, 3),
                "total": round(t2 - t0, 3),
                "objects": len(sc.scene.objects),
                "sounding": sum(o.sounding for o in sc.scene.objects),
                "rt60": sc.scene.room["rt60"],
            }
            rows.append(row)
            print(json.dumps(row))
    steady = [r["total"] for r in rows if not r["warm_up"]] or [rows[0]["total"]]
    summary = {
        "preset": a.preset,
        "frames": a.frames,
        "size": a.size,
        "cpus": os.cpu_count(),
        "median_total_s": round(statistics.median(steady), 3),
        "max_total_s": round(max(steady), 3),
        "warm_up_total_s": rows[0]["total"],
        "target_s": 20.0,
        "rows": rows,
    }
    print(
        f"{a.preset} {a.frames} frames {a.size}²: median {summary['median_total_s']} s, "
        f"max {summary['max_total_s']} s per scene (first scene {rows[0]['total']} s incl. warm-up); target ≤ 20 s"
    )
    if a.json:
        a.json.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
