"""Pictures for the report: per-object coloured 2D sound masks, 3D sound-mask heat maps on novel views, and the
audio timeline (waveform, spectrogram, activity segments, GT events vs. predicted tags, TDoA).

Plots use matplotlib's Agg backend (no display needed); images are uint8 RGB arrays or PNG files.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from soundmask.data.io import atomic_path, write_json

__all__ = ["PALETTE", "audio_timeline_png", "heat_overlay", "object_overlay", "orbit_heatmaps", "tag_maps"]

# one colour per sounding object (tag order); colour-blind-safe (Okabe–Ito)
PALETTE = ((230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178), (213, 94, 0), (204, 121, 167))
UNASSIGNED = (235, 235, 235)
GT_COLOR = (255, 40, 40)


def colour(k: int) -> tuple[int, int, int]:
    return PALETTE[k % len(PALETTE)]


def tag_maps(sound: Any, camera: Any, time: float | None, backend: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """(K, H, W) rendered coverage of each tag's Gaussians (occluded by the rest of the scene) and the (H, W, 3)
    RGB render, from ``camera`` at ``time``."""
    from soundmask.splat.render import render

    g = sound.gaussians
    K = len(sound.tags)
    feats = torch.zeros(len(g), max(K, 1))
    for k, t in enumerate(sound.tags):
        feats[torch.as_tensor(np.asarray(t.index, np.int64)), k] = 1.0
    with torch.no_grad():
        r = render(g, camera, time=time, features=feats, backend=backend)
    maps = r.features.clamp(0, 1).numpy().transpose(2, 0, 1)[:K]  # type: ignore[union-attr]
    rgb = (r.color.clamp(0, 1).numpy() * 255).astype(np.uint8)
    return maps, rgb


def object_overlay(
    frame: np.ndarray, mask: np.ndarray, maps: np.ndarray, gt: np.ndarray | None = None, min_cover: float = 0.2
) -> np.ndarray:
    """``frame`` with the 2D sound ``mask`` coloured per object: a pixel takes the colour of the tag whose
    rendered coverage (``maps``, K × H × W) is highest there (when ≥ ``min_cover``), else light grey (sounding
    but not attributed to any 3D object). The ground-truth mask ``gt`` is outlined in red."""
    from soundmask.report.overlay import mask_edge

    out = frame.astype(np.float32).copy()
    m = np.asarray(mask, bool)
    col = np.tile(np.array(UNASSIGNED, np.float32), (*m.shape, 1))
    if len(maps):
        best = maps.argmax(axis=0)
        cover = maps.max(axis=0)
        pal = np.array([colour(k) for k in range(len(maps))], np.float32)
        hit = cover >= min_cover
        col[hit] = pal[best[hit]]
    out[m] = 0.4 * out[m] + 0.6 * col[m]
    if gt is not None and np.asarray(gt).any():
        out[mask_edge(np.asarray(gt, bool))] = GT_COLOR
    return out.astype(np.uint8)


def heat_overlay(rgb: np.ndarray, heat: np.ndarray, strength: float = 0.75) -> np.ndarray:
    """``rgb`` with ``heat`` (H, W) in [0, 1] as an ``inferno`` heat map blended in proportion to the heat."""
    from matplotlib import colormaps

    h = np.clip(np.nan_to_num(heat), 0, 1)
    cm = colormaps["inferno"](0.25 + 0.75 * h)[..., :3] * 255
    a = (strength * h)[..., None]
    return (rgb.astype(np.float32) * (1 - a) + cm * a).astype(np.uint8)


def orbit_heatmaps(sound: Any, views: Any, count: int, out_dir: str | Path, backend: str = "auto") -> list[Path]:
    """``count`` novel views on a circle around the scene's cameras (:func:`~soundmask.data.cameras.orbit_cameras`)
    with the 3D sound masks as a heat map: view ``k`` is rendered at the middle of a sounding span (cycling over
    the tags, so every object gets shown), heat = coverage of the tags sounding then. Writes
    ``orbit_NNN.png`` and ``captions.json`` (time and labels per view) into ``out_dir``."""
    from PIL import Image

    from soundmask.data.cameras import orbit_cameras

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cams = orbit_cameras(views.cameras, count) if count else []
    spans = [(k, (a + b) / 2) for k, t in enumerate(sound.tags) for a, b in t.spans]
    duration = max(views.times) if views.times else 0.0
    paths, captions = [], []
    for k, cam in enumerate(cams):
        if spans:
            tag_k, t = spans[(k * len(spans) // count if len(spans) > count else k) % len(spans)]
        else:
            tag_k, t = -1, duration * k / max(count, 1)
        maps, rgb = tag_maps(sound, cam, t, backend=backend)
        active = [j for j, tg in enumerate(sound.tags) if tg.active(t)]
        heat = maps[active].max(axis=0) if active else np.zeros(rgb.shape[:2], np.float32)
        img = heat_overlay(rgb, heat)
        p = out / f"orbit_{k:03d}.png"
        with atomic_path(p) as tmp:
            Image.fromarray(img).save(tmp, format="PNG")
        paths.append(p)
        captions.append(
            {
                "file": p.name,
                "time": round(float(t), 3),
                "sounding": [sound.tags[j].label for j in active],
                "tag": tag_k,
            }
        )
    moving = _moving_heatmaps(sound, views, cams, count, out, backend) if count else []
    paths += [out / m["file"] for m in moving]
    write_json(out / "captions.json", captions + moving)
    return paths


def _moving_heatmaps(sound: Any, views: Any, cams: list, count: int, out: Path, backend: str) -> list[dict]:
    """For a 4D model: one novel camera (the orbit's view that sees the most of the sounding objects mid-scene) at
    ``count`` times spread over the scene, heat = the tags sounding then — the sound mask moving with its
    object. Writes ``moving_NNN.png``; returns their captions (``"moving": true``)."""
    from PIL import Image

    g = sound.gaussians
    if not getattr(g, "dynamic", False) or not cams or not sound.tags or not views.times:
        return []
    t0, t1 = min(views.times), max(views.times)
    times = [t0 + (t1 - t0) * (k + 0.5) / count for k in range(count)]
    # the camera: the most tag coverage at the middle time (one render per orbit camera)
    mid = times[count // 2]
    best = max(range(len(cams)), key=lambda c: float(tag_maps(sound, cams[c], mid, backend=backend)[0].sum()))
    caps = []
    for k, t in enumerate(times):
        maps, rgb = tag_maps(sound, cams[best], t, backend=backend)
        active = [j for j, tg in enumerate(sound.tags) if tg.active(t)]
        heat = maps[active].max(axis=0) if active else np.zeros(rgb.shape[:2], np.float32)
        p = out / f"moving_{k:03d}.png"
        with atomic_path(p) as tmp:
            Image.fromarray(heat_overlay(rgb, heat)).save(tmp, format="PNG")
        caps.append({"file": p.name, "time": round(float(t), 3), "sounding": [sound.tags[j].label for j in active],
                     "tag": -1, "moving": True})  # fmt: skip
    return caps


def audio_timeline_png(
    audio: np.ndarray,
    sr: int,
    *,
    segments: list[tuple[float, float]],
    gt_events: list[tuple[str, float, float]],
    tags: list[tuple[str, list[tuple[float, float]]]],
    tdoa: list[tuple[float, float]] | None = None,
    frame_times: list[float] | None = None,
    width_px: int = 1100,
) -> bytes:
    """A PNG of the audio timeline: waveform (channels) with the activity ``segments`` shaded, log spectrogram,
    ground-truth events (``(category, start, end)``) against the predicted sounding objects (``(label, spans)``,
    in :data:`PALETTE` order) and, for stereo, the TDoA per frame window (``(time, tau seconds)``)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from scipy import signal

    a = np.atleast_2d(np.asarray(audio, np.float32))
    dur = a.shape[1] / sr
    rows = 4 if tdoa else 3
    fig, axes = plt.subplots(
        rows,
        1,
        figsize=(width_px / 100, 1.5 * rows + 0.6),
        sharex=True,
        gridspec_kw={"height_ratios": [1, 1.3, 1, 0.8][:rows]},
    )
    t = np.arange(a.shape[1]) / sr
    step = max(1, a.shape[1] // 20000)
    ax = axes[0]
    for c in range(a.shape[0]):
        ax.plot(t[::step], a[c, ::step], lw=0.4, alpha=0.8, label=("left", "right")[c] if a.shape[0] == 2 else None)
    for s, e in segments:
        ax.axvspan(s, e, color="tab:green", alpha=0.15)
    ax.set_ylabel("wave")
    if a.shape[0] == 2:
        ax.legend(loc="upper right", fontsize=7, ncol=2)
    ax = axes[1]
    f, tt, S = signal.spectrogram(a.mean(axis=0), fs=sr, nperseg=1024, noverlap=512)
    keep = f <= min(8000, sr / 2)
    ax.pcolormesh(tt, f[keep] / 1000, 10 * np.log10(S[keep] + 1e-10), shading="auto", cmap="magma")
    ax.set_ylabel("kHz")
    ax = axes[2]
    rows_lbl: list[str] = []
    for cat, s, e in gt_events:
        lbl = f"GT {cat}"
        if lbl not in rows_lbl:
            rows_lbl.append(lbl)
        ax.barh(rows_lbl.index(lbl), e - s, left=s, color="0.45", height=0.6)
    for k, (label, spans) in enumerate(tags):
        lbl = f"#{k + 1} {label}"
        rows_lbl.append(lbl)
        for s, e in spans:
            ax.barh(len(rows_lbl) - 1, e - s, left=s, color=np.array(colour(k)) / 255, height=0.6)
    ax.set_yticks(range(len(rows_lbl)), [r[:28] for r in rows_lbl], fontsize=7)
    ax.invert_yaxis()
    ax.set_ylabel("events")
    if tdoa:
        ax = axes[3]
        ts = [x for x, y in tdoa if np.isfinite(y)]
        ys = [y * 1e3 for x, y in tdoa if np.isfinite(y)]
        ax.plot(ts, ys, "o", ms=3, color="tab:blue")
        ax.axhline(0, color="0.6", lw=0.5)
        ax.set_ylabel("TDoA ms")
    if frame_times:
        for x in frame_times:
            axes[-1].axvline(x, color="0.85", lw=0.3, zorder=-1)
    axes[-1].set_xlabel("time (s)")
    axes[-1].set_xlim(0, dur)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()
