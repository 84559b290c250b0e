"""Multi-view voting (EchoSegnet) and spatial grouping on tiny synthetic Gaussian scenes (tile backend, 64×48)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from soundmask.data.types import Camera, Intrinsics
from soundmask.errors import DataError
from soundmask.lift.associate import component_masks
from soundmask.lift.grouping import components_from_labels, spatial_components
from soundmask.lift.voting import Votes, centre_visibility, vote_instances, vote_masks
from soundmask.splat.gaussians import Gaussians
from soundmask.splat.render import render

K = Intrinsics(48.0, 48.0, 32.0, 24.0, 64, 48)


def camera(x: float, y: float = 0.0) -> Camera:
    m = np.eye(4)
    m[:3, 3] = [x, y, 0.0]
    return Camera(K, m)  # looks along +z


def ball(rng: np.random.Generator, centre, n: int = 60, r: float = 0.3) -> np.ndarray:
    d = rng.normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return np.asarray(centre, dtype=np.float64) + d * r * rng.uniform(0, 1, (n, 1)) ** (1 / 3)


@pytest.fixture
def two_clusters(rng):
    pts = np.concatenate([ball(rng, [-0.9, 0.0, 3.0]), ball(rng, [0.9, 0.0, 3.0])])
    labels = np.repeat([1, 2], 60)
    g = Gaussians.from_points(pts, scale=0.06, opacity=0.95)
    cams = [camera(x, y) for x in (-0.3, 0.0, 0.3) for y in (-0.2, 0.2)]
    return g, pts, labels, cams


def test_vote_masks_selects_exactly_the_masked_cluster(two_clusters):
    g, pts, labels, cams = two_clusters
    comps = components_from_labels(labels, pts)
    masks = [component_masks(g, c, comps, backend="tile")[0] > 0.5 for c in cams]
    votes = vote_masks(g, cams, masks)
    assert isinstance(votes, Votes)
    assert np.array_equal(votes.total, np.full(len(g), len(cams)))  # every centre seen by every view
    assert np.array_equal(votes.select(0.5), labels == 1)
    assert np.allclose(votes.ratio()[labels == 1], 1.0) and np.allclose(votes.ratio()[labels == 2], 0.0)
    # a view without a mask does not vote; masks at another resolution are rescaled
    half = [None] + [np.kron(m, np.ones((2, 2), dtype=bool)) for m in masks[1:]]
    v2 = vote_masks(g, cams, half)
    assert np.array_equal(v2.total, np.full(len(g), len(cams) - 1))
    assert np.array_equal(v2.select(0.5), labels == 1)


def test_votes_ratio_and_min_votes():
    v = Votes(pos=np.array([0, 2, 1, 3]), neg=np.array([0, 1, 1, 0]))
    assert np.allclose(v.ratio(), [0.0, 2 / 3, 0.5, 1.0])
    assert v.select(0.5).tolist() == [False, True, False, True]
    assert v.select(0.5, min_votes=3).tolist() == [False, True, False, True]
    assert v.select(0.5, min_votes=4).tolist() == [False, False, False, False]


def test_voting_respects_occlusion_with_depth_maps():
    xs = np.arange(-0.6, 0.6001, 0.08)
    wall = np.stack(np.meshgrid(xs, xs, [3.0], indexing="ij"), -1).reshape(-1, 3)  # an opaque wall at z = 3
    hidden = ball(np.random.default_rng(1), [0.0, 0.0, 6.0], n=30, r=0.2)  # a cluster right behind it
    pts = np.concatenate([wall, hidden])
    is_wall = np.arange(len(pts)) < len(wall)
    g = Gaussians.from_points(pts, scale=0.05, opacity=0.98)
    cams = [camera(x, y) for x in (-0.2, 0.2) for y in (-0.1, 0.1)]
    outs = [render(g, c, features=torch.as_tensor(is_wall, dtype=torch.float32)[:, None], backend="tile") for c in cams]
    masks = [o.features[..., 0].numpy() > 0.5 for o in outs]  # the wall's visible mask
    depths = [o.depth for o in outs]
    naive = vote_masks(g, cams, masks)
    assert naive.select(0.5)[~is_wall].all()  # without occlusion the hidden cluster is voted into the wall's mask
    vis = centre_visibility(g, cams, depth_maps=depths)
    assert vis[:, is_wall].all() and not vis[:, ~is_wall].any()
    votes = vote_masks(g, cams, masks, visible=vis)
    assert np.array_equal(votes.select(0.5), is_wall)
    # depth 0 means nothing rendered there: visible
    assert centre_visibility(g, cams, depth_maps=[np.zeros((48, 64))] * len(cams)).all()


def test_centre_visibility_image_bounds_and_4d_times():
    pts = np.array([[0.0, 0.0, 3.0], [0.0, 0.0, -3.0], [5.0, 0.0, 1.0]])
    g = Gaussians.from_points(pts, scale=0.05, motion_terms=1, time_range=(0.0, 2.0))
    cams = [camera(0.0), camera(0.0)]
    vis = centre_visibility(g, cams)
    assert vis.tolist() == [[True, False, False]] * 2  # behind the camera / outside the image: not visible
    with torch.no_grad():
        g.motion[0, 0] = torch.tensor([10.0, 0.0, 0.0])  # moves out of view at t = 2 (τ = 1)
    vis = centre_visibility(g, cams, times=[1.0, 2.0])  # τ = 0: at rest; τ = 1: displaced
    assert vis[:, 0].tolist() == [True, False]
    with pytest.raises(DataError):
        centre_visibility(g, cams, times=[0.0])


def test_vote_instances_recovers_cluster_ids(two_clusters):
    g, pts, labels, cams = two_clusters
    comps = components_from_labels(labels, pts)
    inst = []
    for c in cams:
        sm = component_masks(g, c, comps, backend="tile")
        inst.append(np.where(sm.max(0) > 0.5, sm.argmax(0) + 1, 0).astype(np.uint16))
    assert np.array_equal(vote_instances(g, cams, inst), labels)
    assert not vote_instances(g, cams, inst, min_votes=len(cams) + 1).any()


def test_vote_instances_agreement_and_ties():
    g = Gaussians.from_points(np.array([[0.0, 0.0, 3.0], [0.5, 0.0, 3.0]]), scale=0.05)
    cams = [camera(0.0)] * 3

    def full(i):
        return np.full((48, 64), i, dtype=np.int64)

    assert vote_instances(g, cams, [full(1), full(1), full(2)]).tolist() == [1, 1]
    assert vote_instances(g, cams, [full(1), full(1), full(2)], min_agreement=0.7).tolist() == [0, 0]
    assert vote_instances(g, cams[:2], [full(1), full(2)]).tolist() == [0, 0]  # tie → undecided
    assert vote_instances(g, cams, [full(0), full(0), full(3)]).tolist() == [0, 0]  # background majority
    assert vote_instances(g, cams, [full(7), None, full(7)]).tolist() == [7, 7]
    vis = np.array([[True, False]] * 3)
    assert vote_instances(g, cams, [full(4)] * 3, visible=vis).tolist() == [4, 0]


def test_spatial_components_splits_two_clusters(two_clusters):
    _, pts, labels, _ = two_clusters
    comps = spatial_components(pts, np.ones(len(pts), dtype=bool))
    assert len(comps) == 2
    found = sorted((set(c.index.tolist()) for c in comps), key=min)
    assert found == [set(np.flatnonzero(labels == 1).tolist()), set(np.flatnonzero(labels == 2).tolist())]
    for c in comps:
        assert c.size == len(c.index) == 60
        assert abs(abs(c.centroid[0]) - 0.9) < 0.1
    # index-array candidates, min_size, explicit radius
    only_a = spatial_components(pts, np.flatnonzero(labels == 1)[:10], min_size=1, radius=5.0)
    assert len(only_a) == 1 and only_a[0].size == 10
    assert spatial_components(pts, np.flatnonzero(labels == 1)[:3], min_size=5) == []
    assert spatial_components(pts, np.zeros(len(pts), dtype=bool)) == []
    one = spatial_components(torch.as_tensor(pts), [0, 60, 61], radius=10.0, min_size=1)
    assert [c.size for c in one] == [3]


def test_components_from_labels():
    means = np.arange(18, dtype=float).reshape(6, 3)
    comps = components_from_labels(np.array([0, 3, 1, 3, 0, 1]), means)
    assert [c.id for c in comps] == [1, 3]
    assert comps[0].index.tolist() == [2, 5] and comps[1].index.tolist() == [1, 3]
    assert np.allclose(comps[1].centroid, means[[1, 3]].mean(0))
    assert [c.id for c in components_from_labels(np.array([0, 3, 1, 3, 0, 2]), means, min_size=2)] == [3]
