"""Spatial stereo audio for the synthetic scenes: a two-microphone camera rig in a shoebox room.

Conventions
-----------
* World coordinates in metres (the scenes are z-up). The room is the box ``[origin, origin + room_size]``
  (``room_origin`` defaults to ``(0, 0, 0)``); sources and microphones must lie inside it.
* Output is ``float32`` ``(2, S)``: **channel 0 = LEFT microphone**, channel 1 = right. ``S`` is the length of the
  longest source signal: output sample ``n`` is time ``n / sr`` of the same clock as the source signals (a
  source signal's sample ``n`` is *emitted* at ``n / sr``; it arrives ``r / c`` later). Reverberation tails past
  ``S`` are cut.
* Gain: the direct path of a source at distance ``r`` is scaled by ``1 / r`` (unit gain at 1 m), in the room
  simulation (pyroomacoustics image sources use ``1 / r``) and in the free-field model alike.
* Time difference of arrival: ``tau = t_right − t_left`` = ``(|src − mic_right| − |src − mic_left|) / c``;
  **positive when the sound reaches the LEFT microphone first** (a source on the camera's left).
  :func:`geometric_tdoa` computes it.
* The rig: :func:`mic_pair` puts the two microphones ``spacing`` (0.2 m) apart on the camera's x axis (OpenCV:
  x right, y down, z forward), centred on the camera centre; left = centre − spacing/2 · x.

Models
------
* :func:`simulate_static` — pyroomacoustics ``ShoeBox`` image sources; ``inverse_sabine`` turns ``rt60`` into
  wall absorption and image order; ``rt60 <= 0`` is anechoic (order 0, direct path only). The fractional-delay
  offset of pyroomacoustics (``frac_delay_length // 2`` samples) is removed so that direct-path delays are exact.
* :func:`simulate_moving` — moving sources and/or a moving rig: piecewise-static room simulations per block
  (geometry of the nearest given time, or linearly interpolated per ``block`` seconds), blended with
  complementary raised-cosine crossfades, so there are no clicks.
* :func:`simulate_free_field` — 1/r gain and exact fractional delays (FFT phase shift for static geometry,
  Kaiser-windowed sinc with per-sample, retarded-time delays for moving geometry, Doppler included). Fast and
  exact: the reference for anechoic checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import signal

from soundmask.constants import MIC_SPACING, SPEED_OF_SOUND
from soundmask.errors import ConfigError

__all__ = [
    "MIC_SPACING",
    "SPEED_OF_SOUND",
    "geometric_tdoa",
    "mic_pair",
    "room_parameters",
    "simulate_free_field",
    "simulate_moving",
    "simulate_static",
]

_MIN_DISTANCE = 0.05  # m: closer than this the 1/r gain is clamped (free field)

SourceSpec = tuple[Any, Any]  # (position (3,) or (K, 3), mono signal (S,))


# -------------------------------------------------------------------------------------------- geometry
def mic_pair(camera_to_world: np.ndarray, spacing: float = MIC_SPACING) -> tuple[np.ndarray, np.ndarray]:
    """(left, right) microphone positions of a camera rig: ``spacing`` apart on the camera's x axis (OpenCV)."""
    m = np.asarray(camera_to_world, dtype=np.float64)
    centre, x_axis = m[:3, 3], m[:3, 0] / np.linalg.norm(m[:3, 0])
    return centre - 0.5 * spacing * x_axis, centre + 0.5 * spacing * x_axis


def geometric_tdoa(source: Any, mic_left: Any, mic_right: Any, c: float = SPEED_OF_SOUND) -> np.ndarray | float:
    """``t_right − t_left`` in seconds (positive: the left microphone hears it first). Broadcasts over (..., 3)."""
    s, left, right = (np.asarray(v, dtype=np.float64) for v in (source, mic_left, mic_right))
    tau = (np.linalg.norm(s - right, axis=-1) - np.linalg.norm(s - left, axis=-1)) / c
    return float(tau) if np.ndim(tau) == 0 else tau


def room_parameters(
    room_size: Sequence[float] | np.ndarray, rt60: float, c: float = SPEED_OF_SOUND, max_order: int | None = None
) -> tuple[float, int]:
    """(energy absorption, image-source order) for ``rt60`` via Sabine (pyroomacoustics ``inverse_sabine``).

    ``rt60 <= 0`` → anechoic ``(1.0, 0)``. A reverberation time too short for the room (Sabine absorption > 1)
    is clamped to fully absorbing walls with the image order Sabine gives. ``max_order`` caps the order.
    """
    import pyroomacoustics as pra

    if rt60 <= 0:
        return 1.0, 0
    try:
        e_abs, order = pra.inverse_sabine(float(rt60), [float(v) for v in room_size], c=c)
    except ValueError:
        e_abs, order = 1.0, 1
    order = int(order) if max_order is None else int(min(order, max_order))
    return float(min(max(e_abs, 1e-3), 1.0)), max(order, 0)


def _check_inside(points: np.ndarray, size: np.ndarray, what: str) -> None:
    p = np.asarray(points).reshape(-1, 3)
    if np.any(p <= 0.0) or np.any(p >= size):
        bad = p[np.any((p <= 0) | (p >= size), axis=1)][0]
        raise ConfigError(
            f"{what} at {np.round(bad, 3).tolist()} (room coordinates) is outside the room "
            f"{np.round(size, 3).tolist()}",
            fix="move it inside the room or enlarge the room",
        )


def _as_signals(sources: Sequence[SourceSpec]) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    if len(sources) == 0:
        raise ConfigError("no sound sources to simulate", fix="pass at least one (position, signal) pair")
    pos, sig = [], []
    for k, item in enumerate(sources):
        if len(item) != 2:
            raise ConfigError(f"source {k} must be a (position, signal) pair")
        p = np.asarray(item[0], dtype=np.float64)
        x = np.asarray(item[1], dtype=np.float64).reshape(-1)
        if p.shape[-1] != 3 or p.ndim not in (1, 2):
            raise ConfigError(f"source {k}: position must be (3,) or (K, 3), got {p.shape}")
        if not np.isfinite(x).all() or not np.isfinite(p).all():
            raise ConfigError(f"source {k}: position or signal has NaN/inf values")
        pos.append(p)
        sig.append(x)
    return pos, sig, max(len(x) for x in sig)


# ---------------------------------------------------------------------------------------- room (static)
def _rirs(
    src_pos: Sequence[np.ndarray], mics: np.ndarray, size: np.ndarray, e_abs: float, order: int, sr: int, c: float
) -> list[list[np.ndarray]]:
    """``rir[m][s]`` with pyroomacoustics' global fractional-delay offset removed (sample 0 = emission)."""
    import pyroomacoustics as pra

    room = pra.ShoeBox(size.tolist(), fs=sr, materials=pra.Material(e_abs), max_order=order, air_absorption=False)
    room.c = c
    for p in src_pos:
        room.add_source(np.asarray(p, dtype=np.float64).tolist())
    room.add_microphone_array(np.asarray(mics, dtype=np.float64).T)
    room.compute_rir()
    off = pra.constants.get("frac_delay_length") // 2
    return [[np.asarray(h[off:], dtype=np.float64) for h in row] for row in room.rir]


def _conv(x: np.ndarray, h: np.ndarray, n: int) -> np.ndarray:
    """First ``n`` samples of ``x * h``."""
    if len(x) == 0 or len(h) == 0:
        return np.zeros(n)
    y = signal.oaconvolve(x, h) if min(len(x), len(h)) > 64 else np.convolve(x, h)
    if len(y) < n:
        y = np.pad(y, (0, n - len(y)))
    return y[:n]


def simulate_static(
    sources: Sequence[SourceSpec],
    mic_left: Any,
    mic_right: Any,
    room_size: Sequence[float] | np.ndarray,
    rt60: float,
    sr: int,
    *,
    c: float = SPEED_OF_SOUND,
    room_origin: Sequence[float] | np.ndarray = (0.0, 0.0, 0.0),
    max_order: int | None = None,
) -> np.ndarray:
    """Static sources heard by a static microphone pair in a shoebox room: ``(2, S)`` float32, channel 0 = left.

    ``sources``: ``[(position xyz, mono signal), ...]`` in world metres; ``room_size`` (x, y, z) metres with the
    room's minimum corner at ``room_origin``; ``rt60`` seconds (≤ 0 → anechoic).
    """
    pos, sig, n = _as_signals(sources)
    size = np.asarray(room_size, dtype=np.float64)
    origin = np.asarray(room_origin, dtype=np.float64)
    mics = np.stack([np.asarray(mic_left, float), np.asarray(mic_right, float)]) - origin
    src = [p.reshape(-1, 3)[0] - origin for p in pos]
    _check_inside(mics, size, "a microphone")
    for k, p in enumerate(src):
        _check_inside(p, size, f"source {k}")
    e_abs, order = room_parameters(size, rt60, c, max_order)
    rir = _rirs(src, mics, size, e_abs, order, sr, c)
    out = np.zeros((2, n))
    for m in range(2):
        for s, x in enumerate(sig):
            out[m] += _conv(x, rir[m][s], n)
    return out.astype(np.float32)


# ---------------------------------------------------------------------------------------- room (moving)
def _geometry_at(p: np.ndarray, times: np.ndarray | None, t: np.ndarray, nearest: bool) -> np.ndarray:
    """Positions (len(t), 3) of a static (3,) or sampled (K, 3) trajectory at times ``t``."""
    p = np.asarray(p, dtype=np.float64)
    if p.ndim == 1 or p.shape[0] == 1:
        return np.broadcast_to(p.reshape(1, 3), (len(t), 3)).copy()
    if times is None or len(times) != p.shape[0]:
        raise ConfigError(f"a trajectory of {p.shape[0]} positions needs `times` with {p.shape[0]} entries")
    if nearest:
        idx = np.clip(np.searchsorted((times[1:] + times[:-1]) / 2, t, side="right"), 0, len(times) - 1)
        return p[idx]
    return np.stack([np.interp(t, times, p[:, k]) for k in range(3)], axis=1)


def simulate_moving(
    sources: Sequence[SourceSpec],
    mic_left: Any,
    mic_right: Any,
    room_size: Sequence[float] | np.ndarray,
    rt60: float,
    sr: int,
    times: Any = None,
    *,
    block: float | None = None,
    crossfade: float = 0.02,
    c: float = SPEED_OF_SOUND,
    room_origin: Sequence[float] | np.ndarray = (0.0, 0.0, 0.0),
    max_order: int | None = None,
    early_order: int | None = 6,
) -> np.ndarray:
    """Moving sources and/or a moving microphone pair (camera rig) in a shoebox room: ``(2, S)`` float32.

    Positions are ``(3,)`` (static) or ``(K, 3)`` sampled at ``times`` (K seconds, increasing; e.g. frame times).
    Without ``block`` the signal is cut at the midpoints between consecutive ``times`` and each piece uses the
    geometry of its own time (nearest sample); with ``block`` (seconds) pieces are that long and use positions
    linearly interpolated at their centres. Each piece is a static room simulation (the current RIR applied to
    all past input, so reverberation carries over), and pieces are joined with complementary raised-cosine
    crossfades of ``crossfade`` seconds centred on the cuts.

    Cost: with ``early_order`` (default 6) each piece simulates only the direct path and the image sources up to
    that order at its own geometry; the later, diffuse part of the response (orders above ``early_order``) is
    simulated once, at the geometry of the middle piece, and shared by all pieces (the usual early/late hybrid:
    direction cues live in the direct path and first reflections, the late tail barely depends on position).
    That makes a 60-piece reverberant scene ~10× cheaper. ``early_order=None`` simulates every piece in full.
    """
    pos, sig, n = _as_signals(sources)
    size = np.asarray(room_size, dtype=np.float64)
    origin = np.asarray(room_origin, dtype=np.float64)
    ml, mr = np.asarray(mic_left, np.float64), np.asarray(mic_right, np.float64)
    tarr = None if times is None else np.asarray(times, dtype=np.float64).reshape(-1)
    if tarr is not None and len(tarr) > 1 and np.any(np.diff(tarr) <= 0):
        raise ConfigError("`times` must be strictly increasing")
    moving = [p for p in (ml, mr, *pos) if p.ndim == 2 and p.shape[0] > 1]
    if not moving:
        return simulate_static(
            [(p.reshape(-1, 3)[0], x) for p, x in zip(pos, sig, strict=True)],
            ml.reshape(-1, 3)[0],
            mr.reshape(-1, 3)[0],
            size,
            rt60,
            sr,
            c=c,
            room_origin=origin,
            max_order=max_order,
        )
    if tarr is None:
        raise ConfigError("moving positions need `times` (seconds, one per position)")

    # piece boundaries (samples) and the time at which each piece takes its geometry
    if block is None:
        cuts = np.round((tarr[1:] + tarr[:-1]) / 2 * sr).astype(np.int64)
        cuts = cuts[(cuts > 0) & (cuts < n)]
        edges = np.unique(np.concatenate([[0], cuts, [n]]))
        centres = np.clip((edges[:-1] + edges[1:]) / 2 / sr, tarr[0], tarr[-1])
        # nearest-time geometry: the time sample whose midpoint interval holds the piece
        idx = np.clip(np.searchsorted((tarr[1:] + tarr[:-1]) / 2, centres, side="right"), 0, len(tarr) - 1)
        geo_t, nearest = tarr[idx], True
    else:
        if block <= 0:
            raise ConfigError(f"block must be > 0 s, got {block}")
        step = max(1, round(block * sr))
        edges = np.unique(np.concatenate([np.arange(0, n, step), [n]]))
        geo_t, nearest = (edges[:-1] + edges[1:]) / 2 / sr, False
    n_pieces = len(edges) - 1
    F = round(crossfade * sr)
    F = max(0, min(F, int(np.min(np.diff(edges))) if n_pieces > 1 else 0))
    F -= F % 2
    half = F // 2

    L = _geometry_at(ml, tarr, geo_t, nearest) - origin
    R = _geometry_at(mr, tarr, geo_t, nearest) - origin
    S = [_geometry_at(p, tarr, geo_t, nearest) - origin for p in pos]
    _check_inside(np.concatenate([L, R]), size, "a microphone")
    for k, p in enumerate(S):
        _check_inside(p, size, f"source {k}")
    e_abs, order = room_parameters(size, rt60, c, max_order)

    late: list[list[np.ndarray]] | None = None
    piece_order = order
    if early_order is not None and order > early_order:
        piece_order = max(int(early_order), 0)
        mid = n_pieces // 2
        ref_src, ref_mics = [s_[mid] for s_ in S], np.stack([L[mid], R[mid]])
        full = _rirs(ref_src, ref_mics, size, e_abs, order, sr, c)
        early = _rirs(ref_src, ref_mics, size, e_abs, piece_order, sr, c)
        late = [[_minus(full[m][k], early[m][k]) for k in range(len(S))] for m in range(2)]

    ramp = np.sin(0.5 * np.pi * (np.arange(F) + 0.5) / F) ** 2 if F > 0 else np.zeros(0)
    out = np.zeros((2, n))
    for k in range(n_pieces):
        lo = edges[k] - half if k > 0 else 0
        hi = edges[k + 1] + half if k < n_pieces - 1 else n
        idx = np.arange(lo, hi)
        w = np.ones(hi - lo)
        if F > 0 and k > 0:  # fade in, centred on the cut at edges[k]
            u = idx - (edges[k] - half)
            inside = (u >= 0) & (u < F)
            w[inside] = ramp[u[inside]]
        if F > 0 and k < n_pieces - 1:  # fade out, centred on the cut at edges[k + 1]
            u = idx - (edges[k + 1] - half)
            inside = (u >= 0) & (u < F)
            w[inside] *= ramp[F - 1 - u[inside]]
        rir = _rirs([s[k] for s in S], np.stack([L[k], R[k]]), size, e_abs, piece_order, sr, c)
        for m in range(2):
            for s, x in enumerate(sig):
                h = rir[m][s] if late is None else _plus(rir[m][s], late[m][s])
                start = max(0, lo - len(h) + 1)
                if not np.any(x[start:hi]):
                    continue  # silent source in this piece (and in the reverberation reaching it)
                seg_y = _conv(x[start:hi], h, hi - start)[lo - start :]
                out[m, lo:hi] += w * seg_y
    return out.astype(np.float32)


def _plus(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    n = max(len(a), len(b))
    return np.pad(a, (0, n - len(a))) + np.pad(b, (0, n - len(b)))


def _minus(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _plus(a, -b)


# ------------------------------------------------------------------------------------------- free field
def _fft_delay(x: np.ndarray, delay: float, n: int) -> np.ndarray:
    """``x`` delayed by ``delay`` samples (fractional, band-limited: an FFT phase shift), first ``n`` samples.

    Zero padding of ≥ 4096 samples past the delayed end keeps the circular wrap of the sinc tails below −70 dB;
    the Nyquist bin is kept real (cos of its phase) so the result stays a real, exactly delayed signal.
    """
    N = _next_fast_len(max(n, len(x) + int(np.ceil(delay))) + 4096)
    X = np.fft.rfft(x, N)
    H = np.exp(-2j * np.pi * np.fft.rfftfreq(N) * delay)
    if N % 2 == 0:
        H[-1] = np.cos(np.pi * delay)
    return np.fft.irfft(X * H, N)[:n]


def _next_fast_len(n: int) -> int:
    from scipy import fft as sfft

    return int(sfft.next_fast_len(n, real=True))


_KAISER_BETA = 8.6
_SINC_HALF = 32
_TABLE_STEPS = 2048  # fractional positions tabulated per sample (nearest entry: ≤ 1/4096 sample ≈ 0.006 µs off)
_SINC_TABLE: np.ndarray | None = None


def _sinc_table() -> np.ndarray:
    """Kaiser-windowed sinc taps for fractional offsets ``j / _TABLE_STEPS``: (_TABLE_STEPS + 1, 2 * half) float32."""
    global _SINC_TABLE
    if _SINC_TABLE is None:
        taps = np.arange(-_SINC_HALF + 1, _SINC_HALF + 1)
        frac = np.arange(_TABLE_STEPS + 1) / _TABLE_STEPS
        d = frac[:, None] - taps[None, :]
        win = np.i0(_KAISER_BETA * np.sqrt(np.clip(1 - (d / _SINC_HALF) ** 2, 0, 1))) / np.i0(_KAISER_BETA)
        _SINC_TABLE = (np.sinc(d) * win).astype(np.float32)
    return _SINC_TABLE


def _sinc_interp(x: np.ndarray, pos: np.ndarray, chunk: int = 1 << 14) -> np.ndarray:
    """``x`` evaluated at fractional sample positions ``pos`` (Kaiser-windowed sinc, 64 taps, tabulated)."""
    half = _SINC_HALF
    table = _sinc_table()
    out = np.zeros(len(pos))
    xp = np.concatenate([np.zeros(half + 1), x, np.zeros(half + 1)]).astype(np.float32)
    taps = np.arange(-half + 1, half + 1)
    for a in range(0, len(pos), chunk):
        p = pos[a : a + chunk]
        base = np.floor(p)
        j = np.rint((p - base) * _TABLE_STEPS).astype(np.int64)
        idx = np.clip(base.astype(np.int64)[:, None] + (taps + half + 1)[None, :], 0, len(xp) - 1)
        out[a : a + chunk] = np.einsum("ij,ij->i", table[j], xp[idx], dtype=np.float64)
    return out


def simulate_free_field(
    sources: Sequence[SourceSpec],
    mic_left: Any,
    mic_right: Any,
    sr: int,
    times: Any = None,
    *,
    c: float = SPEED_OF_SOUND,
) -> np.ndarray:
    """Free-field (anechoic, no room) stereo: ``(2, S)`` float32, channel 0 = left.

    Each source reaches each microphone with gain ``1 / max(r, 5 cm)`` and delay ``r / c``, fractional delays exact.
    Static geometry uses an FFT phase shift. Moving geometry (positions ``(K, 3)`` at ``times``, linearly
    interpolated per sample) solves the retarded time per output sample (two fixed-point iterations of
    ``t_emit = t − |src(t_emit) − mic(t)| / c``) and interpolates with a Kaiser-windowed sinc (64 taps).
    """
    pos, sig, n = _as_signals(sources)
    ml, mr = np.asarray(mic_left, np.float64), np.asarray(mic_right, np.float64)
    tarr = None if times is None else np.asarray(times, dtype=np.float64).reshape(-1)
    out = np.zeros((2, n))
    t = np.arange(n) / sr
    for m, mic in enumerate((ml, mr)):
        for p, x in zip(pos, sig, strict=True):
            static = (p.ndim == 1 or p.shape[0] == 1) and (mic.ndim == 1 or mic.shape[0] == 1)
            if static:
                r = float(np.linalg.norm(p.reshape(-1, 3)[0] - mic.reshape(-1, 3)[0]))
                out[m] += _fft_delay(x, r / c * sr, n) / max(r, _MIN_DISTANCE)
                continue
            if tarr is None:
                raise ConfigError("moving positions need `times` (seconds, one per position)")
            mpos = _geometry_at(mic, tarr, t, nearest=False)
            te = t.copy()
            for _ in range(3):
                spos = _geometry_at(p, tarr, te, nearest=False)
                r = np.linalg.norm(spos - mpos, axis=1)
                te = t - r / c
            out[m] += _sinc_interp(x, te * sr) / np.maximum(r, _MIN_DISTANCE)
    return out.astype(np.float32)
