"""The proposal-source interface and the paper's selection rule (NMS at IoU 0.5, then top-N by confidence)."""

from __future__ import annotations

import numpy as np

from soundmask.errors import DataError
from soundmask.vision.types import Proposals

__all__ = ["ProposalSource", "box_iou", "check_image", "select_top"]


def check_image(image: np.ndarray, what: str = "image") -> np.ndarray:
    """An H×W×3 uint8 RGB array, or a :class:`DataError`."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise DataError(f"{what} must be a non-empty H×W×3 RGB array, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise DataError(f"{what} must be uint8 RGB, got {image.dtype}", fix="convert with (x*255).astype(np.uint8)")
    return image


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``x0, y0, x1, y1`` boxes: (N, 4) × (M, 4) → (N, M)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0]).clip(0) * (a[:, 3] - a[:, 1]).clip(0)
    area_b = (b[:, 2] - b[:, 0]).clip(0) * (b[:, 3] - b[:, 1]).clip(0)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) IoU of the boolean masks ``a`` (N, H, W) and ``b`` (M, H, W) (0 where both are empty)."""
    fa = a.reshape(len(a), -1).astype(np.float32)
    fb = b.reshape(len(b), -1).astype(np.float32)
    inter = fa @ fb.T
    union = fa.sum(1)[:, None] + fb.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def select_top(p: Proposals, top_n: int, nms_iou: float = 0.5) -> Proposals:
    """Greedy NMS on the boxes (IoU > ``nms_iou`` suppressed), then the ``top_n`` most confident (SeAC §3.2)."""
    if len(p) == 0:
        return p
    order = np.argsort(-p.scores, kind="stable")
    iou = box_iou(p.boxes, p.boxes)
    keep: list[int] = []
    for i in order:
        if all(iou[i, j] <= nms_iou for j in keep):
            keep.append(int(i))
        if len(keep) >= top_n:
            break
    return p.subset(keep)


class ProposalSource:
    """Class- and audio-agnostic object masks from one RGB image.

    Subclasses implement :meth:`_propose`; :meth:`propose` validates the image, then applies
    :func:`select_top` with ``top_n`` / ``nms_iou``. ``name`` is the registry name.
    """

    name = "base"

    def __init__(self, top_n: int = 8, nms_iou: float = 0.5) -> None:
        if top_n < 1:
            raise ValueError(f"top_n must be >= 1, got {top_n}")
        self.top_n = int(top_n)
        self.nms_iou = float(nms_iou)

    def _propose(self, image: np.ndarray) -> Proposals:  # pragma: no cover - abstract
        raise NotImplementedError

    def propose(self, image: np.ndarray) -> Proposals:
        image = check_image(image)
        p = self._propose(image)
        p.source = p.source or self.name
        return select_top(p, self.top_n, self.nms_iou)

    def propose_batch(self, images: np.ndarray) -> list[Proposals]:
        """Proposals of each image of a (T, H, W, 3) stack (override for batched models)."""
        return [self.propose(im) for im in images]
