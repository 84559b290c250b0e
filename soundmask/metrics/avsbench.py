"""AVSBench-exact metrics: binary J (``mask_iou``) and F (``f_score``), and AVSS semantic mIoU / F.

Everything here reproduces the reference implementation of AVSBench (OpenNLPLab/AVSBench, Zhou et al.,
ECCV 2022 / AVSS extension), quirks included, so that numbers are comparable with published tables:

* :func:`mask_iou` — ``mask_iou`` in ``avs_scripts/avs_s4/utils/utility.py`` (identical copy in
  ``avs_ms3`` and ``avss``).
* :func:`f_score` — ``Eval_Fmeasure`` + ``_eval_pr`` in the same file (computed on the CPU, i.e.
  ``cuda_flag=False``; thresholds ``torch.linspace(0, 1 - 1e-10, 255)`` in float32).
* :func:`avss_batch_stats` — ``_batch_miou_fscore`` / ``calc_color_miou_fscore`` in
  ``avs_scripts/avss/utils/compute_color_metrics.py``.
* :class:`AVSSMetric` — the aggregation loop of ``avs_scripts/avss/test.py``.

The float32 arithmetic of the originals is kept on purpose (same dtypes, same operation order); only
the counting is vectorised (one bucketing pass per batch instead of 255 comparisons per frame).
Note that both binary metrics are *per batch*: AVSBench averages them over batches, so F depends on the
batch size (see :class:`soundmask.metrics.pooled.AvsbenchJF` and ``docs/metrics.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from soundmask.errors import DataError

__all__ = [
    "AVSBENCH_NUM_THRESHOLDS",
    "AVSS_NUM_CLASSES",
    "AVSSBatchStats",
    "AVSSMetric",
    "avsbench_thresholds",
    "avss_batch_stats",
    "f_score",
    "f_score_curve_counts",
    "mask_iou",
]

AVSBENCH_NUM_THRESHOLDS = 255
"""``pr_num`` of ``Eval_Fmeasure``."""
AVSS_NUM_CLASSES = 71
"""Classes of AVSBench-semantic (V2), background (index 0) included."""

_IOU_EPS = 1e-7  # mask_iou(eps=1e-7)
_PR_EPS = 1e-20  # _eval_pr: tp / (y_temp.sum() + 1e-20)
_BETA2 = 0.3  # Eval_Fmeasure / _batch_miou_fscore: beta2 = 0.3
_AVSS_EPS = 2.220446049250313e-16  # _batch_miou_fscore: area_inter / (eps + area_union)

ArrayLike = torch.Tensor | np.ndarray


# ----------------------------------------------------------------------------------------------------
# input handling
# ----------------------------------------------------------------------------------------------------


def _as_tensor(x: Any, name: str) -> torch.Tensor:
    """``torch.Tensor`` view of ``x`` (numpy arrays and nested lists are converted), detached."""
    if isinstance(x, torch.Tensor):
        return x.detach()
    try:
        return torch.as_tensor(np.asarray(x))
    except (TypeError, ValueError) as err:
        raise DataError(f"{name} cannot be converted to a tensor: {err}") from err


def _logits_tensor(x: Any, name: str = "logits") -> torch.Tensor:
    """Floating tensor of logits; integer/bool inputs become float32 (the original needs a float)."""
    t = _as_tensor(x, name)
    if not torch.is_floating_point(t):
        t = t.to(torch.float32)
    return t


def _target_tensor(x: Any, name: str = "target") -> torch.Tensor:
    """Floating target; bool/int targets become float32 (what AVSBench's dataloader hands the metric)."""
    t = _as_tensor(x, name)
    if not torch.is_floating_point(t):
        t = t.to(torch.float32)
    return t


def _check_binary_inputs(logits: torch.Tensor, target: torch.Tensor) -> None:
    """The original asserts ``len(pred.shape) == 3 and pred.shape == target.shape``."""
    if logits.dim() != 3:
        raise DataError(
            f"logits must be N×H×W (3-D), got shape {tuple(logits.shape)}",
            fix="squeeze the channel axis, e.g. logits[:, 0]",
        )
    if tuple(logits.shape) != tuple(target.shape):
        raise DataError(
            f"logits shape {tuple(logits.shape)} and target shape {tuple(target.shape)} differ",
            fix="give one target mask per predicted frame, at the same resolution",
        )
    if logits.shape[0] == 0:
        raise DataError("empty batch (N = 0)", fix="pass at least one frame")


def _prepare_binary(logits: Any, target: Any) -> tuple[torch.Tensor, torch.Tensor]:
    lg = _logits_tensor(logits)
    tg = _target_tensor(target)
    _check_binary_inputs(lg, tg)
    if tg.device != lg.device:
        tg = tg.to(lg.device)
    return lg, tg


# ----------------------------------------------------------------------------------------------------
# J: mask_iou
# ----------------------------------------------------------------------------------------------------


def _mask_iou_per_frame(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-frame IoU terms ``inter / (union + eps)`` of AVSBench ``mask_iou`` (in the target's dtype)."""
    num_pixels = logits.shape[-1] * logits.shape[-2]
    empty = target.sum(2).sum(1) == 0
    pred = (torch.sigmoid(logits) > 0.5).int()
    inter = (pred * target).sum(2).sum(1)
    union = torch.max(pred, target).sum(2).sum(1)
    # frames without any object: score = pixels where prediction and GT are both 0, over all pixels
    inter_empty = ((1 - target) * (1 - pred)).sum(2).sum(1)
    inter = torch.where(empty, inter_empty, inter)
    union = torch.where(empty, torch.full_like(union, num_pixels), union)
    return inter / (union + _IOU_EPS)


@torch.no_grad()
def mask_iou(logits: ArrayLike, target: ArrayLike) -> float:
    """AVSBench J (mean IoU over the frames of one batch), exactly as AVSBench's ``mask_iou``.

    Source: OpenNLPLab/AVSBench ``avs_scripts/avs_s4/utils/utility.py::mask_iou``.
    ``pred = sigmoid(logits) > 0.5``; per frame ``inter / (union + 1e-7)``; a frame whose GT is empty
    scores (pixels where pred and GT are both 0) / (all pixels); the sum is divided by N.

    Args:
        logits: N×H×W logits (tensor or numpy array).
        target: N×H×W ground truth, 0/1 (float, int or bool; converted to float32 when not floating).

    Returns:
        The batch mean as a Python float.

    Raises:
        DataError (a ValueError): when the inputs are not 3-D, differ in shape, or are empty.
    """
    lg, tg = _prepare_binary(logits, target)
    terms = _mask_iou_per_frame(lg, tg)
    return float((torch.sum(terms) / lg.shape[0]).item())


# ----------------------------------------------------------------------------------------------------
# F: Eval_Fmeasure
# ----------------------------------------------------------------------------------------------------


def avsbench_thresholds(num: int = AVSBENCH_NUM_THRESHOLDS) -> torch.Tensor:
    """``torch.linspace(0, 1 - 1e-10, num)`` in float32 (``_eval_pr``); the last value rounds to 1.0."""
    return torch.linspace(0, 1 - 1e-10, num, dtype=torch.float32)


def f_score_curve_counts(
    probs: torch.Tensor, target: torch.Tensor, thresholds: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame, per-threshold counts of ``probs >= t``: (predicted positives, true positives).

    ``probs``/``target`` are N×H×W; returns two float64 tensors of shape N×T. A pixel is positive at
    threshold ``t_j`` iff ``t_j <= p`` (``_eval_pr``'s ``y_pred >= thlist[i]``); bucketing each pixel by
    the number of thresholds below or at it and a reversed cumulative sum gives all T counts at once.
    ``tp`` is the target-weighted count (``(y_temp * y).sum()``), exact for 0/1 targets.
    NaN probabilities are never positive, as in the original comparison.
    """
    n = probs.shape[0]
    num_t = thresholds.numel()
    flat = probs.reshape(n, -1)
    bounds = thresholds.to(device=flat.device, dtype=flat.dtype)
    # k = #{j : t_j <= p}: the pixel is positive at thresholds 0..k-1
    k = torch.bucketize(flat, bounds, right=True)
    k = torch.where(torch.isnan(flat), torch.zeros_like(k), k)
    offsets = torch.arange(n, device=flat.device).unsqueeze(1) * (num_t + 1)
    idx = (k + offsets).reshape(-1)
    size = n * (num_t + 1)
    weights = target.reshape(-1).to(torch.float64)
    hist_pred = torch.bincount(idx, minlength=size).reshape(n, num_t + 1).to(torch.float64)
    hist_tp = torch.bincount(idx, weights=weights, minlength=size).reshape(n, num_t + 1)
    # count at threshold j = sum of hist over k > j  (reverse cumulative sum, dropping k = 0)
    pred_counts = hist_pred.flip(1).cumsum(1).flip(1)[:, 1:]
    tp_counts = hist_tp.flip(1).cumsum(1).flip(1)[:, 1:]
    return pred_counts, tp_counts


def _f_curve(prec: torch.Tensor, recall: torch.Tensor, beta2: float = _BETA2) -> torch.Tensor:
    """``(1 + beta2) * P * R / (beta2 * P + R)`` with NaN → 0, same operation order as the original."""
    f = (1 + beta2) * prec * recall / (beta2 * prec + recall)
    f[f != f] = 0
    return f


@torch.no_grad()
def f_score(logits: ArrayLike, target: ArrayLike) -> float:
    """AVSBench F-measure of one batch, exactly as AVSBench's ``Eval_Fmeasure`` (β² = 0.3).

    Source: OpenNLPLab/AVSBench ``avs_scripts/avs_s4/utils/utility.py::Eval_Fmeasure`` and ``_eval_pr``.
    ``p = sigmoid(logits)``; for each of the 255 float32 thresholds ``linspace(0, 1 - 1e-10, 255)``
    (the last is exactly 1.0) a pixel is positive when ``p >= t``; ``P = tp / (pred + 1e-20)``,
    ``R = tp / (gt + 1e-20)`` (float32), ``F = 1.3·P·R / (0.3·P + R)``, NaN → 0. Frames whose GT mean is 0
    are skipped; the F-curves of the other frames are averaged (accumulated in float32, frame by frame),
    and the maximum over thresholds is returned. A batch where every GT is empty returns 0.0.

    The result depends on how frames are grouped into batches (max of the mean ≠ mean of the max);
    AVSBench reports the mean of this value over test batches.

    Args:
        logits: N×H×W logits (tensor or numpy array).
        target: N×H×W ground truth, 0/1 (float, int or bool).

    Raises:
        DataError (a ValueError): when the inputs are not 3-D, differ in shape, or are empty.
    """
    lg, tg = _prepare_binary(logits, target)
    probs = torch.sigmoid(lg)
    keep = [i for i in range(tg.shape[0]) if bool(torch.mean(tg[i]) != 0.0)]
    if not keep:
        return 0.0
    sel = torch.tensor(keep, device=lg.device)
    probs, tg = probs.index_select(0, sel), tg.index_select(0, sel)
    thresholds = avsbench_thresholds()
    pred_counts, tp_counts = f_score_curve_counts(probs, tg, thresholds)
    gt_counts = tg.reshape(tg.shape[0], -1).to(torch.float64).sum(1, keepdim=True)
    # the original computes these ratios in float32 (exact integer counts, one rounding)
    tp32 = tp_counts.to(torch.float32).cpu()
    prec = tp32 / (pred_counts.to(torch.float32).cpu() + _PR_EPS)
    recall = tp32 / (gt_counts.to(torch.float32).cpu() + _PR_EPS)
    curves = _f_curve(prec, recall)
    avg = torch.zeros(thresholds.numel(), dtype=torch.float32)
    for row in curves:  # sequential float32 accumulation, as `avg_f += f_score`
        avg = avg + row
    score = avg / len(keep)
    return float(score.max().item())


# ----------------------------------------------------------------------------------------------------
# AVSS (semantic) mIoU / F
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AVSSBatchStats:
    """Per-class sums over the frames of one batch (``_batch_miou_fscore``'s return values).

    ``iou_sum[c]`` / ``fscore_sum[c]``: per-frame IoU / F of class ``c`` summed over frames (float32);
    ``count[c]``: number of frames where class ``c`` is in the prediction or the GT (union > 0);
    ``frame_miou``: per frame, sum of IoUs over the classes with non-zero IoU divided by their number
    (``vid_miou_list``; NaN when no class has IoU > 0).
    """

    iou_sum: torch.Tensor
    fscore_sum: torch.Tensor
    count: torch.Tensor
    frame_miou: torch.Tensor


def _avss_labels(pred: Any, target: torch.Tensor, num_classes: int | None) -> tuple[torch.Tensor, int]:
    """Predicted class indices (B×H×W, int64) and the number of classes."""
    p = _as_tensor(pred, "pred")
    if p.dim() == 4:
        if not torch.is_floating_point(p):
            p = p.to(torch.float32)
        if num_classes is not None and p.shape[1] != num_classes:
            raise DataError(
                f"logits have {p.shape[1]} channels but num_classes is {num_classes}",
                fix="pass logits with one channel per class",
            )
        # calc_color_miou_fscore: softmax first, then argmax (ties after softmax rounding → first index)
        labels = torch.argmax(torch.softmax(p, dim=1), dim=1)
        return labels, int(p.shape[1])
    if p.dim() == 3:
        if torch.is_floating_point(p):
            if not bool(torch.all(p == torch.round(p))):
                raise DataError("predicted labels must be integers", fix="pass argmax indices or B×C×H×W logits")
        n = AVSS_NUM_CLASSES if num_classes is None else num_classes
        return p.to(torch.int64), n
    raise DataError(
        f"pred must be B×C×H×W logits or B×H×W labels, got shape {tuple(p.shape)}",
        fix="flatten batch and time into one axis (B*T)",
    )


def _avss_histograms(
    labels: torch.Tensor, target: torch.Tensor, nclass: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-frame class areas (inter, pred, label) as float32 B×C, like ``torch.histc(bins=C, min=1, max=C)``.

    The original shifts both maps by +1, zeroes the prediction where ``target + 1 <= 0`` and counts the
    values 1..C; values outside that range (e.g. an ignore label 255 → 256) are not counted. With integer
    labels ``histc``'s bins map value v to class v - 1, so a bin count per class is exact.
    """
    b = labels.shape[0]
    tgt = target.to(torch.int64) + 1
    pred = (labels.to(torch.int64) + 1) * (tgt > 0).to(torch.int64)
    inter = pred * (pred == tgt).to(torch.int64)

    def hist(values: torch.Tensor) -> torch.Tensor:
        flat = values.reshape(b, -1)
        valid = (flat >= 1) & (flat <= nclass)
        rows = torch.arange(b, device=flat.device).unsqueeze(1).expand_as(flat)
        idx = (rows * nclass + (flat - 1))[valid]
        return torch.bincount(idx, minlength=b * nclass).reshape(b, nclass).to(torch.float32).cpu()

    return hist(inter), hist(pred), hist(tgt)


@torch.no_grad()
def avss_batch_stats(
    pred: ArrayLike, target: ArrayLike, num_classes: int | None = None, beta2: float = _BETA2
) -> AVSSBatchStats:
    """Per-class IoU / F sums and frame counts of one batch, exactly as AVSBench's ``_batch_miou_fscore``.

    Source: OpenNLPLab/AVSBench ``avs_scripts/avss/utils/compute_color_metrics.py``
    (``calc_color_miou_fscore`` → ``_batch_miou_fscore``). Per frame and class: ``IoU = inter /
    (2.22e-16 + union)``; ``F = (1 + β²)·P·R / (β²·P + R)`` with ``P = inter/pred``, ``R = inter/label``
    (no threshold sweep) and NaN → 0; the class count increases when ``union > 0`` (class in prediction
    or GT). Sums are float32, accumulated frame by frame as in the original.

    Args:
        pred: B×C×H×W logits (softmax + argmax is applied, as the original) or B×H×W predicted labels.
        target: B×H×W integer labels in 0..C-1 (background = 0 in AVSS).
        num_classes: number of classes; defaults to C for logits and 71 for labels.
        beta2: β² of the F-measure (0.3 in AVSBench).
    """
    tg = _as_tensor(target, "target")
    if tg.dim() != 3:
        raise DataError(f"target must be B×H×W labels, got shape {tuple(tg.shape)}")
    if torch.is_floating_point(tg) and not bool(torch.all(tg == torch.round(tg))):
        raise DataError("target labels must be integers", fix="pass class indices, not colours or one-hot")
    labels, nclass = _avss_labels(pred, tg, num_classes)
    if tuple(labels.shape) != tuple(tg.shape):
        raise DataError(
            f"prediction shape {tuple(labels.shape)} (after argmax) and target shape {tuple(tg.shape)} differ"
        )
    tg = tg.to(labels.device)
    area_inter, area_pred, area_lab = _avss_histograms(labels, tg, nclass)
    area_union = area_pred + area_lab - area_inter
    iou = 1.0 * area_inter / (_AVSS_EPS + area_union)
    precision = area_inter / area_pred
    recall = area_inter / area_lab
    fscore = (1 + beta2) * precision * recall / (beta2 * precision + recall)
    fscore[torch.isnan(fscore)] = 0.0
    present = (area_union != 0).to(torch.float32)

    ious = torch.zeros(nclass, dtype=torch.float32)
    fscores = torch.zeros(nclass, dtype=torch.float32)
    counts = torch.zeros(nclass, dtype=torch.float32)
    for i in range(labels.shape[0]):  # frame-by-frame float32 sums, as the original loop
        ious += iou[i]
        fscores += fscore[i]
        counts += present[i]
    frame_miou = torch.sum(iou, dim=1) / torch.sum(iou != 0, dim=1).to(torch.float32)
    return AVSSBatchStats(iou_sum=ious, fscore_sum=fscores, count=counts, frame_miou=frame_miou)


def _avss_final(sums: torch.Tensor, counts: torch.Tensor) -> tuple[torch.Tensor, float, float]:
    """``test.py``: ``x = sums / counts``; NaN → 0; mean over all classes, and over ``[:-1]``."""
    per_class = sums / counts
    per_class[torch.isnan(per_class)] = 0
    return per_class, float(torch.mean(per_class).item()), float(torch.mean(per_class[:-1]).item())


class AVSSMetric:
    """Dataset-level AVSS mIoU and F, aggregated exactly as AVSBench's ``avs_scripts/avss/test.py``.

    Per batch, :func:`avss_batch_stats` sums are added (float32) into running per-class totals. At the
    end ``per_class = total / count`` (classes never seen give 0/0 = NaN → 0) and ``miou`` / ``fscore``
    are the mean over **all** ``num_classes`` classes — absent classes pull the mean down, as in the
    original. ``miou_nobg`` / ``fscore_nobg`` reproduce the original's ``[:-1]`` slice, which drops the
    *last* class (index 70), not the background (index 0) — kept only for comparison with its logs.

    The original evaluates every one of the 10 frames of a clip, including the zero-padded frames of
    5-frame (v1s/v1m) clips; feed the same frames to reproduce its numbers. The float32 totals make the
    result depend on the batch order only at the rounding level (~1e-7).
    """

    def __init__(self, num_classes: int = AVSS_NUM_CLASSES, beta2: float = _BETA2) -> None:
        if num_classes < 1:
            raise DataError(f"num_classes must be positive, got {num_classes}")
        self.num_classes = int(num_classes)
        self.beta2 = float(beta2)
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated so far."""
        self._iou = torch.zeros(self.num_classes, dtype=torch.float32)
        self._fscore = torch.zeros(self.num_classes, dtype=torch.float32)
        self._count = torch.zeros(self.num_classes, dtype=torch.float32)
        self._frames = 0

    def update(self, pred: ArrayLike, target: ArrayLike) -> AVSSBatchStats:
        """Add one batch: ``pred`` B×C×H×W logits or B×H×W labels, ``target`` B×H×W labels."""
        stats = avss_batch_stats(pred, target, num_classes=self.num_classes, beta2=self.beta2)
        self._iou += stats.iou_sum
        self._fscore += stats.fscore_sum
        self._count += stats.count
        self._frames += int(stats.frame_miou.numel())
        return stats

    def merge(self, other: AVSSMetric) -> None:
        """Add another accumulator's totals (same class count and β²)."""
        if not isinstance(other, AVSSMetric) or (other.num_classes, other.beta2) != (self.num_classes, self.beta2):
            raise DataError("can only merge an AVSSMetric with the same num_classes and beta2")
        self._iou += other._iou
        self._fscore += other._fscore
        self._count += other._count
        self._frames += other._frames

    def compute(self) -> dict[str, Any]:
        """``miou``, ``fscore`` (means over all classes), the ``[:-1]`` variants, per-class values, counts."""
        iou_pc, miou, miou_nobg = _avss_final(self._iou.clone(), self._count)
        f_pc, fscore, fscore_nobg = _avss_final(self._fscore.clone(), self._count)
        return {
            "miou": miou,
            "fscore": fscore,
            "miou_nobg": miou_nobg,
            "fscore_nobg": fscore_nobg,
            "per_class_iou": iou_pc.tolist(),
            "per_class_fscore": f_pc.tolist(),
            "class_count": self._count.tolist(),
            "classes_present": int(torch.sum(self._count != 0).item()),
            "frames": self._frames,
        }
