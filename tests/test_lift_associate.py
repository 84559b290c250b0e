"""Sound localisation (3D SoundMask step 6), the component timeline and the TDoA refinement, on tiny scenes."""

from __future__ import annotations

import numpy as np
import pytest

from soundmask.audio.types import Tdoa
from soundmask.data.types import Camera, Intrinsics
from soundmask.errors import DataError
from soundmask.lift.associate import (
    Association,
    ComponentTimeline,
    associate_frame,
    component_masks,
    tie_break,
    tie_break_by_response,
)
from soundmask.lift.grouping import Component, components_from_labels
from soundmask.lift.refine import refine_by_direction
from soundmask.splat.gaussians import Gaussians
from soundmask.splat.render import render
from soundmask.synth.acoustics import geometric_tdoa

K = Intrinsics(48.0, 48.0, 32.0, 24.0, 64, 48)
# the stereo pair of the camera at the origin (OpenCV: x right), so the LEFT microphone is at −x
MIC_L, MIC_R = np.array([-0.1, 0.0, 0.0]), np.array([0.1, 0.0, 0.0])


def camera(x: float = 0.0) -> Camera:
    m = np.eye(4)
    m[0, 3] = x
    return Camera(K, m)


def ball(rng: np.random.Generator, centre, n: int = 60, r: float = 0.3) -> np.ndarray:
    d = rng.normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return np.asarray(centre, dtype=np.float64) + d * r * rng.uniform(0, 1, (n, 1)) ** (1 / 3)


def disc(centre_xyz, radius_m: float, cam: Camera) -> np.ndarray:
    """A 2D mask made by projecting a sphere: the disc of its projected radius around its projected centre."""
    uv, z = cam.project(np.asarray(centre_xyz)[None])
    r = radius_m * K.fx / z[0]
    yy, xx = np.mgrid[0 : K.height, 0 : K.width] + 0.5
    return (xx - uv[0, 0]) ** 2 + (yy - uv[0, 1]) ** 2 <= r**2


@pytest.fixture
def scene(rng):
    """Two identical clusters, left (x = −0.9) and right (x = +0.9) of the microphone pair, at z = 3."""
    centres = [np.array([-0.9, 0.0, 3.0]), np.array([0.9, 0.0, 3.0])]
    pts = np.concatenate([ball(rng, c) for c in centres])
    g = Gaussians.from_points(pts, scale=0.06, opacity=0.95)
    comps = components_from_labels(np.repeat([1, 2], 60), pts)
    cam = camera()
    return g, comps, cam, centres, component_masks(g, cam, comps, backend="tile")


def test_component_masks_sum_to_alpha(scene):
    g, _, cam, _, soft = scene
    assert soft.shape == (2, 48, 64) and soft.dtype == np.float32
    alpha = render(g, cam, features=False, backend="tile").alpha.numpy()
    assert np.allclose(soft.sum(0), alpha, atol=1e-4)
    assert (soft[0, :, 32:] < 1e-3).all() and (soft[1, :, :32] < 1e-3).all()  # left cluster on the left half
    assert component_masks(g, cam, [], backend="tile").shape == (0, 48, 64)


def test_component_masks_are_occlusion_aware(rng):
    front, back = ball(rng, [0.0, 0.0, 2.0], r=0.4), ball(rng, [0.0, 0.0, 4.0], r=0.2)
    pts = np.concatenate([front, back])
    g = Gaussians.from_points(pts, scale=0.08, opacity=0.99)
    comps = components_from_labels(np.repeat([1, 2], 60), pts)
    soft = component_masks(g, camera(), comps, backend="tile")
    assert soft[1].max() < 0.2 and soft[0].max() > 0.9  # the back cluster is hidden
    a = associate_frame(soft, soft[1] > 0.01, comps)  # even a mask right where it would be does not pick it
    assert not a.selected[1]


def test_associate_selects_the_masked_component(scene):
    _, comps, cam, centres, soft = scene
    a = associate_frame(soft, disc(centres[0], 0.3, cam), comps)
    assert isinstance(a, Association)
    assert a.iou[0] > 0.5 and a.iou[1] == 0.0
    assert a.candidates.tolist() == [True, False] and a.selected_ids == [1]
    assert np.isnan(a.angle_error).all()


def test_associate_selects_both_when_the_mask_is_their_union(scene):
    _, comps, cam, centres, soft = scene
    union = disc(centres[0], 0.3, cam) | disc(centres[1], 0.3, cam)
    a = associate_frame(soft, union, comps)
    assert (a.iou < 0.5).all()  # neither alone passes the IoU rule ...
    assert (a.precision > 0.5).all() and (a.recall > 0.3).all()  # ... but each lies inside and covers a part
    assert a.selected_ids == [1, 2]
    # without the precision clause nothing is a candidate
    assert not associate_frame(soft, union, comps, precision_threshold=1.1).candidates.any()


def test_associate_tdoa_tie_break(scene):
    _, comps, cam, centres, soft = scene
    union = disc(centres[0], 0.3, cam) | disc(centres[1], 0.3, cam)
    tau_left = geometric_tdoa(comps[0].centroid, MIC_L, MIC_R)
    assert tau_left > 0  # convention: positive when the left microphone hears it first (a source on the left)
    a = associate_frame(soft, union, comps, tdoa=Tdoa(tau_left), mic_left=MIC_L, mic_right=MIC_R)
    assert a.candidates.all() and a.selected_ids == [1]
    assert a.angle_error[0] < 0.05 and a.angle_error[1] > 0.35
    b = associate_frame(soft, union, comps, tdoa=-tau_left, mic_left=MIC_L, mic_right=MIC_R)
    assert b.selected_ids == [2]
    # broadside (τ = 0): both agree equally → both kept; a NaN τ or no microphones → no tie-break
    assert associate_frame(soft, union, comps, tdoa=0.0, mic_left=MIC_L, mic_right=MIC_R).selected_ids == [1, 2]
    assert associate_frame(soft, union, comps, tdoa=float("nan"), mic_left=MIC_L, mic_right=MIC_R).selected.all()
    assert associate_frame(soft, union, comps, tdoa=tau_left).selected_ids == [1, 2]
    # a single candidate is never removed, even when the TDoA points elsewhere
    one = associate_frame(soft, disc(centres[1], 0.3, cam), comps, tdoa=tau_left, mic_left=MIC_L, mic_right=MIC_R)
    assert one.selected_ids == [2]


def test_tie_break_keeps_the_candidates_near_the_best():
    cand = np.array([True, True, False, True])
    err = np.array([0.3, 0.05, 0.0, np.nan])
    np.testing.assert_array_equal(tie_break(cand, err, 0.1), [False, True, False, False])
    np.testing.assert_array_equal(tie_break(cand, err, 0.3), [True, True, False, False])
    np.testing.assert_array_equal(tie_break(cand, np.full(4, np.nan), 0.1), cand)  # nothing known: all kept
    np.testing.assert_array_equal(tie_break([False, True], [0.0, 2.0], 0.1), [False, True])  # one candidate stays


def test_tie_break_by_response_keeps_every_source_peak():
    cand = np.array([True, True, True, False])
    err = np.array([0.02, 0.3, 0.15, 0.0])
    # two sources (components 0 and 1) leave peaks; component 2 sits between their cones, off both peaks
    resp = np.array([0.4, 0.2, 0.03, 0.9])
    np.testing.assert_array_equal(tie_break_by_response(cand, resp, err, 0.2), [True, True, False, False])
    np.testing.assert_array_equal(tie_break_by_response(cand, resp, err, 0.6), [True, False, False, False])
    # the best-aligned candidate stays even with a weak response (e.g. an echo-dominated frame)
    np.testing.assert_array_equal(
        tie_break_by_response(cand, [0.01, 0.5, 0.0, 0.0], err, 0.5), [True, True, False, False]
    )
    # nothing known or nothing positive: the best-aligned candidate only; one candidate: itself
    np.testing.assert_array_equal(
        tie_break_by_response(cand, np.full(4, np.nan), err, 0.2), [True, False, False, False]
    )
    np.testing.assert_array_equal(tie_break_by_response(cand, -np.ones(4), err, 0.2), [True, False, False, False])
    np.testing.assert_array_equal(tie_break_by_response([False, True], [0.0, 0.0], [0.0, 2.0], 0.2), [False, True])


def test_associate_frame_uses_the_response_when_given(scene):
    """Both clusters sound at once: the delay peak names the left one; the response at the right one's delay keeps
    it too, and a weak response there leaves the left one alone."""
    _, comps, cam, centres, soft = scene
    union = disc(centres[0], 0.3, cam) | disc(centres[1], 0.3, cam)
    tau_left = geometric_tdoa(comps[0].centroid, MIC_L, MIC_R)
    kw = dict(tdoa=Tdoa(tau_left), mic_left=MIC_L, mic_right=MIC_R)
    assert associate_frame(soft, union, comps, **kw).selected_ids == [1]
    assert associate_frame(soft, union, comps, response=np.array([0.3, 0.25]), **kw).selected_ids == [1, 2]
    assert associate_frame(soft, union, comps, response=np.array([0.3, 0.02]), **kw).selected_ids == [1]
    # no TDoA: no tie-break at all, whatever the response
    assert associate_frame(soft, union, comps, response=np.array([0.3, 0.0])).selected_ids == [1, 2]


def test_associate_empty_mask_and_bad_shapes(scene):
    _, comps, _, _, soft = scene
    a = associate_frame(soft, np.zeros((48, 64), dtype=bool), comps)
    assert not a.candidates.any() and not a.selected.any()
    with pytest.raises(DataError):
        associate_frame(soft, np.zeros((24, 32), dtype=bool), comps)
    with pytest.raises(DataError):
        associate_frame(soft[:1], np.zeros((48, 64), dtype=bool), comps)
    # a component with no visible pixel is never a candidate, even with a full-frame mask
    invisible = Component(3, np.array([0]), np.zeros(3), 1)
    full = np.ones((48, 64), dtype=bool)
    b = associate_frame(
        np.zeros((1, 48, 64), np.float32), full, [invisible], iou_threshold=0.0, precision_threshold=0.0
    )
    assert not b.candidates.any()


def _assoc(selected: list[bool]) -> Association:
    k = len(selected)
    z = np.zeros(k)
    return Association(np.arange(1, k + 1), z, z, z, np.array(selected), np.array(selected), np.full(k, np.nan))


def test_component_timeline_rule():
    tl = ComponentTimeline.from_associations(
        [_assoc([True, False]), _assoc([True, True]), _assoc([False, True]), _assoc([False, False])]
    )
    times = [0.0, 1.0, 2.0, 3.0]
    assert tl.active.shape == (4, 2)
    assert tl.active_at(0.5, times).tolist() == [True, False]  # comp 1 agrees; comp 2 nearer frame 0
    assert tl.active_at(0.7, times).tolist() == [True, True]  # comp 2 nearer frame 1
    assert tl.active_at(1.4, times).tolist() == [True, True]
    assert tl.active_at(1.6, times).tolist() == [False, True]
    assert tl.active_at(1.5, times).tolist() == [True, True]  # tie → earlier frame

    def prefer_later(t, tn):  # audio similarity: later frames "sound more alike"
        return tn

    assert tl.active_at(1.5, times, audio_active=prefer_later).tolist() == [False, True]
    assert tl.active_at(2.0, times).tolist() == [False, True]  # exactly on a frame
    assert tl.active_at(-1.0, times).tolist() == [True, False]  # before the first frame
    assert tl.active_at(9.0, times).tolist() == [False, False]
    assert tl.active_at(1.4, times, segments=[(0.0, 1.2)]).tolist() == [False, False]  # outside audio activity
    assert tl.active_at(1.1, times, segments=[(0.0, 1.2)]).tolist() == [True, True]
    shuffled = ComponentTimeline(tl.component_ids, tl.active[[2, 0, 3, 1]])
    assert shuffled.active_at(1.6, [2.0, 0.0, 3.0, 1.0]).tolist() == [False, True]  # unsorted frame times
    with pytest.raises(DataError):
        tl.active_at(0.5, [0.0, 1.0])


def test_refine_by_direction_keeps_the_cluster_the_sound_comes_from(scene):
    g, comps, _, _, _ = scene
    means = g.means.numpy()
    both = np.ones(len(g), dtype=bool)
    tau_left = geometric_tdoa(comps[0].centroid, MIC_L, MIC_R)
    kept = refine_by_direction(means, both, tau_left, MIC_L, MIC_R)
    assert np.array_equal(kept, comps[0].index)
    assert np.array_equal(refine_by_direction(means, both, -tau_left, MIC_L, MIC_R), comps[1].index)
    # a broad tolerance keeps both; NaN τ leaves the selection as it is
    assert len(refine_by_direction(means, both, tau_left, MIC_L, MIC_R, angle_tolerance=1.0)) == len(g)
    assert len(refine_by_direction(means, np.flatnonzero(both), float("nan"), MIC_L, MIC_R)) == len(g)
    # the best cluster is always kept, even when nothing agrees within the tolerance
    assert np.array_equal(refine_by_direction(means, comps[1].index, tau_left, MIC_L, MIC_R), comps[1].index)


def test_no_components_selects_nothing():
    from soundmask.lift.associate import ComponentTimeline, associate_frame

    a = associate_frame(np.zeros((0, 6, 5), np.float32), np.ones((6, 5), bool), [])
    assert a.selected.shape == (0,) and a.iou.shape == (0,)
    tl = ComponentTimeline(np.zeros(0, np.int64), np.zeros((4, 0), bool))
    assert tl.active.shape == (4, 0)
    assert tl.active_at(1.5, [0.0, 1.0, 2.0, 3.0]).shape == (0,)


def _room_with_objects(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A 6×5 m floor, two walls and a ceiling (thin noisy planes) and two 0.3 m blobs standing on the floor;
    returns the centres and each centre's truth (0 structure, 1 and 2 the blobs)."""
    n = 3000
    floor = np.c_[rng.uniform(0, 6, n), rng.uniform(0, 5, n), rng.normal(0, 0.005, n)]
    wall1 = np.c_[rng.uniform(0, 6, n // 2), rng.normal(5, 0.005, n // 2), rng.uniform(0, 2.5, n // 2)]
    wall2 = np.c_[rng.normal(0, 0.005, n // 2), rng.uniform(0, 5, n // 2), rng.uniform(0, 2.5, n // 2)]
    ceil = np.c_[rng.uniform(0, 6, n // 2), rng.uniform(0, 5, n // 2), rng.normal(2.5, 0.005, n // 2)]
    a = rng.normal([2, 2, 0.4], 0.1, (300, 3))
    b = rng.normal([4, 3, 0.4], 0.1, (300, 3))
    pts = np.concatenate([floor, wall1, wall2, ceil, a, b])
    truth = np.r_[np.zeros(len(pts) - 600, int), np.ones(300, int), np.full(300, 2)]
    return pts, truth


def test_structure_planes_finds_floor_walls_and_ceiling(rng):
    from soundmask.lift.grouping import structure_planes

    pts, truth = _room_with_objects(rng)
    on = structure_planes(pts)
    assert on[truth == 0].mean() > 0.97  # the planes are found
    assert on[truth > 0].mean() < 0.05  # the objects are not planes
    assert structure_planes(pts, seed=0).tolist() == on.tolist()  # deterministic


def test_geometric_components_are_the_objects(rng):
    from soundmask.lift.grouping import geometric_components

    pts, truth = _room_with_objects(rng)
    comps = geometric_components(pts, min_size=50)
    assert len(comps) == 2
    for c in comps:
        labels = truth[c.index]
        assert (labels == np.bincount(labels).argmax()).mean() > 0.95 and len(c.index) > 250
    op = np.ones(len(pts))
    op[truth == 2] = 0.01  # transparent Gaussians are not objects
    assert len(geometric_components(pts, op, min_size=50)) == 1


def test_a_flat_object_on_the_floor_is_not_taken_for_the_floor(rng):
    """A 10 cm tall box standing on the floor (a xylophone, a radio): the floor's plane band must not swallow it
    (the earlier 1.5 %-of-extent tolerance, 12 cm here, removed all of it)."""
    from soundmask.lift.grouping import geometric_components, structure_planes

    pts, truth = _room_with_objects(rng)
    box = np.c_[rng.uniform(1.0, 1.4, 400), rng.uniform(3.5, 3.8, 400), rng.uniform(0.0, 0.1, 400)]
    pts, truth = np.concatenate([pts, box]), np.r_[truth, np.full(400, 3)]
    assert structure_planes(pts, inlier_fraction=0.015)[truth == 3].mean() > 0.95  # the old default
    on = structure_planes(pts)
    assert on[truth == 0].mean() > 0.97 and on[truth == 3].mean() < 0.6
    comps = geometric_components(pts, min_size=50)
    assert sorted(int(np.bincount(truth[c.index]).argmax()) for c in comps) == [1, 2, 3]


def test_split_by_sound_cuts_a_sounding_object_out_of_its_table(rng):
    """A cat on a table is one geometric component (they touch); the Gaussians the sound masks vote for — the
    cat's, and a few of the table's along the cat's outline — come out as a component of their own."""
    from soundmask.lift.grouping import geometric_components, split_by_sound

    pts, truth = _room_with_objects(rng)
    top = np.c_[rng.uniform(2.5, 3.5, 600), rng.uniform(1.0, 1.6, 600), rng.normal(0.7, 0.01, 600)]
    legs = np.concatenate(
        [
            np.c_[rng.normal(x, 0.02, 60), rng.normal(y, 0.02, 60), rng.uniform(0.05, 0.7, 60)]
            for x in (2.55, 3.45)
            for y in (1.05, 1.55)
        ]
    )
    cat = rng.normal([3.0, 1.3, 0.85], [0.08, 0.08, 0.06], (150, 3))
    pts = np.concatenate([pts, top, legs, cat])
    truth = np.r_[truth, np.full(len(top) + len(legs), 3), np.full(len(cat), 4)]
    comps = geometric_components(pts, min_size=50)
    joined = [c for c in comps if (truth[c.index] == 4).any()]
    assert len(joined) == 1 and (truth[joined[0].index] == 4).mean() < 0.3  # geometry alone: cat + table
    sounded = truth == 4
    near = np.flatnonzero((truth == 3) & (np.linalg.norm(pts - [3.0, 1.3, 0.75], axis=1) < 0.15))
    sounded[near[:10]] = True
    split = split_by_sound(comps, pts, sounded, min_size=50)
    assert [c.id for c in split] == list(range(1, len(split) + 1))
    best = max(split, key=lambda c: (truth[c.index] == 4).sum())
    assert (truth[best.index] == 4).mean() > 0.9
    assert (truth[best.index] == 4).sum() == (truth[joined[0].index] == 4).sum()  # all of the cat
    assert sorted(np.concatenate([c.index for c in split]).tolist()) == sorted(
        np.concatenate([c.index for c in comps]).tolist()
    )  # nothing lost: the table stays a component
    # the blobs that sound as a whole (share ≥ max_share) and components without a voted Gaussian stay whole
    whole = split_by_sound(comps, pts, truth == 1, min_size=50)
    assert sorted(c.size for c in whole) == sorted(c.size for c in comps)
    # too few voted Gaussians to be an object: the component stays whole
    few = np.zeros(len(pts), bool)
    few[np.flatnonzero(truth == 4)[:10]] = True
    assert sorted(c.size for c in split_by_sound(comps, pts, few, min_size=50)) == sorted(c.size for c in comps)


def test_segment_of_views():
    from soundmask.lift.associate import segment_of_views

    seg = segment_of_views([0.0, 1.0, 2.0, 5.0], 1.0, [(0.2, 2.5), (4.0, 4.5)])
    np.testing.assert_array_equal(seg, [0, 0, 0, -1])
