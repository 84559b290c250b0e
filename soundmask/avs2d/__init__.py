"""2D audio-visual segmentation methods (SeAC, AVSC, SDAVS) behind one :class:`Segmenter` interface.

``get_method("seac")`` returns the method's class; ``load_segmenter("seac", checkpoint=None)`` a ready
segmenter (the shipped default weights when no checkpoint is given). Adding a method: one module with a
:class:`Segmenter` subclass and one line in :data:`METHODS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soundmask.avs2d.base import FrameObjects, Prediction, Segmenter
from soundmask.config import option
from soundmask.errors import ConfigError
from soundmask.registry import resolve

__all__ = [
    "DEFAULT_METHOD",
    "METHODS",
    "FrameObjects",
    "MethodConfig",
    "Prediction",
    "Segmenter",
    "get_method",
    "load_segmenter",
]

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


DEFAULT_METHOD = "sdavs"
"""The default 2D method of every command: the best measured on held-out generated and real frames
(docs/avs2d.md)."""

SET_HELP = "method option KEY=VALUE (repeatable); `soundmask methods` lists them"


@dataclass
class MethodConfig:
    """Which 2D AVS method makes the sound masks, with which weights and options (``--method``, ``--checkpoint``,
    ``--set KEY=VALUE``); configs of the commands that run a method contain or extend it."""

    method: str = option(DEFAULT_METHOD, "2D AVS method: seac | avsc | sdavs (`soundmask methods`)")
    checkpoint: str = option("", "checkpoint of the 2D method (default: its shipped weights)")
    method_options: tuple[str, ...] = option((), SET_HELP, flag="--set")

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"unknown 2D AVS method {self.method!r}", fix=f"use one of {', '.join(METHODS)}")
        self.method_options = tuple(self.method_options)
        self.options()  # a bad --set fails here, before any work

    def options(self) -> dict[str, Any]:
        """The ``--set`` options, typed, for the method's option classes."""
        from soundmask.config import parse_overrides

        return parse_overrides(self.method_options, *get_method(self.method).option_classes())

    def inference_options(self) -> dict[str, Any]:
        """The options that configure prediction (the method's first option class), not training."""
        from soundmask.config import fields_of

        classes = get_method(self.method).option_classes()
        return fields_of(classes[0], self.options()) if classes else {}

    def load(self) -> Segmenter:
        """The ready segmenter: the method with its checkpoint (or shipped weights) and inference options."""
        return load_segmenter(self.method, self.checkpoint or None, **self.inference_options())
