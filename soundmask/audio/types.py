"""Records the audio front-end's stages exchange (chunking → tagging → time delay)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Segment", "Tagging", "Tdoa"]


@dataclass
class Segment:
    """A stretch of audio where something sounds: ``start``/``end`` in seconds from the start of the file,
    ``score`` the activity score in [0, 1] (mean over the segment), ``kind`` what found it
    (``"sound"`` energy/YAMNet, ``"speech"`` silero-vad)."""

    start: float
    end: float
    score: float = 1.0
    kind: str = "sound"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (np.isfinite(self.start) and np.isfinite(self.end)) or self.end < self.start:
            raise ValueError(f"Segment needs finite start <= end, got [{self.start}, {self.end}]")

    @property
    def duration(self) -> float:
        return self.end - self.start

    def overlaps(self, t0: float, t1: float) -> bool:
        return self.start < t1 and t0 < self.end


@dataclass
class Tagging:
    """Audio tags of one stretch of audio: ``scores`` (num_classes,) in [0, 1] over ``labels``,
    and an ``embedding`` (D,) from the same model (may be empty when the model has none)."""

    labels: tuple[str, ...]
    scores: np.ndarray
    embedding: np.ndarray
    model: str = ""
    start: float = 0.0
    end: float = 0.0

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` best (label, score) pairs, best first."""
        idx = np.argsort(-self.scores, kind="stable")[:k]
        return [(self.labels[i], float(self.scores[i])) for i in idx]


@dataclass
class Tdoa:
    """Time difference of arrival between the two microphones of a stereo pair.

    ``tau`` seconds, **positive when the sound reaches the left microphone (channel 0) first**
    (τ = t_right − t_left, the convention of :func:`soundmask.synth.acoustics.geometric_tdoa`);
    ``confidence`` in [0, 1]; ``azimuth`` radians from the pair's broadside (positive towards the left
    microphone), NaN when unknown."""

    tau: float
    confidence: float = 1.0
    azimuth: float = float("nan")
    start: float = 0.0
    end: float = 0.0
