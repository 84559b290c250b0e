"""4D lifting helpers: components follow their Gaussians over time, and a rigid body is one component."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from soundmask.lift.grouping import Component, moved_centroids, with_bodies
from soundmask.splat.gaussians import Gaussians
from soundmask.splat.motion import RigidMotion


def _walker() -> Gaussians:
    pts = np.array([[0, 0, 0], [0.1, 0, 0], [5, 0, 0], [5.1, 0, 0], [5.2, 0.1, 0]], dtype=float)
    g = Gaussians.from_points(pts, scale=0.05)
    g.group = torch.tensor([0, 0, 1, 1, 1])
    times = torch.tensor([0.0, 1.0, 2.0])
    tr = torch.zeros(1, 3, 3)
    tr[0, :, 1] = torch.tensor([-1.0, 0.0, 1.0])  # walks along +y, 1 m/s, canonical pose at t = 1
    g.rigid = RigidMotion(times, tr, torch.zeros(1, 3, 3), pivots=torch.tensor([[5.1, 0.03, 0.0]]))
    g.__post_init__()
    return g


def test_moved_centroids_follow_the_gaussians_and_static_ones_stay():
    g = _walker()
    comps = [
        Component(1, np.array([0, 1]), np.array([0.05, 0, 0]), 2),
        Component(2, np.array([2, 3, 4]), np.array([5.1, 1 / 30, 0]), 3),
    ]
    c = moved_centroids(g, comps, [0.0, 0.5, 2.0])
    assert c.shape == (3, 2, 3)
    assert np.allclose(c[:, 0], [0.05, 0, 0])
    assert np.allclose(c[:, 1, 1], np.array([-1.0, -0.5, 1.0]) + 1 / 30, atol=1e-5)
    g_static = Gaussians.from_points(np.zeros((5, 3)) + np.arange(5)[:, None], scale=0.1)
    assert np.allclose(moved_centroids(g_static, comps, [0.0, 3.0])[1, 1], comps[1].centroid)


def test_a_rigid_body_is_one_component_and_static_components_keep_their_gaussians():
    group = np.array([0, 1, 0, 1, 2, 2, 0])
    still = np.flatnonzero(group == 0)  # [0, 2, 6]
    means = np.arange(21, dtype=float).reshape(7, 3)
    found = [Component(4, np.array([0, 2]), means[[0, 6]].mean(0), 2)]  # indices into `still`
    out = with_bodies(found, group, still, means, min_size=2)
    assert [c.index.tolist() for c in out] == [[0, 6], [1, 3], [4, 5]]
    assert [c.id for c in out] == [4, 5, 6]
    assert math.isclose(out[1].centroid[0], means[[1, 3], 0].mean())
    assert len(with_bodies(found, group, still, means, min_size=3)) == 1  # bodies below min_size are dropped


def test_at_time_returns_the_sounding_objects_where_they_are_then():
    from soundmask.lift.tags import SoundScene, SoundTag

    g = _walker()
    walker = SoundTag(2, np.array([2, 3, 4]), "Dog", spans=[(0.0, 3.0)])
    still = SoundTag(1, np.array([0, 1]), "Piano", spans=[(1.5, 3.0)])
    s = SoundScene(g, [still, walker])
    now = s.at_time(0.0)
    assert [a.label for a in now] == ["Dog"] and now[0].tag is walker
    assert np.allclose(now[0].centroid, [5.1, -1 + 1 / 30, 0], atol=1e-5)
    later = {a.label: a for a in s.at_time(2.0)}
    assert np.allclose(later["Dog"].means[:, 1], g.means[2:, 1].numpy() + 1.0, atol=1e-5)
    assert np.allclose(later["Piano"].centroid, [0.05, 0, 0], atol=1e-6)
    assert s.at_time(5.0) == []


def test_a_moving_sound_scene_saves_and_loads_with_its_tracks(tmp_path):
    from soundmask.lift.tags import SoundScene, SoundTag

    s = SoundScene(_walker(), [SoundTag(2, np.array([2, 3, 4]), "Dog", spans=[(0.0, 3.0)])])
    back = SoundScene.load(s.save(tmp_path / "sound_scene.pt"))
    for t in (0.0, 0.4, 1.7):
        assert np.allclose(back.at_time(t)[0].centroid, s.at_time(t)[0].centroid, atol=1e-6)


def test_tdoa_agreement_compares_the_track_with_the_audio_only_delays():
    from types import SimpleNamespace

    from soundmask.audio.evidence import predicted_delays
    from soundmask.lift.separate import tdoa_agreement

    F = 6
    frames = [SimpleNamespace(mic_left=np.array([0.0, 0.1, 1.5]), mic_right=np.array([0.0, -0.1, 1.5]))] * F
    walk = np.stack([np.full(F, 3.0), np.linspace(-2, 2, F), np.full(F, 1.0)], axis=1)
    positions = np.stack([walk, walk[::-1]], axis=1)  # (F, K=2, 3): the second walks the other way
    mid = np.arange(F) + 0.5
    tau = np.array([float(predicted_delays(p, frames[0].mic_left, frames[0].mic_right)) for p in walk])
    active = np.ones((F, 2), dtype=bool)
    active[:, 1] = [True, False, False, False, False, True]
    d = tdoa_agreement(positions, active, frames, mid, mid, tau)
    assert d[0] == pytest.approx(0.0, abs=1e-9)  # the first follows the audio track exactly
    assert d[1] == pytest.approx(abs(tau[0] - tau[-1]), rel=1e-6)  # the second is at the mirror position
    assert np.isnan(tdoa_agreement(positions, np.zeros((F, 2), bool), frames, mid, mid, tau)).all()
