"""Inputs and outputs of ``soundmask segment``: frame folders and videos in; overlays, overlay videos, mask PNGs out."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from soundmask.avs2d.frames import FrameSource, natural_key, read_frame_source
from soundmask.data.io import write_audio, write_image
from soundmask.errors import ConfigError, DataError
from soundmask.report import overlay as overlay_mod
from soundmask.report.overlay import overlay, write_mask_pngs, write_overlay_video

av = pytest.importorskip("av")

H, W = 24, 32
SR = 16000


# ------------------------------------------------------------------------------------------------ helpers
def _gray(level: int, h: int = H, w: int = W) -> np.ndarray:
    return np.full((h, w, 3), level, np.uint8)


def _frame_folder(folder: Path, stems: list[str], suffix: str = ".png") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, stem in enumerate(stems):
        write_image(folder / f"{stem}{suffix}", _gray(10 * (i + 1)))
    return folder


def _write_video(
    path: Path, n: int = 20, rate: int = 10, audio_seconds: float | None = None, fmt: str | None = None
) -> Path:
    """``n`` frames at ``rate`` fps, frame ``i`` uniformly grey at level ``10 * i`` (so a decoded frame tells its
    index), plus a mono AAC/PCM track of ``audio_seconds`` when given."""
    with av.open(str(path), "w", format=fmt) as c:
        vs = c.add_stream("mpeg4", rate=rate, options={"qscale": "2"})
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        pcm = fmt == "matroska"
        aus = c.add_stream("pcm_s16le" if pcm else "aac", rate=SR, layout="mono") if audio_seconds else None
        for i in range(n):
            c.mux(vs.encode(av.VideoFrame.from_ndarray(_gray(10 * i), format="rgb24")))
        c.mux(vs.encode(None))
        if aus is not None:
            t = np.arange(int(SR * audio_seconds)) / SR
            x = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
            data, sfmt = (np.round(x * 32767).astype(np.int16), "s16") if pcm else (x, "fltp")
            frame = av.AudioFrame.from_ndarray(data, format=sfmt, layout="mono")
            frame.sample_rate = SR
            c.mux(aus.encode(frame))
            c.mux(aus.encode(None))
    return path


def _levels(frames: np.ndarray) -> list[int]:
    """The grey level of each frame, rounded to the frame index it encodes."""
    return [int(round(float(f.mean()) / 10)) for f in frames]


def _siblings(path: Path) -> list[str]:
    return sorted(os.listdir(path.parent))


# ---------------------------------------------------------------------------------------------- folders
def test_natural_key_orders_numbers_by_value():
    names = ["frame_10.png", "frame_2.png", "Frame_1.png", "frame_1b.png"]
    assert sorted(names, key=natural_key) == ["Frame_1.png", "frame_1b.png", "frame_2.png", "frame_10.png"]


def test_folder_natural_order_names_times(tmp_path: Path):
    folder = _frame_folder(tmp_path / "clip", ["frame_1", "frame_2", "frame_10"])
    (folder / "notes.txt").write_text("not a frame")
    (folder / ".hidden.png").write_bytes(b"junk")  # dotfiles (editor/OS leftovers) are skipped
    src = read_frame_source(folder)
    assert isinstance(src, FrameSource)
    assert src.names == ["frame_1", "frame_2", "frame_10"]
    assert src.frames.shape == (3, H, W, 3) and src.frames.dtype == np.uint8
    assert [int(f[0, 0, 0]) for f in src.frames] == [10, 20, 30]  # frame_10 was written third
    np.testing.assert_allclose(src.frame_times, [0.0, 1.0, 2.0])
    assert src.fps == 1.0 and src.audio is None and src.sample_rate is None and src.path == folder
    assert len(src) == 3 and src.size == (H, W)


def test_folder_fps_max_frames_size_and_audio(tmp_path: Path):
    folder = _frame_folder(tmp_path / "clip", [f"{i}" for i in range(5)], suffix=".jpg")
    wav = write_audio(tmp_path / "a.wav", 0.1 * np.ones((1, SR), np.float32), SR)
    src = read_frame_source(folder, audio=wav, fps=4, max_frames=3, size=(12, 20))
    assert src.names == ["0", "1", "2"] and src.frames.shape == (3, 12, 20, 3)
    np.testing.assert_allclose(src.frame_times, [0.0, 0.25, 0.5])
    assert src.fps == 4.0 and src.sample_rate == SR and src.audio.shape == (1, SR)
    assert src.audio.dtype == np.float32


def test_folder_mismatched_size_names_odd_file(tmp_path: Path):
    folder = _frame_folder(tmp_path / "clip", ["a1", "a2"])
    write_image(folder / "a3.png", _gray(5, H + 2, W))
    with pytest.raises(DataError, match=r"a3\.png.*same size"):
        read_frame_source(folder)


def test_folder_truncated_image(tmp_path: Path):
    folder = _frame_folder(tmp_path / "clip", ["f0", "f1"])
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)).save(folder / "f2.png")
    data = (folder / "f2.png").read_bytes()
    (folder / "f2.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"f2\.png.*cannot decode"):
        read_frame_source(folder)


def test_folder_empty_and_duplicate_stems(tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    with pytest.raises(DataError, match=r"empty.*no frame images"):
        read_frame_source(empty)
    folder = _frame_folder(tmp_path / "dup", ["f0"])
    write_image(folder / "f0.jpg", _gray(1))
    with pytest.raises(DataError, match="share the name"):
        read_frame_source(folder)


def test_bad_paths_and_options(tmp_path: Path):
    with pytest.raises(DataError, match=r"nope.*not found"):
        read_frame_source(tmp_path / "nope")
    (tmp_path / "clip.gif").write_bytes(b"GIF89a")
    with pytest.raises(DataError, match=r"clip\.gif.*unsupported.*fix"):
        read_frame_source(tmp_path / "clip.gif")
    write_image(tmp_path / "one.png", _gray(1))
    with pytest.raises(DataError, match="unsupported frames input \\(an image\\)"):
        read_frame_source(tmp_path / "one.png")
    folder = _frame_folder(tmp_path / "clip", ["f0"])
    for kwargs in ({"fps": 0}, {"fps": float("nan")}, {"max_frames": 0}, {"size": (0, 4)}, {"size": (3,)}):
        with pytest.raises(ConfigError):
            read_frame_source(folder, **kwargs)
    for err in (DataError("x", tmp_path), ConfigError("x")):
        assert "\n" not in str(err)


# ----------------------------------------------------------------------------------------------- videos
def test_video_frames_times_and_audio_track(tmp_path: Path):
    video = _write_video(tmp_path / "clip.mp4", n=20, rate=10, audio_seconds=2.0)
    src = read_frame_source(video)
    assert src.frames.shape == (20, H, W, 3) and src.fps == pytest.approx(10.0)
    assert src.names[:2] == ["00000", "00001"] and src.names[-1] == "00019"
    assert _levels(src.frames) == list(range(20))
    np.testing.assert_allclose(src.frame_times, np.arange(20) / 10, atol=1e-6)
    assert src.sample_rate == SR and src.audio.ndim == 2 and src.audio.shape[0] == 1
    assert abs(src.audio.shape[1] - 2 * SR) <= 4096  # AAC priming/padding
    # audio= replaces the track; max_frames caps, size resizes
    wav = write_audio(tmp_path / "other.wav", np.zeros((2, SR // 2), np.float32), 8000)
    src2 = read_frame_source(video, audio=wav, max_frames=3, size=(10, 16))
    assert src2.frames.shape == (3, 10, 16, 3) and src2.sample_rate == 8000 and src2.audio.shape == (2, SR // 2)


def test_video_without_audio_track(tmp_path: Path):
    src = read_frame_source(_write_video(tmp_path / "silent.mkv", n=5, rate=5, fmt="matroska"))
    assert len(src) == 5 and src.audio is None and src.sample_rate is None


@pytest.mark.parametrize(("fps", "expected"), [(2.0, [0, 5, 10, 15]), (1.0, [0, 10]), (20.0, None)])
def test_video_fps_resampling(tmp_path: Path, fps: float, expected: list[int] | None):
    video = _write_video(tmp_path / "clip.mp4", n=20, rate=10)  # 2 s
    src = read_frame_source(video, fps=fps)
    assert len(src) == round(2.0 * fps) and src.fps == fps
    assert src.names == [f"{i:05d}" for i in range(len(src))]
    picked = _levels(src.frames)
    if expected is not None:
        assert picked == expected
        np.testing.assert_allclose(src.frame_times, np.asarray(expected) / 10, atol=1e-6)
    else:  # upsampling repeats the nearest frame: every source frame twice
        assert picked == [i // 2 for i in range(40)]
    assert read_frame_source(video, fps=fps, max_frames=2).frames.shape[0] == 2


def test_video_fps_capped_at_the_native_rate(tmp_path: Path):
    """``upsample=False`` (what `soundmask run` reads with): above the video's own rate every frame comes once, at
    that rate; at or below it the frames are those of the plain resampling."""
    video = _write_video(tmp_path / "clip.mp4", n=20, rate=10)  # 2 s
    src = read_frame_source(video, fps=20.0, upsample=False)
    assert len(src) == 20 and src.fps == pytest.approx(10.0) and _levels(src.frames) == list(range(20))
    np.testing.assert_allclose(src.frame_times, np.arange(20) / 10, atol=1e-6)
    for fps in (10.0, 2.0):
        a, b = read_frame_source(video, fps=fps, upsample=False), read_frame_source(video, fps=fps)
        assert a.fps == b.fps == fps and np.array_equal(a.frames, b.frames)
        np.testing.assert_array_equal(a.frame_times, b.frame_times)


def test_video_errors(tmp_path: Path):
    audio_only = tmp_path / "sound.mp4"
    with av.open(str(audio_only), "w") as c:
        s = c.add_stream("aac", rate=SR, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, SR), np.float32), format="fltp", layout="mono")
        frame.sample_rate = SR
        c.mux(s.encode(frame))
        c.mux(s.encode(None))
    with pytest.raises(DataError, match=r"sound\.mp4: file has no video stream"):
        read_frame_source(audio_only)
    # a video stream with no frames (the file holds only audio packets)
    no_frames = _write_video(tmp_path / "noframes.mkv", n=0, audio_seconds=0.5, fmt="matroska")
    with pytest.raises(DataError, match=r"noframes\.mkv: video holds no decodable frames"):
        read_frame_source(no_frames)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 255, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(DataError, match=r"garbage\.mp4: cannot decode the video.*fix"):
        read_frame_source(garbage)
    (tmp_path / "zero.mp4").write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        read_frame_source(tmp_path / "zero.mp4")


# ---------------------------------------------------------------------------------------------- overlay
def test_overlay_tints_inside_and_leaves_outside():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    mask = np.zeros((20, 30), bool)
    mask[5:15, 8:20] = True
    color = np.array([255, 64, 0])
    out = overlay(frame, mask, color=tuple(color), alpha=0.5, contour=False)
    assert out.shape == frame.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[~mask], frame[~mask])
    expected = np.rint(frame[mask] * 0.5 + color * 0.5)
    assert np.abs(out[mask].astype(int) - expected).max() <= 1
    with_contour = overlay(frame, mask, color=tuple(color), alpha=0.5)
    np.testing.assert_array_equal(with_contour[~mask], frame[~mask])  # the outline stays inside the mask
    edge = mask.copy()
    edge[6:14, 9:19] = False  # the 1-px inner boundary
    assert (with_contour[edge] == color).all()
    np.testing.assert_array_equal(with_contour[mask & ~edge], out[mask & ~edge])
    assert frame is not out and not np.shares_memory(frame, out)


def test_overlay_soft_mask_and_errors():
    frame = np.full((8, 8, 3), 100, np.uint8)
    soft = np.zeros((8, 8), np.float32)
    soft[2, 2], soft[4, 4] = 0.4, 1.0
    out = overlay(frame, soft, color=(200, 100, 100), alpha=1.0, contour=False)
    np.testing.assert_array_equal(out[2, 2], [140, 100, 100])  # 0.4 opacity
    np.testing.assert_array_equal(out[4, 4], [200, 100, 100])
    untouched = np.ones((8, 8), bool)
    untouched[2, 2] = untouched[4, 4] = False
    np.testing.assert_array_equal(out[untouched], frame[untouched])
    with pytest.raises(DataError, match="mask is 4x8"):
        overlay(frame, np.zeros((4, 8), bool))
    with pytest.raises(ConfigError):
        overlay(frame, soft, alpha=1.5)
    with pytest.raises(ConfigError):
        overlay(frame, soft, color=(0, 300, 0))


# ------------------------------------------------------------------------------------------ overlay video
def _decoded(path: Path) -> tuple[list[np.ndarray], object]:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        info = (stream.codec_context.name, stream.width, stream.height, stream.average_rate)
        return [f.to_ndarray(format="rgb24") for f in c.decode(stream)], info


@pytest.mark.parametrize("fps", [1.0, 0.5, 25])
def test_overlay_video_reopens_with_every_frame(tmp_path: Path, fps: float):
    T, h, w = 5, 33, 47  # odd size: padded to 34x48
    frames = np.stack([np.full((h, w, 3), 40 * i, np.uint8) for i in range(T)])
    masks = np.zeros((T, h, w), bool)
    masks[:, 10:25, 10:30] = True
    out = write_overlay_video(
        tmp_path / "vis" / "overlay.mp4", frames, masks, fps=fps, labels=["dog", None, "", "guitar", "x"]
    )
    assert out == tmp_path / "vis" / "overlay.mp4" and _siblings(out) == ["overlay.mp4"]
    decoded, (codec, vw, vh, rate) = _decoded(out)
    assert codec == "h264" and (vw, vh) == (48, 34) and float(rate) == pytest.approx(fps)
    assert len(decoded) == T
    for i, img in enumerate(decoded):  # tinted inside (orange-ish: R > B), plain grey outside (lossy: tolerances)
        inside, outside = img[15:20, 15:25].astype(int), img[28:32, 2:8].astype(int)
        assert inside[..., 0].mean() - inside[..., 2].mean() > 60
        assert np.abs(outside - 40 * i).max() <= 12


def test_overlay_video_no_half_written_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    frames = np.zeros((3, 16, 16, 3), np.uint8)
    target = tmp_path / "overlay.mp4"
    target.write_bytes(b"previous run")
    bad = [np.zeros((16, 16), bool), np.zeros((8, 16), bool), np.zeros((16, 16), bool)]
    with pytest.raises(DataError, match=r"overlay\.mp4: mask 1 is 8x16"):
        write_overlay_video(target, frames, bad, fps=1)
    with pytest.raises(DataError, match="3 frames but 2 masks"):
        write_overlay_video(target, frames, bad[:2], fps=1)
    with pytest.raises(ConfigError):
        write_overlay_video(target, frames, np.zeros((3, 16, 16), bool), fps=0)
    # a failure while encoding (after the temp file exists) leaves the old file and no temp file behind
    calls = {"n": 0}
    real = overlay_mod.overlay

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(overlay_mod, "overlay", flaky)
    with pytest.raises(RuntimeError, match="disk full"):
        write_overlay_video(target, frames, np.zeros((3, 16, 16), bool), fps=1)
    assert target.read_bytes() == b"previous run" and _siblings(target) == ["overlay.mp4"]
    fresh = tmp_path / "new" / "o.mp4"
    with pytest.raises(DataError):
        write_overlay_video(fresh, frames, bad, fps=1)
    assert not fresh.exists()


# --------------------------------------------------------------------------------------------- mask PNGs
def test_mask_pngs_are_0_255_and_named(tmp_path: Path):
    names = ["frame_1", "frame_2", "00010"]
    masks = [np.eye(6, 8, dtype=bool), np.full((6, 8), 0.7, np.float32), np.zeros((6, 8), np.uint8)]
    masks[2][0, 0] = 1
    out = write_mask_pngs(tmp_path / "masks", names, masks)
    assert sorted(p.name for p in out.iterdir()) == ["00010.png", "frame_1.png", "frame_2.png"]
    for name, m in zip(names, masks, strict=True):
        with Image.open(out / f"{name}.png") as im:
            assert im.mode == "L" and im.size == (8, 6)
            arr = np.asarray(im)
        assert set(np.unique(arr)) <= {0, 255}
        expected = m > 0.5 if m.dtype.kind == "f" else m > 0
        np.testing.assert_array_equal(arr == 255, expected)
    assert _siblings(out) == ["masks"]


def test_mask_pngs_replace_folder_only_when_complete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    target = tmp_path / "masks"
    target.mkdir()
    (target / "old.png").write_bytes(b"old")
    masks = np.zeros((3, 4, 4), bool)
    with pytest.raises(DataError, match=r"mask 1 \(b\)"):
        write_mask_pngs(target, ["a", "b", "c"], [masks[0], np.zeros((2, 4, 4)), masks[2]])
    with pytest.raises(DataError, match="used twice"):
        write_mask_pngs(target, ["a", "a", "c"], masks)
    with pytest.raises(DataError, match="invalid mask name"):
        write_mask_pngs(target, ["a", "../b", "c"], masks)
    with pytest.raises(DataError, match="3 names but 2 masks"):
        write_mask_pngs(target, ["a", "b", "c"], masks[:2])
    # a failure after some files were written: the old folder stays as it was, no temp folder is left
    real = overlay_mod.write_mask
    calls = {"n": 0}

    def flaky(path, mask):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real(path, mask)

    monkeypatch.setattr(overlay_mod, "write_mask", flaky)
    with pytest.raises(OSError, match="disk full"):
        write_mask_pngs(target, ["a", "b", "c"], masks)
    assert sorted(os.listdir(target)) == ["old.png"] and _siblings(target) == ["masks"]
    monkeypatch.setattr(overlay_mod, "write_mask", real)
    write_mask_pngs(target, ["a", "b", "c"], masks)
    assert sorted(os.listdir(target)) == ["a.png", "b.png", "c.png"] and _siblings(target) == ["masks"]
