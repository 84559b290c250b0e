"""Metrics: AVSBench-exact J/F, AVSS mIoU/F, batch-invariant pooled J/F, cIoU/AUC, AP/max-F1."""
