"""SeAC's local-global mask embeddings (Sec. 2.2, Eq. 1–3).

For each binary mask ``M_n`` of image ``I``:

* Eq. 2, local: ``I_n^L = T(M_n ⊙ I)`` — the masked image cropped to the mask's bounding box (padded to a
  square around its centre, so the object keeps its aspect ratio), resized to ``size``;
* Eq. 3, global: ``I_n^G = (1 − M_n) ⊙ B(I) + M_n ⊙ I`` — the whole image with everything but the object
  Gaussian-blurred (σ = ``blur_sigma`` × image size), resized to ``size``;
* Eq. 1: ``f_n = λ ψ(I_n^L) + (1 − λ) ψ(I_n^G)`` with the frozen image encoder ``ψ`` (EfficientNet-Lite0 by
  default, CLIP's image tower with a user checkpoint) and ``λ`` = 0.6.

Both views of all masks of an image go through the encoder as one batch. Encoders with an ImageNet head also
return the local views' class logits (used by the training-free mode and by mask classification).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from soundmask.vision.backbones import ImageEncoder

__all__ = ["MaskEmbeddings", "combine", "global_view", "local_view", "mask_embeddings"]


@dataclass
class MaskEmbeddings:
    """``local`` / ``global_`` (N, D) float32: ψ(I^L), ψ(I^G); ``logits`` (N, K) ImageNet logits of the local views
    or None (encoder without a classifier)."""

    local: np.ndarray
    global_: np.ndarray
    logits: np.ndarray | None = None

    def combined(self, lam: float = 0.6) -> np.ndarray:
        return combine(self.local, self.global_, lam)


def combine(local: np.ndarray, global_: np.ndarray, lam: float = 0.6) -> np.ndarray:
    """Eq. 1: ``λ ψ(I^L) + (1 − λ) ψ(I^G)``."""
    return (lam * np.asarray(local, np.float32) + (1.0 - lam) * np.asarray(global_, np.float32)).astype(np.float32)


def _square_box(mask: np.ndarray, margin: float = 0.05) -> tuple[int, int, int, int]:
    ys = np.flatnonzero(mask.any(1))
    xs = np.flatnonzero(mask.any(0))
    if len(ys) == 0:
        h, w = mask.shape
        return 0, 0, h, w
    y0, y1, x0, x1 = ys[0], ys[-1] + 1, xs[0], xs[-1] + 1
    side = max(y1 - y0, x1 - x0) * (1 + 2 * margin)
    cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
    half = max(side / 2, 2.0)
    return int(np.floor(cy - half)), int(np.floor(cx - half)), int(np.ceil(cy + half)), int(np.ceil(cx + half))


def local_view(image: np.ndarray, mask: np.ndarray, size: int) -> np.ndarray:
    """Eq. 2: ``T(M ⊙ I)`` as a size×size×3 uint8 crop (zero outside the mask and outside the image)."""
    masked = image * mask[..., None].astype(image.dtype)
    y0, x0, y1, x1 = _square_box(mask)
    h, w = mask.shape
    canvas = np.zeros((y1 - y0, x1 - x0, 3), image.dtype)
    sy0, sx0, sy1, sx1 = max(y0, 0), max(x0, 0), min(y1, h), min(x1, w)
    canvas[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = masked[sy0:sy1, sx0:sx1]
    return cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)


def blurred(image: np.ndarray, blur_sigma: float = 0.03) -> np.ndarray:
    """``B(I)``: Gaussian blur with σ = ``blur_sigma`` × the image's larger side."""
    s = max(0.5, blur_sigma * max(image.shape[:2]))
    return cv2.GaussianBlur(image, (0, 0), sigmaX=s, sigmaY=s, borderType=cv2.BORDER_REFLECT)


def global_view(image: np.ndarray, mask: np.ndarray, size: int, blur: np.ndarray | None = None) -> np.ndarray:
    """Eq. 3: ``(1 − M) ⊙ B(I) + M ⊙ I`` resized to size×size×3 uint8."""
    b = blurred(image) if blur is None else blur
    out = np.where(mask[..., None], image, b)
    return cv2.resize(out, (size, size), interpolation=cv2.INTER_AREA)


def _to_tensor(views: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(views)).permute(0, 3, 1, 2).float() / 255.0


@torch.no_grad()
def mask_embeddings(
    encoder: ImageEncoder, image: np.ndarray, masks: np.ndarray, size: int | None = None, blur_sigma: float = 0.03
) -> MaskEmbeddings:
    """ψ(I^L_n) and ψ(I^G_n) for every mask of ``image`` (H×W×3 uint8, masks N×H×W bool) in one encoder batch.

    ``size``: side of both views (default: the encoder's ``input_size``)."""
    n = int(masks.shape[0])
    size = int(size or encoder.input_size)
    if n == 0:
        k = len(encoder.class_names) if encoder.class_names else 0
        return MaskEmbeddings(
            np.zeros((0, encoder.dim), np.float32),
            np.zeros((0, encoder.dim), np.float32),
            np.zeros((0, k), np.float32) if k else None,
        )
    b = blurred(image, blur_sigma)
    views = [local_view(image, m, size) for m in masks] + [global_view(image, m, size, b) for m in masks]
    x = _to_tensor(views)  # encoders resize to their own input size when they need one (CLIP)
    logits = None
    encode_and_classify = getattr(encoder, "encode_and_classify", None)  # encoders with a classifier head
    if encode_and_classify is not None:
        feats, cls = encode_and_classify(x)
        logits = cls[:n].numpy().astype(np.float32)
    else:
        feats = encoder.encode(x)
    feats = feats.numpy().astype(np.float32)
    return MaskEmbeddings(feats[:n], feats[n:], logits)
