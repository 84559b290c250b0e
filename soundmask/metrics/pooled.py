"""Dataset-level binary J/F accumulators: batch-invariant ``PooledJF`` and AVSBench-convention ``AvsbenchJF``.

Both follow torchmetrics' shape (``update`` / ``compute`` / ``reset`` / ``merge``) without depending on it.

* :class:`PooledJF` sums sufficient statistics over every frame of the dataset (integer pixel counts and an
  exact rational sum), so its result is *exactly* the same whatever the batch size, the frame order or the
  way the work was split between accumulators. This is soundmask's default for its own reports.
* :class:`AvsbenchJF` reproduces the AVSBench test loop (``avs_scripts/avs_s4/test.py``): per batch
  :func:`~soundmask.metrics.avsbench.mask_iou` and :func:`~soundmask.metrics.avsbench.f_score`, averaged
  over batches with ``pyutils.AverageMeter``. Its F depends on the batch size, which it records.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import torch

from soundmask.errors import DataError
from soundmask.metrics.avsbench import (
    AVSBENCH_NUM_THRESHOLDS,
    ArrayLike,
    avsbench_thresholds,
    f_score,
    f_score_curve_counts,
    mask_iou,
)

__all__ = ["AvsbenchJF", "PooledJF"]

_BETA2 = 0.3


def _validated(preds: Any, target: Any, from_logits: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(probabilities, boolean target), both N×H×W on the CPU; raises :class:`DataError` on bad input."""
    p = preds.detach() if isinstance(preds, torch.Tensor) else torch.as_tensor(np.asarray(preds))
    t = target.detach() if isinstance(target, torch.Tensor) else torch.as_tensor(np.asarray(target))
    if p.dim() != 3:
        raise DataError(f"predictions must be N×H×W (3-D), got shape {tuple(p.shape)}")
    if tuple(p.shape) != tuple(t.shape):
        raise DataError(f"prediction shape {tuple(p.shape)} and target shape {tuple(t.shape)} differ")
    if p.shape[0] == 0:
        raise DataError("empty batch (N = 0)", fix="pass at least one frame")
    if not torch.is_floating_point(p):
        p = p.to(torch.float32)
    p = p.cpu()
    if bool(torch.isnan(p).any()):
        raise DataError("predictions contain NaN", fix="check the model output")
    if from_logits:
        p = torch.sigmoid(p)
    elif bool((p < 0).any() or (p > 1).any()):
        raise DataError(
            "probabilities outside [0, 1]", fix="pass probabilities or construct the metric with from_logits=True"
        )
    t = t.cpu()
    if t.dtype != torch.bool:
        if not bool(((t == 0) | (t == 1)).all()):
            raise DataError("target must be a binary 0/1 mask", fix="divide 0/255 masks by 255 or compare > 0")
        t = t != 0
    return p, t


class PooledJF:
    """Batch-invariant binary J and F over a whole dataset (soundmask's ``pooled`` mode).

    Definitions (all sums run over every pixel of every frame seen by :meth:`update`):

    * binarisation for J: ``prob > threshold`` (0.5 — AVSBench's ``sigmoid(logits) > 0.5``);
    * ``j`` — pooled IoU: ``Σ|P ∩ G| / Σ|P ∪ G|`` (1.0 when the union is empty everywhere). Frames with an
      empty GT count: a false positive there enlarges the union;
    * ``j_frame_mean`` — for reference, the mean over frames of the per-frame AVSBench IoU (empty GT:
      ``|¬P ∩ ¬G| / HW``), without AVSBench's ``1e-7`` eps; equals AVSBench J computed as one batch;
    * ``f`` — pooled max-F: with AVSBench's 255 float32 thresholds ``linspace(0, 1 - 1e-10, 255)`` and
      ``prob >= t``, ``TP_t``, ``PRED_t`` and ``GT`` are summed over all frames (empty-GT frames included:
      they add false positives), ``P_t = TP_t / PRED_t`` (0 if ``PRED_t = 0``), ``R_t = TP_t / GT``
      (0 if ``GT = 0``), ``F_t = 1.3·P_t·R_t / (0.3·P_t + R_t)`` (0 if 0/0), ``f = max_t F_t``, with
      ``f_threshold``, ``f_precision``, ``f_recall`` at the maximising threshold (first one on ties).

    All statistics are integers (and an exact ``Fraction`` for ``j_frame_mean``), so the result is exactly
    invariant to batch size, frame order and :meth:`merge` order.

    Args:
        from_logits: inputs are logits (sigmoid applied) if True, probabilities in [0, 1] otherwise.
        threshold: binarisation threshold of J (strict ``>``).
    """

    def __init__(self, from_logits: bool = True, threshold: float = 0.5) -> None:
        self.from_logits = bool(from_logits)
        self.threshold = float(threshold)
        self._thresholds = avsbench_thresholds(AVSBENCH_NUM_THRESHOLDS)
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated so far."""
        self._inter = 0
        self._union = 0
        self._frame_iou_sum = Fraction(0)
        self._frames = 0
        self._empty_frames = 0
        self._tp = np.zeros(self._thresholds.numel(), dtype=np.int64)
        self._pred = np.zeros(self._thresholds.numel(), dtype=np.int64)
        self._gt = 0

    def update(self, preds: ArrayLike, target: ArrayLike) -> None:
        """Add N frames: ``preds`` N×H×W logits (or probabilities), ``target`` N×H×W 0/1 mask."""
        probs, gt = _validated(preds, target, self.from_logits)
        self._update_j(probs > self.threshold, gt)
        self._update_f(probs, gt)

    def _update_j(self, pred: torch.Tensor, gt: torch.Tensor) -> None:
        n = pred.shape[0]
        inter = (pred & gt).reshape(n, -1).sum(1)
        union = (pred | gt).reshape(n, -1).sum(1)
        neither = (~pred & ~gt).reshape(n, -1).sum(1)
        empty = gt.reshape(n, -1).sum(1) == 0
        num_pixels = pred.shape[1] * pred.shape[2]
        self._inter += int(inter.sum())
        self._union += int(union.sum())
        for i, u, z, e in zip(inter.tolist(), union.tolist(), neither.tolist(), empty.tolist(), strict=True):
            frame_iou = z / num_pixels if e else i / u
            self._frame_iou_sum += Fraction(frame_iou)  # exact: order of frames cannot matter
        self._frames += n
        self._empty_frames += int(empty.sum())

    def _update_f(self, probs: torch.Tensor, gt: torch.Tensor) -> None:
        pred_counts, tp_counts = f_score_curve_counts(probs, gt.to(torch.float32), self._thresholds)
        self._pred += pred_counts.sum(0).round().to(torch.int64).numpy()
        self._tp += tp_counts.sum(0).round().to(torch.int64).numpy()
        self._gt += int(gt.sum())

    def merge(self, other: PooledJF) -> None:
        """Add another accumulator's statistics (e.g. from another worker); same settings required."""
        if not isinstance(other, PooledJF) or (other.from_logits, other.threshold) != (
            self.from_logits,
            self.threshold,
        ):
            raise DataError("can only merge a PooledJF with the same from_logits and threshold")
        self._inter += other._inter
        self._union += other._union
        self._frame_iou_sum += other._frame_iou_sum
        self._frames += other._frames
        self._empty_frames += other._empty_frames
        self._tp += other._tp
        self._pred += other._pred
        self._gt += other._gt

    def state_dict(self) -> dict[str, Any]:
        """The sufficient statistics as JSON-ready values (exact: integers, and the rational sum as two integers),
        e.g. to send one worker's accumulator to another process; :meth:`load_state_dict` adds them back."""
        return {
            "from_logits": self.from_logits,
            "threshold": self.threshold,
            "inter": self._inter,
            "union": self._union,
            "frame_iou_sum": [self._frame_iou_sum.numerator, self._frame_iou_sum.denominator],
            "frames": self._frames,
            "empty_frames": self._empty_frames,
            "tp": self._tp.tolist(),
            "pred": self._pred.tolist(),
            "gt": self._gt,
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> PooledJF:
        """An accumulator holding the statistics of :meth:`state_dict` (merge it into another with :meth:`merge`)."""
        m = cls(from_logits=bool(state["from_logits"]), threshold=float(state["threshold"]))
        try:
            tp, pred = np.asarray(state["tp"], np.int64), np.asarray(state["pred"], np.int64)
            if tp.shape != m._tp.shape or pred.shape != m._pred.shape:
                raise ValueError("tp/pred have the wrong number of thresholds")
            m._inter, m._union, m._gt = int(state["inter"]), int(state["union"]), int(state["gt"])
            m._frame_iou_sum = Fraction(int(state["frame_iou_sum"][0]), int(state["frame_iou_sum"][1]))
            m._frames, m._empty_frames = int(state["frames"]), int(state["empty_frames"])
            m._tp, m._pred = tp, pred
        except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError) as e:
            raise DataError(f"not a PooledJF state: {e}") from e
        return m

    def _f_curve(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        tp = self._tp.astype(np.float64)
        pred = self._pred.astype(np.float64)
        prec = np.divide(tp, pred, out=np.zeros_like(tp), where=pred > 0)
        rec = tp / self._gt if self._gt > 0 else np.zeros_like(tp)
        num = (1 + _BETA2) * prec * rec
        den = _BETA2 * prec + rec
        f = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
        return f, prec, rec

    def compute(self) -> dict[str, Any]:
        """``{"j", "j_frame_mean", "f", "f_threshold", "f_precision", "f_recall", "frames", "empty_frames"}``.

        With no frames seen, the scores are NaN and ``frames`` is 0.
        """
        if self._frames == 0:
            nan = float("nan")
            return {
                "j": nan, "j_frame_mean": nan, "f": nan, "f_threshold": nan,
                "f_precision": nan, "f_recall": nan, "frames": 0, "empty_frames": 0,
            }  # fmt: skip
        f, prec, rec = self._f_curve()
        best = int(np.argmax(f))
        return {
            "j": self._inter / self._union if self._union > 0 else 1.0,
            "j_frame_mean": float(self._frame_iou_sum / self._frames),
            "f": float(f[best]),
            "f_threshold": float(self._thresholds[best]),
            "f_precision": float(prec[best]),
            "f_recall": float(rec[best]),
            "frames": self._frames,
            "empty_frames": self._empty_frames,
        }


class AvsbenchJF:
    """AVSBench's dataset J and F: per-batch ``mask_iou`` / ``f_score`` averaged over batches.

    Source: OpenNLPLab/AVSBench ``avs_scripts/avs_s4/test.py`` (same in ``avs_ms3``): each test batch adds
    ``mask_iou(output, mask)`` and ``Eval_Fmeasure(output, mask)`` to a ``pyutils.AverageMeter``; the
    reported numbers are the unweighted means over batches. J is accumulated as a float32 tensor (the meter
    adds tensors) and F as Python floats, as there. Because F is the max of a mean curve *per batch*, it
    depends on the batch size (and a short last batch weighs as much as a full one): ``compute`` reports the
    batch sizes seen so that the number can be reproduced.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated so far."""
        self._records: list[tuple[float, float, int]] = []

    def update(self, logits: ArrayLike, target: ArrayLike) -> tuple[float, float]:
        """Score one batch (N×H×W logits and 0/1 target); returns its (J, F)."""
        j = mask_iou(logits, target)
        f = f_score(logits, target)
        self._records.append((j, f, int(np.shape(logits)[0])))
        return j, f

    def merge(self, other: AvsbenchJF) -> None:
        """Append another accumulator's batches (the result then follows this batch order)."""
        if not isinstance(other, AvsbenchJF):
            raise DataError("can only merge an AvsbenchJF with another AvsbenchJF")
        self._records.extend(other._records)

    def compute(self) -> dict[str, Any]:
        """``{"j", "f", "batches", "frames", "batch_sizes"}``; ``batch_sizes`` lists the distinct sizes."""
        if not self._records:
            return {"j": float("nan"), "f": float("nan"), "batches": 0, "frames": 0, "batch_sizes": []}
        j_sum = torch.zeros((), dtype=torch.float32)
        f_sum = 0.0
        for j, f, _ in self._records:
            j_sum = j_sum + torch.tensor(j, dtype=torch.float32)
            f_sum += f
        n = len(self._records)
        return {
            "j": float((j_sum / n).item()),
            "f": f_sum / n,
            "batches": n,
            "frames": sum(r[2] for r in self._records),
            "batch_sizes": sorted({r[2] for r in self._records}),
        }
