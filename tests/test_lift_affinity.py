"""SAGA-style affinity features and clustering (soundmask.lift.affinity) on a tiny three-object splat scene."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from soundmask.data.types import Camera, Intrinsics, look_at
from soundmask.errors import ConfigError, DataError
from soundmask.lift.affinity import (
    AffinityConfig,
    affinity_loss,
    cluster_features,
    group_by_affinity,
    norm_loss,
    train_affinity,
)
from soundmask.splat.gaussians import Gaussians
from soundmask.splat.render import render

PER_CLUSTER = 60
CENTRES = np.array([[-0.35, 0.0, 0.0], [0.35, 0.0, 0.05], [0.0, 0.3, -0.25]])


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Train on one thread: the ~100-pixel-wide tiles of this scene are too small for threads to pay, and on a
    shared 2-core machine two threads stall each other (measured 17 ms/step on one, 60-500 ms on two)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_scene():
    """Three blobs of 60 small, nearly opaque Gaussians seen by 6 cameras around them (48² px), with instance
    masks (1, 2, 3; 0 = background) rendered from the true membership."""
    rng = np.random.default_rng(0)
    pts = np.concatenate([c + rng.normal(scale=0.08, size=(PER_CLUSTER, 3)) for c in CENTRES])
    truth = np.repeat(np.arange(len(CENTRES)), PER_CLUSTER)
    g = Gaussians.from_points(pts, scale=0.04, opacity=0.9)
    k = Intrinsics(70.0, 70.0, 24.0, 24.0, 48, 48)
    cams = []
    for a in np.linspace(0, 2 * np.pi, 6, endpoint=False):
        el = 0.4 * np.sin(3 * a)
        eye = 1.6 * np.array([np.cos(a) * np.cos(el), np.sin(a) * np.cos(el), np.sin(el)])
        cams.append(Camera(k, look_at(eye), name=f"cam{len(cams)}"))
    one_hot = torch.nn.functional.one_hot(torch.as_tensor(truth), len(CENTRES)).float()
    masks = []
    for cam in cams:
        out = render(g, cam, features=one_hot, backend="tile")
        # a 2D mask covers its object's soft edge too (threshold below the 0.5 at which pixels are sampled)
        masks.append(np.where(out.alpha.numpy() > 0.2, out.features.numpy().argmax(-1) + 1, 0).astype(np.int32))
    return g, cams, masks, truth


@pytest.fixture(scope="module")
def trained():
    g, cams, masks, truth = make_scene()
    before = {k: v.clone() for k, v in g.tensors().items()}
    history: list[float] = []
    calls: list[tuple[str, int, int]] = []
    t0 = time.perf_counter()
    cfg = AffinityConfig(iterations=100, backend="tile")
    feats = train_affinity(
        g, cams, masks, config=cfg, history=history, progress=lambda what, i, n: calls.append((what, i, n))
    )
    seconds = time.perf_counter() - t0
    return {
        "g": g,
        "cams": cams,
        "masks": masks,
        "truth": truth,
        "feats": feats,
        "history": history,
        "calls": calls,
        "before": before,
        "seconds": seconds,
    }


def block_cosines(feats: torch.Tensor, truth: np.ndarray) -> np.ndarray:
    f = torch.nn.functional.normalize(feats, dim=1)
    s = (f @ f.T).numpy()
    K = truth.max() + 1
    return np.array([[s[truth == i][:, truth == j].mean() for j in range(K)] for i in range(K)])


def assert_recovers(labels: np.ndarray, truth: np.ndarray, cover: float = 0.9) -> None:
    used = set()
    for c in np.unique(truth):
        lab = labels[truth == c]
        counts = np.bincount(lab, minlength=labels.max() + 1)
        counts[0] = 0  # unassigned never counts as recovering a cluster
        best = int(np.argmax(counts))
        assert counts[best] >= cover * lab.size, (c, np.bincount(lab))
        assert best not in used, "two true clusters share one label"
        used.add(best)


# ---------------------------------------------------------------------------------------------- training
def test_masks_show_every_object() -> None:
    _, _, masks, _ = make_scene()
    assert all(m.shape == (48, 48) for m in masks)
    seen = np.stack([np.bincount(m.ravel(), minlength=4) for m in masks])
    assert (seen[:, 0] > 0).all() and (seen[:, 1:].sum(axis=0) > 200).all()


def test_features_shape_dtype_and_frozen_geometry(trained) -> None:
    f = trained["feats"]
    assert f.shape == (len(trained["g"]), 16) and f.dtype == torch.float32
    assert not f.requires_grad and torch.isfinite(f).all()
    assert torch.allclose(f.norm(dim=1), torch.ones(f.shape[0]), atol=1e-5)
    for k, v in trained["g"].tensors().items():  # the input model is untouched
        assert torch.equal(v, trained["before"][k]), k
        assert not v.requires_grad


def test_same_cluster_similar_different_clusters_apart(trained) -> None:
    cos = block_cosines(trained["feats"], trained["truth"])
    print("block cosines\n", np.round(cos, 3), f"\ntraining {trained['seconds']:.1f} s")
    within, between = np.diag(cos), cos[~np.eye(len(cos), dtype=bool)]
    assert within.min() > 0.8, cos
    assert between.max() < 0.5, cos


def test_norm_term_aligns_the_gaussians(trained) -> None:
    """Without SAGA's rendered-feature-norm term only the composited sums are constrained, and the individual
    Gaussians of an object agree less (measured: min within-cluster cosine 0.72-0.77 vs 0.93)."""
    g, cams, masks, truth = trained["g"], trained["cams"], trained["masks"], trained["truth"]
    plain = train_affinity(g, cams, masks, config=AffinityConfig(iterations=100, backend="tile", norm_weight=0.0))
    assert np.diag(block_cosines(plain, truth)).min() + 0.1 < np.diag(block_cosines(trained["feats"], truth)).min()


def test_loss_decreases(trained) -> None:
    h = np.asarray(trained["history"])
    assert h.shape == (100,) and np.isfinite(h).all()
    first, last = h[:6].mean(), h[-12:].mean()  # 6 views: the first epoch vs the last two
    assert last < 0.5 * first, (first, last)


def test_progress_reports_every_step(trained) -> None:
    calls = trained["calls"]
    assert len(calls) == 100 and calls[-1][1:] == (100, 100) and "loss" in calls[-1][0]


def test_cluster_features_recovers_objects(trained) -> None:
    labels = cluster_features(trained["feats"], trained["g"].means, threshold=0.8, min_size=5)
    assert labels.shape == (len(trained["g"]),) and labels.dtype.kind == "i"
    assert_recovers(labels, trained["truth"])
    assert labels.max() >= 3


def test_group_by_affinity_end_to_end() -> None:
    g, cams, masks, truth = make_scene()
    cfg = AffinityConfig(iterations=80, dim=8, backend="tile", seed=1)
    labels = group_by_affinity(g, cams, masks, times=[0.5] * len(cams), config=cfg)
    assert labels.shape == (len(g),)
    assert_recovers(labels, truth)


def test_zero_iterations_and_time_budget() -> None:
    g, cams, masks, _ = make_scene()
    init = torch.randn(len(g), 4)
    f0 = train_affinity(g, cams, masks, config=AffinityConfig(iterations=0, dim=4), init=init)
    assert torch.allclose(f0, torch.nn.functional.normalize(init, dim=1))
    history: list[float] = []
    train_affinity(
        g, cams, masks, config=AffinityConfig(iterations=1000, dim=4, backend="tile", max_seconds=1e-6), history=history
    )
    assert len(history) == 1


def test_input_errors() -> None:
    g, cams, masks, _ = make_scene()
    cfg = AffinityConfig(iterations=1, dim=4, backend="tile")
    with pytest.raises(DataError):
        train_affinity(g, cams, masks[:-1], config=cfg)
    with pytest.raises(DataError):
        train_affinity(g, cams, masks, times=[0.0], config=cfg)
    with pytest.raises(DataError):
        train_affinity(g, cams[:1], [np.zeros((4, 4, 3), dtype=np.int32)], config=cfg)
    with pytest.raises(ConfigError):
        train_affinity(g, cams, masks, config=cfg, init=torch.ones(3, 4))
    away = [Camera(c.intrinsics, look_at(c.center, 2 * c.center)) for c in cams]  # looking away from the scene
    with pytest.raises(DataError):
        train_affinity(g, away, masks, config=AffinityConfig(iterations=6, dim=4, backend="tile"))


@pytest.mark.parametrize(
    "bad",
    [
        {"dim": 0},
        {"iterations": -1},
        {"lr": 0.0},
        {"pixels_per_view": 1},
        {"margin": 1.5},
        {"resolution": 0.0},
        {"resolution": 2.0},
        {"cluster_threshold": 1.2},
        {"min_cluster_size": 0},
        {"max_seconds": -1.0},
        {"min_instance_fraction": -0.1},
        {"norm_weight": -1.0},
    ],
)
def test_bad_config_raises(bad) -> None:
    with pytest.raises(ConfigError):
        AffinityConfig(**bad)


# ---------------------------------------------------------------------------------------------- the loss
def test_affinity_loss_values() -> None:
    e = torch.eye(3)
    ids = torch.tensor([1, 1, 2, 0])
    perfect = torch.stack([e[0], 2 * e[0], e[1], e[2]])  # same instance parallel, others orthogonal
    assert float(affinity_loss(perfect, ids, margin=0.5)) == pytest.approx(0.0, abs=1e-6)
    same = torch.stack([e[0], e[0], e[0], e[0]])  # all one direction: every different pair costs 1 − 0.5
    plain = float(affinity_loss(same, ids, margin=0.5, scale_aware=False))
    assert plain == pytest.approx((10 * 0.5) / 12)  # 12 ordered pairs, 2 same, 10 different
    # inverse-area weights (instance 1 has 2 pixels, 2 and 0 one each): w = ½, ½, 1, 1. Ordered different pairs
    # weigh 2·(2·2·½·1) + 2·1·1 = 6, same pairs 2·½·½ = ½: the weighted mean is 6·0.5 / 6.5
    aware = float(affinity_loss(same, ids, margin=0.5, scale_aware=True, min_fraction=0.0))
    assert aware == pytest.approx(6 * 0.5 / 6.5)
    assert float(affinity_loss(same[:1], ids[:1])) == 0.0


def test_affinity_loss_gradient_pulls_and_pushes() -> None:
    f = torch.tensor([[1.0, 0.2], [0.8, 0.6], [0.9, 0.1]], requires_grad=True)
    ids = torch.tensor([1, 1, 2])
    affinity_loss(f, ids, margin=0.0, scale_aware=False).backward()
    step = f.detach() - 0.1 * f.grad
    before = torch.nn.functional.normalize(f.detach(), dim=1)
    after = torch.nn.functional.normalize(step, dim=1)
    assert (after[0] @ after[1]) > (before[0] @ before[1])  # same instance pulled together
    assert (after[1] @ after[2]) < (before[1] @ before[2])  # different pushed apart


def test_norm_loss_is_zero_only_for_aligned_rays() -> None:
    alpha = torch.tensor([0.8, 0.8])
    aligned = torch.tensor([[0.8, 0.0], [0.0, 0.8]])  # ‖F‖ = alpha: one direction along each ray
    mixed = torch.tensor([[0.4, 0.4], [0.8, 0.0]])
    assert float(norm_loss(aligned, alpha)) == pytest.approx(0.0, abs=1e-7)
    assert float(norm_loss(mixed, alpha)) == pytest.approx((1 - 0.5**0.5) ** 2 / 2, rel=1e-5)


# ---------------------------------------------------------------------------------------------- clustering
def test_cluster_features_spatial_and_feature_links() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 0.05, (40, 3)), rng.normal(0, 0.05, (40, 3)) + [3.0, 0.0, 0.0]
    means = np.concatenate([a, b, rng.normal(0, 0.05, (3, 3)) + [0.0, 3.0, 0.0]])
    feats = np.tile([1.0, 0.0, 0.0], (83, 1)) + rng.normal(0, 0.01, (83, 3))
    labels = cluster_features(feats, means, threshold=0.9, min_size=5, spatial_radius=1.0)
    # one feature, but two places: two objects; the 3-Gaussian speck is too small
    assert set(labels[:40]) == {1} or set(labels[:40]) == {2}
    assert set(labels[40:80]) == {3 - labels[0]} and set(labels[80:]) == {0}
    # without a radius the speck's 8 nearest neighbours reach into a blob, and it joins that object
    unbounded = cluster_features(feats, means, threshold=0.9, min_size=5)
    assert len(set(unbounded[80:])) == 1 and unbounded[80] in (labels[0], labels[40])
    # the same places with two features in each: split by feature
    feats2 = feats.copy()
    feats2[::2] = [0.0, 1.0, 0.0]
    labels2 = cluster_features(feats2, means, threshold=0.9, min_size=5)
    assert len(set(labels2[:80]) - {0}) == 4
    for lo in (0, 40):
        assert len(set(labels2[lo : lo + 40 : 2])) == 1 and len(set(labels2[lo + 1 : lo + 40 : 2])) == 1
    # without positions: neighbours in feature space, so the two places merge
    labels3 = cluster_features(feats, None, threshold=0.9, min_size=5)
    assert set(labels3[:80]) == {1}
    # a radius smaller than the gap to any neighbour links nothing
    assert (cluster_features(feats, means, threshold=0.9, min_size=2, spatial_radius=1e-6) == 0).all()


def test_cluster_features_labels_by_size_and_edge_cases() -> None:
    means = np.concatenate(
        [np.zeros((10, 3)) + np.arange(10)[:, None] * 0.01, np.zeros((20, 3)) + 5 + np.arange(20)[:, None] * 0.01]
    )
    feats = torch.ones(30, 2)
    labels = cluster_features(feats, torch.as_tensor(means), threshold=0.5, min_size=5)
    assert (labels[10:] == 1).all() and (labels[:10] == 2).all()  # the larger group is label 1
    assert cluster_features(np.zeros((0, 4))).shape == (0,)
    assert cluster_features(np.ones((1, 4)), np.zeros((1, 3)), min_size=1).tolist() == [1]
    assert cluster_features(np.ones((1, 4)), np.zeros((1, 3)), min_size=2).tolist() == [0]
