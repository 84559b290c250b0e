"""SeAC checkpoints: what :func:`checkpoint_dict` writes (training) and :func:`load_checkpoint` reads back
(:meth:`~soundmask.avs2d.seac.segmenter.SeAC.load`, resuming a training run)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from soundmask.avs2d.base import check_finite_checkpoint
from soundmask.avs2d.seac.config import SeACConfig
from soundmask.avs2d.seac.model import AssociationModule
from soundmask.errors import ConfigError

__all__ = ["checkpoint_dict", "load_checkpoint"]


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A SeAC checkpoint as a dict; :class:`ConfigError` naming the file when it is not one."""
    p = Path(path)
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ConfigError(
            f"cannot read the checkpoint ({type(e).__name__}: {' '.join(str(e).split())[:160]})",
            p,
            "pass a file written by `soundmask train --method seac`",
        ) from e
    if not isinstance(ckpt, dict) or ckpt.get("kind") != "seac" or "association" not in ckpt:
        raise ConfigError("not a SeAC checkpoint", p, "pass a file written by `soundmask train --method seac`")
    check_finite_checkpoint(ckpt, p)
    return ckpt


def checkpoint_dict(
    model: AssociationModule, config: SeACConfig, categories: tuple[str, ...], **extra: Any
) -> dict[str, Any]:
    return {
        "kind": "seac",
        "version": 1,
        "association": model.state_dict(),
        "association_config": model.cfg.to_dict(),
        "seac": asdict(config),
        "categories": list(categories),
        **extra,
    }
