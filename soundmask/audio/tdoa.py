"""Time difference of arrival (TDoA) between the two microphones of a stereo pair, and the direction it implies.

Sign convention — the same everywhere in soundmask
--------------------------------------------------
    ``tau = t_right − t_left`` seconds: **POSITIVE when the sound reaches the LEFT microphone (channel 0) first**,
    i.e. a source on the left of the camera. It is the convention of
    :func:`soundmask.synth.acoustics.geometric_tdoa` and of :class:`soundmask.audio.types.Tdoa`.
    Azimuths follow it: positive towards the left microphone.

Method
------
GCC-PHAT (generalised cross-correlation with the phase transform; Knapp & Carter 1976, "The generalized
correlation method for estimation of time delay", IEEE TASSP 24(4)):

* cross-power spectrum ``G = R · conj(L)`` (its inverse transform peaks at ``+tau``);
* PHAT weighting ``G / |G|`` restricted to a frequency ``band`` (default 100 Hz – 8 kHz) **and** to bins whose
  cross-power magnitude exceeds ``floor`` (1e-6) of the frame's in-band peak: plain PHAT gives every bin unit
  weight, so for band-limited sounds (a fan's hum, a piano) the empty bins' noise would drown the peak;
* over many frames (:func:`segment_tdoa`, :func:`track_tdoa`) the PHAT-weighted cross-spectra of the active frames
  are *averaged* before the inverse transform (steered-response-power style): more robust than averaging per-frame
  delays, and bins whose phase is not consistent across frames cancel by themselves;
* sub-sample accuracy: the correlation is evaluated on a grid of ``1 / interp`` sample — exactly the values of a
  zero-padded inverse FFT (×``interp``), computed around the best half-sample lag only — then refined with a
  parabola through the three best grid values;
* confidence: the correlation peak divided by the value a perfectly coherent pure delay would reach, in [0, 1]
  (the mean phase coherence at the delay: ≈ 1 for a clean delayed copy, ≈ 0 for unrelated channels).

A two-microphone pair only observes the angle between the source direction and the microphone axis: every direction
on a cone around the axis gives the same ``tau`` (:func:`direction_cone`). :func:`direction_vector` picks the cone's
direction nearest to a reference (e.g. the camera's forward axis).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from scipy import fft as sfft
from scipy import signal

from soundmask.audio.io import require_stereo
from soundmask.audio.types import Segment, Tdoa
from soundmask.constants import MIC_SPACING, SPEED_OF_SOUND
from soundmask.errors import ConfigError, DataError

__all__ = [
    "BAND",
    "DirectionCone",
    "TdoaTrack",
    "direction_cone",
    "direction_from_tdoa",
    "direction_vector",
    "gcc_phat",
    "gcc_phat_curve",
    "segment_tdoa",
    "steered_response",
    "tdoa_from_direction",
    "track_tdoa",
]

BAND = (100.0, 8000.0)
FLOOR = 1e-6  # bins below this fraction of the in-band cross-power peak get no PHAT weight
_WORKERS = 2


# ------------------------------------------------------------------------------------------ GCC-PHAT core
def _phat(G: np.ndarray, freqs: np.ndarray, band: tuple[float, float], floor: float) -> tuple[np.ndarray, np.ndarray]:
    """PHAT-weighted cross-spectra ``G / |G|`` (rows = frames) on the kept bins, zero elsewhere; and the kept mask.

    Kept: inside ``band`` and with ``|G|`` above ``floor`` times the row's in-band maximum (Knapp & Carter's PHAT
    with a spectral floor, so band-limited sounds are not swamped by empty bins)."""
    lo, hi = band
    inband = (freqs >= lo) & (freqs <= hi)
    mag = np.abs(G)
    peak = np.max(np.where(inband, mag, 0.0), axis=-1, keepdims=True)
    keep = inband & (mag > floor * peak) & (mag > 1e-30)  # (1e-30: 1/|G| must not overflow on near-silence)
    inv = np.zeros_like(mag)
    np.divide(1.0, mag, out=inv, where=keep)
    return G * inv, keep


def _bin_weights(K: int, nfft: int) -> np.ndarray:
    """Weights turning a one-sided spectrum sum into the real inverse DFT: 1 for DC (and Nyquist), 2 elsewhere."""
    w = np.full(K, 2.0)
    w[0] = 1.0
    if nfft % 2 == 0:
        w[-1] = 1.0
    return w


def _lag_window(max_lag: float, nfft: int) -> float:
    """The searched lag range (samples): ``max_lag`` capped just below half the transform."""
    return float(min(max_lag, nfft / 2 - 1))


def _parabola(y0: np.ndarray, y1: np.ndarray, y2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertex offset (in grid steps, within ±0.5) and height of the parabola through three equally spaced points."""
    den = y0 - 2.0 * y1 + y2
    ok = den < 0
    d = np.where(ok, 0.5 * (y0 - y2) / np.where(ok, den, -1.0), 0.0)
    d = np.clip(d, -0.5, 0.5)
    return d, y1 - 0.25 * (y0 - y2) * d


def _peaks(A: np.ndarray, norm: np.ndarray, nfft: int, max_lag: float, interp: int) -> tuple[np.ndarray, np.ndarray]:
    """Delay (samples) and normalised height of the correlation peak of each row of one-sided spectra ``A`` (B, K).

    Coarse search on a half-sample grid (zero-padded inverse FFT) within ``±max_lag``, then the exact band-limited
    correlation on a ``1/interp`` grid over ±½ sample around it (the values a ×``interp`` zero-padded IFFT would
    give), then a parabolic fit. The largest *positive* peak wins (both microphones have the same polarity).
    ``norm`` (B,) is the height of a perfectly coherent peak."""
    lag_max = _lag_window(max_lag, nfft)
    half = np.arange(-int(2 * lag_max), int(2 * lag_max) + 1)  # half-sample lags
    cc2 = sfft.irfft(A, 2 * nfft, axis=-1, workers=_WORKERS)[:, half % (2 * nfft)] * 2  # scaled like irfft(A, nfft)
    coarse = half[np.argmax(cc2, axis=-1)] / 2.0
    step = max(2, int(interp))
    offs = np.arange(-(step // 2) - 1, step // 2 + 2) / step  # ±(½ sample + one step): room for the parabola
    fine = _correlation_near(A, coarse, offs, nfft)
    rows = np.arange(len(A))
    j = np.clip(np.argmax(fine, axis=-1), 1, len(offs) - 2)
    d, h = _parabola(fine[rows, j - 1], fine[rows, j], fine[rows, j + 1])
    return np.clip(coarse + offs[j] + d / step, -lag_max, lag_max), np.clip(h / norm, 0.0, 1.0)


def _correlation_near(A: np.ndarray, centre: np.ndarray, offs: np.ndarray, nfft: int) -> np.ndarray:
    """Inverse real DFT of each row of ``A`` (B, K) at lags ``centre[b] + offs`` samples (fractional): (B, J)."""
    K = A.shape[1]
    k = np.arange(K)
    Aw = A * _bin_weights(K, nfft) * np.exp(2j * np.pi * np.outer(centre, k) / nfft)
    if K * len(offs) <= 1 << 22:  # one product with the steering matrix (K, J) ...
        return np.real(Aw @ np.exp(2j * np.pi * np.outer(k, offs) / nfft)) / nfft
    # ... or one steering vector at a time for very long transforms (memory)
    return np.stack([np.real(Aw @ np.exp(2j * np.pi * k * o / nfft)) / nfft for o in offs], axis=-1)


def _coherent_norm(keep_frac: np.ndarray, nfft: int) -> np.ndarray:
    """Correlation height of a perfectly coherent delay given the fraction of frames keeping each bin (B, K)."""
    K = keep_frac.shape[-1]
    return np.maximum(keep_frac @ _bin_weights(K, nfft) / nfft, 1e-30)


def _check_pair(left: np.ndarray, right: np.ndarray, sr: float) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(left, dtype=np.float64).reshape(-1)
    b = np.asarray(right, dtype=np.float64).reshape(-1)
    if sr <= 0:
        raise ConfigError(f"sample rate must be > 0, got {sr}")
    if len(a) < 2 or len(b) < 2:
        raise DataError("TDoA needs at least 2 samples per channel", fix="pass a longer recording")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise DataError("audio contains NaN or infinite samples", fix="clean the recording before the stereo stage")
    return a, b


def _one_shot(
    left: np.ndarray,
    right: np.ndarray,
    sr: float,
    band: tuple[float, float],
    floor: float,
) -> tuple[np.ndarray, np.ndarray, int]:
    """PHAT-weighted full-length cross-spectrum (1, K), its kept-bin mask, and the transform length."""
    a, b = _check_pair(left, right, sr)
    nfft = sfft.next_fast_len(len(a) + len(b), real=True)
    G = sfft.rfft(b, nfft, workers=_WORKERS) * np.conj(sfft.rfft(a, nfft, workers=_WORKERS))
    W, keep = _phat(G[None], np.fft.rfftfreq(nfft, 1.0 / sr), band, floor)
    return W, keep.astype(np.float64), nfft


def _max_lag(max_tau: float | None, sr: float, limit: float) -> float:
    if max_tau is None:
        return limit
    if max_tau <= 0:
        raise ConfigError(f"max_tau must be > 0 s, got {max_tau}")
    return min(float(max_tau) * sr, limit)


def gcc_phat(
    left: np.ndarray,
    right: np.ndarray,
    sr: float,
    max_tau: float | None = None,
    interp: int = 16,
    band: tuple[float, float] = BAND,
    floor: float = FLOOR,
) -> float:
    """Delay ``tau = t_right − t_left`` (s) between two signals by GCC-PHAT (Knapp & Carter 1976).

    **Positive when the sound reaches ``left`` (channel 0) first.** One transform over the whole signals (use
    :func:`segment_tdoa` for long recordings: it averages framed cross-spectra). ``max_tau``: largest ``|tau|``
    searched (default: unlimited); pass ``spacing / c`` when the microphone spacing is known. ``interp``: the
    correlation grid is ``1 / interp`` sample before the parabolic refinement. ``band`` (Hz) and ``floor``: the bins
    that get PHAT weight (see the module notes).
    """
    W, keep, nfft = _one_shot(left, right, sr, band, floor)
    lag, _ = _peaks(W, _coherent_norm(keep, nfft), nfft, _max_lag(max_tau, sr, nfft / 2), max(1, int(interp)))
    return float(lag[0] / sr)


def gcc_phat_curve(
    left: np.ndarray,
    right: np.ndarray,
    sr: float,
    max_tau: float | None = None,
    interp: int = 16,
    band: tuple[float, float] = BAND,
    floor: float = FLOOR,
) -> tuple[np.ndarray, np.ndarray]:
    """The GCC-PHAT correlation for inspection: ``(lags in s, correlation)`` on a ``1 / (interp · sr)`` grid.

    Zero-padded inverse FFT (×``interp``) of the PHAT-weighted cross-spectrum, normalised so that a perfectly
    coherent delay peaks at 1; same sign convention and options as :func:`gcc_phat`. Memory grows with
    ``interp × len(signal)``: meant for short clips.
    """
    W, keep, nfft = _one_shot(left, right, sr, band, floor)
    n_up = nfft * max(1, int(interp))
    cc = sfft.irfft(W[0], n_up, workers=_WORKERS) * (n_up / nfft) / _coherent_norm(keep, nfft)[0]
    m = int(np.floor(_max_lag(max_tau, sr, nfft / 2 - 1) * n_up / nfft))
    idx = np.arange(-m, m + 1)
    return idx * nfft / n_up / sr, cc[idx % n_up]


# ----------------------------------------------------------------------------------------- framed spectra
@dataclass
class _Framed:
    """PHAT-weighted cross-spectra of overlapping frames of a stereo signal."""

    W: np.ndarray  # (F, K) complex64, PHAT-weighted, zero off the kept bins
    keep: np.ndarray  # (F, K) bool
    energy: np.ndarray  # (F,) energy of the windowed frame, both channels
    centres: np.ndarray  # (F,) s
    nfft: int
    sr: float


def _frame_view(x: np.ndarray, frame: int, hop: int) -> np.ndarray:
    """(F, frame) frames of ``x`` every ``hop`` samples; the end is zero-padded so every sample is in a frame."""
    n_frames = 1 + int(np.ceil(max(0, len(x) - frame) / hop))
    need = (n_frames - 1) * hop + frame
    xp = np.pad(x, (0, need - len(x))) if need > len(x) else x
    return np.lib.stride_tricks.sliding_window_view(xp, frame)[::hop][:n_frames]


def _check_stereo(stereo: np.ndarray, sr: float) -> np.ndarray:
    x = np.asarray(stereo)
    if x.ndim != 2 or x.shape[0] != 2:
        require_stereo(x)
    if sr <= 0:
        raise ConfigError(f"sample rate must be > 0, got {sr}")
    if not np.isfinite(x).all():
        raise DataError("audio contains NaN or infinite samples", fix="clean the recording before the stereo stage")
    return x


def _framed(
    stereo: np.ndarray,
    sr: float,
    frame: float,
    hop: float | None,
    max_lag: float | None,
    band: tuple[float, float],
    floor: float,
) -> _Framed:
    """Hann-windowed frames of both channels → PHAT-weighted cross-spectra (one batched rfft per channel)."""
    x = _check_stereo(stereo, sr)
    L, R, energy, centres, nfft = _frame_spectra(x, sr, frame, hop, max_lag)
    W, keep = _phat(R * np.conj(L), np.fft.rfftfreq(nfft, 1.0 / sr).astype(np.float32), band, floor)
    return _Framed(W.astype(np.complex64), keep, energy, centres, nfft, sr)


def _frame_spectra(
    x: np.ndarray, sr: float, frame: float, hop: float | None, max_lag: float | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Hann-windowed short frames of both channels of ``x`` (2, S): their spectra L, R (F, K), energy (F,), centre
    times (F,) s and the transform length (zero-padded by ``max_lag`` samples, or a frame: linear correlation)."""
    n = max(8, round(frame * sr))
    h = max(1, round((hop if hop is not None else frame / 2) * sr))
    pad = n if max_lag is None else int(np.ceil(min(max_lag, n / 2))) + 1  # zero padding: linear, not circular
    nfft = sfft.next_fast_len(n + pad, real=True)
    win = signal.get_window("hann", n).astype(np.float32)
    L = sfft.rfft(_frame_view(x[0].astype(np.float32), n, h) * win, nfft, axis=-1, workers=_WORKERS)
    R = sfft.rfft(_frame_view(x[1].astype(np.float32), n, h) * win, nfft, axis=-1, workers=_WORKERS)
    energy = (np.sum(np.abs(L) ** 2, axis=-1) + np.sum(np.abs(R) ** 2, axis=-1)).astype(np.float64)
    centres = (np.arange(len(L)) * h + n / 2) / sr
    return L, R, energy, centres, nfft


def _active(energy: np.ndarray, active_db: float) -> np.ndarray:
    """Frames within ``active_db`` dB of the loudest of ``energy`` (and not silent)."""
    top = energy.max(initial=0.0)
    return (energy > 0) & (energy >= top * 10 ** (-active_db / 10)) if top > 0 else np.zeros(len(energy), bool)


def _lag_bound(max_tau: float | None, spacing: float | None, c: float, sr: float) -> float | None:
    """Largest searched ``|lag|`` in samples: ``max_tau``, else ``spacing / c`` plus one sample of margin for the
    peak fit, else None (unlimited)."""
    if max_tau is None and spacing is not None:
        if spacing <= 0:
            raise ConfigError(f"spacing must be > 0 m, got {spacing}")
        max_tau = spacing / c + 1.0 / sr
    return None if max_tau is None else _max_lag(max_tau, sr, np.inf)


# ------------------------------------------------------------------------------------------- segments
def segment_tdoa(
    stereo: np.ndarray,
    sr: float,
    segments: Sequence[Segment] | None = None,
    *,
    frame: float = 0.09,
    hop: float | None = None,
    max_tau: float | None = None,
    spacing: float | None = None,
    c: float = SPEED_OF_SOUND,
    interp: int = 16,
    band: tuple[float, float] = BAND,
    active_db: float = 30.0,
    silence_db: float = 60.0,
    floor: float = FLOOR,
) -> list[Tdoa]:
    """One TDoA per segment of a stereo recording ``(2, S)`` (channel 0 = left; the whole file when ``segments`` is
    None): GCC-PHAT over the segment's active frames (Knapp & Carter 1976, averaged PHAT cross-spectra).

    Frames of ``frame`` s (Hann) every ``hop`` s (default ``frame / 2``) whose centre lies in the segment (the one
    nearest its middle for a segment shorter than a frame) and whose energy is within ``active_db`` dB of the
    segment's loudest frame and within ``silence_db`` dB of the recording's loudest frame are used. ``tau`` is
    **positive when the left microphone hears the sound first**; ``confidence`` ∈ [0, 1] is the mean phase coherence
    at the peak; NaN ``tau`` and confidence 0 for a silent segment. ``spacing`` (m): the pair's spacing; it bounds
    the search (``max_tau = spacing / c`` plus one sample unless ``max_tau`` is given) and gives ``azimuth``
    (:func:`direction_from_tdoa`; NaN without a spacing). Without either, the search spans ±½ frame.
    """
    x = _check_stereo(stereo, sr)
    limit = _lag_bound(max_tau, spacing, c, sr)
    fr = _framed(x, sr, frame, hop, limit, band, floor)
    segs = list(segments) if segments is not None else [Segment(0.0, x.shape[1] / sr)]
    out = [Tdoa(float("nan"), 0.0, float("nan"), float(s.start), float(s.end)) for s in segs]
    ok, A, norm = _segment_spectra(fr, segs, active_db, silence_db)
    if not ok:
        return out
    lag, conf = _peaks(A, norm, fr.nfft, np.inf if limit is None else limit, interp)
    for i, lg, cf in zip(ok, lag, conf, strict=True):
        tau = float(lg / sr)
        az = float(direction_from_tdoa(tau, spacing, c)) if spacing is not None else float("nan")
        out[i] = Tdoa(tau, float(cf), az, float(segs[i].start), float(segs[i].end))
    return out


def steered_response(
    stereo: np.ndarray,
    sr: float,
    segments: Sequence[Segment],
    delays: Sequence[Any],
    *,
    frame: float = 0.09,
    hop: float | None = None,
    band: tuple[float, float] = BAND,
    active_db: float = 30.0,
    silence_db: float = 60.0,
    floor: float = FLOOR,
) -> list[np.ndarray]:
    """The GCC-PHAT correlation of each segment at given delays: ``delays[i]`` (s, any shape; positive = left
    microphone first) → an array of that shape, normalised like :func:`segment_tdoa`'s ``confidence`` (a perfectly
    coherent source at that delay gives 1); all NaN for a silent segment.

    This is the steered response power with phase transform (SRP-PHAT, DiBiase et al. 2001) of one microphone pair:
    evaluated at the delays that candidate source positions predict, it tells which of them the sound comes from —
    several, when several sources sound at once (each leaves its own correlation peak), where the single
    :func:`segment_tdoa` peak names one. Same frames, band and activity rule as :func:`segment_tdoa`; the
    correlation is the exact band-limited inverse DFT at each fractional delay (no grid)."""
    x = _check_stereo(stereo, sr)
    segs = list(segments)
    if len(delays) != len(segs):
        raise DataError(
            f"{len(delays)} delay sets for {len(segs)} segments", fix="pass one array of delays per segment"
        )
    out = [np.full(np.shape(d), np.nan) for d in delays]
    fr = _framed(x, sr, frame, hop, None, band, floor)
    ok, A, norm = _segment_spectra(fr, segs, active_db, silence_db)
    for row, i in enumerate(ok):
        lags = np.asarray(delays[i], dtype=np.float64).ravel() * sr
        if lags.size:
            r = _correlation_near(A[row : row + 1], np.zeros(1), lags, fr.nfft)[0] / norm[row]
            out[i] = r.reshape(np.shape(delays[i]))
    return out


def _segment_spectra(
    fr: _Framed, segs: Sequence[Segment], active_db: float, silence_db: float
) -> tuple[list[int], np.ndarray, np.ndarray]:
    """The segments with active frames, their mean PHAT cross-spectra (B, K) and coherent-peak heights (B,)."""
    audible = _active(fr.energy, silence_db)
    picks = [_segment_frames(fr, s, active_db, audible) for s in segs]
    ok = [i for i, p in enumerate(picks) if p.size]
    if not ok:
        return ok, np.zeros((0, fr.W.shape[1]), np.complex128), np.zeros(0)
    A = np.stack([fr.W[picks[i]].mean(axis=0, dtype=np.complex128) for i in ok])
    keep = np.stack([fr.keep[picks[i]].mean(axis=0, dtype=np.float64) for i in ok])
    return ok, A, _coherent_norm(keep, fr.nfft)


def _segment_frames(fr: _Framed, seg: Segment, active_db: float, audible: np.ndarray) -> np.ndarray:
    """Indices of the active frames of one segment (``audible``: frames loud enough at the recording's scale)."""
    inside = np.flatnonzero((fr.centres >= seg.start) & (fr.centres <= seg.end))
    if inside.size == 0:
        inside = np.array([int(np.argmin(np.abs(fr.centres - 0.5 * (seg.start + seg.end))))])
    act = _active(fr.energy[inside], active_db) & audible[inside]
    return inside[act]


# ------------------------------------------------------------------------------------------- tracking
class TdoaTrack(NamedTuple):
    """TDoA over time: window centres ``times`` (s), smoothed ``tau`` (s, positive = left microphone first),
    ``confidence`` ∈ [0, 1] of each window's raw estimate, and the raw per-window estimates ``raw_tau``."""

    times: np.ndarray
    tau: np.ndarray
    confidence: np.ndarray
    raw_tau: np.ndarray


def track_tdoa(
    stereo: np.ndarray,
    sr: float,
    *,
    win: float = 0.5,
    hop: float = 0.1,
    frame: float = 0.05,
    max_tau: float | None = None,
    spacing: float | None = MIC_SPACING,
    c: float = SPEED_OF_SOUND,
    interp: int = 16,
    band: tuple[float, float] = BAND,
    active_db: float = 25.0,
    accel: float = 1e-3,
    meas_std: float = 2e-5,
    gate: float = 4.0,
    floor: float = FLOOR,
) -> TdoaTrack:
    """TDoA over time for moving cameras or sources: GCC-PHAT in windows of ``win`` s every ``hop`` s, smoothed.

    Each window averages the PHAT cross-spectra of its frames (``frame`` s, half overlap) within ``active_db`` dB of
    the file's loudest frame (not much more: reverberation tails after a sound stops carry no direct path). The
    per-window delays are smoothed by a constant-velocity Kalman filter with a Rauch–Tung–Striebel backward pass
    (Rauch, Tung & Striebel 1965): ``accel`` (s/s²) is the expected change of the delay's drift,
    ``meas_std / sqrt(confidence)`` the measurement noise; a window's estimate describes the mean time of its active
    frames (a half-silent window describes its active half, not its centre), and estimates more than ``gate``
    standard deviations from the prediction are dropped as outliers (a reflection winning the peak).
    Windows without active frames have confidence 0 and NaN ``raw_tau``; the smoothed ``tau`` bridges them (all NaN
    when no window hears anything).
    ``spacing`` (default the rig's 0.2 m) bounds the search unless ``max_tau`` is given; None searches ±½ frame.
    """
    x = _check_stereo(stereo, sr)
    limit = _lag_bound(max_tau, spacing, c, sr)
    fr = _framed(x, sr, frame, None, limit, band, floor)
    duration = x.shape[1] / sr
    times = np.arange(0.5 * min(win, duration), max(duration - 0.5 * min(win, duration), 0.0) + 1e-9, hop)
    act = _active(fr.energy, active_db)
    a = np.searchsorted(fr.centres, times - win / 2, side="left")
    b = np.searchsorted(fr.centres, times + win / 2, side="right")
    n = _window_sum(act.astype(np.float64), a, b)
    offset = np.where(n > 0, _window_sum(fr.centres * act, a, b) / np.maximum(n, 1) - times, 0.0)
    ok = n > 0
    raw, conf = np.full(len(times), np.nan), np.zeros(len(times))
    if ok.any():
        A = _window_sum(fr.W * act[:, None], a[ok], b[ok]) / n[ok, None]
        keep = _window_sum((fr.keep & act[:, None]).astype(np.float64), a[ok], b[ok]) / n[ok, None]
        lag, conf[ok] = _peaks(A, _coherent_norm(keep, fr.nfft), fr.nfft, np.inf if limit is None else limit, interp)
        raw[ok] = lag / sr
    return TdoaTrack(times, _kalman_rts(raw, conf, offset, hop, accel, meas_std, gate), conf, raw)


def _window_sum(values: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sums of ``values[a[w]:b[w]]`` along axis 0 for every window ``w`` (cumulative sums, no loop)."""
    v = np.asarray(values)
    acc = np.cumsum(v, axis=0, dtype=np.complex128 if np.iscomplexobj(v) else np.float64)
    acc = np.concatenate([np.zeros((1, *v.shape[1:]), acc.dtype), acc])
    return acc[b] - acc[a]


def _kalman_rts(
    z: np.ndarray,
    conf: np.ndarray,
    offset: np.ndarray,
    dt: float,
    accel: float,
    meas_std: float,
    gate: float,
    rate0: float = 1e-3,
) -> np.ndarray:
    """Constant-velocity Kalman filter + Rauch–Tung–Striebel smoother of per-window delays ``z`` (NaN = missing).

    State (delay, drift); white-noise acceleration ``accel`` (s/s²); measurement ``w`` observes the delay at
    ``offset[w]`` s from its window centre (``H = [1, offset]``) with variance ``meas_std² / conf``; innovations
    beyond ``gate`` σ are dropped as gross errors. One step per window (not per sample)."""
    n = len(z)
    valid = np.isfinite(z) & (conf > 0)
    if not valid.any():
        return np.full(n, np.nan)
    F = np.array([[1.0, dt], [0.0, 1.0]])
    Q = accel**2 * np.array([[dt**4 / 4, dt**3 / 2], [dt**3 / 2, dt**2]])
    r = np.where(valid, meas_std**2 / np.maximum(conf, 1e-6), np.inf)
    x = np.array([float(np.median(z[valid][:5])), 0.0])
    P = np.diag([float(r[valid][0]) + (5 * meas_std) ** 2, rate0**2])
    xp, Pp, xf, Pf = np.zeros((n, 2)), np.zeros((n, 2, 2)), np.zeros((n, 2)), np.zeros((n, 2, 2))
    for t in range(n):
        if t:
            x, P = F @ x, F @ P @ F.T + Q
        xp[t], Pp[t] = x, P
        if valid[t]:
            H = np.array([1.0, offset[t]])
            S = H @ P @ H + r[t]
            innov = z[t] - H @ x
            if innov**2 <= gate**2 * S:
                k = P @ H / S
                x, P = x + k * innov, P - np.outer(k, H @ P)
        xf[t], Pf[t] = x, P
    xs = xf.copy()
    for t in range(n - 2, -1, -1):
        C = Pf[t] @ F.T @ np.linalg.inv(Pp[t + 1])
        xs[t] = xf[t] + C @ (xs[t + 1] - xp[t + 1])
    return xs[:, 0]


# ------------------------------------------------------------------------------------------- direction
def direction_from_tdoa(tau: Any, spacing: float = MIC_SPACING, c: float = SPEED_OF_SOUND) -> np.ndarray | float:
    """Far-field azimuth (radians from the pair's broadside, positive towards the LEFT microphone) of a delay ``tau``
    (s, positive = left first): ``arcsin(c · tau / spacing)``, the argument clipped to [−1, 1]."""
    if spacing <= 0 or c <= 0:
        raise ConfigError(f"spacing and speed of sound must be > 0, got {spacing} m, {c} m/s")
    az = np.arcsin(np.clip(c * np.asarray(tau, dtype=np.float64) / spacing, -1.0, 1.0))
    return float(az) if np.ndim(az) == 0 else az


def tdoa_from_direction(azimuth: Any, spacing: float = MIC_SPACING, c: float = SPEED_OF_SOUND) -> np.ndarray | float:
    """Inverse of :func:`direction_from_tdoa`: far-field ``tau = spacing · sin(azimuth) / c`` (s)."""
    if spacing <= 0 or c <= 0:
        raise ConfigError(f"spacing and speed of sound must be > 0, got {spacing} m, {c} m/s")
    tau = spacing * np.sin(np.asarray(azimuth, dtype=np.float64)) / c
    return float(tau) if np.ndim(tau) == 0 else tau


@dataclass(frozen=True)
class DirectionCone:
    """Where a source can be, seen from a microphone pair: the directions making ``angle`` (radians, [0, π]) with
    ``axis`` (unit, world, from the right towards the left microphone), from ``apex`` (the pair's midpoint).

    Only this angle is observable with two microphones (far field); ``angle = π/2 − azimuth``."""

    apex: np.ndarray
    axis: np.ndarray
    angle: float

    def angle_error(self, point: Any) -> float:
        """Angle (radians) between the direction from ``apex`` to ``point`` and the cone's surface."""
        v = np.asarray(point, dtype=np.float64) - self.apex
        cos = float(np.dot(v, self.axis) / max(np.linalg.norm(v), 1e-12))
        return abs(float(np.arccos(np.clip(cos, -1.0, 1.0))) - self.angle)


def direction_cone(tau: float, mic_left: Any, mic_right: Any, c: float = SPEED_OF_SOUND) -> DirectionCone:
    """The cone of directions compatible with ``tau`` (s, positive = left first) for microphones at ``mic_left`` /
    ``mic_right`` (world metres): ``cos(angle) = c · tau / spacing`` (far field), measured from the axis pointing
    right → left."""
    left, right = np.asarray(mic_left, np.float64), np.asarray(mic_right, np.float64)
    d = float(np.linalg.norm(left - right))
    if d <= 0:
        raise ConfigError("the two microphones are at the same position", fix="pass distinct mic positions")
    cos = np.clip(c * float(tau) / d, -1.0, 1.0)
    return DirectionCone(0.5 * (left + right), (left - right) / d, float(np.arccos(cos)))


def direction_vector(tau: float, mic_left: Any, mic_right: Any, forward: Any, c: float = SPEED_OF_SOUND) -> np.ndarray:
    """World unit vector towards the source: the direction on :func:`direction_cone` closest to ``forward`` (e.g. the
    camera's viewing axis, which resolves the cone ambiguity for sources in front of the camera at its height)."""
    cone = direction_cone(tau, mic_left, mic_right, c)
    f = np.asarray(forward, dtype=np.float64)
    perp = f - np.dot(f, cone.axis) * cone.axis
    norm = np.linalg.norm(perp)
    if norm < 1e-9:
        raise ConfigError("`forward` is parallel to the microphone axis", fix="pass the camera's viewing direction")
    return np.cos(cone.angle) * cone.axis + np.sin(cone.angle) * perp / norm
