"""Gaussian model files: :func:`save_model` / :func:`load_model` (``.ply`` in the 3DGS layout, or ``.pt``)."""

from __future__ import annotations

from pathlib import Path

import torch

from soundmask.data.io import atomic_path
from soundmask.errors import DataError
from soundmask.splat.gaussians import Gaussians

__all__ = ["load_model", "save_model"]


def save_model(g: Gaussians, path: str | Path) -> Path:
    """Write a model: ``.ply`` (3DGS layout, opens in splat viewers) or ``.pt`` (torch state dict)."""
    p = Path(path)
    if p.suffix.lower() == ".ply":
        from soundmask.splat.ply import write_ply

        return write_ply(g, p)
    with atomic_path(p) as tmp:
        torch.save(g.state_dict(), tmp)
    return p


def load_model(path: str | Path) -> Gaussians:
    """Read a model written by :func:`save_model` (or any 3DGS ``.ply``)."""
    p = Path(path)
    if not p.is_file():
        raise DataError("model file not found", p, "run `soundmask reconstruct --scene DIR --out MODEL` first")
    if p.suffix.lower() == ".ply":
        from soundmask.splat.ply import read_ply

        g = read_ply(p)
    else:
        try:
            d = torch.load(p, map_location="cpu", weights_only=True)
            g = Gaussians.from_state_dict(d)
        except Exception as e:
            raise DataError(
                f"not a soundmask model ({type(e).__name__}: {e})",
                p,
                "pass a .ply or a .pt from `soundmask reconstruct`",
            ) from e
    for name, v in g.state_dict().items():
        if torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all():
            raise DataError(f"the model has NaN or infinite values ({name})", p, "re-run `soundmask reconstruct`")
    return g
