"""FrameMemo: the visual stages run once per distinct frame across calls (static cameras, robust evaluation)."""

from __future__ import annotations

import numpy as np

from soundmask.avs2d.features import FrameMemo, frame_digest


def test_each_distinct_frame_is_computed_once_and_results_come_back_in_order():
    rng = np.random.default_rng(0)
    a, b, c = (rng.integers(0, 255, (4, 4, 3), dtype=np.uint8) for _ in range(3))
    seen: list[bytes] = []

    def compute(batch: np.ndarray) -> list[float]:
        seen.extend(frame_digest(f) for f in batch)
        return [float(f.mean()) for f in batch]

    memo = FrameMemo(size=2)
    assert memo.map(np.stack([a, b, a]), compute) == [a.mean(), b.mean(), a.mean()]
    assert len(seen) == 2  # a once, b once
    assert memo.map(np.stack([b, a]), compute) == [b.mean(), a.mean()] and len(seen) == 2  # both remembered
    memo.map(np.stack([c]), compute)  # size 2: c pushes out the least recently used (b)
    assert len(seen) == 3
    memo.map(np.stack([b]), compute)
    assert len(seen) == 4 and seen[-1] == frame_digest(b)
    assert frame_digest(a) == frame_digest(a.copy()) != frame_digest(b)
