"""What the supervised 2D methods (AVSC, SDAVS) share: the inference options common to both, the predict
skeleton (frozen features → the method's networks → full-resolution soft masks, silent windows predict
nothing) and the train skeleton (cached training / validation features → the method's phases through
:func:`soundmask.avs2d.trainer.fit_phase`).

A method subclasses :class:`FeatureSegmenter`, sets ``config_class`` / ``train_config_class`` and implements
``infer`` (features of one clip → masks and objects), ``fit`` (features → checkpoint) and ``from_checkpoint``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from soundmask.avs2d.base import FrameObjects, Prediction, Segmenter, check_inputs
from soundmask.avs2d.features import ClipFeatures, FeatureExtractor, TrainingFeatures, build_training_features
from soundmask.avs2d.options import AudioEmbedderName, check_choices
from soundmask.avs2d.trainer import TrainConfig, read_checkpoint
from soundmask.config import fields_of, option
from soundmask.errors import ConfigError
from soundmask.metrics.pooled import PooledJF

__all__ = [
    "CounterfactualAudio",
    "CounterfactualOptions",
    "FeatureSegmenter",
    "Swap",
    "SupervisedConfig",
    "one_row_per_clip",
    "pooled_j",
    "noise_features",
    "upsample_logits",
]


@dataclass
class SupervisedConfig:
    """Inference options shared by the supervised methods."""

    audio: AudioEmbedderName = option(
        "yamnet", "audio embedder: yamnet | vggish | clap | ast (must match the checkpoint)"
    )
    audio_path: str | None = option(None, "checkpoint/folder of the audio embedder (vggish, clap, ast)")
    min_active: float = option(
        0.6, "a frame predicts nothing unless this fraction of its audio window sounds (or it holds an onset)"
    )

    def __post_init__(self) -> None:
        check_choices(self)  # every Literal field, the methods' own (subclasses) included


@dataclass
class CounterfactualOptions:
    """Training options of the supervised methods' counterfactual audio (:class:`CounterfactualAudio`)."""

    swap_prob: float = option(
        0.0,
        "probability that a training window gets counterfactual audio: the sound of a visible silent object, "
        "with that object's instance mask as the target (generated data only; see CounterfactualAudio)",
    )
    negative_prob: float = option(
        0.0,
        "probability that a training window gets negative audio — ambient noise or an off-screen clip's sound — "
        "with an empty target (balanced negatives: the model learns to predict nothing for sounds of no visible "
        "object)",
    )


def upsample_logits(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of (..., h, w) maps to ``size``."""
    lead = x.shape[:-2]
    y = F.interpolate(x.reshape(-1, 1, *x.shape[-2:]).float(), size=size, mode="bilinear", align_corners=False)
    return y.reshape(*lead, *size)


def one_row_per_clip(feats: TrainingFeatures, eligible: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """One random eligible row (frame) of every clip that has one, in random order — an epoch sees each clip
    once, so clips with five annotated frames of one static view (MS3) do not outweigh single-frame ones (S4)."""
    rows = torch.nonzero(eligible).flatten()
    rows = rows[torch.randperm(len(rows), generator=g)]
    clips = feats.clip[rows]
    _, first = np.unique(clips.numpy(), return_index=True)
    pick = rows[torch.from_numpy(first)]
    return pick[torch.randperm(len(pick), generator=g)]


def pooled_j(pred: torch.Tensor, gt: torch.Tensor) -> float:
    """Pooled J of bool maps (N, ...): ``Σ|P ∩ G| / Σ|P ∪ G|`` over all frames, exactly
    :class:`soundmask.metrics.PooledJF`'s ``j`` (the score the reports give), so validation picks checkpoints by
    it. A frame where both maps are empty adds nothing (1.0 when every union is empty); no frame at all: 0.0."""
    if len(pred) == 0:
        return 0.0
    m = PooledJF(from_logits=False)
    m.update(pred.reshape(len(pred), 1, -1).float(), gt.reshape(len(gt), 1, -1))
    return float(m.compute()["j"])


@dataclass
class Swap:
    """A counterfactual training window: the donor's audio rows (n, Da) and the target masks (n, 112, 112)."""

    audio: torch.Tensor
    target: torch.Tensor


class CounterfactualAudio:
    """Counterfactual audio for supervised training (our addition; neither the AVSC nor the SDAVS paper has it).

    A network supervised by sound masks alone can learn which object *looks* sounding (the one the camera
    frames) and ignore the audio. Where the data has every object's instance mask (generated data), a window
    of a clip can be shown with the audio of *another* clip whose only sounding object (S4) has the category of
    one of this clip's visible **silent** objects; the target is then that object's instance mask (empty in
    frames where the donor window is silent). The frames are unchanged, so only the audio can tell the two
    targets apart. An object counts as sounding in a clip when more than half of its mask lies in an annotated
    sound mask (or it has the clip's S4 category)."""

    def __init__(self, feats: TrainingFeatures, noise: torch.Tensor | None = None) -> None:
        self.feats = feats
        self.clips = feats.clip_rows()
        self.donors: dict[int, list[torch.Tensor]] = defaultdict(list)
        self.silent: list[list[int]] = []
        self.visible: list[set[int]] = []  # every category seen in the clip (sounding or not)
        for rows in self.clips:
            seen: set[int] = set()
            sounding: set[int] = set()
            cat = int(feats.category[rows[0]]) if len(rows) else -1
            if cat >= 0:
                sounding.add(cat)
                self.donors[cat].append(rows)
            for r in rows.tolist():
                masks, cats = feats.row_instances(r)
                seen.update(cats.tolist())
                if bool(feats.valid[r]) and len(cats):
                    inside = (masks & feats.masks[r]).flatten(1).sum(1) / masks.flatten(1).sum(1).clamp(min=1)
                    sounding.update(cats[inside > 0.5].tolist())
            self.silent.append(sorted(seen - sounding))
            self.visible.append(seen | sounding)
        self.noise = noise

    @classmethod
    def for_training(
        cls, feats: TrainingFeatures, prob: float, negative_prob: float = 0.0, config: Any = None
    ) -> CounterfactualAudio | None:
        """The pairs of ``feats`` when ``prob`` or ``negative_prob`` > 0 (None otherwise); negatives hear ambient
        noise embedded with ``config``'s audio embedder (:func:`noise_features`) or an off-screen clip's audio.
        :class:`ConfigError` when no clip can have a swap."""
        if prob <= 0 and negative_prob <= 0:
            return None
        noise = noise_features(config) if negative_prob > 0 and config is not None else None
        cf = cls(feats, noise)
        if prob > 0 and not cf.available:
            raise ConfigError(
                "swap_prob needs clips with every object's instance mask (generated data) and a visible silent object",
                fix="train on `soundmask synth` data or set swap_prob=0",
            )
        return cf

    @property
    def available(self) -> int:
        """How many clips have a visible silent object whose category some donor clip sounds."""
        return sum(any(self.donors.get(c) for c in s) for s in self.silent)

    def window(self, rows: torch.Tensor, g: torch.Generator) -> Swap | None:
        """A counterfactual version of the consecutive ``rows`` of one clip (None when the clip has no usable
        silent object)."""
        cands = [c for c in self.silent[int(self.feats.clip[rows[0]])] if self.donors.get(c)]
        if not cands:
            return None
        cat = cands[int(torch.randint(len(cands), (1,), generator=g))]
        donors = [d for d in self.donors[cat] if len(d) >= len(rows)]
        if not donors:
            return None
        d = donors[int(torch.randint(len(donors), (1,), generator=g))]
        start = int(torch.randint(len(d) - len(rows) + 1, (1,), generator=g))
        drows = d[start : start + len(rows)]
        target = torch.zeros((len(rows), *self.feats.masks.shape[1:]), dtype=torch.bool)
        for t, r in enumerate(rows.tolist()):
            masks, cats = self.feats.row_instances(r)
            hit = torch.nonzero(cats == cat).flatten()
            if len(hit) and bool(self.feats.active[drows[t]]):
                target[t] = masks[hit].any(0)
        return Swap(self.feats.audio[drows], target)

    def negative(self, rows: torch.Tensor, g: torch.Generator) -> Swap | None:
        """A negative version of the consecutive ``rows`` of one clip: ambient noise or the audio of a clip whose
        category is visible nowhere in this one (half each when both exist), with an empty target."""
        clip = int(self.feats.clip[rows[0]])
        seen = self.visible[clip]
        cats = [c for c, ds in self.donors.items() if c not in seen and any(len(d) >= len(rows) for d in ds)]
        target = torch.zeros((len(rows), *self.feats.masks.shape[1:]), dtype=torch.bool)
        use_noise = self.noise is not None and (not cats or float(torch.rand(1, generator=g)) < 0.5)
        if use_noise:
            assert self.noise is not None
            pick = torch.randint(len(self.noise), (len(rows),), generator=g)
            return Swap(self.noise[pick], target)
        if not cats:
            return None
        cat = cats[int(torch.randint(len(cats), (1,), generator=g))]
        donors = [d for d in self.donors[cat] if len(d) >= len(rows)]
        d = donors[int(torch.randint(len(donors), (1,), generator=g))]
        start = int(torch.randint(len(d) - len(rows) + 1, (1,), generator=g))
        return Swap(self.feats.audio[d[start : start + len(rows)]], target)

    def draw(
        self, windows: list[torch.Tensor], prob: float, g: torch.Generator, negative_prob: float = 0.0
    ) -> list[Swap | None]:
        """For each window: with probability ``negative_prob`` a negative (:meth:`negative`), else with probability
        ``prob`` its counterfactual version (:meth:`window`), else None."""
        if prob <= 0 and negative_prob <= 0:
            return [None] * len(windows)
        out: list[Swap | None] = []
        for w in windows:
            u = float(torch.rand(1, generator=g))
            out.append(
                self.negative(w, g) if u < negative_prob else self.window(w, g) if u < negative_prob + prob else None
            )
        return out


def noise_features(config: Any, count: int = 256, seed: int = 12345) -> torch.Tensor:
    """(count, Da) audio feature rows of ambient-noise windows (:func:`soundmask.avs2d.negatives.noise_waves`),
    computed with ``config``'s audio embedder exactly as the training clips' rows were."""
    from soundmask.avs2d.negatives import noise_waves
    from soundmask.constants import AVSBENCH_SAMPLE_RATE

    sr = AVSBENCH_SAMPLE_RATE
    ext = FeatureExtractor(config.audio, config.audio_path, config.min_active)
    waves = noise_waves(sr, count, 1.0, seed)
    return torch.from_numpy(
        ext.audio_features(np.concatenate(waves), sr, [(i * sr, (i + 1) * sr) for i in range(count)])
    )


class FeatureSegmenter(Segmenter):
    """Base of AVSC and SDAVS (see the module docstring)."""

    config_class: ClassVar[type[SupervisedConfig]] = SupervisedConfig
    train_config_class: ClassVar[type[TrainConfig]] = TrainConfig

    def __init__(self, config: SupervisedConfig, categories: tuple[str, ...] = ()) -> None:
        self.config = config
        self.categories = tuple(categories)
        self._extractor: FeatureExtractor | None = None

    @property
    def extractor(self) -> FeatureExtractor:
        if self._extractor is None:
            c = self.config
            self._extractor = FeatureExtractor(c.audio, c.audio_path, c.min_active)
        return self._extractor

    @classmethod
    def option_classes(cls) -> tuple[type, ...]:
        return (cls.config_class, cls.train_config_class)

    @classmethod
    def default_checkpoint(cls) -> Path:
        import importlib

        module_file = importlib.import_module(cls.__module__).__file__
        assert module_file is not None  # a segmenter is defined in a module file
        return Path(module_file).with_name("weights") / f"{cls.name}_default.pt"

    # ------------------------------------------------------------------------------------------ loading
    @classmethod
    def load(cls, checkpoint: str | Path | None = None, **options: Any) -> FeatureSegmenter:
        path = Path(checkpoint) if checkpoint is not None else cls.default_checkpoint()
        if not path.is_file():
            fix = (
                f"train one with `soundmask train --method {cls.name} --data DIR --out CKPT`"
                if checkpoint
                else "the shipped default is missing from this install; reinstall or train one"
            )
            raise ConfigError(f"{cls.name} checkpoint not found", path, fix)
        ckpt = read_checkpoint(path, cls.name)
        saved = dict(ckpt.get("config", {}))
        saved.update(fields_of(cls.config_class, options))
        return cls.from_checkpoint(ckpt, cls.config_class(**fields_of(cls.config_class, saved)), path)

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any], config: Any, path: Path) -> FeatureSegmenter:
        raise NotImplementedError

    # ------------------------------------------------------------------------------------------ training
    @classmethod
    def train(
        cls,
        data: str | Path | list[str | Path] | None,
        out: str | Path,
        stage: str | None = None,
        resume: bool = True,
        progress: Any = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Supervised training on AVSBench-layout folder(s) ``data`` (frames, audio and masks of ``split``)."""
        if data is None:
            raise ConfigError(f"training {cls.name} needs --data (an AVSBench-layout folder with masks)")
        if stage not in (None, "", "association", "all"):
            raise ConfigError(f"{cls.name} has no training stage {stage!r}", fix="omit --stage")
        tcfg = cls.train_config_class(**fields_of(cls.train_config_class, options))
        mcfg = cls.config_class(**fields_of(cls.config_class, options))
        out = Path(out)
        roots = [Path(d) for d in (data if isinstance(data, (list, tuple)) else [data])]
        cache = Path(tcfg.cache_dir) if tcfg.cache_dir else out.parent / ".soundmask-features"
        ext = {"audio": mcfg.audio, "audio_path": mcfg.audio_path, "min_active": mcfg.min_active}
        train_f = build_training_features(roots, tcfg.split, ext, cache, tcfg.max_clips, None, progress)
        val_f = (
            build_training_features(roots, tcfg.val_split, ext, cache, tcfg.val_clips, train_f.categories, progress)
            if tcfg.val_split
            else None
        )
        return cls.fit(train_f, val_f, mcfg, tcfg, out, resume=resume, progress=progress)

    @classmethod
    def fit(
        cls,
        train: TrainingFeatures,
        val: TrainingFeatures | None,
        config: Any,
        tcfg: Any,
        out: Path,
        resume: bool = True,
        progress: Any = None,
    ) -> dict[str, Any]:
        raise NotImplementedError

    # ------------------------------------------------------------------------------------------ predict
    def infer(self, feats: ClipFeatures, size: tuple[int, int]) -> tuple[np.ndarray, list[FrameObjects]]:
        """(T, H, W) float32 sound masks in [0, 1] and per-frame objects for one clip's features."""
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, frames: np.ndarray, audio: np.ndarray, sr: int, frame_times: Any = None) -> Prediction:
        frames, audio = check_inputs(frames, audio, sr)
        feats = self.extractor.clip(frames, audio, sr, frame_times)
        masks, objects = self.infer(feats, frames.shape[1:3])
        masks[~feats.active] = 0.0
        return Prediction(masks.astype(np.float32), objects, active=feats.active)
