"""Spatial audio of the scene generator: exact direct-path delays, TDoA sign convention, reverberant TDoA,
moving-rig blending without clicks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from soundmask.errors import ConfigError
from soundmask.synth.acoustics import (
    SPEED_OF_SOUND,
    geometric_tdoa,
    mic_pair,
    room_parameters,
    simulate_free_field,
    simulate_moving,
    simulate_static,
)

SR = 44100
try:
    import pyroomacoustics  # noqa: F401

    HAVE_PRA = True
except ImportError:  # pragma: no cover - a declared dependency; the free-field model still gets tested
    HAVE_PRA = False
needs_pra = pytest.mark.skipif(not HAVE_PRA, reason="pyroomacoustics is not installed (pip install pyroomacoustics)")
ROOM = (6.0, 5.0, 3.0)
MAX_TAU = 0.25 / SPEED_OF_SOUND  # a little more than spacing / c


def _gcc_phat(left: np.ndarray, right: np.ndarray, sr: int, max_tau: float | None = None, interp: int = 16) -> float:
    """tau = t_right − t_left (s) by GCC-PHAT with ``interp``× upsampled correlation and a parabolic peak fit.

    Test-only (the front-end's own estimator lives in ``soundmask.audio.tdoa``).
    """
    n = len(left) + len(right)
    N = 1 << (n - 1).bit_length()
    G = np.fft.rfft(right, N) * np.conj(np.fft.rfft(left, N))
    G /= np.abs(G) + 1e-15
    cc = np.fft.irfft(G, interp * N)
    ms = interp * N // 2
    if max_tau is not None:
        ms = min(int(interp * sr * max_tau) + 1, ms)
    cc = np.concatenate((cc[-ms:], cc[: ms + 1]))
    i = int(np.argmax(np.abs(cc)))
    d = 0.0
    if 0 < i < len(cc) - 1:
        y0, y1, y2 = cc[i - 1], cc[i], cc[i + 1]
        den = y0 - 2 * y1 + y2
        if den != 0:
            d = 0.5 * (y0 - y2) / den
    return (i - ms + d) / (interp * sr)


def _random_rig(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random source and a horizontal 0.2 m mic pair, all ≥ 0.5 m from the walls and ≥ 0.5 m apart."""
    lo, hi = np.array([0.5, 0.5, 0.5]), np.array(ROOM) - 0.5
    while True:
        src = rng.uniform(lo, hi)
        centre = rng.uniform(lo, hi)
        if np.linalg.norm(src - centre) > 0.5:
            break
    a = rng.uniform(0, 2 * np.pi)
    half = 0.1 * np.array([np.cos(a), np.sin(a), 0.0])
    return src, centre - half, centre + half


# ------------------------------------------------------------------------------------------- geometry
def test_mic_pair_lies_on_camera_x_axis_and_tdoa_sign_convention():
    # camera at (1, 2, 1.5) looking along world +y (OpenCV: x right, y down, z forward) in a z-up world
    c2w = np.eye(4)
    c2w[:3, :3] = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], float)  # columns: cam x, y, z in world
    c2w[:3, 3] = [1.0, 2.0, 1.5]
    left, right = mic_pair(c2w)
    np.testing.assert_allclose(left, [0.9, 2.0, 1.5])
    np.testing.assert_allclose(right, [1.1, 2.0, 1.5])
    src_left_of_camera = np.array([0.0, 4.0, 1.5])
    assert geometric_tdoa(src_left_of_camera, left, right) > 0  # reaches the left mic first → positive
    assert geometric_tdoa([2.0, 4.0, 1.5], left, right) < 0
    assert abs(geometric_tdoa([1.0, 4.0, 1.5], left, right)) < 1e-12


@needs_pra
def test_room_parameters():
    assert room_parameters(ROOM, 0.0) == (1.0, 0)
    e, order = room_parameters(ROOM, 0.3)
    assert 0 < e < 1 and order > 5
    assert room_parameters(ROOM, 0.3, max_order=8)[1] == 8
    e, order = room_parameters((30, 30, 10), 0.05)  # too short for the room: fully absorbing, not an error
    assert e == 1.0


# --------------------------------------------------------------------------------- exact direct path
@pytest.mark.parametrize("model", [pytest.param("room", marks=needs_pra), "free_field"])
def test_direct_path_delay_gain_and_channel_order(model):
    src = np.array([1.3, 3.7, 1.2])
    left, right = np.array([3.0, 1.0, 1.5]), np.array([3.2, 1.0, 1.5])
    n = 4096
    x = np.zeros(n)
    x[1000] = 1.0
    y = (
        simulate_static([(src, x)], left, right, ROOM, 0.0, SR)
        if model == "room"
        else simulate_free_field([(src, x)], left, right, SR)
    )
    assert y.shape == (2, n) and y.dtype == np.float32
    for ch, mic in enumerate((left, right)):
        r = np.linalg.norm(src - mic)
        up = 64  # band-limited (FFT) upsampling; the pulse is symmetric, so its maximum is the arrival time
        z = np.fft.irfft(np.fft.rfft(y[ch].astype(float)), n * up) * up
        i = int(np.argmax(z))
        a, b, c = z[i - 1 : i + 2]
        peak = (i + 0.5 * (a - c) / (a - 2 * b + c)) / up
        assert abs(peak - (1000 + r / SPEED_OF_SOUND * SR)) < 0.06, (model, ch, peak)  # < 1.4 µs
        # 1/r gain: the energy of a band-limited unit impulse delayed by a fraction is ≤ 1
        assert 0.8 / r < np.sqrt(np.sum(y[ch].astype(float) ** 2)) < 1.02 / r
    assert np.argmax(y[0]) < np.argmax(y[1])  # the source is on the left (smaller x): channel 0 hears it first


@needs_pra
@given(seed=st.integers(0, 2**31 - 1))
def test_anechoic_tdoa_matches_geometry(seed):
    rng = np.random.default_rng(seed)
    src, left, right = _random_rig(rng)
    x = rng.standard_normal(SR // 4)
    true = geometric_tdoa(src, left, right)
    for y in (
        simulate_static([(src, x)], left, right, ROOM, 0.0, SR),
        simulate_free_field([(src, x)], left, right, SR),
    ):
        est = _gcc_phat(y[0], y[1], SR, MAX_TAU)
        assert abs(est - true) < 10e-6, (est, true)


@needs_pra
def test_reverberant_tdoa_median_error_is_small():
    rng = np.random.default_rng(1)
    errs = []
    for _ in range(8):
        src, left, right = _random_rig(rng)
        x = rng.standard_normal(SR // 2)
        y = simulate_static([(src, x)], left, right, ROOM, 0.3, SR)
        errs.append(abs(_gcc_phat(y[0], y[1], SR, MAX_TAU) - geometric_tdoa(src, left, right)))
    # a strong early reflection can win the GCC-PHAT peak now and then (gross error): bound the median and the rate
    assert np.median(errs) < 10e-6, np.array(errs) * 1e6
    assert np.mean(np.array(errs) < 20e-6) >= 0.75, np.array(errs) * 1e6


@needs_pra
def test_reverb_adds_energy_and_output_length_follows_longest_signal(rng):
    src, left, right = _random_rig(rng)
    x = rng.standard_normal(SR // 4)
    dry = simulate_static([(src, x)], left, right, ROOM, 0.0, SR)
    wet = simulate_static([(src, x), (src + 0.1, np.zeros(SR // 2))], left, right, ROOM, 0.4, SR)
    assert wet.shape == (2, SR // 2) and np.abs(wet[:, SR // 4 + 2000 :]).max() > 1e-3  # the tail outlasts x
    assert np.sum(wet[:, : SR // 4].astype(float) ** 2) > 1.2 * np.sum(dry.astype(float) ** 2)
    with pytest.raises(ConfigError, match="outside the room"):
        simulate_static([(np.array([7.0, 1.0, 1.0]), x)], left, right, ROOM, 0.3, SR)
    with pytest.raises(ConfigError):
        simulate_static([], left, right, ROOM, 0.3, SR)


# ----------------------------------------------------------------------------------------------- moving
def _moving_rig(k: int, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A rig that walks along x and turns (yaw) over ``times``: (K, 3) left and right positions."""
    u = times / times[-1]
    centre = np.stack([1.5 + 3.0 * u, 1.2 + 0.4 * u, np.full_like(u, 1.5)], axis=1)
    yaw = np.deg2rad(-40 + 80 * u)
    half = 0.1 * np.stack([np.cos(yaw), np.sin(yaw), np.zeros_like(u)], axis=1)
    return centre - half, centre + half


@needs_pra
def test_moving_rig_blend_has_no_clicks():
    times = np.arange(6, dtype=float) * 0.25
    left, right = _moving_rig(6, times)
    src = np.array([3.0, 4.2, 1.2])
    n = int(1.5 * SR)
    f = 500.0
    x = np.sin(2 * np.pi * f * np.arange(n) / SR)
    smooth = simulate_moving([(src, x)], left, right, ROOM, 0.0, SR, times, crossfade=0.02)
    hard = simulate_moving([(src, x)], left, right, ROOM, 0.0, SR, times, crossfade=0.0)
    slope = 2 * np.pi * f / SR  # the largest sample-to-sample step of a unit sine
    start = int(0.02 * SR)  # skip the onset of the sine (propagation delay)
    for ch in range(2):
        amp = np.abs(smooth[ch, start:]).max()
        jump = np.abs(np.diff(smooth[ch, start:].astype(float))).max()
        assert jump < 1.15 * slope * amp, (jump, slope * amp)
        assert np.abs(np.diff(hard[ch, start:].astype(float))).max() > 2 * slope * amp  # the test can see clicks


@needs_pra
@pytest.mark.parametrize("rt60", [0.0, 0.3])
def test_moving_rig_per_block_tdoa_follows_geometry(rt60):
    rng = np.random.default_rng(7)
    times = np.arange(5, dtype=float) * 0.4  # geometry per "frame"; pieces are cut halfway between frames
    left, right = _moving_rig(5, times)
    src = np.array([3.0, 4.2, 1.2])
    n = int(2.0 * SR)
    x = rng.standard_normal(n)
    y = simulate_moving([(src, x)], left, right, ROOM, rt60, SR, times, crossfade=0.02)
    assert y.shape == (2, n)
    errs = []
    for k, t in enumerate(times):
        a = int(max(0.0, t - 0.15) * SR) + int(0.03 * SR)
        b = int(min(n / SR, t + 0.15) * SR) - int(0.02 * SR)
        est = _gcc_phat(y[0, a:b], y[1, a:b], SR, MAX_TAU)
        errs.append(abs(est - geometric_tdoa(src, left[k], right[k])))
    true_span = np.ptp([geometric_tdoa(src, left[k], right[k]) for k in range(5)])
    assert true_span > 200e-6  # the geometry really changes
    assert np.median(errs) < (10e-6 if rt60 == 0 else 20e-6), np.array(errs) * 1e6


@needs_pra
def test_moving_with_block_interpolation_and_static_equivalence(rng):
    src, left, right = _random_rig(rng)
    x = rng.standard_normal(SR // 2)
    static = simulate_static([(src, x)], left, right, ROOM, 0.2, SR)
    times = np.array([0.0, 0.25, 0.5])
    same = simulate_moving([(np.stack([src] * 3), x)], left, right, ROOM, 0.2, SR, times, block=0.1)
    np.testing.assert_allclose(same, static, atol=1e-5)  # constant geometry: crossfades of identical pieces
    with pytest.raises(ConfigError, match="times"):
        simulate_moving([(np.stack([src] * 3), x)], left, right, ROOM, 0.2, SR)


def test_free_field_moving_source_follows_geometry_and_matches_static_model(rng):
    left, right = np.array([2.9, 1.0, 1.5]), np.array([3.1, 1.0, 1.5])
    n = SR
    # band-limited (< 0.35 fs) noise with a smooth onset: the 64-tap windowed sinc and the ideal FFT delay agree
    from scipy import signal

    x = signal.sosfilt(signal.butter(8, 0.35 * SR, fs=SR, output="sos"), rng.standard_normal(n))
    x *= np.minimum(1.0, np.arange(n) / 2000.0)
    src = np.array([1.0, 3.0, 1.2])
    static = simulate_free_field([(src, x)], left, right, SR)
    as_moving = simulate_free_field([(np.stack([src, src]), x)], left, right, SR, times=[0.0, 1.0])
    core = slice(200, n - 200)
    np.testing.assert_allclose(as_moving[:, core], static[:, core], atol=2e-3 * np.abs(static).max())
    # a source walking from left to right in front of the rig: TDoA goes from positive to negative
    path = np.array([[1.0, 3.0, 1.2], [5.0, 3.0, 1.2]])
    y = simulate_free_field([(path, x)], left, right, SR, times=[0.0, 1.0])
    assert _gcc_phat(y[0, :4000], y[1, :4000], SR, MAX_TAU) > 100e-6  # starts on the left: left mic hears it first
    assert _gcc_phat(y[0, -4000:], y[1, -4000:], SR, MAX_TAU) < -100e-6
    # exact retarded-time delays: clicks emitted at t_e arrive at t_e + |path(t_e) − mic| / c
    clicks = np.zeros(n)
    emit = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
    clicks[np.round(emit * SR).astype(int)] = 1.0
    y = simulate_free_field([(path, clicks)], left, right, SR, times=[0.0, 1.0])
    for ch, mic in enumerate((left, right)):
        for te in np.round(emit * SR) / SR:
            arrival = (te + np.linalg.norm(path[0] + (path[1] - path[0]) * te - mic) / SPEED_OF_SOUND) * SR
            a = int(arrival) - 64
            seg = y[ch, a : a + 128].astype(float)
            up = 64
            z = np.fft.irfft(np.fft.rfft(seg), 128 * up) * up
            i = int(np.argmax(z))
            peak = a + (i + 0.5 * (z[i - 1] - z[i + 1]) / (z[i - 1] - 2 * z[i] + z[i + 1])) / up
            assert abs(peak - arrival) < 0.05, (ch, te, peak, arrival)  # < 1.2 µs
