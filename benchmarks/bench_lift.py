"""3D/4D sound masks over many scenes (issue 7): reconstruction quality and time, lifted-mask metrics.

For every scene folder under ``--data`` whose ``index.csv`` split is ``--split`` (default ``test``), as one
``soundmask batch lift`` (:mod:`soundmask.pipeline.batch`: the scenes run side by side on a local Ray, or on a
cluster with ``--address``; ``--serial`` runs them one after another in this process):

1. reconstruct (or reuse ``<models>/<scene>.ply``), recording test-view PSNR and seconds;
2. ``run_lift`` with ground-truth 2D masks (``--method gt``) or a 2D method end to end;
3. aggregate by the EchoSegnet protocol (per-scene AVSBench mIoU / F over the test views, unweighted mean over
   scenes) plus pooled J/F over all test views and the mean 3D centroid error.

A scene that fails is reported (its one-line error) and left out of the means; ``--out`` keeps each scene's result
so that a re-run skips finished scenes (default: a temporary folder, nothing kept).

    .venv/bin/python benchmarks/bench_lift.py --data data/sc3 --method gt --models data/models --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from soundmask.pipeline.batch import BatchConfig, run_batch
from soundmask.pipeline.batch_jobs import LiftJobConfig
from soundmask.pipeline.lift3d import LiftConfig
from soundmask.splat.train import ReconstructConfig

TABLE_ONLY = ("item", "input", "status", "error", "seconds", "cached", "num_tags")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, action="append", required=True, help="generated scenes (repeatable)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--method", default="gt", help="gt (ground-truth 2D masks) or a 2D method name")
    ap.add_argument("--models", type=Path, default=None, help="cache folder for reconstructions")
    ap.add_argument("--iterations", type=int, default=None)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], help="LiftConfig KEY=VALUE")
    ap.add_argument("--recon-set", action="append", default=[], help="ReconstructConfig KEY=VALUE (e.g. motion=basis)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None, help="batch folder (per-scene cache, batch.csv/json)")
    ap.add_argument("--address", default="", help="Ray cluster (HEAD:6379); default: a local Ray on all cores")
    ap.add_argument("--cpus-per-item", type=int, default=1, help="CPUs (torch threads) per scene")
    ap.add_argument("--serial", action="store_true", help="one scene after another in this process, without Ray")
    a = ap.parse_args()
    from soundmask.config import parse_overrides

    extra = parse_overrides(a.set, LiftConfig)
    cfg = LiftConfig(**{"use_gt_2d": a.method == "gt", "method": a.method if a.method != "gt" else "sdavs", **extra})
    rextra = parse_overrides(a.recon_set, ReconstructConfig)
    rcfg = ReconstructConfig(**({"iterations": a.iterations} if a.iterations else {}), **rextra)
    options = LiftJobConfig(models=str(a.models) if a.models else "", lift=cfg, reconstruct=rcfg)
    bcfg = BatchConfig(address=a.address, cpus_per_item=a.cpus_per_item, serial=a.serial, split=a.split, limit=a.limit)

    def progress(done: int, total: int, r) -> None:
        if r.ok:
            print(json.dumps({k: v for k, v in r.row().items() if k not in TABLE_ONLY}), flush=True)
        else:
            print(f"{r.name}: error: {r.error}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="bench_lift.") as tmp:
        res = run_batch("lift", a.data, a.out or Path(tmp), options, bcfg, progress=progress)
    s = res.summary
    rows = [{k: v for k, v in r.row().items() if k not in TABLE_ONLY} for r in res.results if r.ok]
    keys = ("miou", "fscore", "pooled_j", "pooled_f", "centroid_error_m", "centroid_failures", "track_error_m_median",
            "psnr_test_mean", "psnr_test_min", "reconstruct_seconds_mean", "reconstruct_seconds_max",
            "lift_seconds_mean")  # fmt: skip
    summary = {
        "method": a.method,
        "scenes": len(rows),
        **{k: s.get(k) for k in keys},
        "failed": [{"scene": r.name, "error": r.error} for r in res.failed],
        "per_scene": rows,
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "per_scene"}, indent=1))
    if a.json:
        a.json.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
