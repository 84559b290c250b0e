"""The training views that lifting reads, as one typed bundle (:class:`LiftViews`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from soundmask.data.types import Camera

if TYPE_CHECKING:
    from soundmask.data.types import SceneFrame

__all__ = ["LiftViews"]


@dataclass
class LiftViews:
    """View j of lifting: its camera ``cameras[j]``, time ``times[j]`` (s; None for a static model), 2D sound mask
    ``masks[j]`` (H, W bool), which Gaussian centres it sees ``visible[j]`` (V, N bool; None: every centre in its
    image), its scene frame ``frames[j]`` (the microphones) and its audio window ``windows[j]``."""

    cameras: Sequence[Camera]
    times: Sequence[float | None]
    masks: Sequence[np.ndarray]
    visible: np.ndarray | None = None
    frames: Sequence[SceneFrame] = field(default_factory=list)
    windows: Sequence[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.cameras)

    def subset(self, which: Sequence[int] | np.ndarray) -> LiftViews:
        """Views ``which`` (positions), in that order."""
        idx = [int(j) for j in which]
        return LiftViews(
            [self.cameras[j] for j in idx],
            [self.times[j] for j in idx],
            [self.masks[j] for j in idx],
            None if self.visible is None else self.visible[idx],
            [self.frames[j] for j in idx] if self.frames else [],
            [self.windows[j] for j in idx] if self.windows else [],
        )
