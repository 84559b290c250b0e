"""Acoustic evidence per object (soundmask.audio.evidence): the steered response picks the sounding object among
silent ones, a second source is found after taking the first out, and the beamformer separates two sources."""

from __future__ import annotations

import numpy as np
import pytest

from soundmask.audio.evidence import (
    ObjectEvidence,
    extract,
    mirror_points,
    object_evidence,
    predicted_delays,
    window_responses,
    window_spectra,
)
from soundmask.audio.types import Segment
from soundmask.constants import SPEED_OF_SOUND
from soundmask.errors import DataError
from soundmask.synth.acoustics import simulate_moving

SR = 16000
ROOM = np.array([6.0, 5.0, 3.0])
SOURCES = np.array([[4.5, 3.8, 1.0], [4.6, 1.2, 0.9], [4.8, 2.5, 1.1]])  # two that sound, one silent between


def _rig(V: int) -> np.ndarray:
    """(V, 2, 3) a camera rig moving along the room's left wall, microphones 0.2 m apart, facing +x."""
    centres = np.stack([np.full(V, 1.2), np.linspace(1.5, 3.5, V), np.full(V, 1.5)], axis=1)
    off = np.array([0.0, 0.1, 0.0])  # left microphone on +y (the camera faces +x, x right = -y)
    return np.stack([centres + off, centres - off], axis=1)


def _room(signals: list[np.ndarray | None], V: int, rt60: float = 0.15) -> tuple[np.ndarray, list[Segment]]:
    """Stereo of the sources at SOURCES (None = silent) for a rig at V positions, one 1 s window each."""
    mics = _rig(V)
    times = np.arange(V) + 0.5
    src = [(p, x) for p, x in zip(SOURCES, signals, strict=True) if x is not None]
    stereo = simulate_moving(src, mics[:, 0], mics[:, 1], ROOM, rt60, SR, times=times)
    return stereo, [Segment(float(v), float(v + 1)) for v in range(V)]


def _noise(seconds: float, seed: int, level: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (level * rng.standard_normal(int(seconds * SR))).astype(np.float32)


def _z(stereo: np.ndarray, windows: list[Segment], groups: list[np.ndarray], **kw: object) -> np.ndarray:
    rng = np.random.default_rng(1)
    base = 0.3 + rng.uniform(0, 1, (128, 3)) * (ROOM - 0.6)
    mics = _rig(len(windows))
    sp = window_spectra(stereo, SR, windows, **kw)  # type: ignore[arg-type]
    r = window_responses(sp, mics, SOURCES)
    b = window_responses(sp, mics, base)
    return object_evidence(r, groups, [1, 1, 1], b).z()


def test_predicted_delays_and_mirror() -> None:
    mics = _rig(3)
    for v in range(3):
        got = predicted_delays(SOURCES, mics[v, 0], mics[v, 1])
        d_left = np.sqrt(((SOURCES - mics[v, 0]) ** 2).sum(axis=1))
        d_right = np.sqrt(((SOURCES - mics[v, 1]) ** 2).sum(axis=1))
        assert got.shape == (3,) and np.allclose(got, (d_right - d_left) / SPEED_OF_SOUND, atol=1e-12)
    assert predicted_delays(SOURCES[0], mics[0, 0], mics[0, 1]).shape == ()  # an array even for one point
    img = mirror_points(SOURCES, [0.0, 3.0])
    assert img.shape == (2, 3, 3)
    assert np.allclose(img[0, :, 2], -SOURCES[:, 2]) and np.allclose(img[1, :, 2], 6.0 - SOURCES[:, 2])
    assert np.allclose(img[..., :2], SOURCES[None, :, :2])


def test_single_source_segment_picks_the_sounding_object_not_the_silent_ones() -> None:
    V = 4
    for who in (0, 1):
        sig: list[np.ndarray | None] = [None, None, None]
        sig[who] = _noise(V, 10 + who)
        stereo, windows = _room(sig, V)
        z = _z(stereo, windows, [np.arange(V)])
        assert int(np.nanargmax(z[0])) == who
        assert z[0, who] > 3.0  # far above the off-object baseline
        assert z[0, 2] < z[0, who] - 2.0  # the silent object between the two does not pass for it


def test_two_sources_second_found_after_taking_the_first_out() -> None:
    V = 4
    stereo, windows = _room([_noise(V, 3), _noise(V, 4, 0.5), None], V)
    z = _z(stereo, windows, [np.arange(V)])
    first = int(np.nanargmax(z[0]))
    assert first == 0  # the louder one
    remove = np.array([predicted_delays(SOURCES[first], m[0], m[1]) for m in _rig(V)])
    for mode in ("duet", "null"):
        z2 = _z(stereo, windows, [np.arange(V)], remove=remove, remove_mode=mode)
        assert z2[0, first] < z[0, first]  # taken out
        rest = z2[0].copy()
        rest[first] = -np.inf
        assert int(np.argmax(rest)) == 1, mode  # the second source, not the silent object


def test_nulling_cancels_the_removed_delay_in_free_field() -> None:
    x = _noise(2, 7)
    tau1 = 12 / SR  # an integer-sample delay: the right channel is the left one shifted
    stereo = np.stack([x, np.roll(x, 12)])
    w = [Segment(0.0, 2.0)]
    plain = window_spectra(stereo, SR, w).response(0, [tau1])[0]
    nulled = window_spectra(stereo, SR, w, remove=[tau1], remove_mode="null").response(0, [tau1])[0]
    assert plain > 0.9
    assert abs(nulled) < 0.2 * plain or nulled < 0


def test_more_points_do_not_buy_a_higher_z() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(0.0, 0.1, (1, 500))
    scores = np.array([[0.1, 0.1]])
    ev = ObjectEvidence(scores, base, np.array([1, 16]))
    z = ev.z()
    assert z[0, 1] < z[0, 0]  # the same score is less surprising as the best of 16 points
    lik = ev.likelihood()
    assert np.all(lik >= 0) and lik.sum() < 1.0  # "none of them" keeps some mass


def test_extract_separates_two_sources_by_6db() -> None:
    V = 3
    a, b = _noise(V, 21), _noise(V, 22)
    mix, windows = _room([a, b, None], V, rt60=0.0)
    ref, _ = _room([a, None, None], V, rt60=0.0)
    mics = _rig(V)
    ta = np.array([predicted_delays(SOURCES[0], m[0], m[1]) for m in mics])
    tb = np.array([predicted_delays(SOURCES[1], m[0], m[1]) for m in mics])

    def si_sdr(est: np.ndarray, s: np.ndarray) -> float:  # the textbook definition, on zero-mean signals
        est, s = est - est.mean(), s - s.mean()
        proj = (est @ s) / (s @ s) * s
        return float(10 * np.log10((proj @ proj) / ((est - proj) @ (est - proj))))

    inner = slice(SR // 2, (V - 1) * SR)  # away from the signal's start and end
    base = si_sdr(mix[0][inner], ref[0][inner])
    das = si_sdr(extract(mix, SR, windows, ta, method="das")[inner], ref[0][inner])
    mvdr = si_sdr(extract(mix, SR, windows, ta, tb[:, None])[inner], ref[0][inner])
    assert mvdr - base >= 6.0
    assert mvdr > das


def test_shape_errors_are_data_errors() -> None:
    stereo, windows = _room([_noise(2, 1), None, None], 2)
    sp = window_spectra(stereo, SR, windows)
    with pytest.raises(DataError):
        window_responses(sp, np.zeros((3, 2, 3)), SOURCES)
    with pytest.raises(DataError):
        window_spectra(stereo, SR, windows, remove=[0.0])
    with pytest.raises(DataError):
        extract(stereo, SR, windows, [0.0])


def test_a_moving_source_is_heard_where_it_is_in_each_window() -> None:
    """Per-window points (V, n, 3): each window is scored at its own points (the same as scoring it alone), and
    a walking source answers at its positions over time far better than at its mean position."""
    V = 6
    mics = _rig(V)
    path = np.stack([np.full(V, 4.5), np.linspace(0.8, 4.2, V), np.full(V, 1.0)], axis=1)
    times = np.arange(V) + 0.5
    stereo = simulate_moving([(path, _noise(V + 1, 7))], mics[:, 0], mics[:, 1], ROOM, 0.1, SR, times=times)
    sp = window_spectra(stereo, SR, [Segment(float(v), float(v + 1)) for v in range(V)])
    moving = window_responses(sp, mics, path[:, None, :])
    assert moving.shape == (V, 1)
    for v in range(V):  # the same as the static call's row for that window's own point
        assert moving[v, 0] == pytest.approx(window_responses(sp, mics, path[v])[v, 0])
    still = window_responses(sp, mics, path.mean(axis=0))
    assert np.nanmean(moving) > np.nanmean(still) + 0.2
    with pytest.raises(DataError, match="windows"):
        window_responses(sp, mics, path[:3, None, :])
