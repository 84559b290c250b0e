"""Stereo time delay: GCC-PHAT sign convention and accuracy against the geometry of simulated camera rigs
(anechoic and RT60 0.3 s, broadband and band-limited sources), directions, tracking a moving rig, speed."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soundmask.audio.tdoa import (
    direction_cone,
    direction_from_tdoa,
    direction_vector,
    gcc_phat,
    gcc_phat_curve,
    segment_tdoa,
    steered_response,
    tdoa_from_direction,
    track_tdoa,
)
from soundmask.audio.types import Segment
from soundmask.errors import DataError
from soundmask.synth.acoustics import (
    SPEED_OF_SOUND,
    geometric_tdoa,
    mic_pair,
    simulate_free_field,
    simulate_moving,
    simulate_static,
)

pytest.importorskip("pyroomacoustics")

SR = 44100
ROOM = (6.0, 5.0, 3.0)
SPACING = 0.2
US = 1e-6


@pytest.fixture(scope="module")
def library():
    from soundmask.synth.sounds import SoundLibrary

    return SoundLibrary()


def _delayed(x: np.ndarray, d: float) -> np.ndarray:
    """``x`` delayed by ``d`` samples (band-limited: FFT phase shift with zero padding)."""
    n = 2 * len(x)
    X = np.fft.rfft(x, n) * np.exp(-2j * np.pi * np.fft.rfftfreq(n) * d)
    return np.fft.irfft(X, n)[: len(x)]


def _camera(rng: np.random.Generator) -> np.ndarray:
    """A camera-to-world pose (OpenCV axes) at a random spot and heading, level, in the room (z up)."""
    yaw = rng.uniform(0, 2 * np.pi)
    fwd = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    right = np.array([np.sin(yaw), -np.cos(yaw), 0.0])
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2] = right, [0.0, 0.0, -1.0], fwd
    c2w[:3, 3] = [3.0 + rng.uniform(-0.4, 0.4), 2.5 + rng.uniform(-0.4, 0.4), 1.5]
    return c2w


def _scene(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """(source, left mic, right mic, camera forward, true azimuth): a source 1-2 m in front within ±60°."""
    c2w = _camera(rng)
    left, right = mic_pair(c2w, SPACING)
    az = rng.uniform(-np.pi / 3, np.pi / 3)  # positive: towards the left mic
    src = c2w[:3, 3] + rng.uniform(1.0, 2.0) * (np.cos(az) * c2w[:3, 2] - np.sin(az) * c2w[:3, 0])
    src[2] += rng.uniform(-0.2, 0.2)
    mid, axis = 0.5 * (left + right), (left - right) / SPACING
    v = src - mid
    return src, left, right, c2w[:3, 2], float(np.arcsin(v @ axis / np.linalg.norm(v)))


def _signal(kind: str, rng: np.random.Generator, library, seconds: float = 1.0) -> np.ndarray:
    if kind == "noise":
        return rng.standard_normal(int(seconds * SR))
    kinds = {"person": ["speech", "recording"], "piano": ["gm", "noise"], "fan": None}[kind]
    return library.render(library.choose(kind, rng, kinds=kinds), seconds, SR, rng)


# ----------------------------------------------------------------------------------------- sign convention
def test_sign_convention_left_first_is_positive(rng):
    x = rng.standard_normal(SR // 2)
    late = np.concatenate([np.zeros(5), x[:-5]])  # exactly 5 samples later
    assert gcc_phat(x, late, SR) == pytest.approx(5 / SR, abs=0.01 / SR)  # right hears it later: left first → +
    assert gcc_phat(late, x, SR) == pytest.approx(-5 / SR, abs=0.01 / SR)
    (t,) = segment_tdoa(np.stack([x, late]), SR)
    assert t.tau == pytest.approx(5 / SR, abs=0.01 / SR) and t.confidence > 0.95
    # a source on the camera's left, simulated: positive tau, positive azimuth
    c2w = np.eye(4)
    c2w[:3, :3] = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], float)
    c2w[:3, 3] = [3.0, 1.0, 1.5]
    left, right = mic_pair(c2w)
    y = simulate_free_field([(np.array([1.5, 3.0, 1.5]), x)], left, right, SR)
    (t,) = segment_tdoa(y, SR, spacing=SPACING)
    assert t.tau > 100 * US and t.azimuth > 0
    assert t.tau == pytest.approx(geometric_tdoa([1.5, 3.0, 1.5], left, right), abs=1 * US)


@settings(max_examples=30)
@given(delay=st.one_of(st.integers(-25, 25).map(float), st.floats(-25.0, 25.0)), seed=st.integers(0, 2**16))
def test_integer_and_fractional_delays_on_white_noise(delay, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(8192)
    y = _delayed(x, delay)
    assert abs(gcc_phat(x, y, SR) * SR - delay) < 0.02
    assert abs(gcc_phat(x, y, SR, max_tau=30 / SR) * SR - delay) < 0.02
    (t,) = segment_tdoa(np.stack([x, y]), SR, frame=0.05, max_tau=30 / SR)
    assert abs(t.tau * SR - delay) < 0.05 and t.confidence > 0.9


def test_curve_matches_estimate_and_is_normalised(rng):
    x = rng.standard_normal(SR // 4)
    y = _delayed(x, 3.3)
    lags, cc = gcc_phat_curve(x, y, SR, max_tau=10 / SR)
    assert lags[0] == pytest.approx(-10 / SR, abs=1 / (16 * SR)) and np.all(np.diff(lags) > 0)
    assert abs(lags[np.argmax(cc)] * SR - 3.3) <= 1 / 16 + 1e-9
    assert 0.95 < cc.max() <= 1.0 + 1e-6
    assert abs(gcc_phat(x, y, SR, max_tau=10 / SR) * SR - 3.3) < 0.01


def test_confidence_separates_coherent_from_unrelated_channels(rng):
    x = rng.standard_normal(SR)
    (same,) = segment_tdoa(np.stack([x, _delayed(x, 4.0)]), SR, spacing=SPACING)
    (unrelated,) = segment_tdoa(np.stack([x, rng.standard_normal(SR)]), SR, spacing=SPACING)
    assert same.confidence > 0.95 and unrelated.confidence < 0.15


# ---------------------------------------------------------------------------------- simulated camera rigs
def _errors(kind: str, rt60: float, library, seeds: range, model: str = "room") -> tuple[np.ndarray, np.ndarray]:
    """|tau − geometric tdoa| (s) and |azimuth − true azimuth| (degrees) over random rigs."""
    errs, az_errs = [], []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        src, left, right, _, az = _scene(rng)
        x = _signal(kind, rng, library)
        y = (
            simulate_free_field([(src, x)], left, right, SR)
            if model == "free"
            else simulate_static([(src, x)], left, right, ROOM, rt60, SR)
        )
        (t,) = segment_tdoa(y, SR, spacing=SPACING)
        errs.append(abs(t.tau - geometric_tdoa(src, left, right)))
        az_errs.append(abs(np.degrees(t.azimuth - az)))
    return np.array(errs), np.array(az_errs)


@pytest.mark.parametrize("kind", ["noise", "person"])
@pytest.mark.parametrize(("model", "rt60"), [("free", 0.0), ("room", 0.0), ("room", 0.3)])
def test_broadband_tdoa_and_direction_match_geometry(library, kind, model, rt60):
    errs, az = _errors(kind, rt60, library, range(10), model)
    assert np.median(errs) <= 10 * US, errs / US
    assert np.median(az) <= 3.0, az
    if rt60 == 0:
        assert errs.max() <= 5 * US and az.max() <= 0.5, (errs / US, az)  # exact up to the far-field approximation
    else:
        assert np.mean(errs <= 20 * US) >= 0.8, errs / US  # a reflection may win now and then, rarely


@pytest.mark.parametrize("kind", ["fan", "piano"])
@pytest.mark.parametrize("rt60", [0.0, 0.3])
def test_band_limited_sources(library, kind, rt60):
    errs, az = _errors(kind, rt60, library, range(8))
    assert np.median(errs) <= (5 if rt60 == 0 else 10) * US, errs / US
    assert np.median(az) <= 3.0, az


def test_band_restriction_beats_plain_phat_with_microphone_noise(library):
    """A fan (energy below ~1.5 kHz) heard with white microphone noise 20 dB down: plain PHAT gives the noise-only
    bins as much weight as the fan's, the band-limited weighting does not."""
    plain, banded = [], []
    for seed in range(8):
        rng = np.random.default_rng(seed)
        src, left, right, _, _ = _scene(rng)
        y = simulate_static([(src, _signal("fan", rng, library))], left, right, ROOM, 0.0, SR)
        y = y + np.sqrt(np.mean(y**2) / 100) * rng.standard_normal(y.shape)
        true = geometric_tdoa(src, left, right)
        plain.append(abs(segment_tdoa(y, SR, spacing=SPACING, band=(0, SR), floor=0.0)[0].tau - true))
        banded.append(abs(segment_tdoa(y, SR, spacing=SPACING)[0].tau - true))
    assert np.median(banded) <= 5 * US and np.median(banded) < 0.7 * np.median(plain), (banded, plain)


def test_segments_get_their_own_source(rng):
    """Two sources take turns; each segment's delay is its own source's, a silent segment has none."""
    c2w = _camera(rng)
    left, right = mic_pair(c2w)
    a, b = c2w[:3, 3] + 1.5 * c2w[:3, 2] - 0.8 * c2w[:3, 0], c2w[:3, 3] + 1.5 * c2w[:3, 2] + 0.8 * c2w[:3, 0]
    n = SR
    xa = np.concatenate([rng.standard_normal(n), np.zeros(2 * n)])
    xb = np.concatenate([np.zeros(n), rng.standard_normal(n), np.zeros(n)])
    y = simulate_static([(a, xa), (b, xb)], left, right, ROOM, 0.2, SR)
    segs = [Segment(0.05, 0.95), Segment(1.05, 1.95), Segment(2.3, 2.9)]
    ta, tb, silent = segment_tdoa(y, SR, segs, spacing=SPACING)
    assert abs(ta.tau - geometric_tdoa(a, left, right)) < 10 * US and ta.tau > 0
    assert abs(tb.tau - geometric_tdoa(b, left, right)) < 10 * US and tb.tau < 0
    assert np.isnan(silent.tau) and silent.confidence == 0.0
    assert (ta.start, ta.end) == (0.05, 0.95)
    assert segment_tdoa(y, SR, []) == []


def test_bad_input():
    with pytest.raises(DataError, match="mono"):
        segment_tdoa(np.zeros(1000), SR)
    with pytest.raises(DataError, match="NaN"):
        segment_tdoa(np.full((2, 1000), np.nan), SR)
    with pytest.raises(DataError, match="NaN"):
        gcc_phat(np.ones(10), np.array([np.inf] * 10), SR)


# ---------------------------------------------------------------------------------------------- directions
def test_direction_conversions():
    az = np.linspace(-1.4, 1.4, 9)
    tau = tdoa_from_direction(az, SPACING)
    np.testing.assert_allclose(direction_from_tdoa(tau, SPACING), az, atol=1e-12)
    assert direction_from_tdoa(SPACING / SPEED_OF_SOUND, SPACING) == pytest.approx(np.pi / 2)
    assert direction_from_tdoa(2 * SPACING / SPEED_OF_SOUND, SPACING) == pytest.approx(np.pi / 2)  # clipped
    assert direction_from_tdoa(1e-4) > 0  # positive tau (left first) → towards the left


def test_direction_cone_and_vector(rng):
    for _ in range(20):
        src, left, right, forward, _ = _scene(rng)
        src[2] = 1.5  # in the horizontal plane of the pair and the viewing axis: the cone ambiguity is resolved
        tau = geometric_tdoa(src, left, right)
        cone = direction_cone(tau, left, right)
        assert cone.angle == pytest.approx(np.pi / 2 - direction_from_tdoa(tau, SPACING), abs=1e-9)
        assert np.degrees(cone.angle_error(src)) < 0.5  # far-field approximation at ≥ 1 m
        v = direction_vector(tau, left, right, forward)
        true = (src - cone.apex) / np.linalg.norm(src - cone.apex)
        assert np.linalg.norm(v) == pytest.approx(1.0)
        assert np.degrees(np.arccos(np.clip(v @ true, -1, 1))) < 0.5


# ------------------------------------------------------------------------------------------------ tracking
def _turning_rig(times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    u = times / times[-1]
    centre = np.stack([2.0 + u, np.full_like(u, 1.5), np.full_like(u, 1.5)], axis=1)
    yaw = np.deg2rad(-50 + 100 * u)
    half = 0.5 * SPACING * np.stack([np.cos(yaw), np.sin(yaw), np.zeros_like(u)], axis=1)
    return centre - half, centre + half


@pytest.mark.parametrize("rt60", [None, 0.3])
def test_track_follows_a_turning_camera_across_silence(rt60):
    rng = np.random.default_rng(3)
    seconds = 4.0
    times = np.linspace(0, seconds, 41)
    left, right = _turning_rig(times)
    src = np.array([2.5, 4.0, 1.4])
    x = rng.standard_normal(int(seconds * SR))
    x[int(1.5 * SR) : int(2.3 * SR)] = 0  # longer than a window: some windows hear nothing
    y = (
        simulate_free_field([(src, x)], left, right, SR, times)
        if rt60 is None
        else simulate_moving([(src, x)], left, right, ROOM, rt60, SR, times, block=0.05)
    )
    tr = track_tdoa(y, SR)
    lt = np.stack([np.interp(tr.times, times, left[:, k]) for k in range(3)], axis=1)
    rt = np.stack([np.interp(tr.times, times, right[:, k]) for k in range(3)], axis=1)
    err = np.abs(tr.tau - geometric_tdoa(src, lt, rt))
    assert np.isnan(tr.raw_tau).any() and np.all(tr.confidence[np.isnan(tr.raw_tau)] == 0)
    assert np.isfinite(tr.tau).all() and np.all((tr.confidence >= 0) & (tr.confidence <= 1))
    median, p90 = (3 * US, 9 * US) if rt60 is None else (10 * US, 25 * US)
    assert np.median(err) <= median and np.percentile(err, 90) <= p90, err / US
    raw_err = np.abs(tr.raw_tau - geometric_tdoa(src, lt, rt))
    assert np.nanmax(err) < np.nanmax(raw_err)  # smoothing removes the half-silent windows' bias


# ----------------------------------------------------------------------------------------------------- speed
@pytest.mark.slow
def test_front_end_speed_60s_stereo(tmp_path, library):
    """load + chunk + per-segment TDoA of 60 s of 44.1 kHz stereo; prints × real time (target ≥ 100×)."""
    from soundmask.audio.chunking import chunk
    from soundmask.audio.io import load_audio
    from soundmask.data.io import write_audio
    from soundmask.data.types import SoundObject
    from soundmask.synth.sounds import make_timeline, render_tracks

    rng = np.random.default_rng(0)
    seconds = 60.0
    objects = [SoundObject(i, c) for i, c in enumerate(["person", "piano", "dog"])]
    events = make_timeline(objects, seconds, rng, p_silent=0.0)
    tracks, events = render_tracks(library, objects, events, seconds, SR, rng)
    left, right = np.array([2.9, 1.0, 1.5]), np.array([3.1, 1.0, 1.5])
    where = {0: [1.5, 3.0, 1.5], 1: [3.0, 3.5, 1.2], 2: [4.5, 2.5, 1.0]}
    y = simulate_free_field([(np.array(where[k]), tr) for k, tr in tracks.items()], left, right, SR)
    path = write_audio(tmp_path / "long.wav", y, SR)
    for speech in (False, True):
        chunk(y[:, :SR], SR, speech=speech)  # warm-up (silero model load)
        best = np.inf
        for _ in range(3):
            t0 = time.perf_counter()
            audio, sr = load_audio(path)
            segs = chunk(audio, sr, speech=speech)
            segment_tdoa(audio, sr, segs, spacing=SPACING)
            best = min(best, time.perf_counter() - t0)
        print(
            f"\nfront end, silero-vad {'on' if speech else 'off'}: {seconds / best:.0f}x real time "
            f"({best * 1e3:.0f} ms for {seconds:.0f} s, {len(segs)} segments)"
        )
        if not speech:
            assert seconds / best >= 100


def test_steered_response_finds_both_of_two_simultaneous_sources(rng):
    """SRP-PHAT of one pair: two sources sounding at once each keep a correlation peak at their own delay, which
    the single GCC-PHAT peak cannot say; a position between them (no source) gets almost nothing."""
    c2w = _camera(rng)
    left, right = mic_pair(c2w)
    ahead, side = c2w[:3, 2], c2w[:3, 0]
    a, b, between = (c2w[:3, 3] + 1.5 * ahead + k * side for k in (-0.9, 0.9, 0.2))
    n = SR
    y = simulate_static(
        [
            (a, rng.standard_normal(2 * n) * np.r_[np.ones(n), np.zeros(n)]),
            (b, rng.standard_normal(2 * n) * np.r_[np.ones(n), np.zeros(n)]),
        ],
        left,
        right,
        ROOM,
        0.2,
        SR,
    )
    segs = [Segment(0.05, 0.95), Segment(1.3, 1.9)]
    delays = [np.array([geometric_tdoa(p, left, right) for p in (a, b, between)]), np.zeros(2)]
    (ra, rb, rc), silent = steered_response(y, SR, segs, delays)
    assert ra > 0.1 and rb > 0.1 and min(ra, rb) > 0.5 * max(ra, rb) and rc < 0.25 * min(ra, rb)
    assert np.isnan(silent).all() and silent.shape == (2,)
    peak = segment_tdoa(y, SR, segs[:1])[0]
    (at_peak,) = steered_response(y, SR, segs[:1], [np.array([[peak.tau]])])
    assert at_peak.shape == (1, 1) and at_peak[0, 0] == pytest.approx(peak.confidence, abs=0.02)
    with pytest.raises(DataError, match="delay sets"):
        steered_response(y, SR, segs, delays[:1])
