"""Acoustic evidence per object: which of several 3D candidates a stereo recording's sound comes from, taking an
already-found source out to find the next one, and each source's own signal (issue 29, items 1, 2, 4 and 6).

Steered response over object hypotheses
---------------------------------------
A microphone pair hears a source at ``p`` with the delay ``tau(p) = (|p − mic_right| − |p − mic_left|) / c``
(:func:`soundmask.synth.acoustics.geometric_tdoa`; positive = left microphone first). For each frame window ``v``
(its own microphone positions — the camera moves) the PHAT-weighted cross-spectra of its active short frames are
averaged (:func:`window_spectra`) and the band-limited GCC-PHAT correlation ``r_v`` is evaluated *exactly* at the
delay each candidate point predicts (SRP-PHAT over object hypotheses, DiBiase et al. 2001). A candidate object is
a set of points (several of its Gaussians, not one noisy centroid): its score in a sound segment is

    score_k = max over its points p of  mean over the segment's windows v of  r_v(tau_v(p))

The same statistic at off-object points (uniform in the room) is the baseline. A candidate with ``P`` points is
compared with the median of the best of ``P`` baseline draws (quantile ``0.5 ** (1 / P)``), so a large component
gains nothing from having more points, and divided by the baseline's robust spread (1.4826 × MAD):

    z_k = (score_k − q_P(baseline)) / spread(baseline)

:meth:`ObjectEvidence.likelihood` turns ``z`` into a distribution over "candidate k" and "none of them"
(softmax with the null hypothesis at ``z = 0``).

Reflections
-----------
Floor and ceiling images have nearly the source's azimuth and 74–83 % of its delay at 0.6–0.7 of its level; their
peak merges with the direct one and pulls the measured delay toward zero (docs/scene3d.md). Three response models:

* ``direct``: ``r(tau(p))``;
* ``images``: ``(r(tau(p)) + w Σ_i r(tau(p_i))) / (1 + w n)`` with ``p_i`` ``p`` mirrored in the floor (and
  ceiling) plane, ``w`` = ``image_weight``;
* ``soft``: the largest ``r`` within ``± soft_width`` of ``tau(p)`` (a tolerance kernel).

Taking a source out
-------------------
With two microphones one source of known delay ``tau_1`` can be cancelled: the residual ``Y = R − L e^{−jω tau_1}``
holds no direct sound of it, and the cross-spectrum ``Y conj(L)`` of every other source ``k`` is
``|S_k|² (e^{−jω tau_k} − e^{−jω tau_1})``: a positive peak at ``tau_k`` (``remove_mode="null"``). The DUET
alternative drops the time–frequency bins whose inter-channel phase matches ``tau_1`` within ``duet_width``
radians (``remove_mode="duet"``).

Each source's own signal
------------------------
:func:`extract` steers a two-microphone beamformer at the target's delay per frame window (STFT domain) and
cancels the other bound sources: MVDR with a model covariance ``Σ_j a_j a_jᴴ + δ I`` built from the interferers'
steering vectors (``method="mvdr"``; with one interferer this is a regularised null), or plain delay-and-sum
(``method="das"``). The output is aligned with the left microphone, like the left channel of the source's own
recording.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import signal

from soundmask.audio.tdoa import (
    BAND,
    FLOOR,
    _active,
    _check_stereo,
    _coherent_norm,
    _correlation_near,
    _frame_spectra,
    _phat,
)
from soundmask.audio.types import Segment
from soundmask.constants import SPEED_OF_SOUND
from soundmask.errors import ConfigError, DataError

__all__ = [
    "ObjectEvidence",
    "ResponseModel",
    "WindowSpectra",
    "extract",
    "mirror_points",
    "object_evidence",
    "predicted_delays",
    "window_responses",
    "window_spectra",
]

ResponseModel = Literal["direct", "images", "soft"]
RemoveMode = Literal["null", "duet"]


def predicted_delays(points: Any, mic_left: Any, mic_right: Any, c: float = SPEED_OF_SOUND) -> np.ndarray:
    """``t_right − t_left`` (s) of sources at ``points`` (..., 3) for one microphone pair (positive: left first),
    always as an array: :func:`soundmask.synth.acoustics.geometric_tdoa`, the convention of the whole package."""
    from soundmask.synth.acoustics import geometric_tdoa  # not at module top: audio does not load the generator

    return np.asarray(geometric_tdoa(points, mic_left, mic_right, c), dtype=np.float64)


def mirror_points(points: Any, planes: Sequence[float], axis: int = 2) -> np.ndarray:
    """(n_planes, ..., 3): ``points`` mirrored in each plane ``coordinate[axis] = h`` (first-order image sources
    of horizontal floor / ceiling planes for a z-up scene)."""
    p = np.asarray(points, dtype=np.float64)
    out = np.repeat(p[None], len(planes), axis=0)
    for i, h in enumerate(planes):
        out[i, ..., axis] = 2.0 * float(h) - p[..., axis]
    return out


# ------------------------------------------------------------------------------------------ window spectra
@dataclass
class WindowSpectra:
    """Mean PHAT-weighted cross-spectrum of the active short frames of each frame window: ``A`` (V, K) complex,
    ``norm`` (V,) the height of a perfectly coherent peak (NaN where the window is silent)."""

    A: np.ndarray
    norm: np.ndarray
    nfft: int
    sr: float

    @property
    def audible(self) -> np.ndarray:
        return np.isfinite(self.norm)

    def response(self, v: int, delays: Any) -> np.ndarray:
        """The normalised GCC-PHAT correlation of window ``v`` at ``delays`` (s, any shape; NaN if silent)."""
        d = np.asarray(delays, dtype=np.float64)
        if not np.isfinite(self.norm[v]) or d.size == 0:
            return np.full(d.shape, np.nan)
        r = _correlation_near(self.A[v : v + 1], np.zeros(1), d.ravel() * self.sr, self.nfft)[0] / self.norm[v]
        return r.reshape(d.shape)


def _window_of(centres: np.ndarray, windows: Sequence[Segment]) -> np.ndarray:
    """(F,) index of the window holding each short frame's centre (−1: none; the first window wins)."""
    out = np.full(len(centres), -1, dtype=np.int64)
    for v in range(len(windows) - 1, -1, -1):
        w = windows[v]
        out[(centres >= w.start) & (centres <= w.end)] = v
    return out


def window_spectra(
    stereo: np.ndarray,
    sr: float,
    windows: Sequence[Segment],
    *,
    remove: Any = None,
    remove_mode: RemoveMode = "null",
    duet_width: float = 0.5,
    frame: float = 0.09,
    hop: float | None = None,
    band: tuple[float, float] = BAND,
    active_db: float = 30.0,
    silence_db: float = 60.0,
    floor: float = FLOOR,
) -> WindowSpectra:
    """:class:`WindowSpectra` of ``windows`` of a stereo recording (channel 0 = left).

    ``remove`` (V,) optional: per window the delay (s) of a source to take out first (NaN: none), by nulling or
    DUET bin removal (module notes). Frames and activity follow :func:`soundmask.audio.tdoa.segment_tdoa`: within a
    window, the frames within ``active_db`` of its loudest and within ``silence_db`` of the recording's loudest."""
    x = _check_stereo(stereo, sr)
    if remove_mode not in ("null", "duet"):
        raise ConfigError(f"remove_mode must be null or duet, got {remove_mode!r}")
    L, R, energy, centres, nfft = _frame_spectra(x, sr, frame, hop, None)
    freqs = np.fft.rfftfreq(nfft, 1.0 / sr)
    V = len(windows)
    owner = _window_of(centres, windows)
    G = R * np.conj(L)
    dropped = np.zeros(G.shape, dtype=bool)
    if remove is not None:
        tau = np.asarray(remove, dtype=np.float64).reshape(-1)
        if tau.shape[0] != V:
            raise DataError(f"{tau.shape[0]} delays to remove for {V} windows", fix="pass one delay per window")
        rows = np.flatnonzero((owner >= 0) & np.isfinite(tau[np.maximum(owner, 0)]))
        if rows.size:
            steer = np.exp(-2j * np.pi * np.outer(tau[owner[rows]], freqs))  # e^{-jω tau_1}
            if remove_mode == "null":
                G[rows] = (R[rows] - L[rows] * steer) * np.conj(L[rows])
            else:
                phase = np.angle(G[rows] * np.conj(steer))
                dropped[rows] = np.abs(phase) < duet_width
    W, keep = _phat(G, freqs, band, floor)
    W[dropped] = 0
    keep &= ~dropped
    audible = _active(energy, silence_db)
    A = np.zeros((V, W.shape[1]), np.complex128)
    norm = np.full(V, np.nan)
    for v in range(V):
        inside = np.flatnonzero(owner == v)
        if inside.size == 0:
            continue
        act = inside[_active(energy[inside], active_db) & audible[inside]]
        if act.size == 0:
            continue
        A[v] = W[act].mean(axis=0, dtype=np.complex128)
        norm[v] = _coherent_norm(keep[act].mean(axis=0, dtype=np.float64)[None], nfft)[0]
    return WindowSpectra(A, norm, nfft, float(sr))


# ------------------------------------------------------------------------------------------ object scores
@dataclass
class ObjectEvidence:
    """Acoustic evidence of K candidates in S sound segments: ``score`` (S, K) (module formula; NaN where the
    segment has no audible window), ``baseline`` (S, B) the same statistic at B off-object points, ``n_points``
    (K,) how many points each candidate was scored at."""

    score: np.ndarray
    baseline: np.ndarray
    n_points: np.ndarray

    def z(self) -> np.ndarray:
        """(S, K) standardised evidence against the off-object baseline (module notes); NaN where unknown."""
        S, K = self.score.shape
        out = np.full((S, K), np.nan)
        for s in range(S):
            b = self.baseline[s][np.isfinite(self.baseline[s])]
            if b.size < 4:
                continue
            med = float(np.median(b))
            spread = max(1.4826 * float(np.median(np.abs(b - med))), 1e-3)
            q = np.quantile(b, np.clip(0.5 ** (1.0 / np.maximum(self.n_points, 1)), 0.0, 1.0))
            out[s] = (self.score[s] - q) / spread
        return out

    def likelihood(self, temperature: float = 1.0) -> np.ndarray:
        """(S, K) probability that candidate k is the segment's source, against the others and "none of them"
        (softmax of ``z / temperature`` with the null hypothesis at 0); 0 where unknown."""
        z = np.nan_to_num(self.z(), nan=-np.inf) / max(temperature, 1e-6)
        top = np.maximum(np.max(z, axis=1, keepdims=True, initial=0.0), 0.0)
        e = np.exp(z - top)
        return e / (np.exp(-top) + e.sum(axis=1, keepdims=True))


def _point_response(
    spectra: WindowSpectra,
    v: int,
    points: np.ndarray,
    mic_left: np.ndarray,
    mic_right: np.ndarray,
    model: ResponseModel,
    planes: Sequence[float],
    image_weight: float,
    soft_width: float,
    c: float,
) -> np.ndarray:
    """(n,) response of window ``v`` for sources at ``points`` (n, 3) under ``model``."""
    tau = predicted_delays(points, mic_left, mic_right, c)
    if model == "direct":
        return spectra.response(v, tau)
    if model == "soft":
        offs = np.linspace(-soft_width, soft_width, 7)
        return np.max(spectra.response(v, tau[:, None] + offs[None, :]), axis=1)
    if not planes:
        return spectra.response(v, tau)
    img = predicted_delays(mirror_points(points, planes), mic_left, mic_right, c)  # (n_planes, n)
    r = spectra.response(v, np.concatenate([tau[None], img]))
    return (r[0] + image_weight * r[1:].sum(axis=0)) / (1.0 + image_weight * len(planes))


def window_responses(
    spectra: WindowSpectra,
    mics: Any,
    points: Any,
    *,
    model: ResponseModel = "direct",
    planes: Sequence[float] = (),
    image_weight: float = 0.7,
    soft_width: float = 30e-6,
    c: float = SPEED_OF_SOUND,
) -> np.ndarray:
    """(V, n) the response of every window to a source at each of ``points`` (n, 3), world metres (or (V, n, 3):
    each window's own points, e.g. a moving object's); NaN rows for silent windows. ``mics`` (V, 2, 3): each
    window's left and right microphone; ``model`` / ``planes`` (heights of
    the floor and ceiling on the z axis) / ``image_weight`` / ``soft_width``: the response model (module notes)."""
    m = np.asarray(mics, dtype=np.float64)
    V = len(spectra.norm)
    if m.shape != (V, 2, 3):
        raise DataError(f"mics {m.shape} do not match {V} windows", fix="pass (V, 2, 3): left and right per window")
    if model not in ("direct", "images", "soft"):
        raise ConfigError(f"response model must be direct, images or soft, got {model!r}")
    p = np.asarray(points, dtype=np.float64)
    per_window = p.ndim == 3
    if per_window and p.shape[0] != V:
        raise DataError(f"points {p.shape} do not match {V} windows", fix="pass (n, 3) or (V, n, 3) points")
    p = p if per_window else p.reshape(-1, 3)
    out = np.full((V, p.shape[-2]), np.nan)
    for v in np.flatnonzero(spectra.audible):
        pv = p[v] if per_window else p
        out[v] = _point_response(spectra, int(v), pv, m[v, 0], m[v, 1], model, planes, image_weight, soft_width, c)
    return out


def object_evidence(responses: Any, groups: Sequence[Any], n_points: Sequence[int], baseline: Any) -> ObjectEvidence:
    """:class:`ObjectEvidence` from per-window ``responses`` (V, n) (:func:`window_responses`) of the candidates'
    points, stacked candidate after candidate (``n_points[k]`` each), and of the off-object ``baseline`` (V, B).

    ``groups``: the windows of each sound segment (S arrays of window indices; a window may be in several, e.g.
    sliding neighbourhoods). Silent windows (NaN) do not count; a segment without an audible window is NaN."""
    r = np.asarray(responses, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    counts = np.asarray(n_points, dtype=np.int64)
    if r.shape[1] != counts.sum():
        raise DataError(f"{r.shape[1]} responses for {counts.sum()} candidate points", fix="stack every point")
    owner = np.repeat(np.arange(len(counts)), counts)
    audible = np.isfinite(np.concatenate([r, b], axis=1)).any(axis=1)
    S, K = len(groups), len(counts)
    score = np.full((S, K), np.nan)
    base = np.full((S, b.shape[1]), np.nan)
    for s, g in enumerate(groups):
        rows = np.asarray(g, dtype=np.int64)
        rows = rows[audible[rows]]
        if rows.size == 0:
            continue
        mean = r[rows].mean(axis=0)
        for k in range(K):
            if counts[k]:
                score[s, k] = mean[owner == k].max()
        base[s] = b[rows].mean(axis=0)
    return ObjectEvidence(score, base, counts)


# ------------------------------------------------------------------------------------------ extraction
def extract(
    stereo: np.ndarray,
    sr: float,
    windows: Sequence[Segment],
    target: Any,
    interferers: Any = None,
    *,
    method: Literal["mvdr", "das"] = "mvdr",
    loading: float = 0.1,
    nperseg: int = 1024,
) -> np.ndarray:
    """One source's own signal (S,) float32 from a stereo recording: a beamformer steered per frame window at the
    target's delay ``target`` (V,) s, cancelling ``interferers`` (V, M) s (NaN: absent) with ``method="mvdr"``
    (module notes; ``loading`` δ regularises the null where the delays nearly coincide). Outside every window the
    output is silent; a window with a NaN target delay too."""
    x = _check_stereo(stereo, sr)
    if method not in ("mvdr", "das"):
        raise ConfigError(f"method must be mvdr or das, got {method!r}")
    tgt = np.asarray(target, dtype=np.float64).reshape(-1)
    V = len(windows)
    if tgt.shape[0] != V:
        raise DataError(f"{tgt.shape[0]} target delays for {V} windows", fix="pass one delay per window")
    itf = np.full((V, 0), np.nan) if interferers is None else np.asarray(interferers, dtype=np.float64)
    itf = itf.reshape(V, -1)
    hop = nperseg // 4
    f, t, X = signal.stft(x.astype(np.float64), fs=sr, nperseg=nperseg, noverlap=nperseg - hop, boundary="even")
    owner = _window_of(t, windows)
    Y = np.zeros(X.shape[1:], np.complex128)  # (K, T)
    w_ = 2j * np.pi * f  # jω
    for v in range(V):
        cols = np.flatnonzero(owner == v)
        if cols.size == 0 or not np.isfinite(tgt[v]):
            continue
        a = np.stack([np.ones_like(f, dtype=np.complex128), np.exp(-w_ * tgt[v])], axis=-1)  # (K, 2)
        js = itf[v][np.isfinite(itf[v])]
        if method == "das" or js.size == 0:
            wts = a / 2.0
        else:
            Rm = loading * np.eye(2, dtype=np.complex128)[None].repeat(len(f), 0)
            for tj in js:
                b = np.stack([np.ones_like(f, dtype=np.complex128), np.exp(-w_ * tj)], axis=-1)
                Rm += b[:, :, None] * np.conj(b[:, None, :])
            Ra = np.linalg.solve(Rm, a[:, :, None])[..., 0]  # R^{-1} a
            wts = Ra / np.sum(np.conj(a) * Ra, axis=-1, keepdims=True).conj()  # w = R^{-1}a / (aᴴR^{-1}a)
        Y[:, cols] = np.sum(np.conj(wts)[:, :, None] * X[:, :, cols].transpose(1, 0, 2), axis=1)
    _, y = signal.istft(Y, fs=sr, nperseg=nperseg, noverlap=nperseg - hop, boundary=True)
    n = x.shape[1]
    return np.pad(y, (0, max(0, n - len(y))))[:n].astype(np.float32)
