"""Sound localisation: which 3D components are the sounding objects of a frame (DESIGN.md stage 7).

The rule is 3D SoundMask's (Sec. 3.2, step 6 "Sound localization"): for every frame, render each segmented
Gaussian component into the image, measure its IoU with the frame's 2D sound mask, take the components above a
threshold as candidates, and break ties between several candidates with the stereo time delay. Here:

* :func:`component_masks` renders all K components in **one** pass, as K one-hot feature channels composited
  with occlusion by every Gaussian, so each channel is the component's *visible* soft mask.
* :func:`associate_frame` generalises the IoU rule to several sounding objects: a component is also a candidate
  when it lies mostly inside the mask (precision) and covers a fair part of it, so the objects that together
  form a multi-source mask are each selected. The tie-break keeps the candidates whose centroid agrees with the
  TDoA direction cone (:func:`soundmask.audio.tdoa.direction_cone`) about as well as the best one
  (:func:`tie_break`), or — given the steered response at each component's own delay — the best-aligned one and
  those with a strong enough response (:func:`tie_break_by_response`), which keeps two simultaneous sources.
* :class:`ComponentTimeline` carries the per-frame decisions over time and answers "is component k sounding at
  time t" between and beyond training frames.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np
import torch

from soundmask.constants import SPEED_OF_SOUND
from soundmask.data.types import Camera
from soundmask.errors import DataError
from soundmask.lift.grouping import Component, moved_centroids
from soundmask.splat.gaussians import Gaussians
from soundmask.splat.render import render

if TYPE_CHECKING:  # soundmask.audio is heavy to import (scipy.signal); loaded when a TDoA is used
    from soundmask.audio.cues import FrameAudio
    from soundmask.audio.types import Tdoa
    from soundmask.data.types import SceneFrame
    from soundmask.lift.views import LiftViews

__all__ = [
    "Association",
    "AssociationOptions",
    "ComponentTimeline",
    "associate_frame",
    "associate_views",
    "component_masks",
    "segment_of_views",
    "selection_alpha",
    "steered_responses",
    "tie_break",
    "tie_break_by_response",
]


def component_masks(
    gaussians: Gaussians,
    camera: Camera,
    components: Sequence[Component],
    time: float | None = None,
    backend: str = "auto",
) -> np.ndarray:
    """(K, H, W) float32: the visible soft mask of each component in ``camera`` (at ``time`` for a 4D model).

    One render with K one-hot feature channels: channel k is Σ over the Gaussians of component k of their
    front-to-back compositing weights, i.e. occluded by every Gaussian of the model. Summed over a partition of
    all Gaussians the channels give the rendered alpha."""
    k = camera.intrinsics
    K = len(components)
    if K == 0:
        return np.zeros((0, k.height, k.width), dtype=np.float32)
    n = len(gaussians)
    dev = gaussians.means.device
    onehot = torch.zeros(n, K, dtype=torch.float32, device=dev)
    for j, comp in enumerate(components):
        onehot[torch.as_tensor(np.asarray(comp.index, dtype=np.int64), device=dev), j] = 1.0
    with torch.no_grad():
        out = render(gaussians, camera, time=time, features=onehot, backend=backend)
    assert out.features is not None
    return out.features.permute(2, 0, 1).contiguous().cpu().numpy().astype(np.float32, copy=False)


def selection_alpha(
    gaussians: Gaussians,
    camera: Camera,
    index: np.ndarray,
    *,
    time: float | None = None,
    occlusion: bool = True,
    backend: str = "auto",
) -> np.ndarray:
    """Rendered alpha (H, W) of the Gaussians ``index`` at ``camera``: occluded by the rest of the scene (one
    feature channel marks the selection), or alone with ``occlusion=False``; zeros for an empty selection."""
    idx = np.unique(np.asarray(index, dtype=np.int64))
    if idx.size == 0:
        return np.zeros((camera.intrinsics.height, camera.intrinsics.width), np.float32)
    with torch.no_grad():
        if occlusion:
            sel = torch.zeros(len(gaussians), 1)
            sel[torch.as_tensor(idx)] = 1.0
            r = render(gaussians, camera, time=time, features=sel, backend=backend)
            return r.features[..., 0].clamp(0, 1).numpy()  # type: ignore[index]
        r = render(gaussians.subset(torch.as_tensor(idx)), camera, time=time, features=False, backend=backend)
        return r.alpha.numpy()


def steered_responses(
    audio: FrameAudio,
    frames: Sequence[SceneFrame],
    windows: Sequence[int],
    components: Sequence[Component],
    c: float,
    centroids: np.ndarray | None = None,
) -> list[np.ndarray] | None:
    """Per view j (its scene frame ``frames[j]``, its audio window ``windows[j]`` of ``audio``), the steered
    response (:meth:`FrameAudio.steered`) at the delay each component's centroid (``centroids[j]`` (K, 3) when
    given: where a moving component is at view j's time) predicts for that frame's microphones; None without
    stereo audio, components or microphone positions."""
    from soundmask.synth.acoustics import geometric_tdoa

    if not components or any(f.mic_left is None or f.mic_right is None for f in frames):
        return None
    if centroids is None:
        cents = np.stack([np.asarray(comp.centroid, dtype=np.float64) for comp in components])
        centroids = np.repeat(cents[None], len(frames), axis=0)
    delays = [np.atleast_1d(geometric_tdoa(centroids[j], f.mic_left, f.mic_right, c)) for j, f in enumerate(frames)]
    return audio.steered(list(windows), delays)


@dataclass
class Association:
    """Per-component result of :func:`associate_frame` (arrays of length K, in the order of the components):
    ``iou``, ``precision`` |R∩M|/|R| and ``recall`` |R∩M|/|M| of the binarised rendered mask R against the 2D
    mask M; ``candidates`` passing the mask rule; ``selected`` after the TDoA tie-break; ``angle_error``
    (radians) of the centroid to the TDoA direction cone, NaN without a TDoA."""

    component_ids: np.ndarray
    iou: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    candidates: np.ndarray
    selected: np.ndarray
    angle_error: np.ndarray

    @property
    def selected_ids(self) -> list[int]:
        return [int(i) for i in self.component_ids[self.selected]]


def associate_frame(
    soft_masks: Any,
    mask2d: Any,
    components: Sequence[Component],
    *,
    iou_threshold: float = 0.5,
    precision_threshold: float = 0.5,
    mask_threshold: float = 0.5,
    min_coverage: float = 0.05,
    tdoa: Tdoa | float | None = None,
    mic_left: Any = None,
    mic_right: Any = None,
    angle_tolerance: float = 0.35,
    c: float = SPEED_OF_SOUND,
    response: Any = None,
    response_share: float = 0.2,
) -> Association:
    """Which components sound in this frame (3D SoundMask Sec. 3.2 step 6, generalised to several objects).

    Each soft mask (K, H, W) is binarised at ``> mask_threshold``. Candidates: IoU ≥ ``iou_threshold`` with
    ``mask2d``, **or** precision ≥ ``precision_threshold`` while covering ≥ ``min_coverage`` (5 %) of the mask;
    components without a visible pixel never are. Tie-break: with ``tdoa`` (a :class:`Tdoa` or τ in seconds,
    positive = left microphone first) and both microphone positions, when more than one candidate remains,
    keep those whose centroid's angle error to ``direction_cone(τ, mic_left, mic_right)`` is within
    ``angle_tolerance`` rad of the best candidate's. With ``response`` (K,), the GCC-PHAT correlation of the frame
    at the delay each component's centroid predicts (:func:`soundmask.audio.tdoa.steered_response`), the
    tie-break is by response instead (:func:`tie_break_by_response`). An empty 2D mask selects nothing."""
    S = np.asarray(soft_masks.detach().cpu().numpy() if isinstance(soft_masks, torch.Tensor) else soft_masks)
    M = np.asarray(mask2d.detach().cpu().numpy() if isinstance(mask2d, torch.Tensor) else mask2d) > 0
    K = len(components)
    if S.ndim != 3 or S.shape[0] != K:
        raise DataError(f"soft masks must be ({K}, H, W) for {K} components, got shape {S.shape}")
    if M.shape != S.shape[1:]:
        raise DataError(
            f"2D mask shape {M.shape} differs from the rendered masks {S.shape[1:]}",
            fix="render at the mask's resolution (Intrinsics.scaled) or resize the mask",
        )
    R = (S > mask_threshold).reshape(K, M.size)
    inter = (R & M.reshape(1, M.size)).sum(axis=1).astype(np.float64)
    area_r = R.sum(axis=1).astype(np.float64)
    area_m = float(M.sum())
    union = area_r + area_m - inter
    iou = np.divide(inter, union, out=np.zeros(K), where=union > 0)
    precision = np.divide(inter, area_r, out=np.zeros(K), where=area_r > 0)
    recall = inter / area_m if area_m > 0 else np.zeros(K)
    cand = (
        (area_r > 0)
        & (area_m > 0)
        & ((iou >= iou_threshold) | ((precision >= precision_threshold) & (recall >= min_coverage)))
    )
    angle_err = np.full(K, np.nan)
    tau = cast("float | None", getattr(tdoa, "tau", tdoa))  # a Tdoa or τ itself
    selected = cand.copy()
    if tau is not None and np.isfinite(tau) and mic_left is not None and mic_right is not None and K:
        from soundmask.audio.tdoa import direction_cone

        cone = direction_cone(float(tau), mic_left, mic_right, c)
        angle_err = np.array([cone.angle_error(comp.centroid) for comp in components], dtype=np.float64)
        if response is not None:
            selected = tie_break_by_response(cand, response, angle_err, response_share)
        else:
            selected = tie_break(cand, angle_err, angle_tolerance)
    ids = np.array([comp.id for comp in components], dtype=np.int64)
    return Association(ids, iou, precision, recall, cand, selected, angle_err)


def tie_break(candidates: Any, angle_error: Any, tolerance: float) -> np.ndarray:
    """(K,) bool: of several ``candidates``, those whose ``angle_error`` (rad; NaN = unknown) is within
    ``tolerance`` of the best candidate's; all candidates when there is only one or no error is known."""
    cand = np.asarray(candidates, dtype=bool)
    if cand.sum() <= 1:
        return cand.copy()
    err = np.where(cand & np.isfinite(angle_error), angle_error, np.inf)
    keep = cand & (err <= float(err.min()) + tolerance)
    return keep if keep.any() else cand.copy()


def tie_break_by_response(candidates: Any, response: Any, angle_error: Any, share: float) -> np.ndarray:
    """(K,) bool: of several ``candidates``, the best-aligned one (smallest ``angle_error``) and every one whose
    steered ``response`` (NaN = unknown) is at least ``share`` of the strongest candidate's.

    A single TDoA peak names one direction, so an angle tolerance either keeps the silent objects near that cone or,
    made tight, drops the second of two sources that sound at once. The steered response (SRP-PHAT) keeps each
    source's own correlation peak: a second source passes on its own peak, a silent object between them does not.
    Falls back to :func:`tie_break` with zero tolerance when no candidate's response is known or positive."""
    cand = np.asarray(candidates, dtype=bool)
    if cand.sum() <= 1:
        return cand.copy()
    best = tie_break(cand, angle_error, 0.0)
    r = np.where(cand & np.isfinite(response), np.asarray(response, dtype=np.float64), -np.inf)
    top = float(r.max())
    if not top > 0:
        return best
    return best | (cand & (r >= share * top))


class AssociationOptions(Protocol):
    """The association settings :func:`associate_views` reads (e.g. a ``LiftConfig``)."""

    @property
    def iou_threshold(self) -> float: ...
    @property
    def precision_threshold(self) -> float: ...
    @property
    def min_coverage(self) -> float: ...
    @property
    def angle_tolerance(self) -> float: ...
    @property
    def response_share(self) -> float: ...
    @property
    def backend(self) -> str: ...


def associate_views(
    gaussians: Gaussians,
    components: Sequence[Component],
    views: LiftViews,
    options: AssociationOptions,
    *,
    audio: FrameAudio | None = None,
    c: float = SPEED_OF_SOUND,
    progress: Callable[[float], None] | None = None,
) -> list[Association]:
    """:func:`associate_frame` for each training view. ``audio``'s frame window ``views.windows[j]`` is view j's:
    its TDoA (and with ``options.response_share`` > 0 its steered response, :func:`steered_responses`) breaks ties
    between candidates, with the microphones of ``views.frames``."""
    windows = views.windows or list(range(len(views)))
    tdoas = [audio.tdoa[w] for w in windows] if audio is not None and audio.tdoa is not None else None
    # where each component is at each view's time (a moving object's TDoA cone and steered delay follow it)
    cents = moved_centroids(gaussians, components, views.times)
    responses = None
    if options.response_share > 0 and audio is not None and components:
        responses = steered_responses(audio, views.frames, windows, components, c, centroids=cents)
    assocs = []
    for j, cam in enumerate(views.cameras):
        soft = component_masks(gaussians, cam, components, time=views.times[j], backend=options.backend)
        f = views.frames[j] if views.frames else None
        here = [replace(comp, centroid=cents[j, k]) for k, comp in enumerate(components)]
        assocs.append(
            associate_frame(
                soft,
                views.masks[j],
                here,
                iou_threshold=options.iou_threshold,
                precision_threshold=options.precision_threshold,
                min_coverage=options.min_coverage,
                tdoa=tdoas[j] if tdoas is not None else None,
                mic_left=f.mic_left if f is not None else None,
                mic_right=f.mic_right if f is not None else None,
                angle_tolerance=options.angle_tolerance,
                c=c,
                response=responses[j] if responses is not None else None,
                response_share=options.response_share,
            )
        )
        if progress is not None:
            progress((j + 1) / len(views))
    return assocs


def segment_of_views(times: Sequence[float], window: float, segments: Sequence[tuple[float, float]]) -> np.ndarray:
    """(V,) int: the audio segment each view's window ``[t, t + window)`` overlaps most (-1: none)."""
    out = np.full(len(times), -1, np.int64)
    for j, t in enumerate(times):
        ov = [max(0.0, min(b, t + window) - max(a, t)) for a, b in segments]
        if ov and max(ov) > 0:
            out[j] = int(np.argmax(ov))
    return out


@dataclass
class ComponentTimeline:
    """Which components sound when: ``active`` (T, K) bool over the training frames (row t = frame t, in the
    order of the ``frame_times`` later passed to :meth:`active_at`), columns = ``component_ids``."""

    component_ids: np.ndarray
    active: np.ndarray
    segments: list[tuple[float, float]] | None = field(default=None)

    def __post_init__(self) -> None:
        self.component_ids = np.asarray(self.component_ids, dtype=np.int64)
        a = np.asarray(self.active, dtype=bool)
        K = len(self.component_ids)
        self.active = a.reshape(-1, K) if K else a.reshape(a.shape[0] if a.ndim else 0, 0)

    @classmethod
    def from_associations(
        cls, associations: Sequence[Association], segments: list[tuple[float, float]] | None = None
    ) -> ComponentTimeline:
        """Stack the ``selected`` flags of one :class:`Association` per training frame (same components)."""
        if not associations:
            return cls(np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=bool), segments)
        ids = associations[0].component_ids
        for a in associations[1:]:
            if not np.array_equal(a.component_ids, ids):
                raise DataError("associations of different component sets cannot form one timeline")
        return cls(ids, np.stack([a.selected for a in associations]), segments)

    def column(self, component_id: int) -> int:
        hit = np.flatnonzero(self.component_ids == component_id)
        if hit.size == 0:
            raise KeyError(f"no component with id {component_id}")
        return int(hit[0])

    def active_at(
        self,
        t: float,
        frame_times: Any,
        audio_active: Callable[[float, float], float] | None = None,
        segments: list[tuple[float, float]] | None = None,
    ) -> np.ndarray:
        """(K,) bool activity at time ``t`` (s) from the nearest training frames in time.

        Both neighbouring frames agree → that value; they disagree → the value of the temporally nearer one;
        equally near → the one whose audio is more similar (``audio_active(t, t_neighbour)`` → float, higher =
        more similar) if given, else the earlier frame. Before the first / after the last frame: that frame.
        Outside every audio-active segment (``segments``, default the timeline's own; None = no constraint)
        everything is inactive."""
        ft = np.asarray(frame_times, dtype=np.float64).ravel()
        K = len(self.component_ids)
        if ft.shape[0] != self.active.shape[0]:
            raise DataError(f"{ft.shape[0]} frame times for a timeline of {self.active.shape[0]} frames")
        segs = self.segments if segments is None else segments
        if ft.size == 0 or (segs is not None and not any(s <= t <= e for s, e in segs)):
            return np.zeros(K, dtype=bool)
        order = np.argsort(ft, kind="stable")
        st = ft[order]
        i = int(np.searchsorted(st, t, side="left"))
        if i < len(st) and st[i] == t:
            return self.active[order[i]].copy()
        if i == 0:
            return self.active[order[0]].copy()
        if i == len(st):
            return self.active[order[-1]].copy()
        a, b = order[i - 1], order[i]  # earlier, later neighbour
        va, vb = self.active[a], self.active[b]
        da, db = t - st[i - 1], st[i] - t
        if da == db and audio_active is not None:  # equally near: the frame whose audio is more alike
            later = float(audio_active(t, st[i])) > float(audio_active(t, st[i - 1]))
        else:
            later = db < da  # the nearer frame; a tie without audio → the earlier one
        pick = vb if later else va
        return np.where(va == vb, va, pick)
