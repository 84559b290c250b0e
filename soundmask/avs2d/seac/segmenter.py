"""SeAC — Segment, Associate, and Classify (paper ``002_*``): the :class:`Segmenter` that chains the stages.

1. **Segment**: class- and audio-agnostic proposals from a registered source (``learned`` by default), top-N
   after NMS(0.5).
2. **Associate**: local-global mask embeddings (Eq. 1–3, :mod:`.embed`) and the frame's audio through the trained
   association module (:mod:`.model`) → ``s_n``; min-max normalisation and similarity aggregation (Eq. 4).
   ``mode="training-free"`` instead scores each mask by how well its ImageNet names match the audio's YAMNet
   AudioSet tags in the MiniLM text space — no training, works on real photos and sounds.
3. **Classify**: each mask's category (:mod:`.classify`) and category-aware aggregation (Eq. 5, σ = 0.9).

A frame whose audio window is silent gets an empty mask (:func:`soundmask.avs2d.audio.window_activity`).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch

from soundmask.avs2d.audio import window_activity, window_embeddings
from soundmask.avs2d.base import FrameObjects, Prediction, Segmenter, check_inputs, frame_windows
from soundmask.avs2d.features import FrameMemo, unique_frames
from soundmask.avs2d.seac.aggregate import category_aware_aggregation, minmax_normalise, similarity_aggregation
from soundmask.avs2d.seac.checkpoint import load_checkpoint
from soundmask.avs2d.seac.config import ProposerStageConfig, SeACConfig, SeACTrainConfig
from soundmask.avs2d.seac.embed import MaskEmbeddings, mask_embeddings
from soundmask.avs2d.seac.model import AssociationConfig, AssociationModule
from soundmask.config import fields_of
from soundmask.errors import ConfigError

__all__ = ["SeAC", "SeACConfig", "default_checkpoint"]


def default_checkpoint() -> Path:
    return Path(__file__).with_name("weights") / "seac_default.pt"


@functools.lru_cache(maxsize=1)
def _aliases() -> dict[str, tuple[str, ...]]:
    """Visual class name → AudioSet labels that certainly fit it: soundmask's categories plus the COCO and
    ImageNet spellings of the same things (``cell phone``, ``grand piano``...)."""
    from soundmask.audio.audioset import CATEGORY_TO_AUDIOSET as C

    extra = {
        "cell phone": "phone",
        "grand piano": "piano",
        "upright piano": "piano",
        "acoustic guitar": "guitar",
        "electric guitar": "guitar",
        "tabby cat": "cat",
        "tiger cat": "cat",
        "marimba": "xylophone",
        "drum": "drum",
        "violin": "violin",
        "cello": "cello",
        "flute": "flute",
        "trumpet": "trumpet",
        "saxophone": "saxophone",
        "accordion": "accordion",
        "analog clock": "clock",
        "wall clock": "clock",
        "television": "tv",
        "loudspeaker": "speaker",
        "music speaker": "speaker",
        "electric fan": "fan",
        "washing machine": "washing_machine",
        "vacuum cleaner": "vacuum_cleaner",
        "teapot": "kettle",
    }
    out = {k.replace("_", " "): v for k, v in C.items()}
    out.update({k: C[v] for k, v in extra.items() if v in C})
    return out


def _default_categories() -> tuple[str, ...]:
    from soundmask.synth.catalog import category_names

    return tuple(category_names())


class SeAC(Segmenter):
    """SeAC: segment → associate → classify; the association is trained without masks (paper 002).

    See the module docstring; build with :meth:`load`."""

    name = "seac"

    @classmethod
    def default_checkpoint(cls) -> Path:
        """The shipped weights (``weights/seac_default.pt``)."""
        return default_checkpoint()

    def __init__(
        self,
        config: SeACConfig | None = None,
        association: AssociationModule | None = None,
        categories: tuple[str, ...] | None = None,
    ) -> None:
        from soundmask.audio.embed import get_embedder
        from soundmask.vision.backbones import get_image_encoder
        from soundmask.vision.proposals import get_proposer

        self.config = cfg = config or SeACConfig()
        if cfg.mode == "trained" and association is None:
            raise ConfigError("SeAC in trained mode needs an association module", fix="use SeAC.load(checkpoint)")
        self.association = association.eval() if association is not None else None
        enc_kw = {"path": cfg.encoder_path} if cfg.encoder_path else {}
        self.encoder = get_image_encoder(cfg.encoder, **enc_kw)
        prop_kw: dict[str, Any] = {"top_n": cfg.top_n}
        if cfg.proposer_path:
            prop_kw["weights" if cfg.proposer in ("learned", "hybrid") else "path"] = cfg.proposer_path
        if cfg.proposer in ("learned", "hybrid"):
            prop_kw["encoder"] = self.encoder if cfg.encoder == "efficientnet-lite0" else None
        self.proposer = get_proposer(cfg.proposer, **prop_kw)
        aud_kw = {"path": cfg.audio_path} if cfg.audio_path else {}
        self.embedder = get_embedder(cfg.audio, **aud_kw)
        self.categories = tuple(categories) if categories else _default_categories()
        self._classifier: Any = None
        self._text: Any = None
        self._memo = FrameMemo()

    # ------------------------------------------------------------------------------------------ loading
    @classmethod
    def load(cls, checkpoint: str | Path | None = None, **options: Any) -> SeAC:
        """From ``checkpoint`` (None: the shipped default); ``options`` override :class:`SeACConfig` fields
        (``mode="training-free"`` needs no checkpoint)."""
        if options.get("mode") == "training-free" and checkpoint is None:
            return cls(SeACConfig(**options), None, options.get("categories"))
        path = Path(checkpoint) if checkpoint is not None else default_checkpoint()
        if not path.is_file():
            fix = (
                "train one with `soundmask train --method seac --data DIR --out CKPT`"
                if checkpoint is not None
                else "the shipped default is missing from this install; reinstall, train one, or use "
                "--mode training-free"
            )
            raise ConfigError("SeAC checkpoint not found", path, fix)
        ckpt = load_checkpoint(path)
        saved = dict(ckpt.get("seac", {}))
        saved.update({k: v for k, v in options.items() if k != "categories"})
        model = AssociationModule(AssociationConfig(**ckpt["association_config"]))
        model.load_state_dict(ckpt["association"])
        return cls(SeACConfig.from_dict(saved), model, options.get("categories") or ckpt.get("categories"))

    @classmethod
    def option_classes(cls) -> tuple[type, ...]:
        """Dataclasses whose fields ``--set`` may override: inference, then training options."""
        return (SeACConfig, SeACTrainConfig, ProposerStageConfig)

    @classmethod
    def train(
        cls,
        data: str | Path | None,
        out: str | Path,
        stage: str | None = None,
        resume: bool = True,
        progress: Any = None,
        **options: Any,
    ) -> dict[str, Any]:
        """``stage="association"``: the unsupervised association module on ``data`` (AVSBench layout, frames +
        audio only); ``stage="proposer"``: the learned proposal decoder on generator instance masks."""
        from soundmask.avs2d.seac import train as tr

        stage = stage or "association"
        if stage == "proposer":
            pcfg = ProposerStageConfig(**fields_of(ProposerStageConfig, options))
            return tr.train_proposer_stage(out, pcfg, data=data, progress=progress)
        if stage != "association":
            raise ConfigError(f"unknown SeAC training stage {stage!r}", fix="use association or proposer")
        if data is None:
            raise ConfigError("training the association needs --data (an AVSBench-layout folder)")
        tcfg = SeACTrainConfig(**fields_of(SeACTrainConfig, options))
        return tr.train_seac(
            data,
            out,
            tcfg,
            SeACConfig(**fields_of(SeACConfig, options)),
            resume=resume,
            progress=progress,
            segmenter=cls,
        )

    # ------------------------------------------------------------------------------------------ stages
    def segment_frames(self, frames: np.ndarray) -> list[tuple[Any, MaskEmbeddings]]:
        """Stage 1 + the visual half of stage 2 for each frame; identical frames (a static camera) are computed
        once, and frames of the last calls are not computed again (:class:`~soundmask.avs2d.features.FrameMemo`)."""
        firsts, index = unique_frames(frames)

        def compute(batch: np.ndarray) -> list[tuple[Any, MaskEmbeddings]]:
            props = self.proposer.propose_batch(batch)
            return [
                (p, mask_embeddings(self.encoder, im, p.masks, self.config.view_size))
                for im, p in zip(batch, props, strict=True)
            ]

        done = self._memo.map(frames[firsts], compute)
        return [done[k] for k in index]

    def audio_patches(self, audio: np.ndarray, sr: int, windows: list[tuple[int, int]]) -> list[np.ndarray]:
        return window_embeddings(self.embedder, audio, sr, windows)

    @torch.no_grad()
    def similarities(self, emb: MaskEmbeddings, patches: np.ndarray) -> np.ndarray:
        """Raw ``s_n`` (N,) of one frame's masks with its audio patches (trained mode)."""
        assert self.association is not None
        f = torch.from_numpy(emb.combined(self.config.lam))[None]
        valid = torch.ones(f.shape[:2], dtype=torch.bool)
        a = torch.from_numpy(np.asarray(patches, np.float32))[None]
        return self.association.similarity(f, valid, a)[0].numpy()

    def training_free_similarities(
        self, emb: MaskEmbeddings, names: tuple[str, ...], audio: np.ndarray, sr: int
    ) -> np.ndarray:
        """Text-space match of the audio's YAMNet tags with each mask's ImageNet (or detector) class names."""
        from soundmask.audio.textspace import TextSpace
        from soundmask.avs2d.seac.classify import visual_names

        if self._text is None:
            self._text = TextSpace()
        out = self.embedder.embed(np.asarray(audio, np.float32).mean(0), sr)
        if out.scores is None:
            raise ConfigError(
                f"the training-free mode needs an audio tagger with class scores; {self.config.audio} has none",
                fix="use --audio yamnet",
            )
        labels = self.embedder.labels
        assert labels is not None  # an embedder with class scores names its classes
        tags = dict(zip(labels, out.scores.mean(0).tolist(), strict=True))
        n = emb.local.shape[0]
        if emb.logits is None and not names:
            raise ConfigError(
                "the training-free mode needs class names per mask",
                fix="use efficientnet-lite0 or a proposer that names its masks (yolo)",
            )
        s = np.zeros(n, np.float32)
        per_mask: list[list[tuple[str, float]]] = [[]] * n
        if emb.logits is not None:
            class_names = self.encoder.class_names
            assert class_names is not None  # an encoder that gives logits names its classes
            per_mask = visual_names(emb.logits, class_names)
        for i in range(n):
            pairs = list(per_mask[i])
            if names and names[i]:
                pairs = [(names[i], 1.0)] + pairs
            if not pairs:
                continue
            match = self._text.match(tags, [p for p, _ in pairs], mode="soft", aliases=_aliases())
            w = np.array([q for _, q in pairs], np.float32)
            s[i] = float((match * w).sum() / w.sum())
        return s

    def classifier(self) -> Any:
        if self._classifier is None:
            from soundmask.avs2d.seac.classify import MaskClassifier

            self._classifier = MaskClassifier(self.categories, self.encoder)
        return self._classifier

    # ------------------------------------------------------------------------------------------ predict
    def predict(
        self, frames: np.ndarray, audio: np.ndarray, sr: int, frame_times: Any = None, semantic: bool = False
    ) -> Prediction:
        frames, audio = check_inputs(frames, audio, sr)
        T, H, W = frames.shape[:3]
        windows = frame_windows(T, audio.shape[1], sr, frame_times)
        active, _ = window_activity(audio, sr, windows, self.config.min_active)
        visual = self.segment_frames(frames)
        masks = np.zeros((T, H, W), np.float32)
        sem = np.zeros((T, H, W), np.int32) if semantic else None
        objects: list[FrameObjects] = []
        patches = (
            self.audio_patches(audio, sr, [w for w, a in zip(windows, active, strict=True) if a])
            if (self.config.mode == "trained")
            else []
        )
        k = 0
        for t in range(T):
            props, emb = visual[t]
            n = len(props)
            if not active[t] or n == 0:
                if active[t] and self.config.mode == "trained":
                    k += 1
                objects.append(FrameObjects(props.masks, np.zeros(n, np.float32), props.names, np.zeros(n, np.float32)))
                continue
            s0, s1 = windows[t]
            if self.config.mode == "trained":
                s = self.similarities(emb, patches[k])
                k += 1
                heard = float(s.max()) >= self.config.min_confidence
                if self.config.semantic_weight and heard:
                    tf = self.training_free_similarities(emb, props.names, audio[:, s0:s1], sr)
                    s = s + self.config.semantic_weight * tf
            else:
                s = self.training_free_similarities(emb, props.names, audio[:, s0:s1], sr)
                heard = float(s.max()) >= self.config.min_confidence
            s_hat = minmax_normalise(s) if heard else np.zeros(n, np.float32)
            masks[t] = similarity_aggregation(props.masks, s_hat)
            labels: tuple[str, ...] = props.names
            if semantic:
                assert sem is not None
                f = emb.combined(self.config.lam)
                t_n = self.classifier().classify(f, emb.logits)
                labels = tuple(self.categories[i] for i in t_n)
                sem[t] = category_aware_aggregation(props.masks, s_hat, t_n, self.config.sigma)
            objects.append(FrameObjects(props.masks, s_hat, labels, s.astype(np.float32)))
        return Prediction(masks, objects, sem, self.categories if semantic else (), active)
