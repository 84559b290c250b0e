"""Sound-source localisation metrics: cIoU / AUC (VGG-SS, Flickr-SoundNet) and AP / max-F1 (Extended VGG-SS).

Sources, reproduced formula by formula:

* **cIoU, cIoU@0.5 and AUC** — Chen et al., "Localizing Visual Sounds the Hard Way" (LVS, CVPR 2021),
  repository ``hche11/Localizing-Visual-Sounds-the-Hard-Way``, ``Evaluator.cal_CIOU`` / ``cal_AUC`` and
  ``test.py``: the prediction is binarised with ``map >= thr``; ``cIoU = Σ(pred·gt) / (Σgt + Σ(pred·[gt = 0]))``
  (``gt`` may be a soft consensus map, e.g. Flickr's 0 / 0.5 / 1); the reported "cIoU" is the fraction of
  samples with ``cIoU >= 0.5`` and AUC is the trapezoid area (``sklearn.metrics.auc``) under the success
  curve ``x ↦ mean(cIoU >= x)`` at the 21 thresholds ``x = 0.05·i`` (Python floats, so ``0.05·3`` is
  ``0.15000000000000002``).
* **AP and max-F1** — Mo & Morgado, "A Closer Look at Weakly-Supervised Audio-Visual Source Localization"
  (NeurIPS 2022), repository ``stoneMo/SLAVC``, ``utils.EvaluatorFull``: every sample has a confidence and a
  number of annotated objects (0 for the non-visible / non-audible extension samples). At a confidence
  threshold ``c``: a sample with objects and ``conf >= c`` is a TP if ``cIoU >= iou_thr`` else an FP; a
  sample without objects and ``conf >= c`` is an FP; a sample with objects and ``conf < c`` is an FN.
  ``P = TP/(TP+FP)`` (1 if no detection), ``R = TP/(TP+FN)`` (1 if nothing to find). AP (``calc_ap``) sweeps
  the sorted confidences without the largest one, from high to low, every ``max(1, n // 200)``-th, takes
  the running max of precision towards higher recall and sums ``P_max[i]·(R[i+1] − R[i])`` — the area starts
  at the first recall reached, not at 0, as in the original. F1 (``finalize_stats``) is evaluated at the
  ascending sorted confidences, every ``max(1, n // 10)``-th; max-F1 is the largest of those values.
  In ``finalize_stats`` AP and max-F1 use all samples and AUC only the samples with objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from soundmask.errors import DataError

__all__ = [
    "LocalizationMetric",
    "average_precision",
    "ciou",
    "ciou_auc",
    "ciou_success_rate",
    "f1_curve",
    "max_f1",
    "precision_recall",
]

AUC_STEPS = 21  # thresholds 0.05 * i, i = 0..20


def _np(x: Any, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise DataError(f"{name} is not numeric: {err}") from err


def ciou(pred_map: Any, gt_map: Any, threshold: float = 0.5) -> float:
    """Consensus IoU of one sample (LVS ``cal_CIOU`` / SLAVC ``EvaluatorFull.update``).

    ``pred = pred_map >= threshold``; ``Σ(pred·gt) / (Σgt + Σ(pred·[gt == 0]))``. Returns NaN for 0/0
    (empty GT and empty prediction), as numpy does in the original.

    Args:
        pred_map: H×W heat map (any real values).
        gt_map: H×W ground truth, binary or soft (Flickr consensus 0 / 0.5 / 1).
        threshold: binarisation threshold, inclusive.
    """
    pred = _np(pred_map, "pred_map")
    gt = _np(gt_map, "gt_map")
    if pred.shape != gt.shape or pred.ndim != 2:
        raise DataError(f"pred_map {pred.shape} and gt_map {gt.shape} must be H×W maps of the same shape")
    infer = np.zeros(pred.shape)
    infer[pred >= threshold] = 1
    num = np.sum(infer * gt)
    den = np.sum(gt) + np.sum(infer * (gt == 0))
    return float(num / den) if den != 0 else float("nan")


def ciou_success_rate(cious: Sequence[float] | np.ndarray, iou_threshold: float = 0.5) -> float:
    """Fraction of samples with ``cIoU >= iou_threshold`` (LVS's reported "cIoU", a.k.a. AP50/cIoU@0.5)."""
    arr = _np(cious, "cious")
    if arr.size == 0:
        return float("nan")
    return float(np.sum(arr >= iou_threshold) / arr.size)


def ciou_auc(cious: Sequence[float] | np.ndarray) -> float:
    """Area under the cIoU success curve (LVS ``cal_AUC``): trapezoid over ``x = 0.05·i``, i = 0..20."""
    arr = _np(cious, "cious")
    if arr.size == 0:
        return float("nan")
    x = np.array([0.05 * i for i in range(AUC_STEPS)])
    y = np.array([np.sum(arr >= 0.05 * i) / arr.size for i in range(AUC_STEPS)])
    # np.trapz(y, x), the computation of sklearn.metrics.auc for an increasing x
    return float((np.diff(x) * (y[1:] + y[:-1]) / 2.0).sum())


def _pr_inputs(cious: Any, confidences: Any, n_objects: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c = _np(cious, "cious").reshape(-1)
    s = _np(confidences, "confidences").reshape(-1)
    b = _np(n_objects, "n_objects").reshape(-1)
    if not (c.size == s.size == b.size):
        raise DataError(f"cious ({c.size}), confidences ({s.size}) and n_objects ({b.size}) differ in length")
    return c, s, b


def _precision_recall_many(
    cious: np.ndarray, conf: np.ndarray, n_obj: np.ndarray, thresholds: np.ndarray, iou_threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """SLAVC ``calc_precision_recall`` evaluated at every threshold at once."""
    detected = conf[None, :] >= thresholds[:, None]
    has_obj = (n_obj > 0)[None, :]
    hit = (cious >= iou_threshold)[None, :]
    tp = np.sum(detected & has_obj & hit, axis=1)
    fp = np.sum(detected & ~has_obj, axis=1) + np.sum(detected & has_obj & ~hit, axis=1)
    fn = np.sum(~detected & has_obj, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        prec = np.where(tp + fp == 0, 1.0, tp / np.maximum(tp + fp, 1))
        rec = np.where(tp + fn == 0, 1.0, tp / np.maximum(tp + fn, 1))
    return prec, rec


def precision_recall(
    cious: Any, confidences: Any, n_objects: Any, conf_threshold: float, iou_threshold: float = 0.5
) -> tuple[float, float]:
    """Precision and recall of localisation at one confidence threshold (SLAVC ``calc_precision_recall``)."""
    c, s, b = _pr_inputs(cious, confidences, n_objects)
    p, r = _precision_recall_many(c, s, b, np.array([conf_threshold], dtype=np.float64), iou_threshold)
    return float(p[0]), float(r[0])


def average_precision(cious: Any, confidences: Any, n_objects: Any, iou_threshold: float = 0.5) -> float:
    """Localisation AP of the Extended VGG-SS / Flickr protocol (SLAVC ``EvaluatorFull.calc_ap``).

    Thresholds: sorted confidences without the largest, from high to low, every ``max(1, n // 200)``-th;
    ``AP = Σ_i max(P[i:])·(R[i+1] − R[i])``. Fewer than two thresholds give 0.0, as the original.
    """
    c, s, b = _pr_inputs(cious, confidences, n_objects)
    skip = max(1, c.size // 200)
    thresholds = np.sort(s)[:-1][::-skip]
    if thresholds.size == 0:
        return 0.0
    prec, rec = _precision_recall_many(c, s, b, thresholds, iou_threshold)
    prec_max = np.maximum.accumulate(prec[::-1])[::-1]
    return float(sum(prec_max[i] * (rec[i + 1] - rec[i]) for i in range(len(prec_max) - 1)))


def f1_curve(cious: Any, confidences: Any, n_objects: Any, iou_threshold: float = 0.5) -> np.ndarray:
    """F1 at SLAVC's thresholds: ascending sorted confidences, every ``max(1, n // 10)``-th (``finalize_stats``)."""
    c, s, b = _pr_inputs(cious, confidences, n_objects)
    if c.size == 0:
        return np.zeros(0)
    thresholds = np.sort(s)[:: max(1, s.size // 10)]
    prec, rec = _precision_recall_many(c, s, b, thresholds, iou_threshold)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(prec + rec > 0, 2 * rec * prec / (rec + prec), 0.0)


def max_f1(cious: Any, confidences: Any, n_objects: Any, iou_threshold: float = 0.5) -> float:
    """max-F1 of the Extended VGG-SS protocol: the largest value of :func:`f1_curve`."""
    f1 = f1_curve(cious, confidences, n_objects, iou_threshold)
    return float(f1.max()) if f1.size else float("nan")


class LocalizationMetric:
    """Accumulates per-sample cIoU, confidence and object count; computes the LVS and SLAVC summaries.

    ``compute()`` returns ``ciou`` (fraction of samples with objects whose cIoU >= 0.5, LVS), ``auc``
    (LVS AUC over samples with objects), ``mean_ciou`` (over samples with objects), ``ap`` and ``max_f1``
    (SLAVC, over all samples, at ``iou_threshold``), and the sample counts.
    """

    def __init__(self, iou_threshold: float = 0.5) -> None:
        self.iou_threshold = float(iou_threshold)
        self.reset()

    def reset(self) -> None:
        """Forget all samples."""
        self._cious: list[float] = []
        self._conf: list[float] = []
        self._nobj: list[int] = []

    def update(
        self,
        pred_map: Any,
        gt_map: Any,
        confidence: float = 1.0,
        n_objects: int | None = None,
        threshold: float = 0.5,
    ) -> float:
        """Add one sample; ``n_objects`` defaults to 1 if the GT map is non-empty else 0. Returns its cIoU."""
        value = ciou(pred_map, gt_map, threshold)
        if n_objects is None:
            n_objects = int(np.sum(_np(gt_map, "gt_map")) > 0)
        self._cious.append(value)
        self._conf.append(float(confidence))
        self._nobj.append(int(n_objects))
        return value

    def merge(self, other: LocalizationMetric) -> None:
        """Append another accumulator's samples."""
        if not isinstance(other, LocalizationMetric) or other.iou_threshold != self.iou_threshold:
            raise DataError("can only merge a LocalizationMetric with the same iou_threshold")
        self._cious += other._cious
        self._conf += other._conf
        self._nobj += other._nobj

    def compute(self) -> dict[str, Any]:
        """See the class docstring."""
        c = np.array(self._cious, dtype=np.float64)
        s = np.array(self._conf, dtype=np.float64)
        b = np.array(self._nobj, dtype=np.int64)
        visible = c[b > 0]
        return {
            "ciou": ciou_success_rate(visible, 0.5),
            "auc": ciou_auc(visible),
            "mean_ciou": float(np.mean(visible)) if visible.size else float("nan"),
            "ap": average_precision(c, s, b, self.iou_threshold) if c.size else float("nan"),
            "max_f1": max_f1(c, s, b, self.iou_threshold),
            "samples": int(c.size),
            "visible_samples": int(visible.size),
        }
