"""Per-frame audio for the 2D methods: which frames' audio windows have sound at all, and their patch embeddings.

A frame whose window is silent predicts an empty mask whatever the visual model says — nothing sounds, so
nothing is a sounding object. Windows are those of :func:`soundmask.avs2d.base.frame_windows`.

Activity of a window, from the energy profile of the whole clip (:func:`soundmask.audio.chunking.activity_profile`,
20-ms frames every 10 ms, noise floor and hysteresis thresholds; no minimum segment length, so clock ticks and
clicks count): a window is **active** when at least ``min_active`` of its frames are above the thresholds, *or*
it holds an **onset** — a frame above the start threshold that is ``onset_db`` louder than the quietest frame
before it in the window. The onset rule keeps short transients (ticks, claps, a single bark) and ignores the
reverberant tail of a sound that ended with the previous window, whose level only falls.
"""

from __future__ import annotations

import numpy as np

from soundmask.audio.chunking import _hysteresis, activity_profile
from soundmask.audio.embed.base import AudioEmbedder

__all__ = ["window_activity", "window_embeddings"]


def window_activity(
    audio: np.ndarray, sr: int, windows: list[tuple[int, int]], min_active: float = 0.6, onset_db: float = 10.0
) -> tuple[np.ndarray, np.ndarray]:
    """((T,) bool active, (T,) float fraction of the window's level frames that sound); see the module notes."""
    prof = activity_profile(audio, sr)
    on = _hysteresis(prof)
    level = prof.level_db
    frac = np.zeros(len(windows), np.float32)
    onset = np.zeros(len(windows), bool)
    for t, (s0, s1) in enumerate(windows):
        sel = (prof.times >= s0 / sr) & (prof.times < s1 / sr)
        if not sel.any():
            continue
        frac[t] = float(on[sel].mean())
        lv = level[sel]
        rise = lv - np.minimum.accumulate(lv)
        onset[t] = bool(((rise >= onset_db) & (lv >= prof.on_db)).any())
    return (frac >= min_active) | onset, frac


def window_embeddings(
    embedder: AudioEmbedder, audio: np.ndarray, sr: int, windows: list[tuple[int, int]]
) -> list[np.ndarray]:
    """Patch embeddings (P_t, D) float32 of each window's audio (channels averaged)."""
    mono = np.asarray(audio, np.float32)
    mono = mono.mean(0) if mono.ndim == 2 else mono
    return [embedder.embed(mono[s0:s1], sr).embeddings for s0, s1 in windows]
