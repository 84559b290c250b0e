"""Video files: :func:`write_video` writes frames (and a sound track) as H.264 with PyAV, atomically.

The readers of a user's video live with the 2D methods (:func:`soundmask.avs2d.frames.read_frame_source`); the
writers of overlay videos in :mod:`soundmask.report.overlay`, which build on this one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from soundmask.data.io import atomic_path
from soundmask.errors import ConfigError, DataError

__all__ = ["as_frame_list", "check_rate", "write_video"]

PathLike = str | os.PathLike[str]

_VIDEO_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


def write_video(
    path: PathLike,
    frames: np.ndarray | Sequence[np.ndarray],
    fps: float,
    *,
    audio: np.ndarray | None = None,
    sample_rate: int | None = None,
    crf: int = 18,
) -> Path:
    """Write ``frames`` (T × (H, W, 3) uint8, one size) as H.264 at ``fps`` into an MP4/MKV/MOV, with ``audio``
    ((C, S) float in [-1, 1], or (S,)) at ``sample_rate`` as a second track: 16-bit PCM in MKV/MOV (exact, so
    the stereo time difference survives), AAC in MP4. Atomic: a temporary file, then rename."""
    final = Path(path)
    frames_l = as_frame_list(frames, "frames", final)
    if not frames_l:
        raise DataError("no frames to write", final, "pass at least one frame")
    shape = np.asarray(frames_l[0]).shape
    for i, f in enumerate(frames_l):
        f = np.asarray(f)
        if f.ndim != 3 or f.shape[2] != 3 or f.dtype != np.uint8 or f.shape != shape:
            raise DataError(
                f"frame {i} must be a {shape} uint8 RGB image like frame 0, got {f.dtype} {f.shape}",
                final,
                "give every frame of the video the same size",
            )
    rate = check_rate(fps)
    pcm = None
    if audio is not None:
        a = np.asarray(audio, dtype=np.float32)
        a = a.reshape(1, -1) if a.ndim == 1 else a
        if a.ndim != 2 or a.shape[0] not in (1, 2) or not sample_rate or sample_rate <= 0:
            raise DataError(f"audio must be (channels <= 2, samples) with a sample rate, got {a.shape}", final)
        pcm = np.round(np.clip(a, -1.0, 1.0) * 32767).astype(np.int16)

    import av

    h, w = shape[:2]
    H, W = h + h % 2, w + w % 2  # yuv420p needs even sizes
    fmt = _VIDEO_FORMATS.get(final.suffix.lower(), "mp4")
    opts = {"movflags": "+faststart"} if fmt in ("mp4", "mov") else {}
    with atomic_path(final) as tmp:
        with av.open(str(tmp), mode="w", format=fmt, options=opts) as container:
            stream = container.add_stream("libx264", rate=rate, options={"crf": str(int(crf)), "preset": "veryfast"})
            stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
            aud = None
            if pcm is not None:
                layout = "stereo" if pcm.shape[0] == 2 else "mono"
                aud = container.add_stream(
                    "aac" if fmt == "mp4" else "pcm_s16le", rate=int(sample_rate or 0), layout=layout
                )
            canvas = np.zeros((H, W, 3), np.uint8)
            for f in frames_l:
                canvas[:h, :w] = f
                container.mux(stream.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")))
            container.mux(stream.encode(None))
            if aud is not None and pcm is not None:
                fr = av.AudioFrame.from_ndarray(pcm.T.reshape(1, -1).copy(), format="s16", layout=aud.layout.name)
                fr.sample_rate = int(sample_rate or 0)
                for packet in aud.encode(fr):
                    container.mux(packet)
                container.mux(aud.encode(None))
    return final


def as_frame_list(x: Any, what: str, where: Path) -> list[Any]:
    if isinstance(x, np.ndarray):
        if x.ndim < 1:
            raise DataError(f"{what} must be a stack (one per frame), got a scalar", where)
        return list(x)
    try:
        return list(x)
    except TypeError:
        raise DataError(
            f"{what} must be an array or a sequence (one per frame), got {type(x).__name__}", where
        ) from None


def check_rate(fps: Any) -> Fraction:
    try:
        value = float(fps)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"fps must be > 0, got {fps!r}", fix="pass the clip's frame rate, e.g. 1 or 25")
    rate = Fraction(fps) if isinstance(fps, Fraction) else Fraction(value).limit_denominator(1001)
    if rate <= 0:  # e.g. 1e-9 fps
        raise ConfigError(f"fps {fps!r} is too small", fix="pass a frame rate of at least 0.001")
    return rate
