"""SeAC's mask classification (Sec. 2.3): ``t_n = argmax_y sim(y, f_n)`` over text embeddings of category names.

* With a CLIP image encoder (user checkpoint) image and text share one space: ``f_n`` (Eq. 1) is compared with
  CLIP text embeddings of ``"a photo of a {name}."`` prompts (the ImageNet-template idea of the paper, one
  template here).
* With the default EfficientNet-Lite0 there is no text tower. The mask's visual embedding is carried into the
  MiniLM text space through its ImageNet head: ``y_n = Σ_c p(c | I_n^L) · text(c)`` over the ``top_k`` ImageNet
  classes (softmax renormalised), then compared with MiniLM embeddings of the category names.

:func:`visual_names` gives the same ImageNet names for the training-free association.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["MaskClassifier", "visual_names"]


def _softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def visual_names(logits: np.ndarray, names: Sequence[str], top_k: int = 5) -> list[list[tuple[str, float]]]:
    """Per mask, the ``top_k`` (class name, probability) pairs of its ImageNet logits (renormalised)."""
    p = _softmax(np.asarray(logits, np.float64))
    out = []
    for row in p:
        idx = np.argsort(-row, kind="stable")[:top_k]
        w = row[idx] / max(row[idx].sum(), 1e-12)
        out.append([(names[i], float(x)) for i, x in zip(idx, w, strict=True)])
    return out


class MaskClassifier:
    """Assigns one of ``categories`` to each mask (see the module docstring)."""

    def __init__(self, categories: Sequence[str], encoder: Any, text_space: Any = None, top_k: int = 5) -> None:
        self.categories = tuple(categories)
        self.encoder = encoder
        self.top_k = top_k
        self._text = text_space
        self._cat: np.ndarray | None = None
        self.mode = "clip" if encoder.encode_text(["a photo of a thing."]) is not None else "imagenet-text"

    @property
    def text(self) -> Any:
        if self._text is None:
            from soundmask.audio.textspace import TextSpace

            self._text = TextSpace()
        return self._text

    def _category_embeddings(self) -> np.ndarray:
        if self._cat is None:
            names = [c.replace("_", " ") for c in self.categories]
            if self.mode == "clip":
                e = self.encoder.encode_text([f"a photo of a {n}." for n in names]).numpy()
            else:
                e = self.text.embed(names)
            self._cat = e / np.linalg.norm(e, axis=1, keepdims=True).clip(1e-12)
        return self._cat

    def scores(self, f: np.ndarray, logits: np.ndarray | None) -> np.ndarray:
        """(N, Y) cosine similarity of each mask to each category."""
        cat = self._category_embeddings()
        if self.mode == "clip":
            y = np.asarray(f, np.float32)
        else:
            if logits is None:
                raise ValueError("the ImageNet-text classifier needs the local views' ImageNet logits")
            names = self.encoder.class_names
            rows = []
            for pairs in visual_names(logits, names, self.top_k):
                emb = self.text.embed([n for n, _ in pairs])
                rows.append(np.asarray([w for _, w in pairs], np.float32) @ emb)
            y = np.stack(rows) if rows else np.zeros((0, cat.shape[1]), np.float32)
        y = y / np.linalg.norm(y, axis=1, keepdims=True).clip(1e-12)
        return y @ cat.T

    def classify(self, f: np.ndarray, logits: np.ndarray | None) -> np.ndarray:
        """(N,) category indices ``t_n``."""
        if len(f) == 0:
            return np.zeros(0, np.int64)
        return self.scores(f, logits).argmax(axis=1)
