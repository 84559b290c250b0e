"""AVSBench-object (S4 single-source, MS3 multi-source) reader and writer, in the original release layout.

S4 (``root`` holds ``s4_meta_data.csv`` and ``s4_data/``)::

    s4_meta_data.csv                                   name,start_time,category,split
    s4_data/visual_frames/<split>/<category>/<name>/<name>_<k>.png     k = 1..5, 224x224 RGB
    s4_data/gt_masks/<split>/<category>/<name>/<name>_<k>.png          0/255; train has only k = 1
    s4_data/audio_wav/<split>/<category>/<name>.wav                    16 kHz
    s4_data/audio_log_mel/<split>/<category>/<name>.pkl                (optional, VGGish input; not read)

MS3 (``root`` holds ``ms3_meta_data.csv`` and ``ms3_data/``); no category folder, frames not split::

    ms3_meta_data.csv                                  <video id>,split  (the id is the first column)
    ms3_data/visual_frames/<name>/<name>.mp4_<k>.png                   k = 1..5
    ms3_data/gt_masks/<split>/<name>/<name>_<k>.png                    all 5 annotated in every split
    ms3_data/audio_wav/<split>/<name>.wav                              16 kHz

Our generator adds every object's instance ids beside the ground truth (AVSBench has no such folder; readers
that do not know it ignore it)::

    <subset>_data/instance_masks/<the gt_masks path>/<name>_<k>.png   uint16 object ids, 0 = background, k = 1..5
    <subset>_data/instance_masks/<the gt_masks path>/objects.csv      id,category
    <subset>_data/object_audio/<the gt_masks path>/<id>.wav           an object's own sound (16 kHz), optional

Frame ``k`` was sampled at about ``(k-1) + 15/16`` s of the 5-s clip and is paired with audio second
``[k-1, k)``; :attr:`Clip.frame_times` holds ``k-1``, the start of that second. See ``docs/formats.md``.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

from soundmask.constants import AVSBENCH_NUM_FRAMES, AVSBENCH_SAMPLE_RATE
from soundmask.data.dataset import ClipDataset, read_frames
from soundmask.data.io import (
    PathLike,
    atomic_dir,
    atomic_path,
    read_audio,
    read_csv,
    read_label_image,
    read_mask,
    require_dir,
    require_file,
    write_audio,
    write_image,
    write_mask,
)
from soundmask.data.types import Clip
from soundmask.errors import DataError

__all__ = [
    "AVSBENCH_SAMPLE_RATE",
    "AVSBENCH_SPLITS",
    "AVSBENCH_SUBSETS",
    "AVSBenchDataset",
    "NUM_FRAMES",
    "S4_CATEGORIES",
    "detect_subset",
    "read_binary_mask",
    "resample_audio",
    "write_avsbench",
]

Subset = Literal["s4", "ms3"]
AVSBENCH_SUBSETS: tuple[str, ...] = ("s4", "ms3")
AVSBENCH_SPLITS: tuple[str, ...] = ("train", "val", "test")
NUM_FRAMES = AVSBENCH_NUM_FRAMES  # every AVSBench-object clip has 5 frames (one per second)
INSTANCE_DIR = "instance_masks"  # our addition: every object's ids (see the module docstring)
OBJECTS_FILE = "objects.csv"
OBJECT_AUDIO_DIR = "object_audio"  # our addition: each object's own sound, ``<id>.wav`` (see the module docstring)
FRAME_OFFSET_S = 15 / 16  # frame k is the 16th of 16 samples taken in second k-1 (preprocess_s4.py)

# The 23 S4 categories (preprocess_scripts/preprocess_s4.py); informative only, the CSV is authoritative.
S4_CATEGORIES: tuple[str, ...] = (
    "baby_laughter", "female_singing", "male_speech", "dog_barking", "cat_meowing", "lions_roaring",
    "horse_clip-clop", "coyote_howling", "mynah_bird_singing", "playing_acoustic_guitar", "playing_tabla",
    "playing_violin", "playing_piano", "playing_ukulele", "playing_glockenspiel", "helicopter", "race_car",
    "driving_buses", "ambulance_siren", "typing_on_computer_keyboard", "chainsawing_trees",
    "cap_gun_shooting", "lawn_mowing",
)  # fmt: skip

_S4_COLUMNS = ("name", "start_time", "category", "split")
_MS3_COLUMNS = ("video_id", "split")  # header we write; the reader takes the id from the first column


@dataclass(frozen=True)
class _Layout:
    subset: str
    csv_name: str
    data_dir: str

    def frame_dir(self, data: Path, split: str, category: str, name: str) -> Path:
        if self.subset == "s4":
            return data / "visual_frames" / split / category / name
        return data / "visual_frames" / name

    def frame_file(self, name: str, k: int) -> str:
        return f"{name}_{k}.png" if self.subset == "s4" else f"{name}.mp4_{k}.png"

    def mask_dir(self, data: Path, split: str, category: str, name: str) -> Path:
        if self.subset == "s4":
            return data / "gt_masks" / split / category / name
        return data / "gt_masks" / split / name

    def instance_dir(self, data: Path, split: str, category: str, name: str) -> Path:
        return data / INSTANCE_DIR / self.mask_dir(data, split, category, name).relative_to(data / "gt_masks")

    def object_audio_dir(self, data: Path, split: str, category: str, name: str) -> Path:
        return data / OBJECT_AUDIO_DIR / self.mask_dir(data, split, category, name).relative_to(data / "gt_masks")

    def audio_file(self, data: Path, split: str, category: str, name: str) -> Path:
        if self.subset == "s4":
            return data / "audio_wav" / split / category / f"{name}.wav"
        return data / "audio_wav" / split / f"{name}.wav"

    def gt_frames(self, split: str) -> tuple[int, ...]:
        """1-based frames that must have a ground-truth mask (S4 train annotates only the first)."""
        if self.subset == "s4" and split == "train":
            return (1,)
        return tuple(range(1, NUM_FRAMES + 1))


_LAYOUTS = {
    "s4": _Layout("s4", "s4_meta_data.csv", "s4_data"),
    "ms3": _Layout("ms3", "ms3_meta_data.csv", "ms3_data"),
}


@dataclass(frozen=True)
class _Entry:
    name: str
    category: str
    split: str
    meta: dict[str, Any]


def detect_subset(root: PathLike) -> str:
    """``'s4'`` or ``'ms3'`` from the metadata CSV found in ``root``; :class:`DataError` if none or both."""
    r = require_dir(root, "AVSBench root folder", "pass the folder that holds s4_meta_data.csv or ms3_meta_data.csv")
    found = [s for s, lay in _LAYOUTS.items() if (r / lay.csv_name).is_file()]
    if not found:
        raise DataError(
            "no s4_meta_data.csv or ms3_meta_data.csv in this folder",
            r,
            "pass the AVSBench folder that holds the metadata CSV (e.g. Single-source/ or Multi-sources/)",
        )
    if len(found) > 1:
        raise DataError(
            "both s4_meta_data.csv and ms3_meta_data.csv are here, the subset is ambiguous",
            r,
            "pass subset='s4' or subset='ms3'",
        )
    return found[0]


def _check_split(split: str, where: Path) -> str:
    if split not in AVSBENCH_SPLITS:
        raise DataError(f"unknown split {split!r}", where, f"use one of {', '.join(AVSBENCH_SPLITS)}")
    return split


def _number(v: str) -> Any:
    try:
        f = float(v)
    except ValueError:
        return v
    return int(f) if f.is_integer() and re.fullmatch(r"[+-]?\d+", v.strip()) else f


class AVSBenchDataset(ClipDataset):
    """The clips of one split of AVSBench S4 or MS3, read lazily (files are opened in ``__getitem__``).

    ``root`` is the folder holding ``s4_meta_data.csv`` / ``ms3_meta_data.csv`` (``subset=None`` detects
    which). Each item is a :class:`Clip` with 5 frames, the clip's audio at its file's sample rate, binary
    ``masks`` and ``mask_valid`` (False for frames without ground truth, e.g. frames 2-5 of S4 train),
    ``category`` (S4; empty for MS3), ``split`` and ``meta`` (``subset``, ``start_time`` for S4 and any
    further CSV columns), ``instances`` / ``instance_categories`` where the clip has an
    ``instance_masks/`` folder and ``object_audio`` where it has an ``object_audio/`` folder (generated data).
    """

    def __init__(self, root: PathLike, subset: Subset | None = None, split: str = "test"):
        r = require_dir(root, "AVSBench root folder", "pass the folder that holds the metadata CSV")
        if subset is None:
            subset = detect_subset(r)  # type: ignore[assignment]
        elif subset not in _LAYOUTS:
            raise DataError(f"unknown AVSBench subset {subset!r}", r, "use 's4' or 'ms3'")
        self.root = r
        self.subset: str = str(subset)
        self._layout = _LAYOUTS[self.subset]
        self.split = _check_split(split, r)
        self.csv_path = r / self._layout.csv_name
        required = ("name", "category", "split") if self.subset == "s4" else ("split",)
        rows = read_csv(self.csv_path, required)
        data_dir = self._layout.data_dir
        self.data_root = require_dir(
            r / data_dir, f"{self.subset.upper()} data folder", f"unpack {data_dir}/ beside the CSV"
        )
        self._entries = self._parse(rows)

    # ------------------------------------------------------------------------------------------ metadata
    def _parse(self, rows: list[dict[str, str]]) -> list[_Entry]:
        entries: list[_Entry] = []
        for line, row in enumerate(rows, start=2):  # line 1 is the header
            if row.get("split") != self.split:
                continue
            if self.subset == "s4":
                name, category = row["name"], row["category"]
                keys: tuple[str, ...] = ("name", "category", "split")
            else:
                first = next(iter(row), "")
                name, category = row.get(first, ""), ""
                keys = (first, "split")
            if not name or (self.subset == "s4" and not category):
                raise DataError(f"line {line}: empty video name or category", self.csv_path, "fix or remove the row")
            meta: dict[str, Any] = {"subset": self.subset}
            meta.update({k: _number(v) for k, v in row.items() if k and k not in keys})
            entries.append(_Entry(name, category, self.split, meta))
        return entries

    def __repr__(self) -> str:
        return f"AVSBenchDataset({str(self.root)!r}, subset={self.subset!r}, split={self.split!r}, clips={len(self)})"

    # ------------------------------------------------------------------------------------------- paths
    def frame_paths(self, i: int) -> list[Path]:
        e = self._entry(i)
        d = self._layout.frame_dir(self.data_root, e.split, e.category, e.name)
        return [d / self._layout.frame_file(e.name, k) for k in range(1, NUM_FRAMES + 1)]

    def mask_paths(self, i: int) -> list[Path]:
        e = self._entry(i)
        d = self._layout.mask_dir(self.data_root, e.split, e.category, e.name)
        return [d / f"{e.name}_{k}.png" for k in range(1, NUM_FRAMES + 1)]

    def instance_paths(self, i: int) -> tuple[list[Path], Path]:
        """The clip's instance-id images (frames 1..5) and its ``objects.csv`` (generated data only)."""
        e = self._entry(i)
        d = self._layout.instance_dir(self.data_root, e.split, e.category, e.name)
        return [d / f"{e.name}_{k}.png" for k in range(1, NUM_FRAMES + 1)], d / OBJECTS_FILE

    def _instances(self, i: int, size: tuple[int, int]) -> tuple[np.ndarray | None, dict[int, str]]:
        files, table = self.instance_paths(i)
        if not table.is_file():
            return None, {}
        cats = {int(r["id"]): r["category"] for r in read_csv(table, ("id", "category"))}
        return np.stack([read_label_image(p, size).astype(np.int32) for p in files]), cats

    def audio_path(self, i: int) -> Path:
        e = self._entry(i)
        return self._layout.audio_file(self.data_root, e.split, e.category, e.name)

    def object_audio_dir(self, i: int) -> Path:
        """The folder of the clip's per-object sounds, ``<id>.wav`` (generated data only; may not exist)."""
        e = self._entry(i)
        return self._layout.object_audio_dir(self.data_root, e.split, e.category, e.name)

    def _object_audio(self, i: int, num_samples: int, sr: int) -> dict[int, np.ndarray]:
        d = self.object_audio_dir(i)
        if not d.is_dir():
            return {}
        out: dict[int, np.ndarray] = {}
        for p in sorted(d.glob("*.wav")):
            if not p.stem.isdigit():
                continue
            y, y_sr = read_audio(p)
            if y_sr != sr or y.shape[1] != num_samples:
                raise DataError(
                    f"object audio has {y.shape[1]} samples at {y_sr} Hz, the clip's audio {num_samples} at {sr} Hz",
                    p,
                    "regenerate the clip or remove its object_audio folder",
                )
            out[int(p.stem)] = y
        return out

    # -------------------------------------------------------------------------------------------- items
    def _load(self, i: int) -> Clip:
        e = self._entries[i]
        frames = read_frames(self.frame_paths(i))
        size = frames.shape[1:3]
        required = set(self._layout.gt_frames(e.split))
        masks = np.zeros(frames.shape[:3], dtype=bool)
        valid = np.zeros(NUM_FRAMES, dtype=bool)
        for k, p in enumerate(self.mask_paths(i), start=1):
            if k in required or p.is_file():
                masks[k - 1] = read_binary_mask(p, size)
                valid[k - 1] = True
        audio, sr = read_audio(self.audio_path(i))
        instances, instance_categories = self._instances(i, size)
        object_audio = self._object_audio(i, audio.shape[1], sr)
        return Clip(
            name=e.name,
            frames=frames,
            audio=audio,
            sample_rate=sr,
            masks=masks,
            mask_valid=valid,
            category=e.category,
            split=e.split,
            frame_times=np.arange(NUM_FRAMES, dtype=np.float64),
            meta=dict(e.meta),
            instances=instances,
            instance_categories=instance_categories,
            object_audio=object_audio,
        )


def read_binary_mask(path: PathLike, size: tuple[int, int] | None = None) -> np.ndarray:
    """A ground-truth mask as bool (H, W): palette PNGs by index != 0 (MS3), others by grey value > 0 (S4 0/255)."""
    p = require_file(path, "mask")
    try:
        with Image.open(p) as im:
            mode = im.mode
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f"cannot decode image ({type(e).__name__}: {e})", p, "re-export or replace the file") from e
    if mode == "P":
        return read_label_image(p, size) != 0
    return read_mask(p, size)


# ------------------------------------------------------------------------------------------------ writing
def resample_audio(audio: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
    """Resample ``(channels, samples)`` float audio with a polyphase filter (scipy ``resample_poly``)."""
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 1:
        a = a[None]
    if int(sr_from) == int(sr_to):
        return a
    from scipy.signal import resample_poly

    g = math.gcd(int(sr_from), int(sr_to))
    return resample_poly(a, int(sr_to) // g, int(sr_from) // g, axis=1).astype(np.float32)


def _safe_component(value: str, what: str, clip: str) -> str:
    if not value or value in (".", "..") or "/" in value or "\\" in value or "\x00" in value:
        raise DataError(f"clip {clip!r}: {what} {value!r} cannot be used as a file name")
    return value


def _format_number(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def write_avsbench(root: PathLike, clips: Iterable[Clip], subset: Subset = "s4", overwrite: bool = True) -> Path:
    """Write ``clips`` as an AVSBench S4 or MS3 dataset under ``root`` (the folder that will hold the CSV).

    The whole ``<subset>_data/`` folder is built in a temporary sibling and renamed into place, then the CSV
    is replaced atomically; other files in ``root`` (e.g. the other subset) are left alone. Each clip needs
    5 frames, ``split`` in train/val/test, a ``category`` (S4), and masks for the frames the subset
    annotates (S4 train: frame 1; otherwise all 5) — further frames are written where ``mask_valid`` is
    True. Audio is resampled to 16 kHz and written as 16-bit PCM WAV (clipped to [-1, 1]).
    ``meta['start_time']`` (S4) is written to the CSV (0 when absent). A clip with ``instances`` also gets its
    ``instance_masks/`` folder, one with ``object_audio`` its ``object_audio/`` folder (resampled and clipped like
    the clip's audio; see the module docstring). Returns ``root``.
    """
    if subset not in _LAYOUTS:
        raise DataError(f"unknown AVSBench subset {subset!r}", root, "use 's4' or 'ms3'")
    layout = _LAYOUTS[subset]
    r = Path(root)
    seen: set[str] = set()
    r.mkdir(parents=True, exist_ok=True)
    csv_path = r / layout.csv_name
    if not overwrite and csv_path.exists():
        raise DataError("output already exists", csv_path, "choose another output or allow overwriting")
    rows: list[list[str]] = []
    with atomic_dir(r / layout.data_dir, overwrite=overwrite) as data:
        for c in clips:  # streamed: one clip in memory at a time; a bad clip aborts the whole (atomic) write
            _validate_clip(c, layout, seen)
            _write_clip(data, c, layout)
            if subset == "s4":
                rows.append([c.name, _format_number(c.meta.get("start_time", 0)), c.category, c.split])
            else:
                rows.append([c.name, c.split])
    with atomic_path(csv_path) as tmp, tmp.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(_S4_COLUMNS if subset == "s4" else _MS3_COLUMNS)
        w.writerows(rows)
    return r


def _validate_clip(c: Clip, layout: _Layout, seen: set[str]) -> None:
    _safe_component(c.name, "name", c.name)
    if c.split not in AVSBENCH_SPLITS:
        raise DataError(
            f"clip {c.name!r}: unknown split {c.split!r}", fix=f"set Clip.split to one of {', '.join(AVSBENCH_SPLITS)}"
        )
    if layout.subset == "s4":
        _safe_component(c.category, "category", c.name)
    if c.num_frames != NUM_FRAMES:
        raise DataError(f"clip {c.name!r}: has {c.num_frames} frames, AVSBench clips have {NUM_FRAMES}")
    # MS3 keeps every split's frames in one visual_frames/<name>/ folder, so names must be unique overall.
    key = c.name if layout.subset == "ms3" else f"{c.split}/{c.category}/{c.name}"
    if key in seen:
        raise DataError(f"clip {c.name!r}: duplicate clip {key!r}")
    seen.add(key)
    needed = [k - 1 for k in layout.gt_frames(c.split)]
    if c.masks is None or c.mask_valid is None or not c.mask_valid[needed].all():
        raise DataError(
            f"clip {c.name!r}: {layout.subset.upper()} {c.split} needs ground-truth masks for frame(s) "
            f"{', '.join(str(k + 1) for k in needed)}",
            fix="give the clip masks (and mask_valid) for those frames",
        )


def _write_clip(data: Path, c: Clip, layout: _Layout) -> None:
    fdir = layout.frame_dir(data, c.split, c.category, c.name)
    for k in range(1, NUM_FRAMES + 1):
        write_image(fdir / layout.frame_file(c.name, k), c.frames[k - 1])
    assert c.masks is not None and c.mask_valid is not None
    mdir = layout.mask_dir(data, c.split, c.category, c.name)
    for k in range(1, NUM_FRAMES + 1):
        if c.mask_valid[k - 1]:
            write_mask(mdir / f"{c.name}_{k}.png", c.masks[k - 1])
    if c.instances is not None:
        idir = layout.instance_dir(data, c.split, c.category, c.name)
        for k in range(1, NUM_FRAMES + 1):
            write_image(idir / f"{c.name}_{k}.png", c.instances[k - 1].astype(np.uint16))  # makes idir
        with (idir / OBJECTS_FILE).open("w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(("id", "category"))
            w.writerows(sorted(c.instance_categories.items()))
    audio = np.clip(resample_audio(c.audio, c.sample_rate, AVSBENCH_SAMPLE_RATE), -1.0, 1.0)
    write_audio(layout.audio_file(data, c.split, c.category, c.name), audio, AVSBENCH_SAMPLE_RATE)
    if c.object_audio:
        odir = layout.object_audio_dir(data, c.split, c.category, c.name)
        for oid, y in sorted(c.object_audio.items()):
            y = np.clip(resample_audio(y, c.sample_rate, AVSBENCH_SAMPLE_RATE), -1.0, 1.0)
            write_audio(odir / f"{int(oid)}.wav", y, AVSBENCH_SAMPLE_RATE)
