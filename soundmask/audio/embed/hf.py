"""Hugging Face ``transformers`` audio models from a user-given local folder (nothing is downloaded).

``clap``: CLAP (Wu et al. 2023, "Large-scale contrastive language-audio pretraining", LAION), ``ClapModel`` +
``ClapFeatureExtractor`` (+ the folder's tokenizer for zero-shot labels). Embedding: the L2-normalised projected
audio embedding; with ``labels`` the scores are CLAP's zero-shot probabilities, a softmax over the labels of
``exp(logit_scale_a) · cos(audio, text(prompt.format(label)))``.

``ast``: Audio Spectrogram Transformer (Gong et al. 2021), ``ASTForAudioClassification`` + ``ASTFeatureExtractor``.
Scores: sigmoid of the logits over ``config.id2label`` (softmax when ``problem_type`` is single-label);
embedding: the pooled transformer output (mean of the CLS and distillation tokens) the classifier reads.

Both cut the audio into windows of at most the feature extractor's length (CLAP ``max_length_s``, 10 s; AST
``max_length`` frames × 10 ms, 10.24 s) and :meth:`tag` runs each segment as its own window(s). A folder is what
``save_pretrained`` writes (``config.json``, weights, ``preprocessor_config.json``; tokenizer files for CLAP
labels); it is loaded with ``local_files_only=True``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from soundmask.audio.embed.base import AudioEmbedder, PatchOutput, PathLike
from soundmask.errors import ConfigError
from soundmask.hf_local import load_pretrained, model_folder, pooled_features

__all__ = ["AstEmbedder", "ClapEmbedder", "HFAudioEmbedder"]


def _model_folder(path: PathLike | None, model: str, model_types: tuple[str, ...]) -> Path:
    """Check that ``path`` is a saved ``transformers`` folder of one of ``model_types`` (one-line errors)."""
    return model_folder(path, model, model_types)


_load = load_pretrained
_pooled = pooled_features


class HFAudioEmbedder(AudioEmbedder):
    """Common part: windows of ``window`` s every ``hop`` s (default: the extractor's maximum, no overlap),
    batched ``batch_size`` windows at a time through :meth:`_run`."""

    per_segment = True
    max_window: float = 10.0

    def _set_windows(self, window: float | None, hop: float | None, batch_size: int) -> None:
        self.window = float(window) if window is not None else self.max_window
        self.hop = float(hop) if hop is not None else self.window
        if not (0 < self.window <= self.max_window + 1e-9):
            raise ConfigError(
                f"window must be in (0, {self.max_window:g}] s for {self.name}, got {self.window:g}",
                fix=f"pass window <= {self.max_window:g}",
            )
        if not (0 < self.hop):
            raise ConfigError(f"hop must be > 0 s, got {self.hop:g}", fix="pass e.g. hop=window")
        self.batch_size = max(1, int(batch_size))

    def _run(self, windows: list[np.ndarray]) -> tuple[np.ndarray | None, np.ndarray]:
        raise NotImplementedError

    def _embed(self, waveform: np.ndarray) -> PatchOutput:
        win = max(1, round(self.window * self.sample_rate))
        hop = max(1, round(self.hop * self.sample_rate))
        starts = [0]
        while starts[-1] + win < waveform.size:
            starts.append(starts[-1] + hop)
        scores, embeddings = [], []
        for i in range(0, len(starts), self.batch_size):
            s, e = self._run([waveform[a : a + win] for a in starts[i : i + self.batch_size]])
            embeddings.append(e)
            if s is not None:
                scores.append(s)
        return PatchOutput(
            np.asarray(starts) / self.sample_rate,
            np.concatenate(embeddings),
            np.concatenate(scores) if scores else None,
            self.window,
        )


class ClapEmbedder(HFAudioEmbedder):
    """CLAP audio embeddings and, given ``labels``, zero-shot scores over them (see the module docstring).

    ``prompt`` turns a label into the text CLAP compares with (``"{}"`` uses the label as is)."""

    name = "clap"

    def __init__(
        self,
        path: PathLike | None = None,
        labels: Sequence[str] | None = None,
        prompt: str = "This is a sound of {}.",
        window: float | None = None,
        hop: float | None = None,
        batch_size: int = 8,
    ) -> None:
        p = _model_folder(path, "ClapModel", ("clap",))
        from transformers import AutoTokenizer, ClapFeatureExtractor, ClapModel

        self.path = p
        self.model = _load(ClapModel, p, "CLAP model").eval()
        self.extractor = _load(ClapFeatureExtractor, p, "CLAP feature extractor")
        self.sample_rate = int(self.extractor.sampling_rate)
        self.max_window = float(self.extractor.nb_max_samples) / self.sample_rate
        self._set_windows(window, hop, batch_size)
        self.prompt = prompt
        self.tokenizer = None
        if any((p / f).is_file() for f in ("tokenizer.json", "vocab.json", "tokenizer_config.json")):
            self.tokenizer = _load(AutoTokenizer, p, "CLAP tokenizer")
        self.labels = None
        self._text: torch.Tensor | None = None
        if labels is not None:
            self.set_labels(labels)

    def set_labels(self, labels: Sequence[str]) -> None:
        """Score against these labels from now on (their text embeddings are computed once here)."""
        labels = tuple(str(x) for x in labels)
        if not labels:
            raise ConfigError("labels is empty", fix="pass at least one label, or labels=None for embeddings only")
        self._text = self.text_embed([self.prompt.format(x) for x in labels])
        self.labels = labels

    def text_embed(self, texts: Sequence[str]) -> torch.Tensor:
        """L2-normalised CLAP text embeddings ``(len(texts), D)`` (e.g. to query segments by a sentence)."""
        if self.tokenizer is None:
            raise ConfigError(
                "the CLAP folder has no tokenizer, so it cannot embed text",
                self.path,
                "save the tokenizer into the folder (ClapProcessor.save_pretrained) or pass labels=None",
            )
        tokens = self.tokenizer(list(texts), padding=True, return_tensors="pt")
        with torch.inference_mode():
            out = _pooled(
                self.model.get_text_features(input_ids=tokens["input_ids"], attention_mask=tokens.get("attention_mask"))
            )
        return torch.nn.functional.normalize(out.float(), dim=-1)

    def _run(self, windows: list[np.ndarray]) -> tuple[np.ndarray | None, np.ndarray]:
        feats = self.extractor(
            [w.astype(np.float32) for w in windows], sampling_rate=self.sample_rate, return_tensors="pt"
        )
        with torch.inference_mode():
            audio = _pooled(
                self.model.get_audio_features(input_features=feats["input_features"], is_longer=feats.get("is_longer"))
            )
            audio = torch.nn.functional.normalize(audio.float(), dim=-1)
            scores = None
            if self._text is not None:
                logits = self.model.logit_scale_a.exp() * audio @ self._text.T
                scores = logits.softmax(dim=-1).numpy()
        return scores, audio.numpy()


class AstEmbedder(HFAudioEmbedder):
    """AST class scores over ``config.id2label`` and the pooled embedding (see the module docstring)."""

    name = "ast"

    def __init__(
        self, path: PathLike | None = None, window: float | None = None, hop: float | None = None, batch_size: int = 8
    ) -> None:
        p = _model_folder(path, "ASTForAudioClassification", ("audio-spectrogram-transformer",))
        from transformers import ASTFeatureExtractor, ASTForAudioClassification

        self.path = p
        self.model = _load(ASTForAudioClassification, p, "AST model").eval()
        self.extractor = _load(ASTFeatureExtractor, p, "AST feature extractor")
        self.sample_rate = int(self.extractor.sampling_rate)
        # Kaldi fbank frames every 10 ms, 25 ms long: max_length frames see this many seconds
        self.max_window = (int(self.extractor.max_length) - 1) * 0.010 + 0.025
        self._set_windows(window, hop, batch_size)
        cfg = self.model.config
        self.labels = tuple(str(cfg.id2label[i]) for i in range(cfg.num_labels))
        self._softmax = cfg.problem_type == "single_label_classification"

    def _run(self, windows: list[np.ndarray]) -> tuple[np.ndarray | None, np.ndarray]:
        feats = self.extractor(
            [w.astype(np.float32) for w in windows], sampling_rate=self.sample_rate, return_tensors="pt"
        )
        with torch.inference_mode():
            pooled = self.model.audio_spectrogram_transformer(feats["input_values"]).pooler_output
            logits = self.model.classifier(pooled).float()
            scores = logits.softmax(dim=-1) if self._softmax else torch.sigmoid(logits)
        return scores.numpy(), pooled.float().numpy()
