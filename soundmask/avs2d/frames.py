"""The frames (and sound) that ``soundmask segment`` runs on: a folder of images or a video file.

* A **folder** holds one image per frame (PNG/JPEG/BMP), taken in natural order (``frame_2`` before
  ``frame_10``); every image must have the same size. Frame ``k`` is at ``k / fps`` seconds, ``fps``
  defaulting to 1.0 (AVSBench: one frame per second). The mask of a frame is named after its image's stem.
* A **video** (MP4/MKV/MOV/AVI/WEBM/M4V) is decoded with PyAV. By default every frame is kept at the
  video's own rate; ``fps=`` resamples it by picking, for each ``k / fps`` inside the video, the decoded
  frame nearest to it (the earlier one on a tie); with ``upsample=False`` an ``fps`` above the video's own rate
  keeps every frame once instead of repeating frames (the source's ``fps`` is then the video's). Frame times
  are the decoded timestamps (seconds from the start of the file) and the masks are named ``00000``,
  ``00001``, ...; the video's audio track (when it has one) is the sound.
* ``audio=`` loads that sound file (or video's sound) instead, through :func:`soundmask.audio.io.load_audio`.

Every problem with the input raises a one-line :class:`~soundmask.errors.DataError` naming the path and the fix;
an invalid option raises :class:`~soundmask.errors.ConfigError`.
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from soundmask.data.io import read_image
from soundmask.errors import ConfigError, DataError

__all__ = ["IMAGE_SUFFIXES", "VIDEO_SUFFIXES", "FrameSource", "natural_key", "read_frame_source"]

PathLike = str | os.PathLike[str]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v"})
DEFAULT_FOLDER_FPS = 1.0  # AVSBench: one frame per second of audio

log = logging.getLogger(__name__)
_TIE = 1e-6  # s: a target halfway between two frames (up to float error) takes the earlier one

_REENCODE_VIDEO = "re-encode it, e.g. `ffmpeg -i INPUT -c:v libx264 -pix_fmt yuv420p OUTPUT.mp4`"


@dataclass
class FrameSource:
    """Frames of a clip, their times, and its sound.

    ``frames`` (T, H, W, 3) uint8 RGB; ``names`` one file stem per frame (the output mask names);
    ``frame_times`` (T,) float64 seconds; ``fps`` the frame rate the frames are at; ``audio`` (C, S) float32
    or None when there is no sound; ``sample_rate`` its rate (None without audio); ``path`` the folder/video.
    """

    frames: np.ndarray
    names: list[str]
    frame_times: np.ndarray
    fps: float
    audio: np.ndarray | None
    sample_rate: int | None
    path: Path

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` of the frames."""
        return int(self.frames.shape[1]), int(self.frames.shape[2])


def natural_key(name: str) -> tuple[Any, ...]:
    """Sort key putting ``frame_2`` before ``frame_10`` (case-insensitive; ties broken by the exact name)."""
    parts = re.split(r"(\d+)", name.lower())
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), name


def read_frame_source(
    path: PathLike,
    audio: PathLike | None = None,
    fps: float | None = None,
    max_frames: int | None = None,
    size: tuple[int, int] | None = None,
    upsample: bool = True,
) -> FrameSource:
    """Read a folder of frames or a video (see the module docstring) as a :class:`FrameSource`.

    ``audio``: a sound file (or video) to use as the sound instead of the video's own track.
    ``fps``: a folder's frame rate (default 1.0), or the rate to resample a video to (default: its own).
    ``max_frames``: keep at most this many (first) frames. ``size``: ``(H, W)`` to resize the frames to
    (PIL bilinear). ``upsample``: False samples a video at most at its own rate (a higher ``fps`` keeps every
    frame once, and the source's ``fps`` is the video's rate); no effect on a folder.
    """
    p = Path(path)
    fps = _check_fps(fps)
    max_frames = _check_max_frames(max_frames)
    size = _check_size(size)
    if not p.exists():
        raise DataError("frames not found", p, "pass a folder of frame images or a video file")
    if p.is_dir():
        frames, names, times, rate = _read_folder(p, fps, max_frames, size)
        sound = None
    elif p.suffix.lower() in VIDEO_SUFFIXES:
        frames, names, times, rate, has_audio = _read_video(p, fps, max_frames, size, upsample)
        sound = _load_sound(p) if audio is None and has_audio else None
    else:
        kind = "an image" if p.suffix.lower() in IMAGE_SUFFIXES else f"a {p.suffix or 'suffix-less'} file"
        raise DataError(
            f"unsupported frames input ({kind})",
            p,
            "pass a folder of frame images (png/jpg/jpeg/bmp) or a video "
            f"({'/'.join(s[1:] for s in sorted(VIDEO_SUFFIXES))})",
        )
    if audio is not None:
        sound = _load_sound(Path(audio))
    samples, sr = sound if sound is not None else (None, None)
    return FrameSource(frames=frames, names=names, frame_times=times, fps=rate, audio=samples, sample_rate=sr, path=p)


# ------------------------------------------------------------------------------------------------ options
def _check_fps(fps: float | None) -> float | None:
    if fps is None:
        return None
    try:
        value = float(fps)
    except (TypeError, ValueError):
        raise ConfigError(f"fps must be a number, got {fps!r}", fix="pass a frame rate such as 1 or 25") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"fps must be > 0, got {fps!r}", fix="pass a frame rate such as 1 or 25")
    return value


def _check_max_frames(max_frames: int | None) -> int | None:
    if max_frames is None:
        return None
    if isinstance(max_frames, bool) or not isinstance(max_frames, (int, np.integer)) or max_frames < 1:
        raise ConfigError(f"max_frames must be a positive integer, got {max_frames!r}", fix="pass e.g. 10")
    return int(max_frames)


def _check_size(size: tuple[int, int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    try:
        h, w = (int(v) for v in size)
        ok = all(float(v) == int(v) for v in size) and h > 0 and w > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ConfigError(f"size must be (height, width) positive integers, got {size!r}", fix="pass e.g. (224, 224)")
    return h, w


# ------------------------------------------------------------------------------------------------ folders
def _read_folder(
    p: Path, fps: float | None, max_frames: int | None, size: tuple[int, int] | None
) -> tuple[np.ndarray, list[str], np.ndarray, float]:
    files = sorted(
        (f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith(".") and f.is_file()),
        key=lambda f: natural_key(f.name),
    )
    if not files:
        raise DataError(
            "folder holds no frame images (png/jpg/jpeg/bmp)",
            p,
            "put the frames in the folder (one image per frame) or pass a video file",
        )
    seen: dict[str, Path] = {}
    for f in files:
        if f.stem in seen:
            raise DataError(
                f"two frames share the name {f.stem!r} ({seen[f.stem].name} and {f.name})",
                f,
                "keep one image per frame name (the masks are named after the frames)",
            )
        seen[f.stem] = f
    if max_frames is not None:
        files = files[:max_frames]
    first = read_image(files[0])
    h0, w0 = first.shape[:2]
    out_h, out_w = size if size is not None else (h0, w0)
    frames = np.empty((len(files), out_h, out_w, 3), np.uint8)
    for k, f in enumerate(files):
        img = first if k == 0 else read_image(f)
        if img.shape[:2] != (h0, w0):
            raise DataError(
                f"image is {img.shape[0]}x{img.shape[1]} (HxW) but {files[0].name} is {h0}x{w0}",
                f,
                "give every frame of the folder the same size (or remove the odd image)",
            )
        frames[k] = _resize(img, size)
    rate = fps if fps is not None else DEFAULT_FOLDER_FPS
    times = np.arange(len(files), dtype=np.float64) / rate
    return frames, [f.stem for f in files], times, rate


def _resize(img: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    if size is None or tuple(img.shape[:2]) == size:
        return img
    return np.asarray(Image.fromarray(img).resize((size[1], size[0]), Image.Resampling.BILINEAR))


# ------------------------------------------------------------------------------------------------- videos
def _read_video(
    p: Path, fps: float | None, max_frames: int | None, size: tuple[int, int] | None, upsample: bool = True
) -> tuple[np.ndarray, list[str], np.ndarray, float, bool]:
    import av

    if p.stat().st_size == 0:
        raise DataError("video file is empty (0 bytes)", p, "re-export or re-download it")
    picked: list[np.ndarray] = []
    times: list[float] = []
    try:
        with av.open(str(p), mode="r") as container:
            if len(container.streams.video) == 0:
                raise DataError(
                    "file has no video stream",
                    p,
                    "pass a video with pictures, or a folder of frames with --audio for the sound",
                )
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            has_audio = len(container.streams.audio) > 0
            native = _stream_rate(stream)
            if not upsample and fps is not None and native is not None and fps > native:
                fps = None  # above the video's own rate: every frame once, at that rate
            t0 = container.start_time / 1e6 if container.start_time is not None else 0.0

            def keep(frame: Any, t: float) -> bool:
                picked.append(_resize(frame.to_ndarray(format="rgb24"), size))
                times.append(t)
                return max_frames is not None and len(picked) >= max_frames

            n_decoded, prev, prev_t, last_dur, k, done = 0, None, 0.0, 0.0, 0, False
            for frame in container.decode(stream):
                t = _frame_time(frame, n_decoded, native) - t0
                if prev is not None and t > prev_t:
                    last_dur = t - prev_t
                n_decoded += 1
                if fps is None:
                    done = keep(frame, t)
                else:  # every target k/fps up to this frame goes to the nearer of the previous and this frame
                    while not done and k / fps <= t:
                        near_prev = prev is not None and (k / fps - prev_t) <= (t - k / fps) + _TIE
                        done = keep(prev, prev_t) if near_prev else keep(frame, t)
                        k += 1
                prev, prev_t = frame, t
                if done:
                    break
            declared = int(stream.frames or 0)
            if not done and declared > 0 and 0 < n_decoded < declared:
                log.warning(
                    "%s: decoded %d of the %d frames its header declares (truncated file?)", p, n_decoded, declared
                )
            if fps is not None and prev is not None and not done:
                # targets after the last frame but inside its display time (the video's duration)
                end = prev_t + (last_dur or (1.0 / native if native else 0.0))
                while not done and k / fps < end - 1e-9:
                    done = keep(prev, prev_t)
                    k += 1
    except DataError:
        raise
    except (av.FFmpegError, OSError, ValueError, EOFError, MemoryError) as e:
        raise DataError(f"cannot decode the video ({type(e).__name__}: {e})", p, _REENCODE_VIDEO) from e
    if not picked:
        raise DataError("video holds no decodable frames (empty or truncated file?)", p, _REENCODE_VIDEO)
    frame_times = np.asarray(times, dtype=np.float64)
    rate = fps if fps is not None else (native or _rate_from_times(frame_times))
    names = [f"{i:05d}" for i in range(len(picked))]
    return np.stack(picked), names, frame_times, float(rate), has_audio


def _stream_rate(stream: Any) -> float | None:
    for r in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        try:
            if r is not None and float(r) > 0 and math.isfinite(float(r)):
                return float(r)
        except (TypeError, ZeroDivisionError):
            continue
    return None


def _frame_time(frame: Any, index: int, rate: float | None) -> float:
    t = frame.time
    if t is not None and math.isfinite(t):
        return float(t)
    return index / rate if rate else float(index)


def _rate_from_times(times: np.ndarray) -> float:
    if times.size > 1 and times[-1] > times[0]:
        return float((times.size - 1) / (times[-1] - times[0]))
    return 1.0


# -------------------------------------------------------------------------------------------------- audio
def _load_sound(p: Path) -> tuple[np.ndarray, int]:
    from soundmask.audio.io import load_audio

    return load_audio(p)
