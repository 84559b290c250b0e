"""A class-agnostic learned proposal source: a small decoder on frozen EfficientNet-Lite0 features that predicts,
per pixel, *objectness*, an *instance-centre heatmap* and an *offset to the instance centre*, trained on the
scene generator's instance masks and real-photo composites (never on sound masks: it knows objects, not sounds).

Grouping follows Panoptic-DeepLab (Cheng et al. 2020): centres are the local maxima of the heatmap (max-pool
NMS, ``center_threshold``); every foreground pixel joins the centre nearest to ``pixel + offset``. A proposal's
confidence is its centre's heat times its mean objectness. The decoder is an FPN-style top-down path over the
stride-4/8/16/32 block outputs (48 channels) whose heat/offset heads are upsampled to stride 2, where a
16-channel branch on the stride-2 block output refines objectness; logits and
offsets are upsampled to the image size before grouping.

Training (:func:`train_proposer`): BCE + soft-Dice on objectness, MSE (×``center_weight``) on a Gaussian
centre heatmap (σ = ``sigma`` px at stride 2), L1 on offsets inside objects; AdamW with linear decay. Weights
(≈0.4 MB) ship as ``weights/learned.pt``; ``soundmask train --method seac --stage proposer`` trains the decoder
(``--data``: generated AVSBench folders' instance masks; ``--set proposer_init=W.pt`` fine-tunes), and
``docs/avs2d.md`` gives the commands that made the shipped weights.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from soundmask.errors import ConfigError
from soundmask.vision.proposals.base import ProposalSource, check_image, select_top
from soundmask.vision.types import Proposals, mask_boxes

__all__ = [
    "LearnedProposer",
    "ProposalNet",
    "ProposerTrainConfig",
    "default_weights",
    "group_instances",
    "instance_targets",
    "train_proposer",
]

NET_SIZE = 224
LEVEL_BLOCKS = (0, 2, 4, 10, 15)  # EfficientNet-Lite0 blocks: strides 2, 4, 8, 16, 32
LEVEL_CHANNELS = (16, 24, 40, 112, 320)


def default_weights() -> Path:
    return Path(__file__).with_name("weights") / "learned.pt"


class ProposalNet(nn.Module):
    """Top-down decoder → (objectness logit, centre-heat logit, offset y, offset x) at stride 2.

    Centre heat and offsets come from the stride-4 map (upsampled); objectness is refined at stride 2 with the
    first block's features, where thin parts (instrument necks, legs) still show."""

    def __init__(self, width: int = 48, fine: int = 16) -> None:
        super().__init__()
        self.width, self.fine = width, fine
        self.lateral = nn.ModuleList([nn.Conv2d(c, width, 1) for c in LEVEL_CHANNELS[1:]])
        self.smooth = nn.ModuleList(
            [
                nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU())
                for _ in LEVEL_CHANNELS[1:-1]
            ]
        )
        self.coarse_head = nn.Conv2d(width, 3, 1)
        self.lateral2 = nn.Conv2d(LEVEL_CHANNELS[0], fine, 1)
        self.reduce = nn.Conv2d(width, fine, 1)
        self.fine_conv = nn.Sequential(nn.Conv2d(fine, fine, 3, padding=1), nn.BatchNorm2d(fine), nn.ReLU())
        self.fine_head = nn.Conv2d(fine, 1, 1)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        f2, rest = feats[0], feats[1:]
        x = self.lateral[-1](rest[-1].float())
        for i in range(len(rest) - 2, -1, -1):
            x = F.interpolate(x, size=rest[i].shape[-2:], mode="bilinear", align_corners=False)
            x = self.smooth[i](x + self.lateral[i](rest[i].float()))
        size = f2.shape[-2:]
        coarse = F.interpolate(self.coarse_head(x), size=size, mode="bilinear", align_corners=False)
        fine = self.fine_conv(
            F.interpolate(self.reduce(x), size=size, mode="bilinear", align_corners=False) + self.lateral2(f2.float())
        )
        return torch.cat([self.fine_head(fine), coarse], dim=1)


def backbone_levels(encoder: Any, images: torch.Tensor) -> list[torch.Tensor]:
    """Stride-2..32 block outputs of the EfficientNet-Lite0 ``encoder`` for (B, 3, 224, 224) images in [0, 1]."""
    return encoder.pyramid(images, LEVEL_BLOCKS)


def to_net_input(images: np.ndarray) -> torch.Tensor:
    """(B, H, W, 3) uint8 → (B, 3, 224, 224) float in [0, 1] (bilinear)."""
    x = torch.from_numpy(np.require(images, requirements=["C", "W"])).permute(0, 3, 1, 2).float() / 255.0
    if x.shape[-2:] != (NET_SIZE, NET_SIZE):
        x = F.interpolate(x, size=(NET_SIZE, NET_SIZE), mode="bilinear", align_corners=False, antialias=True)
    return x


def target_ids(ids: np.ndarray, size: int = NET_SIZE // 2) -> np.ndarray:
    """An H×W instance-id image sampled (nearest, pixel centres) to the ``size²`` target grid."""
    ids = np.asarray(ids)
    h, w = ids.shape
    yi = (np.arange(size) + 0.5) * h / size
    xi = (np.arange(size) + 0.5) * w / size
    return ids[np.clip(yi.astype(int), 0, h - 1)][:, np.clip(xi.astype(int), 0, w - 1)]


def instance_targets(
    ids: np.ndarray, size: int = NET_SIZE // 2, sigma: float = 3.0, min_area: int = 4
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training targets at ``size²`` from an H×W instance-id image (0 = background).

    Returns objectness (S, S) float32, centre heat (S, S) float32 (max of per-instance Gaussians at each
    instance's centre of mass), offsets (2, S, S) float32 (centre − pixel, in target pixels; 0 off objects)
    and an offset weight (S, S) float32 (1 on instances of at least ``min_area`` target pixels).
    """
    small = target_ids(ids, size)
    fg = (small > 0).astype(np.float32)
    heat = np.zeros((size, size), np.float32)
    off = np.zeros((2, size, size), np.float32)
    wgt = np.zeros((size, size), np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    for k in np.unique(small):
        if k == 0:
            continue
        m = small == k
        if m.sum() < min_area:
            continue
        cy, cx = yy[m].mean(), xx[m].mean()
        heat = np.maximum(heat, np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2)).astype(np.float32))
        off[0][m] = cy - yy[m]
        off[1][m] = cx - xx[m]
        wgt[m] = 1.0
    return fg, heat, off, wgt


def group_instances(
    fg_logit: torch.Tensor,
    heat_logit: torch.Tensor,
    offset: torch.Tensor,
    *,
    center_threshold: float = 0.1,
    fg_threshold: float = 0.5,
    nms_kernel: int = 7,
    max_centers: int = 24,
    min_area: int = 16,
    scale: float = 1.0,
) -> Proposals:
    """Panoptic-DeepLab grouping of one image's maps (each H×W; ``offset`` 2×H×W in pixels of the *network
    output*, multiplied by ``scale`` to image pixels) into instance proposals."""
    h, w = fg_logit.shape
    heat = torch.sigmoid(heat_logit)
    pooled = F.max_pool2d(heat[None, None], nms_kernel, stride=1, padding=nms_kernel // 2)[0, 0]
    peaks = ((heat == pooled) & (heat > center_threshold)).nonzero()
    if len(peaks) > max_centers:
        top = torch.argsort(heat[peaks[:, 0], peaks[:, 1]], descending=True)[:max_centers]
        peaks = peaks[top]
    fgp = torch.sigmoid(fg_logit)
    fg = fgp > fg_threshold
    if len(peaks) == 0 or not bool(fg.any()):
        return Proposals.empty(h, w, "learned")
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    py = yy + offset[0] * scale
    px = xx + offset[1] * scale
    c = peaks.float()
    d = (py[None] - c[:, 0, None, None]) ** 2 + (px[None] - c[:, 1, None, None]) ** 2  # (K, H, W)
    assign = d.argmin(0)
    masks, scores = [], []
    for k in range(len(peaks)):
        m = fg & (assign == k)
        area = int(m.sum())
        if area < min_area:
            continue
        masks.append(m.numpy())
        scores.append(float(heat[peaks[k, 0], peaks[k, 1]]) * float(fgp[m].mean()))
    if not masks:
        return Proposals.empty(h, w, "learned")
    masks_np = np.stack(masks)
    return Proposals(masks_np, np.array(scores, np.float32), mask_boxes(masks_np), source="learned")


class LearnedProposer(ProposalSource):
    """The learned class-agnostic proposer (see the module docstring). ``weights``: a checkpoint written by
    :func:`train_proposer` (default: the shipped ``weights/learned.pt``)."""

    name = "learned"

    def __init__(
        self,
        weights: str | Path | None = None,
        top_n: int = 8,
        nms_iou: float = 0.5,
        center_threshold: float = 0.1,
        fg_threshold: float = 0.5,
        encoder: Any = None,
    ) -> None:
        super().__init__(top_n, nms_iou)
        path = Path(weights) if weights is not None else default_weights()
        if not path.is_file():
            raise ConfigError(
                "proposer weights not found",
                path,
                "train them with `soundmask train --method seac --stage proposer` or pass weights=",
            )
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
            self.net = ProposalNet(**ckpt["arch"])
            self.net.load_state_dict(ckpt["state_dict"])
        except Exception as e:  # corrupt or foreign file
            raise ConfigError(
                f"not a proposer checkpoint ({type(e).__name__}: {e})", path, "pass a file written by train_proposer"
            ) from e
        self.net.eval()
        self.center_threshold, self.fg_threshold = center_threshold, fg_threshold
        if encoder is None:
            from soundmask.vision.backbones import get_image_encoder

            encoder = get_image_encoder("efficientnet-lite0")
        self.encoder = encoder

    @torch.no_grad()
    def maps(self, images: np.ndarray) -> torch.Tensor:
        """(B, 4, 112, 112) raw decoder outputs for (B, H, W, 3) uint8 images."""
        return self.net(backbone_levels(self.encoder, to_net_input(images)))

    def _group(self, out: torch.Tensor, h: int, w: int) -> Proposals:
        up = F.interpolate(out[None], size=(h, w), mode="bilinear", align_corners=False)[0]
        scale = h / out.shape[-2]
        return group_instances(
            up[0],
            up[1],
            up[2:],
            center_threshold=self.center_threshold,
            fg_threshold=self.fg_threshold,
            scale=scale,
            nms_kernel=max(3, int(round(7 * scale / 2)) * 2 + 1),
            min_area=max(4, int(16 * scale * scale / 4)),
        )

    def _propose(self, image: np.ndarray) -> Proposals:
        return self._group(self.maps(image[None])[0], *image.shape[:2])

    def propose_batch(self, images: np.ndarray) -> list[Proposals]:
        images = np.asarray(images)
        for im in images:
            check_image(im)
        out = self.maps(images)
        h, w = images.shape[1:3]
        return [select_top(self._group(o, h, w), self.top_n, self.nms_iou) for o in out]


# ----------------------------------------------------------------------------------------------- training
@dataclass
class ProposerTrainConfig:
    epochs: int = 12
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    center_weight: float = 200.0
    offset_weight: float = 0.1
    sigma: float = 3.0
    flip: bool = True
    seed: int = 0
    init: str | None = None  # start from these weights (fine-tuning) instead of a random decoder


def _cache_features(
    encoder: Any,
    images: list[np.ndarray],
    ids: list[np.ndarray],
    flip: bool,
    progress: Callable[[str, int, int], None] | None,
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Frozen backbone levels (float16) of every image (and its mirror image with ``flip``) and the instance ids
    on the target grid (int32). The targets themselves are made per batch (:func:`_batch_targets`): held for a
    whole training set they would take more memory than the features (5 float32 maps per image)."""
    n_var = 2 if flip else 1
    total = len(images) * n_var
    feats: list[torch.Tensor] = []
    small = torch.zeros((total, NET_SIZE // 2, NET_SIZE // 2), dtype=torch.int32)
    for k, (im, idm) in enumerate(zip(images, ids, strict=True)):
        variants = [(im, idm)] + ([(im[:, ::-1], idm[:, ::-1])] if flip else [])
        with torch.no_grad():
            lv = backbone_levels(encoder, to_net_input(np.stack([v[0] for v in variants])))
        if not feats:  # preallocated once the level shapes are known: no list of pieces concatenated at the end
            feats = [torch.empty((total, *f.shape[1:]), dtype=torch.float16) for f in lv]
        for dst, f in zip(feats, lv, strict=True):
            dst[k * n_var : (k + 1) * n_var] = f.half()
        for j, (_, i_) in enumerate(variants):
            small[k * n_var + j] = torch.from_numpy(target_ids(i_).astype(np.int32))
        if progress is not None:
            progress("features", k + 1, len(images))
    return feats, small


def _batch_targets(small: torch.Tensor, sigma: float) -> torch.Tensor:
    """(B, 5, S, S) targets (objectness, centre heat, offsets y/x, offset weight) of (B, S, S) target-grid ids."""
    out = []
    for ids in small.numpy():
        fg, heat, off, wgt = instance_targets(ids, size=ids.shape[0], sigma=sigma)
        out.append(np.concatenate([fg[None], heat[None], off, wgt[None]]))
    return torch.from_numpy(np.stack(out))


def proposer_loss(out: torch.Tensor, tgt: torch.Tensor, cfg: ProposerTrainConfig) -> torch.Tensor:
    fg, heat, off, wgt = tgt[:, 0], tgt[:, 1], tgt[:, 2:4], tgt[:, 4]
    p = torch.sigmoid(out[:, 0])
    bce = F.binary_cross_entropy_with_logits(out[:, 0], fg)
    dice = 1 - (2 * (p * fg).sum((1, 2)) + 1) / (p.sum((1, 2)) + fg.sum((1, 2)) + 1)
    center = F.mse_loss(torch.sigmoid(out[:, 1]), heat)
    l1 = ((out[:, 2:4] - off).abs().sum(1) * wgt).sum() / wgt.sum().clamp(min=1)
    return bce + dice.mean() + cfg.center_weight * center + cfg.offset_weight * l1


def train_proposer(
    images: list[np.ndarray],
    ids: list[np.ndarray],
    out: str | Path,
    cfg: ProposerTrainConfig | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Train the decoder on RGB images (H×W×3 uint8) and their instance-id maps; write the checkpoint to ``out``
    (atomically). Returns a log with the loss per epoch."""
    from soundmask.data.io import atomic_path
    from soundmask.vision.backbones import get_image_encoder

    cfg = cfg or ProposerTrainConfig()
    if len(images) == 0 or len(images) != len(ids):
        raise ConfigError(f"need matching, non-empty images and instance maps, got {len(images)} and {len(ids)}")
    torch.manual_seed(cfg.seed)
    encoder = get_image_encoder("efficientnet-lite0")
    feats, small = _cache_features(encoder, images, ids, cfg.flip, progress)
    net = ProposalNet()
    if cfg.init:
        net.load_state_dict(torch.load(cfg.init, map_location="cpu", weights_only=True)["state_dict"])
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n = small.shape[0]
    steps = cfg.epochs * ((n + cfg.batch_size - 1) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1 - s / max(1, steps)))
    g = torch.Generator().manual_seed(cfg.seed)
    log: dict[str, Any] = {"config": asdict(cfg), "images": len(images), "loss": []}
    t0 = time.time()
    for ep in range(cfg.epochs):
        perm = torch.randperm(n, generator=g)
        total = 0.0
        for b in range(0, n, cfg.batch_size):
            idx = perm[b : b + cfg.batch_size]
            loss = proposer_loss(net([f[idx] for f in feats]), _batch_targets(small[idx], cfg.sigma), cfg)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        log["loss"].append(total / n)
        if progress is not None:
            progress(f"epoch {ep + 1} loss {total / n:.4f}", ep + 1, cfg.epochs)
    log["seconds"] = time.time() - t0
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        torch.save({"arch": {"width": net.width, "fine": net.fine}, "state_dict": net.state_dict(), "log": log}, tmp)
    return log
