"""AVSC — audio-visual instance-aware segmentation by cross-modal mutual semantics (paper ``003_*``).

1. The **potential sounding-object network** (:class:`~.model.PotentialObjectNet`) proposes N (class, mask)
   pairs per frame; trained with Hungarian matching, Eq. 2–3 (CE + 20·focal + 1·dice) and the silent-object-
   aware loss Eq. 4 (λ_soas = 1), Eq. 5 in total — phase ``objects``. Its targets are every visible object
   with its category where the data has instance masks (generated data), else the sound masks.
2. The **category filter** and **score filter** keep the most confident mask of each category (Sec. 3.3).
3. The **audio branch** (:class:`~.model.AudioCategoryNet`) gives P_a over the K categories; the sound mask is
   S_asl = Σ_j p_cj · m_j (Eq. 1), trained with BCE against the ground-truth mask (Eq. 6) — phase ``audio``,
   with the segmentation network frozen. The audio branch never sees a category label.

Audio decides which instance sounds: with the sound of another visible object the mask moves to it, with a
sound no visible object makes it is empty, and a silent window predicts nothing at all.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from soundmask.avs2d.avsc.losses import asl_map, avc_loss, gt_segments, mask_cls_loss, potential_instances
from soundmask.avs2d.avsc.model import AudioActivation, AudioCategoryNet, AVSCNetConfig, PotentialObjectNet
from soundmask.avs2d.base import FrameObjects
from soundmask.avs2d.features import ClipFeatures, TrainingFeatures
from soundmask.avs2d.supervised import (
    CounterfactualAudio,
    CounterfactualOptions,
    FeatureSegmenter,
    SupervisedConfig,
    one_row_per_clip,
    pooled_j,
    upsample_logits,
)
from soundmask.avs2d.trainer import TrainConfig, fit_phase
from soundmask.config import fields_of, option
from soundmask.errors import ConfigError, DataError

__all__ = ["AVSC", "AVSCConfig", "AVSCTrainConfig"]


@dataclass
class AVSCConfig(SupervisedConfig):
    """AVSC's options (inference; the network sizes and loss weights apply when training)."""

    filter_rule: Literal["argmax", "threshold"] = option(
        "threshold",
        "category filter: argmax (the paper's: drop "
        "a query whose most probable class is no-object) | "
        "threshold (drop it when p(no-object) > noobj_threshold)",
    )
    noobj_threshold: float = option(0.9, "threshold rule: drop a query whose no-object probability is above this")
    queries: int = option(16, "learnable queries N (potential objects per frame)")
    layers: int = option(3, "transformer decoder layers")
    audio_activation: AudioActivation = option(
        "sigmoid", "P_a: sigmoid (one probability per category) | softmax (the paper's simplex Δ^K)"
    )
    lambda_f: float = option(20.0, "λ_f, weight of the focal mask loss (Eq. 3)")
    lambda_d: float = option(1.0, "λ_d, weight of the dice mask loss (Eq. 3)")
    lambda_soas: float = option(1.0, "λ_soas, weight of the silent-object-aware loss (Eq. 5); 0 disables it")
    eos_weight: float = option(0.1, "class-loss weight of the no-object targets")


@dataclass
class AVSCTrainConfig(TrainConfig, CounterfactualOptions):
    """Training options of AVSC: phase ``objects`` uses these; phase ``audio`` uses ``audio_epochs``/``audio_lr``."""

    epochs: int = option(
        16,
        "epochs of the potential-object network (one annotated frame per clip per epoch; the "
        "best validated one is kept)",
    )
    batch_size: int = option(16, "frames per batch")
    lr: float = option(4e-4, "AdamW learning rate of the potential-object network")
    audio_epochs: int = option(30, "epochs of the audio branch (Eq. 6)")
    audio_lr: float = option(1e-3, "learning rate of the audio branch (the paper's 0.001)")
    instance_targets: bool = option(
        True,
        "supervise the potential-object network with every visible object's "
        "instance mask and category where the data has them (generated "
        "data); false: the sound masks only, as AVSBench allows",
    )
    instance_min_area: float = option(
        0.005,
        "instance targets: leave out objects covering less of the frame than this (slivers cut off by the frame edge)",
    )


class AVSC(FeatureSegmenter):
    """AVSC: potential sounding objects + audio category scores (paper 003)."""

    name = "avsc"
    config_class = AVSCConfig
    train_config_class = AVSCTrainConfig
    config: AVSCConfig

    def __init__(
        self, config: AVSCConfig, net: PotentialObjectNet, audio_net: AudioCategoryNet, categories: tuple[str, ...]
    ) -> None:
        super().__init__(config, categories)
        self.net = net.eval()
        self.audio_net = audio_net.eval()

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any], config: Any, path: Path) -> AVSC:
        try:
            ncfg = AVSCNetConfig(**ckpt["net_config"])
            net, anet = PotentialObjectNet(ncfg), AudioCategoryNet(ncfg)
            net.load_state_dict(ckpt["phases"]["objects"]["weights"])
            anet.load_state_dict(ckpt["phases"]["audio"]["weights"])
        except (KeyError, TypeError, RuntimeError) as e:
            raise ConfigError(
                f"incomplete or mismatched AVSC checkpoint ({type(e).__name__}: {e})"[:200],
                path,
                "finish training it (`soundmask train --method avsc` resumes)",
            ) from e
        return cls(config, net, anet, tuple(ckpt["categories"]))

    # ------------------------------------------------------------------------------------------ inference
    def infer(self, feats: ClipFeatures, size: tuple[int, int]) -> tuple[np.ndarray, list[FrameObjects]]:
        levels = [lv.float() for lv in feats.levels]
        cls_logits, mask_logits = self.net(levels)
        p_a = self.audio_net(torch.from_numpy(feats.audio))
        per_image = []
        for u in range(len(cls_logits)):
            _, _, index = potential_instances(
                cls_logits[u], mask_logits[u], self.config.filter_rule, self.config.noobj_threshold
            )
            cats = torch.nonzero(index >= 0).flatten()
            full = (
                upsample_logits(mask_logits[u, index[cats]], size) > 0
                if len(cats)
                else torch.zeros((0, *size), dtype=torch.bool)
            )
            per_image.append((cats, full))
        T = len(feats.frame_index)
        out = np.zeros((T, *size), np.float32)
        objects = []
        for t in range(T):
            cats, full = per_image[int(feats.frame_index[t])]
            scores = p_a[t, cats]
            if len(cats):
                out[t] = asl_map(scores[None], full[None])[0].numpy()
            # FrameObjects.confidence is the raw audio-object score: for AVSC, p_a of the mask's category itself
            objects.append(
                FrameObjects(
                    full.numpy(),
                    scores.numpy().astype(np.float32),
                    tuple(self.categories[int(c)] for c in cats),
                    scores.numpy().astype(np.float32),
                )
            )
        return out, objects

    # ------------------------------------------------------------------------------------------ training
    @classmethod
    def fit(
        cls,
        train: TrainingFeatures,
        val: TrainingFeatures | None,
        config: AVSCConfig,
        tcfg: AVSCTrainConfig,
        out: Path,
        resume: bool = True,
        progress: Any = None,
    ) -> dict[str, Any]:
        if not train.categories:
            raise DataError(
                "AVSC needs the category of some training clips (S4 has them, MS3 alone does not)",
                fix="add an S4-layout folder with --data",
            )
        torch.manual_seed(tcfg.seed)
        ncfg = AVSCNetConfig(
            num_classes=len(train.categories),
            audio_dim=int(train.audio.shape[1]),
            queries=config.queries,
            layers=config.layers,
            audio_activation=config.audio_activation,
        )
        net, anet = PotentialObjectNet(ncfg), AudioCategoryNet(ncfg)
        base = {
            "kind": "avsc",
            "version": 1,
            "config": asdict(config),
            "net_config": ncfg.to_dict(),
            "categories": list(train.categories),
            "train_config": asdict(tcfg),
        }
        segs = _segments(train, tcfg.instance_targets, tcfg.instance_min_area)

        def batches(g: torch.Generator) -> list[torch.Tensor]:
            pick = one_row_per_clip(train, train.valid, g)
            return [pick[b : b + tcfg.batch_size] for b in range(0, len(pick), tcfg.batch_size)]

        def objects_loss(batch: torch.Tensor) -> tuple[torch.Tensor, int]:
            cls_logits, mask_logits = net(train.frame_levels(batch))
            return _objects_loss(cls_logits, mask_logits, [segs[int(r)] for r in batch], config), len(batch)

        val_rows = torch.nonzero(val.valid).flatten()[:400] if val is not None else None
        val_segs = _segments(val, tcfg.instance_targets, tcfg.instance_min_area) if val is not None else None

        @torch.no_grad()
        def objects_val() -> float:
            assert val is not None and val_rows is not None and val_segs is not None
            tot = 0.0
            for b in range(0, len(val_rows), 32):
                r = val_rows[b : b + 32]
                c, m = net(val.frame_levels(r))
                tot += float(_objects_loss(c, m, [val_segs[int(i)] for i in r], config)) * len(r)
            return -tot / max(1, len(val_rows))

        net_opts = {
            k: getattr(config, k)
            for k in (
                "queries",
                "layers",
                "lambda_f",
                "lambda_d",
                "lambda_soas",
                "eos_weight",
                "audio",
                "audio_path",
                "min_active",
            )
        }
        ocfg = TrainConfig(**fields_of(TrainConfig, asdict(tcfg)))
        log = {
            "objects": fit_phase(
                "objects",
                net,
                batches,
                objects_loss,
                ocfg,
                out,
                base,
                objects_val if val is not None else None,
                resume,
                progress,
                invalidates=("audio",),
                identity={
                    "model": net_opts,
                    "instance_targets": tcfg.instance_targets,
                    "instance_min_area": tcfg.instance_min_area,
                },
            )
        }
        net.eval()
        inst = _instances(net, train, config, progress)
        vinst = _instances(net, val, config, progress, "val") if val is not None else None
        arows = torch.nonzero(train.valid & train.active).flatten()
        if not bool((inst[1][train.image[arows]] >= 0).any()):
            raise DataError(
                "the potential-object network keeps no object in any training frame, so the audio "
                "branch has nothing to learn from",
                out,
                "train the objects phase longer (--set epochs=...) or raise --set noobj_threshold",
            )

        counterfactual = CounterfactualAudio.for_training(train, tcfg.swap_prob, tcfg.negative_prob, config)

        def audio_batches(g: torch.Generator) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
            perm = arows[torch.randperm(len(arows), generator=g)]
            audio, target = train.audio[perm].clone(), train.masks[perm].clone()
            if counterfactual is not None:
                for i, sw in enumerate(
                    counterfactual.draw(
                        [perm[i : i + 1] for i in range(len(perm))], tcfg.swap_prob, g, tcfg.negative_prob
                    )
                ):
                    if sw is not None:
                        audio[i], target[i] = sw.audio[0], sw.target[0]
            return [(perm[b : b + 64], audio[b : b + 64], target[b : b + 64]) for b in range(0, len(perm), 64)]

        def audio_loss(batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, int]:
            rows, audio, target = batch
            img = train.image[rows]
            s = _asl(anet(audio), inst[0][img], inst[1][img])
            return avc_loss(s, target), len(rows)

        @torch.no_grad()
        def audio_val() -> float:
            assert val is not None and vinst is not None
            r = torch.nonzero(val.valid).flatten()
            s = _asl(anet(val.audio[r]), vinst[0][val.image[r]], vinst[1][val.image[r]]) * val.active[r, None, None]
            return pooled_j(s > 0.5, val.masks[r])

        acfg = TrainConfig(
            **{
                **fields_of(TrainConfig, asdict(tcfg)),
                "epochs": tcfg.audio_epochs,
                "lr": tcfg.audio_lr,
                "batch_size": 64,
            }
        )
        audio_opts = {k: getattr(config, k) for k in ("audio_activation", "filter_rule", "noobj_threshold")}
        log["audio"] = fit_phase(
            "audio",
            anet,
            audio_batches,
            audio_loss,
            acfg,
            out,
            base,
            audio_val if val is not None else None,
            resume,
            progress,
            identity={
                "model": {**net_opts, **audio_opts},
                "instance_targets": tcfg.instance_targets,
                "swap_prob": tcfg.swap_prob,
                "negative_prob": tcfg.negative_prob,
            },
        )
        return log


def _segments(
    feats: TrainingFeatures, instance_targets: bool = True, min_area: float = 0.0
) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """Targets of the potential-object network (flattened float masks, categories) of every row with a mask:
    with ``instance_targets`` and a row with instance data, every visible object (sounding or silent — the
    *potential* sounding objects of Sec. 3.1, which is what lets the audio select a silent object when it is
    the one heard; objects under ``min_area`` of the frame are left out unless they sound); otherwise the
    segments of the sound mask (:func:`gt_segments`)."""
    out = {}
    for r in torch.nonzero(feats.valid).flatten().tolist():
        m_t, c_t = feats.row_instances(r) if instance_targets else (torch.zeros(0), torch.zeros(0))
        if len(c_t):
            big = m_t.flatten(1).float().mean(1) >= min_area
            big |= (m_t & feats.masks[r]).flatten(1).any(1)  # a sounding object always stays
            m_t, c_t = m_t[big], c_t[big]
        if len(c_t):
            m, c = m_t.numpy(), c_t.numpy()
        else:
            m, c = gt_segments(feats.masks[r].numpy(), int(feats.category[r]))
        out[r] = (
            torch.from_numpy(m.reshape(len(m), m.shape[-2] * m.shape[-1]).astype(np.float32)),
            torch.from_numpy(c),
        )
    return out


def _objects_loss(
    cls_logits: torch.Tensor, mask_logits: torch.Tensor, segs: list[tuple[torch.Tensor, torch.Tensor]], c: AVSCConfig
) -> torch.Tensor:
    total = cls_logits.sum() * 0
    flat = mask_logits.flatten(2)
    for b, (m, k) in enumerate(segs):
        total = (
            total
            + mask_cls_loss(cls_logits[b], flat[b], m, k, c.lambda_f, c.lambda_d, c.lambda_soas, c.eos_weight)["total"]
        )
    return total / len(segs)


@torch.no_grad()
def _instances(
    net: PotentialObjectNet, feats: TrainingFeatures, c: AVSCConfig, progress: Any = None, label: str = "train"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image, its potential instances at 112²: ((M, J, 112, 112) bool, (M, J) category, −1 pad)."""
    n_img = len(feats.levels[0])
    found: list[tuple[torch.Tensor, torch.Tensor]] = []
    for b in range(0, n_img, 32):
        if progress is not None:  # minutes on a large training set, between the two phases
            progress(f"potential objects ({label})", b, n_img)
        idx = torch.arange(b, min(n_img, b + 32))
        cls_logits, mask_logits = net([lv[idx].float() for lv in feats.levels])
        for u in range(len(idx)):
            masks, _, index = potential_instances(cls_logits[u], mask_logits[u], c.filter_rule, c.noobj_threshold)
            cats = torch.nonzero(index >= 0).flatten()
            found.append((masks[cats], cats))
    J = max(1, max(len(k) for _, k in found))
    m_img = torch.zeros((n_img, J, *feats.masks.shape[1:]), dtype=torch.bool)
    c_img = torch.full((n_img, J), -1, dtype=torch.long)
    for u, (m, k) in enumerate(found):
        m_img[u, : len(k)], c_img[u, : len(k)] = m, k
    return m_img, c_img


def _asl(p_a: torch.Tensor, masks: torch.Tensor, cats: torch.Tensor) -> torch.Tensor:
    """Eq. 1 with the padded instance lists of :func:`_instances`."""
    scores = p_a.gather(1, cats.clamp(min=0)) * (cats >= 0)
    return asl_map(scores, masks)
