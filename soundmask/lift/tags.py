"""Tagging and querying the sounding Gaussians (DESIGN.md stage 8).

3D SoundMask's last step: the chosen Gaussian subset of each sounding object gets the segment's audio
embedding, label and time spans, so that the scene can be queried ("where is the dog barking at t = 3 s?") and
its sound masks rendered from any view.

* :class:`SoundTag` — one sounding component: its Gaussians, label, top scores, embedding, active spans.
* :func:`spans_from_activity` — per-frame activity → merged (start, end) spans.
* :class:`SoundScene` — the Gaussians plus their tags, with the query API (:meth:`~SoundScene.by_label`,
  :meth:`~SoundScene.at_time` — the objects sounding at t with their Gaussians at t, :meth:`~SoundScene.by_audio`,
  :meth:`~SoundScene.mask_gaussians`), each object's
  own signal (:meth:`~SoundScene.audio_of`, from :mod:`soundmask.lift.separate`) and a one-file ``.pt`` format
  (:meth:`~SoundScene.save` / :meth:`~SoundScene.load`) holding only plain types and tensors, so it loads with
  ``torch.load(weights_only=True)``. A tag's audio is stored as float16 samples normalised to a peak of 1 plus
  their scale (``audio``, ``audio_scale``, ``sample_rate``); files written before per-object audio load with
  ``audio = None`` and :meth:`~SoundScene.audio_of` says so in one line.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from soundmask.errors import DataError
from soundmask.lift.grouping import Component
from soundmask.splat.gaussians import Gaussians

if TYPE_CHECKING:
    from soundmask.audio.types import Tagging
    from soundmask.lift.associate import ComponentTimeline

__all__ = [
    "FORMAT",
    "SoundScene",
    "SoundTag",
    "SoundingAt",
    "spans_from_activity",
    "tag_component",
    "tags_from_timeline",
]

FORMAT = "soundmask.SoundScene"
VERSION = 1


@dataclass
class SoundTag:
    """A sounding object of the scene: Gaussians ``index`` (component ``component_id``), its audio ``label``
    and top ``scores`` (label → score), the audio ``embedding`` (D,), the ``spans`` (start, end) seconds when
    it sounds, and its ``centroid`` (3,). ``audio`` (S,) float32 is the object's own signal over the whole
    recording at ``sample_rate`` (aligned with the left microphone, silent where it does not sound; None when not
    extracted): label, scores and embedding are then YAMNet's on it (:mod:`soundmask.lift.separate`)."""

    component_id: int
    index: np.ndarray
    label: str
    scores: dict[str, float] = field(default_factory=dict)
    embedding: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    spans: list[tuple[float, float]] = field(default_factory=list)
    centroid: np.ndarray = field(default_factory=lambda: np.zeros(3))
    audio: np.ndarray | None = field(default=None, repr=False)
    sample_rate: int = 0

    def active(self, t: float) -> bool:
        """True when ``t`` lies in one of the spans (start ≤ t < end)."""
        return any(s <= t < e for s, e in self.spans)

    def matches(self, label: str) -> bool:
        """Case-insensitive substring match on the label and on the score names."""
        q = label.lower()
        return q in self.label.lower() or any(q in k.lower() for k in self.scores)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "component_id": int(self.component_id),
            "index": torch.as_tensor(np.asarray(self.index, dtype=np.int64)),
            "label": str(self.label),
            "scores": {str(k): float(v) for k, v in self.scores.items()},
            "embedding": torch.as_tensor(np.asarray(self.embedding, dtype=np.float32)),
            "spans": [(float(s), float(e)) for s, e in self.spans],
            "centroid": torch.as_tensor(np.asarray(self.centroid, dtype=np.float64)),
        }
        if self.audio is not None:
            a = np.asarray(self.audio, dtype=np.float32).ravel()
            peak = float(np.max(np.abs(a))) if a.size else 0.0
            scale = peak if np.isfinite(peak) and peak > 0 else 1.0
            d["audio"] = torch.as_tensor((a / scale).astype(np.float16))
            d["audio_scale"] = scale
            d["sample_rate"] = int(self.sample_rate)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SoundTag:
        audio = None
        if d.get("audio") is not None:
            audio = np.asarray(d["audio"], dtype=np.float32).ravel() * np.float32(d.get("audio_scale", 1.0))
        return cls(
            component_id=int(d["component_id"]),
            index=np.asarray(d["index"], dtype=np.int64),
            label=str(d["label"]),
            scores={str(k): float(v) for k, v in dict(d.get("scores", {})).items()},
            embedding=np.asarray(d.get("embedding", np.zeros(0)), dtype=np.float32),
            spans=[(float(s), float(e)) for s, e in d.get("spans", [])],
            centroid=np.asarray(d.get("centroid", np.zeros(3)), dtype=np.float64),
            audio=audio,
            sample_rate=int(d.get("sample_rate", 0)),
        )


def spans_from_activity(times: Any, active: Any, frame_seconds: float) -> list[tuple[float, float]]:
    """Merge runs of consecutive active frames (in time order) into (start, end) spans; frame i covers
    ``[times[i], times[i] + frame_seconds)``, so a run i..j gives ``(times[i], times[j] + frame_seconds)``."""
    t = np.asarray(times, dtype=np.float64).ravel()
    a = np.asarray(active, dtype=bool).ravel()
    if t.shape != a.shape:
        raise ValueError(f"{t.size} times for {a.size} activity flags")
    order = np.argsort(t, kind="stable")
    t, a = t[order], a[order]
    edges = np.diff(np.concatenate([[0], a.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    return [(float(t[i]), float(t[j] + frame_seconds)) for i, j in zip(starts, ends, strict=True)]


def tag_component(
    component: Component, tagging: Tagging | None, spans: Sequence[tuple[float, float]], top_k: int = 3
) -> SoundTag:
    """A :class:`SoundTag` for ``component`` from the audio ``tagging`` of its segment(s): label = the best
    class, scores = the ``top_k`` best, embedding = the tagging's (empty without a tagging; label "sound")."""
    if tagging is None or len(tagging.labels) == 0:
        return SoundTag(
            component.id,
            np.asarray(component.index),
            "sound",
            {},
            np.zeros(0, np.float32),
            list(spans),
            np.asarray(component.centroid, dtype=np.float64),
        )
    top = tagging.top(top_k)
    return SoundTag(
        component.id,
        np.asarray(component.index),
        top[0][0],
        dict(top),
        np.asarray(tagging.embedding, dtype=np.float32).ravel(),
        list(spans),
        np.asarray(component.centroid, dtype=np.float64),
    )


def tags_from_timeline(
    means: np.ndarray,
    components: Sequence[Component],
    members: dict[int, np.ndarray],
    timeline: ComponentTimeline,
    frame_times: Sequence[float],
    taggings: Sequence[Tagging | None],
    frame_seconds: float,
) -> list[SoundTag]:
    """One :class:`SoundTag` per component with ``members`` (its Gaussians after voting): its spans are the runs
    of frames where the ``timeline`` has it sounding (frame j at ``frame_times[j]`` lasts ``frame_seconds``); its
    label, scores and embedding are the mean of those frames' ``taggings`` (None = untagged); its centroid the
    mean of its members' ``means``."""
    from soundmask.audio.types import Tagging

    tags = []
    for k, comp in enumerate(components):
        if comp.id not in members:
            continue
        act = timeline.active[:, k]
        tg = [t for t, a in zip(taggings, act, strict=True) if a and t is not None]
        agg = None
        if tg:
            agg = Tagging(
                tg[0].labels,
                np.mean([t.scores for t in tg], axis=0),
                np.mean([t.embedding for t in tg], axis=0).astype(np.float32),
                tg[0].model,
            )
        idx = members[comp.id]
        obj = Component(comp.id, idx, means[idx].mean(axis=0), int(idx.size))
        tags.append(tag_component(obj, agg, spans_from_activity(frame_times, act, frame_seconds)))
    return tags


def _plain(x: Any) -> Any:
    """``x`` with numpy values turned into tensors / Python scalars and paths into strings (loadable with
    ``weights_only=True``)."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return type(x)(_plain(v) for v in x)
    if isinstance(x, np.ndarray):
        return torch.as_tensor(x)
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, os.PathLike):
        return os.fspath(x)
    return x


@dataclass
class SoundingAt:
    """A sounding object at one time (:meth:`SoundScene.at_time`): its ``tag`` and ``means`` (n, 3), the centres
    of its Gaussians at ``time`` (seconds)."""

    tag: SoundTag
    time: float
    means: np.ndarray

    @property
    def label(self) -> str:
        return self.tag.label

    @property
    def centroid(self) -> np.ndarray:
        """Where the object is at ``time``: the mean of its Gaussians' centres (world metres)."""
        return self.means.mean(axis=0) if len(self.means) else np.asarray(self.tag.centroid, dtype=np.float64)


@dataclass
class SoundScene:
    """A Gaussian scene with its sounding objects (``tags``) and free-form ``meta`` (plain types)."""

    gaussians: Gaussians
    tags: list[SoundTag] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ queries
    def by_label(self, label: str) -> list[SoundTag]:
        """Tags whose label or one of whose score names contains ``label`` (case-insensitive)."""
        return [tag for tag in self.tags if tag.matches(label)]

    def at_time(self, t: float) -> list[SoundingAt]:
        """The objects sounding at ``t`` seconds (a span with start ≤ t < end), each with its Gaussians' centres
        *at t* (a 4D model moves them: :meth:`~soundmask.splat.gaussians.Gaussians.means_at`)."""
        active = [tag for tag in self.tags if tag.active(t)]
        if not active:
            return []
        m = self.gaussians.centres_at(float(t))
        return [SoundingAt(tag, float(t), m[np.asarray(tag.index, dtype=np.int64)]) for tag in active]

    def by_audio(self, embedding: Any, top_k: int = 1) -> list[tuple[SoundTag, float]]:
        """The ``top_k`` tags whose embedding is most cosine-similar to ``embedding``, best first (tags without an
        embedding of the same size are skipped)."""
        q = np.asarray(embedding, dtype=np.float64).ravel()
        qn = float(np.linalg.norm(q))
        scored = []
        for tag in self.tags:
            e = np.asarray(tag.embedding, dtype=np.float64).ravel()
            if e.shape != q.shape or e.size == 0:
                continue
            den = qn * float(np.linalg.norm(e))
            scored.append((tag, float(np.dot(q, e) / den) if den > 0 else 0.0))
        scored.sort(key=lambda p: -p[1])
        return scored[: max(int(top_k), 0)]

    def mask_gaussians(self, t: float | None = None, label: str | None = None) -> np.ndarray:
        """(N,) bool: the union of the Gaussians of the tags sounding at ``t`` and matching ``label`` (either
        filter skipped when None)."""
        out = np.zeros(len(self.gaussians), dtype=bool)
        for tag in self.tags:
            if (t is None or tag.active(t)) and (label is None or tag.matches(label)):
                out[np.asarray(tag.index, dtype=np.int64)] = True
        return out

    def tag_of(self, obj: SoundTag | int) -> SoundTag:
        """The tag ``obj`` itself, or the tag of component id ``obj``; :class:`DataError` when there is none."""
        if isinstance(obj, SoundTag):
            return obj
        cid = int(obj)
        for tag in self.tags:
            if int(tag.component_id) == cid:
                return tag
        have = ", ".join(str(t.component_id) for t in self.tags) or "none"
        raise DataError(f"no sounding object with component id {cid}", fix=f"use one of: {have}")

    def audio_of(self, obj: SoundTag | int) -> tuple[np.ndarray, int]:
        """(signal (S,) float32, sample rate) of a sounding object (a tag or its component id): its own signal over
        the whole recording, aligned with the left microphone and silent where it does not sound
        (:mod:`soundmask.lift.separate`). :class:`DataError` when the object was not extracted (a sound scene
        written before per-object audio existed, or lifted with ``--separation none``)."""
        tag = self.tag_of(obj)
        if tag.audio is None or tag.sample_rate <= 0:
            raise DataError(
                f"sounding object {tag.component_id} has no audio of its own in this sound scene",
                fix="re-run `soundmask lift` (with --separation mvdr or das) to extract it",
            )
        return np.asarray(tag.audio, dtype=np.float32), int(tag.sample_rate)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write one ``.pt`` file (torch.save of plain types: the Gaussians' state_dict, tags as dicts, meta),
        atomically (temporary file in the same folder, then ``os.replace``)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": FORMAT,
            "version": VERSION,
            "gaussians": self.gaussians.state_dict(),
            "tags": [tag.to_dict() for tag in self.tags],
            "meta": _plain(self.meta),
        }
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                torch.save(payload, fh)
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return p

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SoundScene:
        """Read a file written by :meth:`save`; any problem → :class:`DataError` naming the file."""
        p = Path(path)
        fix = "re-run the tagging stage to rewrite it"
        if not p.is_file():
            raise DataError("sound scene file not found", path=p, fix="check the path")
        try:
            d = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as err:  # whatever torch / pickle raise on a corrupt file
            raise DataError(f"not a readable sound scene file ({type(err).__name__})", path=p, fix=fix) from err
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise DataError("not a soundmask sound scene file (no format marker)", path=p, fix=fix)
        if int(d.get("version", 0)) > VERSION:
            raise DataError(
                f"sound scene format version {d.get('version')} is newer than this soundmask ({VERSION})",
                path=p,
                fix="upgrade soundmask",
            )
        try:
            gaussians = Gaussians.from_state_dict(d["gaussians"])
            tags = [SoundTag.from_dict(t) for t in d.get("tags", [])]
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"malformed sound scene file: {err}", path=p, fix=fix) from err
        n = len(gaussians)
        for tag in tags:
            if tag.index.size and (tag.index.min() < 0 or tag.index.max() >= n):
                raise DataError(
                    f"tag of component {tag.component_id} indexes Gaussians outside 0..{n - 1}", path=p, fix=fix
                )
        return cls(gaussians, tags, dict(d.get("meta", {})))
