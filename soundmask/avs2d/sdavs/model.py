"""SDAVS's network (paper ``004_*``): SNRP noise gating and DAMF bidirectional fusion in a four-stage decoder.

Tensors are frame-major, ``(B·T, C, h, w)`` with the T frames of each clip consecutive, so the 3D
convolutions of STC see time (:class:`DepthwiseConv3d` is an exact depthwise Conv3d computed as a sum of
time-shifted depthwise 2D convolutions, several times faster on a CPU than ``nn.Conv3d`` with ``groups=C``).
Visual features are the frozen EfficientNet-Lite0 stride-32/16/8/4 maps (stage j = 1..4, Sec. III-A);
the audio feature ``F_a`` of a frame (YAMNet embedding + scores, projected to C) is broadcast over the frame's
grid (``Conv(UpSample(F_a))`` of Eq. 1).

- :class:`SNRP` (Eq. 1–3): channel feature selector ``gatec = σ(MLP(GAP(F'_a)))``, ``F̃_v = F_v ⊙ gatec``;
  spatial feature selector ``gates = σ(Conv(·))``, ``F'_v = F̃_v ⊙ gates``. With a spatially constant audio
  map a convolution of ``F'_a`` alone would give a constant gate, so the spatial selector convolves the
  audio-modulated visual map ``F'_a ⊙ F̃_v`` (our reading of Eq. 3); both gates lie in [0, 1].
- :class:`CAR` (Eq. 6) and :class:`STC` (Eq. 5): depthwise Conv3d with kernel (3, 3, 3) for queries and
  (1, 3, 3) for keys/values, then CAR, then LayerNorm over channels.
- :class:`DAMF` (Eq. 4, 7): ``F_a→v = Attn(STC_q(F'_v), STC_k(F'_a), STC_v(F'_a))`` and
  ``F_v→a = Attn(STC_q(F'_a), STC_k(F'_v), STC_v(F'_v))``, multi-head attention over all T·h·w positions of the
  clip; keys and values are average-pooled to at most ``kv_pool``² cells per frame (spatial-reduction attention,
  as in PVT-v2, to fit a CPU) and the audio queries — constant over the grid — are computed on that pooled grid.
  DAMF runs in the ``damf_stages`` coarsest stages (default 3: strides 32, 16, 8); the stride-4 stage keeps
  SNRP and the connections (CPU scaling: attention at 56² × T would cost more than the rest of the network).
  Residual multiplication (Eq. 7): ``F'_a→v = F_a→v ⊙ F'_a``, ``F'_v→a = F_v→a ⊙ F'_v``.
- :class:`SDAVSNet` (Eq. 8–9): direct connection ``F_v^{j+1} = Conv(Up(F'_a→v + F'_v→a) + lateral_{j+1})``,
  skip connections ``Fus_out = Σ_j Up_max(Conv(F_a^j + F_v^j))`` at stride 4, ``Mask = FC(MLP(Fus_out))``; an
  optional stride-2 refinement with the first backbone block (``fine``, our addition for sharper boundaries).

``snrp=False`` / ``damf=False`` remove a module (the paper's ablations).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from soundmask.avs2d.features import LEVEL_CHANNELS

__all__ = ["CAR", "DAMF", "DepthwiseConv3d", "SDAVSNet", "SDAVSNetConfig", "SNRP", "STC"]


@dataclass
class SDAVSNetConfig:
    audio_dim: int
    width: int = 32
    heads: int = 4
    kv_pool: int = 4
    damf_stages: int = 3
    snrp: bool = True
    damf: bool = True
    fine: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


def _resize(x: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    return (
        x if x.shape[-2:] == tuple(size) else F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)
    )


class DepthwiseConv3d(nn.Module):
    """Depthwise 3D convolution (kernel (kt, 3, 3), zero padding, stride 1) of frame-major (B·T, C, h, w)
    tensors: ``y[t] = Σ_dt conv2d(x[t + dt − kt//2], weight[:, :, dt])`` — equal to ``F.conv3d`` with
    ``groups=C`` on the (B, C, T, h, w) layout."""

    def __init__(self, c: int, kt: int) -> None:
        super().__init__()
        ref = nn.Conv3d(c, c, (kt, 3, 3), padding=(kt // 2, 1, 1), groups=c)
        assert ref.bias is not None  # bias=True
        self.weight, self.bias = ref.weight, ref.bias  # (C, 1, kt, 3, 3), (C,)
        self.kt = kt

    def forward(self, x: torch.Tensor, T: int) -> torch.Tensor:
        N, C, h, w = x.shape
        if self.kt == 1:
            return F.conv2d(x, self.weight[:, :, 0], self.bias, padding=1, groups=C)
        B = N // T
        r = self.kt // 2
        xp = F.pad(x.reshape(B, T, C, h, w), (0, 0, 0, 0, 0, 0, r, r))
        y = None
        for dt in range(self.kt):
            part = F.conv2d(xp[:, dt : dt + T].reshape(N, C, h, w), self.weight[:, :, dt], None, padding=1, groups=C)
            y = part if y is None else y + part
        assert y is not None  # kt >= 2 here
        return y + self.bias[:, None, None]


class CAR(nn.Module):
    """Eq. 6: channel-wise adaptive recalibration ``X ⊙ σ(W2·ReLU(W1·GAP(X)))`` (GAP over each frame's grid)."""

    def __init__(self, c: int, reduction: int = 4) -> None:
        super().__init__()
        self.w1, self.w2 = nn.Linear(c, max(4, c // reduction)), nn.Linear(max(4, c // reduction), c)

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.w2(F.relu(self.w1(x.mean(dim=(2, 3))))))[..., None, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weights(x)


class STC(nn.Module):
    """Eq. 5: ``LN(CAR(DepthwiseConv3d(x)))`` with kernel (3, 3, 3) (queries) or (1, 3, 3) (keys/values)."""

    def __init__(self, c: int, temporal: bool) -> None:
        super().__init__()
        self.conv = DepthwiseConv3d(c, 3 if temporal else 1)
        self.car = CAR(c)
        self.norm = nn.LayerNorm(c)

    def tokens(self, x: torch.Tensor, T: int) -> torch.Tensor:
        """STC of (B·T, C, h, w) as attention tokens (B, T·h·w, C)."""
        y = self.car(self.conv(x, T))
        N, C, h, w = y.shape
        return self.norm(y.reshape(N // T, T, C, h * w).transpose(2, 3).reshape(N // T, T * h * w, C))


class SNRP(nn.Module):
    """Eq. 1–3: the selective noise-resilient processor (see the module docstring). ``forward(F_v, F_a)``
    with F_v (B·T, C, h, w) and F_a (B·T, C) returns ``(F'_v, F'_a, gatec, gates)``; F'_a is (B·T, C, 1, 1),
    the audio map, constant over the grid."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.audio_conv = nn.Linear(c, c)  # Conv(UpSample(F_a)): a 1×1 conv of the broadcast map
        self.mlp = nn.Sequential(nn.Linear(c, c), nn.ReLU(), nn.Linear(c, c))
        self.spatial = nn.Conv2d(c, 1, 3, padding=1)

    def forward(self, fv: torch.Tensor, fa: torch.Tensor) -> tuple[torch.Tensor, ...]:
        a = self.audio_conv(fa)  # GAP of the constant map F'_a is a itself
        fa_map = a[..., None, None]
        gatec = torch.sigmoid(self.mlp(a))[..., None, None]
        fv_t = fv * gatec
        gates = torch.sigmoid(self.spatial(fa_map * fv_t))
        return fv_t * gates, fa_map, gatec, gates


class DAMF(nn.Module):
    """Eq. 4 + 7: STC-enhanced bidirectional attention with residual multiplication → ``F'_a→v + F'_v→a``."""

    def __init__(self, c: int, heads: int, kv_pool: int) -> None:
        super().__init__()
        self.kv_pool = kv_pool
        self.q_v, self.k_a, self.v_a = STC(c, True), STC(c, False), STC(c, False)
        self.q_a, self.k_v, self.v_v = STC(c, True), STC(c, False), STC(c, False)
        self.attn_av = nn.MultiheadAttention(c, heads, batch_first=True)
        self.attn_va = nn.MultiheadAttention(c, heads, batch_first=True)

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        size = (min(x.shape[-2], self.kv_pool), min(x.shape[-1], self.kv_pool))
        return x if x.shape[-2:] == size else F.adaptive_avg_pool2d(x, size)

    def forward(self, fv: torch.Tensor, fa_map: torch.Tensor, T: int) -> torch.Tensor:
        N, C, h, w = fv.shape
        B = N // T
        p = (min(h, self.kv_pool), min(w, self.kv_pool))
        fa_grid = fa_map.expand(-1, -1, *p)  # the constant audio map on the pooled grid
        fv_pool = self._pool(fv)
        a2v, _ = self.attn_av(
            self.q_v.tokens(fv, T), self.k_a.tokens(fa_grid, T), self.v_a.tokens(fa_grid, T), need_weights=False
        )
        a2v = a2v.reshape(B, T, h * w, C).transpose(2, 3).reshape(N, C, h, w)
        v2a, _ = self.attn_va(
            self.q_a.tokens(fa_grid, T), self.k_v.tokens(fv_pool, T), self.v_v.tokens(fv_pool, T), need_weights=False
        )
        v2a = _resize(v2a.reshape(B, T, p[0] * p[1], C).transpose(2, 3).reshape(N, C, *p), (h, w))
        return a2v * fa_map + v2a * fv


def _conv_bn(c: int) -> nn.Sequential:
    """1×1 conv, depthwise 3×3, BN, ReLU: the direct-connection Conv of Eq. 8, light enough for a CPU."""
    return nn.Sequential(
        nn.Conv2d(c, c, 1, bias=False),
        nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False),
        nn.BatchNorm2d(c),
        nn.ReLU(),
    )


class SDAVSNet(nn.Module):
    """Pyramid (stride 2..32 maps of B·T frames, frame-major) + audio (B, T, Da) → mask logits (B, T, 112, 112)."""

    def __init__(self, cfg: SDAVSNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c = cfg.width
        self.audio_proj = nn.Sequential(
            nn.LayerNorm(cfg.audio_dim), nn.Linear(cfg.audio_dim, c), nn.GELU(), nn.Linear(c, c)
        )
        chans = LEVEL_CHANNELS[1:][::-1]  # stage 1 = stride 32 ... stage 4 = stride 4
        self.lateral = nn.ModuleList([nn.Conv2d(ch, c, 1) for ch in chans])
        self.snrp = nn.ModuleList([SNRP(c) for _ in chans]) if cfg.snrp else None
        n_damf = min(cfg.damf_stages, len(chans)) if cfg.damf else 0
        self.damf = nn.ModuleList([DAMF(c, cfg.heads, cfg.kv_pool) for _ in range(n_damf)])
        self.direct = nn.ModuleList([_conv_bn(c) for _ in chans[1:]])
        self.skip = nn.ModuleList([nn.Conv2d(c, c, 1) for _ in chans])
        self.head = nn.Sequential(nn.Conv2d(c, c, 1), nn.ReLU(), nn.Conv2d(c, c // 2, 1), nn.ReLU())
        self.out = nn.Conv2d(c // 2, 1, 1)
        if cfg.fine:
            self.fine_lateral = nn.Conv2d(LEVEL_CHANNELS[0], c // 2, 1)
            self.fine = nn.Sequential(
                nn.Conv2d(c, c // 2, 1),
                nn.ReLU(),
                nn.Conv2d(c // 2, c // 2, 3, padding=1, groups=c // 2),
                nn.ReLU(),
                nn.Conv2d(c // 2, 1, 1),
            )

    def stage(self, j: int, fv: torch.Tensor, fa: torch.Tensor, T: int) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """Decoder stage j: SNRP then DAMF → (fused visual map, audio map F'_a, gates)."""
        gates: dict = {}
        if self.snrp is not None:
            fv, fa_map, gates["c"], gates["s"] = self.snrp[j](fv, fa)
        else:
            fa_map = fa[..., None, None]
        fused = self.damf[j](fv, fa_map, T) if j < len(self.damf) else fv
        return fused, fa_map, gates

    def forward(self, levels: list[torch.Tensor], audio: torch.Tensor, return_gates: bool = False):  # noqa: ANN201
        B, T = audio.shape[:2]
        fa = self.audio_proj(audio).reshape(B * T, -1)
        stages = levels[1:][::-1]
        fv = self.lateral[0](stages[0])
        out_size = stages[-1].shape[-2:]
        total = None
        all_gates = []
        for j in range(len(stages)):
            fused, fa_map, gates = self.stage(j, fv, fa, T)
            all_gates.append(gates)
            s = _resize(self.skip[j](fused + fa_map), out_size)  # Eq. 9 skip connection
            total = s if total is None else total + s
            if j + 1 < len(stages):  # Eq. 8 direct connection
                nxt = stages[j + 1]
                fv = self.direct[j](_resize(fused, nxt.shape[-2:]) + self.lateral[j + 1](nxt))
        hidden = self.head(total)
        fine_size = levels[0].shape[-2:]
        logits = _resize(self.out(hidden), fine_size)  # Eq. 9: Mask = FC(MLP(Fus_out)), stride 4 → 2
        if self.cfg.fine:
            up = _resize(hidden, fine_size)
            logits = logits + self.fine(torch.cat([up, self.fine_lateral(levels[0])], 1))
        logits = logits.reshape(B, T, *fine_size)
        return (logits, all_gates) if return_gates else logits
