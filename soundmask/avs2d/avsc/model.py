"""AVSC's networks (paper ``003_*``): the potential sounding-object segmentation network (Sec. 3.1, MaskFormer
style) and the audio branch (Sec. 3.2).

:class:`PotentialObjectNet` reads the frozen EfficientNet-Lite0 pyramid (:mod:`soundmask.avs2d.features`):

- **pixel decoder**: an FPN top-down path over strides 32→4 (``width`` channels), refined at stride 2 with the
  first block's features → per-pixel mask features (``mask_dim``, 112²);
- **transformer decoder**: ``queries`` learnable queries, ``layers`` pre-norm decoder layers (self-attention,
  cross-attention to the stride-32 and stride-16 tokens with sine positions and level embeddings, FFN);
- heads: class scores over K + 1 (the last is no-object) and a mask embedding whose dot product with the mask
  features gives each query's mask logits.

:class:`AudioCategoryNet` maps the frame's audio features (YAMNet embedding + AudioSet scores) through an MLP to
the audio category scores ``P_a`` over the K categories: ``sigmoid`` (default, one probability per category) or
``softmax`` (a point of the simplex Δ^K, as in the paper). With the softmax two simultaneous sources cannot
both pass 0.5, and on the generator's validation split it gave S4 J 0.51 / MS3 J 0.10 against 0.75 / 0.35 with
the sigmoid (same potential-object network, 30 epochs of Eq. 6).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from soundmask.avs2d.features import LEVEL_CHANNELS

__all__ = [
    "AVSCNetConfig",
    "AudioActivation",
    "AudioCategoryNet",
    "PixelDecoder",
    "PotentialObjectNet",
    "sine_positions",
]

#: P_a of the audio branch: one sigmoid per category, or a softmax over them
AudioActivation = Literal["softmax", "sigmoid"]


@dataclass
class AVSCNetConfig:
    num_classes: int
    audio_dim: int
    queries: int = 16
    d_model: int = 128
    layers: int = 3
    heads: int = 4
    width: int = 64
    mask_dim: int = 32
    audio_hidden: int = 256
    audio_activation: AudioActivation = "sigmoid"

    def to_dict(self) -> dict:
        return asdict(self)


def sine_positions(h: int, w: int, dim: int) -> torch.Tensor:
    """(h·w, dim) 2D sine-cosine position encoding (DETR), rows in raster order."""
    d = dim // 4
    freq = 1.0 / (10000 ** (torch.arange(d, dtype=torch.float32) / d))
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    ys, xs = ys.reshape(-1, 1) / max(h, 1) * 2 * math.pi, xs.reshape(-1, 1) / max(w, 1) * 2 * math.pi
    return torch.cat([(ys * freq).sin(), (ys * freq).cos(), (xs * freq).sin(), (xs * freq).cos()], dim=1)


def _conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class PixelDecoder(nn.Module):
    """FPN over the stride-4..32 levels, refined at stride 2 → (B, mask_dim, 112, 112) and the FPN maps."""

    def __init__(self, width: int, mask_dim: int) -> None:
        super().__init__()
        self.lateral = nn.ModuleList([nn.Conv2d(c, width, 1) for c in LEVEL_CHANNELS[1:]])
        self.smooth = nn.ModuleList([_conv_bn(width, width) for _ in LEVEL_CHANNELS[1:-1]])
        self.fine_lateral = nn.Conv2d(LEVEL_CHANNELS[0], width // 2, 1)
        self.fine = nn.Sequential(
            nn.Conv2d(width + width // 2, width // 2, 1),
            nn.ReLU(),
            nn.Conv2d(width // 2, width // 2, 3, padding=1, groups=width // 2),
            nn.ReLU(),
            nn.Conv2d(width // 2, mask_dim, 1),
        )

    def forward(self, levels: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        rest = levels[1:]
        x = self.lateral[-1](rest[-1])
        maps = [x]
        for i in range(len(rest) - 2, -1, -1):
            x = F.interpolate(x, size=rest[i].shape[-2:], mode="bilinear", align_corners=False)
            x = self.smooth[i](x + self.lateral[i](rest[i]))
            maps.append(x)
        up = F.interpolate(x, size=levels[0].shape[-2:], mode="bilinear", align_corners=False)
        mask_feats = self.fine(torch.cat([up, self.fine_lateral(levels[0])], dim=1))
        return mask_feats, maps  # maps: strides 32, 16, 8, 4


class PotentialObjectNet(nn.Module):
    """Image pyramid → (class logits (B, N, K+1), mask logits (B, N, 112, 112)); see the module docstring."""

    def __init__(self, cfg: AVSCNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.pixel = PixelDecoder(cfg.width, cfg.mask_dim)
        self.memory_proj = nn.ModuleList([nn.Linear(cfg.width, d) for _ in range(2)])
        self.level_embed = nn.Parameter(torch.zeros(2, d))
        self.query_feat = nn.Parameter(torch.randn(cfg.queries, d) * 0.02)
        self.query_pos = nn.Parameter(torch.randn(cfg.queries, d) * 0.02)
        layer = nn.TransformerDecoderLayer(
            d, cfg.heads, dim_feedforward=2 * d, dropout=0.0, batch_first=True, norm_first=True, activation="gelu"
        )
        self.decoder = nn.TransformerDecoder(layer, cfg.layers, norm=nn.LayerNorm(d))
        self.class_head = nn.Linear(d, cfg.num_classes + 1)
        self.mask_embed = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, cfg.mask_dim))

    def forward(self, levels: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        mask_feats, maps = self.pixel(levels)
        B = mask_feats.shape[0]
        mem = []
        for k, m in enumerate(maps[:2]):
            h, w = m.shape[-2:]
            tok = self.memory_proj[k](m.flatten(2).transpose(1, 2))
            mem.append(tok + sine_positions(h, w, tok.shape[-1]).to(tok) + self.level_embed[k])
        q = (self.query_feat + self.query_pos).expand(B, -1, -1)
        out = self.decoder(q, torch.cat(mem, dim=1))
        cls = self.class_head(out)
        masks = torch.einsum("bnc,bchw->bnhw", self.mask_embed(out), mask_feats)
        return cls, masks


class AudioCategoryNet(nn.Module):
    """Audio features (B, Da) → P_a (B, K): MLP then softmax (Δ^K) or sigmoid."""

    def __init__(self, cfg: AVSCNetConfig) -> None:
        super().__init__()
        self.activation = cfg.audio_activation
        self.mlp = nn.Sequential(
            nn.LayerNorm(cfg.audio_dim),
            nn.Linear(cfg.audio_dim, cfg.audio_hidden),
            nn.GELU(),
            nn.Dropout(0.1),
            nn.Linear(cfg.audio_hidden, cfg.num_classes),
        )

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        z = self.mlp(audio)
        return z.softmax(-1) if self.activation == "softmax" else z.sigmoid()
