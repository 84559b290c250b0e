"""SDAVS — selective noise suppression and discriminative mutual interaction (paper ``004_*``).

An encoder-decoder: the frozen EfficientNet-Lite0 pyramid of every frame of a clip and the frames' audio
features go through four decoder stages of SNRP (Eq. 1–3) then DAMF (Eq. 4–7), fused by direct and skip
connections (Eq. 8–9) into one sound-mask logit map per frame (:mod:`.model`); trained with
``L = L_ce + L_iou + L_dice`` (:mod:`.losses`). A silent audio window predicts nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from soundmask.avs2d.base import FrameObjects
from soundmask.avs2d.features import ClipFeatures, TrainingFeatures
from soundmask.avs2d.sdavs.losses import sdavs_loss
from soundmask.avs2d.sdavs.model import SDAVSNet, SDAVSNetConfig
from soundmask.avs2d.supervised import (
    CounterfactualAudio,
    CounterfactualOptions,
    FeatureSegmenter,
    SupervisedConfig,
    Swap,
    pooled_j,
    upsample_logits,
)
from soundmask.avs2d.trainer import TrainConfig, fit_phase
from soundmask.config import option
from soundmask.errors import ConfigError

__all__ = ["SDAVS", "SDAVSConfig", "SDAVSTrainConfig"]


@dataclass
class SDAVSConfig(SupervisedConfig):
    """SDAVS's options (the architecture ones apply when training; ``snrp``/``damf`` are the ablations)."""

    width: int = option(32, "decoder channels C")
    snrp: bool = option(True, "use SNRP (Eq. 1-3); false: the ablation without it")
    damf: bool = option(True, "use DAMF (Eq. 4-7); false: the ablation without it")
    fine: bool = option(True, "refine the stride-4 mask at stride 2 with the first backbone block")


@dataclass
class SDAVSTrainConfig(TrainConfig, CounterfactualOptions):
    """Training options of SDAVS (one phase, ``net``)."""

    epochs: int = option(20, "training epochs (every clip once per epoch)")
    batch_size: int = option(8, "clips per batch")
    clip_frames: int = option(
        3,
        "frames of a clip seen together in training: a window around a random annotated "
        "frame (0: the whole clip); prediction always sees the whole clip",
    )
    lr: float = option(5e-4, "AdamW learning rate (the paper's 5e-5 is for a fine-tuned backbone; ours is frozen)")


class SDAVS(FeatureSegmenter):
    """SDAVS: SNRP noise gating + DAMF bidirectional fusion (paper 004)."""

    name = "sdavs"
    config_class = SDAVSConfig
    train_config_class = SDAVSTrainConfig

    def __init__(self, config: SDAVSConfig, net: SDAVSNet) -> None:
        super().__init__(config)
        self.net = net.eval()

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any], config: Any, path: Path) -> SDAVS:
        try:
            net = SDAVSNet(SDAVSNetConfig(**ckpt["net_config"]))
            net.load_state_dict(ckpt["phases"]["net"]["weights"])
        except (KeyError, TypeError, RuntimeError) as e:
            raise ConfigError(
                f"incomplete or mismatched SDAVS checkpoint ({type(e).__name__}: {e})"[:200],
                path,
                "finish training it (`soundmask train --method sdavs` resumes)",
            ) from e
        return cls(config, net)

    def infer(self, feats: ClipFeatures, size: tuple[int, int]) -> tuple[np.ndarray, list[FrameObjects]]:
        logits = self.net(feats.frame_levels(), torch.from_numpy(feats.audio)[None])[0]
        return upsample_logits(logits, size).sigmoid().numpy(), []

    @classmethod
    def fit(
        cls,
        train: TrainingFeatures,
        val: TrainingFeatures | None,
        config: SDAVSConfig,
        tcfg: SDAVSTrainConfig,
        out: Path,
        resume: bool = True,
        progress: Any = None,
    ) -> dict[str, Any]:
        torch.manual_seed(tcfg.seed)
        ncfg = SDAVSNetConfig(
            audio_dim=int(train.audio.shape[1]),
            width=config.width,
            snrp=config.snrp,
            damf=config.damf,
            fine=config.fine,
        )
        net = SDAVSNet(ncfg)
        base = {
            "kind": "sdavs",
            "version": 1,
            "config": asdict(config),
            "net_config": ncfg.to_dict(),
            "categories": list(train.categories),
            "train_config": asdict(tcfg),
        }
        clips = [r for r in train.clip_rows() if bool(train.valid[r].any())]
        counterfactual = CounterfactualAudio.for_training(train, tcfg.swap_prob, tcfg.negative_prob, config)

        def batches(g: torch.Generator) -> list[tuple[list[torch.Tensor], list[Swap | None]]]:
            order = torch.randperm(len(clips), generator=g).tolist()
            wins = [_window(clips[i], train.valid[clips[i]], tcfg.clip_frames, g) for i in order]
            swaps: list[Swap | None] = (
                counterfactual.draw(wins, tcfg.swap_prob, g, tcfg.negative_prob)
                if counterfactual is not None
                else [None] * len(wins)
            )
            return [
                (wins[b : b + tcfg.batch_size], swaps[b : b + tcfg.batch_size])
                for b in range(0, len(wins), tcfg.batch_size)
            ]

        def loss_fn(batch: tuple[list[torch.Tensor], list[Swap | None]]) -> tuple[torch.Tensor, int]:
            logits, valid, gt = _clip_batch(net, train, *batch)
            return sdavs_loss(logits[valid], gt[valid])["total"], len(batch[0])

        @torch.no_grad()
        def validate() -> float:
            assert val is not None
            preds, gts = [], []
            vclips = val.clip_rows()
            for b in range(0, len(vclips), 8):
                logits, valid, gt = _clip_batch(net, val, vclips[b : b + 8])
                act = torch.cat([val.active[r] for r in vclips[b : b + 8]])
                preds.append(((logits > 0) & act[:, None, None])[valid])
                gts.append(gt[valid])
            return pooled_j(torch.cat(preds), torch.cat(gts))

        return {
            "net": fit_phase(
                "net", net, batches, loss_fn, tcfg, out, base, validate if val is not None else None, resume, progress
            )
        }


def _window(rows: torch.Tensor, valid: torch.Tensor, n: int, g: torch.Generator) -> torch.Tensor:
    """``n`` consecutive rows of a clip around one random annotated frame (the whole clip when n is 0 or ≥ T)."""
    T = len(rows)
    if n <= 0 or n >= T:
        return rows
    cand = torch.nonzero(valid).flatten()
    t = int(cand[torch.randint(len(cand), (1,), generator=g)])
    start = min(max(0, t - n // 2), T - n)
    return rows[start : start + n]


def _clip_batch(
    net: SDAVSNet, feats: TrainingFeatures, clips: list[torch.Tensor], swaps: list[Swap | None] | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run ``net`` on whole clips of equal length → (frames, 112, 112) logits, valid flags, ground truth; a
    clip with a :class:`Swap` hears the donor's audio and is supervised (every frame) by its target."""
    swaps = swaps or [None] * len(clips)
    lengths = {len(r) for r in clips}
    if len(lengths) != 1:  # clips of different lengths go one by one
        parts = [_clip_batch(net, feats, [r], [s]) for r, s in zip(clips, swaps, strict=True)]
        return tuple(torch.cat([p[k] for p in parts]) for k in range(3))  # type: ignore[return-value]
    rows = torch.cat(clips)
    T = lengths.pop()
    audio, valid, gt = feats.audio[rows].clone(), feats.valid[rows].clone(), feats.masks[rows].clone()
    for i, s in enumerate(swaps):
        if s is not None:
            audio[i * T : (i + 1) * T], gt[i * T : (i + 1) * T], valid[i * T : (i + 1) * T] = s.audio, s.target, True
    logits = net(feats.frame_levels(rows), audio.reshape(len(clips), T, -1))
    return logits.reshape(len(rows), *logits.shape[2:]), valid, gt
