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

__all__ = ["ClipScores", "EvalReport", "evaluate", "probs_to_logits"]


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


class ClipScores:
    """The sufficient statistics of :func:`evaluate` (validate → :meth:`update` per clip → :meth:`compute`): pooled
    J/F overall and per category, AVSBench's per-batch J/F (``batch_size`` clips a batch) and how often an empty
    ground truth gets an empty prediction. Only frames with a ground-truth mask count."""

    def __init__(self, batch_size: int = 1) -> None:
        if batch_size < 1:
            raise DataError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.pooled = PooledJF(from_logits=False)
        self.per_category: dict[str, PooledJF] = {}
        self.bench = AvsbenchJF()
        self._pending_p: list[np.ndarray] = []
        self._pending_g: list[np.ndarray] = []
        self.empty = 0
        self.empty_ok = 0

    def update(self, clip: Any, masks: np.ndarray, where: str = "") -> None:
        """Add one clip: ``masks`` (T, H, W) the predicted probabilities for ``clip``'s frames."""
        if clip.masks is None:
            raise DataError(f"clip {clip.name} has no ground-truth masks", where or None, "evaluate a split with masks")
        valid = clip.mask_valid if clip.mask_valid is not None else np.ones(len(clip.frames), bool)
        p, g = np.asarray(masks)[valid], clip.masks[valid]
        if len(p) == 0:
            return
        self.pooled.update(p, g)
        self.per_category.setdefault(clip.category or "?", PooledJF(from_logits=False)).update(p, g)
        ge = g.reshape(len(g), -1).sum(1) == 0
        self.empty += int(ge.sum())
        self.empty_ok += int(((p > 0.5).reshape(len(p), -1).sum(1) == 0)[ge].sum())
        self._pending_p.append(p)
        self._pending_g.append(g)
        if len(self._pending_p) == self.batch_size:
            self._flush(self.bench)

    def _flush(self, bench: AvsbenchJF) -> None:
        bench.update(probs_to_logits(np.concatenate(self._pending_p)), np.concatenate(self._pending_g))
        self._pending_p, self._pending_g = [], []

    def compute(self) -> dict[str, Any]:
        """``miou``, ``fscore`` (AVSBench), ``pooled_j``, ``pooled_f``, ``per_category``, ``frames``,
        ``empty_frames`` and ``empty_predicted_on_empty``; a short last batch counts as a batch."""
        if self._pending_p:
            self._flush(self.bench)
        b = self.bench.compute()
        pj = self.pooled.compute()
        cats = {}
        for c, m in sorted(self.per_category.items()):
            r = m.compute()
            cats[c] = {"j": r["j"], "f": r["f"], "frames": r["frames"]}
        return {
            "miou": float(b["j"]),
            "fscore": float(b["f"]),
            "pooled_j": float(pj["j"]),
            "pooled_f": float(pj["f"]),
            "per_category": cats,
            "frames": int(pj["frames"]),
            "empty_frames": self.empty,
            "empty_predicted_on_empty": self.empty_ok / self.empty if self.empty else float("nan"),
        }


def evaluate(
    segmenter: Segmenter,
    dataset: Sequence[Any],
    batch_size: int = 1,
    *,
    data: str = "",
    split: str = "",
    progress: Callable[[int, int], None] | None = None,
    options: dict[str, Any] | None = None,
    scores: ClipScores | None = None,
) -> EvalReport:
    """Score ``segmenter`` on every clip of ``dataset`` (clips with ``masks``; see the module docstring).
    ``scores``: accumulate into this (e.g. to merge its pooled statistics with other runs'), else a new one."""
    scores = scores if scores is not None else ClipScores(batch_size)
    n = len(dataset)
    if n == 0:
        raise DataError("the dataset has no clips", data, "check --split")
    frames = 0
    seconds = 0.0
    for i in range(n):
        clip = dataset[i]
        if clip.masks is None:
            raise DataError(f"clip {clip.name} has no ground-truth masks", data, "evaluate a split with masks")
        t0 = time.perf_counter()
        pred = segmenter.predict(clip.frames, clip.audio, clip.sample_rate, clip.frame_times)
        seconds += time.perf_counter() - t0
        frames += len(clip.frames)
        scores.update(clip, pred.masks, data)
        if progress is not None:
            progress(i + 1, n)
    s = scores.compute()
    return EvalReport(
        method=getattr(segmenter, "name", type(segmenter).__name__),
        data=str(data),
        split=split,
        clips=n,
        frames=s["frames"],
        batch_size=batch_size,
        miou=s["miou"],
        fscore=s["fscore"],
        pooled_j=s["pooled_j"],
        pooled_f=s["pooled_f"],
        per_category=s["per_category"],
        frames_per_second=frames / seconds if seconds > 0 else float("nan"),
        seconds=seconds,
        empty_frames=s["empty_frames"],
        empty_predicted_on_empty=s["empty_predicted_on_empty"],
        options=dict(options or {}),
    )
