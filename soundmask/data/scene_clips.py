"""Posed scenes as 2D training clips: a folder of scenes (``soundmask synth --preset scene3d|scene4d``) read as a
:class:`~soundmask.data.dataset.ClipDataset` of consecutive ``frames_per_clip``-frame windows, so the supervised
2D methods can be trained on orbit-camera frames (``soundmask train --method sdavs --data SCENES``).

Each clip holds frames ``k·n … k·n + n − 1`` of one scene, their ground-truth sound masks (every frame
annotated), the scene's mono audio from the first frame's time for ``n / fps`` seconds, and ``frame_times``
relative to the clip start. A scene's split comes from the folder's ``index.csv`` (written by the generator),
else from ``scene.json``'s ``generator.split``, else ``train``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from soundmask.data.dataset import ClipDataset
from soundmask.data.io import PathLike
from soundmask.data.types import Clip, Scene
from soundmask.errors import DataError

__all__ = ["SceneClipsDataset", "is_scene_collection", "scene_folders"]


def scene_folders(root: PathLike) -> list[Path]:
    """The scene folders (with ``scene.json``) of ``root``: ``root`` itself when it is one, else its children."""
    r = Path(root)
    if (r / "scene.json").is_file():
        return [r]
    if not r.is_dir():
        return []
    return sorted(p for p in r.iterdir() if (p / "scene.json").is_file())


def is_scene_collection(root: PathLike) -> bool:
    """Whether ``root`` is a scene folder or a folder of scene folders."""
    return bool(scene_folders(root))


def _splits(root: Path) -> dict[str, str]:
    idx = root / "index.csv"
    if not idx.is_file():
        return {}
    with idx.open(newline="") as f:
        return {row["name"]: row.get("split", "") for row in csv.DictReader(f) if row.get("name")}


@dataclass
class _Entry:
    name: str
    scene: Path
    start: int  # first frame (list position)


class SceneClipsDataset(ClipDataset):
    """Clips of ``frames_per_clip`` consecutive frames from the scenes of ``root`` in ``split`` (see the module
    docstring). A trailing window shorter than ``frames_per_clip`` is dropped."""

    def __init__(self, root: PathLike, split: str = "train", frames_per_clip: int = 5) -> None:
        from soundmask.data.scene import read_scene

        self.root = Path(root)
        folders = scene_folders(self.root)
        if not folders:
            raise DataError(
                "no scenes here (no scene.json in the folder or its subfolders)",
                self.root,
                "generate some with `soundmask synth --preset scene3d --out DIR`",
            )
        if frames_per_clip < 1:
            raise DataError(f"frames_per_clip must be >= 1, got {frames_per_clip}", self.root)
        self.split = split
        self.frames_per_clip = n = int(frames_per_clip)
        index = _splits(self.root)
        self._scenes: dict[Path, Scene] = {}
        self._entries = []
        for p in folders:
            sc = read_scene(p)
            s = index.get(p.name) or str((sc.extra or {}).get("generator", {}).get("split", "")) or "train"
            if s != split:
                continue
            self._scenes[p] = sc
            for k in range(len(sc.frames) // n):
                self._entries.append(_Entry(f"{p.name}_{k:03d}", p, k * n))

    def _load(self, i: int) -> Clip:
        from soundmask.data.scene import frame_clips, load_mono, load_rgb, load_sound_mask

        e = self._entries[i]
        sc = self._scenes[e.scene]
        idx = list(range(e.start, e.start + self.frames_per_clip))
        frames = np.stack([load_rgb(sc, j) for j in idx])
        masks = np.stack([load_sound_mask(sc, j) for j in idx]).astype(bool)
        t0 = sc.frames[idx[0]].time
        seconds = self.frames_per_clip / sc.fps if sc.fps > 0 else float(self.frames_per_clip)
        audio = frame_clips(load_mono(sc), sc.sample_rate, [t0], seconds=seconds)[0]
        times = np.array([sc.frames[j].time - t0 for j in idx], np.float64)
        sounding = sorted({o.category for o in sc.objects if o.sounding})
        return Clip(
            e.name,
            frames,
            audio[None],
            sc.sample_rate,
            masks=masks,
            mask_valid=np.ones(len(idx), bool),
            category="|".join(sounding),
            split=self.split,
            frame_times=times,
            meta={"scene": e.scene.name, "start_frame": e.start},
        )
