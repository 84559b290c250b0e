"""2D audio-visual segmentation methods (SeAC, AVSC, SDAVS) behind one :class:`Segmenter` interface.

``get_method("seac")`` returns the method's class; ``load_segmenter("seac", checkpoint=None)`` a ready
segmenter (the shipped default weights when no checkpoint is given). Adding a method: one module with a
:class:`Segmenter` subclass and one line in :data:`METHODS`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from soundmask.avs2d.base import FrameObjects, Prediction, Segmenter
from soundmask.registry import resolve

__all__ = ["METHODS", "FrameObjects", "Prediction", "Segmenter", "get_method", "load_segmenter"]

#: name → ``"module:Class"`` (imported on first use).
METHODS: dict[str, Any] = {
    "seac": "soundmask.avs2d.seac.segmenter:SeAC",
    "avsc": "soundmask.avs2d.avsc.segmenter:AVSC",
    "sdavs": "soundmask.avs2d.sdavs.segmenter:SDAVS",
}


def get_method(name: str) -> type[Segmenter]:
    """The :class:`Segmenter` subclass registered as ``name``."""
    return resolve(METHODS, name, "method")


def load_segmenter(name: str, checkpoint: str | Path | None = None, **options: Any) -> Segmenter:
    """A ready :class:`Segmenter`: method ``name`` with ``checkpoint`` (None: the shipped default)."""
    return get_method(name).load(checkpoint, **options)
