"""The compiled CPU rasterizer: projection, binning and compositing, forward and backward, as a C++ torch extension.

``csrc/raster_cpu.cpp`` does what the PyTorch path does, in the same order and with the same rules:

* **projection** — :func:`soundmask.splat.project.project` (EWA) as one pass per Gaussian, with its backward;
* **binning** — :func:`soundmask.splat.raster_tile.tile_pairs`: Gaussian–tile pairs sorted by tile, then depth;
* **compositing** — per tile row, the 16 pixels as one vector (a vectorised ``exp``), over only the Gaussians whose
  footprint reaches that row, in depth order, parallel over tiles on torch's OpenMP threads; with 3DGS's **early
  termination**: a pixel stops once its transmittance is below ``t_min`` (1e-4), so what it skips weighs less than
  1e-4 in all. The backward walks each pixel's contributors back to front.

``t_min=0`` composites every Gaussian and then agrees with the dense reference to rounding (tested to 1e-4, image
and gradients); the projection and binning are tested against the PyTorch ones.

**Built once, never at run time.** ``./install.sh`` runs ``python -m soundmask.splat.raster_compiled`` (g++ and
ninja from Debian, torch's headers from its wheel), which writes ``soundmask_raster_<hash>.so`` into
``soundmask/splat/_build/`` (or ``$SOUNDMASK_EXT_DIR``). The hash covers the source, the flags and the torch
version, so a stale build is never loaded. At run time the module is only imported from that file: no compiler, no
network. Without it, ``--backend auto`` falls back to the pure-PyTorch ``tile`` renderer. It is built for the CPU
it is built on (``-march=native``): a cluster node builds its own (``./install.sh`` on each).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import torch

from soundmask.errors import ConfigError
from soundmask.splat.project import ALPHA_MAX, ALPHA_MIN, DILATION, Projected

__all__ = ["T_MIN", "available", "build", "project_compiled", "rasterize_compiled"]

T_MIN = 1e-4
"""Early termination: a pixel stops compositing once its transmittance falls below this (3DGS, gsplat)."""

_SOURCE = Path(__file__).parent / "csrc" / "raster_cpu.cpp"
_FLAGS = ["-O3", "-march=native", "-fopenmp", "-fno-math-errno", "-fno-trapping-math"]
_module: ModuleType | None = None


def build_dir() -> Path:
    """Where the extension is built and looked for: ``$SOUNDMASK_EXT_DIR`` or ``soundmask/splat/_build``."""
    return Path(os.environ.get("SOUNDMASK_EXT_DIR") or Path(__file__).parent / "_build")


@functools.cache
def _name() -> str:
    """The build's name: a hash of the source, the flags and torch's version (computed once per process)."""
    h = hashlib.sha256(_SOURCE.read_bytes() + torch.__version__.encode() + " ".join(_FLAGS).encode())
    return f"soundmask_raster_{h.hexdigest()[:12]}"


def _library() -> Path:
    return build_dir() / _name() / f"{_name()}.so"  # as torch's builder names it


def _load() -> ModuleType | None:
    global _module
    if _module is None:
        path = _library()
        if not path.is_file():
            return None
        spec = importlib.util.spec_from_file_location(_name(), path)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        _module = mod
    return _module


def available() -> bool:
    """Whether the compiled rasterizer is built for this source and torch (loading it if so)."""
    return _load() is not None


def build(verbose: bool = False) -> Path:
    """Compile the extension (install time: needs g++ and ninja); returns the library's path."""
    import shutil

    from torch.utils.cpp_extension import load

    out = build_dir() / _name()
    for old in build_dir().glob("soundmask_raster_*"):  # builds of older sources or another torch
        if old != out:
            shutil.rmtree(old, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    global _module
    _module = load(
        name=_name(),
        sources=[str(_SOURCE)],
        extra_cflags=_FLAGS,
        extra_ldflags=["-fopenmp"],
        build_directory=str(out),
        verbose=verbose,
    )
    return out


def _extension() -> ModuleType:
    mod = _load()
    if mod is None:
        raise ConfigError(
            "the compiled rasterizer is not built",
            build_dir(),
            "run ./install.sh (or `python -m soundmask.splat.raster_compiled`), or use --backend tile",
        )
    return mod


class _Composite(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means2d, conics, opacities, extent, values, gi, ranges, geom, t_min):  # noqa: ANN001
        ext = _extension()
        nx, ny, ts, W, H = geom
        args = tuple(t.detach().contiguous() for t in (means2d, conics, opacities, extent))
        vals = values.detach().contiguous()
        out, t_final, last = ext.forward(*args, vals, gi, ranges, nx, ny, ts, W, H, ALPHA_MIN, ALPHA_MAX, t_min)
        ctx.save_for_backward(*args, vals, gi, ranges, t_final, last)
        ctx.geom = geom
        return out

    @staticmethod
    def backward(ctx, grad_out):  # noqa: ANN001
        mu, con, op, extent, vals, gi, ranges, t_final, last = ctx.saved_tensors
        nx, ny, ts, W, H = ctx.geom
        d_mu, d_con, d_op, d_vals = _extension().backward(
            grad_out.contiguous(), mu, con, op, extent, vals, gi, ranges, t_final, last, nx, ny, ts, W, H, ALPHA_MIN,
            ALPHA_MAX,
        )  # fmt: skip
        return d_mu, d_con, d_op, None, d_vals, None, None, None, None


class _Project(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means, covs, opacities, w2c, cam):  # noqa: ANN001
        m, S = means.detach().contiguous(), covs.detach().contiguous()
        out = _extension().project_forward(m, S, opacities.detach().contiguous(), w2c, *cam, DILATION, ALPHA_MIN)
        means2d, conics, depths, cov2d, extent, visible = out
        ctx.save_for_backward(m, S, w2c)
        ctx.cam = cam
        ctx.mark_non_differentiable(cov2d, extent, visible)
        return means2d, conics, depths, cov2d, extent, visible

    @staticmethod
    def backward(ctx, g_means2d, g_conics, g_depths, *_):  # noqa: ANN001
        m, S, w2c = ctx.saved_tensors
        z = torch.zeros(())
        grads = [g if g is not None else z.expand(shape) for g, shape in ((g_means2d, (len(m), 2)),
                 (g_conics, (len(m), 3)), (g_depths, (len(m),)))]  # fmt: skip
        g_means, g_covs = _extension().project_backward(
            m, S, w2c, *ctx.cam, DILATION, *[g.to(m).contiguous() for g in grads]
        )
        return g_means, g_covs, None, None, None


def project_compiled(
    means: torch.Tensor,
    covs: torch.Tensor,
    opacities: torch.Tensor,
    world_to_camera: torch.Tensor,
    fx: float,
    fy: float,
    cx: float,
    cy: float,
    width: int,
    height: int,
    near: float = 0.01,
) -> Projected:
    """:func:`soundmask.splat.project.project` as one C++ pass (forward and backward), for the compiled backend;
    tested against it, values and gradients."""
    w2c = world_to_camera.detach().to(torch.float64).cpu().contiguous()
    cam = (float(fx), float(fy), float(cx), float(cy), int(width), int(height), float(near))
    means2d, conics, depths, cov2d, extent, visible = _Project.apply(means, covs, opacities, w2c, cam)
    return Projected(means2d, conics, depths, extent, visible, cov2d, opacities)


def rasterize_compiled(
    proj: Projected,
    values: torch.Tensor,
    width: int,
    height: int,
    background: torch.Tensor | None = None,
    tile_size: int = 16,
    t_min: float = T_MIN,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Composite ``values`` (N, C) of the projected Gaussians; returns image (H, W, C) and alpha (H, W).
    ``tile_size`` is at most 16 (a tile row is one 16-lane vector)."""
    ext = _extension()
    if not 1 <= tile_size <= 16:
        raise ConfigError(f"the compiled rasterizer takes tiles of 1 to 16 pixels, not {tile_size}", fix="use 16")
    nx, ny = (width + tile_size - 1) // tile_size, (height + tile_size - 1) // tile_size
    d = [t.detach().contiguous() for t in (proj.means2d, proj.conics, proj.opacities, proj.depths)]
    extent = proj.extent.to(d[0]).contiguous()
    gi, ranges = ext.bin(*d, proj.visible.contiguous(), extent, nx, ny, tile_size, ALPHA_MIN)
    vals = torch.cat([values, torch.ones_like(values[:, :1])], dim=1)
    out = _Composite.apply(
        proj.means2d,
        proj.conics,
        proj.opacities,
        extent,
        vals,
        gi.contiguous(),
        ranges,
        (nx, ny, tile_size, width, height),
        t_min,
    )
    image, acc = out[..., :-1], out[..., -1]
    if background is not None:
        image = image + (1 - acc)[..., None] * background.to(values)
    return image, acc


if __name__ == "__main__":  # python -m soundmask.splat.raster_compiled: build at install time
    if available() and "--force" not in sys.argv:
        print(f"compiled rasterizer: up to date in {_library().parent}")
        sys.exit(0)
    try:
        print(f"compiled rasterizer: built in {build(verbose='-v' in sys.argv)}")
    except Exception as e:  # noqa: BLE001 - install.sh reports it and goes on with the PyTorch fallback
        print(f"compiled rasterizer not built ({type(e).__name__}: {str(e).splitlines()[0][:200]})", file=sys.stderr)
        sys.exit(1)
