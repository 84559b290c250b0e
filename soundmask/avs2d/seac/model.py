"""SeAC's audio-mask association module (Sec. 2.2, App. A.1) — the only trained part of SeAC.

* audio: per-patch embeddings of the frame's audio window (YAMNet 1024-d by default; VGGish in the paper) →
  **attention pooling** over time (Chen et al. 2021: ``α_t = softmax_t(wᵀ tanh(W a_t))``, ``a = Σ_t α_t a_t``)
  → projection ``φ_a`` to ``d`` (128);
* masks: local-global embeddings ``f_n`` (Eq. 1, see :mod:`.embed`) → **mask encoder** (a fully connected layer
  and a ``layers``-deep Transformer encoder, GELU, LayerNorm, over the N masks of the image, so that each mask
  sees the others) → projection ``φ_m`` to ``d``;
* ``s_n = cos(φ_m(f_n), φ_a(a))`` and a learnable temperature ``τ`` for the contrastive losses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AssociationConfig", "AssociationModule", "AttentionPool"]


@dataclass
class AssociationConfig:
    audio_dim: int = 1024
    mask_dim: int = 1280
    dim: int = 128
    hidden: int = 256
    layers: int = 4
    heads: int = 4
    dropout: float = 0.1
    init_tau: float = 0.07

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


class AttentionPool(nn.Module):
    """Attention pooling over time: (B, T, D) with a (B, T) validity mask → (B, D)."""

    def __init__(self, dim: int, hidden: int = 128) -> None:
        super().__init__()
        self.score = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        w = self.score(x).squeeze(-1)  # (B, T)
        if valid is not None:
            w = w.masked_fill(~valid, float("-inf"))
        return (torch.softmax(w, dim=-1).unsqueeze(-1) * x).sum(1)


class AssociationModule(nn.Module):
    """Audio pooling, mask encoder and the two projections (see the module docstring)."""

    def __init__(self, cfg: AssociationConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or AssociationConfig()
        self.audio_norm = nn.LayerNorm(cfg.audio_dim)
        self.pool = AttentionPool(cfg.audio_dim)
        self.phi_a = nn.Sequential(nn.Linear(cfg.audio_dim, cfg.hidden), nn.GELU(), nn.Linear(cfg.hidden, cfg.dim))
        self.mask_norm = nn.LayerNorm(cfg.mask_dim)
        self.mask_fc = nn.Linear(cfg.mask_dim, cfg.hidden)
        layer = nn.TransformerEncoderLayer(
            cfg.hidden,
            cfg.heads,
            dim_feedforward=2 * cfg.hidden,
            dropout=cfg.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        # layers = 0: no context, each mask is embedded on its own (an ablation of the paper's 4 layers)
        self.mask_encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False) if cfg.layers else None
        self.mask_out_norm = nn.LayerNorm(cfg.hidden)
        self.phi_m = nn.Linear(cfg.hidden, cfg.dim)
        self.log_inv_tau = nn.Parameter(torch.tensor(float(-torch.log(torch.tensor(cfg.init_tau)))))

    @property
    def tau(self) -> torch.Tensor:
        """The learnable temperature (``1/τ`` clamped to at most 100, as CLIP does)."""
        return 1.0 / self.log_inv_tau.exp().clamp(max=100.0)

    def embed_audio(self, patches: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, audio_dim) patch embeddings → (B, dim) ``â`` (L2-normalised)."""
        return F.normalize(self.phi_a(self.pool(self.audio_norm(patches), valid)), dim=-1)

    def embed_masks(self, f: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """(B, N, mask_dim) local-global embeddings and (B, N) validity → (B, N, dim) ``f̂`` (L2-normalised)."""
        x = self.mask_fc(self.mask_norm(f))
        if self.mask_encoder is not None:
            x = self.mask_encoder(x, src_key_padding_mask=~valid)
        return F.normalize(self.phi_m(self.mask_out_norm(x)), dim=-1)

    def similarity(
        self, f: torch.Tensor, valid: torch.Tensor, patches: torch.Tensor, audio_valid: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``s_n``: (B, N) cosine of each mask with its own image's audio (padding masks: −1)."""
        a = self.embed_audio(patches, audio_valid)
        m = self.embed_masks(f, valid)
        return torch.einsum("bnd,bd->bn", m, a).masked_fill(~valid, -1.0)
