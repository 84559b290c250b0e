"""`soundmask view`: query parsing, highlighting, the starting view (a training camera inside the room), and the real
thing in a headless Chromium (Playwright): the page loads at the training camera, the splats appear, and a query
highlights one object (screenshot comparison)."""

from __future__ import annotations

import io
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from soundmask.data.cameras import camera_from_dict, camera_to_dict, scene_cameras
from soundmask.data.types import Camera, Intrinsics, look_at
from soundmask.errors import ConfigError
from soundmask.lift.tags import SoundScene, SoundTag
from soundmask.report.viewer import (
    Query,
    ViewPose,
    camera_view,
    highlighted_tags,
    initial_view,
    parse_query,
    splat_arrays,
    viewer_cameras,
)
from soundmask.splat.gaussians import Gaussians

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"


K = Intrinsics(300.0, 300.0, 160.0, 120.0, 320, 240)  # vertical field of view 2·atan(120/300) ≈ 43.6°


def _scene(tmp: Path | None = None, cameras: bool = True) -> SoundScene:
    """Two grey blobs of 400 Gaussians: a dog (sounds 0–2 s) on the left, a piano (1–3 s) on the right; two training
    cameras in its meta (the first looks away, the second at both objects, from the front and a little right)."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 3)) * 0.15 + [-0.6, 0, 0]
    b = rng.normal(size=(400, 3)) * 0.15 + [0.6, 0, 0]
    g = Gaussians.from_points(np.concatenate([a, b]), np.full((800, 3), 0.5), scale=0.05)
    tags = [
        SoundTag(0, np.arange(400), "Dog", {"Dog": 0.9, "Animal": 0.5}, spans=[(0.0, 2.0)], centroid=a.mean(0)),
        SoundTag(1, np.arange(400, 800), "Piano", {"Piano": 0.8}, spans=[(1.0, 3.0)], centroid=b.mean(0)),
    ]
    cams = [
        Camera(K, look_at([0.6, -3.2, 0.5], [0.6, -6.0, 0.5]), "away"),
        Camera(K, look_at([0.6, -3.2, 0.5], [0.6, 0, 0]), "front"),
    ]
    return SoundScene(g, tags, {"cameras": [camera_to_dict(c) for c in cams]} if cameras else {})


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("", Query()),
        ("dog", Query("dog")),
        ("t=3", Query(None, 3.0)),
        ("2.5s", Query(None, 2.5)),
        ("4", Query(None, 4.0)),
        ("dog@1.5", Query("dog", 1.5)),
        ("dog t=2", Query("dog", 2.0)),
        ("electric guitar", Query("electric guitar")),
        ("  Piano  ", Query("Piano")),
    ],
)
def test_parse_query(text: str, want: Query) -> None:
    assert parse_query(text) == want


def test_parse_query_bad_time() -> None:
    with pytest.raises(ConfigError, match="time"):
        parse_query("dog@soon")


def test_highlighted_tags_by_label_time_and_checkbox() -> None:
    s = _scene()
    assert highlighted_tags(s, Query(), 0.5, all_times=True) == [0, 1]
    assert highlighted_tags(s, Query(), 0.5, all_times=False) == [0]
    assert highlighted_tags(s, Query(), 2.5, all_times=False) == [1]
    assert highlighted_tags(s, Query("animal"), 2.5, all_times=True) == [0]  # score names match too
    assert highlighted_tags(s, Query(None, 1.5), 0.0, all_times=True) == [0, 1]
    assert highlighted_tags(s, Query("piano", 0.5), 0.0, all_times=True) == []


def test_splat_arrays_tint_only_the_highlighted() -> None:
    s = _scene()
    c, cov, rgb, op = splat_arrays(s.gaussians, None, s.tags, [1])
    assert c.shape == (800, 3) and cov.shape == (800, 3, 3) and rgb.shape == (800, 3) and op.shape == (800, 1)
    assert np.allclose(rgb[:400], 0.5, atol=1e-5)  # the dog keeps its grey
    assert (rgb[400:, 2] > rgb[400:, 0] + 0.2).all()  # the piano turns blue
    assert np.allclose(cov, np.swapaxes(cov, 1, 2), atol=1e-6) and (np.linalg.eigvalsh(cov) > 0).all()


# ------------------------------------------------------------------------------------------ starting view
def _viser_rotation(pose: ViewPose) -> np.ndarray:
    """The camera-to-world rotation viser's client camera gets from (position, look_at, up): the computation of
    viser.CameraHandle._update_wxyz (OpenCV axes), repeated here."""
    from viser import transforms as tf

    z = np.subtract(pose.look_at, pose.position)
    z /= np.linalg.norm(z)
    y = tf.SO3.exp(z * np.pi) @ np.asarray(pose.up)
    y -= (z @ y) * z
    y /= np.linalg.norm(y)
    return np.stack([np.cross(y, z), y, z], axis=1)


def test_camera_view_is_the_training_camera_in_viser_axes() -> None:
    eye, target = np.array([1.0, 2.0, 1.5]), np.array([3.0, 4.0, 1.0])
    cam = Camera(Intrinsics(100.0, 110.0, 80.0, 60.0, 160, 120), look_at(eye, target), "frame_003")
    v = camera_view(cam, distance=2.0)
    assert np.allclose(v.position, eye) and v.name == "frame_003"
    assert np.allclose(v.look_at, eye + 2.0 * (target - eye) / np.linalg.norm(target - eye))  # on the optical axis
    assert np.allclose(v.forward, cam.camera_to_world[:3, 2])
    assert np.allclose(v.up, -cam.camera_to_world[:3, 1]) and v.up[2] > 0  # image up, world z up
    assert v.fov == pytest.approx(2 * np.arctan(60 / 110))  # vertical
    # viser builds the very same camera from these (same OpenCV axes: no flip, no roll)
    assert np.allclose(_viser_rotation(v), cam.camera_to_world[:3, :3], atol=1e-9)
    # a point ahead of the camera projects to the image centre in both
    uv, z = cam.project(np.asarray(v.look_at)[None])
    assert np.allclose(uv, [[80.0, 60.0]]) and z[0] == pytest.approx(2.0)


def _room() -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Camera]]:
    """A 6 × 5 × 3 m room (Gaussians on its walls, floor and ceiling), two objects in its +x half, and three
    cameras inside: one facing the -x wall (no object), one seeing one object, one seeing both."""
    rng = np.random.default_rng(1)
    size = np.array([6.0, 5.0, 3.0])
    walls = rng.uniform(0, 1, (6000, 3)) * size
    axis, side = rng.integers(0, 3, 6000), rng.integers(0, 2, 6000)
    walls[np.arange(6000), axis] = side * size[axis]
    objects = np.array([[4.5, 1.5, 0.5], [4.5, 3.5, 0.5]])
    points = np.concatenate(
        [walls, objects[0] + rng.normal(0, 0.1, (300, 3)), objects[1] + rng.normal(0, 0.1, (300, 3))]
    )
    k = Intrinsics(200.0, 200.0, 160.0, 120.0, 320, 240)
    cams = [
        Camera(k, look_at([3.0, 2.5, 1.5], [0.0, 2.5, 1.5]), "wall"),
        Camera(k, look_at([3.0, 1.5, 1.2], [4.5, 1.5, 0.5]), "one"),
        Camera(k, look_at([2.0, 2.5, 1.4], [4.5, 2.5, 0.5]), "both"),
    ]
    return size, points, objects, cams


def test_initial_view_is_the_training_camera_that_sees_the_sounding_objects_inside_the_room() -> None:
    size, points, objects, cams = _room()
    v = initial_view(cams, points, objects)
    assert v is not None and v.name == "both"
    assert np.allclose(v.position, cams[2].center) and np.allclose(v.up, -cams[2].camera_to_world[:3, 1])
    inside = lambda p: bool(((np.asarray(p) > 0) & (np.asarray(p) < size)).all())  # noqa: E731
    assert inside(v.position) and inside(v.look_at)
    # the orbit centre: on the optical axis, at the objects' mean depth, in front of the camera
    d = np.subtract(v.look_at, v.position)
    assert np.allclose(d / np.linalg.norm(d), cams[2].camera_to_world[:3, 2])
    assert np.linalg.norm(d) == pytest.approx(float(cams[2].project(objects)[1].mean()))
    assert v.fov == pytest.approx(2 * np.arctan(120 / 200))
    # no sounding object: the first camera, its orbit centre half-way to what it sees (mostly the -x wall, 3 m ahead)
    w = initial_view(cams, points)
    assert w is not None and w.name == "wall" and inside(w.look_at)
    assert np.linalg.norm(np.subtract(w.look_at, w.position)) == pytest.approx(1.5, abs=0.15)
    # nothing seen at all: still the camera, 1 ahead; no camera: None (the viewer keeps its outside view)
    u = initial_view(cams[:1])
    assert u is not None and np.linalg.norm(np.subtract(u.look_at, u.position)) == pytest.approx(1.0)
    assert initial_view([], points, objects) is None


def test_viewer_cameras_from_meta_scene_folder_or_beside_the_output(tmp_path: Path) -> None:
    from test_data_scene import make_data, make_scene  # the scene-format tests' fixture builders

    from soundmask.data.scene import write_scene

    # stored by `soundmask lift` (the meta round trip)
    s = _scene()
    cams = viewer_cameras(tmp_path / "x.pt", SoundScene.load(s.save(tmp_path / "x.pt")))
    assert [c.name for c in cams] == ["away", "front"]
    assert np.allclose(cams[1].camera_to_world, camera_from_dict(s.meta["cameras"][1]).camera_to_world)
    assert cams[1].intrinsics == K
    # a demo/run output without stored cameras: OUT/lift/sound_scene.pt beside OUT/scene/NAME
    scene = make_scene()
    scene.name = "room"
    rgb, inst, depth, stereo = make_data(np.random.default_rng(0))
    write_scene(tmp_path / "out" / "scene" / "room", scene, rgb, inst, depth, None, stereo)
    bare = _scene(cameras=False)
    bare.meta["scene"] = "room"
    path = bare.save(tmp_path / "out" / "lift" / "sound_scene.pt")
    found = viewer_cameras(path, bare)
    train = [i for i in range(len(scene.frames)) if i % 8]  # frame 0 and 8 held out
    assert len(found) == len(train) == 7
    assert np.allclose(found[0].camera_to_world, scene.frames[1].camera.camera_to_world)
    # --scene overrides; nothing known: no camera
    assert len(viewer_cameras(tmp_path / "x.pt", s, tmp_path / "out" / "scene" / "room")) == 7
    assert len(scene_cameras(tmp_path / "out" / "scene" / "room", test_every=3)) == 6
    assert viewer_cameras(tmp_path / "y.pt", _scene(cameras=False)) == []


def test_viewer_starts_at_a_training_camera_or_outside_without_one(tmp_path: Path) -> None:
    from soundmask.report.viewer import SoundViewer

    viewer = SoundViewer(_scene().save(tmp_path / "a" / "sound_scene.pt"), port=0)
    try:
        v = viewer.view
        assert v is not None and v.name == "front"  # the camera that sees both objects
        ic = viewer.server.initial_camera
        assert np.allclose(ic.position, v.position) and np.allclose(ic.look_at, v.look_at)
        assert ic.up is not None and np.allclose(ic.up, v.up) and ic.fov == pytest.approx(v.fov)
    finally:
        viewer.stop()
    viewer = SoundViewer(_scene(cameras=False).save(tmp_path / "b" / "sound_scene.pt"), port=0)
    try:
        assert viewer.view is None and viewer.server.initial_camera.up is None
        assert viewer.server.initial_camera.position[0] > 0.9  # outside the blobs, on the box diagonal
    finally:
        viewer.stop()


# ------------------------------------------------------------------------------------------ browser
def _counts(png: bytes) -> tuple[float, int, int]:
    """(share of non-white pixels, orange-ish pixels (the dog's tint), blue-ish pixels (the piano's tint))."""
    from PIL import Image

    a = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)[:, :560]  # left of the GUI panel
    r, g, b = a[..., 0], a[..., 1], a[..., 2]
    ink = float(((a < 235).any(-1)).mean())
    orange = int(((r > 150) & (r > b + 80) & (g > b + 40)).sum())
    blue = int(((b > 140) & (b > r + 50)).sum())
    return ink, orange, blue


def _until(shoot, ok, timeout: float = 40.0):
    t0, last = time.monotonic(), None
    while time.monotonic() - t0 < timeout:
        last = shoot()
        if ok(_counts(last)):
            return last
        time.sleep(0.5)
    raise AssertionError(f"condition not met in {timeout:.0f} s; last counts {_counts(last) if last else None}")


def _client_camera_at(viewer, position, timeout: float = 20.0):
    """The connected client's camera, once it reports ``position``."""
    t0 = time.monotonic()
    while True:
        cams = [c.camera for c in viewer.server.get_clients().values()]
        try:
            if cams and np.allclose(cams[0].position, position, atol=1e-3):
                return cams[0]
        except AssertionError:  # no camera message yet
            pass
        assert time.monotonic() - t0 < timeout, f"the client's camera did not reach {position}"
        time.sleep(0.2)


def test_viewer_in_headless_chromium(tmp_path: Path) -> None:
    if os.environ.get("SOUNDMASK_SKIP_BROWSER") == "1":
        pytest.skip("SOUNDMASK_SKIP_BROWSER=1")
    assert Path(CHROMIUM).exists(), "Chromium is missing: install.sh installs the Debian package 'chromium'"
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    from soundmask.report.viewer import SoundViewer

    sound = _scene()
    sound.tags[0].audio = (0.1 * np.sin(np.arange(16000) / 5.0)).astype(np.float32)  # the dog's own signal
    sound.tags[0].sample_rate = 16000
    path = sound.save(tmp_path / "sound_scene.pt")
    viewer = SoundViewer(path, port=0)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"],
            )
            page = browser.new_page(viewport={"width": 900, "height": 600})
            page.goto(f"http://127.0.0.1:{viewer.port}")
            page.wait_for_selector("canvas", timeout=30000)
            shoot = lambda: page.screenshot()  # noqa: E731
            # the scene appears: both objects, in their colours (every sounding object is highlighted)
            before = _until(shoot, lambda c: c[0] > 0.05 and c[1] > 500 and c[2] > 500)
            # seen from the training camera: the camera the client reports is the starting view
            v = viewer.view
            assert v is not None and v.name == "front"
            cam = _client_camera_at(viewer, v.position)
            look = np.subtract(cam.look_at, cam.position)
            assert np.allclose(look / np.linalg.norm(look), v.forward, atol=1e-3)
            assert np.allclose(cam.look_at, v.look_at, atol=1e-3)
            assert np.allclose(cam.up_direction / np.linalg.norm(cam.up_direction), v.up, atol=1e-3)
            assert cam.fov == pytest.approx(v.fov, abs=1e-3)
            # moved away, the "training view" button brings it back
            cam.position = (3.0, 3.0, 2.0)
            _client_camera_at(viewer, (3.0, 3.0, 2.0))
            page.get_by_role("button", name="training view").click()
            cam = _client_camera_at(viewer, v.position)
            assert np.allclose(cam.look_at, v.look_at, atol=1e-3)
            box = page.locator("input:visible:not([type=checkbox])").first  # the query box (first text input)
            box.fill("dog")
            box.press("Enter")
            # the query highlights the dog only: its orange stays, the piano loses its blue
            after = _until(shoot, lambda c: c[2] < 0.05 * _counts(before)[2] and c[1] > 0.5 * _counts(before)[1])
            assert viewer.highlighted == [0]
            # a player of its own signal for the dog (the piano has none)
            assert page.locator("audio").count() == 1
            assert page.locator("audio").first.get_attribute("src").startswith("data:audio/wav;base64,")
            (tmp_path / "before.png").write_bytes(before)
            (tmp_path / "after.png").write_bytes(after)
            browser.close()
    finally:
        viewer.stop()
