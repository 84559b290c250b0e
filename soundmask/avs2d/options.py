"""Closed sets of option values of the 2D methods' configs, and their validation.

An option that takes one of a fixed set of names is typed ``Literal[...]``: ``--set key=value`` checks it
(:func:`soundmask.config.parse_overrides`), and a config's ``__post_init__`` calls :func:`check_choices`, which
checks every such field of a config built from Python against its annotation — the names are written once, in
the ``Literal``. The registry-backed sets below list the built-in names of their registries
(:data:`~soundmask.audio.embed.EMBEDDERS`, :data:`~soundmask.vision.backbones.IMAGE_ENCODERS`,
:data:`~soundmask.vision.proposals.PROPOSERS`; a test checks that they match). Audio embedders added at run time
with :func:`~soundmask.audio.embed.register_embedder` are accepted too.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Literal

from soundmask.errors import ConfigError

__all__ = ["AudioEmbedderName", "ImageEncoderName", "ProposerName", "check_choices", "literal_values"]

#: built-in audio embedders (``soundmask.audio.embed.EMBEDDERS``)
AudioEmbedderName = Literal["yamnet", "vggish", "clap", "ast"]
#: image encoders (``soundmask.vision.backbones.IMAGE_ENCODERS``)
ImageEncoderName = Literal["efficientnet-lite0", "clip"]
#: proposal sources (``soundmask.vision.proposals.PROPOSERS``)
ProposerName = Literal["learned", "yolo", "sam"]


def literal_values(hint: Any) -> tuple[Any, ...] | None:
    """The allowed values of a ``Literal[...]`` hint, also inside ``X | None`` and ``tuple[X, ...]`` (None: the
    hint is not a closed set)."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        return typing.get_args(hint)
    if origin is tuple or origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        inner = [a for a in typing.get_args(hint) if a is not type(None) and a is not Ellipsis]
        if len(inner) == 1:
            return literal_values(inner[0])
    return None


def _registered(hint: Any) -> tuple[str, ...]:
    """Names outside ``hint``'s ``Literal`` that are still accepted: audio embedders registered at run time."""
    if literal_values(hint) != typing.get_args(AudioEmbedderName):
        return ()
    from soundmask.audio.embed import EMBEDDERS

    return tuple(k for k in EMBEDDERS if k not in typing.get_args(AudioEmbedderName))


def _closed_fields(cls: type) -> tuple[tuple[str, Any, tuple[Any, ...]], ...]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        values = literal_values(hints[f.name]) if f.init else None
        if values is not None:
            out.append((f.name, hints[f.name], values))
    return tuple(out)


def check_choices(config: Any) -> None:
    """One-line :class:`ConfigError` naming the field and the allowed values when a ``Literal``-typed field of
    dataclass instance ``config`` (or an item of a ``tuple[Literal[...], ...]`` field) has another value; None
    passes where the field allows it."""
    for name, hint, values in _closed_fields(type(config)):
        value = getattr(config, name)
        if value is None and type(None) in typing.get_args(hint):
            continue
        allowed = values + _registered(hint)
        many = typing.get_origin(hint) is tuple and isinstance(value, (tuple, list))
        for v in value if many else (value,):
            if v not in allowed:
                raise ConfigError(f"{name}={v!r} is not one of {', '.join(map(str, allowed))}")
