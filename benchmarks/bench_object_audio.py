"""Per-object audio and tags (issue 29, item 4): label accuracy and SI-SDR of each found object's own signal.

For each finished ``soundmask demo --seed S --out DIR`` folder (its cache holds the model and the 2D masks), the
lifting is run again on that model with each ``--separation`` method of ``--methods`` (default: mask), and scored
against the scene's ground truth: ``label_accuracy`` (tags from each object's own signal) and
``label_accuracy_mixture`` (the same objects tagged from the mixture; metrics/objects.py), ``separation_si_sdr_db``
and ``separation_si_sdri_db`` (metrics/separation.py). A scene written before per-object audio existed is generated
again (a scene is a pure function of preset and seed) into ``--scenes`` to get its stems.

``oracle`` rows take the binding out of the measurement: every sounding object of the ground truth is a "tag" at
its own position, sounding in the frame windows its events cover for at least a quarter of the window; they show
what the extraction and the tagging do when the objects and their activity are right.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_object_audio.py /work/obj/demo* --scenes /tmp/oa_scenes
    PYTHONPATH=. .venv/bin/python benchmarks/bench_object_audio.py /work/obj/demo* --methods mvdr,das --oracle-only
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np


def scene_dir(folder: Path, scenes: Path) -> Path:
    from soundmask.synth.config import SynthConfig
    from soundmask.synth.generator import generate_dataset

    d = next(p for p in (folder / "scene").iterdir() if p.is_dir())
    if (d / "audio" / "objects").is_dir():
        return d
    cfg = json.loads((folder / "metrics.json").read_text())["config"]
    out = scenes / d.name
    if not (out / "audio" / "objects").is_dir():
        generate_dataset(
            SynthConfig(preset=cfg["preset"], width=cfg["width"], frames=cfg["frames"]), scenes, 1, cfg["seed"]
        )
    return out


def specific(tags: list[Any]) -> list[Any]:
    """The tags relabelled with their best-scored class outside AUDIOSET_GENERIC (scores must hold every class)."""
    from dataclasses import replace

    from soundmask.audio.audioset import AUDIOSET_GENERIC

    out = []
    for t in tags:
        best = [n for n, _ in sorted(t.scores.items(), key=lambda p: -p[1]) if n not in AUDIOSET_GENERIC]
        out.append(replace(t, label=best[0] if best else t.label))
    return out


def oracle(scene: Any, fa: Any, method: str) -> dict[str, Any]:
    """Ground-truth objects and activity → own signals and tags → label accuracy and SI-SDR."""
    from soundmask.lift.separate import separate_objects, tag_objects
    from soundmask.lift.tags import SoundTag
    from soundmask.metrics.objects import score_objects
    from soundmask.metrics.scene3d import _separation

    ids = sorted({e.object_id for e in scene.sound_events})
    objs = {o.id: o for o in scene.objects}
    F = len(fa.windows)
    act = np.zeros((F, len(ids)), bool)
    for k, i in enumerate(ids):
        for f, w in enumerate(fa.windows):
            cover = sum(
                max(0.0, min(e.end, w.end) - max(e.start, w.start)) for e in scene.sound_events if e.object_id == i
            )
            act[f, k] = cover >= 0.25 * (w.end - w.start)
    pos = np.stack([np.asarray(objs[i].positions, np.float64).mean(axis=0) for i in ids])
    positions = np.repeat(pos[None], F, axis=0)
    mics = np.stack([np.stack([np.asarray(f.mic_left), np.asarray(f.mic_right)]) for f in scene.frames])
    tags = []
    for k, i in enumerate(ids):
        tg = [fa.taggings[f] for f in np.flatnonzero(act[:, k]) if fa.taggings[f] is not None]
        label, scores = "sound", {}
        if tg:
            s = np.mean([t.scores for t in tg], axis=0)
            label = tg[0].labels[int(np.argmax(s))]
            scores = {str(n): float(v) for n, v in zip(tg[0].labels, s, strict=True)}
        tags.append(SoundTag(i, np.zeros(0, np.int64), label, scores, centroid=pos[k]))
    mix_acc = score_objects(scene, tags).label_accuracy
    sep = separate_objects(fa.stereo, fa.sample_rate, fa.windows, act, positions, ids, mics, method=method)  # type: ignore[arg-type]
    own = tag_objects(tags, sep, fa.windows, top_k=10_000)
    sc = score_objects(scene, own)
    out = {
        "label_accuracy": sc.label_accuracy,
        "label_accuracy_mixture": mix_acc,
        "found": sc.objects_found,
        "labels": [t.label for t in own],
        "labels_mixture": [t.label for t in tags],
        # the same, labelled by the best class that is not a generic one (Music, Animal, ...: AUDIOSET_GENERIC)
        "label_accuracy_specific": score_objects(scene, specific(own)).label_accuracy,
        "label_accuracy_mixture_specific": score_objects(scene, specific(tags)).label_accuracy,
        "labels_specific": [t.label for t in specific(own)],
    }
    out.update(_separation(scene, own, sc.pairs))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--scenes", type=Path, default=Path("/tmp/object_audio_scenes"))
    ap.add_argument("--methods", default="mask")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--oracle-only", action="store_true", help="skip the lifting: only the oracle rows")
    args = ap.parse_args()

    from soundmask.audio.cues import frame_audio
    from soundmask.pipeline.lift3d import LiftConfig, run_lift
    from soundmask.splat.io import load_model
    from soundmask.splat.train import load_views

    rows = []
    for folder in args.folders:
        sd = scene_dir(folder, args.scenes)
        views = load_views(sd)
        scene = views.scene
        fa = frame_audio(scene, views.times)
        with np.load(folder / "cache" / "masks2d.npz") as z:
            masks = z["masks"].astype(bool)
        model = load_model(folder / "cache" / "model.ply")
        for method in args.methods.split(","):
            if args.oracle_only:
                row = {"scene": scene.name, "method": method, "oracle": oracle(scene, fa, method)}
                for k in ("found", "label_accuracy", "label_accuracy_mixture"):
                    row[k] = None
                row["separation_si_sdr_db"] = row["separation_si_sdri_db"] = None
                rows.append(row)
                print(json.dumps(row), flush=True)
                continue
            res = run_lift(
                sd,
                LiftConfig(separation=method, render_views="none"),  # type: ignore[arg-type]
                model=model,
                audio=fa,
                masks_2d={i: masks[i] for i in range(len(masks))},
            )
            m = res.metrics
            row = {
                "scene": scene.name,
                "method": method,
                "found": m.get("objects_found"),
                "sounding": (m.get("objects") or {}).get("sounding_objects"),
                "label_accuracy": m.get("label_accuracy"),
                "label_accuracy_mixture": m.get("label_accuracy_mixture"),
                "separation_si_sdr_db": m.get("separation_si_sdr_db"),
                "separation_si_sdri_db": m.get("separation_si_sdri_db"),
                "labels": [t.label for t in res.sound_scene.tags],
                "separation_objects": m.get("separation_objects") or [],
                "oracle": oracle(scene, fa, method),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))

    def mean(xs: list[Any]) -> str:
        v = [x for x in xs if x is not None]
        return f"{np.mean(v):+.2f} ({len(v)})" if v else "n/a"

    def pooled(r: list[dict[str, Any]], key: str) -> str:
        found = sum(x["found"] or 0 for x in r if x[key] is not None)
        right = sum(round((x[key] or 0) * (x["found"] or 0)) for x in r if x[key] is not None)
        return f"{right}/{found}"

    def per_object(r: list[dict[str, Any]], key: str) -> str:
        v = [o[key] for x in r for o in x.get("separation_objects") or [] if o.get(key) is not None]
        return f"{np.mean(v):+.2f} (median {np.median(v):+.2f}, {len(v)} objects)" if v else "n/a"

    print("\nper object: SI-SDR | SI-SDRi (lift); SI-SDR | SI-SDRi (oracle)")
    for method in args.methods.split(","):
        r = [x for x in rows if x["method"] == method]
        o = [x["oracle"] for x in r]
        print(
            f"{method}: {per_object(r, 'si_sdr_db')} | {per_object(r, 'si_sdri_db')}; "
            f"{per_object(o, 'si_sdr_db')} | {per_object(o, 'si_sdri_db')}"
        )
    print(
        "\nmethod | labels right (own / mixture) | SI-SDR dB | SI-SDRi dB | oracle labels (own / mixture) | oracle dB"
    )
    for method in args.methods.split(","):
        r = [x for x in rows if x["method"] == method]
        o = [x["oracle"] for x in r]
        print(
            f"  oracle, best non-generic class: own {pooled(o, 'label_accuracy_specific')}, mixture "
            f"{pooled(o, 'label_accuracy_mixture_specific')}"
        )
        print(
            f"{method} | {pooled(r, 'label_accuracy')} / {pooled(r, 'label_accuracy_mixture')} | "
            f"{mean([x['separation_si_sdr_db'] for x in r])} | {mean([x['separation_si_sdri_db'] for x in r])} | "
            f"{pooled(o, 'label_accuracy')} / {pooled(o, 'label_accuracy_mixture')} | "
            f"{mean([x.get('separation_si_sdr_db') for x in o])}, "
            f"SI-SDRi {mean([x.get('separation_si_sdri_db') for x in o])}"
        )


if __name__ == "__main__":
    main()
