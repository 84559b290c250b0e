"""Records the vision stage hands on: class-agnostic mask proposals of one image."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Proposals"]


@dataclass
class Proposals:
    """``N`` candidate object masks of one ``H×W`` image, best first.

    ``masks`` (N, H, W) bool; ``scores`` (N,) float32 confidence in [0, 1]; ``boxes`` (N, 4) float32
    ``x0, y0, x1, y1`` in pixels (x1/y1 exclusive); ``names`` optional class names from the source (e.g. a
    COCO detector's labels), one per mask or empty; ``source`` the proposer's registry name.
    """

    masks: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    names: tuple[str, ...] = ()
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.masks = np.asarray(self.masks, dtype=bool)
        if self.masks.ndim != 3:
            raise ValueError(f"Proposals.masks must be N×H×W, got shape {self.masks.shape}")
        n = self.masks.shape[0]
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(n)
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(n, 4)
        if self.names and len(self.names) != n:
            raise ValueError(f"Proposals.names has {len(self.names)} entries for {n} masks")
        self.names = tuple(self.names)

    def __len__(self) -> int:
        return int(self.masks.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        return int(self.masks.shape[1]), int(self.masks.shape[2])

    @classmethod
    def empty(cls, height: int, width: int, source: str = "") -> Proposals:
        return cls(
            np.zeros((0, height, width), bool), np.zeros(0, np.float32), np.zeros((0, 4), np.float32), source=source
        )

    def subset(self, idx: Any) -> Proposals:
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        return Proposals(
            self.masks[idx],
            self.scores[idx],
            self.boxes[idx],
            tuple(self.names[i] for i in idx) if self.names else (),
            self.source,
            dict(self.extra),
        )


def mask_boxes(masks: np.ndarray) -> np.ndarray:
    """Tight ``x0, y0, x1, y1`` boxes (x1/y1 exclusive) of N×H×W masks; an empty mask gets ``0, 0, 0, 0``."""
    masks = np.asarray(masks, dtype=bool)
    out = np.zeros((masks.shape[0], 4), np.float32)
    for i, m in enumerate(masks):
        ys = np.flatnonzero(m.any(1))
        xs = np.flatnonzero(m.any(0))
        if len(ys):
            out[i] = (xs[0], ys[0], xs[-1] + 1, ys[-1] + 1)
    return out
