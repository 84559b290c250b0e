"""Tile-based differentiable Gaussian rasterizer in pure PyTorch (the CPU backend).

The same image formation as :mod:`soundmask.splat.raster_dense` (3DGS front-to-back compositing), organised
like the 3DGS CUDA rasterizer so that each Gaussian only touches the pixels it can reach:

1. **Binning.** The image is cut into ``tile_size``² tiles. Every visible Gaussian is paired with each tile its
   alpha ≥ 1/255 footprint (:attr:`Projected.extent`) overlaps.
2. **Depth sort.** Gaussians are sorted by depth once; a stable sort of the pairs by tile id keeps that order
   inside each tile, so each tile's pairs form one contiguous, front-to-back run.
3. **Compositing.** For every pair, alpha at the tile's pixels: a (pairs, tile_size²) tensor. The
   transmittance ``Tᵢ = Πⱼ<ᵢ(1 − αⱼ)`` is ``exp`` of a *segmented* exclusive cumulative sum of ``log(1 − α)``
   (one global cumsum in float64 minus each run's start), and the weights ``αᵢ Tᵢ`` are scattered into
   their tile with ``index_add``. Everything is autograd-differentiable; no per-tile Python loop.

Pixels outside any footprint get exactly zero from a Gaussian in both renderers, so the two agree to
rounding (tested to 1e-4, image and gradients).
"""

from __future__ import annotations

import torch

from soundmask.splat.project import ALPHA_MAX, ALPHA_MIN, Projected

__all__ = ["rasterize_tiles", "tile_pairs"]


def tile_pairs(proj: Projected, width: int, height: int, tile_size: int) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """(gaussian index, tile id) of every Gaussian–tile overlap, sorted by tile then depth; and the tile grid."""
    nx, ny = (width + tile_size - 1) // tile_size, (height + tile_size - 1) // tile_size
    with torch.no_grad():
        vis = torch.nonzero(proj.visible).squeeze(1)
        vis = vis[torch.argsort(proj.depths[vis], stable=True)]
        m, e = proj.means2d.detach()[vis], proj.extent[vis]
        # pixel centres of tile t span [t·ts + 0.5, t·ts + ts − 0.5]
        x0 = torch.floor((m[:, 0] - e[:, 0] - 0.5) / tile_size).clamp(0, nx - 1).long()
        x1 = torch.floor((m[:, 0] + e[:, 0] - 0.5) / tile_size).clamp(0, nx - 1).long()
        y0 = torch.floor((m[:, 1] - e[:, 1] - 0.5) / tile_size).clamp(0, ny - 1).long()
        y1 = torch.floor((m[:, 1] + e[:, 1] - 0.5) / tile_size).clamp(0, ny - 1).long()
        wx, wy = x1 - x0 + 1, y1 - y0 + 1
        counts = wx * wy
        g = torch.repeat_interleave(torch.arange(vis.shape[0]), counts)
        start = torch.cumsum(counts, 0) - counts
        k = torch.arange(g.shape[0]) - start[g]  # index of the pair within its Gaussian's box
        tx = x0[g] + k % wx[g]
        ty = y0[g] + torch.div(k, wx[g], rounding_mode="floor")
        # keep only the tiles the footprint ellipse really touches (exact: the minimum of the quadratic form
        # over the tile's rectangle of pixel centres, searched on its four edges when the centre is outside)
        keep = _touches(
            m[g],
            proj.conics.detach()[vis][g],
            proj.opacities.detach()[vis][g],
            tx * tile_size + 0.5,
            ty * tile_size + 0.5,
            tile_size - 1.0,
        )
        g, tile = g[keep], (ty * nx + tx)[keep]
        order = torch.argsort(tile, stable=True)
    return vis[g[order]], tile[order], nx, ny


def _touches(
    mu: torch.Tensor, con: torch.Tensor, op: torch.Tensor, x0: torch.Tensor, y0: torch.Tensor, size: float
) -> torch.Tensor:
    """Whether the ellipse ``dᵀ Q d ≤ 2 ln(255 o)`` (Q from ``con`` = (a, b, c)) meets the square
    [x0, x0 + size] × [y0, y0 + size] (a small margin keeps rounding on the safe side)."""
    a, b, c = con.unbind(-1)
    lx, ly = x0 - mu[:, 0], y0 - mu[:, 1]
    hx, hy = lx + size, ly + size
    inside = (lx <= 0) & (hx >= 0) & (ly <= 0) & (hy >= 0)
    best = torch.full_like(a, float("inf"))
    for ex, lo, hi, qa, qc in ((lx, ly, hy, a, c), (hx, ly, hy, a, c), (ly, lx, hx, c, a), (hy, lx, hx, c, a)):
        # edge at fixed coordinate ex (x for the first two, y for the last two); free coordinate in [lo, hi]
        t = (-b * ex / qc).clamp(torch.minimum(lo, hi), torch.maximum(lo, hi))
        best = torch.minimum(best, qa * ex * ex + 2 * b * ex * t + qc * t * t)
    pmax = 2.0 * torch.log((255.0 * op).clamp_min(1e-12))
    return inside | (best <= pmax * 1.001 + 1e-4)


def _segment_cumsum(x: torch.Tensor, run_start: torch.Tensor, tile: torch.Tensor, n_tiles: int) -> torch.Tensor:
    """Inclusive cumulative sum of ``x`` (P, K) along pairs, restarting at each tile's first pair.

    One float32 ``cumsum`` over all pairs, kept small: each run's first value has the previous run's total taken
    off, so the running sum returns to ≈ 0 at every tile boundary and never grows beyond one tile's magnitude.
    Then ``result_i = c_i − c_s + x_s`` (s = the run's first pair) holds exactly in algebra and to float32
    rounding of one tile's sum in practice."""
    starts = torch.nonzero(run_start == torch.arange(run_start.shape[0], device=run_start.device)).squeeze(1)
    totals = torch.zeros(n_tiles, x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, tile, x)
    xp = x.clone()
    later = starts[starts > 0]
    xp.index_add_(0, later, -totals.index_select(0, tile.index_select(0, later - 1)))
    c = torch.cumsum(xp, dim=0)
    base = torch.zeros_like(totals)  # per tile: c − x at its first pair
    base.index_copy_(0, tile.index_select(0, starts), (c.index_select(0, starts) - x.index_select(0, starts)))
    return c - base.index_select(0, tile)


def _pixel_offsets(tile: torch.Tensor, mu: torch.Tensor, nx: int, tile_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """dx, dy (P, tile_size²): each pair's tile pixel centres minus its Gaussian's 2D centre."""
    ar = torch.arange(tile_size, dtype=mu.dtype) + 0.5
    ox = (tile % nx).to(mu.dtype) * tile_size - mu[:, 0]
    oy = torch.div(tile, nx, rounding_mode="floor").to(mu.dtype) * tile_size - mu[:, 1]
    return ox[:, None] + ar.repeat(tile_size)[None], oy[:, None] + ar.repeat_interleave(tile_size)[None]


class _Composite(torch.autograd.Function):
    """Front-to-back compositing of sorted Gaussian–tile pairs, with a hand-written backward.

    Forward: ``out[t, k] = Σᵢ wᵢ vᵢ`` and ``acc[t, k] = Σᵢ wᵢ`` over the pairs i of tile t, with
    ``wᵢ = αᵢ Tᵢ`` and ``Tᵢ = Πⱼ<ᵢ(1 − αⱼ)``. Backward (3DGS, vectorised): with ``qᵢ = ∂L/∂out · vᵢ + ∂L/∂acc``,
    ``∂L/∂αᵢ = Tᵢ qᵢ − (Σⱼ>ᵢ wⱼ qⱼ) / (1 − αᵢ)``; the suffix sums come from segmented cumulative sums, then
    the chain rule through ``αᵢ = min(0.99, oᵢ exp(powerᵢ))`` to opacity, the conic and the 2D centre.
    Only (pairs, pixels) scalar tensors are formed, which is what makes it fast on a CPU."""

    @staticmethod
    def forward(ctx, means2d, conics, opacities, values, gi, tile, run_start, nx, n_tiles, tile_size):
        mu, con, op = means2d.index_select(0, gi), conics.index_select(0, gi), opacities.index_select(0, gi)
        dx, dy = _pixel_offsets(tile, mu, nx, tile_size)
        # power = −½(a dx² + c dy²) − b dx dy, as dx·(−½a dx − b dy) − ½c dy²
        power = dx * torch.addcmul(-con[:, 1:2] * dy, dx, -0.5 * con[:, 0:1]) - (0.5 * con[:, 2:3]) * (dy * dy)
        araw = op[:, None] * torch.exp(power)
        valid = (power <= 0) & (araw >= ALPHA_MIN)
        alpha = torch.where(valid, araw.clamp(max=ALPHA_MAX), torch.zeros_like(araw))
        log1m = torch.log1p(-alpha)
        T = torch.exp(_segment_cumsum(log1m, run_start, tile, n_tiles) - log1m)
        w = alpha * T
        npix = tile_size * tile_size
        vals = torch.cat([values, torch.ones_like(values[:, :1])], dim=1).index_select(0, gi)  # (P, C+1)
        out = torch.zeros(n_tiles, npix, vals.shape[1], dtype=values.dtype)
        out.index_add_(0, tile, w[..., None] * vals[:, None, :])
        ctx.save_for_backward(means2d, conics, opacities, values, gi, tile, run_start, alpha, araw, valid, T, w)
        ctx.meta = (nx, n_tiles, tile_size)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        means2d, conics, opacities, values, gi, tile, run_start, alpha, araw, valid, T, w = ctx.saved_tensors
        nx, n_tiles, tile_size = ctx.meta
        vals = torch.cat([values, torch.ones_like(values[:, :1])], dim=1).index_select(0, gi)  # (P, C+1)
        g = grad_out.index_select(0, tile)  # (P, npix, C+1)
        q = torch.bmm(g, vals[:, :, None]).squeeze(-1)  # (P, npix)
        grad_vals = torch.bmm(w[:, None, :], g).squeeze(1)[:, :-1]  # (P, C)
        wq = w * q
        total = torch.zeros(n_tiles, wq.shape[1], dtype=wq.dtype).index_add_(0, tile, wq)
        after = total.index_select(0, tile) - _segment_cumsum(wq, run_start, tile, n_tiles)
        d_alpha = T * q - after / (1 - alpha)
        d_araw = torch.where(valid & (araw < ALPHA_MAX), d_alpha, torch.zeros_like(d_alpha))
        d_power = d_araw * araw
        op = opacities.index_select(0, gi)
        d_op = d_power.sum(1) / op.clamp_min(1e-30)  # ∂α/∂o = exp(power) = α_raw / o
        mu, con = means2d.index_select(0, gi), conics.index_select(0, gi)
        dx, dy = _pixel_offsets(tile, mu, nx, tile_size)
        dpx, dpy = d_power * dx, d_power * dy
        s_x, s_y = dpx.sum(1), dpy.sum(1)
        s_xx = torch.einsum("pk,pk->p", dpx, dx)
        s_xy = torch.einsum("pk,pk->p", dpx, dy)
        s_yy = torch.einsum("pk,pk->p", dpy, dy)
        d_con = torch.stack([-0.5 * s_xx, -s_xy, -0.5 * s_yy], dim=1)
        d_mu = torch.stack([con[:, 0] * s_x + con[:, 1] * s_y, con[:, 2] * s_y + con[:, 1] * s_x], dim=1)
        n = means2d.shape[0]
        return (
            torch.zeros_like(means2d).index_add_(0, gi, d_mu),
            torch.zeros_like(conics).index_add_(0, gi, d_con),
            torch.zeros(n, dtype=opacities.dtype).index_add_(0, gi, d_op),
            torch.zeros_like(values).index_add_(0, gi, grad_vals),
            None,
            None,
            None,
            None,
            None,
            None,
        )


def rasterize_tiles(
    proj: Projected,
    values: torch.Tensor,
    width: int,
    height: int,
    background: torch.Tensor | None = None,
    tile_size: int = 4,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Composite ``values`` (N, C) of the projected Gaussians; returns image (H, W, C) and alpha (H, W)."""
    C = values.shape[1]
    gi, tile, nx, ny = tile_pairs(proj, width, height, tile_size)
    n_tiles, npix = nx * ny, tile_size * tile_size
    if gi.numel():
        first = torch.ones_like(tile, dtype=torch.bool)
        first[1:] = tile[1:] != tile[:-1]
        run_start = torch.cummax(torch.where(first, torch.arange(tile.shape[0]), torch.zeros_like(tile)), 0).values
        out = _Composite.apply(
            proj.means2d, proj.conics, proj.opacities, values, gi, tile, run_start, nx, n_tiles, tile_size
        )
    else:
        out = torch.zeros(n_tiles, npix, C + 1, dtype=values.dtype) + 0 * values.sum()
    image, acc = out[..., :C], out[..., C]
    if background is not None:
        image = image + (1 - acc)[..., None] * background.to(values)
    image = (
        image.reshape(ny, nx, tile_size, tile_size, C).permute(0, 2, 1, 3, 4).reshape(ny * tile_size, nx * tile_size, C)
    )
    acc = acc.reshape(ny, nx, tile_size, tile_size).permute(0, 2, 1, 3).reshape(ny * tile_size, nx * tile_size)
    return image[:height, :width], acc[:height, :width]
