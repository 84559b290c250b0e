"""SeAC's option dataclasses: inference (:class:`SeACConfig`), association training (:class:`SeACTrainConfig`)
and proposer training (:class:`ProposerStageConfig`) — each field is also a ``--set KEY=VALUE`` option.

They live apart from :mod:`.segmenter` and :mod:`.train` so that both can import them: the training code never
imports the segmenter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from soundmask.avs2d.options import AudioEmbedderName, ImageEncoderName, ProposerName, check_choices
from soundmask.config import fields_of, option
from soundmask.errors import ConfigError
from soundmask.synth.config import PresetName

__all__ = ["ProposerStageConfig", "SeACConfig", "SeACTrainConfig"]


@dataclass
class SeACConfig:
    """SeAC's inference options (each is also a ``soundmask evaluate/segment`` option)."""

    mode: Literal["trained", "training-free"] = option(
        "trained", "trained: the association module of the checkpoint; training-free: audio tags ↔ visual class names"
    )
    proposer: ProposerName = option("learned", "proposal source: learned | yolo | sam | hybrid")
    proposer_path: str | None = option(
        None, "weights (learned, hybrid) or local Hugging Face folder (sam) of the proposer"
    )
    top_n: int = option(8, "masks kept per frame after NMS(0.5) (the paper's N)")
    encoder: ImageEncoderName = option("efficientnet-lite0", "visual encoder ψ: efficientnet-lite0 | clip")
    encoder_path: str | None = option(None, "local Hugging Face CLIP folder (encoder clip)")
    view_size: int = option(96, "side of the local/global views fed to the encoder (px)")
    lam: float = option(0.6, "λ of Eq. 1: weight of the local view")
    audio: AudioEmbedderName = option("yamnet", "audio embedder: yamnet | vggish | clap | ast")
    audio_path: str | None = option(None, "checkpoint/folder of the audio embedder (vggish, clap, ast)")
    sigma: float = option(0.9, "σ of Eq. 5 (semantic masks)")
    min_active: float = option(
        0.6, "a frame predicts nothing unless this fraction of its audio window sounds (or it holds an onset)"
    )
    min_confidence: float = option(-1.0, "frames whose best raw audio-mask cosine is below this predict nothing")
    semantic_weight: float = option(
        0.0,
        "trained mode: add this times the training-free score (the audio's YAMNet tags against each mask's "
        "ImageNet names in the MiniLM text space) to each mask's cosine before ranking (0: the paper's s_n only)",
    )

    def __post_init__(self) -> None:
        check_choices(self)
        if self.top_n < 1 or self.view_size < 16:
            raise ConfigError("top_n must be >= 1 and view_size >= 16")
        if not 0.0 <= self.lam <= 1.0:
            raise ConfigError(f"lam must be in [0, 1], got {self.lam}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SeACConfig:
        return cls(**fields_of(cls, d))


@dataclass
class SeACTrainConfig:
    """Options of ``soundmask train --method seac``."""

    epochs: int = option(60, "training epochs (one active frame per clip per epoch)")
    batch_size: int = option(64, "clips per batch B (audio mixing pairs them: K = B/2)")
    lr: float = option(1e-4, "AdamW learning rate (linearly decayed to 0)")
    weight_decay: float = option(0.01, "AdamW weight decay")
    mix_max_prob: float = option(0.5, "final probability of audio mixing (ramped from 0 over the epochs)")
    split: str = option("train", "dataset split to train on")
    max_clips: int = option(0, "use at most this many clips, a seeded subset drawn from every --data folder (0: all)")
    frames_per_clip: int = option(
        0, "cache the features of at most this many active frames per clip (0: all; an epoch uses one per clip)"
    )
    seed: int = option(0, "random seed (batches, mixing, initialisation)")
    mask_layers: int = option(4, "Transformer layers of the mask encoder (the paper's 4; 0: each mask alone)")
    noise_negatives: float = option(
        0.0,
        "ambient-noise audios added to every batch as negatives of every image, as a fraction of B (our "
        "addition, 0: the paper's MICL): the model learns that noise matches no object",
    )
    confidence_quantile: float = option(
        0.0,
        "after training, set min_confidence to this quantile of the best cosine of frames with their own audio, "
        "on a tenth of the training clips, held out of training for it (e.g. 0.05 keeps 95 in 100); frames below it "
        "predict nothing — noise and sounds of no visible object (0: off)",
    )

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2:
            raise ConfigError("epochs must be >= 1 and batch_size >= 2")
        if self.mask_layers < 0:
            raise ConfigError(f"mask_layers must be >= 0, got {self.mask_layers}")
        if not 0.0 <= self.mix_max_prob <= 1.0:
            raise ConfigError(f"mix_max_prob must be in [0, 1], got {self.mix_max_prob}")
        if self.frames_per_clip < 0 or self.noise_negatives < 0 or not 0.0 <= self.confidence_quantile < 1.0:
            raise ConfigError(
                "frames_per_clip and noise_negatives must be >= 0 and confidence_quantile in [0, 1)",
                fix="e.g. --set frames_per_clip=2 --set noise_negatives=0.25 --set confidence_quantile=0.05",
            )


@dataclass
class ProposerStageConfig:
    """Options of ``soundmask train --method seac --stage proposer`` (the learned proposal source)."""

    synth_count: int = option(2000, "generator seeds to draw training images from (train-split seeds only)")
    synth_seed: int = option(0, "first generator seed")
    synth_presets: tuple[PresetName, ...] = option(("s4", "ms3"), "generator presets, alternated")
    proposer_epochs: int = option(12, "proposer training epochs")
    proposer_lr: float = option(2e-3, "proposer AdamW learning rate (linearly decayed to 0)")
    proposer_init: str | None = option(
        None, "start from these proposer weights (fine-tuning) instead of a random decoder"
    )
    split: str = option("train", "split of the AVSBench-layout --data folders to take images from")

    def __post_init__(self) -> None:
        check_choices(self)
