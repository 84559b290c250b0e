"""Low-level file IO shared by every reader and writer.

Readers turn any problem with a file (missing, truncated, wrong size, NaNs) into a :class:`DataError` that
names the file. Writers never leave a half-written output: they write to a temporary sibling path and
rename it into place (``os.replace`` is atomic on one filesystem).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import struct
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from PIL import Image, UnidentifiedImageError

from soundmask.errors import DataError

PathLike = str | os.PathLike[str]

__all__ = [
    "atomic_dir",
    "atomic_path",
    "read_audio",
    "read_csv",
    "read_image",
    "read_json",
    "read_mask",
    "require_dir",
    "require_file",
    "write_audio",
    "to_jsonable",
    "write_image",
    "write_json",
    "write_mask",
]


# ----------------------------------------------------------------------------------------------- checks
def require_file(path: PathLike, what: str = "file", fix: str | None = None) -> Path:
    p = Path(path)
    if not p.is_file():
        problem = f"{what} is a folder, not a file" if p.is_dir() else f"{what} not found"
        raise DataError(problem, p, fix or "check the path")
    return p


def require_dir(path: PathLike, what: str = "folder", fix: str | None = None) -> Path:
    p = Path(path)
    if not p.is_dir():
        problem = f"{what} is a file, not a folder" if p.exists() else f"{what} not found"
        raise DataError(problem, p, fix or "check the path")
    return p


# --------------------------------------------------------------------------------------------- atomic IO
@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``, on error delete it."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp" + final.suffix, dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``path``; on success it replaces ``path`` as a whole.

    On an exception the temporary folder is removed and ``path`` is left as it was.
    """
    final = Path(path)
    if final.exists() and not overwrite:
        raise DataError("output already exists", final, "choose another output or allow overwriting")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- images
def read_image(path: PathLike, size: tuple[int, int] | None = None, mode: str = "RGB") -> np.ndarray:
    """Read an image as ``uint8`` (H, W, 3) for ``mode='RGB'`` or (H, W) for ``'L'``.

    ``size`` is the expected ``(height, width)``; a different size raises :class:`DataError`.
    """
    p = require_file(path, "image")
    try:
        with Image.open(p) as im:
            im.load()  # decodes fully: a truncated file fails here, not later
            arr = np.asarray(im.convert(mode))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f"cannot decode image ({type(e).__name__}: {e})", p, "re-export or replace the file") from e
    _check_size(arr, size, p)
    return arr


def read_mask(path: PathLike, size: tuple[int, int] | None = None) -> np.ndarray:
    """Read a binary mask PNG (0 = background, anything > 0 = foreground; AVSBench stores 0/255) as bool (H, W)."""
    return read_image(path, size, mode="L") > 0


def read_label_image(path: PathLike, size: tuple[int, int] | None = None) -> np.ndarray:
    """Read a single-channel integer image (e.g. uint16 instance ids) without changing its values."""
    p = require_file(path, "label image")
    try:
        with Image.open(p) as im:
            im.load()
            arr = np.asarray(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f"cannot decode image ({type(e).__name__}: {e})", p, "re-export or replace the file") from e
    if arr.ndim != 2:
        raise DataError(f"expected a single-channel label image, got shape {arr.shape}", p)
    _check_size(arr, size, p)
    return arr.astype(np.int64 if arr.dtype.kind in "iu" else arr.dtype)


def _check_size(arr: np.ndarray, size: tuple[int, int] | None, p: Path) -> None:
    if size is not None and tuple(arr.shape[:2]) != tuple(size):
        raise DataError(
            f"image is {arr.shape[0]}x{arr.shape[1]} (HxW), expected {size[0]}x{size[1]}",
            p,
            "resize it to match the other frames of the clip",
        )


def write_image(path: PathLike, array: np.ndarray) -> Path:
    """Write an image atomically; uint8 (H,W[,3|4]) or uint16 (H,W) arrays, format from the suffix."""
    arr = np.asarray(array)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    if arr.dtype not in (np.uint8, np.uint16):
        raise TypeError(f"write_image expects uint8/uint16/bool, got {arr.dtype}")
    final = Path(path)
    fmt = _pil_format(final)
    opts = {"compress_level": 3} if fmt == "PNG" else {}  # zlib level 3: ~2x faster than PIL's 6, ~5 % larger
    with atomic_path(final) as tmp:
        Image.fromarray(arr).save(tmp, format=fmt, **opts)
    return final


def write_mask(path: PathLike, mask: np.ndarray) -> Path:
    """Write a binary mask as an 8-bit PNG with values 0/255 (the AVSBench convention)."""
    return write_image(path, (np.asarray(mask) > 0).astype(np.uint8) * 255)


def _pil_format(path: Path) -> str:
    ext = path.suffix.lower()
    return {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP"}.get(ext, "PNG")


# ----------------------------------------------------------------------------------------------- audio
def read_audio(path: PathLike, expect_sr: int | None = None, channels: int | None = None) -> tuple[np.ndarray, int]:
    """Read WAV/FLAC/OGG as float32 ``(channels, samples)`` and its sample rate.

    Raises :class:`DataError` for a missing/truncated/empty file, NaN or inf samples, a sample rate other
    than ``expect_sr``, or a channel count other than ``channels``.
    """
    p = require_file(path, "audio file")
    _check_wav_complete(p)
    try:
        data, sr = sf.read(p, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise DataError(f"cannot decode audio ({e})", p, "re-export it as WAV or FLAC") from e
    audio = np.ascontiguousarray(data.T)
    if audio.shape[1] == 0:
        raise DataError("audio file has no samples", p, "re-export the audio")
    if sr <= 0:
        raise DataError(f"invalid sample rate {sr}", p, "re-export the audio with a valid sample rate")
    if not np.isfinite(audio).all():
        raise DataError("audio contains NaN or infinite samples", p, "re-export the audio")
    if expect_sr is not None and sr != expect_sr:
        raise DataError(f"sample rate is {sr} Hz, expected {expect_sr} Hz", p, f"resample it to {expect_sr} Hz")
    if channels is not None and audio.shape[0] != channels:
        kind = {1: "mono", 2: "stereo"}.get(channels, f"{channels}-channel")
        raise DataError(f"audio has {audio.shape[0]} channel(s), expected {kind}", p, f"provide {kind} audio")
    return audio, int(sr)


def _check_wav_complete(p: Path) -> None:
    """Raise :class:`DataError` when a RIFF/WAVE file holds fewer data bytes than its header declares.

    libsndfile reads a WAV that was cut short without complaint (it just returns fewer samples), so a
    truncated download would otherwise pass as a shorter clip. Other formats, RF64, and streamed WAVs whose
    data size is unknown (0 or 0xFFFFFFFF) are left to libsndfile.
    """
    try:
        size = p.stat().st_size
        with p.open("rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
                return
            endian = "<" if head[:4] == b"RIFF" else ">"
            pos = 12
            while pos + 8 <= size:
                f.seek(pos)
                chunk = f.read(8)
                if len(chunk) < 8:
                    return
                (csize,) = struct.unpack(endian + "I", chunk[4:])
                if chunk[:4] == b"data":
                    if csize not in (0, 0xFFFFFFFF) and pos + 8 + csize > size:
                        raise DataError(
                            f"truncated WAV: header declares {csize} data bytes, the file holds {size - pos - 8}",
                            p,
                            "re-export or re-download the file",
                        )
                    return
                pos += 8 + csize + (csize & 1)
    except OSError as e:
        raise DataError(f"cannot read audio file ({e})", p) from e


def write_audio(path: PathLike, audio: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> Path:
    """Write float audio ``(channels, samples)`` or ``(samples,)`` atomically (format from the suffix)."""
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 1:
        a = a[None]
    if not np.isfinite(a).all():
        raise ValueError("refusing to write audio with NaN/inf samples")
    final = Path(path)
    fmt = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}.get(final.suffix.lower(), "WAV")
    if fmt == "OGG":
        subtype = "VORBIS"
    with atomic_path(final) as tmp:
        sf.write(tmp, a.T, int(sample_rate), subtype=subtype, format=fmt)
    return final


# ------------------------------------------------------------------------------------------ json / csv
def read_json(path: PathLike, what: str = "JSON file") -> Any:
    p = require_file(path, what)
    try:
        return json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"invalid JSON ({e})", p, "fix or regenerate the file") from e


def write_json(path: PathLike, obj: Any, indent: int | None = 1) -> Path:
    """Write ``obj`` as JSON, atomically: numpy arrays and scalars become lists and numbers, paths strings, and NaN
    or infinite floats ``null`` (JSON has no NaN). The one JSON writer of the package."""
    final = Path(path)
    with atomic_path(final) as tmp:
        tmp.write_text(json.dumps(to_jsonable(obj), indent=indent, allow_nan=False) + "\n")
    return final


def to_jsonable(x: Any) -> Any:
    """``x`` with numpy values as Python ones, dict keys as strings, paths as strings and non-finite floats as None."""
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return to_jsonable(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float):
        return x if np.isfinite(x) else None
    if isinstance(x, Path):
        return str(x)
    if x is None or isinstance(x, (str, int, bool)):
        return x
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def read_csv(path: PathLike, required: Sequence[str], delimiter: str = ",") -> list[dict[str, str]]:
    """Read a CSV with a header row; raise :class:`DataError` naming any missing required column."""
    p = require_file(path, "CSV file")
    try:
        with p.open(newline="") as f:
            reader = csv.DictReader(f, delimiter=delimiter)
            header = [h.strip() for h in (reader.fieldnames or [])]
            rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    except (UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"cannot parse CSV ({e})", p) from e
    missing = [c for c in required if c not in header]
    if missing:
        raise DataError(
            f"missing column(s) {', '.join(missing)}; found {', '.join(header) or 'no header'}",
            p,
            f"the header must contain {', '.join(required)}",
        )
    return rows
