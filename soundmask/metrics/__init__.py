"""Metrics: AVSBench-exact J/F, AVSS mIoU/F, batch-invariant pooled J/F, cIoU/AUC, AP/max-F1.

See ``docs/metrics.md`` for the definitions and the AVSBench quirks reproduced here.
"""

from soundmask.metrics.avsbench import (
    AVSBENCH_NUM_THRESHOLDS,
    AVSS_NUM_CLASSES,
    AVSSBatchStats,
    AVSSMetric,
    avsbench_thresholds,
    avss_batch_stats,
    f_score,
    mask_iou,
)
from soundmask.metrics.localization import (
    LocalizationMetric,
    average_precision,
    ciou,
    ciou_auc,
    ciou_success_rate,
    f1_curve,
    max_f1,
    precision_recall,
)
from soundmask.metrics.pooled import AvsbenchJF, PooledJF

__all__ = [
    "AVSBENCH_NUM_THRESHOLDS",
    "AVSS_NUM_CLASSES",
    "AVSSBatchStats",
    "AVSSMetric",
    "AvsbenchJF",
    "LocalizationMetric",
    "PooledJF",
    "average_precision",
    "avsbench_thresholds",
    "avss_batch_stats",
    "ciou",
    "ciou_auc",
    "ciou_success_rate",
    "f1_curve",
    "f_score",
    "mask_iou",
    "max_f1",
    "precision_recall",
]
