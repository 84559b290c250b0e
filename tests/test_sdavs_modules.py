"""SDAVS's modules (paper 004): the depthwise Conv3d against torch's, SNRP gates in [0, 1], CAR, DAMF's residual
multiplication, the fusion decoder and its ablations, the loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from soundmask.avs2d.features import LEVEL_CHANNELS
from soundmask.avs2d.sdavs.losses import sdavs_loss
from soundmask.avs2d.sdavs.model import CAR, DAMF, SNRP, STC, DepthwiseConv3d, SDAVSNet, SDAVSNetConfig


@pytest.mark.parametrize("kt", [1, 3])
def test_depthwise_conv3d_equals_torch_conv3d_values_and_gradients(kt):
    torch.manual_seed(0)
    B, T, C, h, w = 2, 4, 5, 6, 7
    conv = DepthwiseConv3d(C, kt)
    x = torch.randn(B * T, C, h, w, requires_grad=True)
    y = conv(x, T)
    x5 = x.detach().reshape(B, T, C, h, w).transpose(1, 2).clone().requires_grad_()
    ref = F.conv3d(x5, conv.weight, conv.bias, padding=(kt // 2, 1, 1), groups=C)
    assert torch.allclose(y, ref.transpose(1, 2).reshape(B * T, C, h, w), atol=1e-5)
    g = torch.randn_like(y)
    (y * g).sum().backward()
    (ref * g.reshape(B, T, C, h, w).transpose(1, 2)).sum().backward()
    assert torch.allclose(x.grad, x5.grad.transpose(1, 2).reshape(B * T, C, h, w), atol=1e-5)


def test_snrp_gates_lie_in_unit_interval_and_scale_the_video():
    torch.manual_seed(1)
    snrp = SNRP(8)
    fv, fa = torch.randn(6, 8, 5, 5), torch.randn(6, 8) * 10
    out, fa_map, gatec, gates = snrp(fv, fa)
    for gate in (gatec, gates):
        assert gate.min() >= 0 and gate.max() <= 1
    assert gatec.shape == (6, 8, 1, 1) and gates.shape == (6, 1, 5, 5) and fa_map.shape == (6, 8, 1, 1)
    assert torch.allclose(out, fv * gatec * gates)


def test_car_recalibrates_channels():
    car = CAR(8)
    x = torch.randn(3, 8, 4, 4)
    w = car.weights(x)
    assert w.shape == (3, 8, 1, 1) and (w >= 0).all() and (w <= 1).all()
    assert torch.allclose(car(x), x * w)


def test_stc_tokens_are_layer_normalised():
    tok = STC(8, temporal=True).tokens(torch.randn(6, 8, 3, 3), T=3)
    assert tok.shape == (2, 27, 8)
    assert torch.allclose(tok.mean(-1), torch.zeros(2, 27), atol=1e-5)


def test_damf_residual_multiplication():
    torch.manual_seed(2)
    damf = DAMF(8, heads=2, kv_pool=2)
    fv = torch.randn(6, 8, 4, 4)
    out = damf(fv, torch.randn(6, 8, 1, 1), T=3)
    assert out.shape == fv.shape
    # Eq. 7: F'_a→v = F_a→v ⊙ F'_a and F'_v→a = F_v→a ⊙ F'_v, so zero maps give zero whatever the attention says
    assert torch.allclose(damf(torch.zeros_like(fv), torch.zeros(6, 8, 1, 1), T=3), torch.zeros_like(fv))
    # with a zero audio map only the video term is left: it is zero exactly where F'_v is
    fv0 = fv.clone()
    fv0[:, :, :2] = 0
    only_v = damf(fv0, torch.zeros(6, 8, 1, 1), T=3)
    assert torch.allclose(only_v[:, :, :2], torch.zeros_like(only_v[:, :, :2])) and only_v[:, :, 2:].abs().sum() > 0


def _levels(n: int) -> list[torch.Tensor]:
    return [torch.randn(n, c, 64 // 2**k, 64 // 2**k) for k, c in enumerate(LEVEL_CHANNELS)]


@pytest.mark.parametrize("snrp,damf", [(True, True), (False, True), (True, False), (False, False)])
def test_sdavs_net_shapes_and_ablations(snrp, damf):
    net = SDAVSNet(SDAVSNetConfig(audio_dim=10, width=16, snrp=snrp, damf=damf))
    logits, gates = net(_levels(6), torch.randn(2, 3, 10), return_gates=True)
    assert logits.shape == (2, 3, 64, 64)
    assert (net.snrp is not None) == snrp and (len(net.damf) > 0) == damf
    assert all(("c" in g) == snrp for g in gates)


def test_sdavs_output_depends_on_the_audio():
    torch.manual_seed(3)
    net = SDAVSNet(SDAVSNetConfig(audio_dim=10, width=16)).eval()
    lv = _levels(3)
    a = net(lv, torch.randn(1, 3, 10))
    b = net(lv, torch.randn(1, 3, 10))
    assert not torch.allclose(a, b)


def test_sdavs_loss():
    t = torch.zeros(2, 8, 8)
    t[0, :4] = 1
    perfect = torch.where(t > 0, 30.0, -30.0)
    out = sdavs_loss(perfect, t)
    assert float(out["iou"]) < 1e-3 and float(out["dice"]) < 1e-3 and float(out["ce"]) < 1e-3
    wrong = sdavs_loss(-perfect, t)
    assert float(wrong["total"]) > 2.0
    assert torch.allclose(out["total"], out["ce"] + out["iou"] + out["dice"])
