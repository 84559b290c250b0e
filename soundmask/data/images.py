"""Image resizing shared by the stages: :func:`resize_to` (colour and labels) and :func:`resize_mask`."""

from __future__ import annotations

import numpy as np

__all__ = ["resize_mask", "resize_to"]


def resize_to(img: np.ndarray, W: int, H: int, nearest: bool = False) -> np.ndarray:
    """``img`` at W × H pixels (area averaging, or nearest for masks and labels); unchanged when it already is."""
    import cv2

    if img.shape[1] == W and img.shape[0] == H:
        return img
    return cv2.resize(img, (W, H), interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_AREA)


def resize_mask(m: np.ndarray, W: int, H: int) -> np.ndarray:
    """A mask (any dtype, non-zero = inside) as bool at W × H pixels (nearest neighbour)."""
    return resize_to(np.asarray(m).astype(np.uint8), W, H, nearest=True) > 0
