"""AVSBench-semantic (AVSS) reader and writer, in the original release layout.

``root`` holds ``metadata.csv`` (columns ``vid, uid, s_min, s_sec, a_obj, split, label``; the reader needs
only ``uid``, ``label`` and ``split``), optionally ``label2idx.json``, and one folder per clip::

    <label>/<uid>/frames/<i>.jpg          i = 0..4 for label v1s / v1m, 0..9 for v2
    <label>/<uid>/labels_rgb/<i>.png      semantic labels drawn in the AVSS palette (v1s train: only 0.png)
    <label>/<uid>/audio.wav

Class ``c`` (0 = background, 1..70 in ``label2idx.json`` order) is drawn in colour ``avss_palette()[c]``,
the PASCAL-VOC bit-interleaving colormap (``get_v2_pallete`` in the original code).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from soundmask.constants import AVSBENCH_NUM_FRAMES, AVSBENCH_SAMPLE_RATE
from soundmask.data.avsbench import AVSBENCH_SPLITS, resample_audio
from soundmask.data.dataset import ClipDataset, read_frames
from soundmask.data.io import (
    PathLike,
    atomic_dir,
    atomic_path,
    read_audio,
    read_csv,
    read_image,
    read_json,
    require_dir,
    write_audio,
    write_image,
    write_json,
)
from soundmask.data.types import Clip
from soundmask.errors import DataError

__all__ = [
    "AVSS_CLASSES",
    "AVSS_LABELS",
    "AVSS_NUM_FRAMES",
    "AVSSDataset",
    "avss_palette",
    "labels_to_rgb",
    "rgb_to_labels",
    "write_avss",
]

# label2idx.json order: index = class id, 0 = background (71 classes, 70 sounding-object categories).
AVSS_CLASSES: tuple[str, ...] = (
    "background", "accordion", "airplane", "axe", "baby", "bassoon", "bell", "bird", "boat", "boy", "bus",
    "car", "cat", "cello", "clarinet", "clipper", "clock", "dog", "donkey", "drum", "duck", "elephant",
    "emergency-car", "erhu", "flute", "frying-food", "girl", "goose", "guitar", "gun", "guzheng",
    "hair-dryer", "handpan", "harmonica", "harp", "helicopter", "hen", "horse", "keyboard", "leopard",
    "lion", "man", "marimba", "missile-rocket", "motorcycle", "mower", "parrot", "piano", "pig", "pipa",
    "saw", "saxophone", "sheep", "sitar", "sorna", "squirrel", "tabla", "tank", "tiger", "tractor", "train",
    "trombone", "truck", "trumpet", "tuba", "ukulele", "utv", "vacuum-cleaner", "violin", "wolf", "woman",
)  # fmt: skip
NUM_CLASSES = len(AVSS_CLASSES)
AVSS_LABELS: tuple[str, ...] = ("v1s", "v1m", "v2")
AVSS_NUM_FRAMES = {"v1s": AVSBENCH_NUM_FRAMES, "v1m": AVSBENCH_NUM_FRAMES, "v2": 10}
AVSS_SAMPLE_RATE = AVSBENCH_SAMPLE_RATE
_COLUMNS = ("vid", "uid", "s_min", "s_sec", "a_obj", "split", "label")


# ------------------------------------------------------------------------------------------------ palette
@lru_cache(maxsize=1)
def _palette() -> np.ndarray:
    pal = np.zeros((NUM_CLASSES, 3), dtype=np.uint8)
    for c in range(NUM_CLASSES):
        lab, bit = c, 7
        while lab > 0:
            for ch in range(3):
                pal[c, ch] |= ((lab >> ch) & 1) << bit
            lab >>= 3
            bit -= 1
    pal.setflags(write=False)
    return pal


def avss_palette() -> np.ndarray:
    """(71, 3) uint8 RGB colour of each AVSS class (row 0 = background = black)."""
    return _palette().copy()


@lru_cache(maxsize=1)
def _lookup() -> tuple[np.ndarray, np.ndarray]:
    keys = _rgb_keys(_palette())
    order = np.argsort(keys)
    return keys[order], order.astype(np.int64)


def _rgb_keys(rgb: np.ndarray) -> np.ndarray:
    a = np.asarray(rgb).astype(np.int64)
    return (a[..., 0] << 16) | (a[..., 1] << 8) | a[..., 2]


def labels_to_rgb(labels: np.ndarray) -> np.ndarray:
    """Class ids (..., H, W) → palette colours (..., H, W, 3) uint8; ids outside 0..70 raise ValueError."""
    lab = np.asarray(labels)
    if lab.dtype.kind not in "iu":
        raise ValueError(f"labels must be integers, got {lab.dtype}")
    if lab.size and (lab.min() < 0 or lab.max() >= NUM_CLASSES):
        raise ValueError(f"labels must lie in 0..{NUM_CLASSES - 1}, got {lab.min()}..{lab.max()}")
    return _palette()[lab]


def rgb_to_labels(rgb: np.ndarray, path: PathLike | None = None) -> np.ndarray:
    """Palette colours (..., 3) → class ids (...) int64, the exact inverse of :func:`labels_to_rgb`.

    A colour that is not in the palette raises :class:`DataError` (naming ``path`` when given).
    """
    a = np.asarray(rgb)
    if a.shape[-1:] != (3,):
        raise DataError(f"expected an RGB label image (..., 3), got shape {a.shape}", path)
    keys = _rgb_keys(a)
    sorted_keys, order = _lookup()
    pos = np.clip(np.searchsorted(sorted_keys, keys), 0, len(sorted_keys) - 1)
    ok = sorted_keys[pos] == keys
    if not ok.all():
        bad = np.unique(a[~ok].reshape(-1, 3), axis=0)
        shown = ", ".join(f"({r},{g},{b})" for r, g, b in bad[:3].tolist())
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise DataError(
            f"{int((~ok).sum())} pixel(s) have colours outside the AVSS palette: {shown}{more}",
            path,
            "draw labels with the 71-colour AVSS palette (nearest-neighbour resizing only)",
        )
    return order[pos]


# ------------------------------------------------------------------------------------------------ reading
@dataclass(frozen=True)
class _Entry:
    name: str  # the clip's uid
    label: str
    split: str
    category: str
    meta: dict[str, Any]


def _int_or_str(v: str) -> Any:
    return int(v) if re.fullmatch(r"[+-]?\d+", v) else v


class AVSSDataset(ClipDataset):
    """The clips of one split of AVSBench-semantic, read lazily (files are opened in ``__getitem__``).

    ``root`` holds ``metadata.csv``; ``label`` keeps only ``'v1s'``, ``'v1m'`` or ``'v2'`` clips (or a
    collection of them; None = all). Each item is a :class:`Clip` with 5 (v1*) or 10 (v2) frames, the audio
    of ``audio.wav``, ``labels`` (T, H, W) int64 class ids, ``masks = labels > 0``, ``mask_valid`` (frames
    with a ``labels_rgb`` image; v1s train has only the first), ``category`` = the CSV's ``a_obj`` and
    ``meta`` with ``label`` and the other CSV columns.
    """

    def __init__(self, root: PathLike, split: str = "test", label: str | Iterable[str] | None = None):
        r = require_dir(root, "AVSS root folder", "pass the folder that holds metadata.csv")
        if split not in AVSBENCH_SPLITS:
            raise DataError(f"unknown split {split!r}", r, f"use one of {', '.join(AVSBENCH_SPLITS)}")
        labels = set(AVSS_LABELS) if label is None else {label} if isinstance(label, str) else set(label)
        unknown = sorted(labels - set(AVSS_LABELS))
        if unknown:
            raise DataError(f"unknown AVSS label(s) {', '.join(unknown)}", r, f"use {', '.join(AVSS_LABELS)}")
        self.root = r
        self.split = split
        self.labels = tuple(x for x in AVSS_LABELS if x in labels)
        self.csv_path = r / "metadata.csv"
        rows = read_csv(self.csv_path, ("uid", "label", "split"))
        _check_label2idx(r / "label2idx.json")
        self._entries: list[_Entry] = []
        for line, row in enumerate(rows, start=2):
            if row["split"] != split or row["label"] not in labels:
                continue
            if not row["uid"]:
                raise DataError(f"line {line}: empty uid", self.csv_path, "fix or remove the row")
            meta: dict[str, Any] = {"label": row["label"]}
            for k, v in row.items():
                if k and k not in ("uid", "label", "split"):
                    meta[k] = _int_or_str(v) if k in ("s_min", "s_sec") else v
            self._entries.append(_Entry(row["uid"], row["label"], split, row.get("a_obj", ""), meta))

    def __repr__(self) -> str:
        return f"AVSSDataset({str(self.root)!r}, split={self.split!r}, labels={self.labels}, clips={len(self)})"

    def clip_dir(self, i: int) -> Path:
        e = self._entry(i)
        return self.root / e.label / e.name

    def _load(self, i: int) -> Clip:
        e = self._entries[i]
        d = require_dir(self.clip_dir(i), "clip folder", "check metadata.csv against the data folders")
        frames = read_frames(_frame_paths(d / "frames", AVSS_NUM_FRAMES[e.label]))
        size = frames.shape[1:3]
        T = frames.shape[0]
        required = {0} if (e.label == "v1s" and e.split == "train") else set(range(T))
        labels = np.zeros(frames.shape[:3], dtype=np.int64)
        valid = np.zeros(T, dtype=bool)
        for t in range(T):
            p = d / "labels_rgb" / f"{t}.png"
            if t in required or p.is_file():
                labels[t] = rgb_to_labels(read_image(p, size), p)
                valid[t] = True
        audio, sr = read_audio(d / "audio.wav")
        return Clip(
            name=e.name,
            frames=frames,
            audio=audio,
            sample_rate=sr,
            masks=labels > 0,
            mask_valid=valid,
            labels=labels,
            category=e.category,
            split=e.split,
            frame_times=np.arange(T, dtype=np.float64),
            meta=dict(e.meta),
        )


def _frame_paths(frames_dir: Path, expected: int) -> list[Path]:
    """``<i>.jpg`` (or ``<i>.png``) for i = 0..n-1, n = max(expected, highest index present + 1)."""
    d = require_dir(frames_dir, "frames folder")
    present = [int(m.group(1)) for p in d.iterdir() if (m := re.fullmatch(r"(\d+)\.(?:jpg|png)", p.name, re.I))]
    n = max([expected] + [k + 1 for k in present])
    out = []
    for t in range(n):
        jpg = d / f"{t}.jpg"
        png = d / f"{t}.png"
        out.append(png if (not jpg.exists() and png.exists()) else jpg)  # a missing frame is reported as .jpg
    return out


def _check_label2idx(path: Path) -> None:
    if not path.is_file():
        return
    mapping = read_json(path, "label2idx.json")
    names = list(mapping) if isinstance(mapping, dict) else None
    if names != list(AVSS_CLASSES):
        raise DataError(
            "class list differs from the 71 AVSS classes this reader decodes (order matters: it picks the colour)",
            path,
            "use the label2idx.json of the AVSBench-semantic release",
        )


# ------------------------------------------------------------------------------------------------ writing
def write_avss(
    root: PathLike,
    clips: Iterable[Clip],
    frame_format: str = "jpg",
    sample_rate: int | None = AVSS_SAMPLE_RATE,
    overwrite: bool = True,
) -> Path:
    """Write ``clips`` as an AVSBench-semantic dataset in ``root`` (built in a temporary folder, then renamed).

    Each clip needs ``labels`` (class ids 0..70), ``split`` in train/val/test and ``meta['label']`` in
    v1s/v1m/v2 with 5/5/10 frames. Label images are written for the frames where ``mask_valid`` is True (all
    when None; v1s train needs frame 0, other clips all frames). Frames go to ``frames/<i>.jpg`` (quality
    100, no chroma subsampling: near-lossless) or ``.png`` with ``frame_format='png'`` (lossless; the reader
    accepts both). Audio is resampled to ``sample_rate`` (None keeps the clip's) and written as 16-bit PCM.
    ``metadata.csv`` gets ``vid, uid, s_min, s_sec, a_obj, split, label`` (``a_obj`` from ``category``,
    the others from ``meta`` when present); ``label2idx.json`` is written too. Replaces ``root`` as a whole.
    """
    if frame_format not in ("jpg", "png"):
        raise ValueError(f"frame_format must be 'jpg' or 'png', got {frame_format!r}")
    seen: set[tuple[str, str]] = set()
    rows = []
    with atomic_dir(root, overwrite=overwrite) as tmp:
        for c in clips:  # streamed: one clip in memory at a time; a bad clip aborts the whole (atomic) write
            _validate_clip(c, seen)
            _write_clip(tmp / c.meta["label"] / c.name, c, frame_format, sample_rate)
            m = c.meta
            rows.append(
                [str(m.get("vid", c.name)), c.name, str(m.get("s_min", "")), str(m.get("s_sec", "")),
                 c.category, c.split, m["label"]]
            )  # fmt: skip
        with atomic_path(tmp / "metadata.csv") as t, t.open("w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(_COLUMNS)
            w.writerows(rows)
        write_json(tmp / "label2idx.json", {name: i + 1 for i, name in enumerate(AVSS_CLASSES)})
    return Path(root)


def _validate_clip(c: Clip, seen: set[tuple[str, str]]) -> None:
    if not c.name or c.name in (".", "..") or any(ch in c.name for ch in "/\\\x00"):
        raise DataError(f"clip {c.name!r}: name cannot be used as a folder name")
    label = c.meta.get("label")
    if label not in AVSS_LABELS:
        raise DataError(
            f"clip {c.name!r}: meta['label'] is {label!r}", fix=f"set it to one of {', '.join(AVSS_LABELS)}"
        )
    if c.split not in AVSBENCH_SPLITS:
        raise DataError(f"clip {c.name!r}: unknown split {c.split!r}", fix=f"use one of {', '.join(AVSBENCH_SPLITS)}")
    if c.num_frames != AVSS_NUM_FRAMES[label]:
        raise DataError(f"clip {c.name!r}: has {c.num_frames} frames, AVSS {label} clips have {AVSS_NUM_FRAMES[label]}")
    if c.labels is None:
        raise DataError(f"clip {c.name!r}: has no semantic labels", fix="set Clip.labels (class ids 0..70)")
    lab = np.asarray(c.labels)
    if lab.dtype.kind not in "iu" or (lab.size and (lab.min() < 0 or lab.max() >= NUM_CLASSES)):
        raise DataError(f"clip {c.name!r}: labels must be integers in 0..{NUM_CLASSES - 1}")
    valid = np.ones(c.num_frames, bool) if c.mask_valid is None else c.mask_valid
    needed = [0] if (label == "v1s" and c.split == "train") else list(range(c.num_frames))
    if not valid[needed].all():
        raise DataError(f"clip {c.name!r}: AVSS {label} {c.split} needs labels for frame(s) {needed}")
    if (label, c.name) in seen:
        raise DataError(f"clip {c.name!r}: duplicate uid in {label}")
    seen.add((label, c.name))


def _write_clip(d: Path, c: Clip, frame_format: str, sample_rate: int | None) -> None:
    assert c.labels is not None
    for t in range(c.num_frames):
        if frame_format == "png":
            write_image(d / "frames" / f"{t}.png", c.frames[t])
        else:
            (d / "frames").mkdir(parents=True, exist_ok=True)
            with atomic_path(d / "frames" / f"{t}.jpg") as tmp:
                Image.fromarray(c.frames[t]).save(tmp, format="JPEG", quality=100, subsampling=0)
    valid = np.ones(c.num_frames, bool) if c.mask_valid is None else c.mask_valid
    for t in range(c.num_frames):
        if valid[t]:
            write_image(d / "labels_rgb" / f"{t}.png", labels_to_rgb(np.asarray(c.labels[t]).astype(np.int64)))
    sr = c.sample_rate if sample_rate is None else int(sample_rate)
    audio = np.clip(resample_audio(c.audio, c.sample_rate, sr), -1.0, 1.0)
    write_audio(d / "audio.wav", audio, sr)
