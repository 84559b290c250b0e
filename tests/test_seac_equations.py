"""SeAC's equations on hand-made tensors (paper 002: Eq. 1–8)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from soundmask.avs2d.seac.aggregate import category_aware_aggregation, minmax_normalise, similarity_aggregation
from soundmask.avs2d.seac.embed import combine, global_view, local_view
from soundmask.avs2d.seac.losses import micl_loss, msa_micl_loss, random_groups, set_similarity
from soundmask.avs2d.seac.model import AssociationConfig, AssociationModule, AttentionPool


# ------------------------------------------------------------------------------------------- Eq. 1–3
def test_eq1_mixes_local_and_global():
    loc, glo = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    assert np.allclose(combine(loc, glo, 0.6), [[0.6, 0.4]])
    assert np.allclose(combine(loc, glo, 1.0), loc) and np.allclose(combine(loc, glo, 0.0), glo)


def test_eq2_local_view_is_the_masked_crop():
    img = np.full((40, 60, 3), 200, np.uint8)
    img[10:20, 30:40] = (10, 20, 30)
    mask = np.zeros((40, 60), bool)
    mask[10:20, 30:40] = True
    img[mask] = (10, 20, 30)
    v = local_view(img, mask, 32)
    assert v.shape == (32, 32, 3)
    # the crop is (almost) all object; nothing of the 200-grey background survives (it is zeroed)
    assert (v == 200).all(axis=2).sum() == 0
    assert (np.abs(v.astype(int) - (10, 20, 30)).sum(axis=2) < 3).mean() > 0.6


def test_eq3_global_view_blurs_only_outside_the_mask():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    mask = np.zeros((64, 64), bool)
    mask[16:48, 16:48] = True
    v = global_view(img, mask, 64)
    assert np.array_equal(v[mask], img[mask])  # M ⊙ I kept as is
    assert v[~mask].astype(float).std() < img[~mask].astype(float).std() * 0.6  # (1 − M) ⊙ B(I) is smooth


# ------------------------------------------------------------------------------------------- Eq. 4–5
def test_eq4_minmax_and_pixelwise_max():
    s = np.array([0.2, 0.8, 0.5])
    s_hat = minmax_normalise(s)
    assert np.allclose(s_hat, [0.0, 1.0, 0.5])
    m = np.zeros((3, 2, 3), bool)
    m[0, 0, 0] = m[1, 0, :2] = m[2, :, 1] = True
    O = similarity_aggregation(m, s_hat)  # noqa: E741 - the paper's O of Eq. 4
    assert np.allclose(O, [[1.0, 1.0, 0.0], [0.0, 0.5, 0.0]])  # (0,0): max(0·1, 1·1)


def test_eq4_single_mask_and_no_mask():
    assert np.allclose(minmax_normalise(np.array([0.3])), [1.0])
    assert similarity_aggregation(np.zeros((0, 4, 5), bool), np.zeros(0)).shape == (4, 5)


def test_eq5_category_aware_aggregation():
    m = np.zeros((2, 1, 3), bool)
    m[0, 0, :2] = True
    m[1, 0, 1:] = True
    s_hat = np.array([1.0, 0.95])
    C = category_aware_aggregation(m, s_hat, np.array([4, 7]), sigma=0.9)
    assert C.tolist() == [[5, 5, 8]]  # 1 + t[argmax]; pixel 1 → mask 0 (higher ŝ)
    C = category_aware_aggregation(m, np.array([1.0, 0.5]), np.array([4, 7]), sigma=0.9)
    assert C.tolist() == [[5, 5, 0]]  # below σ → background


# ------------------------------------------------------------------------------------------- Eq. 6–8
def test_eq7_max_over_the_valid_masks():
    masks = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 1.0], [-1.0, 0.0]]])
    valid = torch.tensor([[True, True], [True, False]])
    audio = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    S = set_similarity(masks, valid, audio)
    assert torch.allclose(S, torch.tensor([[1.0, 1.0], [math.sqrt(0.5), math.sqrt(0.5)]]), atol=1e-6)


def test_eq6_by_hand():
    S = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    tau = 0.5
    rows = -(torch.log_softmax(S / tau, 1).diag()).mean()
    cols = -(torch.log_softmax(S / tau, 0).diag()).mean()
    assert torch.allclose(micl_loss(S, tau), rows + cols)


def test_noise_negatives_join_only_the_image_to_audio_denominator():
    S = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    N = torch.tensor([[0.5, -0.3, 0.1], [0.7, 0.0, -1.0]])  # 2 images × 3 noise audios
    tau = 0.5
    rows = -(torch.log_softmax(torch.cat([S, N], 1) / tau, 1).diag()).mean()
    cols = -(torch.log_softmax(S / tau, 0).diag()).mean()
    assert torch.allclose(micl_loss(S, tau, N), rows + cols)
    assert micl_loss(S, tau, N) > micl_loss(S, tau)  # a noise that matches an image costs
    assert torch.allclose(micl_loss(S, tau, torch.full((2, 3), -1e4)), micl_loss(S, tau))
    groups = torch.tensor([0, 1])
    assert torch.allclose(msa_micl_loss(S, groups, tau, N), micl_loss(S, tau, N), atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 9), st.floats(0.03, 1.0), st.integers(0, 10_000))
def test_eq8_reduces_to_eq6_when_K_equals_B(B, tau, seed):
    S = torch.rand(B, B, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    assert torch.allclose(msa_micl_loss(S, torch.arange(B), tau), micl_loss(S, tau), atol=1e-5)


def test_eq8_by_hand_with_two_groups():
    S = torch.tensor([[0.9, 0.1], [0.7, 0.3], [0.2, 0.6], [0.0, 0.8]])  # B=4 images, K=2 mixtures
    groups = torch.tensor([0, 0, 1, 1])
    tau = 0.1
    L = S / tau
    term1 = (
        -(
            torch.log(torch.exp(L[:2, 0]).sum() / torch.exp(L[:, 0]).sum())
            + torch.log(torch.exp(L[2:, 1]).sum() / torch.exp(L[:, 1]).sum())
        )
        / 2
    )
    term2 = -(torch.log_softmax(L, 1)[torch.arange(4), groups]).mean()
    assert torch.allclose(msa_micl_loss(S, groups, tau), term1 + term2, atol=1e-6)


def test_random_groups_is_a_balanced_partition():
    g = random_groups(10, 5, torch.Generator().manual_seed(1))
    assert sorted(torch.bincount(g).tolist()) == [2] * 5
    with pytest.raises(ValueError):
        random_groups(3, 4)


# ------------------------------------------------------------------------------------------- module
def test_attention_pool_is_a_convex_combination_and_respects_padding():
    pool = AttentionPool(4)
    x = torch.randn(2, 3, 4)
    valid = torch.tensor([[True, True, False], [True, False, False]])
    y = pool(x, valid)
    assert torch.allclose(y[1], x[1, 0], atol=1e-6)


def test_association_module_shapes_and_padding():
    cfg = AssociationConfig(audio_dim=8, mask_dim=12, dim=16, hidden=32, layers=4, heads=4)
    m = AssociationModule(cfg).eval()
    f = torch.randn(3, 5, 12)
    valid = torch.ones(3, 5, dtype=torch.bool)
    valid[0, 3:] = False
    s = m.similarity(f, valid, torch.randn(3, 2, 8))
    assert s.shape == (3, 5) and (s[0, 3:] == -1).all() and (s.abs() <= 1 + 1e-5).all()
    # padding never changes the valid masks' scores
    f2 = f.clone()
    f2[0, 3:] = 100.0
    assert torch.allclose(
        m.similarity(f2, valid, torch.randn(3, 2, 8) * 0 + 1)[0, :3],
        m.similarity(f, valid, torch.randn(3, 2, 8) * 0 + 1)[0, :3],
        atol=1e-5,
    )
    assert len(m.mask_encoder.layers) == 4
    assert 0 < float(m.tau.detach()) < 1


def test_association_without_mask_context_scores_each_mask_on_its_own():
    """``layers=0`` (``--set mask_layers=0``): a mask's score does not depend on the other masks of the image,
    whereas the paper's Transformer mask encoder lets every mask see the others."""
    torch.manual_seed(0)
    f = torch.randn(1, 4, 12)
    a = torch.randn(1, 2, 8)
    valid = torch.ones(1, 4, dtype=torch.bool)
    other = f.clone()
    other[0, 1:] = torch.randn(3, 12)  # same first mask, different companions
    for layers, independent in ((0, True), (2, False)):
        m = AssociationModule(
            AssociationConfig(audio_dim=8, mask_dim=12, dim=16, hidden=32, layers=layers, heads=4, dropout=0.0)
        ).eval()
        s1, s2 = m.similarity(f, valid, a)[0, 0], m.similarity(other, valid, a)[0, 0]
        assert torch.isclose(s1, s2, atol=1e-6).item() is independent
    assert AssociationModule(AssociationConfig(layers=0)).mask_encoder is None
