"""Per-frame audio for the 2D methods: which frames' audio windows have sound at all, and their patch embeddings.

A frame whose window is silent (energy chunking of the whole clip, :func:`soundmask.audio.chunk` without the
speech detector) predicts an empty mask whatever the visual model says — nothing sounds, so nothing is a
sounding object. Windows are those of :func:`soundmask.avs2d.base.frame_windows`.
"""

from __future__ import annotations

import numpy as np

from soundmask.audio.chunking import activity, chunk
from soundmask.audio.embed.base import AudioEmbedder

__all__ = ["window_activity", "window_embeddings"]


def window_activity(audio: np.ndarray, sr: int, windows: list[tuple[int, int]], min_fraction: float = 0.3,
                    hop: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """((T,) bool active, (T,) float fraction of the window that the chunker marks as sounding).

    A window is active when at least ``min_fraction`` of it sounds."""
    segments = chunk(audio, sr, speech=False)
    frac = np.zeros(len(windows), np.float32)
    for t, (s0, s1) in enumerate(windows):
        times = np.arange(s0 / sr + hop / 2, s1 / sr, hop)
        if len(times):
            frac[t] = float(activity(segments, times).mean())
    return frac >= min_fraction, frac


def window_embeddings(embedder: AudioEmbedder, audio: np.ndarray, sr: int,
                      windows: list[tuple[int, int]]) -> list[np.ndarray]:
    """Patch embeddings (P_t, D) float32 of each window's audio (channels averaged)."""
    mono = np.asarray(audio, np.float32)
    mono = mono.mean(0) if mono.ndim == 2 else mono
    return [embedder.embed(mono[s0:s1], sr).embeddings for s0, s1 in windows]
