"""The demo's HTML report: one self-contained file (images inlined as PNG data URIs, each sounding object's own
signal as a 16 kHz WAV data URI), readable offline.

Sections: summary and stage times, metrics against the generator's ground truth, the sounding objects (tags vs.
ground-truth objects, with a player for each object's own signal), the audio timeline, input frames with
per-object 2D sound masks, held-out views with the lifted 3D sound mask, and novel views with the 3D sound masks
as a heat map.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from soundmask.data.io import atomic_path

__all__ = ["audio_player", "png_data_uri", "wav_data_uri", "write_demo_report"]

PLAYER_RATE = 16000  # the report's and the viewer's players: 16 kHz mono 16-bit (≈ 43 kB of base64 per second)

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;max-width:1180px;color:#222}
h1{font-size:1.6em;margin-bottom:0} h2{margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:4px}
.sub{color:#666;margin-top:4px} table{border-collapse:collapse;margin:8px 0;font-size:0.92em}
td,th{border:1px solid #ddd;padding:4px 8px;text-align:left} th{background:#f4f4f4}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.grid{display:flex;flex-wrap:wrap;gap:10px} figure{margin:0;width:200px} figure img{width:200px;
image-rendering:pixelated;border:1px solid #ccc} figcaption{font-size:0.78em;color:#444}
.sw{display:inline-block;width:14px;height:14px;border:1px solid #888;vertical-align:middle;margin-right:4px}
.note{color:#555;font-size:0.9em}
"""


def png_data_uri(img: np.ndarray | bytes) -> str:
    """A ``data:image/png;base64,...`` URI of an (H, W, 3) uint8 image or of PNG bytes."""
    if isinstance(img, bytes | bytearray):
        data = bytes(img)
    else:
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(np.asarray(img, np.uint8)).save(buf, format="PNG")
        data = buf.getvalue()
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def wav_data_uri(signal: Any, sample_rate: int, rate: int = PLAYER_RATE) -> str:
    """A ``data:audio/wav;base64,...`` URI of a mono ``signal`` resampled to ``rate`` Hz, 16-bit PCM (scaled down
    only if it would clip)."""
    import soundfile as sf
    from scipy.signal import resample_poly

    y = np.asarray(signal, dtype=np.float64).ravel()
    sr = int(sample_rate)
    if sr != rate and y.size:
        g = int(np.gcd(sr, rate))
        y = resample_poly(y, rate // g, sr // g)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak >= 1.0:
        y = y * (0.99 / peak)
    buf = io.BytesIO()
    sf.write(buf, y.astype(np.float32), rate, subtype="PCM_16", format="WAV")
    return "data:audio/wav;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def audio_player(signal: Any, sample_rate: int, width: int = 220) -> str:
    """An ``<audio controls>`` element playing ``signal`` (inlined as :func:`wav_data_uri`); "—" without one."""
    if signal is None or int(sample_rate) <= 0 or np.size(signal) == 0:
        return "—"
    return (
        f'<audio controls preload="none" style="width:{int(width)}px" '
        f'src="{wav_data_uri(signal, sample_rate)}"></audio>'
    )


def _img(src: np.ndarray | bytes | Path, caption: str, width: int | None = None) -> str:
    if isinstance(src, Path):
        src = src.read_bytes()
    style = f' style="width:{width}px"' if width else ""
    return (
        f'<figure{style}><img src="{png_data_uri(src)}"{style} alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return "n/a" if not np.isfinite(x) else f"{x:.{digits}f}"
    return html.escape(str(x))


def _table(header: list[str], rows: list[list[Any]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for r in rows:
        cells = []
        for v in r:
            if isinstance(v, tuple) and len(v) == 2 and v[0] == "html":
                cells.append(f"<td>{v[1]}</td>")
            elif isinstance(v, int | float) and not isinstance(v, bool):
                cells.append(f'<td class="num">{_fmt(v)}</td>')
            else:
                cells.append(f"<td>{_fmt(v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{th}</tr>{''.join(body)}</table>"


def _spans(spans: list[Any]) -> str:
    return ", ".join(f"{a:g}–{b:g} s" for a, b in spans) or "—"


def _swatch(k: int) -> str:
    from soundmask.report.figures import colour

    r, g, b = colour(k)
    return f'<span class="sw" style="background:rgb({r},{g},{b})"></span>'


def write_demo_report(
    path: str | Path,
    metrics: dict[str, Any],
    scene: Any,
    views: Any,
    fa: Any,
    masks2d: np.ndarray,
    sound: Any,
    render_dir: Path,
    lift_dir: Path,
    n_frames: int,
    backend: str = "auto",
) -> Path:
    """Write the report (see the module docstring) to ``path`` atomically."""
    from soundmask.audio.cues import scene_mono
    from soundmask.data.images import resize_mask, resize_to
    from soundmask.data.scene import load_rgb, load_sound_mask
    from soundmask.report.figures import audio_timeline_png, object_overlay, tag_maps

    m = metrics
    parts: list[str] = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>soundmask demo — "
        f"{html.escape(m['scene'])}</title><style>{_CSS}</style></head><body>"
    ]
    parts.append(f"<h1>soundmask demo: {html.escape(m['scene'])}</h1>")
    parts.append(
        f"<p class='sub'>{m['frames']} frames of {m['size'][1]}×{m['size'][0]} px from the generator "
        f"(preset {html.escape(m['preset'])}, seed {m['seed']}); 2D method <b>{html.escape(m['method'])}"
        f"</b>; every 8th frame ({len(m['test_views'])} views) is held out of reconstruction and "
        f"lifting and used only for scoring.</p>"
    )

    # stage times
    st = m.get("stages", {})
    rows = [[k, v["seconds"], "cached" if v["cached"] else "run"] for k, v in st.items()]
    parts.append("<h2>Stages</h2>" + _table(["stage", "seconds", ""], rows))

    # metrics
    m2, rc, s3 = m["masks_2d"], m["reconstruction"], m["scene3d"]
    n_sounding = sum(o["sounding"] for o in m["objects"])
    found = f"{s3['objects_found']} / {n_sounding}" if s3.get("objects_found") is not None else "n/a"
    rows = [
        ["2D sound masks (all frames) vs GT", "pooled J", m2["pooled_j"]],
        ["", "pooled F", m2["pooled_f"]],
        ["", "mean per-frame J", m2["j_frame_mean"]],
        ["reconstruction", "test-view PSNR (dB)", rc["psnr_test"]],
        ["", "train PSNR (dB)", rc["psnr_train"]],
        ["", "Gaussians", rc["gaussians"]],
        ["3D sound masks on held-out views (EchoSegnet protocol)", "mIoU", s3.get("miou")],
        ["", "F-score", s3.get("fscore")],
        ["", "pooled J", s3.get("pooled_j")],
        ["", "centroid error (m)", s3.get("centroid_error_m")],
        ["sounding objects (a tag within 0.5 m)", "found / in ground truth", found],
        ["", "missed", s3.get("objects_missed")],
        ["", "false sources (tags on no sounding object)", s3.get("false_sources")],
        ["", "label accuracy (tag names the object's category)", s3.get("label_accuracy")],
        ["", "label accuracy with tags from the mixture", s3.get("label_accuracy_mixture")],
        ["each found object's own signal vs its own recording", "SI-SDR (dB)", s3.get("separation_si_sdr_db")],
        ["", "SI-SDR improvement over the mixture where it overlaps another (dB)", s3.get("separation_si_sdri_db")],
    ]
    parts.append("<h2>Metrics against the generator's ground truth</h2>" + _table(["what", "metric", "value"], rows))

    # objects
    match = s3.get("object_matches") or {}
    found_by = {int(i): k for i, k in (match.get("pairs") or {}).items()}
    cats = {o["id"]: o["category"] for o in m["objects"]}

    def verdict(k: int) -> str:
        hit = [i for i, j in found_by.items() if j == k]
        if hit:
            right = "right" if hit[0] in match.get("correct_labels", []) else "wrong"
            return f"on the sounding {cats.get(hit[0], '?')} (label {right})"
        return "false source" if k in (match.get("false") or []) else "second tag on a found object"

    own = list(getattr(sound, "tags", []))
    rows = [
        [
            ("html", _swatch(k) + f"#{k + 1}"),
            verdict(k) if match else "n/a",
            t["label"],
            ", ".join(f"{n} {s:.2f}" for n, s in list(t["scores"].items())[:3]),
            _spans(t["spans"]),
            ("html", audio_player(own[k].audio, own[k].sample_rate) if k < len(own) else "—"),
            t["gaussians"],
            " ".join(f"{c:.2f}" for c in t["centroid"]),
        ]
        for k, t in enumerate(m["tags"])
    ]
    parts.append(
        "<h2>Sounding objects</h2><p class='note'>Found by lifting (colour = the object's colour in "
        "every picture below). <i>Its own signal</i>: its part of the recording where lifting has it sounding, "
        "separated from the other sounding objects by where they are and how they sound (docs/scene3d.md), silent "
        "elsewhere; the audio tag comes from it; lift/objects/ has it at full rate.</p>"
        + _table(
            [
                "object",
                "vs. ground truth",
                "audio tag (YAMNet)",
                "top scores",
                "sounds at",
                "its own signal",
                "Gaussians",
                "centroid (m)",
            ],
            rows,
        )
    )
    rows = [
        [
            o["category"],
            _spans(o["events"]),
            " ".join(f"{c:.2f}" for c in o["position"]),
            (f"#{found_by[o['id']] + 1}" if o["id"] in found_by else "missed") if match else "n/a",
        ]
        for o in m["objects"]
        if o["sounding"]
    ]
    parts.append(
        "<p class='note'>Ground truth (sounding objects of the generated scene):</p>"
        + _table(["category", "sounds at", "position (m)", "found by"], rows)
    )

    # audio timeline
    root = scene.root
    if root is not None and (root / "audio" / "stereo.wav").is_file():
        from soundmask.data.scene import load_stereo

        audio = load_stereo(scene)
    else:
        audio = scene_mono(scene)[0][None]
    cats = {o.id: o.category for o in scene.objects}
    gt_events = [(cats.get(e.object_id, "?"), e.start, e.end) for e in scene.sound_events]
    tdoa = (
        [(t + fa.window / 2, float(x.tau)) for t, x in zip(views.times, fa.tdoa, strict=True) if fa.active(t)]
        if fa.tdoa is not None
        else None
    )
    png = audio_timeline_png(
        audio,
        scene.sample_rate,
        segments=fa.segments,
        gt_events=gt_events,
        tags=[(t["label"], t["spans"]) for t in m["tags"]],
        tdoa=tdoa,
        frame_times=views.times,
    )
    parts.append(
        "<h2>Audio timeline</h2><p class='note'>Waveform with the detected activity (green), spectrogram, "
        "ground-truth events (grey) against the sounding objects found (their colours), and the stereo "
        "time difference of arrival per frame window (positive: the left microphone hears it first)."
        f"</p><img src='{png_data_uri(png)}' style='max-width:100%'>"
    )

    # frames with per-object 2D masks
    H, W = views.size
    n = len(masks2d)
    pick = sorted({int(round(x)) for x in np.linspace(0, n - 1, min(n_frames, n))})
    figs = []
    for i in pick:
        rgb = resize_to(load_rgb(scene, i), W, H)
        gt = resize_mask(load_sound_mask(scene, i), W, H)
        maps, _ = tag_maps(sound, views.cameras[i], views.times[i], backend=backend)
        img = object_overlay(rgb, masks2d[i], maps, gt)
        t = views.times[i]
        gt_now = sorted({cats.get(e.object_id, "?") for e in scene.sound_events if e.start <= t < e.end})
        kind = "held out" if i in set(views.test) else "train"
        figs.append(_img(img, f"frame {i} ({kind}), t={t:g} s — GT: {', '.join(gt_now) or 'silence'}"))
    parts.append(
        "<h2>Input frames with 2D sound masks</h2><p class='note'>The 2D method's sound mask, coloured by "
        "the 3D object it falls on (grey: on no sounding object); the ground-truth sound mask is outlined "
        "in red.</p><div class='grid'>" + "".join(figs) + "</div>"
    )

    # held-out views
    test_imgs = sorted((lift_dir / "renders").glob("view_*.png")) if (lift_dir / "renders").is_dir() else []
    if test_imgs:
        figs = [_img(p, f"held-out view {int(p.stem.split('_')[1])}") for p in test_imgs]
        parts.append(
            "<h2>Held-out views</h2><p class='note'>The reconstruction rendered at views it never saw, with "
            "the lifted 3D sound mask (alpha &gt; 0.8) in red — what the 3D metrics score.</p>"
            "<div class='grid'>" + "".join(figs) + "</div>"
        )

    # novel views
    cap_file = render_dir / "captions.json"
    caps = json.loads(cap_file.read_text()) if cap_file.is_file() else []
    moving = [c for c in caps if c.get("moving")]
    caps = [c for c in caps if not c.get("moving")]
    if caps:
        figs = [
            _img(
                render_dir / c["file"],
                f"novel view {k + 1}, t={c['time']:g} s: {', '.join(c['sounding']) or 'nothing sounding'}",
            )
            for k, c in enumerate(caps)
        ]
        parts.append(
            "<h2>Novel views: 3D sound masks</h2><p class='note'>Cameras on a circle around the scene (no "
            "input frame was taken from there); heat = how much of each pixel is covered by the objects "
            "sounding at that time.</p><div class='grid'>" + "".join(figs) + "</div>"
        )
    if moving:
        figs = [
            _img(render_dir / c["file"], f"t={c['time']:g} s: {', '.join(c['sounding']) or 'nothing sounding'}")
            for c in moving
        ]
        parts.append(
            "<h2>Over time: the sound masks move with their objects</h2><p class='note'>One novel camera, the 4D "
            "reconstruction at times spread over the scene; heat = the objects sounding at that time, rendered "
            "where their Gaussians are then.</p><div class='grid'>" + "".join(figs) + "</div>"
        )
    parts.append(
        f"<p class='note'>Written by soundmask; all numbers are in metrics.json. Total "
        f"{sum(v['seconds'] for v in st.values()):.0f} s of stage time.</p></body></html>"
    )
    p = Path(path)
    with atomic_path(p) as tmp:
        tmp.write_text("\n".join(parts), encoding="utf-8")
    return p
