"""``soundmask evaluate``: run a :class:`Segmenter` over an AVSBench-layout split and score it.

Reports both conventions (docs/metrics.md): AVSBench's per-batch-averaged mIoU / F (``miou``, ``fscore``; one
batch = ``batch_size`` clips, AVSBench's test loop uses 1 clip = 5 frames) and the batch-invariant pooled J / F
(``pooled_j``, ``pooled_f``), the latter also per category. Only frames with a ground-truth mask count (S4
train: frame 1). ``frames_per_second`` is the segmenter's throughput (prediction time only, no file reading).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from soundmask.avs2d.base import Segmenter
from soundmask.errors import DataError
from soundmask.metrics.pooled import AvsbenchJF, PooledJF

__all__ = ["EvalReport", "evaluate", "probs_to_logits"]


def probs_to_logits(p: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Logits whose sigmoid is ``p`` (clipped to [eps, 1 − eps]) — AVSBench's metrics take logits."""
    q = np.clip(np.asarray(p, np.float64), eps, 1 - eps)
    return np.log(q / (1 - q)).astype(np.float32)


@dataclass
class EvalReport:
    method: str
    data: str
    split: str
    clips: int
    frames: int
    batch_size: int
    miou: float
    fscore: float
    pooled_j: float
    pooled_f: float
    per_category: dict[str, dict[str, float]]
    frames_per_second: float
    seconds: float
    empty_frames: int
    empty_predicted_on_empty: float
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(
    segmenter: Segmenter,
    dataset: Sequence[Any],
    batch_size: int = 1,
    *,
    data: str = "",
    split: str = "",
    progress: Callable[[int, int], None] | None = None,
    options: dict[str, Any] | None = None,
) -> EvalReport:
    """Score ``segmenter`` on every clip of ``dataset`` (clips with ``masks``; see the module docstring)."""
    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size}")
    n = len(dataset)
    if n == 0:
        raise DataError("the dataset has no clips", data, "check --split")
    pooled = PooledJF(from_logits=False)
    per_cat: dict[str, PooledJF] = {}
    bench = AvsbenchJF()
    pending_p: list[np.ndarray] = []
    pending_g: list[np.ndarray] = []
    pending_clips = 0
    frames = 0
    seconds = 0.0
    empty, empty_ok = 0, 0
    for i in range(n):
        clip = dataset[i]
        if clip.masks is None:
            raise DataError(f"clip {clip.name} has no ground-truth masks", data, "evaluate a split with masks")
        t0 = time.perf_counter()
        pred = segmenter.predict(clip.frames, clip.audio, clip.sample_rate, clip.frame_times)
        seconds += time.perf_counter() - t0
        frames += len(clip.frames)
        valid = clip.mask_valid if clip.mask_valid is not None else np.ones(len(clip.frames), bool)
        p, g = pred.masks[valid], clip.masks[valid]
        if len(p) == 0:
            continue
        pooled.update(p, g)
        per_cat.setdefault(clip.category or "?", PooledJF(from_logits=False)).update(p, g)
        ge = g.reshape(len(g), -1).sum(1) == 0
        empty += int(ge.sum())
        empty_ok += int(((p > 0.5).reshape(len(p), -1).sum(1) == 0)[ge].sum())
        pending_p.append(p)
        pending_g.append(g)
        pending_clips += 1
        if pending_clips == batch_size:
            bench.update(probs_to_logits(np.concatenate(pending_p)), np.concatenate(pending_g))
            pending_p, pending_g, pending_clips = [], [], 0
        if progress is not None:
            progress(i + 1, n)
    if pending_clips:
        bench.update(probs_to_logits(np.concatenate(pending_p)), np.concatenate(pending_g))
    b = bench.compute()
    pj = pooled.compute()
    cats = {}
    for c, m in sorted(per_cat.items()):
        r = m.compute()
        cats[c] = {"j": r["j"], "f": r["f"], "frames": r["frames"]}
    return EvalReport(
        method=getattr(segmenter, "name", type(segmenter).__name__),
        data=str(data),
        split=split,
        clips=n,
        frames=int(pj["frames"]),
        batch_size=batch_size,
        miou=float(b["j"]),
        fscore=float(b["f"]),
        pooled_j=float(pj["j"]),
        pooled_f=float(pj["f"]),
        per_category=cats,
        frames_per_second=frames / seconds if seconds > 0 else float("nan"),
        seconds=seconds,
        empty_frames=empty,
        empty_predicted_on_empty=empty_ok / empty if empty else float("nan"),
        options=dict(options or {}),
    )
