"""Read every sample of a dataset folder and summarise it — a complete validation of the folder.

Any problem with a file surfaces as the reader's :class:`~soundmask.errors.DataError` naming that file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from soundmask.data.io import PathLike
from soundmask.data.layout import detect_layout
from soundmask.errors import DataError

__all__ = ["DatasetSummary", "inspect_dataset"]

Progress = Callable[[int, int], None]  # (done, total)


@dataclass
class DatasetSummary:
    """What ``soundmask inspect`` reports about a dataset folder."""

    path: str
    layout: str
    split: str | None
    samples: int = 0  # clips (2D layouts) or frames (scene layouts)
    frames: int = 0
    frames_with_gt: int = 0
    frame_sizes: dict[str, int] = field(default_factory=dict)  # "HxW" -> frames
    sample_rates: dict[str, int] = field(default_factory=dict)  # "16000 Hz, 1 ch" -> samples
    audio_seconds: float = 0.0
    sounding_fraction: float = 0.0  # mean fraction of sounding pixels over frames with GT
    categories: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Tally:
    def __init__(self) -> None:
        self.sizes: Counter[str] = Counter()
        self.rates: Counter[str] = Counter()
        self.categories: Counter[str] = Counter()
        self.frames = 0
        self.gt = 0
        self.fg = 0.0
        self.seconds = 0.0

    def frame(self, h: int, w: int, mask: np.ndarray | None) -> None:
        self.frames += 1
        self.sizes[f"{h}x{w}"] += 1
        if mask is not None:
            self.gt += 1
            self.fg += float(np.mean(mask))

    def audio(self, sr: int, channels: int, samples: int) -> None:
        self.rates[f"{sr} Hz, {channels} ch"] += 1
        self.seconds += samples / sr

    def fill(self, s: DatasetSummary) -> DatasetSummary:
        s.frames, s.frames_with_gt = self.frames, self.gt
        s.frame_sizes, s.sample_rates = dict(self.sizes), dict(self.rates)
        s.categories = dict(sorted(self.categories.items()))
        s.audio_seconds = round(self.seconds, 3)
        s.sounding_fraction = round(self.fg / self.gt, 4) if self.gt else 0.0
        return s


def inspect_dataset(path: PathLike, split: str = "test", progress: Progress | None = None) -> DatasetSummary:
    """Detect the layout of ``path``, read all of ``split`` (2D layouts) or all frames (scenes), summarise."""
    layout = detect_layout(path)
    p = Path(path)
    if p.is_file():
        p = p.parent
    if layout in ("avsbench-s4", "avsbench-ms3", "avss"):
        return _inspect_clips(p, layout, split, progress)
    return _inspect_scene(p, layout, progress)


def _inspect_clips(p: Path, layout: str, split: str, progress: Progress | None) -> DatasetSummary:
    from soundmask.data.avsbench import AVSBenchDataset
    from soundmask.data.avss import AVSS_CLASSES, AVSSDataset

    ds: Any = (
        AVSSDataset(p, split)
        if layout == "avss"
        else AVSBenchDataset(p, "s4" if layout == "avsbench-s4" else "ms3", split)
    )
    if len(ds) == 0:
        raise DataError(f"no clips in split {split!r}", p, "choose another --split (train, val or test)")
    t = _Tally()
    classes: Counter[str] = Counter()
    for i in range(len(ds)):
        clip = ds[i]
        h, w = clip.size
        for k in range(clip.num_frames):
            has_gt = clip.masks is not None and clip.mask_valid is not None and clip.mask_valid[k]
            t.frame(h, w, clip.masks[k] if has_gt else None)
        t.audio(clip.sample_rate, clip.audio.shape[0], clip.audio.shape[1])
        t.categories[clip.category or "(none)"] += 1
        if clip.labels is not None:
            for c in np.unique(clip.labels):
                if 0 < c < len(AVSS_CLASSES):
                    classes[AVSS_CLASSES[c]] += 1
        if progress:
            progress(i + 1, len(ds))
    s = t.fill(DatasetSummary(str(p), layout, split, samples=len(ds)))
    if layout == "avss":
        s.extra["clips_per_class"] = dict(sorted(classes.items()))
    return s


def _inspect_scene(p: Path, layout: str, progress: Progress | None) -> DatasetSummary:
    from soundmask.data import scene as sc
    from soundmask.data import threedavs as td

    ours = layout == "scene"
    scene = sc.read_scene(p) if ours else td.read_3davs_scene(p)
    t = _Tally()
    n = len(scene.frames)
    for i in range(n):
        rgb = sc.load_rgb(scene, i) if ours else td.load_3davs_rgb(scene, i)
        mask = sc.load_sound_mask(scene, i) if ours else td.load_3davs_mask(scene, i)
        if ours:
            sc.load_depth(scene, i)
            sc.load_instance_mask(scene, i)
        else:
            clip, sr = td.load_3davs_binaural(scene, i)
            t.audio(sr, clip.shape[0], clip.shape[-1])
        t.frame(rgb.shape[0], rgb.shape[1], mask)
        if progress:
            progress(i + 1, n)
    if ours:
        stereo = sc.load_stereo(scene)
        t.audio(scene.sample_rate, stereo.shape[0], stereo.shape[1])
        sc.load_mono(scene)
    for o in scene.objects:
        t.categories[o.category] += 1
    s = t.fill(DatasetSummary(str(p), layout, None, samples=n))
    s.extra = {
        "objects": len(scene.objects),
        "sounding_objects": sum(o.sounding for o in scene.objects),
        "moving_objects": sum(o.moving for o in scene.objects),
        "sound_events": len(scene.sound_events),
        "test_views": len(scene.test_views()),
    }
    return s
