"""Loading a user-given local Hugging Face ``transformers`` folder (nothing is ever downloaded).

The generalised form of the helpers of :mod:`soundmask.audio.embed.hf` (``_model_folder``, ``_load``,
``_pooled``) for models that are not audio embedders (SAM, CLIP...): the messages name the component (an image
processor rather than a feature extractor, a proposer or encoder rather than an embedder), and a folder may hold
its preprocessing settings in ``preprocessor_config.json`` (what a feature extractor / image processor, and any
processor before transformers 5, writes) or ``processor_config.json`` (what a processor writes in transformers 5).
It lives outside ``audio`` so that the vision modules do not import the audio stack to reach it. Every problem is
a one-line :class:`~soundmask.errors.ConfigError` naming the folder or file and the fix.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from soundmask.errors import ConfigError

__all__ = ["PREPROCESSOR_FILES", "load_pretrained", "model_folder", "pooled_features"]

#: the files ``save_pretrained`` of a feature extractor / image processor / processor writes its settings to
PREPROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")


def model_folder(
    path: str | os.PathLike[str] | None,
    model: str,
    model_types: tuple[str, ...],
    who: str | None = None,
    preprocessor: str | None = "feature extractor",
    preprocessor_class: str = "feature_extractor",
) -> Path:
    """Check that ``path`` is a saved ``transformers`` folder whose ``config.json`` has a ``model_type`` in
    ``model_types`` and, unless ``preprocessor`` is None, one of :data:`PREPROCESSOR_FILES`.

    ``model``: the class named in the fix (``"SamModel"``); ``who``: what needs the folder (default
    ``"the <model_types[0]> embedder"``); ``preprocessor`` / ``preprocessor_class``: the processor's name in
    words and as in ``<preprocessor_class>.save_pretrained``.
    """
    who = who or f"the {model_types[0]} embedder"
    extra = f" (and its {preprocessor}'s)" if preprocessor else ""
    fix = f"pass path= to a local folder written by {model}.save_pretrained{extra}"
    if path is None:
        raise ConfigError(f"{who} needs a local Hugging Face model folder", fix=fix)
    p = Path(path)
    if not p.is_dir():
        raise ConfigError("model folder not found", p, fix)
    cfg = p / "config.json"
    if not cfg.is_file():
        raise ConfigError("not a Hugging Face model folder (config.json is missing)", p, fix)
    try:
        model_type = json.loads(cfg.read_text()).get("model_type", "")
    except (OSError, ValueError, AttributeError) as e:
        raise ConfigError(f"config.json is not valid JSON ({e})", cfg, fix) from e
    if model_type not in model_types:
        expected = " or ".join(repr(t) for t in model_types)
        raise ConfigError(f"config.json is a {model_type or 'untyped'!r} model, expected {expected}", cfg, fix)
    # an image processor / feature extractor writes preprocessor_config.json; a processor (transformers >= 5)
    # processor_config.json with the image processor inside
    if preprocessor and not any((p / f).is_file() for f in PREPROCESSOR_FILES):
        raise ConfigError(
            f"the {preprocessor} is missing ({' or '.join(PREPROCESSOR_FILES)})",
            p,
            f"save the {preprocessor} into the folder too ({preprocessor_class}.save_pretrained)",
        )
    return p


def load_pretrained(loader: Any, p: Path, what: str, **kwargs: Any) -> Any:
    """``loader.from_pretrained(p, local_files_only=True, **kwargs)``; any failure → one-line ConfigError."""
    try:
        return loader.from_pretrained(str(p), local_files_only=True, **kwargs)
    except Exception as e:  # transformers raises OSError, ValueError, KeyError... with multi-line messages
        raise ConfigError(
            f"cannot load the {what} ({type(e).__name__}: {' '.join(str(e).split())[:200]})",
            p,
            "pass a folder written by save_pretrained with a matching transformers version",
        ) from e


def pooled_features(out: Any) -> Any:
    """The tensor of ``get_image_features`` / ``get_text_features`` / ``get_audio_features``: transformers 4
    returns it, transformers 5 returns a model output holding it as ``pooler_output``."""
    import torch

    return out if isinstance(out, torch.Tensor) else out.pooler_output
