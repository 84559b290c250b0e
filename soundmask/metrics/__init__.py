"""Metrics: AVSBench-exact J/F, AVSS mIoU/F, batch-invariant pooled J/F, cIoU/AUC, AP/max-F1, 3D AVS, SI-SDR.

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
from soundmask.metrics.scene3d import (
    ALPHA_THRESHOLD,
    TEST_EVERY,
    Scene3DMetric,
    Scene3DResult,
    centroid_error,
    mask_centroid_3d,
    test_view_indices,
)
from soundmask.metrics.separation import si_sdr, si_sdr_channels, si_sdr_improvement

__all__ = [
    "ALPHA_THRESHOLD",
    "AVSBENCH_NUM_THRESHOLDS",
    "AVSS_NUM_CLASSES",
    "TEST_EVERY",
    "AVSSBatchStats",
    "AVSSMetric",
    "AvsbenchJF",
    "LocalizationMetric",
    "PooledJF",
    "Scene3DMetric",
    "Scene3DResult",
    "average_precision",
    "avsbench_thresholds",
    "avss_batch_stats",
    "centroid_error",
    "ciou",
    "ciou_auc",
    "ciou_success_rate",
    "f1_curve",
    "f_score",
    "mask_centroid_3d",
    "mask_iou",
    "max_f1",
    "precision_recall",
    "si_sdr",
    "si_sdr_channels",
    "si_sdr_improvement",
    "test_view_indices",
]
