"""Gaussians → objects: the grouping methods behind one call (:func:`group_gaussians`).

* ``geometry`` — connected components of the Gaussians off the scene's large planes (needs no mask; each rigid
  body of a 4D model is one component of its own); with
  ``sound_split`` > 0 a component mostly silent under the sound masks' votes loses its voted part to a component
  of its own, so an object is not lost in the table it stands on (:func:`soundmask.lift.grouping.split_by_sound`).
* ``instances`` — the majority vote of 2D instance-id masks (:func:`soundmask.lift.voting.vote_instances`).
* ``affinity`` — SAGA-style affinity features trained on the instance masks, clustered
  (:func:`soundmask.lift.affinity.group_by_affinity`).
* ``spatial`` — connected components of the Gaussians the sound masks vote for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

import numpy as np
import torch

from soundmask.errors import ConfigError
from soundmask.lift.grouping import (
    Component,
    components_from_labels,
    geometric_components,
    spatial_components,
    split_by_sound,
    with_bodies,
)
from soundmask.lift.views import LiftViews
from soundmask.lift.voting import sounded_gaussians, vote_instances
from soundmask.splat.gaussians import Gaussians

__all__ = ["GROUPINGS", "Grouping", "GroupingOptions", "group_gaussians"]

Grouping = Literal["instances", "affinity", "geometry", "spatial"]
GROUPINGS: tuple[str, ...] = ("instances", "affinity", "geometry", "spatial")


class GroupingOptions(Protocol):
    """The grouping settings :func:`group_gaussians` reads (e.g. a ``LiftConfig``): the smallest object in
    Gaussians; geometry's plane tolerance (share of the scene's extent) and sound split (split a component voted
    for by less than this share; 0: off); the share of positive votes above which a Gaussian is voted for."""

    @property
    def min_component(self) -> int: ...
    @property
    def plane_tolerance(self) -> float: ...
    @property
    def sound_split(self) -> float: ...
    @property
    def any_threshold(self) -> float: ...


def group_gaussians(
    how: Grouping,
    gaussians: Gaussians,
    views: LiftViews,
    options: GroupingOptions,
    instance_masks: Sequence[np.ndarray] | None = None,
    proposals: Sequence[np.ndarray] | None = None,
) -> list[Component]:
    """The objects of ``gaussians`` by grouping ``how`` (see the module docstring), from the training ``views``
    (their 2D sound masks; for ``instances`` / ``affinity`` their ``instance_masks``; for ``geometry``, optional
    instance ``proposals``, one id map per view, 0 = background)."""
    means = gaussians.means.detach().numpy()
    min_size = options.min_component

    def sounded() -> np.ndarray:
        return sounded_gaussians(
            gaussians,
            views.cameras,
            views.masks,
            times=views.times,
            visible=views.visible,
            any_threshold=options.any_threshold,
        )

    if how == "geometry":
        with torch.no_grad():
            op = gaussians.opacities().reshape(-1).numpy()
        keep = None
        if proposals is not None:
            from soundmask.lift.splitting import objectness

            keep = objectness(gaussians, views.cameras, proposals, times=views.times, visible=views.visible)
        # a rigid body (4D) is one object: geometry groups only what stands still
        group = np.zeros(len(means), np.int64) if gaussians.group is None else gaussians.group.numpy()
        still = np.flatnonzero(group == 0)
        comps = geometric_components(
            means[still],
            op[still],
            min_size=min_size,
            keep=None if keep is None else np.asarray(keep)[still],
            inlier_fraction=options.plane_tolerance,
        )
        comps = with_bodies(comps, group, still, means.astype(np.float64), min_size)
        if proposals is not None:
            from soundmask.lift.splitting import split_by_instances

            comps = split_by_instances(
                comps, gaussians, views.cameras, proposals, times=views.times, visible=views.visible, min_size=min_size
            )
        if options.sound_split > 0:
            comps = split_by_sound(comps, means, sounded(), max_share=options.sound_split, min_size=min_size)
        return comps
    if how in ("instances", "affinity"):
        if instance_masks is None:
            raise ConfigError(f"grouping {how!r} needs instance masks", fix="use the geometry grouping")
        if how == "instances":
            labels = vote_instances(gaussians, views.cameras, instance_masks, times=views.times, visible=views.visible)
        else:
            from soundmask.lift.affinity import group_by_affinity

            labels = group_by_affinity(gaussians, views.cameras, instance_masks, times=views.times)
        return components_from_labels(labels, means, min_size=min_size)
    if how == "spatial":
        return spatial_components(means, sounded(), min_size=min_size)
    raise ConfigError(f"unknown grouping {how!r}", fix=f"use one of {', '.join(GROUPINGS)}")
