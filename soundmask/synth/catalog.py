"""The generator's object categories: what each looks like (mesh source) and sounds like (sound source).

One row of :data:`CATEGORIES` per category: the Sweet Home 3D furniture query
(:data:`soundmask.synth.assets.SOUND_CATEGORIES`, CC-0/CC-BY models) and the procedural fallback builder
(:mod:`soundmask.synth.props`), its real-world size range, where it stands (on the floor or on a small
table), the sound category of :mod:`soundmask.synth.sounds` (Tux Paint recordings, General MIDI instruments,
espeak-ng speech, procedural sounds) and the AVSBench-semantic class it is labelled with (None: not one of
the 70 AVSS classes, so the ``avss`` preset never makes it sound).

Adding a category is one row here (plus a builder in ``props.py`` when it needs a new shape).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from . import props
from .assets import FurnitureEntry, furniture_for, load_furniture
from .meshes import Mesh, normalized

__all__ = ["CATEGORIES", "ObjectCategory", "ObjectModel", "category_names", "make_object_model"]

MeshSource = Literal["auto", "furniture", "procedural"]


@dataclass(frozen=True)
class ObjectCategory:
    """One generator category (see the module docstring)."""

    name: str
    sound: str
    shape: str
    size: tuple[float, float]  # metres, measured along ``along``
    furniture: str | None = None
    placement: Literal["floor", "stand"] = "floor"
    avss: str | None = None
    group: str = "object"
    along: Literal["height", "longest"] = "height"  # what ``height`` measures (flat objects: the longest side)


_C = ObjectCategory
CATEGORIES: dict[str, ObjectCategory] = {
    c.name: c
    for c in (
        # instruments
        _C("piano", "piano", "piano", (1.1, 1.35), "piano", avss="piano", group="instrument"),
        _C("guitar", "guitar", "guitar", (0.95, 1.05), "guitar", avss="guitar", group="instrument"),
        _C("violin", "violin", "violin", (0.55, 0.62), None, "stand", avss="violin", group="instrument"),
        _C("cello", "cello", "cello", (1.15, 1.3), None, avss="cello", group="instrument"),
        _C("flute", "flute", "flute", (0.62, 0.7), None, "stand", avss="flute", group="instrument", along="longest"),
        _C("trumpet", "trumpet", "trumpet", (0.45, 0.52), None, "stand", avss="trumpet", group="instrument",
           along="longest"),
        _C("saxophone", "saxophone", "saxophone", (0.6, 0.75), None, "stand", avss="saxophone", group="instrument"),
        _C("drum", "drum", "drum", (1.0, 1.15), None, avss="drum", group="instrument"),
        _C("xylophone", "xylophone", "xylophone", (0.9, 1.1), "xylophone", avss="marimba", group="instrument",
           along="longest"),
        _C("accordion", "accordion", "accordion", (0.38, 0.45), None, "stand", avss="accordion", group="instrument"),
        # devices and appliances
        _C("speaker", "speaker", "speaker", (0.5, 1.0), "speaker", group="device"),
        _C("radio", "radio", "radio", (0.2, 0.4), "radio", "stand", group="device"),
        _C("tv", "tv", "tv", (0.5, 0.75), "tv", "stand", group="device"),
        _C("phone", "phone", "phone", (0.18, 0.25), "phone", "stand", group="device", along="longest"),
        _C("clock", "clock", "clock", (0.3, 0.4), "clock", "stand", avss="clock", group="device"),
        _C("fan", "fan", "fan", (1.0, 1.3), "fan", group="appliance"),
        _C("washing_machine", "washing_machine", "washing_machine", (0.82, 0.9), "washing machine", group="appliance"),
        _C("microwave", "microwave", "microwave", (0.28, 0.33), "microwave", "stand", group="appliance"),
        _C("kettle", "kettle", "kettle", (0.22, 0.28), None, "stand", group="appliance"),
        _C("vacuum_cleaner", "vacuum_cleaner", "vacuum_cleaner", (0.9, 1.1), None, avss="vacuum-cleaner",
           group="appliance"),
        # animals and people
        _C("dog", "dog", "dog", (0.5, 0.75), "dog", avss="dog", group="animal"),
        _C("cat", "cat", "cat", (0.28, 0.38), "cat", "stand", avss="cat", group="animal"),
        _C("horse", "horse", "horse", (1.5, 1.75), "horse", avss="horse", group="animal"),
        _C("bird", "bird", "bird", (0.16, 0.24), None, "stand", avss="bird", group="animal"),
        _C("chicken", "chicken", "chicken", (0.4, 0.5), "chicken", avss="hen", group="animal"),
        _C("person", "person", "person", (1.55, 1.9), "person", avss="man", group="person"),
    )
}  # fmt: skip


def category_names(avss_only: bool = False) -> list[str]:
    """All category names (sorted); with ``avss_only`` only those with an AVSS class."""
    return sorted(n for n, c in CATEGORIES.items() if c.avss is not None or not avss_only)


@dataclass
class ObjectModel:
    """A mesh made for one object: standing on the floor, centred over the origin, front facing −y,
    plus where it came from (for ``scene.json`` and the licence notes)."""

    category: str
    mesh: Mesh
    source: str  # "sh3d:<catalog id>" or "procedural:<shape>"
    licence: str
    attribution: str
    avss: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def height(self) -> float:
        return float(self.mesh.extents[2])


@functools.lru_cache(maxsize=64)
def _furniture_mesh(entry: FurnitureEntry) -> Mesh:
    return load_furniture(entry, texture_size=128)


@functools.cache
def _furniture_entries(key: str) -> tuple[FurnitureEntry, ...]:
    """Free-standing models only: wall- and ceiling-mounted ones (elevated in the catalog) would look wrong
    standing on the floor."""
    return tuple(
        e for e in furniture_for(key) if e.elevation < 0.3 and not re.search(r"\b(ceiling|wall)\b", e.name.lower())
    )


def _furniture_ok() -> bool:
    try:
        import trimesh  # noqa: F401
    except ImportError:
        return False
    return True


def make_object_model(category: str, rng: np.random.Generator, meshes: MeshSource = "auto") -> ObjectModel:
    """A mesh for ``category`` at a random real-world size of its range (height, or longest side).

    ``meshes="auto"`` uses a Sweet Home 3D model when the category has one (and the package and ``trimesh``
    are installed), else the procedural builder; ``"furniture"`` insists on a model (falls back to
    procedural only for categories without one); ``"procedural"`` never loads models. Every draw from ``rng``
    happens in the same order whichever source is used, so the rest of a scene does not depend on it.
    """
    try:
        cat = CATEGORIES[category]
    except KeyError:
        raise KeyError(f"unknown category {category!r}; known: {', '.join(sorted(CATEGORIES))}") from None
    size = float(rng.uniform(*cat.size))
    pick = float(rng.random())
    shape_seed = int(rng.integers(2**31))
    entries: tuple[FurnitureEntry, ...] = ()
    if meshes != "procedural" and cat.furniture is not None and _furniture_ok():
        entries = _furniture_entries(cat.furniture)
    avss = cat.avss
    if entries:
        e = entries[min(int(pick * len(entries)), len(entries) - 1)]
        mesh = normalized(_furniture_mesh(e), size, cat.along)
        if category == "person" and "female" in e.name.lower():
            avss = "woman"
        return ObjectModel(category, mesh, f"sh3d:{e.id}", e.license, e.attribution(), avss, {"model_name": e.name})
    mesh = normalized(props.build(cat.shape, np.random.default_rng(shape_seed)), size, cat.along)
    return ObjectModel(
        category, mesh, f"procedural:{cat.shape}", "Apache-2.0 (procedural, soundmask)", "soundmask", avss
    )
