"""The common interface of every 2D audio-visual segmentation method.

A method is a :class:`Segmenter`: ``predict(frames, audio, sr) -> Prediction``. ``frames`` is a (T, H, W, 3)
uint8 RGB stack, ``audio`` a (C, S) or (S,) float32 waveform of the whole clip at ``sr`` Hz, and frame ``t``
owns the audio window ``[frame_times[t], frame_times[t] + window)`` (AVSBench: 1 s per frame, frame ``t`` at
``t`` seconds). The :class:`Prediction` holds a soft sound mask per frame plus the per-object masks, scores
and labels the method found.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from soundmask.errors import DataError

__all__ = ["FrameObjects", "Prediction", "Segmenter", "check_inputs", "frame_windows"]


@dataclass
class FrameObjects:
    """The candidate objects of one frame: ``masks`` (N, H, W) bool, ``scores`` (N,) the method's
    sounding score per object in [0, 1], ``labels`` a category name per object ("" when unknown) and
    ``confidence`` (N,) the raw (un-normalised) audio-object similarity."""

    masks: np.ndarray
    scores: np.ndarray
    labels: tuple[str, ...] = ()
    confidence: np.ndarray | None = None


@dataclass
class Prediction:
    """Output of :meth:`Segmenter.predict` for a clip of ``T`` frames.

    ``masks`` (T, H, W) float32 in [0, 1]: the audio-visual mask ``O`` (a pixel sounds when > 0.5);
    ``semantic`` (T, H, W) int32, optional: ``1 + category index`` of the sounding object, 0 = background
    (SeAC Eq. 5; index into ``categories``); ``objects``: per frame, the candidates behind the mask;
    ``active`` (T,) bool: whether the audio window of the frame had any sound at all.
    """

    masks: np.ndarray
    objects: list[FrameObjects] = field(default_factory=list)
    semantic: np.ndarray | None = None
    categories: tuple[str, ...] = ()
    active: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def binary(self, threshold: float = 0.5) -> np.ndarray:
        """(T, H, W) bool: ``masks > threshold``."""
        return self.masks > threshold


def check_finite_checkpoint(ckpt: Any, path: str | Path, fix: str = "retrain it or use another checkpoint") -> None:
    """:class:`ConfigError` naming ``path`` and the first tensor of ``ckpt`` (nested dicts/lists) holding NaN/inf."""
    import torch

    from soundmask.errors import ConfigError

    def walk(x: Any, where: str) -> None:
        if torch.is_tensor(x):
            if x.is_floating_point() and not torch.isfinite(x).all():
                raise ConfigError(f"the checkpoint holds NaN or infinite weights ({where.strip('.')})", path, fix)
        elif isinstance(x, dict):
            for k, v in x.items():
                walk(v, f"{where}.{k}")
        elif isinstance(x, (list, tuple)):
            for i, v in enumerate(x):
                walk(v, f"{where}[{i}]")

    walk(ckpt, "")


def check_inputs(frames: Any, audio: Any, sr: int, where: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``frames`` (T, H, W, 3) uint8 and ``audio`` (C, S) float32; :class:`DataError` otherwise."""
    frames = np.asarray(frames)
    if frames.ndim == 3 and frames.shape[-1] == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0 or 0 in frames.shape[1:3]:
        raise DataError(f"frames must be a non-empty T×H×W×3 RGB stack, got shape {frames.shape}", where)
    if frames.dtype != np.uint8:
        raise DataError(f"frames must be uint8 RGB, got {frames.dtype}", where, fix="pass 0..255 uint8 images")
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None]
    if audio.ndim != 2 or audio.shape[1] == 0:
        raise DataError(f"audio must be (channels, samples) and non-empty, got shape {audio.shape}", where)
    if not np.isfinite(audio).all():
        raise DataError("audio contains NaN or infinite samples", where, fix="re-export the audio")
    if not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise DataError(f"sample rate must be a positive integer, got {sr!r}", where)
    return frames, audio


def frame_windows(
    num_frames: int, num_samples: int, sr: int, frame_times: Any = None, window: float | None = None
) -> list[tuple[int, int]]:
    """Sample ranges ``[s0, s1)`` of the audio window each frame owns.

    Default: frame ``t`` at ``frame_times[t]`` (``t · duration / T`` when not given) owns up to the next
    frame's time (the last frame up to the end of the audio); ``window`` fixes the length instead. Windows
    are clipped to the audio and are never empty (at least one sample).
    """
    duration = num_samples / sr
    if frame_times is None:
        times = np.arange(num_frames) * (duration / num_frames)
    else:
        times = np.asarray(frame_times, dtype=np.float64).reshape(-1)
        if len(times) != num_frames:
            raise DataError(f"{len(times)} frame times for {num_frames} frames", fix="pass one time per frame")
    out = []
    for t in range(num_frames):
        if window is not None:
            end = times[t] + window
        else:
            end = times[t + 1] if t + 1 < num_frames else max(duration, times[t] + 1e-3)
        s0 = int(np.clip(round(times[t] * sr), 0, num_samples - 1))
        s1 = int(np.clip(round(end * sr), s0 + 1, num_samples))
        out.append((s0, s1))
    return out


class Segmenter:
    """Base class of the 2D methods. ``name`` is the registry name.

    Subclasses implement :meth:`predict` and the class methods :meth:`load` (from a checkpoint, or the
    shipped default when ``checkpoint`` is None) and, when trainable, :meth:`train`.
    """

    name: ClassVar[str] = "base"

    def predict(self, frames: np.ndarray, audio: np.ndarray, sr: int, frame_times: Any = None) -> Prediction:
        raise NotImplementedError

    @classmethod
    def load(cls, checkpoint: str | Path | None = None, **options: Any) -> Segmenter:
        raise NotImplementedError

    @classmethod
    def train(cls, data: Any, out: str | Path, **options: Any) -> dict[str, Any]:
        """Train into checkpoint ``out`` from ``data`` (a folder, several, or None for the method's default)."""
        raise NotImplementedError(f"method {cls.name!r} is not trainable")

    @classmethod
    def option_classes(cls) -> tuple[type, ...]:
        """The dataclasses of the method's ``--set`` options: inference first, then training."""
        return ()
