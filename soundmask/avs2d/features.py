"""Frozen inputs of the supervised 2D methods (AVSC, SDAVS): backbone feature pyramids and per-frame audio features.

Both methods read the same things, computed once per frame by :class:`FeatureExtractor`:

- **visual**: the stride-2/4/8/16/32 block outputs (16/24/40/112/320 channels) of the frozen EfficientNet-Lite0
  on the frame resized to 224², identical frames (a static camera) computed once;
- **audio**: per frame window (:func:`~soundmask.avs2d.base.frame_windows`), the mean of the YAMNet patch
  embeddings (1024) followed by the mean AudioSet scores (521) — :data:`AUDIO_DIM` = 1545 for YAMNet — and
  whether the window sounds at all (:func:`~soundmask.avs2d.audio.window_activity`).

For training, :func:`build_training_features` runs the extractor over an AVSBench-layout split and keeps, per
clip, the unique frames' pyramids (float16), the audio rows and the ground-truth masks at stride 2 (112²). The
result is cached on disk under a name derived from everything it depends on (data folders, split, clip limit,
audio model), so AVSC and SDAVS trained from the same data share one cache and a second run starts at once.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from soundmask.avs2d.audio import window_activity
from soundmask.avs2d.base import check_inputs, frame_windows
from soundmask.data.io import atomic_path
from soundmask.errors import DataError

__all__ = [
    "LEVEL_BLOCKS",
    "LEVEL_CHANNELS",
    "MASK_SIZE",
    "NET_SIZE",
    "ClipFeatures",
    "FeatureExtractor",
    "FrameMemo",
    "TrainingFeatures",
    "build_training_features",
    "frame_digest",
    "seeded_subset",
    "unique_frames",
]

NET_SIZE = 224
MASK_SIZE = 112  # training masks live at stride 2
LEVEL_BLOCKS = (0, 2, 4, 10, 15)  # EfficientNet-Lite0 blocks: strides 2, 4, 8, 16, 32
LEVEL_CHANNELS = (16, 24, 40, 112, 320)

Progress = Callable[[str, int, int], None]


def frame_digest(frame: np.ndarray) -> bytes:
    """A 16-byte digest of a frame's pixels (identical frames, identical digests)."""
    return hashlib.blake2b(np.ascontiguousarray(frame).tobytes(), digest_size=16).digest()


class FrameMemo:
    """The results of the last ``size`` distinct frames, by :func:`frame_digest`: a static camera repeats a frame,
    and the robust evaluation shows the same frames with several audios, so the visual stages run once per frame."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._items: OrderedDict[bytes, Any] = OrderedDict()

    def get(self, key: bytes) -> Any:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: bytes, value: Any) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def map(self, frames: np.ndarray, compute: Callable[[np.ndarray], list[Any]]) -> list[Any]:
        """``compute`` (a batch of frames → one result each) run only on the frames not remembered; the result
        of every frame of ``frames``, in order."""
        keys = [frame_digest(f) for f in frames]
        todo = [i for i, k in enumerate(keys) if self.get(k) is None and keys.index(k) == i]
        if todo:
            for i, r in zip(todo, compute(frames[todo]), strict=True):
                self.put(keys[i], r)
        return [self.get(k) for k in keys]


def unique_frames(frames: np.ndarray) -> tuple[list[int], np.ndarray]:
    """(first index of each distinct frame, (T,) index of each frame into that list)."""
    slot: dict[bytes, int] = {}
    order: list[int] = []
    index = np.zeros(len(frames), np.int64)
    for i, f in enumerate(frames):
        k = frame_digest(f)
        if k not in slot:
            slot[k] = len(order)
            order.append(i)
        index[i] = slot[k]
    return order, index


@dataclass
class ClipFeatures:
    """What the supervised methods see of one clip: ``levels`` (5 tensors (U, C, h, w), U distinct frames),
    ``frame_index`` (T,) into them, ``audio`` (T, Da) float32, ``active`` (T,) bool."""

    levels: list[torch.Tensor]
    frame_index: np.ndarray
    audio: np.ndarray
    active: np.ndarray

    def frame_levels(self, dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
        """The pyramid of every frame (T, C, h, w)."""
        idx = torch.from_numpy(self.frame_index)
        return [lv[idx].to(dtype) for lv in self.levels]


class FeatureExtractor:
    """Frozen EfficientNet-Lite0 pyramid + audio embedder (YAMNet by default); see the module docstring."""

    def __init__(self, audio: str = "yamnet", audio_path: str | None = None, min_active: float = 0.6) -> None:
        from soundmask.audio.embed import get_embedder
        from soundmask.vision.efficientnet import EfficientNetLite0

        self.encoder = EfficientNetLite0()
        self.embedder = get_embedder(audio, **({"path": audio_path} if audio_path else {}))
        self.audio_name = audio
        self.min_active = min_active
        self._memo = FrameMemo()

    @torch.no_grad()
    def visual(self, frames: np.ndarray, batch: int = 8) -> tuple[list[torch.Tensor], np.ndarray]:
        """Pyramids (float16) of the distinct frames of (T, H, W, 3) uint8 ``frames`` and the frame index (frames
        seen in the last calls are not computed again: :class:`FrameMemo`)."""
        first, index = unique_frames(frames)
        per_frame = self._memo.map(frames[first], lambda fr: self._pyramids(fr, batch))
        return [torch.stack([p[k] for p in per_frame]) for k in range(len(LEVEL_BLOCKS))], index

    def _pyramids(self, frames: np.ndarray, batch: int) -> list[list[torch.Tensor]]:
        out: list[list[torch.Tensor]] = []
        for b in range(0, len(frames), batch):
            x = torch.from_numpy(np.ascontiguousarray(frames[b : b + batch])).permute(0, 3, 1, 2).float() / 255
            if x.shape[-2:] != (NET_SIZE, NET_SIZE):
                x = F.interpolate(x, size=(NET_SIZE, NET_SIZE), mode="bilinear", align_corners=False, antialias=True)
            levels = [lv.half() for lv in self.encoder.pyramid(x, LEVEL_BLOCKS)]
            out += [[lv[i] for lv in levels] for i in range(len(x))]
        return out

    def audio_features(self, audio: np.ndarray, sr: int, windows: Sequence[tuple[int, int]]) -> np.ndarray:
        """(T, Da): per window, mean patch embedding then mean class scores (channels averaged)."""
        mono = np.asarray(audio, np.float32)
        mono = mono.mean(0) if mono.ndim == 2 else mono
        rows = []
        for s0, s1 in windows:
            out = self.embedder.embed(mono[s0:s1], sr)
            parts = [out.embeddings.mean(0)] + ([] if out.scores is None else [out.scores.mean(0)])
            rows.append(np.concatenate(parts).astype(np.float32))
        return np.stack(rows)

    def clip(self, frames: np.ndarray, audio: np.ndarray, sr: int, frame_times: Any = None) -> ClipFeatures:
        frames, audio = check_inputs(frames, audio, sr)
        windows = frame_windows(len(frames), audio.shape[1], sr, frame_times)
        active, _ = window_activity(audio, sr, windows, self.min_active)
        levels, index = self.visual(frames)
        return ClipFeatures(levels, index, self.audio_features(audio, sr, windows), active)


@dataclass
class TrainingFeatures:
    """Cached training inputs of a split. Images: ``levels`` (5 tensors (M, C, h, w) float16). Frames (R rows,
    clip-major): ``image`` (R,) index into the images, ``audio`` (R, Da), ``active`` (R,), ``masks`` (R, 112,
    112) bool ground truth at stride 2, ``valid`` (R,) whether the frame has a ground-truth mask, ``clip`` (R,)
    and ``category`` (R,) the clip's category index in ``categories`` (−1: unknown, e.g. MS3). Where the data
    has every object's instance ids (generated data): ``instances`` (R, 112, 112) uint8, 0 = background, k = the
    row's k-th object, whose category index is ``instance_cats[r, k − 1]`` (−1: no such object); rows of data
    without them have no object."""

    levels: list[torch.Tensor]
    image: torch.Tensor
    audio: torch.Tensor
    active: torch.Tensor
    masks: torch.Tensor
    valid: torch.Tensor
    clip: torch.Tensor
    category: torch.Tensor
    categories: tuple[str, ...]
    key: dict[str, Any]
    instances: torch.Tensor | None = None
    instance_cats: torch.Tensor | None = None

    @property
    def num_clips(self) -> int:
        return int(self.clip.max()) + 1 if len(self.clip) else 0

    def clip_rows(self) -> list[torch.Tensor]:
        """Row indices of each clip, in frame order."""
        bounds = torch.searchsorted(self.clip, torch.arange(self.num_clips + 1))
        return [torch.arange(int(bounds[i]), int(bounds[i + 1])) for i in range(self.num_clips)]

    def frame_levels(self, rows: torch.Tensor) -> list[torch.Tensor]:
        img = self.image[rows]
        return [lv[img].float() for lv in self.levels]

    def subset(self, clips: Sequence[int], key: dict[str, Any]) -> TrainingFeatures:
        """The features of the given clips only (renumbered in the given order), under ``key``."""
        rows = torch.cat([torch.nonzero(self.clip == c).flatten() for c in clips])
        imgs, new_image = torch.unique(self.image[rows], return_inverse=True)
        new_clip = torch.cat(
            [torch.full((int((self.clip == c).sum()),), k, dtype=torch.long) for k, c in enumerate(clips)]
        )
        return TrainingFeatures(
            [lv[imgs] for lv in self.levels],
            new_image,
            self.audio[rows],
            self.active[rows],
            self.masks[rows],
            self.valid[rows],
            new_clip,
            self.category[rows],
            self.categories,
            key,
            None if self.instances is None else self.instances[rows],
            None if self.instance_cats is None else self.instance_cats[rows],
        )

    def row_instances(self, r: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Row ``r``'s objects: ((G, 112, 112) bool masks, (G,) category indices); G = 0 without instance data."""
        if self.instances is None or self.instance_cats is None:
            return torch.zeros((0, *self.masks.shape[1:]), dtype=torch.bool), torch.zeros(0, dtype=torch.long)
        cats = self.instance_cats[r]
        ks = torch.nonzero(cats >= 0).flatten()
        return torch.stack([self.instances[r] == k + 1 for k in ks.tolist()]) if len(ks) else torch.zeros(
            (0, *self.masks.shape[1:]), dtype=torch.bool
        ), cats[ks]

    def save(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            d = {k: getattr(self, k) for k in self.__dataclass_fields__}
            d["categories"] = list(self.categories)
            torch.save(d, tmp)

    @classmethod
    def load(cls, path: Path) -> TrainingFeatures | None:
        try:
            d = torch.load(path, map_location="cpu", weights_only=True)
            d["categories"] = tuple(d["categories"])
            return cls(**d)
        except Exception:
            return None


def _mask_rows(masks: np.ndarray) -> torch.Tensor:
    """(T, H, W) bool masks → (T, 112, 112) bool: area-averaged, then > 0.5 (the training resolution)."""
    m = torch.from_numpy(np.asarray(masks, np.float32))[:, None]
    return F.interpolate(m, size=(MASK_SIZE, MASK_SIZE), mode="area")[:, 0] > 0.5


def _instance_rows(ids: np.ndarray, categories: dict[int, str]) -> tuple[torch.Tensor, list[list[str]]]:
    """(T, H, W) object ids → (T, 112, 112) uint8 local indices (k = the frame's k-th object at that
    resolution, 0 = background) and each frame's categories in that order; objects without a category (or
    that vanish at 112²) are left out."""
    T = len(ids)
    local = torch.zeros((T, MASK_SIZE, MASK_SIZE), dtype=torch.uint8)
    cats: list[list[str]] = [[] for _ in range(T)]
    for oid in sorted(int(i) for i in np.unique(ids) if i != 0 and int(i) in categories):
        m = _mask_rows(ids == oid)
        for t in torch.nonzero(m.flatten(1).any(1)).flatten().tolist():
            cats[t].append(categories[oid])
            local[t][m[t] & (local[t] == 0)] = len(cats[t])
    return local, cats


def _cache_path(key: dict[str, Any], cache_dir: Path) -> Path:
    h = hashlib.blake2b(json.dumps(key, sort_keys=True).encode(), digest_size=8).hexdigest()
    return cache_dir / f"features-{key['split']}-{h}.pt"


def seeded_subset(n: int, k: int) -> list[int]:
    """``k`` of the indices ``0..n-1``, sorted, drawn with a fixed seed: ``max_clips`` of a training set made of
    several folders is a mixed subset of every folder, not the first folder only, and the same on every run."""
    return sorted(int(i) for i in np.random.default_rng(0).choice(n, k, replace=False))


def open_training_dataset(root: Path, split: str) -> Any:
    """``split`` of a training folder: an AVSBench-layout dataset, or posed scenes read as 5-frame clips
    (:class:`~soundmask.data.scene_clips.SceneClipsDataset`)."""
    from soundmask.data.avsbench import AVSBenchDataset
    from soundmask.data.scene_clips import SceneClipsDataset, is_scene_collection

    return SceneClipsDataset(root, split) if is_scene_collection(root) else AVSBenchDataset(root, split=split)


def build_training_features(
    roots: Sequence[str | Path],
    split: str,
    extractor_options: dict[str, Any],
    cache_dir: Path,
    max_clips: int = 0,
    categories: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> TrainingFeatures:
    """The :class:`TrainingFeatures` of ``split`` of the AVSBench-layout folders ``roots`` (cached; see the
    module docstring). ``categories``: the category list to index (default: every category seen, sorted)."""
    root_dirs = [Path(r) for r in roots]
    key = {
        "data": [str(r.resolve()) for r in root_dirs],
        "split": split,
        "max_clips": max_clips,
        "categories": list(categories) if categories else None,
        "version": 2,
        **{k: extractor_options.get(k) for k in ("audio", "audio_path", "min_active")},
    }
    path = _cache_path(key, cache_dir)
    if path.is_file():
        cached = TrainingFeatures.load(path)
        if cached is not None and cached.key == key:
            return cached
    datasets = [open_training_dataset(r, split) for r in root_dirs]
    clips = [(d, i) for d in datasets for i in range(len(d))]
    if max_clips and max_clips < len(clips):
        chosen = seeded_subset(len(clips), max_clips)
        full = _cache_path({**key, "max_clips": 0}, cache_dir)
        cached = TrainingFeatures.load(full) if full.is_file() else None
        if cached is not None and cached.key == {**key, "max_clips": 0}:
            return cached.subset(chosen, key)  # the full set is cached: no need to extract again
        clips = [clips[i] for i in chosen]
    if not clips:
        raise DataError(f"no clips in split {split!r}", root_dirs[0], "pass --set split=... with clips in it")
    ext = FeatureExtractor(**extractor_options)
    rows: dict[str, list[Any]] = {k: [] for k in ("image", "audio", "active", "masks", "valid", "clip", "instances")}
    row_cats: list[list[str]] = []  # per row, the categories of its instances
    levels: list[list[torch.Tensor]] = [[] for _ in LEVEL_BLOCKS]
    n_img = 0
    names: list[str] = []
    for ci, (ds, i) in enumerate(clips):
        clip = ds[i]
        if clip.masks is None:
            raise DataError(f"clip {clip.name} has no ground-truth masks", fix="train on a split with masks")
        f = ext.clip(clip.frames, clip.audio, clip.sample_rate, clip.frame_times)
        for k, lv in enumerate(f.levels):
            levels[k].append(lv)
        m = _mask_rows(clip.masks)
        if clip.instances is not None:
            local, frame_cats = _instance_rows(clip.instances, clip.instance_categories)
        else:
            local, frame_cats = (
                torch.zeros((len(clip.frames), MASK_SIZE, MASK_SIZE), dtype=torch.uint8),
                [[] for _ in clip.frames],
            )
        rows["instances"].append(local)
        row_cats.extend(frame_cats)
        valid = clip.mask_valid if clip.mask_valid is not None else np.ones(len(clip.frames), bool)
        T = len(clip.frames)
        rows["image"].append(torch.from_numpy(f.frame_index + n_img))
        rows["audio"].append(torch.from_numpy(f.audio))
        rows["active"].append(torch.from_numpy(f.active))
        rows["masks"].append(m)
        rows["valid"].append(torch.from_numpy(np.asarray(valid, bool)))
        rows["clip"].append(torch.full((T,), ci, dtype=torch.long))
        names.append(clip.category or "")
        n_img += len(f.levels[0])
        if progress is not None:
            progress(f"features ({split})", ci + 1, len(clips))
    cats_seen = sorted({c for c in names if c} | {c for r in row_cats for c in r})
    cats = tuple(categories) if categories else tuple(cats_seen)
    lookup = {c: k for k, c in enumerate(cats)}
    cat_rows = [
        torch.full((len(r),), lookup.get(n, -1), dtype=torch.long) for n, r in zip(names, rows["clip"], strict=True)
    ]
    inst_cats = torch.full((len(row_cats), max([1] + [len(r) for r in row_cats])), -1, dtype=torch.long)
    for r, cs in enumerate(row_cats):
        inst_cats[r, : len(cs)] = torch.tensor([lookup.get(c, -1) for c in cs], dtype=torch.long)
    feats = TrainingFeatures(
        [torch.cat(lv) for lv in levels],
        torch.cat(rows["image"]),
        torch.cat(rows["audio"]),
        torch.cat(rows["active"]),
        torch.cat(rows["masks"]),
        torch.cat(rows["valid"]),
        torch.cat(rows["clip"]),
        torch.cat(cat_rows),
        cats,
        key,
        torch.cat(rows["instances"]),
        inst_cats,
    )
    cache_dir.mkdir(parents=True, exist_ok=True)
    feats.save(path)
    return feats
