"""3D from a user's video: COLMAP poses (pycolmap), the pose metric, and `soundmask run` going on to 3D."""

from __future__ import annotations

import ctypes.util
import json
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from soundmask.data.types import Camera, Intrinsics
from soundmask.metrics.poses import align_similarity, pose_errors
from soundmask.splat.train import ReconstructConfig

K = Intrinsics(50.0, 50.0, 32.0, 32.0, 64, 64)


def _cams(n: int, rng: np.random.Generator) -> dict[str, Camera]:
    out = {}
    for i in range(n):
        m = np.eye(4)
        m[:3, :3] = Rotation.random(random_state=int(rng.integers(1 << 30))).as_matrix()
        m[:3, 3] = rng.normal(size=3) * 2
        out[f"{i:05d}"] = Camera(K, m)
    return out


def _transformed(cams: dict[str, Camera], s: float, R: np.ndarray, t: np.ndarray) -> dict[str, Camera]:
    out = {}
    for n, c in cams.items():
        m = np.eye(4)
        m[:3, :3] = R @ c.camera_to_world[:3, :3]
        m[:3, 3] = s * R @ c.camera_to_world[:3, 3] + t
        out[n] = Camera(K, m)
    return out


def test_pose_errors_are_zero_up_to_a_similarity_and_grow_with_noise() -> None:
    rng = np.random.default_rng(0)
    est = _cams(12, rng)
    R = Rotation.from_euler("xyz", [30, -50, 110], degrees=True).as_matrix()
    truth = _transformed(est, 2.5, R, np.array([1.0, -2.0, 0.5]))
    e = pose_errors(est, truth)
    assert e.cameras == 12 and e.centre_max < 1e-9 and e.rotation_max_deg < 1e-5
    assert e.scale == pytest.approx(2.5)
    s, R2, t = align_similarity(
        np.array([c.center for c in est.values()]), np.array([c.center for c in truth.values()])
    )
    assert s == pytest.approx(2.5) and np.allclose(R2, R) and np.allclose(t, [1.0, -2.0, 0.5])
    # one camera moved by 0.3 and turned by 10 degrees: its errors show, the median barely moves
    bad = dict(truth)
    m = truth["00003"].camera_to_world.copy()
    m[:3, :3] = Rotation.from_euler("z", 10, degrees=True).as_matrix() @ m[:3, :3]
    m[:3, 3] += [0.3, 0.0, 0.0]
    bad["00003"] = Camera(K, m)
    e2 = pose_errors(est, bad)
    assert 0.1 < e2.centre_max < 0.35 and 9.0 < e2.rotation_max_deg < 11.0
    assert e2.centre_median < 0.05 and e2.rotation_median_deg < 1.0


def test_pose_errors_need_three_common_cameras() -> None:
    cams = _cams(2, np.random.default_rng(1))
    with pytest.raises(ValueError, match="at least 3"):
        pose_errors(cams, cams)


def test_too_few_frames_and_unmatchable_frames_are_pose_errors() -> None:
    from soundmask.vision.poses import PoseError, estimate_poses

    rng = np.random.default_rng(2)
    noise = [(rng.random((64, 64, 3)) * 255).astype(np.uint8) for _ in range(6)]
    with pytest.raises(PoseError, match="at least 3 views"):
        estimate_poses(noise[:2], ["a", "b"])
    with pytest.raises(PoseError, match=r"registered \d+ of 6 frames"):
        estimate_poses(noise, [f"{i}" for i in range(6)])


needs_egl = pytest.mark.skipif(ctypes.util.find_library("EGL") is None, reason="the generator needs libEGL")


@pytest.fixture(scope="module")
def orbit_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("moderngl")
    from soundmask.synth.generator import SynthConfig, generate_dataset

    out = tmp_path_factory.mktemp("orbit")
    generate_dataset(SynthConfig(preset="scene3d", width=64, frames=48), out, 1, 4)
    return out / "scene3d_000004"


@needs_egl
def test_colmap_recovers_the_generator_cameras(orbit_scene: Path) -> None:
    from soundmask.data.scene import load_rgb, read_scene
    from soundmask.vision.poses import estimate_poses

    scene = read_scene(orbit_scene)
    frames = [load_rgb(scene, i) for i in range(len(scene.frames))]
    names = [f"{i:05d}" for i in range(len(frames))]
    est = estimate_poses(frames, names)
    assert est.registered_share >= 0.9 and len(est.points) > 100
    assert est.names == [n for n in names if n in est.cameras]  # video order
    e = pose_errors(est.cameras, {n: scene.frames[i].camera for i, n in enumerate(names)})
    # the orbit's radius is about 2 m; 64-px frames
    assert e.rotation_median_deg < 3.0 and e.centre_median < 0.15, e
    k = est.cameras[est.names[0]].intrinsics
    assert (k.width, k.height) == (64, 64)
    assert k.fx == pytest.approx(scene.frames[0].camera.intrinsics.fx, rel=0.1)


@needs_egl
def test_run_lifts_a_moving_stereo_video_to_3d(
    orbit_scene: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from soundmask.data.scene import read_scene, write_scene_video
    from soundmask.data.threedavs import read_3davs_scene
    from soundmask.lift.tags import SoundScene
    from soundmask.pipeline.video import RunConfig, run_video

    scene = read_scene(orbit_scene)
    video = write_scene_video(scene, tmp_path / "orbit.mkv")
    out = tmp_path / "out"
    s = run_video(video, RunConfig(fps=scene.fps, size_3d=48, reconstruct=ReconstructConfig(iterations=120)), out)
    assert s.mode == "3d", s.reason
    assert s.poses is not None and s.poses["registered"] >= 0.9 * len(scene.frames)
    lift = s.lift
    assert lift is not None
    assert lift["registered_frames"] == len(lift["video_frames"]) == s.poses["registered"]
    assert lift["psnr_test"] > 18.0, lift["psnr_test"]
    assert json.loads((out / "run.json").read_text()) == s.summary and s.summary["lift"] == lift
    # the scene folder is a 3DAVS-layout scene without ground truth; `soundmask lift` can read it again
    vs = read_3davs_scene(out / "scene")
    assert len(vs.frames) == lift["registered_frames"] and not (out / "scene" / "semantic_masks").exists()
    assert len(list((out / "scene" / "audio_clips_binaural").glob("*.wav"))) == len(vs.frames)
    ss = SoundScene.load(out / "lift" / "sound_scene.pt")
    assert len(ss.gaussians) == lift["gaussians"]
    assert {p.name for p in (out / "lift" / "renders").glob("mask_*.png")} == {
        f"mask_{i:05d}.png" for i in lift["test_views"]
    }
    # lifted again from the written scene alone (COLMAP points, per-frame clips): no ground truth, no score
    from soundmask.pipeline.lift3d import LiftConfig, run_lift

    again = run_lift(out / "scene", LiftConfig(method="sdavs"), reconstruct=ReconstructConfig(iterations=30))
    assert again.metrics["miou"] is None and again.metrics["test_views"] == lift["test_views"]
    assert not (tmp_path / ".out.cache").exists()  # a finished run leaves no cache behind

    # killed during lifting: no output, the finished stages are cached; the rerun skips them and gives the same
    import soundmask.pipeline.lift3d as lift3d
    import soundmask.splat.train as train
    import soundmask.vision.poses as poses

    cfg = RunConfig(fps=scene.fps, size_3d=48, reconstruct=ReconstructConfig(iterations=120))
    out2 = tmp_path / "out2"

    def killed(*a: object, **k: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(lift3d, "run_lift", killed)
        with pytest.raises(KeyboardInterrupt):
            run_video(video, cfg, out2)
    assert not out2.exists() and (tmp_path / ".out2.cache").is_dir()
    with monkeypatch.context() as m:
        m.setattr(poses, "estimate_poses", killed)
        m.setattr(train, "fit", killed)
        s2 = run_video(video, cfg, out2)
    assert s2.cached_stages == s2.summary["cached_stages"] == ["2d", "poses", "reconstruct"]

    def result(x: dict) -> dict:  # all but the timings
        return {k: v for k, v in x.items() if not k.endswith("seconds")}

    assert s2.poses is not None and s2.lift is not None
    assert result(s2.poses) == result(s.poses) and result(s2.lift) == result(lift)
    assert s2.reason == s.reason
    assert not (tmp_path / ".out2.cache").exists()


def test_scene_video_round_trip_keeps_frames_and_stereo(tmp_path: Path) -> None:
    from soundmask.avs2d.frames import read_frame_source
    from soundmask.data.video import write_video

    rng = np.random.default_rng(3)
    frames = (rng.random((5, 32, 48, 3)) * 255).astype(np.uint8)
    t = np.arange(5 * 8000) / 8000
    audio = np.stack([np.sin(2 * np.pi * 300 * t), np.sin(2 * np.pi * 300 * (t - 0.001))]).astype(np.float32) * 0.5
    src = read_frame_source(write_video(tmp_path / "v.mkv", frames, 1.0, audio=audio, sample_rate=8000), fps=1.0)
    assert len(src) == 5 and src.audio.shape == (2, audio.shape[1]) and src.sample_rate == 8000
    assert np.abs(src.audio - audio).max() < 1e-3  # 16-bit PCM: the inter-channel delay survives


def test_plane_sweep_recovers_the_depth_of_a_textured_plane() -> None:
    """Five cameras translating along x in front of a random-textured plane at z = 3: each image is the texture
    shifted by f·Δx/3 pixels, so the true depth is 3 everywhere."""
    from soundmask.vision.mvs import plane_sweep_depth

    rng = np.random.default_rng(4)
    f, H, W = 60.0, 48, 64
    k = Intrinsics(f, f, W / 2, H / 2, W, H)
    tex = np.repeat(np.repeat(rng.random((H // 2, (W + 40) // 2, 3)), 2, 0), 2, 1).astype(np.float32)
    cams, imgs = [], []
    for i in range(5):
        m = np.eye(4)
        m[0, 3] = 0.1 * i  # shift 2 px per camera
        cams.append(Camera(k, m))
        imgs.append(tex[:, 2 * i : 2 * i + W])
    pts = np.array([[x, y, z] for x in (-1.0, 0.0, 1.0) for y in (-0.5, 0.5) for z in (2.0, 5.0)])
    depth = plane_sweep_depth(np.stack(imgs), cams, list(range(5)), pts)
    assert set(depth) == set(range(5))
    d = depth[2]
    ok = np.isfinite(d)
    assert ok.mean() > 0.5, ok.mean()
    assert np.median(np.abs(d[ok] - 3.0)) / 3.0 < 0.03, np.median(d[ok])
    # a flat, textureless image has a flat cost curve: nothing is kept
    flat = plane_sweep_depth(np.full((3, H, W, 3), 0.5, np.float32), cams[:3], [0, 1, 2], pts)
    assert all(np.isnan(v).all() for v in flat.values())
