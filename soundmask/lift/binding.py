"""Which component makes each sound (issue 29, item 3): one decision per training view over three cues.

Cues (:class:`BindingCues`, arrays (V, K) over the training views and the components):

* **visual** — the 2D sound mask: whether the component passes the association's mask rule in the view
  (``candidate``, :func:`soundmask.lift.associate.associate_frame`) and its rendered IoU with the mask;
* **acoustic** — :mod:`soundmask.audio.evidence`: each component scored at several of its Gaussians (k-means
  centres of their centres and the median) by the steered response summed over the view's window and
  ``context`` neighbouring windows on each side (the camera, and so the microphone pair, moves between them, which
  separates objects on the same time-difference cone), standardised against off-object points spread over the
  scene's box. The best-scoring component of a view is then taken out (DUET bin removal, or nulling) and every
  other component scored again, so a second simultaneous source is not hidden behind the first; ``acoustic`` holds
  the first score for the best component and the second for the others;
* **semantic** — optional: how well the component's visual category matches the view's audio tags (a caller
  supplies it, (V, K), e.g. from :mod:`soundmask.lift.semantic`).

:func:`decide` selects, per audible view, every component whose logistic score
``bias + w_c·candidate + w_i·iou + w_a·clip(acoustic) + w_s·semantic`` is positive, with the cues that
``binding`` names (``visual``: the association's own decision, unchanged; ``acoustic``; ``semantic``; ``joint``:
all). The weights (:data:`DEFAULT_WEIGHTS`) were fitted by logistic regression on train-split scenes only
(``benchmarks/fit_binding.py``; docs/scene3d.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from soundmask.constants import SPEED_OF_SOUND
from soundmask.lift.grouping import Component

if TYPE_CHECKING:
    from soundmask.audio.cues import FrameAudio
    from soundmask.audio.evidence import RemoveMode, ResponseModel
    from soundmask.data.types import SceneFrame

__all__ = [
    "DEFAULT_WEIGHTS",
    "Binding",
    "BindingCues",
    "BindingWeights",
    "acoustic_cues",
    "component_points",
    "decide",
]

Binding = Literal["visual", "acoustic", "semantic", "joint"]
Z_CLIP = (-5.0, 15.0)  # the acoustic z enters the logistic score clipped: one loud window must not decide alone


@dataclass(frozen=True)
class BindingWeights:
    """Weights of the logistic score (module notes); a cue a binding does not use is left out of the sum."""

    bias: float
    candidate: float
    iou: float
    acoustic: float
    semantic: float

    def as_array(self) -> np.ndarray:
        return np.array([self.bias, self.candidate, self.iou, self.acoustic, self.semantic])


#: Fitted on train-split scenes (seeds 400 and 401, ``soundmask demo`` with the shipped SDAVS; class-balanced
#: logistic regression, bias moved to the F1-best threshold): ``benchmarks/fit_binding.py --train ...``.
DEFAULT_WEIGHTS: dict[str, BindingWeights] = {
    "joint": BindingWeights(bias=-2.868, candidate=2.235, iou=2.358, acoustic=0.275, semantic=0.538),
    "acoustic": BindingWeights(bias=-0.529, candidate=0.0, iou=0.0, acoustic=0.415, semantic=0.0),
    "semantic": BindingWeights(bias=-0.007, candidate=0.0, iou=0.0, acoustic=0.0, semantic=1.808),
}


@dataclass
class BindingCues:
    """The cues of K components over V training views (module notes). ``audible`` (V,): the view's window has
    sound; ``first`` (V,): the component that scored best acoustically (−1: none)."""

    component_ids: np.ndarray
    candidate: np.ndarray
    iou: np.ndarray
    acoustic: np.ndarray
    audible: np.ndarray
    first: np.ndarray
    semantic: np.ndarray | None = None
    visual: np.ndarray | None = None  # (V, K) the association's own decision (mask rule + TDoA tie-break)

    def features(self) -> np.ndarray:
        """(V, K, 5): 1, candidate, iou, clipped acoustic z, semantic (0 where unknown)."""
        V, K = self.candidate.shape
        a = np.clip(np.nan_to_num(self.acoustic, nan=Z_CLIP[0]), *Z_CLIP)
        s = np.zeros((V, K)) if self.semantic is None else np.nan_to_num(self.semantic, nan=0.0)
        return np.stack([np.ones((V, K)), self.candidate.astype(np.float64), self.iou, a, s], axis=-1)


def _mask(binding: str) -> np.ndarray:
    use = {"acoustic": [0, 3], "semantic": [0, 4], "joint": [0, 1, 2, 3, 4]}[binding]
    m = np.zeros(5, bool)
    m[use] = True
    return m


def decide(cues: BindingCues, binding: Binding, weights: BindingWeights | None = None) -> np.ndarray:
    """(V, K) bool: the components that sound in each view under ``binding`` (not ``visual``, which is the
    association's own decision). Silent views select nothing."""
    if binding == "visual":
        raise ValueError("binding 'visual' is the association's own decision, not decide()'s")
    w = weights or DEFAULT_WEIGHTS[binding]
    score = cues.features() @ (w.as_array() * _mask(binding))
    return (score > 0) & cues.audible[:, None]


def component_points(means: np.ndarray, index: Any, n: int = 8, seed: int = 0) -> np.ndarray:
    """(≤ n + 1, 3): points that stand for one component in the acoustic score — the k-means centres (k = n) of
    its Gaussians' centres and their median (a robust centre), so a component larger than one object is scored
    at its best part."""
    from scipy.cluster.vq import kmeans2

    p = np.asarray(means, dtype=np.float64)[np.asarray(index, dtype=np.int64)]
    if len(p) == 0:
        return np.zeros((0, 3))
    med = np.median(p, axis=0, keepdims=True)
    if len(p) <= n:
        return np.concatenate([p, med])
    centres, _ = kmeans2(p, n, minit="++", seed=seed)
    return np.concatenate([centres[np.isfinite(centres).all(axis=1)], med])


def _neighbourhoods(V: int, context: int, segment: np.ndarray) -> list[np.ndarray]:
    """Each view with up to ``context`` views on each side (view order = time order) in the same sound segment."""
    out = []
    for v in range(V):
        js = np.arange(max(0, v - context), min(V, v + context + 1))
        out.append(js[segment[js] == segment[v]] if segment[v] >= 0 else np.array([v]))
    return out


def acoustic_cues(
    audio: FrameAudio,
    frames: Sequence[SceneFrame],
    windows: Sequence[int],
    times: Sequence[float],
    components: Sequence[Component],
    means: np.ndarray,
    *,
    context: int = 1,
    model: ResponseModel = "direct",
    remove_mode: RemoveMode | None = "duet",
    n_points: int = 8,
    n_baseline: int = 128,
    c: float = SPEED_OF_SOUND,
    seed: int = 0,
    positions_at: Callable[[float], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The acoustic cue (V, K) and the best component per view (V,) (module notes), for views ``frames`` whose
    audio windows are ``audio.windows[windows[j]]``; None without stereo audio or microphone positions.
    ``positions_at(t)`` (N, 3), for a 4D model: the Gaussians' centres at time t — each component's points then
    move with the Gaussian nearest to them, so a moving source is scored where it is in each view."""
    from soundmask.audio.evidence import object_evidence, predicted_delays, window_responses, window_spectra
    from soundmask.lift.associate import segment_of_views

    if audio.stereo is None or not audio.windows or not components:
        return None
    if any(f.mic_left is None or f.mic_right is None for f in frames):
        return None
    V, K = len(frames), len(components)
    wins = [audio.windows[w] for w in windows]
    mics = np.stack([np.stack([np.asarray(f.mic_left), np.asarray(f.mic_right)]) for f in frames]).astype(np.float64)
    order = np.argsort(np.asarray(times, dtype=np.float64), kind="stable")
    seg = segment_of_views([float(t) for t in times], audio.window, audio.segments)
    groups_sorted = _neighbourhoods(V, context, seg[order])
    groups = [np.empty(0, np.int64)] * V
    for rank, v in enumerate(order):
        groups[v] = order[groups_sorted[rank]]
    pts = [component_points(means, comp.index, n_points, seed) for comp in components]
    counts = [len(p) for p in pts]
    allp = np.concatenate(pts) if pts else np.zeros((0, 3))
    if positions_at is not None and len(allp):  # (V, P, 3): each view's points at its time
        from scipy.spatial import cKDTree

        near = cKDTree(means).query(allp)[1]
        allp = np.stack([allp + (np.asarray(positions_at(float(t)))[near] - means[near]) for t in times])
    lo, hi = np.percentile(means, 2, axis=0), np.percentile(means, 98, axis=0)
    base = lo + np.random.default_rng(seed).uniform(0.0, 1.0, (n_baseline, 3)) * (hi - lo)
    planes = (float(lo[2]), float(hi[2])) if model == "images" else ()

    def z_of(spectra: Any) -> tuple[np.ndarray, np.ndarray]:
        r = window_responses(spectra, mics, allp, model=model, planes=planes, c=c)
        b = window_responses(spectra, mics, base, model=model, planes=planes, c=c)
        ev = object_evidence(r, groups, counts, b)
        return ev.z(), r

    spectra = window_spectra(audio.stereo, audio.sample_rate, wins)
    z, r = z_of(spectra)
    first = np.where(np.isfinite(z).any(axis=1), np.argmax(np.nan_to_num(z, nan=-np.inf), axis=1), -1)
    if remove_mode is None:
        return z, first
    # take the best component out (at its best point) and score the others again
    owner = np.repeat(np.arange(K), counts)
    remove = np.full(V, np.nan)
    for v in range(V):
        k = int(first[v])
        if k < 0:
            continue
        cols = np.flatnonzero(owner == k)
        g = groups[v][np.isfinite(r[groups[v], 0])] if len(groups[v]) else groups[v]
        best = cols[int(np.argmax(np.nanmean(r[g][:, cols], axis=0)))] if g.size else cols[-1]
        remove[v] = predicted_delays((allp[v] if allp.ndim == 3 else allp)[best], mics[v, 0], mics[v, 1], c)
    z2, _ = z_of(window_spectra(audio.stereo, audio.sample_rate, wins, remove=remove, remove_mode=remove_mode))
    out = z2.copy()
    rows = np.flatnonzero(first >= 0)
    out[rows, first[rows]] = z[rows, first[rows]]
    return out, first
