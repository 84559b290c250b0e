"""Gaussians → objects: the grouping methods behind one call (:func:`group_gaussians`).

* ``geometry`` — connected components of the Gaussians off the scene's large planes (needs no mask); with
  ``sound_split`` > 0 a component mostly silent under the sound masks' votes loses its voted part to a component
  of its own, so an object is not lost in the table it stands on (:func:`soundmask.lift.grouping.split_by_sound`).
* ``instances`` — the majority vote of 2D instance-id masks (:func:`soundmask.lift.voting.vote_instances`).
* ``affinity`` — SAGA-style affinity features trained on the instance masks, clustered
  (:func:`soundmask.lift.affinity.group_by_affinity`).
* ``spatial`` — connected components of the Gaussians the sound masks vote for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch

from soundmask.data.types import Camera
from soundmask.errors import ConfigError
from soundmask.lift.grouping import (
    PLANE_TOLERANCE,
    Component,
    components_from_labels,
    geometric_components,
    spatial_components,
    split_by_sound,
)
from soundmask.lift.voting import sounded_gaussians, vote_instances
from soundmask.splat.gaussians import Gaussians

__all__ = ["GROUPINGS", "Grouping", "group_gaussians"]

Grouping = Literal["instances", "affinity", "geometry", "spatial"]
GROUPINGS: tuple[str, ...] = ("instances", "affinity", "geometry", "spatial")


def group_gaussians(how: Grouping, gaussians: Gaussians, cameras: Sequence[Camera], sound_masks: Sequence[np.ndarray],
                    *, times: Sequence[float | None] | None = None, visible: Any = None,
                    instance_masks: Sequence[np.ndarray] | None = None, min_size: int = 20,
                    plane_tolerance: float = PLANE_TOLERANCE, sound_split: float = 0.8,
                    any_threshold: float = 0.15) -> list[Component]:
    """The objects of ``gaussians`` by grouping ``how`` (see the module docstring), from the training views
    (``cameras``, their 2D ``sound_masks``, ``times``, ``visible`` (V, N) centres, and for ``instances`` /
    ``affinity`` their ``instance_masks``). Components smaller than ``min_size`` Gaussians are dropped."""
    means = gaussians.means.detach().numpy()

    def sounded() -> np.ndarray:
        return sounded_gaussians(gaussians, cameras, sound_masks, times=times, visible=visible,
                                 any_threshold=any_threshold)

    if how == "geometry":
        with torch.no_grad():
            op = gaussians.opacities().reshape(-1).numpy()
        comps = geometric_components(means, op, min_size=min_size, inlier_fraction=plane_tolerance)
        if sound_split > 0:
            comps = split_by_sound(comps, means, sounded(), max_share=sound_split, min_size=min_size)
        return comps
    if how in ("instances", "affinity"):
        if instance_masks is None:
            raise ConfigError(f"grouping {how!r} needs instance masks", fix="use the geometry grouping")
        if how == "instances":
            labels = vote_instances(gaussians, cameras, instance_masks, times=times, visible=visible)
        else:
            from soundmask.lift.affinity import group_by_affinity

            labels = group_by_affinity(gaussians, cameras, instance_masks, times=times)
        return components_from_labels(labels, means, min_size=min_size)
    if how == "spatial":
        return spatial_components(means, sounded(), min_size=min_size)
    raise ConfigError(f"unknown grouping {how!r}", fix=f"use one of {', '.join(GROUPINGS)}")
