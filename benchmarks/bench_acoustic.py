"""Acoustic evidence per object on generated scenes (issue 29, items 1, 2, 6): with the scene's own object
positions as candidates, how often the steered response picks the sounding object.

For every scene folder given (a generated scene: ``scene.json`` + ``audio/stereo.wav``), frame windows are grouped
into *events* (maximal runs of consecutive frames with the same set of sounding objects). Reported:

* single-source events: accuracy of the best-scoring object, per response model (direct / images / soft);
* two-source windows: both sources found (the best two, or the best then the best after taking it out by
  nulling or DUET bin removal).

Separation (SI-SDR against the generator's per-object stems) is ``benchmarks/bench_object_audio.py``.

    .venv/bin/python benchmarks/bench_acoustic.py /work/obj/demo*/scene/scene3d_* --json out.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from soundmask.audio.evidence import (
    object_evidence,
    predicted_delays,
    window_responses,
    window_spectra,
)
from soundmask.audio.types import Segment
from soundmask.data.scene import load_stereo, read_scene


def events_of(sounding: list[tuple[int, ...]]) -> list[tuple[tuple[int, ...], list[int]]]:
    """Runs of consecutive frames with the same non-empty sounding set: [(ids, frames)]."""
    out: list[tuple[tuple[int, ...], list[int]]] = []
    for i, s in enumerate(sounding):
        if s and out and out[-1][0] == s and out[-1][1][-1] == i - 1:
            out[-1][1].append(i)
        elif s:
            out.append((s, [i]))
    return out


def scene_case(path: Path, rng: np.random.Generator) -> dict:
    scene = read_scene(path)
    stereo = load_stereo(scene)
    sr = scene.sample_rate
    T = len(scene.frames)
    win = 1.0 / scene.fps
    dur = stereo.shape[1] / sr
    windows = [Segment(min(f.time, dur), min(f.time + win, dur)) for f in scene.frames]
    mics = np.stack([np.stack([f.mic_left, f.mic_right]) for f in scene.frames])
    ids = [o.id for o in scene.objects]
    pos = {o.id: np.stack([o.position_at(i) for i in range(T)]) for o in scene.objects}
    size = np.asarray(scene.room["size"], dtype=np.float64)
    base = 0.3 + rng.uniform(0.0, 1.0, (256, 3)) * (size - 0.6)  # off-object points, uniform in the room
    sounding = [tuple(sorted(int(x) for x in f.extra.get("sounding", []))) for f in scene.frames]
    events = events_of(sounding)
    seg = np.full(T, -1)
    for e, (_, frames) in enumerate(events):
        seg[frames] = e
    spectra = window_spectra(stereo, sr, windows)
    c = scene.speed_of_sound
    cands = [pos[i].mean(axis=0, keepdims=True) for i in ids]  # static objects: one point each
    n_pts = [1] * len(ids)
    pts = np.concatenate(cands)
    res: dict = {"scene": scene.name, "rt60": scene.room.get("rt60"), "single": {}, "window": {}, "double": {}}
    planes = [0.0, float(size[2])]
    groups = [fr for _, fr in events]

    def zscores(sp, model="direct", grp=groups):
        r = window_responses(sp, mics, pts, model=model, planes=planes, c=c)
        bl = window_responses(sp, mics, base, model=model, planes=planes, c=c)
        return np.nan_to_num(object_evidence(r, grp, n_pts, bl).z(), nan=-9.0)

    for model in ("direct", "images", "soft"):
        z = zscores(spectra, model)
        res["single"][model] = [ids[int(np.argmax(z[e]))] == s[0] for e, (s, _) in enumerate(events) if len(s) == 1]
    # single-source windows scored over a sliding neighbourhood of +-h windows (no event boundaries known)
    one = [v for v in range(T) if len(sounding[v]) == 1 and spectra.audible[v]]
    for h in (0, 1, 2):
        z = zscores(spectra, "direct", [np.arange(max(0, v - h), min(T, v + h + 1)) for v in one])
        res["window"][h] = [ids[int(np.argmax(z[j]))] == sounding[v][0] for j, v in enumerate(one)]
    # two sources at once: events of two, scored over the event's windows like the single-source ones
    pairs = [(e, s, fr) for e, (s, fr) in enumerate(events) if len(s) == 2]
    two = [v for _, _, fr in pairs for v in fr if spectra.audible[v]]
    res["double"] = {"windows": len(two)}
    if pairs:
        z = zscores(spectra)
        first = {e: int(np.argmax(z[e])) for e, _, _ in pairs}
        truth = {e: {ids.index(x) for x in s} for e, s, _ in pairs}
        n_win = {e: sum(bool(spectra.audible[v]) for v in fr) for e, _, fr in pairs}

        def per_window(ok: dict[int, bool]) -> list[bool]:
            return [ok[e] for e, _, _ in pairs for _ in range(n_win[e])]

        res["double"]["top2"] = per_window({e: set(np.argsort(-z[e])[:2]) == truth[e] for e, _, _ in pairs})
        res["double"]["first_right"] = per_window({e: first[e] in truth[e] for e, _, _ in pairs})
        for mode in ("null", "duet"):
            remove = np.full(T, np.nan)
            for e, _, fr in pairs:
                for v in fr:
                    remove[v] = predicted_delays(cands[first[e]][0], mics[v, 0], mics[v, 1], c)
            z2 = zscores(window_spectra(stereo, sr, windows, remove=remove, remove_mode=mode))
            ok = {}
            for e, _, _ in pairs:
                zz = z2[e].copy()
                zz[first[e]] = -np.inf
                ok[e] = {first[e], int(np.argmax(zz))} == truth[e]
            res["double"][mode] = per_window(ok)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenes", type=Path, nargs="+")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    rows = []
    for p in args.scenes:
        r = scene_case(p, rng)
        rows.append(r)
        single = {m: f"{np.mean(h):.2f} ({sum(h)}/{len(h)})" for m, h in r["single"].items() if h}
        single.update({f"+-{w}": f"{np.mean(h):.2f}" for w, h in r["window"].items() if h})
        d = r["double"]
        dbl = {k: f"{np.mean(v):.2f}" for k, v in d.items() if isinstance(v, list) and v}
        print(f"{r['scene']} rt60={r['rt60']:.2f} single {single} double[{d['windows']}] {dbl}", flush=True)
    print("--- all scenes")
    for m in ("direct", "images", "soft"):
        h = [x for r in rows for x in r["single"][m]]
        print(f"single-source events, {m}: {np.mean(h):.3f} ({sum(h)}/{len(h)})")
    for w in (0, 1, 2):
        h = [x for r in rows for x in r["window"][w]]
        print(f"single-source windows, +-{w} windows: {np.mean(h):.3f} ({sum(h)}/{len(h)})")
    for k in ("top2", "first_right", "null", "duet"):
        h = [x for r in rows for x in r["double"].get(k, [])]
        if h:
            print(f"two-source windows, {k}: {np.mean(h):.3f} (n={len(h)}, median {np.median(h):.2f})")
    if args.json:
        args.json.write_text(json.dumps(rows, default=lambda o: bool(o) if isinstance(o, np.bool_) else float(o)))


if __name__ == "__main__":
    main()
