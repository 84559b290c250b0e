"""SSIM, PSNR and the 3DGS L1 + D-SSIM loss (soundmask.splat.losses)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter
from skimage.metrics import structural_similarity

from soundmask.splat.losses import gaussian_window, l1_ssim_loss, psnr, ssim, ssim_map


def smooth_image(rng: np.random.Generator, h: int, w: int, c: int = 3, blur: float = 2.0) -> np.ndarray:
    img = np.stack([gaussian_filter(rng.random((h, w)), blur) for _ in range(c)], axis=-1)
    img = (img - img.min()) / (img.max() - img.min())
    return img.astype(np.float64)


def reference_3dgs_ssim(img1: torch.Tensor, img2: torch.Tensor, window_size: int = 11) -> torch.Tensor:
    """The 3DGS reference ``ssim`` (utils/loss_utils.py), written out with a full 2-D window; (C, H, W) inputs."""
    x = torch.arange(window_size, dtype=torch.float64) - window_size // 2
    g = torch.exp(-(x**2) / (2 * 1.5**2))
    g = (g / g.sum())[:, None]
    channel = img1.shape[-3]
    win = (g @ g.T).to(img1.dtype)[None, None].expand(channel, 1, window_size, window_size).contiguous()
    pad = window_size // 2
    mu1 = F.conv2d(img1, win, padding=pad, groups=channel)
    mu2 = F.conv2d(img2, win, padding=pad, groups=channel)
    mu1_sq, mu2_sq, mu1_mu2 = mu1.pow(2), mu2.pow(2), mu1 * mu2
    sigma1_sq = F.conv2d(img1 * img1, win, padding=pad, groups=channel) - mu1_sq
    sigma2_sq = F.conv2d(img2 * img2, win, padding=pad, groups=channel) - mu2_sq
    sigma12 = F.conv2d(img1 * img2, win, padding=pad, groups=channel) - mu1_mu2
    c1, c2 = 0.01**2, 0.03**2
    m = ((2 * mu1_mu2 + c1) * (2 * sigma12 + c2)) / ((mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2))
    return m.mean()


def test_window_is_normalised_gaussian() -> None:
    g = gaussian_window(11, 1.5, torch.float64)
    assert g.shape == (11,) and abs(float(g.sum()) - 1) < 1e-12
    assert torch.allclose(g, g.flip(0)) and int(g.argmax()) == 5


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_ssim_of_identical_images_is_one(rng: np.random.Generator, padding: str) -> None:
    x = torch.from_numpy(smooth_image(rng, 24, 31)).float()
    assert abs(float(ssim(x, x, padding=padding)) - 1.0) < 1e-6
    assert abs(float(ssim(x, x.clone(), data_range=255.0)) - 1.0) < 1e-6


def test_ssim_map_matches_skimage_interior(rng: np.random.Generator) -> None:
    a = smooth_image(rng, 40, 52)
    b = np.clip(a + 0.1 * smooth_image(rng, 40, 52, blur=1.0) - 0.05, 0, 1)
    ref_mean, ref = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                          data_range=1, channel_axis=-1, full=True)  # fmt: skip
    ours = ssim_map(torch.from_numpy(a), torch.from_numpy(b))[0].permute(1, 2, 0).numpy()  # (H, W, C), float64
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours[5:-5, 5:-5], ref[5:-5, 5:-5], atol=1e-4)
    # 'valid' keeps exactly that interior, whose mean is what skimage reports
    valid = ssim_map(torch.from_numpy(a), torch.from_numpy(b), padding="valid")[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(valid, ref[5:-5, 5:-5], atol=1e-4)
    assert abs(float(ssim(torch.from_numpy(a), torch.from_numpy(b), padding="valid")) - ref_mean) < 1e-4
    # float32 agrees too
    ours32 = ssim_map(torch.from_numpy(a).float(), torch.from_numpy(b).float())[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(ours32[5:-5, 5:-5], ref[5:-5, 5:-5], atol=1e-4)


def test_ssim_matches_3dgs_reference(rng: np.random.Generator) -> None:
    a = torch.from_numpy(smooth_image(rng, 33, 27)).float()
    b = torch.from_numpy(rng.random((33, 27, 3))).float()
    ref = reference_3dgs_ssim(a.permute(2, 0, 1), b.permute(2, 0, 1))
    assert abs(float(ssim(a, b)) - float(ref)) < 1e-5
    # the batched (B, C, H, W) layout gives the same value
    assert abs(float(ssim(a.permute(2, 0, 1)[None], b.permute(2, 0, 1)[None])) - float(ref)) < 1e-6


def test_data_range_scales_constants(rng: np.random.Generator) -> None:
    a = torch.from_numpy(smooth_image(rng, 20, 20))
    b = torch.from_numpy(smooth_image(rng, 20, 20))
    assert abs(float(ssim(a * 255, b * 255, data_range=255.0)) - float(ssim(a, b))) < 1e-9


def test_gradients_flow(rng: np.random.Generator) -> None:
    target = torch.from_numpy(smooth_image(rng, 16, 18)).float()
    render = (target + 0.1 * torch.from_numpy(rng.standard_normal((16, 18, 3))).float()).requires_grad_(True)
    loss = l1_ssim_loss(render, target)
    loss.backward()
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert render.grad is not None and torch.isfinite(render.grad).all() and render.grad.abs().sum() > 0
    # one gradient step lowers the loss
    with torch.no_grad():
        stepped = render - 0.5 * render.grad
    assert float(l1_ssim_loss(stepped, target)) < float(loss.detach())


def test_l1_ssim_loss_formula(rng: np.random.Generator) -> None:
    a = torch.from_numpy(smooth_image(rng, 20, 22)).float()
    b = torch.from_numpy(smooth_image(rng, 20, 22)).float()
    l1 = float((a - b).abs().mean())
    s = float(ssim(a, b))
    assert abs(float(l1_ssim_loss(a, b)) - (0.8 * l1 + 0.2 * (1 - s))) < 1e-6
    assert abs(float(l1_ssim_loss(a, b, lambda_ssim=0.0)) - l1) < 1e-7
    assert abs(float(l1_ssim_loss(a, b, lambda_ssim=1.0)) - (1 - s)) < 1e-6
    assert float(l1_ssim_loss(a, a)) < 1e-6


def test_psnr_of_known_mse() -> None:
    a = torch.zeros(10, 10, 3)
    b = torch.full((10, 10, 3), 0.1)  # MSE = 0.01 → 20 dB
    assert abs(psnr(a, b) - 20.0) < 1e-6
    assert abs(psnr(a * 255, b * 255, data_range=255.0) - 20.0) < 1e-6
    assert abs(psnr(np.zeros(4), np.array([0.0, 0.0, 0.0, 0.2])) - 10 * math.log10(1 / 0.01)) < 1e-9
    assert psnr(a, a) == math.inf
    assert isinstance(psnr(a, b), float)


def test_bad_inputs() -> None:
    x = torch.rand(12, 12, 3)
    with pytest.raises(ValueError, match="shape"):
        ssim(x, torch.rand(12, 13, 3))
    with pytest.raises(ValueError, match="odd"):
        ssim(x, x, window=10)
    with pytest.raises(ValueError, match="smaller"):
        ssim(torch.rand(8, 8, 3), torch.rand(8, 8, 3), padding="valid")
    with pytest.raises(ValueError):
        ssim(torch.rand(12, 12), torch.rand(12, 12))
