"""The binding of sounds to components (soundmask.lift.binding): acoustic cues in a simulated room pick the
sounding objects, a silent object that the 2D mask covers is rejected by the joint decision, and decide()'s rules."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from soundmask.audio.cues import FrameAudio
from soundmask.audio.types import Segment
from soundmask.data.types import Camera, Intrinsics, SceneFrame
from soundmask.lift.binding import (
    DEFAULT_WEIGHTS,
    BindingCues,
    BindingWeights,
    acoustic_cues,
    component_points,
    decide,
)
from soundmask.lift.grouping import Component
from soundmask.synth.acoustics import simulate_moving

SR = 16000
ROOM = np.array([6.0, 5.0, 3.0])
OBJECTS = np.array([[4.5, 3.8, 1.0], [4.6, 1.2, 0.9], [4.8, 2.5, 1.1]])  # 0 and 1 sound (when asked), 2 is silent


def _scene(sounding: list[int], V: int = 6, seed: int = 0) -> tuple[FrameAudio, list[SceneFrame], np.ndarray, list]:
    """A rig moving along the left wall, objects as blobs of 60 Gaussian centres; 1 s per view."""
    rng = np.random.default_rng(seed)
    centres = np.stack([np.full(V, 1.2), np.linspace(1.5, 3.5, V), np.full(V, 1.5)], axis=1)
    off = np.array([0.0, 0.1, 0.0])
    ml, mr = centres + off, centres - off
    src = [(OBJECTS[k], (0.7**i) * rng.standard_normal(V * SR).astype(np.float32)) for i, k in enumerate(sounding)]
    stereo = simulate_moving(src, ml, mr, ROOM, 0.15, SR, times=np.arange(V) + 0.5)
    wins = [Segment(float(v), float(v + 1)) for v in range(V)]
    fa = FrameAudio([(0.0, float(V))], [None] * V, None, 1.0, stereo=stereo, sample_rate=SR, windows=wins)
    cam = Camera(Intrinsics(100.0, 100.0, 64.0, 64.0, 128, 128), np.eye(4))
    frames = [SceneFrame(v, float(v), f"input/{v:05d}.png", cam, ml[v], mr[v]) for v in range(V)]
    room = rng.uniform(0, 1, (400, 3)) * ROOM * np.array([1, 1, 0]) + np.array([0, 0, 0.02])  # the floor
    room[:40, 2] = ROOM[2] - 0.02  # and some ceiling: the reconstruction spans the room
    means = np.concatenate([*(o + rng.normal(0, 0.08, (60, 3)) for o in OBJECTS), room])
    comps = [Component(k + 1, np.arange(60 * k, 60 * (k + 1)), OBJECTS[k], 60) for k in range(3)]
    return fa, frames, means, comps


def _cues(sounding: list[int], **kw: Any) -> tuple[np.ndarray, np.ndarray]:
    fa, frames, means, comps = _scene(sounding)
    out = acoustic_cues(fa, frames, list(range(len(frames))), [f.time for f in frames], comps, means, **kw)
    assert out is not None
    return out


def test_component_points_are_kmeans_centres_and_the_median() -> None:
    rng = np.random.default_rng(0)
    means = rng.normal(0, 1, (500, 3))
    idx = np.arange(100, 300)
    pts = component_points(means, idx, n=8)
    assert len(pts) == 9
    lo, hi = means[idx].min(axis=0), means[idx].max(axis=0)
    assert np.all(pts >= lo - 1e-9) and np.all(pts <= hi + 1e-9)
    assert np.allclose(pts[-1], np.median(means[idx], axis=0))
    assert len(component_points(means, np.arange(3), n=8)) == 4  # small: its own centres and the median
    assert component_points(means, np.zeros(0, int)).shape == (0, 3)


def test_acoustic_cue_prefers_the_sounding_object_over_the_silent_ones() -> None:
    for who in (0, 1):
        z, first = _cues([who])
        assert np.all(first == who)
        assert np.median(z[:, who]) > 3.0
        assert np.median(z[:, 2]) < np.median(z[:, who]) - 2.0


def test_acoustic_cue_finds_both_of_two_simultaneous_sources() -> None:
    z, first = _cues([0, 1])
    assert np.isin(first, [0, 1]).all() and np.mean(first == 0) >= 0.5  # mostly the louder one first
    assert np.all(np.minimum(z[:, 0], z[:, 1]) > z[:, 2])  # after taking it out, the other beats the silent one
    z_none, _ = _cues([0, 1], remove_mode=None)
    second = first == 0
    assert np.median(z[second, 1]) > np.median(z_none[second, 1])  # taking the first out lifts the second


def test_joint_decision_drops_a_silent_object_the_mask_covers() -> None:
    z, first = _cues([0])
    V = z.shape[0]
    cand = np.zeros((V, 3), bool)
    cand[:, [0, 2]] = True  # the 2D mask covers the source and the silent object next to it
    iou = np.where(cand, 0.6, 0.0)
    cues = BindingCues(np.array([1, 2, 3]), cand, iou, z, np.ones(V, bool), first)
    w = BindingWeights(bias=-2.0, candidate=1.0, iou=1.0, acoustic=0.5, semantic=0.0)
    sel = decide(cues, "joint", w)
    assert sel[:, 0].all() and not sel[:, 2].any() and not sel[:, 1].any()
    # the shipped (fitted) weights: the acoustic evidence counts — with the same mask the silent object scores
    # lower than the source — and a marginal candidate with strong evidence against it is dropped
    w = DEFAULT_WEIGHTS["joint"]
    f = cues.features()
    score = f @ w.as_array()
    assert np.all(score[:, 0] > score[:, 2])
    assert w.acoustic > 0 and w.candidate > 0 and w.iou > 0
    marginal = BindingCues(
        np.array([1]),
        np.ones((1, 1), bool),
        np.full((1, 1), 0.5),
        np.full((1, 1), -5.0),
        np.ones(1, bool),
        np.zeros(1, int),
    )
    assert not decide(marginal, "joint").any()


def test_decide_rules() -> None:
    V, K = 3, 2
    cues = BindingCues(
        np.array([1, 2]),
        np.ones((V, K), bool),
        np.full((V, K), 0.9),
        np.array([[10.0, -3.0]] * V),
        np.array([True, False, True]),
        np.zeros(V, int),
        semantic=np.array([[0.0, 0.5]] * V),
    )
    sel = decide(cues, "acoustic", BindingWeights(-2.0, 0.0, 0.0, 0.5, 0.0))
    np.testing.assert_array_equal(sel, [[True, False], [False, False], [True, False]])  # silent view: nothing
    sel = decide(cues, "semantic", BindingWeights(-0.2, 5.0, 5.0, 5.0, 1.0))  # only bias and semantic count
    np.testing.assert_array_equal(sel[0], [False, True])
    with pytest.raises(ValueError):
        decide(cues, "visual")
    assert set(DEFAULT_WEIGHTS) == {"acoustic", "semantic", "joint"}
