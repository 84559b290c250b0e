"""Throughput of ``soundmask batch`` (issue 32): N scenes reconstructed + lifted on a local Ray against the same
scenes split over 2 independent processes (each ``soundmask batch lift --serial`` over its half), both with the
same ``--cpus-per-item``; the per-scene metrics of the Ray run must equal those serial runs' exactly.

Target: Ray's throughput within 10 % of the 2 processes' (ratio = their wall time / Ray's wall time >= 0.9), on an
otherwise idle machine. Both sides are timed as whole commands (start-up included) with empty output folders.

    .venv/bin/python benchmarks/bench_batch.py --scenes 8                  # generates 8 scene3d scenes first
    .venv/bin/python benchmarks/bench_batch.py --data data/sc3 --scenes 8 --split all
    .venv/bin/python benchmarks/bench_batch.py --scenes 2 --iterations 30 --synth-set width=64 --synth-set frames=10
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from soundmask.pipeline.batch import find_items

SOUNDMASK = [sys.executable, "-m", "soundmask.cli"]
TIMING = {"seconds", "lift_seconds", "reconstruct_seconds", "cached"}


def _sets(pairs: list[str]) -> list[str]:
    return [a for p in pairs for a in ("--set", p)]


def _rows(out: Path) -> dict[str, dict]:
    items = json.loads((out / "batch.json").read_text())["items"]
    return {r["item"]: {k: v for k, v in r.items() if k not in TIMING} for r in items}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=8, help="number of scenes N")
    ap.add_argument("--data", type=Path, default=None, help="folder of scenes (default: generate N with batch synth)")
    ap.add_argument("--split", default="all", help="split of --data's index.csv")
    ap.add_argument("--iterations", type=int, default=None, help="reconstruction steps (default: the config's)")
    ap.add_argument("--method", default="gt", help="gt (ground-truth 2D masks) or a 2D method name")
    ap.add_argument("--cpus-per-item", type=int, default=1)
    ap.add_argument("--processes", type=int, default=2, help="independent processes to compare with (2)")
    ap.add_argument("--synth-set", action="append", default=[], help="SynthConfig KEY=VALUE for generated scenes")
    ap.add_argument("--set", action="append", default=[], help="lift job KEY=VALUE")
    ap.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_batch.") as tmp:
        work = a.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        data = a.data
        if data is None:
            data = work / "synth" / "scenes"
            r = subprocess.run([*SOUNDMASK, "batch", "synth", f"0-{a.scenes - 1}", "-o", str(work / "synth"),
                                *_sets(a.synth_set)])  # fmt: skip
            if r.returncode:
                sys.exit(f"generating the scenes failed ({r.returncode})")
        scenes = [Path(i.input) for i in find_items("scene", [data], a.split, a.scenes)]
        if len(scenes) < a.scenes:
            sys.exit(f"{data}: only {len(scenes)} scenes in split {a.split}")
        opts = [f"use_gt_2d={a.method == 'gt'}"] + ([f"method={a.method}"] if a.method != "gt" else [])
        opts += [f"iterations={a.iterations}"] if a.iterations else []
        opts += a.set
        common = [*_sets(opts), "--cpus-per-item", str(a.cpus_per_item), "--no-resume"]
        stamp = f"{time.time_ns()}"

        # k independent processes, each serial over its share of the scenes
        halves = [scenes[k :: a.processes] for k in range(a.processes)]
        outs = [work / f"proc{k}-{stamp}" for k in range(a.processes)]
        t0 = time.perf_counter()
        procs = [
            subprocess.Popen(
                [*SOUNDMASK, "batch", "lift", *map(str, h), "-o", str(o), "--serial", *common],
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
            for h, o in zip(halves, outs, strict=True)
        ]
        codes = [p.wait() for p in procs]
        t_procs = time.perf_counter() - t0
        if any(codes):
            sys.exit(f"a serial process failed: exit codes {codes}")

        # one soundmask batch on a local Ray over all the scenes
        ray_out = work / f"ray-{stamp}"
        t0 = time.perf_counter()
        r = subprocess.run([*SOUNDMASK, "batch", "lift", *map(str, scenes), "-o", str(ray_out), *common],
                           stdout=subprocess.DEVNULL)  # fmt: skip
        t_ray = time.perf_counter() - t0
        if r.returncode:
            sys.exit(f"soundmask batch failed ({r.returncode})")

        serial: dict[str, dict] = {}
        for o in outs:
            serial.update(_rows(o))
        batch = _rows(ray_out)
        errors = [n for n, row in batch.items() if row["status"] != "ok"]
        differ = sorted(n for n in batch if batch[n] != serial.get(n))
        ratio = t_procs / t_ray
        result = {
            "scenes": len(scenes),
            "iterations": a.iterations,
            "cpus_per_item": a.cpus_per_item,
            "processes_seconds": round(t_procs, 2),
            "ray_seconds": round(t_ray, 2),
            "throughput_ratio": round(ratio, 4),
            "within_10_percent": ratio >= 0.9,
            "identical_per_scene_metrics": not differ and len(batch) == len(serial),
            "differing_scenes": differ,
            "failed_scenes": errors,
            "ray_summary": json.loads((ray_out / "batch.json").read_text())["summary"],
        }
    print(json.dumps(result, indent=1))
    print(
        f"{len(scenes)} scenes: {a.processes} processes {t_procs:.1f} s, soundmask batch (Ray) {t_ray:.1f} s: "
        f"throughput ratio {ratio:.3f} ({'within' if ratio >= 0.9 else 'NOT within'} 10 %); per-scene metrics "
        + ("identical" if result["identical_per_scene_metrics"] else f"DIFFER: {differ}")
    )
    if a.json:
        a.json.write_text(json.dumps(result, indent=1))
    if differ or errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
