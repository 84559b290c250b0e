"""3DAVS-S34-O7 layout: write → read round trip, EchoSegnet ordering/split/naming rules, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from soundmask.data import io
from soundmask.data.colmap import ColmapCamera, ColmapModel, image_from_camera, read_model, write_model
from soundmask.data.threedavs import (
    frame_number,
    image_name,
    load_3davs_binaural,
    load_3davs_mask,
    load_3davs_mono,
    load_3davs_rgb,
    read_3davs_scene,
    read_camera_splits,
    split_by_rule,
    write_3davs_scene,
)
from soundmask.data.types import Camera, Intrinsics, Scene, SceneFrame
from soundmask.errors import DataError

H, W, SR = 24, 32, 8000


def look_at(eye, target=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Camera-to-world (OpenCV axes: x right, y down, z forward) at ``eye`` looking at ``target``."""
    eye = np.asarray(eye, float)
    z = np.asarray(target, float) - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])  # world z up → image y down
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    m = np.eye(4)
    m[:3, :3] = np.stack([x, y, z], axis=1)
    m[:3, 3] = eye
    return m


def make_scene(n: int, names=None) -> Scene:
    k = Intrinsics(40.0, 41.0, W / 2, H / 2, W, H)
    frames = []
    for i in range(n):
        a = 2 * np.pi * i / n
        name = names[i] if names else f"{i:05d}"
        frames.append(
            SceneFrame(i, float(i), f"input/{name}.png", Camera(k, look_at([3 * np.cos(a), 3 * np.sin(a), 1.0]), name))
        )
    return Scene(frames=frames, sample_rate=SR)


def arrays(rng, n):
    rgb = rng.integers(0, 256, (n, H, W, 3), dtype=np.uint8)
    masks = rng.random((n, H, W)) > 0.7
    binaural = [rng.uniform(-0.5, 0.5, (2, SR)).astype(np.float32) for _ in range(n)]
    mono = [rng.uniform(-0.5, 0.5, SR).astype(np.float32) for _ in range(n)]
    return rgb, masks, binaural, mono


@pytest.mark.parametrize("binary", [False, True])
def test_write_read_round_trip(tmp_path, rng, binary):
    n = 10
    scene = make_scene(n)
    rgb, masks, binaural, mono = arrays(rng, n)
    pts = rng.normal(size=(30, 3))
    out = write_3davs_scene(tmp_path / "s", scene, rgb, masks, binaural, mono, points=pts, colmap_binary=binary)
    for d in ("input", "semantic_masks", "audio_clips_binaural", "audio_clips_mono", "sparse/0"):
        assert (out / d).is_dir()
    assert (out / "audio_clips_binaural" / "frame_3.wav").is_file()  # EchoSegnet: frame_<int(name)>.wav
    assert (out / "sparse/0" / ("cameras.bin" if binary else "cameras.txt")).is_file()

    back = read_3davs_scene(out)
    assert len(back.frames) == n and back.name == "s" and back.sample_rate == SR
    assert [f.file for f in back.frames] == [f"input/{i:05d}.png" for i in range(n)]
    assert [f.index for f in back.frames] == list(range(n))
    for f0, f1 in zip(scene.frames, back.frames, strict=True):
        np.testing.assert_allclose(f1.camera.camera_to_world, f0.camera.camera_to_world, atol=1e-12)
        assert f1.camera.intrinsics == f0.camera.intrinsics
    assert back.extra["split"] == {"test": ["00000", "00008"], "train": [f"{i:05d}" for i in range(n) if i % 8]}
    assert back.extra["split_source"] == "camera_splits.json" and back.extra["split_matches_rule"]
    assert back.test_views() == [0, 8]
    for i in (0, 5, 9):
        np.testing.assert_array_equal(load_3davs_rgb(back, i), rgb[i])
        np.testing.assert_array_equal(load_3davs_mask(back, i), masks[i])
        b, sr = load_3davs_binaural(back, i)
        assert sr == SR and b.shape == (2, SR)
        np.testing.assert_allclose(b, binaural[i], atol=1 / 16000)
        m, _ = load_3davs_mono(back, i)
        np.testing.assert_allclose(m, mono[i], atol=1 / 16000)
    xyz, _ = read_model(out / "sparse/0").points_xyz_rgb()
    np.testing.assert_allclose(xyz, pts)


def test_echosegnet_name_order_and_clip_lookup(tmp_path, rng):
    """Unpadded names sort as strings (frame_1, frame_10, frame_11, frame_2 ...) as EchoSegnet sorts them;
    clips are found by number; unregistered frames in input/ are reported; distorted-free model needed."""
    n = 12
    root = tmp_path / "scene"
    k = Intrinsics(40.0, 40.0, W / 2, H / 2, W, H)
    model = ColmapModel({1: ColmapCamera.from_intrinsics(k, 1)})
    for i in range(1, n + 1):
        io.write_image(root / "input" / f"frame_{i}.png", rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
        io.write_mask(root / "semantic_masks" / f"frame_{i}.png", rng.random((H, W)) > 0.5)
        io.write_audio(root / "audio_clips_binaural" / f"clip_{i}.wav", np.full((2, 100), i / 100), 44100)
        io.write_audio(root / "audio_clips_mono" / f"frame_{i}.wav", np.full(100, i / 100), 44100)
        if i != 4:  # frame_4 not registered by COLMAP
            cam = Camera(k, look_at([np.cos(i), np.sin(i), 0.5]))
            model.images[100 + i] = image_from_camera(cam, 100 + i, 1, name=f"frame_{i}.png")
    write_model(model, root / "sparse" / "0", binary=True)
    scene = read_3davs_scene(root)
    expected = sorted(f"frame_{i}" for i in range(1, n + 1) if i != 4)
    assert scene.extra["image_names"] == expected and expected[:3] == ["frame_1", "frame_10", "frame_11"]
    assert scene.extra["unregistered"] == ["frame_4"]
    assert scene.extra["split_source"] == "rule"
    assert scene.extra["split"]["test"] == [expected[0], expected[8]]
    assert scene.sample_rate == 44100
    for pos, name in enumerate(expected):
        num = frame_number(name)
        assert scene.frames[pos].index == num and scene.frames[pos].time == float(num)
        b, _ = load_3davs_binaural(scene, pos)
        assert b[0, 0] == pytest.approx(num / 100, abs=1e-4)
        m, _ = load_3davs_mono(scene, pos)
        assert m[0] == pytest.approx(num / 100, abs=1e-4)


def test_split_file_shapes(tmp_path):
    names = [f"frame_{i:03d}" for i in range(17)]
    rule = split_by_rule(names)
    assert rule["test"] == ["frame_000", "frame_008", "frame_016"]
    p = tmp_path / "camera_splits.json"
    shapes = [
        {"train": [n + ".png" for n in rule["train"]], "test": [{"img_name": n} for n in rule["test"]]},
        {n: ("test" if n in rule["test"] else "train") for n in names},
        [{"img_name": n, "split": "test" if n in rule["test"] else "train"} for n in names],
    ]
    for obj in shapes:
        p.write_text(json.dumps(obj))
        assert read_camera_splits(p) == rule
    p.write_text(json.dumps({"train": 3}))
    with pytest.raises(DataError, match="must be a list") as e:
        read_camera_splits(p)
    assert str(p) in str(e.value)
    p.write_text(json.dumps({"a": "holdout"}))
    with pytest.raises(DataError, match="unknown split"):
        read_camera_splits(p)


def test_naming_helpers():
    assert image_name("sub/dir/frame_012.png") == "frame_012"
    assert image_name("a.b.png") == "a"
    assert frame_number("frame_012") == 12 and frame_number("00007") == 7 and frame_number("view") is None


def test_errors_name_the_path(tmp_path, rng):
    with pytest.raises(DataError, match="3DAVS scene folder not found"):
        read_3davs_scene(tmp_path / "missing")
    (tmp_path / "empty" / "input").mkdir(parents=True)
    with pytest.raises(DataError, match="no COLMAP model folder sparse/0"):
        read_3davs_scene(tmp_path / "empty")

    n = 3
    scene = make_scene(n)
    rgb, masks, binaural, mono = arrays(rng, n)
    out = write_3davs_scene(tmp_path / "s", scene, rgb, masks, binaural, mono)
    (out / "input" / "00001.png").unlink()
    with pytest.raises(DataError, match="registered in sparse/0 but has no image") as e:
        read_3davs_scene(out)
    assert "00001.png" in str(e.value)

    out = write_3davs_scene(tmp_path / "s", scene, rgb, masks, binaural, mono)
    io.write_mask(out / "semantic_masks" / "00002.png", np.zeros((H + 1, W), bool))
    (out / "audio_clips_binaural" / "frame_1.wav").unlink()
    s = read_3davs_scene(out)
    with pytest.raises(DataError, match=r"00002\.png: image is 25x32"):
        load_3davs_mask(s, 2)
    with pytest.raises(DataError, match="no clip for frame 00001") as e:
        load_3davs_binaural(s, 1)
    assert "audio_clips_binaural" in str(e.value)
    # a mono file where a binaural clip is expected
    io.write_audio(out / "audio_clips_binaural" / "frame_0.wav", np.zeros(100), SR)
    with pytest.raises(DataError, match="expected stereo") as e:
        load_3davs_binaural(s, 0)
    assert "frame_0.wav" in str(e.value)


def test_writer_rejects_bad_inputs(tmp_path, rng):
    scene = make_scene(3)
    rgb, masks, binaural, mono = arrays(rng, 3)
    with pytest.raises(ValueError, match="rgb has 2 entries"):
        write_3davs_scene(tmp_path / "s", scene, rgb[:2], masks, binaural)
    with pytest.raises(ValueError, match="sort in frame order"):
        write_3davs_scene(tmp_path / "s", make_scene(3, ["b", "a", "c"]), rgb, masks, binaural)
    with pytest.raises(ValueError, match=r"binaural\[0\] must be \(2, samples\)"):
        write_3davs_scene(tmp_path / "s", scene, rgb, masks, [m for m in mono])
    assert not (tmp_path / "s").exists()  # nothing half-written


def test_3davs_scene_converts_to_our_format(tmp_path, rng):
    """A scene read from 3DAVS can be written in our format; the reader's bookkeeping is not copied."""
    from soundmask.data.scene import read_scene, write_scene

    n = 9
    rgb, masks, binaural, mono = arrays(rng, n)
    src = read_3davs_scene(write_3davs_scene(tmp_path / "a", make_scene(n), rgb, masks, binaural, mono))
    stereo = np.concatenate(binaural, axis=1)
    write_scene(tmp_path / "b", src, rgb, None, None, masks, stereo)
    ours = read_scene(tmp_path / "b")
    assert ours.extra == {} and len(ours.frames) == n
    for a, b in zip(src.frames, ours.frames, strict=True):
        np.testing.assert_allclose(b.camera.camera_to_world, a.camera.camera_to_world, atol=1e-12)
    back = read_3davs_scene(tmp_path / "b")
    b4, _ = load_3davs_binaural(back, 4)
    np.testing.assert_allclose(b4, binaural[4], atol=2 / 16000)
