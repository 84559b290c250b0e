"""Our scene format (scene.json + 3DAVS files + depth/instances/audio) and dataset layout detection."""

from __future__ import annotations

import json

import numpy as np
import pytest

from soundmask.data import io
from soundmask.data.colmap import read_model
from soundmask.data.layout import detect_layout
from soundmask.data.scene import (
    frame_clips,
    load_depth,
    load_instance_mask,
    load_mono,
    load_rgb,
    load_sound_mask,
    load_stereo,
    read_scene,
    write_scene,
)
from soundmask.data.threedavs import load_3davs_binaural, read_3davs_scene
from soundmask.data.types import Camera, Intrinsics, Scene, SceneFrame, SoundEvent, SoundObject, look_at
from soundmask.errors import DataError

H, W, SR, T = 20, 28, 8000, 9


def make_scene() -> Scene:
    k = Intrinsics(30.0, 30.5, W / 2, H / 2, W, H)
    frames = []
    for i in range(T):
        a = 0.3 * i
        c2w = look_at([2.5 * np.cos(a), 2.5 * np.sin(a), 1.2])
        extra = {"exposure": 0.5} if i == 2 else {}
        frames.append(
            SceneFrame(i, i / 2.0, "", Camera(k, c2w), c2w[:3, 3] - [0.1, 0, 0], c2w[:3, 3] + [0.1, 0, 0], extra)
        )
    objects = [
        SoundObject(1, "dog", True, "meshes/dog.obj", [[0.0, 0.0, 0.0]], {"scale": 1.5}),
        SoundObject(2, "car", True, "", np.stack([[0.1 * i, 0.5, 0.0] for i in range(T)])),
        SoundObject(3, "table", False, "meshes/table.obj", [[1.0, 1.0, 0.0]]),
    ]
    events = [SoundEvent(1, 0.4, 1.9, "bark.wav"), SoundEvent(2, 2.0, 4.0, "engine", {"gain_db": -3.0})]
    return Scene(
        frames, objects, events, fps=2.0, sample_rate=SR, room={"size": [4.0, 5.0, 3.0], "rt60": 0.3},
        extra={"generator": {"seed": 7}, "version": 1},
    )  # fmt: skip


def make_data(rng):
    rgb = rng.integers(0, 256, (T, H, W, 3), dtype=np.uint8)
    inst = rng.integers(0, 4, (T, H, W)).astype(np.uint16)
    inst[0, 0, 0] = 3
    depth = rng.uniform(0.5, 6.0, (T, H, W)).astype(np.float32)
    depth[:, 0, :] = 0.0  # no surface
    stereo = rng.uniform(-0.5, 0.5, (2, int(SR * 5.2))).astype(np.float32)
    return rgb, inst, depth, stereo


@pytest.fixture
def written(tmp_path, rng):
    scene = make_scene()
    rgb, inst, depth, stereo = make_data(rng)
    out = write_scene(tmp_path / "scene", scene, rgb, inst, depth, None, stereo)
    return scene, out, rgb, inst, depth, stereo


@pytest.mark.parametrize("depth_format", ["npy", "png"])
def test_write_read_round_trip(tmp_path, rng, depth_format):
    scene = make_scene()
    rgb, inst, depth, stereo = make_data(rng)
    sound = rng.random((T, H, W)) > 0.5
    mono = rng.uniform(-0.3, 0.3, stereo.shape[1]).astype(np.float32)
    write_scene(tmp_path / "s", scene, rgb, inst, depth, sound, stereo, mono, depth_format=depth_format)
    back = read_scene(tmp_path / "s")
    assert back.root == tmp_path / "s" and back.name == "s"
    assert (back.fps, back.sample_rate, back.speed_of_sound, back.room) == (2.0, SR, 343.0, scene.room)
    assert back.extra == {"generator": {"seed": 7}, "version": 1}
    assert back.size == (H, W) and back.intrinsics == scene.intrinsics
    for i, (f0, f1) in enumerate(zip(scene.frames, back.frames, strict=True)):
        assert (f1.index, f1.time, f1.file) == (f0.index, f0.time, f"input/{i:05d}.png")
        np.testing.assert_array_equal(f1.camera.camera_to_world, f0.camera.camera_to_world)  # exact through JSON
        np.testing.assert_array_equal(f1.mic_left, f0.mic_left)
        np.testing.assert_array_equal(f1.mic_right, f0.mic_right)
        assert f1.extra == f0.extra
    for o0, o1 in zip(scene.objects, back.objects, strict=True):
        assert (o1.id, o1.category, o1.sounding, o1.mesh, o1.extra, o1.moving) == (
            o0.id, o0.category, o0.sounding, o0.mesh, o0.extra, o0.moving,
        )  # fmt: skip
        np.testing.assert_array_equal(o1.positions, o0.positions)
    assert back.sound_events == scene.sound_events
    js = json.loads((tmp_path / "s" / "scene.json").read_text())
    assert "position" in js["objects"][0] and "positions" in js["objects"][1]
    assert js["intrinsics"] == {"fx": 30.0, "fy": 30.5, "cx": W / 2, "cy": H / 2}

    for i in (0, 4, T - 1):
        np.testing.assert_array_equal(load_rgb(back, i), rgb[i])
        np.testing.assert_array_equal(load_sound_mask(back, i), sound[i])
        m = load_instance_mask(back, i)
        assert m.dtype == np.int32
        np.testing.assert_array_equal(m, inst[i])
        d = load_depth(back, i)
        assert d.dtype == np.float32 and d.shape == (H, W)
        np.testing.assert_allclose(d, depth[i], atol=0 if depth_format == "npy" else 5e-4)
        assert (d[0] == 0).all()
    st = load_stereo(back)
    assert st.shape == stereo.shape
    np.testing.assert_allclose(st, stereo, atol=1 / 16000)
    np.testing.assert_allclose(load_mono(back), mono, atol=1 / 16000)


def test_our_scene_reads_as_3davs(written):
    scene, out, rgb, inst, depth, stereo = written
    assert detect_layout(out.root) == "scene"
    td = read_3davs_scene(out.root)
    assert [f.file for f in td.frames] == [f.file for f in out.frames]
    for a, b in zip(td.frames, out.frames, strict=True):
        np.testing.assert_allclose(a.camera.camera_to_world, b.camera.camera_to_world, atol=1e-12)
        assert a.camera.intrinsics == b.camera.intrinsics
    assert td.extra["split"]["test"] == ["00000", "00008"] and td.test_views() == out.test_views() == [0, 8]
    # the binaural clip of frame 3 is 1 s of the stereo track from the frame's time (1.5 s)
    clip, sr = load_3davs_binaural(td, 3)
    np.testing.assert_allclose(clip, stereo[:, int(1.5 * SR) : int(2.5 * SR)], atol=1 / 16000)
    # sparse/0 points3D seeded from depth lie where the depth says
    xyz, rgb_pts = read_model(out.root / "sparse" / "0").points_xyz_rgb()
    n0 = (H - 1) * W  # every pixel with depth (row 0 has none), frame after frame: small enough to keep all
    assert len(xyz) == T * n0
    uv, z = out.frames[0].camera.project(xyz[:n0])  # frame 0's points land on frame 0's pixel centres
    vv, uu = np.mgrid[1:H, 0:W]
    np.testing.assert_allclose(uv, np.stack([uu.ravel() + 0.5, vv.ravel() + 0.5], axis=1), atol=1e-9)
    np.testing.assert_allclose(z, depth[0][1:].ravel(), rtol=1e-6)
    np.testing.assert_array_equal(rgb_pts[:n0], rgb[0][1:].reshape(-1, 3))


def test_sound_masks_derived_from_events(written):
    scene, out, rgb, inst, depth, stereo = written
    back = read_scene(out.root)
    # frame 0 (t=0, window [0,1)): dog (1) barks from 0.4 s; frame 4 (t=2): car (2); frame 8 (t=4): nobody
    np.testing.assert_array_equal(load_sound_mask(back, 0), inst[0] == 1)
    np.testing.assert_array_equal(load_sound_mask(back, 4), inst[4] == 2)
    np.testing.assert_array_equal(load_sound_mask(back, 3), np.isin(inst[3], [1, 2]))  # [1.5, 2.5)
    assert not load_sound_mask(back, 8).any()


def test_frame_clips_pad_past_the_end():
    a = np.arange(10, dtype=np.float32)
    c = frame_clips(a, 2, [0.0, 4.5], seconds=1.5)
    np.testing.assert_array_equal(c[0], [0, 1, 2])
    np.testing.assert_array_equal(c[1], [9, 0, 0])


# ------------------------------------------------------------------------------------------- errors
def _edit_json(root, fn):
    p = root / "scene.json"
    obj = json.loads(p.read_text())
    fn(obj)
    p.write_text(json.dumps(obj))
    return p


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda o: o.pop("fps"), "missing key 'fps'"),
        (lambda o: o["intrinsics"].pop("cy"), "intrinsics: missing key 'cy'"),
        (lambda o: o["frames"][3].pop("camera_to_world"), r"frames\[3\]: missing key 'camera_to_world'"),
        (lambda o: o["objects"][0].pop("position"), r"objects\[0\]: missing key 'position'"),
        (lambda o: o["sound_events"][1].pop("end"), r"sound_events\[1\]: missing key 'end'"),
        (lambda o: o["frames"][1]["camera_to_world"][0].__setitem__(0, 2.0), "not a rigid transform"),
        (lambda o: o["frames"][1]["camera_to_world"][0].__setitem__(0, float("nan")), "NaN or infinite"),
        (lambda o: o["frames"][1]["camera_to_world"].pop(), "must be a 4x4 matrix"),
        (lambda o: o["objects"][1]["positions"].pop(), r"positions has 8 rows, the scene has 9 frames"),
        (lambda o: o["sound_events"][0].__setitem__("object_id", 42), "object_id 42 is not an object"),
        (lambda o: o.__setitem__("width", "wide"), "width must be an integer"),
    ],
)
def test_bad_scene_json_names_file_and_key(written, edit, message):
    out = written[1]
    p = _edit_json(out.root, edit)
    with pytest.raises(DataError, match=message) as e:
        read_scene(out.root)
    assert str(e.value).startswith(f"{p}: ")


def test_missing_folder_json_and_frame(tmp_path, written):
    with pytest.raises(DataError, match="scene folder not found"):
        read_scene(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="scene.json not found") as e:
        read_scene(tmp_path / "empty")
    assert str(tmp_path / "empty" / "scene.json") in str(e.value)
    root = written[1].root
    (root / "input" / "00002.png").unlink()
    with pytest.raises(DataError, match="frame 2 file listed in scene.json not found") as e:
        read_scene(root / "scene.json")
    assert str(root / "input" / "00002.png") in str(e.value)


def test_depth_of_wrong_size_and_missing(written):
    root = written[1].root
    scene = read_scene(root)
    np.save(root / "depth" / "00001.npy", np.ones((H, W + 2), np.float32))
    with pytest.raises(DataError, match=f"depth is {H}x{W + 2} \\(HxW\\), expected {H}x{W}") as e:
        load_depth(scene, 1)
    assert str(root / "depth" / "00001.npy") in str(e.value)
    (root / "depth" / "00002.npy").unlink()
    io.write_image(root / "depth" / "00002.png", np.ones((H + 1, W), np.uint16))
    with pytest.raises(DataError, match="00002.png: depth is"):
        load_depth(scene, 2)
    (root / "depth" / "00003.npy").unlink()
    with pytest.raises(DataError, match="no depth for frame 00003"):
        load_depth(scene, 3)
    np.save(root / "depth" / "00004.npy", np.full((H, W), np.nan, np.float32))
    with pytest.raises(DataError, match="NaN or negative"):
        load_depth(scene, 4)


def test_mono_where_stereo_is_required(written):
    root = written[1].root
    scene = read_scene(root)
    io.write_audio(root / "audio" / "stereo.wav", np.zeros(SR), SR)
    with pytest.raises(DataError, match="audio is mono; stereo .* is required") as e:
        load_stereo(scene)
    assert str(root / "audio" / "stereo.wav") in str(e.value)
    io.write_audio(root / "audio" / "stereo.wav", np.zeros((2, SR)), SR * 2)
    with pytest.raises(DataError, match="sample rate is 16000 Hz, expected 8000 Hz"):
        load_stereo(scene)


def test_writer_argument_errors(tmp_path, rng):
    scene = make_scene()
    rgb, inst, depth, stereo = make_data(rng)
    with pytest.raises(ValueError, match="stereo must be \\(2, samples\\)"):
        write_scene(tmp_path / "s", scene, rgb, inst, depth, None, stereo[0])
    with pytest.raises(ValueError, match="give sound_masks"):
        write_scene(tmp_path / "s", scene, rgb, None, depth, None, stereo)
    with pytest.raises(ValueError, match="exceeds 65.535 m"):
        write_scene(tmp_path / "s", scene, rgb, inst, depth * 100, None, stereo, depth_format="png")
    assert not (tmp_path / "s").exists()


# ------------------------------------------------------------------------------------------- layout
def test_detect_layout(tmp_path, written):
    assert detect_layout(written[1].root) == "scene"
    assert detect_layout(written[1].root / "scene.json") == "scene"
    td = tmp_path / "td"
    (td / "input").mkdir(parents=True)
    (td / "sparse" / "0").mkdir(parents=True)
    assert detect_layout(td) == "3davs"
    for csv, kind in (("s4_meta_data.csv", "avsbench-s4"), ("ms3_meta_data.csv", "avsbench-ms3")):
        d = tmp_path / kind
        d.mkdir()
        (d / csv).write_text("name,start_time,category,split\n")
        assert detect_layout(d) == kind
        assert detect_layout(d / csv) == kind
    avss = tmp_path / "avss"
    (avss / "v2").mkdir(parents=True)
    (avss / "metadata.csv").write_text("uid,label,split\n")
    assert detect_layout(avss) == "avss"


def test_detect_layout_errors(tmp_path):
    with pytest.raises(DataError, match="dataset folder not found"):
        detect_layout(tmp_path / "nope")
    (tmp_path / "metadata.csv").write_text("uid\n")  # AVSS csv without its folders
    with pytest.raises(DataError, match="no known dataset layout") as e:
        detect_layout(tmp_path)
    msg = str(e.value)
    assert str(tmp_path) in msg
    for need in ("scene.json", "sparse/0", "s4_meta_data.csv", "ms3_meta_data.csv", "v1s/"):
        assert need in msg
    (tmp_path / "s4_meta_data.csv").write_text("")
    (tmp_path / "ms3_meta_data.csv").write_text("")
    with pytest.raises(DataError, match="ambiguous"):
        detect_layout(tmp_path)
