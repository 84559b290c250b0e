"""Each source's own signal from a two-microphone recording when we know where each source is and when it sounds:
an activity- and position-informed time–frequency mask (issue 29, item 4).

Why not a beamformer alone
--------------------------
With two microphones 0.2 m apart in a reverberant room (RT60 0.2–0.6 s), a source's STFT bins are not one steering
vector times its spectrum: the reverberant part arrives from everywhere. Nulling the other source's direct path
(:func:`soundmask.audio.evidence.extract`, MVDR) removes 1–2 dB of it and distorts the target's own reverberation;
on generated scenes with every object's own recording the SI-SDR *drops* by 1–3 dB (docs/scene3d.md). What does
separate them is knowing, per frame window, *which* sources sound (the binding) and *where* (their 3D positions).

The mask
--------
For a frame window ``v`` where the sources ``A_v`` sound, every STFT bin ``(f, t)`` of the window is shared among
them by a posterior that multiplies two independent cues:

* **spatial** — the inter-channel phase ``φ = arg(R conj L)`` against each source's predicted delay ``τ_j``
  (a von Mises likelihood ``exp(κ cos(φ + ω τ_j))``: a pure source ``j`` gives ``φ = −ω τ_j``);
* **spectral** — each source's magnitude spectrum modelled by non-negative matrix factorisation (KL divergence,
  multiplicative updates): a dictionary ``W_j`` of ``rank`` spectra is learnt on the frames of the windows where
  ``j`` sounds *alone*, and in a shared window the magnitudes ``|L| + |R|`` are decomposed on the fixed
  ``[W_j for j in A_v]`` (a source that never sounds alone gets ``rank_free`` free spectra learnt there instead);
  ``W_j H_j`` is its share.

``mask_j = p_spatial(j) W_j H_j / Σ_i p_spatial(i) W_i H_i`` is applied to the left channel, so that the output is
aligned with the left microphone, like the left channel of the source's own recording. A window where one source
sounds alone gives it the recording itself (mask 1); a window where it does not sound, silence.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import signal

from soundmask.audio.types import Segment
from soundmask.errors import DataError

__all__ = ["informed_separation", "nmf"]

_EPS = 1e-10


def nmf(
    P: np.ndarray,
    rank: int,
    iterations: int = 60,
    *,
    fixed: np.ndarray | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """KL-NMF ``P ≈ W H`` (P (K, T) ≥ 0) by multiplicative updates, in float32: ``W`` (K, n_fixed + rank), ``H``
    (·, T). The columns of ``fixed`` (K, n) are kept, ``rank`` free columns are learnt (unit-sum columns)."""
    rng = np.random.default_rng(seed)
    P = np.asarray(P, dtype=np.float32)
    K, T = P.shape
    scale = float(P.mean()) + _EPS
    free = (rng.uniform(0.1, 1.0, (K, rank)) * scale).astype(np.float32)
    W = free if fixed is None else np.concatenate([np.asarray(fixed, np.float32), free], axis=1)
    n_fixed = 0 if fixed is None else fixed.shape[1]
    H = rng.uniform(0.1, 1.0, (W.shape[1], T)).astype(np.float32)
    for _ in range(iterations):
        H *= (W.T @ (P / (W @ H + _EPS))) / (W.sum(axis=0)[:, None] + _EPS)
        if rank:
            Wf = W[:, n_fixed:]
            Hf = H[n_fixed:]
            Wf *= ((P / (W @ H + _EPS)) @ Hf.T) / (Hf.sum(axis=1)[None, :] + _EPS)
            s = Wf.sum(axis=0, keepdims=True) + _EPS
            Wf /= s
            Hf *= s.T
    return W, H


def informed_separation(
    stereo: np.ndarray,
    sr: float,
    windows: Sequence[Segment],
    delays: Any,
    active: Any,
    *,
    kappa: float = 2.0,
    frame: float = 0.046,
    rank: int = 32,
    iterations: int = 40,
    rank_free: int = 8,
    max_frames: int = 1500,
    min_share: float = 0.005,
    seed: int = 0,
) -> np.ndarray:
    """(M, S) float32: each of M sources' own signal from a stereo recording (channel 0 = left) at ``sr``
    (module notes). ``active`` (V, M) bool: which sources sound in each of the frame ``windows``; ``delays``
    (V, M) s: their predicted inter-microphone delays there (``t_right − t_left``; NaN where unknown: no spatial
    cue). ``frame`` s: the STFT frame (rounded up to a power of two, hop a quarter); ``max_frames``: at most this
    many frames (evenly spaced) learn a dictionary, whose spectra that carry less than ``min_share`` of its
    frames' magnitude are dropped (they model the noise floor, and would explain any other source)."""
    x = np.asarray(stereo, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != 2:
        raise DataError(f"stereo audio must be (2, samples), got shape {x.shape}")
    V = len(windows)
    act = np.asarray(active, dtype=bool)
    tau = np.asarray(delays, dtype=np.float64)
    if act.ndim != 2 or act.shape[0] != V or tau.shape != act.shape:
        raise DataError(
            f"active {act.shape} and delays {tau.shape} must both be (windows={V}, sources)",
            fix="pass one row per frame window and one column per source",
        )
    M = act.shape[1]
    n = x.shape[1]
    nperseg = 1 << max(6, int(np.ceil(np.log2(max(frame * sr, 2)))))
    hop = nperseg // 4
    f, t, X = signal.stft(x, fs=sr, nperseg=nperseg, noverlap=nperseg - hop, boundary="even")
    from soundmask.audio.evidence import _window_of

    owner = _window_of(t, windows)
    P = np.abs(X[0]) + np.abs(X[1])
    phi = np.angle(X[1] * np.conj(X[0]))
    w = 2.0 * np.pi * f
    alone = act & (act.sum(axis=1, keepdims=True) == 1)
    dicts: dict[int, np.ndarray] = {}
    for j in range(M):
        cols = np.flatnonzero(np.isin(owner, np.flatnonzero(alone[:, j])))
        cols = cols[P[:, cols].sum(axis=0) > 0] if cols.size else cols
        r = min(rank, cols.size // 2)  # no more spectra than half the frames: they would copy single frames
        if r >= 4:
            if cols.size > max_frames:
                cols = cols[np.linspace(0, cols.size - 1, max_frames).round().astype(np.int64)]
            W, H = nmf(P[:, cols], r, iterations, seed=seed + j)
            share = H.sum(axis=1) / (H.sum() + _EPS)  # the columns of W sum to 1: each spectrum's part of the total
            dicts[j] = W[:, share >= min_share]
    Y = np.zeros((M, *X.shape[1:]), np.complex128)
    for v in range(V):
        cols = np.flatnonzero(owner == v)
        A = np.flatnonzero(act[v])
        if cols.size == 0 or A.size == 0:
            continue
        if A.size == 1:
            Y[A[0]][:, cols] = X[0][:, cols]
            continue
        post = np.ones((A.size, len(f), cols.size))
        if np.isfinite(tau[v, A]).all():
            ll = np.stack([kappa * np.cos(phi[:, cols] + w[:, None] * tau[v, j]) for j in A])
            post *= np.exp(ll - ll.max(axis=0, keepdims=True))
        post *= _spectral_shares(P[:, cols], [dicts.get(int(j)) for j in A], rank_free, iterations, seed + v)
        mask = post / (post.sum(axis=0, keepdims=True) + _EPS)
        for a, src in enumerate(A):
            Y[src][:, cols] = mask[a] * X[0][:, cols]
    out = np.zeros((M, n), np.float32)
    for j in range(M):
        if np.any(Y[j]):
            _, y = signal.istft(Y[j], fs=sr, nperseg=nperseg, noverlap=nperseg - hop, boundary=True)
            out[j] = np.pad(y, (0, max(0, n - len(y))))[:n]
    return out


def _spectral_shares(
    P: np.ndarray, dicts: list[np.ndarray | None], rank_free: int, iterations: int, seed: int
) -> np.ndarray:
    """(len(dicts), K, T): each source's modelled magnitude in ``P`` — its dictionary's part of an NMF on the fixed
    dictionaries plus ``rank_free`` free spectra shared by the sources without one (equal shares); all ones when no
    source has a dictionary."""
    known = [d for d in dicts if d is not None]
    if not known:
        return np.ones((len(dicts), *P.shape))
    missing = sum(d is None for d in dicts)
    fixed = np.concatenate(known, axis=1)
    W, H = nmf(P, rank_free if missing else 0, iterations, fixed=fixed, seed=seed)
    nf = fixed.shape[1]
    free = W[:, nf:] @ H[nf:] / max(missing, 1)
    out = np.empty((len(dicts), *P.shape))
    off = 0
    for a, d in enumerate(dicts):
        if d is None:
            out[a] = free
        else:
            out[a] = W[:, off : off + d.shape[1]] @ H[off : off + d.shape[1]]
            off += d.shape[1]
    return out + _EPS
