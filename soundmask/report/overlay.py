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
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from soundmask.data.io import atomic_dir, write_mask
from soundmask.data.video import as_frame_list, check_rate, write_video
from soundmask.errors import ConfigError, DataError

__all__ = ["DEFAULT_COLOR", "binary_mask", "mask_edge", "overlay", "write_mask_pngs", "write_overlay_video"]

PathLike = str | os.PathLike[str]

DEFAULT_COLOR = (255, 64, 0)


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
        raise DataError(
            f"{which} is {m.shape[0]}x{m.shape[1]} (HxW) but its frame is {hw[0]}x{hw[1]}",
            where,
            "give each frame a mask of its own size",
        )


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
    frames_l = as_frame_list(frames, "frames", final)
    masks_l = as_frame_list(masks, "masks", final)
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
            raise DataError(
                f"frame {i} is {f.shape[0]}x{f.shape[1]} but frame 0 is {shape[0]}x{shape[1]}",
                final,
                "give every frame of the video the same size",
            )
        _check_mask_shape(np.asarray(m), shape[:2], final, i)
        binary_mask(m)  # dtype check
    captions = _labels(labels, len(frames_l), final)
    check_rate(fps)
    _check_color(color)
    _check_alpha(alpha)
    imgs = []
    for f, m, text in zip(frames_l, masks_l, captions, strict=True):
        img = overlay(f, m, color=color, alpha=alpha)
        imgs.append(_caption(img, text) if text else img)
    return write_video(final, imgs, fps, crf=crf)


def _labels(labels: Any, n: int, where: Path) -> list[str]:
    if labels is None:
        return [""] * n
    if isinstance(labels, str):
        return [labels] * n
    out = ["" if v is None else str(v) for v in labels]
    if len(out) != n:
        raise DataError(f"{len(out)} labels for {n} frames", where, "pass one label per frame (or a single string)")
    return out


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
def write_mask_pngs(folder: PathLike, names: Sequence[str], masks: np.ndarray | Sequence[np.ndarray]) -> Path:
    """Write ``<folder>/<name>.png`` (8-bit, 0/255) for each mask, the folder appearing whole when all are written.

    A folder already at ``folder`` is replaced only once every file is written (and kept on any error).
    """
    final = Path(folder)
    names_l = [str(n) for n in names]
    masks_l = as_frame_list(masks, "masks", final)
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
