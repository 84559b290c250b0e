"""EchoSegnet's audio-informed spatial refinement, as an option (DESIGN.md stage 7).

EchoSegnet (3D Audio-Visual Segmentation) refines the voted Gaussians with the binaural cue: the Gaussians
selected by multi-view voting are clustered in space and the clusters that disagree with the direction the
stereo audio comes from are dropped (false positives from 2D masks that bled onto other objects).

:func:`refine_by_direction` is **our reading** of that binaural-cue clustering step: the paper's code is
CUDA-only and not available here, and the text we have (the repository README, ``papers/001_*``) names the step
("spatial audio-aware mask alignment and refinement"; DESIGN.md: a binaural level-difference intensity map and
clustering) without its details. We use the time difference of arrival instead (the cue soundmask already estimates,
:mod:`soundmask.audio.tdoa`): cluster with :func:`soundmask.lift.grouping.spatial_components`, keep the
clusters whose centroid lies within ``angle_tolerance`` of the TDoA direction cone (the best-agreeing cluster
always kept), drop the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from soundmask.constants import SPEED_OF_SOUND
from soundmask.lift.grouping import Component, _means, candidate_index, spatial_components

if TYPE_CHECKING:
    from soundmask.data.types import SceneFrame

__all__ = ["refine_by_direction", "refine_members"]


def refine_by_direction(
    means: Any,
    selected_index: Any,
    tdoa_tau: float,
    mic_left: Any,
    mic_right: Any,
    radius: float | None = None,
    angle_tolerance: float = 0.35,
    min_size: int = 1,
    c: float = SPEED_OF_SOUND,
) -> np.ndarray:
    """Sorted int64 indices of the selected Gaussians that survive the direction check.

    ``selected_index``: bool (N,) or indices. Clusters of the selection (``radius`` as in
    :func:`spatial_components`, clusters below ``min_size`` dropped as noise) are kept when the angle between
    their centroid and ``direction_cone(tdoa_tau, mic_left, mic_right)`` is ≤ ``angle_tolerance`` rad; the best
    cluster is always kept. A NaN/None ``tdoa_tau`` returns the selection unchanged."""
    m = _means(means)
    idx = candidate_index(selected_index, m.shape[0])
    if idx.size == 0 or tdoa_tau is None or not np.isfinite(tdoa_tau):
        return idx
    from soundmask.audio.tdoa import direction_cone

    clusters = spatial_components(m, idx, radius=radius, min_size=min_size)
    if not clusters:
        return np.zeros(0, dtype=np.int64)
    cone = direction_cone(float(tdoa_tau), mic_left, mic_right, c)
    err = np.array([cone.angle_error(cl.centroid) for cl in clusters])
    keep = err <= angle_tolerance
    keep[int(np.argmin(err))] = True
    return np.sort(np.concatenate([cl.index for cl, k in zip(clusters, keep, strict=True) if k]))


def refine_members(
    means: Any,
    components: Sequence[Component],
    members: dict[int, np.ndarray],
    active: Any,
    taus: Sequence[float],
    frames: Sequence[SceneFrame],
    c: float,
) -> dict[int, np.ndarray]:
    """:func:`refine_by_direction` for each sounding component's ``members``: ``active`` (V, K) says in which
    of the views (``frames``, with their TDoA ``taus`` in s, NaN = unknown) component k sounds; the median TDoA
    of those views and the microphones of the middle one give the direction. A component that keeps nothing is
    dropped; one without a known TDoA or microphones is kept as it is."""
    act_all = np.asarray(active, dtype=bool)
    out = dict(members)
    for k, comp in enumerate(components):
        if comp.id not in out:
            continue
        act = np.flatnonzero(act_all[:, k])
        known = [taus[j] for j in act.tolist() if np.isfinite(taus[j])]
        f = frames[act[len(act) // 2]]
        if known and f.mic_left is not None and f.mic_right is not None:
            keep = refine_by_direction(means, out[comp.id], float(np.median(known)), f.mic_left, f.mic_right, c=c)
            if keep.size:
                out[comp.id] = keep
            else:
                del out[comp.id]
    return out
