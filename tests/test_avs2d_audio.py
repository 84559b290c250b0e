"""The per-frame audio gate of the 2D methods: sound, clicks and silence; reverberant tails are not sound."""

from __future__ import annotations

import numpy as np

from soundmask.avs2d.audio import window_activity
from soundmask.avs2d.base import frame_windows

SR = 16000


def _windows(n: int = 4) -> list[tuple[int, int]]:
    return frame_windows(n, n * SR, SR)


def test_silence_and_zeros_are_inactive():
    act, frac = window_activity(np.zeros(4 * SR, np.float32), SR, _windows())
    assert not act.any() and (frac == 0).all()


def test_continuous_sound_is_active_only_where_it_plays(rng):
    x = np.zeros(4 * SR, np.float32)
    x[SR : 3 * SR] = 0.3 * rng.standard_normal(2 * SR)
    act, _ = window_activity(x + 1e-4 * rng.standard_normal(4 * SR).astype(np.float32), SR, _windows())
    assert act.tolist() == [False, True, True, False]


def test_clock_ticks_count_through_their_onsets(rng):
    x = 1e-4 * rng.standard_normal(4 * SR).astype(np.float32)
    x[SR : 2 * SR] += 0.2 * rng.standard_normal(SR)  # something loud in window 1 sets the level scale
    for t in np.arange(2.1, 3.0, 0.5):  # 20-ms ticks in window 2: far less than 60 % of it sounds
        k = int(t * SR)
        x[k : k + 320] += 0.5 * np.hanning(320) * rng.standard_normal(320)
    act, frac = window_activity(x, SR, _windows())
    assert frac[2] < 0.3 and act[2]
    assert not act[0] and not act[3]


def test_a_reverberant_tail_is_not_an_onset(rng):
    x = 1e-4 * rng.standard_normal(4 * SR).astype(np.float32)
    x[: 2 * SR] += 0.3 * rng.standard_normal(2 * SR)
    tail = 0.3 * rng.standard_normal(SR) * np.exp(-np.arange(SR) / SR * 6.9 / 0.6)  # RT60 0.6 s decay
    x[2 * SR : 3 * SR] += tail.astype(np.float32)
    act, frac = window_activity(x, SR, _windows())
    assert act[:2].all() and not act[2] and not act[3]
    assert 0 < frac[2] < 0.6
