"""Which objects did the 3D sound masks find? Object-level scores a user can check against the scene.

The EchoSegnet protocol (:mod:`soundmask.metrics.scene3d`) scores rendered masks, and its empty-ground-truth rule
rewards empty test views, so a scene can score a high mIoU while a silent object is tagged as a sound source.
:func:`score_objects` scores the tags themselves against the scene's ground truth:

* a sounding object (one with a sound event) is **found** when a tag's centroid lies within ``radius`` (0.5 m)
  of its position (the mean over its track for a moving object); tags and objects are paired one to one, nearest
  first (:func:`scipy.optimize.linear_sum_assignment` on the distances, pairs beyond ``radius`` dropped);
* **missed**: a sounding object no tag was paired with;
* **false source**: a tag whose centroid lies within ``radius`` of no sounding object (it sits on a silent
  object or on nothing). A second tag on an already found object is neither found nor false (``duplicates``);
* **label accuracy**: the share of found objects whose tag's label is one of the AudioSet classes of the
  object's category (:func:`soundmask.audio.audioset.category_labels`); None when nothing was found.

The distance is measured from the tag's centroid (the mean of its Gaussians), not from each Gaussian: a tag that
spans an object and its support still counts as on the object when its centroid is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from soundmask.data.types import Scene

__all__ = ["FOUND_RADIUS", "OBJECT_KEYS", "ObjectScores", "TaggedObject", "score_objects", "track_errors"]

FOUND_RADIUS = 0.5
"""A tag within this distance (m) of a sounding object's position has found it."""

OBJECT_KEYS = ("objects_found", "objects_missed", "false_sources", "label_accuracy")
"""The object scores that ``soundmask lift --json`` and the demo's ``metrics.json`` report."""


class TaggedObject(Protocol):
    """What the object scores read of a sound tag (e.g. :class:`soundmask.lift.tags.SoundTag`)."""

    @property
    def centroid(self) -> np.ndarray: ...  # (3,) world metres
    @property
    def label(self) -> str: ...  # the audio tag, an AudioSet class name


@dataclass
class ObjectScores:
    """Object-level scores of one scene (see the module docstring); ``pairs`` maps a found object's id to the
    index of its tag, ``false`` lists the indices of the false-source tags."""

    objects_found: int
    objects_missed: int
    false_sources: int
    duplicates: int
    label_accuracy: float | None
    sounding_objects: int
    tags: int
    pairs: dict[int, int] = field(default_factory=dict)
    false: list[int] = field(default_factory=list)
    correct_labels: list[int] = field(default_factory=list)  # ids of the found objects whose label is right

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["pairs"] = {str(k): v for k, v in self.pairs.items()}
        return d


def score_objects(scene: Scene, tags: Sequence[TaggedObject], radius: float = FOUND_RADIUS) -> ObjectScores:
    """Found / missed / false sources and label accuracy of ``tags`` against ``scene``'s sounding objects."""
    from scipy.optimize import linear_sum_assignment

    from soundmask.audio.audioset import category_labels

    sounding_ids = {e.object_id for e in scene.sound_events}
    objects = [o for o in scene.objects if o.id in sounding_ids]
    pos = np.array([np.asarray(o.positions, np.float64).mean(axis=0) for o in objects]).reshape(-1, 3)
    cen = np.array([np.asarray(t.centroid, np.float64).reshape(3) for t in tags]).reshape(-1, 3)
    dist = np.linalg.norm(pos[:, None, :] - cen[None, :, :], axis=-1)  # (objects, tags)
    near = dist <= radius
    pairs: dict[int, int] = {}
    if near.any():
        rows, cols = linear_sum_assignment(np.where(near, dist, 1e6))
        pairs = {objects[r].id: int(c) for r, c in zip(rows, cols, strict=True) if near[r, c]}
    false = [k for k in range(len(tags)) if not near[:, k].any()]
    paired = set(pairs.values())
    duplicates = sum(1 for k in range(len(tags)) if near[:, k].any() and k not in paired)
    by_id = {o.id: o for o in objects}
    correct = [i for i, k in pairs.items() if tags[k].label in category_labels(by_id[i].category)]
    return ObjectScores(
        objects_found=len(pairs),
        objects_missed=len(objects) - len(pairs),
        false_sources=len(false),
        duplicates=duplicates,
        label_accuracy=len(correct) / len(pairs) if pairs else None,
        sounding_objects=len(objects),
        tags=len(tags),
        pairs=pairs,
        false=false,
        correct_labels=sorted(correct),
    )


def track_errors(scene: Scene, tracks: np.ndarray, pairs: dict[int, int]) -> dict[int, float]:
    """Track error (m) of each found sounding object: the median over the scene's frames of the distance from its
    tag's position at that frame's time, ``tracks[f, k]`` ((F, K, 3) for the F frames and K tags, e.g. the median
    of the tag's Gaussians moved to the frame's time), to the object's position at that frame. ``pairs``: object
    id → tag index (:attr:`ObjectScores.pairs`). Frames where the track is NaN (a tag without Gaussians) are
    skipped; an object with none left gets NaN. A static object (one position) is compared at every frame."""
    tr = np.asarray(tracks, np.float64)
    if tr.ndim != 3 or tr.shape[-1] != 3:
        raise ValueError(f"tracks must be (frames, tags, 3), got {tr.shape}")
    by_id = {o.id: o for o in scene.objects}
    out: dict[int, float] = {}
    for oid, k in pairs.items():
        pos = np.asarray(by_id[oid].positions, np.float64).reshape(-1, 3)
        if len(pos) not in (1, tr.shape[0]):
            raise ValueError(f"object {oid} has {len(pos)} positions, the tracks {tr.shape[0]} frames")
        d = np.linalg.norm(tr[:, k] - pos, axis=-1)
        d = d[np.isfinite(d)]
        out[oid] = float(np.median(d)) if d.size else float("nan")
    return out
