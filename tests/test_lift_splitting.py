"""Splitting merged components by multi-view votes of 2D instance proposals (issue 29, item 7) on tiny synthetic
Gaussian scenes (tile backend, 64×48)."""

from __future__ import annotations

import numpy as np

from soundmask.data.types import Camera, Intrinsics
from soundmask.lift.associate import component_masks
from soundmask.lift.grouping import Component, components_from_labels, geometric_components, spatial_components
from soundmask.lift.splitting import instance_label_maps, merge_clusters, objectness, split_by_instances
from soundmask.splat.gaussians import Gaussians
from soundmask.vision.types import Proposals, mask_boxes

K = Intrinsics(48.0, 48.0, 32.0, 24.0, 64, 48)


def camera(x: float, y: float = 0.0) -> Camera:
    m = np.eye(4)
    m[:3, 3] = [x, y, 0.0]
    return Camera(K, m)  # looks along +z


def ball(rng: np.random.Generator, centre, n: int, r: float) -> np.ndarray:
    d = rng.normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return np.asarray(centre, dtype=np.float64) + d * r * rng.uniform(0, 1, (n, 1)) ** (1 / 3)


def touching_blobs(rng):
    """Two balls that touch (one connected component), six cameras, and per view an instance map of the two
    objects with ids that differ from view to view (a proposer has no ids that agree across views)."""
    pts = np.concatenate([ball(rng, [-0.28, 0.0, 3.0], 300, 0.3), ball(rng, [0.28, 0.0, 3.0], 300, 0.3)])
    truth = np.repeat([1, 2], 300)
    g = Gaussians.from_points(pts, scale=0.04, opacity=0.95)
    cams = [camera(x, y) for x in (-0.3, 0.0, 0.3) for y in (-0.2, 0.2)]
    objs = components_from_labels(truth, pts)
    maps = []
    for v, cam in enumerate(cams):
        soft = component_masks(g, cam, objs, backend="tile")
        lab = np.zeros(soft.shape[1:], np.int32)
        ids = (3 + v, 1) if v % 2 else (1, 5 + v)
        for k in (0, 1):
            lab[(soft[k] > 0.5) & (soft[k] >= soft[1 - k])] = ids[k]
        maps.append(lab)
    return g, pts, truth, cams, maps


def test_split_by_instances_separates_two_touching_objects(rng):
    g, pts, truth, cams, maps = touching_blobs(rng)
    comps = spatial_components(pts, np.ones(len(pts), bool), min_size=20)
    assert len(comps) == 1  # geometry alone: one component
    split = split_by_instances(comps, g, cams, maps, min_size=20)
    assert [c.id for c in split] == list(range(1, len(split) + 1))
    assert sorted(np.concatenate([c.index for c in split]).tolist()) == list(range(len(pts)))  # nothing lost
    for obj in (1, 2):
        best = max(split, key=lambda c: (truth[c.index] == obj).sum())
        assert (truth[best.index] == obj).mean() > 0.9  # clean ...
        assert (truth[best.index] == obj).sum() > 0.8 * 300  # ... and most of the object
    # the views put both balls in one proposal: one object, kept whole
    one = [(m > 0).astype(np.int32) * (v + 1) for v, m in enumerate(maps)]
    assert len(split_by_instances(comps, g, cams, one, min_size=20)) == 1
    # no view votes (no maps): kept whole; components smaller than 2 × min_size are not touched
    assert len(split_by_instances(comps, g, cams, [None] * len(cams), min_size=20)) == 1
    small = [Component(1, np.arange(30), pts[:30].mean(axis=0), 30)]
    assert split_by_instances(small, g, cams, maps, min_size=20)[0].size == 30


def test_merge_clusters_rules():
    """Clusters 0-1-2-3 in a chain: the views say 0, 1 are one object and 2, 3 another; 4 was never compared with
    anything and joins its neighbour (the prior); 5 is too small and joins its neighbour."""
    same = np.zeros((6, 6))
    diff = np.zeros((6, 6))
    for a, b in [(0, 1), (2, 3)]:
        same[a, b] = same[b, a] = 4
    for a in (0, 1):
        for b in (2, 3):
            diff[a, b] = diff[b, a] = 4
    adj = np.zeros((6, 6), bool)
    for a, b in [(0, 1), (1, 2), (2, 3), (3, 4), (0, 5)]:
        adj[a, b] = adj[b, a] = True
    diff[0, 5] = diff[5, 0] = 3
    sizes = np.array([50, 50, 50, 50, 50, 5])
    g = merge_clusters(np.stack([same, diff]), adj, sizes, min_size=20)
    assert g[0] == g[1] == g[5] and g[2] == g[3] == g[4] and g[0] != g[2]
    assert sorted(set(g.tolist())) == [0, 1]


def test_objectness_keeps_a_flat_object_on_a_plane(rng):
    """A thin tile lying on a large floor is inside the plane's band; the views' proposals keep it."""
    floor = np.c_[rng.uniform(-3, 3, 3000), rng.uniform(-3, 3, 3000), np.full(3000, 4.0)]
    tile = np.c_[rng.uniform(-0.3, 0.3, 200), rng.uniform(-0.2, 0.2, 200), np.full(200, 3.99)]
    pts = np.concatenate([floor, tile])
    is_tile = np.r_[np.zeros(3000, bool), np.ones(200, bool)]
    assert not any(is_tile[c.index].any() for c in geometric_components(pts, min_size=20))  # lost in the floor
    g = Gaussians.from_points(pts, scale=0.03, opacity=0.95)
    cams = [camera(x, y) for x in (-0.2, 0.2) for y in (-0.1, 0.1)]
    maps = []
    for cam in cams:
        soft = component_masks(g, cam, components_from_labels(is_tile.astype(int), pts), backend="tile")[0]
        maps.append((soft > 0.5).astype(np.int32) * 2)
    keep = objectness(g, cams, maps)
    assert keep[is_tile].mean() > 0.8 and keep[~is_tile].mean() < 0.05
    comps = geometric_components(pts, min_size=20, keep=keep)
    best = max(comps, key=lambda c: is_tile[c.index].sum())
    assert is_tile[best.index].mean() > 0.9 and is_tile[best.index].sum() > 0.8 * 200


def test_instance_label_maps_paint_the_best_proposal_over_the_rest():
    m = np.zeros((2, 4, 5), bool)
    m[0, :2] = True
    m[1, 1:3] = True
    lab = instance_label_maps([Proposals(m, np.array([0.9, 0.5]), mask_boxes(m))])[0]
    assert lab[0].tolist() == [1] * 5 and lab[1].tolist() == [1] * 5 and lab[2].tolist() == [2] * 5
    assert lab[3].tolist() == [0] * 5


def test_group_gaussians_geometry_with_proposals(rng):
    """The geometry grouping with instance proposals: the two touching balls come out as two components."""
    from soundmask.lift.objects import group_gaussians
    from soundmask.lift.views import LiftViews
    from soundmask.pipeline.lift3d import LiftConfig

    g, pts, truth, cams, maps = touching_blobs(rng)
    lv = LiftViews(cams, [None] * len(cams), [np.zeros(m.shape, bool) for m in maps])
    cfg = LiftConfig(instance_split="learned", render_views="none")
    assert len(group_gaussians("geometry", g, lv, cfg)) == 1
    comps = group_gaussians("geometry", g, lv, cfg, proposals=maps)
    assert len(comps) == 2 and all(np.bincount(truth[c.index]).max() > 0.9 * c.size for c in comps)
