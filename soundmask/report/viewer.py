"""``soundmask view MODEL``: an interactive browser view of a Gaussian scene with its sound-tagged objects, built on
viser (the viewer nerfstudio uses; its client renders Gaussian splats in WebGL).

* The Gaussians are sent as splats (centres, 3×3 covariances, colours, opacities). The Gaussians of each sounding
  object (:class:`~soundmask.lift.tags.SoundTag`) are tinted in its colour (:data:`soundmask.report.figures.PALETTE`
  order) and carry a floating label.
* **Time** (a slider; for 4D models the Gaussians move): at time ``t`` only the objects sounding at ``t`` are
  highlighted; the *all times* checkbox highlights every sounding object.
* **Listen**: each sounding object's row in the GUI has a player of its own signal (the sound scene's per-object
  audio, :meth:`~soundmask.lift.tags.SoundScene.audio_of`; none for a sound scene written before it existed).
* **Query** (a text box): a label (``dog``), a time (``t=3``, ``3s``) or both (``dog@3``); the matching objects are
  highlighted, the rest is shown in its own colours. :func:`parse_query` reads it.
* **Camera**: every new client (and viser's *Reset View*, and the *training view* button) starts at a training
  camera, inside the room: the one that sees the most sounding objects (the first on a tie), with its position,
  optical axis, up vector and vertical field of view (:func:`initial_view`). The training cameras come from the
  sound scene (``soundmask lift`` stores them), a ``--scene`` folder, or the scene next to a demo/run output;
  without any, the view is from outside, on the diagonal of the Gaussians' box.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from soundmask.errors import ConfigError, DataError

__all__ = [
    "Query",
    "SoundViewer",
    "ViewPose",
    "camera_view",
    "initial_view",
    "parse_query",
    "splat_arrays",
    "tag_row_html",
    "viewer_cameras",
]


@dataclass(frozen=True)
class Query:
    """What the query box asks for: a label substring and/or a time in seconds (None: any)."""

    label: str | None = None
    time: float | None = None


_TIME = re.compile(r"^(?:t\s*=\s*)?(-?\d+(?:\.\d*)?)\s*s?$", re.IGNORECASE)


def parse_query(text: str) -> Query:
    """``""`` → everything; ``dog`` → label; ``t=3`` / ``3s`` / ``3`` → time; ``dog@3`` / ``dog t=3`` → both."""
    q = text.strip()
    if not q:
        return Query()
    if "@" in q:
        lab, _, tm = q.partition("@")
        t = _TIME.match(tm.strip())
        if t is None:
            raise ConfigError(f"cannot read the time in query {text!r}", fix="write e.g. dog@3 or dog t=3")
        return Query(lab.strip() or None, float(t.group(1)))
    parts = q.rsplit(None, 1)
    if len(parts) == 2 and _TIME.match(parts[1]) and parts[1].lower().startswith("t"):
        return Query(parts[0], float(_TIME.match(parts[1]).group(1)))  # type: ignore[union-attr]
    t = _TIME.match(q)
    if t is not None and (q[0].isdigit() or q.lower().startswith("t")):
        return Query(None, float(t.group(1)))
    return Query(q, None)


def highlighted_tags(sound: Any, query: Query, time: float | None, all_times: bool) -> list[int]:
    """Indices of the tags to highlight: those matching the query's label and sounding at the query's time (or,
    without one, at ``time`` unless ``all_times``)."""
    t = query.time if query.time is not None else (None if all_times else time)
    out = []
    for k, tag in enumerate(sound.tags):
        if query.label and not tag.matches(query.label):
            continue
        if t is not None and not tag.active(t):
            continue
        out.append(k)
    return out


def splat_arrays(
    g: Any, time: float | None, tags: list[Any], highlight: list[int], tint: float = 0.7
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(centres (N, 3), covariances (N, 3, 3), colours (N, 3) in [0, 1], opacities (N, 1)) for viser; the
    Gaussians of the tags in ``highlight`` are tinted towards their tag colour by ``tint``."""
    from soundmask.report.figures import colour

    with torch.no_grad():
        centres = g.means_at(time).numpy().astype(np.float32)
        cov = g.covariances(time).numpy().astype(np.float32)
        rgb = g.colors().clamp(0, 1).numpy().astype(np.float32)
        op = g.opacities().reshape(-1, 1).numpy().astype(np.float32)
    rgb = rgb.copy()
    for k in highlight:
        idx = np.asarray(tags[k].index, np.int64)
        rgb[idx] = (1 - tint) * rgb[idx] + tint * np.array(colour(k), np.float32) / 255
    return centres, cov, rgb, op


@dataclass(frozen=True)
class ViewPose:
    """A viewer camera in world coordinates: where it is, the point it looks at (the orbit centre), its up vector and
    its vertical field of view in radians (viser's ``initial_camera`` / ``client.camera`` quantities)."""

    position: tuple[float, float, float]
    look_at: tuple[float, float, float]
    up: tuple[float, float, float]
    fov: float
    name: str = ""

    @property
    def forward(self) -> np.ndarray:
        """Unit vector from the position to the look-at point."""
        d = np.subtract(self.look_at, self.position)
        return d / np.linalg.norm(d)


def _vec(x: Any) -> tuple[float, float, float]:
    a, b, c = (float(v) for v in np.asarray(x, dtype=np.float64).reshape(3))
    return a, b, c


def camera_view(camera: Any, distance: float = 1.0) -> ViewPose:
    """The pose of ``camera`` (OpenCV axes: x right, y down, z forward, as viser's): at its centre, looking along
    its optical axis (+z) at the point ``distance`` ahead, up = −y, vertical field of view 2·atan(H / 2fy)."""
    c2w = np.asarray(camera.camera_to_world, dtype=np.float64)
    R, centre = c2w[:3, :3], c2w[:3, 3]
    forward = R[:, 2] / np.linalg.norm(R[:, 2])
    up = -R[:, 1] / np.linalg.norm(R[:, 1])
    k = camera.intrinsics
    fov = 2.0 * float(np.arctan(0.5 * k.height / k.fy))
    d = float(distance) if np.isfinite(distance) and distance > 0 else 1.0
    return ViewPose(_vec(centre), _vec(centre + d * forward), _vec(up), fov, str(camera.name))


def _in_view(camera: Any, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mask of ``points`` in front of ``camera`` and inside its image, their depths)."""
    if len(points) == 0:
        return np.zeros(0, bool), np.zeros(0)
    uv, z = camera.project(points)
    k = camera.intrinsics
    with np.errstate(invalid="ignore"):
        ok = (z > 1e-6) & (uv[:, 0] >= 0) & (uv[:, 0] < k.width) & (uv[:, 1] >= 0) & (uv[:, 1] < k.height)
    return ok, z


def initial_view(cameras: list[Any], points: Any = None, targets: Any = None) -> ViewPose | None:
    """The viewer's starting pose: the training camera among ``cameras`` that sees the most ``targets`` (the sounding
    objects' centroids, (K, 3); the first camera on a tie or without targets), as :func:`camera_view`. Its look-at
    point (the orbit centre) lies on the optical axis at the mean depth of the targets it sees, else half-way to the
    median depth of the ``points`` (the Gaussians' centres, (N, 3)) it sees, else 1 ahead. None without cameras."""
    if not cameras:
        return None
    tg = np.zeros((0, 3)) if targets is None else np.asarray(targets, dtype=np.float64).reshape(-1, 3)
    seen = [_in_view(c, tg) for c in cameras]
    k = int(np.argmax([int(ok.sum()) for ok, _ in seen]))  # argmax: the first of the best
    cam = cameras[k]
    ok, z = seen[k]
    distance = 1.0
    if ok.any():
        distance = float(z[ok].mean())
    elif points is not None:
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        pts = pts[:: max(1, len(pts) // 20000)]
        ok, z = _in_view(cam, pts)
        if ok.any():
            distance = 0.5 * float(np.median(z[ok]))  # half-way: orbiting around it stays inside the room
    return camera_view(cam, distance)


def viewer_cameras(path: Path, sound: Any, scene: str | Path | None = None) -> list[Any]:
    """The training cameras for the viewer of ``path``: those of ``scene`` (a scene folder) when given; else those
    stored in the sound scene's meta (``soundmask lift`` writes them); else those of the scene next to a
    ``soundmask demo`` / ``run`` output (``OUT/lift/sound_scene.pt`` beside ``OUT/scene/[NAME]``); else none."""
    from soundmask.data.cameras import camera_from_dict, scene_cameras

    if scene is not None:
        return scene_cameras(scene)
    stored = sound.meta.get("cameras") if isinstance(sound.meta, dict) else None
    if stored:
        try:
            return [camera_from_dict(d) for d in stored]
        except (KeyError, TypeError, ValueError):
            pass
    name = str(sound.meta.get("scene", "")) if isinstance(sound.meta, dict) else ""
    root = path.resolve().parent.parent / "scene"
    for cand in ([root / name] if name else []) + [root]:
        try:
            return scene_cameras(cand)
        except (DataError, OSError, KeyError, TypeError, ValueError):
            continue
    return []


def tag_row_html(k: int, tag: Any) -> str:
    """The GUI row of sounding object ``k``: its colour, label and spans, and a player of its own signal (the
    tag's ``audio``, :mod:`soundmask.lift.separate`) when the sound scene has one."""
    import html

    from soundmask.report.figures import colour
    from soundmask.report.html import audio_player

    spans = ", ".join(f"{a:g}–{b:g} s" for a, b in tag.spans)
    player = ""
    if getattr(tag, "audio", None) is not None and int(getattr(tag, "sample_rate", 0)) > 0:
        player = f"<div>{audio_player(tag.audio, tag.sample_rate, width=200)}</div>"
    return (
        f"<div><span style='display:inline-block;width:10px;height:10px;background:rgb{colour(k)}'>"
        f"</span> #{k + 1} {html.escape(str(tag.label))}: {spans}{player}</div>"
    )


class SoundViewer:
    """A viser server showing ``path`` (a ``sound_scene.pt`` from ``soundmask lift``, or a plain model); ``scene``: a
    scene folder whose training cameras give the starting view (see :func:`viewer_cameras`)."""

    def __init__(
        self, path: str | Path, host: str = "127.0.0.1", port: int = 8080, scene: str | Path | None = None
    ) -> None:
        import viser

        from soundmask.lift.tags import SoundScene
        from soundmask.splat.io import load_model

        p = Path(path)
        self.sound: Any = None
        if p.suffix.lower() == ".pt" and p.is_file():
            try:
                self.sound = SoundScene.load(p)
            except Exception:  # noqa: BLE001 - not a sound scene: a plain .pt model
                self.sound = None
        if self.sound is None:
            self.sound = SoundScene(load_model(p), [], {})
        self.g = self.sound.gaussians
        self.cameras = viewer_cameras(p, self.sound, scene)
        with torch.no_grad():
            means = self.g.means.numpy()
        self.view: ViewPose | None = initial_view(self.cameras, means, [t.centroid for t in self.sound.tags])
        self._lock = threading.Lock()
        self.server = viser.ViserServer(host=host, port=port, verbose=False)
        self.port = self.server.get_port()
        ends = [b for tg in self.sound.tags for _, b in tg.spans]
        end = self.g.time_range[1] if self.g.dynamic else 0.0
        self.duration = float(max([end, *ends, 1.0]))
        self._build_gui()
        self._place_camera()
        self.update()

    # ------------------------------------------------------------------------------------------ GUI
    def _build_gui(self) -> None:
        gui = self.server.gui
        tags = self.sound.tags
        rows = "".join(tag_row_html(k, t) for k, t in enumerate(tags))
        gui.add_html(f"<b>{len(tags)} sounding object(s)</b>{rows or '<div>none</div>'}")
        self.query = gui.add_text("query", "", hint="a label (dog), a time (t=3) or both (dog@3)")
        self.all_times = gui.add_checkbox("all times", True, hint="highlight every sounding object")
        self.time = gui.add_slider("time (s)", 0.0, self.duration, 0.1, 0.0)
        self.status = gui.add_markdown("")

        def on_update(_e: Any) -> None:
            self.update()

        for h in (self.query, self.all_times, self.time):
            h.on_update(on_update)
        for k, t in enumerate(tags):
            x, y, z = (float(v) for v in t.centroid)
            self.server.scene.add_label(f"/tags/{k}", f"#{k + 1} {t.label}", position=(x, y, z))
        if self.view is not None:
            button = gui.add_button("training view", hint=f"back to training camera {self.view.name}".strip())

            @button.on_click
            def _(event: Any) -> None:
                if event.client is not None:
                    self.move_client(event.client)

    def move_client(self, client: Any) -> None:
        """Put ``client``'s camera at the starting training view."""
        v = self.view
        if v is None:
            return
        with client.atomic():
            client.camera.up_direction = v.up
            client.camera.position = v.position
            client.camera.look_at = v.look_at
            client.camera.fov = v.fov

    def _place_camera(self) -> None:
        cam = self.server.initial_camera
        if self.view is not None:  # inside the room, at a training camera
            cam.position = self.view.position
            cam.look_at = self.view.look_at
            cam.up = self.view.up
            cam.fov = self.view.fov
            return
        with torch.no_grad():
            m = self.g.means.numpy()
        lo, hi = np.percentile(m, 5, axis=0), np.percentile(m, 95, axis=0)
        centre = (lo + hi) / 2
        r = float(np.linalg.norm(hi - lo)) or 1.0
        x, y, z = (float(v) for v in centre + np.array([0.6, -0.6, 0.45]) * r)
        self.server.initial_camera.position = (x, y, z)
        x, y, z = (float(v) for v in centre)
        self.server.initial_camera.look_at = (x, y, z)

    # ------------------------------------------------------------------------------------------ state
    def update(self) -> list[int]:
        """Re-send the splats for the current query, time and checkbox; returns the highlighted tags."""
        with self._lock:
            try:
                q = parse_query(self.query.value)
                note = ""
            except ConfigError as e:
                q, note = Query(), f"*{e.problem}*"
            t = q.time if q.time is not None else float(self.time.value)
            hl = highlighted_tags(self.sound, q, float(self.time.value), bool(self.all_times.value))
            c, cov, rgb, op = splat_arrays(self.g, t if self.g.dynamic else None, self.sound.tags, hl)
            self.server.scene.add_gaussian_splats("/splats", centers=c, covariances=cov, rgbs=rgb, opacities=op)
            names = ", ".join(f"#{k + 1} {self.sound.tags[k].label}" for k in hl) or "none"
            self.status.content = note or f"highlighted: {names}"
            self.highlighted = hl
            return hl

    def serve_forever(self) -> None:
        self.server.sleep_forever()

    def stop(self) -> None:
        self.server.stop()
