"""Configuration of the scene generator: presets and :class:`SynthConfig` (also the ``soundmask synth`` options).

Kept free of heavy imports (no GL, no audio) so that building the command line stays fast.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Literal, get_args

from soundmask.config import option
from soundmask.constants import AVSBENCH_NUM_FRAMES, AVSBENCH_SAMPLE_RATE, SCENE_SAMPLE_RATE
from soundmask.errors import ConfigError

from .catalog import CATEGORIES, MeshSource, category_names

__all__ = ["PRESETS", "SPLITS", "Preset", "SynthConfig", "split_of"]

PresetName = Literal["s4", "ms3", "avss", "scene3d", "scene4d", "s4real", "ms3real"]
Framing = Literal["sounding", "all", "random"]
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Preset:
    """Defaults of one preset (see the module table)."""

    name: str
    layout: Literal["avsbench-s4", "avsbench-ms3", "avss", "scene"]
    camera: Literal["static", "orbit"]
    frames: int
    size: int
    sample_rate: int
    objects: tuple[int, int]
    sounding: tuple[int, int]
    moving: tuple[int, int] = (0, 0)
    min_on: float = 2.0  # sound events last min_on..max_on s, separated by min_gap..max_gap s of silence
    max_on: float = 5.0
    min_gap: float = 1.0
    max_gap: float = 1.0
    same_category: float = 0.0  # probability that a distractor copies a sounding object's category
    index: int = 0
    source: Literal["render", "photo"] = "render"  # OpenGL renders, or real photos composited (synth.photos)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("s4", "avsbench-s4", "static", AVSBENCH_NUM_FRAMES, 224, AVSBENCH_SAMPLE_RATE, (2, 5), (1, 1),
               index=1),
        Preset("ms3", "avsbench-ms3", "static", AVSBENCH_NUM_FRAMES, 224, AVSBENCH_SAMPLE_RATE, (3, 6), (2, 3),
               index=2),
        Preset("avss", "avss", "static", AVSBENCH_NUM_FRAMES, 224, AVSBENCH_SAMPLE_RATE, (3, 6), (2, 3),
               index=3),
        Preset("scene3d", "scene", "orbit", 60, 256, SCENE_SAMPLE_RATE, (3, 6), (1, 3), min_on=2.0, max_on=10.0,
               max_gap=6.0, same_category=0.25, index=4),
        Preset("scene4d", "scene", "orbit", 60, 256, SCENE_SAMPLE_RATE, (3, 6), (1, 3), moving=(1, 2), min_on=2.0,
               max_on=10.0, max_gap=6.0, same_category=0.25, index=5),
        # real photographs: Tux Paint cut-outs pasted on photo backgrounds, their real recordings (synth.photos)
        Preset("s4real", "avsbench-s4", "static", AVSBENCH_NUM_FRAMES, 224, AVSBENCH_SAMPLE_RATE, (2, 3), (1, 1),
               index=6, source="photo"),
        Preset("ms3real", "avsbench-ms3", "static", AVSBENCH_NUM_FRAMES, 224, AVSBENCH_SAMPLE_RATE, (3, 4), (2, 3),
               index=7, source="photo"),
    )
}  # fmt: skip


@dataclass
class SynthConfig:
    """What to generate; ``None`` fields take the preset's default. Every field is a ``soundmask synth`` option."""

    preset: PresetName = option(
        "scene3d",
        "s4 | ms3 | avss (2D clips, AVSBench layouts) | s4real | ms3real (2D clips made of real photos, AVSBench "
        "layouts) | scene3d | scene4d (posed scenes)",
    )
    width: int | None = option(None, "image width in pixels (preset default: 224 for 2D, 256 for scenes)")
    height: int | None = option(None, "image height in pixels (default: the width)")
    frames: int | None = option(
        None, "frames per scene (preset default: 5 for 2D, which AVSBench needs, 60 for scenes)"
    )
    fps: float = option(1.0, "frames per second; each frame owns 1/fps s of audio")
    sample_rate: int | None = option(None, "audio sample rate in Hz (preset default: 16000 for 2D, 44100 for scenes)")
    min_objects: int | None = option(None, "fewest objects in a scene (preset default: 2 for s4, 3 otherwise)")
    max_objects: int | None = option(None, "most objects in a scene (preset default: 5 for s4, 6 otherwise)")
    rt60_max: float = option(0.6, "reverberation time is drawn from [0, rt60-max] s; 0 = anechoic")
    meshes: MeshSource = option("auto", "auto (Sweet Home 3D models when installed) | furniture | procedural")
    categories: str = option(
        "", "comma-separated categories to draw from (default: all): " + ", ".join(category_names())
    )
    fov: float = option(60.0, "mean horizontal field of view in degrees (±10)")
    framing: Framing = option(
        "sounding",
        "static presets: the camera frames the sounding objects (AVSBench-like; distractors may be cut "
        "off), all objects, or a random subset drawn without looking at which sound (training data where the "
        "framing does not give the sounding object away)",
    )
    split: Literal["auto", "train", "val", "test"] = option("auto", "auto = by seed (80/10/10), or force one split")

    def preset_spec(self) -> Preset:
        try:
            return PRESETS[self.preset]
        except KeyError:
            raise ConfigError(f"unknown preset {self.preset!r}", fix=f"use one of {', '.join(PRESETS)}") from None

    def resolved(self) -> SynthConfig:
        """A copy with every default filled in from the preset, validated."""
        p = self.preset_spec()
        w = self.width or p.size
        c = replace(
            self,
            width=w,
            height=self.height or w,
            frames=self.frames or p.frames,
            sample_rate=self.sample_rate or p.sample_rate,
            min_objects=self.min_objects or p.objects[0],
            max_objects=self.max_objects or max(p.objects[1], self.min_objects or 0),
        )
        assert c.width and c.height and c.frames and c.sample_rate and c.min_objects and c.max_objects
        if not (8 <= c.width <= 4096 and 8 <= c.height <= 4096):
            raise ConfigError(f"image size {c.width}x{c.height} is out of range", fix="use 8..4096 pixels")
        if p.layout != "scene" and c.frames != AVSBENCH_NUM_FRAMES:
            raise ConfigError(
                f"preset {p.name} writes AVSBench clips, which have exactly {AVSBENCH_NUM_FRAMES} frames "
                f"(got {c.frames})",
                fix=f"drop --frames or use --frames {AVSBENCH_NUM_FRAMES}",
            )
        if c.frames < 1 or c.fps <= 0 or c.sample_rate < 8000:
            raise ConfigError("need frames >= 1, fps > 0 and sample-rate >= 8000")
        if c.min_objects < 1 or c.max_objects < c.min_objects or c.max_objects > 12:
            raise ConfigError(f"bad object counts {c.min_objects}..{c.max_objects}", fix="use 1 <= min <= max <= 12")
        need = p.sounding[0] + (1 if p.name in ("s4", "s4real", "ms3real") else 0)  # these keep a silent object
        if c.min_objects < need:
            raise ConfigError(f"preset {p.name} needs at least {need} objects")
        if p.source == "photo" and self.categories.strip():
            raise ConfigError(
                f"--categories does not apply to preset {p.name} (its categories are the Tux Paint stamps')",
                fix="drop --categories",
            )
        if not 0 <= c.rt60_max <= 2.0:
            raise ConfigError(f"rt60-max {c.rt60_max} s is out of range", fix="use 0..2 s")
        if c.framing not in get_args(Framing):
            raise ConfigError(f"unknown framing {c.framing!r}", fix="use one of " + ", ".join(get_args(Framing)))
        if not 20 <= c.fov <= 120:
            raise ConfigError(f"fov {c.fov} is out of range", fix="use 20..120 degrees")
        self.category_pool()
        return c

    def category_pool(self) -> list[str]:
        if not self.categories.strip():
            return category_names()
        names = [s.strip() for s in self.categories.split(",") if s.strip()]
        bad = [n for n in names if n not in CATEGORIES]
        if bad:
            raise ConfigError(f"unknown categories {', '.join(bad)}", fix=f"choose from {', '.join(category_names())}")
        return sorted(set(names))


def split_of(seed: int) -> str:
    """The split of a scene, from its seed alone: 80 % train, 10 % val, 10 % test."""
    u = int.from_bytes(hashlib.sha256(f"soundmask-split:{int(seed)}".encode()).digest()[:8], "big") / 2.0**64
    return "train" if u < 0.8 else ("val" if u < 0.9 else "test")
