"""Bad inputs to every command: one line on stderr naming the problem (and the file), exit code 2, and no partial
output. Also `soundmask run` on good videos: 2D outputs, and the 2D-only reasons (mono audio, static camera)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

av = pytest.importorskip("av")

H, W = 48, 64
SR = 16000


@pytest.fixture
def cli(capfd: pytest.CaptureFixture[str]):
    """Run ``soundmask ARGS`` in this process (no start-up cost) through the console entry point, which maps
    user errors to one line and exit code 2; returns a CompletedProcess-like record."""
    from soundmask import cli as cli_mod

    def run(*args: object) -> subprocess.CompletedProcess:
        capfd.readouterr()
        old = sys.argv
        sys.argv = ["soundmask", *map(str, args)]
        code: int | str | None = 0
        try:
            cli_mod.main()
        except SystemExit as e:
            code = e.code
        finally:
            sys.argv = old
        out, err = capfd.readouterr()
        return subprocess.CompletedProcess(args, code if isinstance(code, int) else 1, out, err)

    return run


def test_exit_code_2_from_a_real_process(tmp_path: Path) -> None:
    """The same contract seen from outside: the process exits with 2 and prints one line."""
    r = subprocess.run(
        [sys.executable, "-m", "soundmask.cli", "run", str(tmp_path / "missing.mp4")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    _one_line_exit_2(r, "not found", "missing.mp4")


def _one_line_exit_2(r: subprocess.CompletedProcess, *needles: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stdout[-500:], r.stderr[-2000:])
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    for n in needles:
        assert n.lower() in lines[0].lower(), (n, lines[0])


def _frames(n: int, moving: bool, rng: np.random.Generator) -> list[np.ndarray]:
    """A textured random image; each frame shifts it by 3 px (moving) or repeats it (static)."""
    base = (rng.random((H + 4 * n, W + 4 * n, 3)) * 255).astype(np.uint8)
    base = np.repeat(np.repeat(base[::4, ::4], 4, 0), 4, 1)  # blocky: trackable corners
    return [
        np.ascontiguousarray(base[(3 * i if moving else 0) :][:H, (3 * i if moving else 0) :][:, :W]) for i in range(n)
    ]


def _video(
    path: Path,
    n: int = 6,
    rate: int = 2,
    channels: int | None = 2,
    audio_seconds: float | None = None,
    moving: bool = True,
    seed: int = 0,
) -> Path:
    """An MKV (MPEG-4 video, PCM audio) of ``n`` frames at ``rate`` fps with a tone of ``audio_seconds`` (default:
    the video's length) on ``channels`` channels (None: no audio track)."""
    rng = np.random.default_rng(seed)
    frames = _frames(n, moving, rng)
    with av.open(str(path), "w", format="matroska") as c:
        vs = c.add_stream("mpeg4", rate=rate, options={"qscale": "2"})
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        layout = {1: "mono", 2: "stereo"}.get(channels or 0)
        aus = c.add_stream("pcm_s16le", rate=SR, layout=layout) if channels else None
        for f in frames:
            c.mux(vs.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        c.mux(vs.encode(None))
        if aus is not None:
            secs = n / rate if audio_seconds is None else audio_seconds
            t = np.arange(int(SR * secs)) / SR
            x = (0.3 * np.sin(2 * np.pi * 440 * t) * (t % 1 < 0.6)).astype(np.float32)
            data = np.round(np.tile(x, (channels, 1)) * 32767).astype(np.int16)
            fr = av.AudioFrame.from_ndarray(
                data.reshape(1, -1) if channels == 1 else data.T.reshape(1, -1).copy(), format="s16", layout=layout
            )
            fr.sample_rate = SR
            c.mux(aus.encode(fr))
            c.mux(aus.encode(None))
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("videos")
    corrupt = d / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    return {
        "stereo_moving": _video(d / "stereo_moving.mkv"),
        "stereo_static": _video(d / "stereo_static.mkv", moving=False),
        "mono": _video(d / "mono.mkv", channels=1),
        "silent": _video(d / "silent.mkv", channels=None),
        "short_audio": _video(d / "short_audio.mkv", n=8, audio_seconds=1.0),
        "one_frame": _video(d / "one_frame.mkv", n=1),
        "corrupt": corrupt,
        "missing": d / "missing.mp4",
    }


def _no_output(out: Path) -> None:
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*")), sorted(out.rglob("*"))[:5]


# ------------------------------------------------------------------------------------------ soundmask run
@pytest.mark.parametrize(
    ("case", "needles"),
    [
        ("missing", ["not found", "missing.mp4"]),
        ("corrupt", ["corrupt.mp4"]),
        ("silent", ["no sound track", "--audio"]),
        ("short_audio", ["shorter than the video", "short_audio.mkv"]),
        ("one_frame", ["1 frame", "one_frame.mkv"]),
    ],
)
def test_run_refuses_bad_videos(cli, videos: dict[str, Path], tmp_path: Path, case: str, needles: list[str]) -> None:
    out = tmp_path / "out"
    r = cli("run", videos[case], "--out", out, "--fps", 2)
    _one_line_exit_2(r, *needles)
    _no_output(out)


def test_segment_refuses_bad_videos(cli, videos: dict[str, Path], tmp_path: Path) -> None:
    for case, needle in (
        ("silent", "no sound track"),
        ("short_audio", "shorter than the video"),
        ("corrupt", "corrupt.mp4"),
        ("one_frame", "1 frame"),
    ):
        out = tmp_path / case
        _one_line_exit_2(cli("segment", "--frames", videos[case], "--out", out), needle)
        _no_output(out)


@pytest.mark.parametrize(
    "args",
    [
        ["run", "{video}", "--method", "nosuch", "--out", "{out}"],
        ["segment", "--frames", "{video}", "--method", "nosuch", "--out", "{out}"],
        ["evaluate", "--method", "nosuch", "--data", "{tmp}", "--json", "{out}/e.json"],
        ["train", "--method", "nosuch", "--data", "{tmp}", "--out", "{out}/c.pt"],
        ["lift", "--scene", "{tmp}", "--method", "nosuch", "--json", "{out}/l.json"],
        ["demo", "--method", "nosuch", "--out", "{out}"],
    ],
)
def test_unknown_method_is_one_line_exit_2(cli, videos: dict[str, Path], tmp_path: Path, args: list[str]) -> None:
    out = tmp_path / "out"
    fill = {"video": videos["stereo_moving"], "out": out, "tmp": tmp_path}
    r = cli(*[a.format(**fill) for a in args])
    _one_line_exit_2(r, "nosuch")
    _no_output(out)


@pytest.mark.parametrize(
    "args",
    [
        ["segment", "--frames", "{missing}", "--out", "{out}"],
        ["audio", "{missing}"],
        ["inspect", "{missing}"],
        ["reconstruct", "--scene", "{missing}", "--out", "{out}/m.ply"],
        ["lift", "--scene", "{missing}", "--use-gt-2d", "--json", "{out}/l.json"],
        ["render", "--model", "{missing}", "--camera", "{missing}", "--out", "{out}/r.png"],
        ["evaluate", "--method", "seac", "--data", "{missing}", "--json", "{out}/e.json"],
        ["train", "--method", "sdavs", "--data", "{missing}", "--out", "{out}/c.pt"],
    ],
)
def test_missing_inputs_are_one_line_exit_2(cli, tmp_path: Path, args: list[str]) -> None:
    out = tmp_path / "out"
    missing = tmp_path / "nothing_here"
    r = cli(*[a.format(missing=missing, out=out) for a in args])
    _one_line_exit_2(r, "nothing_here")
    _no_output(out)


def _nan_checkpoint(tmp_path: Path, method: str) -> Path:
    from soundmask.avs2d import METHODS
    from soundmask.registry import resolve

    cls = resolve(METHODS, method, "method")
    ck = torch.load(cls.default_checkpoint(), map_location="cpu", weights_only=True)

    def poison(d: dict) -> bool:
        for v in d.values():
            if torch.is_tensor(v) and v.is_floating_point() and v.numel():
                v.view(-1)[0] = float("nan")
                return True
            if isinstance(v, dict) and poison(v):
                return True
        return False

    assert poison(ck)
    p = tmp_path / f"{method}_nan.pt"
    torch.save(ck, p)
    return p


@pytest.mark.parametrize("method", ["seac", "avsc", "sdavs"])
def test_nan_checkpoint_is_one_line_exit_2(cli, videos: dict[str, Path], tmp_path: Path, method: str) -> None:
    ck = _nan_checkpoint(tmp_path, method)
    out = tmp_path / "out"
    r = cli("run", videos["stereo_moving"], "--method", method, "--checkpoint", ck, "--out", out)
    _one_line_exit_2(r, "nan", ck.name)
    _no_output(out)


def test_nan_model_is_one_line_exit_2(cli, tmp_path: Path) -> None:
    from soundmask.splat.gaussians import Gaussians
    from soundmask.splat.io import save_model

    g = Gaussians.from_points(np.random.default_rng(0).normal(size=(20, 3)), np.full((20, 3), 0.5))
    g.means.data[3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        save_model(g, tmp_path / "nan.ply")  # the PLY writer refuses; a .pt is written as is
    model = save_model(g, tmp_path / "nan.pt")
    cam = tmp_path / "cam.json"
    cam.write_text(
        json.dumps(
            {
                "intrinsics": {"fx": 30, "fy": 30, "cx": 16, "cy": 16},
                "width": 32,
                "height": 32,
                "camera_to_world": np.eye(4).tolist(),
            }
        )
    )
    r = cli("render", "--model", model, "--camera", cam, "--out", tmp_path / "r.png")
    _one_line_exit_2(r, "nan", "nan.pt")
    assert not (tmp_path / "r.png").exists()


# ------------------------------------------------------------------------------------------ good videos
def test_run_stereo_moving_video(cli, videos: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = cli("run", videos["stereo_moving"], "--out", out, "--fps", 2, "--no-lift-3d")  # 3D: tests/test_video3d.py
    assert r.returncode == 0, r.stderr
    s = json.loads((out / "run.json").read_text())
    assert s["frames"] == 6 and s["channels"] == 2 and s["camera_motion"] > 0.01
    assert s["mode"] == "2d" and "camera moves" in s["reason"] and "turned off" in s["reason"]
    assert len(list((out / "masks").glob("*.png"))) == 6 == len(list((out / "input").glob("*.png")))
    assert (out / "overlay.mp4").stat().st_size > 0 and (out / "audio" / "stereo.wav").is_file()
    assert s["audio_report"]["segments"], "the tone bursts are sound segments"


@pytest.mark.parametrize(("case", "why"), [("mono", "mono"), ("stereo_static", "static")])
def test_run_explains_2d_only(videos: dict[str, Path], tmp_path: Path, case: str, why: str) -> None:
    from soundmask.pipeline.video import RunConfig, run_video

    s = run_video(videos[case], RunConfig(fps=2), tmp_path / "out")
    assert s.mode == "2d" and why in s.reason and s.lift is None
    assert s.summary == json.loads((tmp_path / "out" / "run.json").read_text())
    if case == "stereo_static":
        assert s.camera_motion < 0.005


def test_run_falls_back_to_2d_when_colmap_fails(
    videos: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No camera poses: 2D only, with COLMAP's problem and fix in the reason; the failure is a cached result, so a
    run killed afterwards resumes with it instead of running COLMAP again."""
    from soundmask.pipeline.video import RunConfig, run_video
    from soundmask.report import overlay
    from soundmask.vision import poses

    def no_poses(*a: object, **k: object) -> None:
        raise poses.PoseError("COLMAP registered 1 of 6 frames", fix="film more slowly")

    def killed(*a: object, **k: object) -> None:
        raise KeyboardInterrupt

    out = tmp_path / "out"
    with monkeypatch.context() as m:
        m.setattr(poses, "estimate_poses", no_poses)
        m.setattr(overlay, "write_overlay_video", killed)
        with pytest.raises(KeyboardInterrupt):
            run_video(videos["stereo_moving"], RunConfig(fps=2), out)
    assert not out.exists() and (tmp_path / ".out.cache").is_dir()
    with monkeypatch.context() as m:
        m.setattr(poses, "estimate_poses", killed)
        s = run_video(videos["stereo_moving"], RunConfig(fps=2), out)
    assert s.mode == "2d" and s.poses is None and s.lift is None
    assert s.reason == (
        "the camera moves and the audio is stereo, but COLMAP registered 1 of 6 frames; 2D sound "
        "masks only (to get 3D: film more slowly)"
    )
    assert s.cached_stages == ["2d", "poses"] == s.summary["cached_stages"]
    assert list(s.summary["timings_s"]) == ["read", "audio", "2d", "camera", "poses"]
    assert s.summary == json.loads((out / "run.json").read_text()) and "poses" not in s.summary
    assert not (tmp_path / ".out.cache").exists()


def test_camera_motion_tells_moving_from_static() -> None:
    from soundmask.pipeline.video import camera_motion

    rng = np.random.default_rng(1)
    assert camera_motion(np.stack(_frames(4, False, rng))) < 1e-3
    assert camera_motion(np.stack(_frames(4, True, rng))) > 0.02


def test_camera_motion_ignores_repeated_frames() -> None:
    """Every frame twice (a video sampled above its own rate), or twice with ±1 grey-level noise (an encoder's
    near-duplicates): the same motion as the frames once, not 0."""
    from soundmask.pipeline.video import camera_motion

    rng = np.random.default_rng(2)
    frames = np.stack(_frames(5, True, rng))
    once = camera_motion(frames)
    assert once > 0.02
    assert camera_motion(np.repeat(frames, 2, axis=0)) == pytest.approx(once)
    noisy = np.repeat(frames, 2, axis=0).astype(np.int16)
    noisy[1::2] += rng.integers(-1, 2, size=noisy[1::2].shape).astype(np.int16)
    assert camera_motion(np.clip(noisy, 0, 255).astype(np.uint8)) == pytest.approx(once)
    assert camera_motion(np.repeat(np.stack(_frames(4, False, rng)), 2, axis=0)) < 1e-3  # static stays static


def test_run_samples_a_low_rate_video_at_its_own_rate(tmp_path: Path) -> None:
    """A 1-fps MP4 of a camera panning across a textured image, run with the default --fps 2: every frame once
    (run.json reports 1 fps), and the camera is seen to move (3D turned off to keep the test short)."""
    from soundmask.pipeline.video import RunConfig, open_video, run_video
    from soundmask.report.overlay import write_video

    n = 6
    rng = np.random.default_rng(4)
    t = np.arange(n * SR) / SR
    tone = (0.3 * np.sin(2 * np.pi * 440 * t) * (t % 1 < 0.6)).astype(np.float32)
    video = write_video(
        tmp_path / "pan_1fps.mp4", _frames(n, True, rng), 1.0, audio=np.stack([tone, tone]), sample_rate=SR
    )
    cfg = RunConfig(lift_3d=False)
    assert cfg.fps == 2.0
    src = open_video(video, cfg)
    assert len(src) == n and src.fps == pytest.approx(1.0)
    diffs = np.abs(np.diff(src.frames.astype(np.int16), axis=0)).mean(axis=(1, 2, 3))
    assert (diffs > 5).all(), diffs  # every sampled frame is distinct
    s = run_video(video, cfg, tmp_path / "out", source=src)
    assert s.frames == n and s.fps == pytest.approx(1.0) and s.summary["config"]["fps"] == 2.0
    assert s.camera_motion > cfg.motion_threshold and "camera moves" in s.reason, s.reason
    assert len(list((tmp_path / "out" / "input").glob("*.png"))) == n


def test_batch_run_over_a_folder_of_videos(videos: dict[str, Path], tmp_path: Path) -> None:
    """`soundmask batch run` (serial here; the Ray path is tests/test_batch.py's): one row per video of a folder,
    a corrupt video is an error row naming it, and a re-run takes the finished ones from the cache."""
    import shutil

    from soundmask.pipeline.batch import BatchConfig, run_batch

    folder = tmp_path / "videos"
    folder.mkdir()
    for case in ("mono", "stereo_static", "corrupt"):
        shutil.copy(videos[case], folder / videos[case].name)
    cfg = BatchConfig(serial=True)
    res = run_batch("run", [folder], tmp_path / "b", cfg=cfg, set_=["fps=2"])
    rows = {r.name: r for r in res.results}
    assert sorted(rows) == ["corrupt", "mono", "stereo_static"]
    for name in ("mono", "stereo_static"):
        assert rows[name].ok and rows[name].metrics["mode"] == "2d" and rows[name].metrics["frames"] == 6
        assert (tmp_path / "b" / "runs" / name / "run.json").is_file()
    assert not rows["corrupt"].ok and "corrupt.mp4" in (rows["corrupt"].error or "")
    again = run_batch("run", [folder], tmp_path / "b", cfg=cfg, set_=["fps=2"])
    assert again.cached == 2 and [r.ok for r in again.results] == [r.ok for r in res.results]
