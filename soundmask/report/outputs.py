"""What ``soundmask lift`` and ``soundmask render`` write: sound-mask renders of views, the sound scene, each
sounding object's own signal and the metrics (:func:`write_lift_outputs`, :func:`write_object_audio`), and PNG
renders of a model or sound scene from any camera (:func:`render_views`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from soundmask.data.cameras import orbit_cameras, read_camera_json
from soundmask.data.io import write_audio, write_image, write_json
from soundmask.errors import ConfigError, DataError
from soundmask.lift.tags import SoundScene
from soundmask.report.overlay import overlay
from soundmask.splat.io import load_model
from soundmask.splat.render import render
from soundmask.splat.train import SceneViews, load_views

__all__ = ["OBJECT_AUDIO_DIR", "SOUND_COLOR", "render_views", "write_lift_outputs", "write_object_audio"]

OBJECT_AUDIO_DIR = "objects"  # lift/objects/<component id>.wav

SOUND_COLOR = (255, 40, 40)  # the tint of sounding Gaussians in renders


def _uint8(color: torch.Tensor) -> np.ndarray:
    return (color.clamp(0, 1).numpy() * 255).astype(np.uint8)


def write_lift_outputs(
    out_dir: str | Path,
    sound: SoundScene,
    metrics: dict[str, Any],
    test_masks: dict[int, np.ndarray],
    views: SceneViews,
    *,
    alpha_threshold: float,
    renders: bool = True,
    backend: str = "auto",
) -> Path:
    """Into ``out_dir``: ``renders/view_NNNNN.png`` (the view with its sound mask, alpha > ``alpha_threshold``,
    tinted) and ``renders/mask_NNNNN.png`` (0/255) per test view when ``renders``, ``sound_scene.pt``,
    ``objects/<component id>.wav`` per tag with its own signal (:func:`write_object_audio`) and ``lift.json``
    (``metrics``; NaN as null)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if renders:
        rd = out / "renders"
        rd.mkdir(exist_ok=True)
        for i, a in test_masks.items():
            with torch.no_grad():
                rgb = render(
                    sound.gaussians, views.cameras[i], time=views.times[i], features=False, backend=backend
                ).color
            m = a > alpha_threshold
            write_image(rd / f"view_{i:05d}.png", overlay(_uint8(rgb), m, color=SOUND_COLOR, alpha=0.55, contour=False))
            write_image(rd / f"mask_{i:05d}.png", (m * 255).astype(np.uint8))
    sound.save(out / "sound_scene.pt")
    write_object_audio(out, sound)
    write_json(out / "lift.json", metrics, indent=2)
    return out


def write_object_audio(out_dir: str | Path, sound: SoundScene) -> list[Path]:
    """``out_dir/objects/<component id>.wav`` for every tag of ``sound`` with its own signal (mono, the whole
    recording, aligned with the left microphone, silent where the object does not sound): 16-bit PCM, or 32-bit
    float when a sample reaches full scale (as the scene's own ``audio/objects/``); each written atomically.
    Earlier files of tags no longer there are removed."""
    folder = Path(out_dir) / OBJECT_AUDIO_DIR
    written = []
    for tag in sound.tags:
        if tag.audio is None or tag.sample_rate <= 0:
            continue
        y = np.asarray(tag.audio, dtype=np.float32)
        subtype = "PCM_16" if float(np.abs(y).max(initial=0.0)) < 1.0 else "FLOAT"
        written.append(write_audio(folder / f"{int(tag.component_id)}.wav", y, tag.sample_rate, subtype=subtype))
    if folder.is_dir():
        keep = set(written)
        for f in folder.glob("*.wav"):
            if f not in keep:
                f.unlink()
    return written


def render_views(
    model: str | Path,
    out: str | Path,
    *,
    scene: str | Path | None = None,
    views: list[int] | None = None,
    camera: str | Path | None = None,
    orbit: int = 0,
    time: float | None = None,
    label: str = "",
    backend: str = "auto",
) -> list[Path]:
    """Render ``model`` (a model file or a sound_scene.pt) to PNGs (the ``render`` command); sounding Gaussians
    are highlighted in red."""
    p = Path(model)
    sound: SoundScene | None = None
    if p.suffix.lower() == ".pt" and p.is_file():
        try:
            sound = SoundScene.load(p)
        except DataError:
            sound = None
    g = sound.gaussians if sound is not None else load_model(p)
    cams: list[tuple[Any, float | None]] = []
    if camera is not None:
        cams.append((read_camera_json(camera), time))
    if scene is not None:
        sv = load_views(scene)
        which = list(views) if views else ([] if orbit else list(sv.test))
        for i in which:
            if not 0 <= i < len(sv.cameras):
                raise ConfigError(
                    f"--view {i} is out of range: the scene has {len(sv.cameras)} frames",
                    fix=f"use 0..{len(sv.cameras) - 1}",
                )
            cams.append((sv.cameras[i], sv.times[i] if time is None else time))
        if orbit:
            cams += [(c, time) for c in orbit_cameras(sv.cameras, orbit)]
    elif orbit or views:
        raise ConfigError("--view and --orbit need --scene (its cameras)", fix="add --scene DIR")
    if not cams:
        raise ConfigError("no camera to render from", fix="pass --scene DIR (with --view/--orbit) or --camera FILE")
    o = Path(out)
    single = len(cams) == 1 and o.suffix.lower() == ".png"
    if not single:
        o.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, (cam, t) in enumerate(cams):
        with torch.no_grad():
            sel = None
            if sound is not None:
                m = sound.mask_gaussians(t=t, label=label or None)
                sel = torch.as_tensor(m, dtype=torch.float32)[:, None]
            r = render(g, cam, time=t, features=sel if sel is not None else False, backend=backend)
        img = _uint8(r.color)
        if r.features is not None:
            img = overlay(img, r.features[..., 0].clamp(0, 1).numpy(), color=SOUND_COLOR, alpha=0.6, contour=False)
        paths.append(write_image(o if single else o / f"{cam.name or 'view'}_{k:03d}.png", img))
    return paths
