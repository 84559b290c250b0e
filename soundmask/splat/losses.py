"""Photometric losses and metrics for Gaussian splatting.

* :func:`ssim` / :func:`ssim_map` — the structural similarity index of Wang et al. 2004 ("Image quality
  assessment: from error visibility to structural similarity", IEEE TIP 13(4)), with an 11 × 11 Gaussian
  window (σ = 1.5) and C1 = (0.01 L)², C2 = (0.03 L)², computed exactly as the 3D Gaussian splatting
  reference code (``utils/loss_utils.py``): local statistics by a per-channel convolution with zero padding
  of ``window // 2`` (``padding="same"``), and the mean of the SSIM map. ``padding="valid"`` keeps only
  the pixels whose window lies inside the image (what scikit-image averages).
* :func:`l1_ssim_loss` — the 3DGS training loss, Eq. (7) of Kerbl et al. 2023 ("3D Gaussian Splatting for
  Real-Time Radiance Field Rendering", ACM TOG 42(4)): L = (1 − λ) L1 + λ L_D-SSIM with L_D-SSIM = 1 − SSIM
  and λ = 0.2.
* :func:`psnr` — peak signal-to-noise ratio in dB.

Images are float tensors, (H, W, C) or (B, C, H, W) (a 3-D tensor is always read as H, W, C).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["gaussian_window", "l1_ssim_loss", "psnr", "ssim", "ssim_map"]


def gaussian_window(window: int = 11, sigma: float = 1.5, dtype: torch.dtype = torch.float32,
                    device: torch.device | str | None = None) -> torch.Tensor:  # fmt: skip
    """The normalised 1-D Gaussian of ``window`` taps (the 2-D window is its outer product)."""
    x = torch.arange(window, dtype=torch.float64) - window // 2
    g = torch.exp(-(x**2) / (2.0 * sigma**2))
    return (g / g.sum()).to(dtype=dtype, device=device)


def _as_bchw(img: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(img, torch.Tensor) or not img.is_floating_point():
        raise TypeError(f"{name} must be a float tensor, got {type(img).__name__} {getattr(img, 'dtype', '')}")
    if img.ndim == 3:
        return img.permute(2, 0, 1)[None]
    if img.ndim == 4:
        return img
    raise ValueError(f"{name} must be (H, W, C) or (B, C, H, W), got shape {tuple(img.shape)}")


def ssim_map(img1: torch.Tensor, img2: torch.Tensor, window: int = 11, sigma: float = 1.5,
             data_range: float = 1.0, padding: str = "same") -> torch.Tensor:  # fmt: skip
    """The per-pixel SSIM map (Wang et al. 2004), shaped (B, C, H', W').

    ``padding="same"`` (H' = H, as the 3DGS reference: zero padding of ``window // 2``, so border pixels see
    zeros) or ``"valid"`` (H' = H − window + 1, only pixels whose whole window is inside the image).
    Differentiable in both images."""
    if img1.shape != img2.shape:
        raise ValueError(f"images differ in shape: {tuple(img1.shape)} vs {tuple(img2.shape)}")
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be a positive odd number, got {window}")
    if padding not in ("same", "valid"):
        raise ValueError(f"padding must be 'same' or 'valid', got {padding!r}")
    x, y = _as_bchw(img1, "img1"), _as_bchw(img2, "img2")
    c, h, w = x.shape[1:]
    if padding == "valid" and (h < window or w < window):
        raise ValueError(f"images of {h}x{w} are smaller than the {window}x{window} window")
    pad = window // 2 if padding == "same" else 0
    g = gaussian_window(window, sigma, x.dtype, x.device)
    # the five local moments in one grouped, separable convolution (exactly the 2-D Gaussian filter)
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    groups = 5 * c
    stack = F.conv2d(stack, g.view(1, 1, window, 1).expand(groups, 1, window, 1), padding=(pad, 0), groups=groups)
    stack = F.conv2d(stack, g.view(1, 1, 1, window).expand(groups, 1, 1, window), padding=(0, pad), groups=groups)
    mu1, mu2, e11, e22, e12 = stack.split(c, dim=1)
    mu1_sq, mu2_sq, mu1_mu2 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    sigma1_sq, sigma2_sq, sigma12 = e11 - mu1_sq, e22 - mu2_sq, e12 - mu1_mu2
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    return ((2 * mu1_mu2 + c1) * (2 * sigma12 + c2)) / ((mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2))


def ssim(img1: torch.Tensor, img2: torch.Tensor, window: int = 11, sigma: float = 1.5,
         data_range: float = 1.0, padding: str = "same") -> torch.Tensor:  # fmt: skip
    """Mean SSIM (Wang et al. 2004) of two images as a differentiable scalar tensor; 1 for identical images.

    With the defaults this is the ``ssim`` of the 3DGS reference code (Kerbl et al. 2023); see
    :func:`ssim_map` for ``padding``."""
    return ssim_map(img1, img2, window, sigma, data_range, padding).mean()


def l1_ssim_loss(render: torch.Tensor, target: torch.Tensor, lambda_ssim: float = 0.2) -> torch.Tensor:
    """The 3DGS photometric loss, Eq. (7) of Kerbl et al. 2023: ``(1 − λ)·L1 + λ·(1 − SSIM)``.

    L1 is the mean absolute error over all pixels and channels; SSIM is :func:`ssim` with its defaults."""
    if render.shape != target.shape:
        raise ValueError(f"render and target differ in shape: {tuple(render.shape)} vs {tuple(target.shape)}")
    l1 = (render - target).abs().mean()
    if lambda_ssim == 0:
        return l1
    return (1.0 - lambda_ssim) * l1 + lambda_ssim * (1.0 - ssim(render, target))


def psnr(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio ``10·log10(L² / MSE)`` in dB over all values; ``inf`` for identical inputs."""
    x = torch.as_tensor(a).detach().to(torch.float64)
    y = torch.as_tensor(b).detach().to(torch.float64)
    if x.shape != y.shape:
        raise ValueError(f"inputs differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")
    mse = float(((x - y) ** 2).mean())
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse)
