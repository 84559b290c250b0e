"""Negative audio for training the 2D methods to *listen* (issue 30): sounds that belong to no visible object.

A model trained only on (frame, its own audio) pairs learns to segment the salient object whatever it hears
(Li et al. 2025, AVSBench-Robust). Training with balanced negatives shows it frames whose audio is

* **ambient noise** (:func:`noise_waves`: coloured noise and real ambience recordings,
  :mod:`soundmask.audio.noise`, at a random level) — the target is an empty mask;
* **off-screen sound**: another clip's audio whose category is visible nowhere in this frame (drawn by
  :class:`~soundmask.avs2d.supervised.CounterfactualAudio` for the supervised methods, and by the other images of a
  SeAC batch) — empty as well.

Silence needs no training: a silent window predicts nothing (:func:`soundmask.avs2d.audio.window_activity`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["noise_waves"]


def noise_waves(sr: int, count: int, seconds: float = 1.0, seed: int = 0) -> list[np.ndarray]:
    """``count`` mono float32 windows of ambient noise of ``seconds`` at ``sr`` Hz at random levels (RMS 0.01–0.2),
    drawn in turn from every source of :func:`soundmask.audio.noise.noise_sources` (the robust evaluation's
    ``noise`` condition uses the same sources; a different seed, so not the same excerpts)."""
    from soundmask.audio.noise import noise_sources

    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    sources = noise_sources()
    return [
        (sources[i % len(sources)].render(1, n, sr, rng)[0] * 10 ** rng.uniform(-2.0, np.log10(0.2))).astype(np.float32)
        for i in range(count)
    ]
