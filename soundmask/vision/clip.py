"""CLIP (Radford et al. 2021) as a frozen image encoder with a text tower (``get_image_encoder("clip")``).

``CLIPModel`` from a user-given local folder (what ``CLIPModel.save_pretrained`` and ``CLIPProcessor`` — or
``CLIPImageProcessor`` + the tokenizer — ``.save_pretrained`` write; loaded with ``local_files_only``). The image
processor gives the normalisation (``image_mean`` / ``image_std``); the input side is the model's
``vision_config.image_size``. :meth:`ClipImageEncoder.encode` resizes a (B, 3, S, S) RGB batch in [0, 1] to that
side (bicubic, antialiased, as the processor's resampling), normalises it and returns ``get_image_features``: the
projected embedding, ``dim = projection_dim``. :meth:`~ClipImageEncoder.encode_text` returns
``get_text_features`` in the same space. Neither is L2-normalised (CLIP compares cosines: normalise both).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from soundmask.errors import ConfigError, DataError
from soundmask.hf_local import load_pretrained, model_folder, pooled_features
from soundmask.vision.backbones import ImageEncoder

__all__ = ["ClipImageEncoder"]

_TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "tokenizer_config.json")


class ClipImageEncoder(ImageEncoder):
    """A local Hugging Face CLIP checkpoint; see the module docstring. ``path``: the folder."""

    name = "clip"
    mean: torch.Tensor  # buffers (register_buffer)
    std: torch.Tensor

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        p = model_folder(
            path,
            "CLIPModel",
            ("clip",),
            who="the clip image encoder",
            preprocessor="image processor",
            preprocessor_class="CLIPImageProcessor",
        )
        from transformers import AutoTokenizer, CLIPImageProcessor, CLIPModel

        self.path = p
        self.model = load_pretrained(CLIPModel, p, "CLIP model").eval()
        self.image_processor = processor = load_pretrained(CLIPImageProcessor, p, "CLIP image processor")
        cfg = self.model.config
        self.dim = int(cfg.projection_dim)
        self.input_size = int(cfg.vision_config.image_size)
        mean = torch.tensor(processor.image_mean, dtype=torch.float32).reshape(1, -1, 1, 1)
        std = torch.tensor(processor.image_std, dtype=torch.float32).reshape(1, -1, 1, 1)
        if mean.shape[1] != 3 or std.shape[1] != 3 or not bool((std > 0).all()):
            raise ConfigError(
                f"the image processor's image_mean / image_std are not 3 channels with std > 0 "
                f"({processor.image_mean}, {processor.image_std})",
                p,
                "save the image processor that belongs to this model",
            )
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)
        self.interpolation = "bilinear" if int(getattr(processor, "resample", 3)) == 2 else "bicubic"
        self.tokenizer = None
        if any((p / f).is_file() for f in _TOKENIZER_FILES):
            self.tokenizer = load_pretrained(AutoTokenizer, p, "CLIP tokenizer")
        self.max_text_length = int(cfg.text_config.max_position_embeddings)

    def _device(self) -> torch.device:
        return self.mean.device

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) RGB in [0, 1] → the model's normalised (B, 3, input_size, input_size) input."""
        images = torch.as_tensor(images)
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[2] == 0 or images.shape[3] == 0:
            raise DataError(f"CLIP images must be a (B, 3, S, S) RGB batch, got shape {tuple(images.shape)}")
        if not torch.is_floating_point(images):
            raise DataError(
                f"CLIP images must be float RGB in [0, 1], got {images.dtype}", fix="convert with images.float() / 255"
            )
        x = images.to(self._device(), torch.float32)
        if tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            x = F.interpolate(
                x, size=(self.input_size, self.input_size), mode=self.interpolation, align_corners=False, antialias=True
            ).clamp_(0.0, 1.0)
        return (x - self.mean) / self.std

    @torch.inference_mode()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        x = self.preprocess(images).to(self.model.dtype)
        return pooled_features(self.model.get_image_features(pixel_values=x)).float()

    @torch.inference_mode()
    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        if isinstance(texts, str):
            texts = [texts]
        texts = [str(t) for t in texts]
        if not texts:
            raise ConfigError("encode_text got no texts", fix="pass at least one string")
        if self.tokenizer is None:
            raise ConfigError(
                "the CLIP folder has no tokenizer, so it cannot embed text",
                self.path,
                "save the tokenizer into the folder too (CLIPProcessor.save_pretrained)",
            )
        tokens = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_text_length, return_tensors="pt"
        )
        out = self.model.get_text_features(
            input_ids=tokens["input_ids"].to(self._device()),
            attention_mask=tokens["attention_mask"].to(self._device()) if "attention_mask" in tokens else None,
        )
        return pooled_features(out).float()
