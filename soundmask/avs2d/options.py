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

import typing
from typing import Any, Literal

from soundmask.config import check_choices as _check
from soundmask.config import literal_values

__all__ = ["AudioEmbedderName", "ImageEncoderName", "ProposerName", "check_choices", "literal_values"]

#: built-in audio embedders (``soundmask.audio.embed.EMBEDDERS``)
AudioEmbedderName = Literal["yamnet", "vggish", "clap", "ast"]
#: image encoders (``soundmask.vision.backbones.IMAGE_ENCODERS``)
ImageEncoderName = Literal["efficientnet-lite0", "clip"]
#: proposal sources (``soundmask.vision.proposals.PROPOSERS``)
ProposerName = Literal["learned", "yolo", "sam", "hybrid"]


def _registered(hint: Any) -> tuple[str, ...]:
    """Names outside ``hint``'s ``Literal`` that are still accepted: audio embedders registered at run time."""
    if literal_values(hint) != typing.get_args(AudioEmbedderName):
        return ()
    from soundmask.audio.embed import EMBEDDERS

    return tuple(k for k in EMBEDDERS if k not in typing.get_args(AudioEmbedderName))


def check_choices(config: Any) -> None:
    """:func:`soundmask.config.check_choices`, accepting audio embedders registered at run time too."""
    _check(config, more=_registered)
