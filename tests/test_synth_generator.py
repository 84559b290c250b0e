"""The scene generator: presets written in readable layouts, exact masks, determinism, physical stereo audio."""

from __future__ import annotations

import ctypes.util
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("moderngl", reason="the generator renders with moderngl")
pytest.importorskip("pyroomacoustics", reason="the generator simulates rooms with pyroomacoustics")
if ctypes.util.find_library("EGL") is None:  # pragma: no cover - depends on the machine
    pytest.skip("libEGL not found: `apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri`", allow_module_level=True)

from soundmask.data.avsbench import AVSBenchDataset  # noqa: E402
from soundmask.data.avss import AVSS_CLASSES, AVSSDataset  # noqa: E402
from soundmask.data.scene import load_instance_mask, load_sound_mask, load_stereo, read_scene  # noqa: E402
from soundmask.data.threedavs import load_3davs_mask, read_3davs_scene  # noqa: E402
from soundmask.errors import ConfigError  # noqa: E402
from soundmask.synth.acoustics import geometric_tdoa  # noqa: E402
from soundmask.synth.generator import PRESETS, SynthConfig, generate_dataset, generate_scene, split_of  # noqa: E402

from _raycast import boundary, raycast  # noqa: E402


def seeds_from(rng: np.random.Generator, k: int) -> list[int]:
    return [int(s) for s in rng.integers(0, 1_000_000, k)]


# ------------------------------------------------------------------------------------------- layouts
@pytest.mark.parametrize("preset", ["s4", "ms3"])
def test_avsbench_presets_are_readable(tmp_path: Path, preset: str, rng: np.random.Generator) -> None:
    cfg = SynthConfig(preset=preset, width=64, split="test")
    s0 = seeds_from(rng, 1)[0]
    generate_dataset(cfg, tmp_path, 2, s0)
    ds = AVSBenchDataset(tmp_path, split="test")
    assert sorted(ds[i].name for i in range(len(ds))) == [f"{preset}_{s0:06d}", f"{preset}_{s0 + 1:06d}"]
    for k in range(2):
        clip = ds[k]
        sc = generate_scene(cfg, int(clip.name.split("_")[1]))
        assert clip.name == sc.name
        assert clip.frames.shape == (5, 64, 64, 3) and clip.sample_rate == 16000
        assert np.array_equal(clip.frames, sc.rgb)
        assert np.array_equal(clip.masks, sc.sound_masks)
        assert clip.audio.shape == (2, 80000)
        # 16-bit PCM round trip of the generated stereo
        assert np.abs(clip.audio - sc.stereo).max() <= 1.0 / 32767 + 1e-6
        n_sounding = sum(o.sounding for o in sc.scene.objects)
        if preset == "s4":
            assert n_sounding == 1 and len(sc.scene.objects) >= 2
            assert clip.category == next(o.category for o in sc.scene.objects if o.sounding)
        else:
            assert 2 <= n_sounding <= 3
        # the masks are the union of the sounding objects' instance masks, per frame
        for i in range(5):
            ids = sc.sounding_ids(i)
            assert np.array_equal(sc.sound_masks[i], np.isin(sc.instances[i], ids))
            assert set(ids) <= {o.id for o in sc.scene.objects if o.sounding}
        assert sc.sound_masks.any(), "a sounding object is visible and sounds at some frame"


def test_avss_preset_labels(tmp_path: Path, rng: np.random.Generator) -> None:
    cfg = SynthConfig(preset="avss", width=64, split="val")
    s = seeds_from(rng, 1)[0]
    sc = generate_scene(cfg, s)
    generate_dataset(cfg, tmp_path, 1, s)
    ds = AVSSDataset(tmp_path, split="val")
    clip = ds[0]
    assert np.array_equal(clip.labels, sc.labels)
    assert np.array_equal(clip.masks, sc.labels > 0)
    for o in sc.scene.objects:
        if o.sounding:
            assert o.extra["avss_class"] in AVSS_CLASSES
            assert AVSS_CLASSES[o.extra["avss_id"]] == o.extra["avss_class"]
    for i in range(5):
        for oid in sc.sounding_ids(i):
            px = sc.instances[i] == oid
            assert np.all(sc.labels[i][px] == sc.scene.object(oid).extra["avss_id"])
        assert np.all(sc.labels[i][~np.isin(sc.instances[i], sc.sounding_ids(i))] == 0)


@pytest.mark.parametrize("preset", ["scene3d", "scene4d"])
def test_scene_presets_are_readable(tmp_path: Path, preset: str, rng: np.random.Generator) -> None:
    cfg = SynthConfig(preset=preset, width=48, height=40, frames=12)
    s = seeds_from(rng, 1)[0]
    sc = generate_scene(cfg, s)
    generate_dataset(cfg, tmp_path, 1, s)
    root = tmp_path / sc.name
    scene = read_scene(root)
    assert len(scene.frames) == 12 and scene.size == (40, 48) and scene.sample_rate == 44100
    assert (tmp_path / "index.csv").read_text().splitlines()[1] == f"{sc.name},{s},{split_of(s)},{preset}"
    stereo = load_stereo(scene)
    assert stereo.shape == (2, 12 * 44100)
    for i, f in enumerate(scene.frames):
        assert np.array_equal(load_instance_mask(scene, i), sc.instances[i])
        assert np.array_equal(load_sound_mask(scene, i), sc.sound_masks[i])
        np.testing.assert_allclose(f.camera.camera_to_world, sc.scene.frames[i].camera.camera_to_world, atol=1e-9)
        assert f.extra["sounding"] == scene.sounding_ids(f.time, f.time + 1.0)
    moving = [o for o in scene.objects if o.moving]
    if preset == "scene4d":
        assert moving and all(o.sounding for o in moving)
        assert all(o.positions.shape == (12, 3) for o in moving)
        assert any(np.ptp(o.positions[:, :2], axis=0).max() > 0.05 for o in moving)
    else:
        assert not moving
    # the camera really moves, and stays inside the room with every object
    centres = np.stack([f.camera.center for f in scene.frames])
    assert np.linalg.norm(centres[-1] - centres[0]) > 0.5
    size = np.array(scene.room["size"])
    assert np.all(centres > 0) and np.all(centres < size)
    for o in scene.objects:
        assert np.all(o.positions > 0) and np.all(o.positions < size)
    # and the same folder is a valid 3DAVS-S34-O7 scene
    tdavs = read_3davs_scene(root)
    assert len(tdavs.frames) == 12
    for i in (0, 8):
        assert np.array_equal(load_3davs_mask(tdavs, i), sc.sound_masks[i])


# ------------------------------------------------------------------------------------------- exactness
def test_masks_and_depth_match_an_independent_ray_cast(rng: np.random.Generator) -> None:
    """Instance ids and depth of generated frames against trimesh/embree (or numpy) ray casting of the same
    world geometry: identical except on silhouettes."""
    cfg = SynthConfig(preset="scene4d", width=40, height=32, frames=6, meshes="procedural")
    for s in seeds_from(rng, 2):
        sc = generate_scene(cfg, s)
        for i in (0, 3, 5):
            cam = sc.scene.frames[i].camera
            ref_ids, ref_depth = raycast(sc.instances_at(i), cam)
            same = sc.instances[i] == ref_ids
            assert same.mean() >= 0.99, f"seed {s} frame {i}: ids agree on {same.mean():.4f}"
            hit = np.isfinite(ref_depth)
            edges = boundary(ref_ids, hit) | boundary(sc.instances[i].astype(np.int64), np.isfinite(sc.depth[i]))
            assert np.all(edges[~same])
            both = same & hit & ~edges
            err = np.abs(sc.depth[i][both].astype(np.float64) - ref_depth[both])
            assert err.max() <= 1e-3, f"depth error {err.max():.2g} m"
            # ground truth derived from the reference ids
            ids = sc.sounding_ids(i)
            ref_mask = np.isin(ref_ids, ids)
            assert (ref_mask == sc.sound_masks[i]).mean() >= 0.99


# ------------------------------------------------------------------------------------------ determinism
def _tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_byte_identical_files_in_fresh_processes(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "soundmask.cli",
        "synth",
        "--preset",
        "scene4d",
        "--frames",
        "4",
        "--width",
        "32",
        "--count",
        "1",
        "--seed",
        "4242",
    ]
    for k in ("a", "b"):
        r = subprocess.run([*cmd, "--out", str(tmp_path / k)], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
    a, b = _tree_hashes(tmp_path / "a"), _tree_hashes(tmp_path / "b")
    assert a == b
    assert any(k.endswith("stereo.wav") for k in a) and any("instance_masks" in k for k in a)
    assert any("audio/objects/" in k for k in a)  # the per-object stems are deterministic too


def test_different_seeds_give_different_scenes() -> None:
    cfg = SynthConfig(preset="s4", width=32)
    a, b = generate_scene(cfg, 1), generate_scene(cfg, 2)
    assert not np.array_equal(a.rgb, b.rgb)
    assert not np.array_equal(a.stereo, b.stereo)
    again = generate_scene(cfg, 1)
    assert np.array_equal(a.rgb, again.rgb) and np.array_equal(a.stereo, again.stereo)
    assert np.array_equal(a.sound_masks, again.sound_masks)


def test_frame_count_does_not_change_the_room() -> None:
    """Stages draw from separate random streams: a longer scene has the same objects and first pose."""
    a = generate_scene(SynthConfig(preset="scene3d", width=32, frames=4), 77)
    b = generate_scene(SynthConfig(preset="scene3d", width=32, frames=8), 77)
    assert [(o.category, o.mesh) for o in a.scene.objects] == [(o.category, o.mesh) for o in b.scene.objects]


def test_framing_options() -> None:
    """``framing=random`` frames a non-empty subset chosen without looking at which objects sound; ``all`` frames
    every object, so its camera stands at least as far back as the one that frames only the sounding ones."""
    from soundmask.synth.generator import _framed_ids

    rng = np.random.default_rng(0)
    draws = [_framed_ids("random", 4, {2}, rng) for _ in range(400)]
    assert all(d and d <= {1, 2, 3, 4} for d in draws)
    left_out = np.mean([3 not in d for d in draws])  # the sounding object (index 2 → id 3) is not framed
    assert 0.25 < left_out < 0.6
    assert _framed_ids("sounding", 4, {2}, rng) == {3} and _framed_ids("all", 4, {2}, rng) is None
    dist = {}
    for framing in ("sounding", "all"):
        sc = generate_scene(SynthConfig(preset="s4", width=32, framing=framing), 3)  # type: ignore[arg-type]
        eye = sc.scene.frames[0].camera.camera_to_world[:3, 3]
        objs = np.array([o.positions[0, :2] for o in sc.scene.objects])
        dist[framing] = float(np.linalg.norm(objs - eye[:2], axis=1).max())
        assert sc.scene.extra["generator"]["framing"] == framing
    assert dist["all"] >= dist["sounding"] - 1e-6
    with pytest.raises(ConfigError, match="framing"):
        SynthConfig(preset="s4", framing="centre").resolved()  # type: ignore[arg-type]


def test_splits_are_by_seed() -> None:
    splits = [split_of(s) for s in range(3000)]
    frac = {k: splits.count(k) / len(splits) for k in ("train", "val", "test")}
    assert abs(frac["train"] - 0.8) < 0.03 and abs(frac["val"] - 0.1) < 0.02 and abs(frac["test"] - 0.1) < 0.02
    assert [split_of(s) for s in range(50)] == splits[:50]


# --------------------------------------------------------------------------------------- stereo physics
def gcc_phat(left: np.ndarray, right: np.ndarray, sr: int, max_tau: float, interp: int = 32) -> float:
    """Test-local GCC-PHAT (independent of soundmask.audio): τ = t_right − t_left, positive when the left
    microphone hears first; PHAT weighting on 100–8000 Hz bins above 1e-6 of the peak."""
    n = 2 * len(left)
    L, R = np.fft.rfft(left, n), np.fft.rfft(right, n)
    X = R * np.conj(L)  # peaks at lag t_right − t_left
    f = np.fft.rfftfreq(n, 1 / sr)
    mag = np.abs(X)
    keep = (f >= 100) & (f <= 8000) & (mag > 1e-6 * mag.max())
    W = np.where(keep, X / np.maximum(mag, 1e-30), 0)
    cc = np.fft.irfft(W, n * interp)
    m = int(np.ceil(max_tau * sr * interp))
    cc = np.concatenate([cc[-m:], cc[: m + 1]])
    k = int(np.argmax(cc))
    if 0 < k < len(cc) - 1:  # parabolic refinement
        a, b, c = cc[k - 1], cc[k], cc[k + 1]
        k = k + 0.5 * (a - c) / (a - 2 * b + c)
    return (k - m) / (sr * interp)


@pytest.mark.parametrize("preset", ["scene3d", "scene4d"])
def test_stereo_time_difference_matches_scene_geometry(tmp_path: Path, preset: str, rng: np.random.Generator) -> None:
    """On frames where exactly one object sounds, GCC-PHAT of the frame's 1-s stereo window is within 50 µs of
    the geometric TDoA from scene.json (anechoic), for scenes from random seeds."""
    cfg = SynthConfig(preset=preset, width=32, frames=20, rt60_max=0.0)
    errors = []
    for s in seeds_from(rng, 2):
        generate_dataset(cfg, tmp_path, 1, s)
        scene = read_scene(tmp_path / f"{preset}_{s:06d}")
        assert scene.room["rt60"] == 0.0
        stereo = load_stereo(scene)
        sr = scene.sample_rate
        for f in scene.frames:
            ids = scene.sounding_ids(f.time, f.time + 1.0)
            # exactly one object, sounding for the whole window
            full = [e for e in scene.sound_events if e.start <= f.time and e.end >= f.time + 1.0]
            if len(ids) != 1 or len(full) != 1:
                continue
            obj = scene.object(ids[0])
            src = obj.positions[f.index] if obj.moving else obj.positions[0]
            a, b = int(round(f.time * sr)), int(round((f.time + 1.0) * sr))
            win = stereo[:, a + 441 : b - 441]  # skip the 10-ms crossfades at the window edges
            if np.sqrt(np.mean(win**2)) < 1e-4:
                continue  # a silent stretch inside the event
            est = gcc_phat(win[0], win[1], sr, max_tau=0.25 / scene.speed_of_sound)
            true = geometric_tdoa(src, f.mic_left, f.mic_right, scene.speed_of_sound)
            errors.append(abs(est - true))
    assert len(errors) >= 4, "need frames with a single sounding object"
    errors = np.array(errors)
    assert np.median(errors) <= 10e-6
    assert np.mean(errors <= 50e-6) >= 0.9, f"errors (µs): {np.round(errors * 1e6, 1)}"


# ------------------------------------------------------------------------------------------------ errors
def test_bad_configs_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="exactly 5 frames"):
        SynthConfig(preset="s4", frames=7).resolved()
    with pytest.raises(ConfigError, match="unknown categories"):
        SynthConfig(categories="dog,unicorn").resolved()
    with pytest.raises(ConfigError, match="AVSS class"):
        generate_scene(SynthConfig(preset="avss", categories="tv,radio,phone", width=32), 1)
    assert set(PRESETS) == {"s4", "ms3", "avss", "scene3d", "scene4d", "s4real", "ms3real"}


def test_cli_bad_option_exits_2_with_one_line(tmp_path: Path) -> None:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "soundmask.cli",
            "synth",
            "--preset",
            "s4",
            "--frames",
            "3",
            "--out",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "5 frames" in lines[0] and "fix" in lines[0]
    assert not (tmp_path / "x").exists()
