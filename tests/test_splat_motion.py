"""Rigid 4D motion (soundmask.splat.motion) and finding moving bodies in depth (soundmask.splat.dynamic)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.interpolate import CubicHermiteSpline
from scipy.spatial.transform import Rotation

from soundmask.data.types import Camera, Intrinsics, look_at
from soundmask.splat.dynamic import rigid_init
from soundmask.splat.gaussians import Gaussians
from soundmask.splat.motion import RigidMotion, axis_angle_to_rotmat, knot_weights
from soundmask.splat.ply import read_ply, write_ply
from soundmask.splat.render import render
from soundmask.splat.train import ReconstructConfig, SceneViews, _densify, fit, initial_gaussians


# ----------------------------------------------------------------------------- interpolation and poses
@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0.1, 3.0), min_size=2, max_size=9), st.integers(0, 10_000))
def test_knot_weights_are_the_cubic_hermite_spline_with_finite_difference_tangents(gaps, seed):
    times = np.concatenate([[0.0], np.cumsum(gaps)])
    y = np.random.default_rng(seed).normal(size=len(times))
    # the reference: scipy's Hermite spline with the same (one-sided at the ends) finite-difference slopes
    slope = np.array([(y[min(j + 1, len(y) - 1)] - y[max(j - 1, 0)]) / (times[min(j + 1, len(y) - 1)]
                                                                        - times[max(j - 1, 0)])
                      for j in range(len(y))])  # fmt: skip
    ref = CubicHermiteSpline(times, y, slope)
    tt = torch.as_tensor(times, dtype=torch.float32)
    for t in np.linspace(times[0], times[-1], 23):
        w = knot_weights(tt, float(t)).numpy()
        assert w.sum() == pytest.approx(1.0, abs=1e-9)
        assert float(w @ y) == pytest.approx(float(ref(t)), abs=1e-5)
    for j, t in enumerate(times):  # exact at the knots, constant outside
        assert float(knot_weights(tt, float(t)).numpy() @ y) == pytest.approx(y[j], abs=1e-5)
    assert float(knot_weights(tt, times[0] - 5).numpy() @ y) == pytest.approx(y[0])
    assert float(knot_weights(tt, times[-1] + 5).numpy() @ y) == pytest.approx(y[-1])


def test_axis_angle_matches_scipy_and_is_smooth_at_zero():
    v = torch.as_tensor(np.random.default_rng(0).normal(size=(20, 3)), dtype=torch.float64)
    v[0] = 0.0
    v[1] = 1e-7
    ref = Rotation.from_rotvec(v.numpy()).as_matrix()
    assert np.allclose(axis_angle_to_rotmat(v).numpy(), ref, atol=1e-10)
    z = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    axis_angle_to_rotmat(z).sum().backward()
    assert torch.isfinite(z.grad).all()


def _two_bodies() -> Gaussians:
    g = Gaussians.from_points(np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 0.0]]), scale=0.1)
    g.group = torch.tensor([0, 1, 1, 2])
    times = torch.tensor([0.0, 1.0, 2.0])
    tr = torch.zeros(2, 3, 3)
    tr[0, :, 1] = torch.tensor([0.0, 1.0, 2.0])  # body 1 walks along y, 1 m/s
    rot = torch.zeros(2, 3, 3)
    rot[1, 2, 2] = math.pi / 2  # body 2 turns a quarter about z by t = 2
    g.rigid = RigidMotion(times, tr, rot, pivots=torch.tensor([[1.5, 0, 0], [3.0, 0, 0]]))
    g.__post_init__()
    return g


def test_rigid_bodies_move_and_turn_while_the_background_stays_exactly_still():
    g = _two_bodies()
    g.log_scales[3] = torch.log(torch.tensor([0.3, 0.05, 0.05]))
    m = g.means_at(1.0)
    assert torch.equal(m[0], g.means[0])
    assert torch.allclose(m[1:3, 1], torch.ones(2))
    assert torch.allclose(g.means_at(0.5)[1, 1], torch.tensor(0.5), atol=1e-6)  # between knots
    cov = g.covariances(2.0)
    assert torch.allclose(cov[3].diagonal(), torch.tensor([0.05**2, 0.3**2, 0.05**2]), atol=1e-6)  # turned
    assert torch.equal(g.covariances(2.0)[0], g.covariances()[0])
    assert torch.equal(g.means_at(None), g.means)


def test_rigid_model_round_trips_through_ply_state_dict_subset_and_density_control(tmp_path):
    g = _two_bodies()
    back = read_ply(write_ply(g, tmp_path / "g.ply"))
    assert torch.equal(back.group, g.group)
    for t in (0.0, 0.7, 1.5, 2.0):
        assert torch.allclose(back.means_at(t), g.means_at(t), atol=1e-6)
    sd = Gaussians.from_state_dict(g.state_dict())
    assert torch.allclose(sd.means_at(1.3), g.means_at(1.3))
    sub = g.subset(torch.tensor([1, 3]))
    assert torch.allclose(sub.means_at(1.3), g.means_at(1.3)[[1, 3]])
    g2, keep = _densify(g, torch.ones(4), torch.ones(4), ReconstructConfig(grad_threshold=0.0), 10.0,
                        torch.Generator().manual_seed(0))  # fmt: skip
    assert g2.rigid is g.rigid and len(g2) > len(g) and set(g2.group.tolist()) == {0, 1, 2}


def test_inconsistent_groups_are_refused():
    g = _two_bodies()
    with pytest.raises(ValueError, match="group"):
        Gaussians(g.means, g.log_scales, g.quats, g.opacity_logits, g.sh, group=torch.tensor([0, 1, 3, 0]),
                  rigid=g.rigid)  # fmt: skip
    with pytest.raises(ValueError, match="together"):
        Gaussians(g.means, g.log_scales, g.quats, g.opacity_logits, g.sh, group=g.group)


# ----------------------------------------------------------------------------- a synthetic moving blob
BALL_R = 0.3


def ball_centre(t: float) -> np.ndarray:
    return np.array([0.7 * math.sin(2 * math.pi * t / 9.0), 0.2 * t / 24, 0.45])


def _cast(cam: Camera, t: float) -> tuple[np.ndarray, np.ndarray]:
    """Colour (H, W, 3) and camera-z depth of a world of a checkered floor (z = 0), a back wall (y = 3) and a
    red ball at ``ball_centre(t)``, ray-cast analytically through the pixel centres."""
    k = cam.intrinsics
    vs, us = np.mgrid[0 : k.height, 0 : k.width] + 0.5
    d_cam = np.stack([(us - k.cx) / k.fx, (vs - k.cy) / k.fy, np.ones_like(us)], -1)
    R, o = cam.camera_to_world[:3, :3], cam.camera_to_world[:3, 3]
    d = d_cam @ R.T
    s_floor = np.where(d[..., 2] < -1e-9, -o[2] / np.where(d[..., 2] < -1e-9, d[..., 2], -1), np.inf)
    s_wall = np.where(d[..., 1] > 1e-9, (3.0 - o[1]) / np.where(d[..., 1] > 1e-9, d[..., 1], 1), np.inf)
    oc = o - ball_centre(t)
    b = (d * oc).sum(-1)
    a = (d * d).sum(-1)
    disc = b * b - a * ((oc * oc).sum() - BALL_R**2)
    s_ball = np.where(disc > 0, (-b - np.sqrt(np.maximum(disc, 0))) / a, np.inf)
    s_ball = np.where(s_ball > 0, s_ball, np.inf)
    s = np.minimum(np.minimum(s_floor, s_wall), s_ball)
    p = o + d * s[..., None]
    checker = ((np.floor(p[..., 0] * 3) + np.floor(p[..., 1] * 3)) % 2)[..., None]
    col = np.where(checker > 0, [0.8, 0.75, 0.6], [0.35, 0.3, 0.25])
    col = np.where((s == s_wall)[..., None], np.array([0.5, 0.55, 0.7]) + 0.15 * checker, col)
    col = np.where((s == s_ball)[..., None], [0.9, 0.15, 0.1], col)
    return col.astype(np.float32), s.astype(np.float64)  # d has camera z = 1, so s is the z depth


def moving_ball_views(n: int = 24, size: int = 48) -> SceneViews:
    cams, imgs, depth, times = [], [], [], []
    for i in range(n):
        a = -0.9 + 1.8 * i / (n - 1)
        eye = np.array([3.2 * math.sin(a), -3.2 * math.cos(a), 1.6])
        cam = Camera(Intrinsics(size * 0.9, size * 0.9, size / 2, size / 2, size, size), look_at(eye, (0, 0.5, 0.3)))
        col, z = _cast(cam, float(i))
        cams.append(cam)
        imgs.append(col)
        depth.append(z)
        times.append(float(i))
    test = [i for i in range(n) if i % 8 == 0]
    train = [i for i in range(n) if i % 8]
    return SceneViews(torch.as_tensor(np.stack(imgs)), cams, times, train, test, np.stack(depth), dynamic=True)


def test_a_moving_ball_becomes_one_rigid_body_whose_track_is_recovered():
    views = moving_ball_views()
    g, rep = rigid_init(views, 3000)
    assert g.rigid is not None and g.rigid.num_groups == 1, rep
    body = g.group == 1
    # the body is the ball (canonical pose: its mean position), and nothing of the background
    mean_c = np.mean([ball_centre(t) for t in g.rigid.times.tolist()], axis=0)
    assert np.linalg.norm(g.means[body].numpy() - mean_c, axis=1).max() < BALL_R + 0.12
    assert (g.group == 0).sum() > 0.5 * len(g)
    # the track: the ball's centre over the knots (up to the canonical offset). The initial track is ICP between
    # views that see different caps of the ball (measured: median 8.5 cm, max 14 cm); the fit refines it
    est = g.rigid.translations[0].numpy()
    true = np.stack([ball_centre(t) for t in g.rigid.times.tolist()])
    err = np.linalg.norm((est - est.mean(0)) - (true - true.mean(0)), axis=1)
    assert np.median(err) < 0.1 and err.max() < 0.16, err
    # a held-out frame's time is interpolated between the knots
    t_test = float(views.times[views.test[1]])
    moved = g.means_at(t_test)[body].numpy().mean(0) - g.means[body].numpy().mean(0)
    assert np.linalg.norm(moved - (ball_centre(t_test) - mean_c)) < 0.16


def test_without_motion_nothing_becomes_a_body():
    views = moving_ball_views(n=12)
    still = [(_cast(c, 0.0)) for c in views.cameras]
    views.images = torch.as_tensor(np.stack([c for c, _ in still]))
    views.depth = np.stack([z for _, z in still])
    g, rep = rigid_init(views, 2000)
    assert g.rigid is None and g.group is None and rep.dynamic < 0.01 * rep.points


def _ball_error(g: Gaussians, views: SceneViews) -> float:
    """Mean squared colour error over the ball's pixels in the held-out views (rendered at their times)."""
    err = []
    for i in views.test:
        img, _ = _cast(views.cameras[i], views.times[i])
        ball = np.isclose(img, [0.9, 0.15, 0.1], atol=1e-3).all(-1)
        r = render(g, views.cameras[i], time=views.times[i], features=False).color.clamp(0, 1).numpy()
        err.append(((r - img) ** 2).mean(-1)[ball])
    return float(np.concatenate(err).mean())


def test_fitting_the_rigid_model_renders_the_moving_ball_in_held_out_frames_better_than_the_basis_model():
    views = moving_ball_views()
    out = {}
    for model in ("rigid", "basis"):
        cfg = ReconstructConfig(iterations=150, init_points=2500, motion=model, densify_from=50, densify_every=50)
        g0, _ = initial_gaussians(views, cfg, np.random.default_rng(0))
        assert (g0.rigid is not None) == (model == "rigid")
        out[model] = fit(views, cfg)
    err = {k: _ball_error(r.gaussians, views) for k, r in out.items()}
    assert err["rigid"] < 0.75 * err["basis"], err  # measured: 0.032 vs 0.052
    g = out["rigid"].gaussians
    i = views.test[1]
    sil = render(g.subset(g.group == 1), views.cameras[i], time=views.times[i], features=False).alpha.numpy() > 0.5
    truth = np.isclose(_cast(views.cameras[i], views.times[i])[0], [0.9, 0.15, 0.1], atol=1e-3).all(-1)
    assert (sil & truth).sum() / (sil | truth).sum() > 0.6


def test_a_ply_whose_rigid_tracks_are_broken_is_refused_with_the_fix(tmp_path):
    from soundmask.errors import DataError

    path = write_ply(_two_bodies(), tmp_path / "g.ply")
    raw = path.read_bytes()
    head, body = raw.split(b"end_header\n", 1)
    lines = head.decode().splitlines()
    no_tracks = [ln for ln in lines if "rigid_" not in ln]
    (tmp_path / "a.ply").write_bytes(("\n".join(no_tracks) + "\nend_header\n").encode() + body)
    with pytest.raises(DataError, match="motion_group property but no rigid_pose"):
        read_ply(tmp_path / "a.ply")
    bad = [ln.replace("rigid_pose 1", "rigid_pose 1 x") if "rigid_pose 1" in ln else ln for ln in lines]
    (tmp_path / "b.ply").write_bytes(("\n".join(bad) + "\nend_header\n").encode() + body)
    with pytest.raises(DataError, match="malformed PLY comment"):
        read_ply(tmp_path / "b.ply")
