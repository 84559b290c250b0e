"""Show masks: a tinted overlay per frame, an H.264 overlay video, and the mask PNGs of a clip.

* :func:`overlay` tints the pixels inside a mask (soft masks tint in proportion) and draws its 1-px outline
  (inside the mask, so pixels outside it are never changed). Numpy + ``scipy.ndimage`` only.
* :func:`write_overlay_video` writes an H.264 (libx264, yuv420p) MP4 with PyAV; any frame rate > 0 works,
  including AVSBench's 1 fps (and below); odd sizes are padded to even with black on the right/bottom.
* :func:`write_mask_pngs` writes ``<name>.png`` (8-bit, 0/255: the AVSBench convention) per frame.

Every input is checked before anything is written, and outputs appear only when complete: the video is
written to a temporary file and renamed, the mask folder is built beside the target and replaces it whole.
A bool mask is used as is, an integer mask means ``> 0`` and a float mask ``> 0.5`` (a pixel of a
:class:`~soundmask.avs2d.base.Prediction` sounds when its mask is > 0.5).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from soundmask.data.io import atomic_dir, atomic_path, write_mask
from soundmask.errors import ConfigError, DataError

__all__ = ["DEFAULT_COLOR", "binary_mask", "mask_edge", "overlay", "write_mask_pngs", "write_overlay_video",
           "write_video"]

PathLike = str | os.PathLike[str]

DEFAULT_COLOR = (255, 64, 0)
_VIDEO_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


# -------------------------------------------------------------------------------------------------- overlay
def binary_mask(mask: Any) -> np.ndarray:
    """``mask`` as bool: bool as is, integers ``> 0``, floats ``> 0.5``."""
    m = np.asarray(mask)
    if m.dtype == np.bool_:
        return m
    if m.dtype.kind in "iu":
        return m > 0
    if m.dtype.kind == "f":
        return m > 0.5
    raise DataError(f"a mask must be bool, integer or float, got dtype {m.dtype}")


def overlay(
    frame: np.ndarray,
    mask: np.ndarray,
    color: tuple[int, int, int] = DEFAULT_COLOR,
    alpha: float = 0.5,
    contour: bool = True,
) -> np.ndarray:
    """``frame`` (H, W, 3) uint8 with ``mask`` (H, W) tinted in ``color`` at opacity ``alpha``.

    A float mask is a soft mask: a pixel is tinted with opacity ``alpha * clip(mask, 0, 1)``. With ``contour``
    the inner boundary of the binary mask (1 px; the image border does not count as a boundary) is drawn in
    ``color`` at full opacity. Pixels outside the mask keep their exact values. Returns a new array.
    """
    f = np.asarray(frame)
    if f.ndim != 3 or f.shape[2] != 3 or f.dtype != np.uint8:
        raise DataError(f"frame must be an (H, W, 3) uint8 RGB image, got {f.dtype} {f.shape}")
    m = np.asarray(mask)
    _check_mask_shape(m, f.shape[:2])
    rgb = _check_color(color)
    a = _check_alpha(alpha)
    binary = binary_mask(m)
    if m.dtype.kind == "f":
        weight = np.clip(np.nan_to_num(m.astype(np.float32), nan=0.0), 0.0, 1.0) * a
    else:
        weight = binary.astype(np.float32) * a
    if weight.any():  # a convex blend: stays in 0..255, and exactly ``frame`` where the weight is 0
        blend = f.astype(np.float32)
        blend += (rgb - blend) * weight[..., None]
        out = np.rint(blend, out=blend).astype(np.uint8)
    else:
        out = f.copy()
    if contour and binary.any():
        out[mask_edge(binary)] = rgb.astype(np.uint8)
    return out


def mask_edge(binary: np.ndarray) -> np.ndarray:
    """The inner 1-px boundary of a bool mask (8-connected; the image border does not count as a boundary)."""
    return binary & ~ndimage.binary_erosion(binary, structure=np.ones((3, 3), bool), border_value=1)


def _check_mask_shape(
    m: np.ndarray, hw: tuple[int, ...], where: PathLike | None = None, index: int | None = None
) -> None:
    which = "mask" if index is None else f"mask {index}"
    if m.ndim != 2:
        raise DataError(f"{which} must be (H, W), got shape {m.shape}", where)
    if tuple(m.shape) != tuple(hw):
        raise DataError(f"{which} is {m.shape[0]}x{m.shape[1]} (HxW) but its frame is {hw[0]}x{hw[1]}", where,
                        "give each frame a mask of its own size")


def _check_color(color: Any) -> np.ndarray:
    try:
        rgb = np.asarray(color, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        rgb = np.zeros(0)
    if rgb.size != 3 or not np.all(np.isfinite(rgb)) or rgb.min() < 0 or rgb.max() > 255:
        raise ConfigError(f"color must be 3 values in 0..255 (R, G, B), got {color!r}", fix="pass e.g. (255, 64, 0)")
    return np.rint(rgb).astype(np.float32)


def _check_alpha(alpha: Any) -> float:
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        a = math.nan
    if not 0.0 <= a <= 1.0:
        raise ConfigError(f"alpha must be in [0, 1], got {alpha!r}", fix="pass e.g. 0.5")
    return a


# ---------------------------------------------------------------------------------------------------- video
def write_overlay_video(
    path: PathLike,
    frames: np.ndarray | Sequence[np.ndarray],
    masks: np.ndarray | Sequence[np.ndarray],
    fps: float,
    labels: str | Sequence[str | None] | None = None,
    color: tuple[int, int, int] = DEFAULT_COLOR,
    alpha: float = 0.5,
    crf: int = 18,
) -> Path:
    """Write ``frames`` (T × (H, W, 3) uint8) with ``masks`` (T × (H, W)) overlaid as an H.264 MP4 at ``fps``.

    ``labels``: one caption per frame (None/"" for none), or one string for every frame, drawn top-left.
    The file is complete when it appears (temporary file, then rename); everything is checked first.
    """
    final = Path(path)
    frames_l = _as_list(frames, "frames", final)
    masks_l = _as_list(masks, "masks", final)
    if not frames_l:
        raise DataError("no frames to write", final, "pass at least one frame")
    if len(masks_l) != len(frames_l):
        raise DataError(f"{len(frames_l)} frames but {len(masks_l)} masks", final, "pass one mask per frame")
    shape = np.asarray(frames_l[0]).shape
    for i, (f, m) in enumerate(zip(frames_l, masks_l, strict=True)):
        f = np.asarray(f)
        if f.ndim != 3 or f.shape[2] != 3 or f.dtype != np.uint8:
            raise DataError(f"frame {i} must be an (H, W, 3) uint8 RGB image, got {f.dtype} {f.shape}", final)
        if f.shape != shape:
            raise DataError(f"frame {i} is {f.shape[0]}x{f.shape[1]} but frame 0 is {shape[0]}x{shape[1]}", final,
                            "give every frame of the video the same size")
        _check_mask_shape(np.asarray(m), shape[:2], final, i)
        binary_mask(m)  # dtype check
    captions = _labels(labels, len(frames_l), final)
    _check_rate(fps)
    _check_color(color)
    _check_alpha(alpha)
    imgs = []
    for f, m, text in zip(frames_l, masks_l, captions, strict=True):
        img = overlay(f, m, color=color, alpha=alpha)
        imgs.append(_caption(img, text) if text else img)
    return write_video(final, imgs, fps, crf=crf)


def write_video(path: PathLike, frames: np.ndarray | Sequence[np.ndarray], fps: float, *,
                audio: np.ndarray | None = None, sample_rate: int | None = None, crf: int = 18) -> Path:
    """Write ``frames`` (T × (H, W, 3) uint8, one size) as H.264 at ``fps`` into an MP4/MKV/MOV, with ``audio``
    ((C, S) float in [-1, 1], or (S,)) at ``sample_rate`` as a second track: 16-bit PCM in MKV/MOV (exact, so
    the stereo time difference survives), AAC in MP4. Atomic: a temporary file, then rename."""
    final = Path(path)
    frames_l = _as_list(frames, "frames", final)
    if not frames_l:
        raise DataError("no frames to write", final, "pass at least one frame")
    shape = np.asarray(frames_l[0]).shape
    for i, f in enumerate(frames_l):
        f = np.asarray(f)
        if f.ndim != 3 or f.shape[2] != 3 or f.dtype != np.uint8 or f.shape != shape:
            raise DataError(f"frame {i} must be a {shape} uint8 RGB image like frame 0, got {f.dtype} {f.shape}",
                            final, "give every frame of the video the same size")
    rate = _check_rate(fps)
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
                aud = container.add_stream("aac" if fmt == "mp4" else "pcm_s16le", rate=int(sample_rate or 0),
                                           layout=layout)
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


def _as_list(x: Any, what: str, where: Path) -> list[Any]:
    if isinstance(x, np.ndarray):
        if x.ndim < 1:
            raise DataError(f"{what} must be a stack (one per frame), got a scalar", where)
        return list(x)
    try:
        return list(x)
    except TypeError:
        raise DataError(f"{what} must be an array or a sequence (one per frame), got {type(x).__name__}",
                        where) from None


def _labels(labels: Any, n: int, where: Path) -> list[str]:
    if labels is None:
        return [""] * n
    if isinstance(labels, str):
        return [labels] * n
    out = ["" if v is None else str(v) for v in labels]
    if len(out) != n:
        raise DataError(f"{len(out)} labels for {n} frames", where, "pass one label per frame (or a single string)")
    return out


def _check_rate(fps: Any) -> Fraction:
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


@functools.lru_cache(maxsize=8)
def _font(px: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=px)
    except (TypeError, OSError, ImportError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _caption(img: np.ndarray, text: str) -> np.ndarray:
    """``img`` with ``text`` in white on a dark box at the top-left corner."""
    from PIL import Image, ImageDraw

    im = Image.fromarray(img)
    draw = ImageDraw.Draw(im)
    font = _font(max(10, min(img.shape[0], img.shape[1]) // 18))
    x0, y0, x1, y1 = draw.textbbox((4, 2), text, font=font)
    draw.rectangle((x0 - 3, y0 - 2, x1 + 3, y1 + 2), fill=(0, 0, 0))
    draw.text((4, 2), text, fill=(255, 255, 255), font=font)
    return np.asarray(im)


# ----------------------------------------------------------------------------------------------- mask PNGs
def write_mask_pngs(
    folder: PathLike, names: Sequence[str], masks: np.ndarray | Sequence[np.ndarray]
) -> Path:
    """Write ``<folder>/<name>.png`` (8-bit, 0/255) for each mask, the folder appearing whole when all are written.

    A folder already at ``folder`` is replaced only once every file is written (and kept on any error).
    """
    final = Path(folder)
    names_l = [str(n) for n in names]
    masks_l = _as_list(masks, "masks", final)
    if len(names_l) != len(masks_l):
        raise DataError(f"{len(names_l)} names but {len(masks_l)} masks", final, "pass one name per mask")
    seen: set[str] = set()
    for n in names_l:
        if not n or n in (".", "..") or "/" in n or "\\" in n or "\0" in n:
            raise DataError(f"invalid mask name {n!r}", final, "use plain file stems such as 00000 or frame_1")
        if n in seen:
            raise DataError(f"mask name {n!r} is used twice", final, "give every frame its own name")
        seen.add(n)
    for i, m in enumerate(masks_l):
        m = np.asarray(m)
        if m.ndim != 2 or 0 in m.shape:
            raise DataError(f"mask {i} ({names_l[i]}) must be a non-empty (H, W) array, got shape {m.shape}", final)
        binary_mask(m)
    if final.exists() and not final.is_dir():
        raise DataError("output for the masks is a file, not a folder", final, "choose another output folder")
    with atomic_dir(final) as tmp:
        for n, m in zip(names_l, masks_l, strict=True):
            write_mask(tmp / f"{n}.png", binary_mask(m))
    return final
