"""Each bound object's own signal and its audio tags (DESIGN.md stage 8; issue 29, item 4).

Once the binding has decided which objects sound in which frame window, every bound object (a
:class:`~soundmask.lift.tags.SoundTag`) gets its own signal from the stereo recording:

* **where to steer** — per frame window, the median of its Gaussians' centres at the window's middle time (4D
  models move them; :func:`object_positions`), and the delay it predicts for that window's two microphones
  (:func:`soundmask.audio.evidence.predicted_delays`; the camera, and so the microphone pair, moves);
* **what to cancel** — the other bound objects that sound in the same window, each at its own delay;
* **how** — ``method="mask"`` (the default): :func:`soundmask.audio.informed.informed_separation`, a time–frequency
  mask on the left channel that shares each bin among the objects sounding in the window by the phase each one's
  delay predicts and by a spectral model of each one learnt where it sounds alone; or a beamformer,
  :func:`soundmask.audio.evidence.extract`: MVDR with the interferers' steering vectors (a regularised null with
  one interferer; ``method="mvdr"``) or plain delay-and-sum (``method="das"``). With two microphones in a
  reverberant room the beamformers hardly separate (the measured numbers are in docs/scene3d.md).

**Inactive windows are silent.** The signal covers the whole recording (same length, aligned with the left
microphone, like the left channel of the object's own recording) but only the frame windows where the object is
bound carry sound: elsewhere another object, or nothing we found, sounds, and a beamformer cannot tell. A window
is one frame's ``[t, t + 1/fps)``; training frames take the binding's activity, held-out frames the activity of
their nearest training frames (:meth:`~soundmask.lift.associate.ComponentTimeline.active_at`, as the evaluation).
Without stereo audio or microphone positions the signal is the mixture (mono, or the left channel) gated the same
way (``method="gated"``).

:func:`tag_objects` then tags each object with YAMNet on its own signal, over the windows where it sounds (mean
scores and embedding, as :func:`~soundmask.lift.tags.tags_from_timeline` does on the mixture), so two objects that
sound together no longer share the mixture's label. docs/scene3d.md has the measured effect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from soundmask.constants import SPEED_OF_SOUND
from soundmask.errors import ConfigError, DataError

if TYPE_CHECKING:
    from soundmask.audio.types import Segment
    from soundmask.lift.tags import SoundTag
    from soundmask.splat.gaussians import Gaussians

__all__ = ["ObjectAudio", "SeparationMethod", "object_positions", "separate_objects", "tag_objects", "tdoa_agreement"]

SeparationMethod = Literal["mask", "mvdr", "das", "none"]


@dataclass
class ObjectAudio:
    """One bound object's own signal: ``signal`` (S,) float32 at ``sample_rate`` over the whole recording (aligned
    with the left microphone), sounding only in the frame windows ``active`` (F,) bool; ``method`` how it was made
    (mask | mvdr | das | gated)."""

    component_id: int
    signal: np.ndarray
    sample_rate: int
    active: np.ndarray
    method: str


def object_positions(g: Gaussians, indices: Sequence[Any], times: Sequence[float | None]) -> np.ndarray:
    """(F, K, 3): the median centre of each object's Gaussians ``indices[k]`` at each of ``times`` (s; a static
    model, or None, gives the same point for every window). An object without Gaussians gets NaN."""
    F, K = len(times), len(indices)
    out = np.full((F, K, 3), np.nan)
    with torch.no_grad():
        moving = g.dynamic
        static = g.means.detach().cpu().numpy().astype(np.float64)
        for f, t in enumerate(times):
            m = g.centres_at(t) if (moving and t is not None) else static
            for k, idx in enumerate(indices):
                ix = np.asarray(idx, dtype=np.int64).ravel()
                if ix.size:
                    out[f, k] = np.median(m[ix], axis=0)
            if not moving:
                out[f + 1 :] = out[f]
                break
    return out


def tdoa_agreement(
    positions: np.ndarray,
    active: np.ndarray,
    frames: Sequence[Any],
    mid_times: Sequence[float],
    track_times: np.ndarray,
    track_tau: np.ndarray,
    c: float = SPEED_OF_SOUND,
) -> np.ndarray:
    """(K,) the median |τ_object − τ_audio| (s) of each object over the frames where it sounds (``active`` (F, K)):
    τ_object is the delay its position ``positions[f, k]`` predicts for frame f's microphones, τ_audio the
    audio-only TDoA track (:func:`soundmask.audio.tdoa.track_tdoa`: ``track_times``, ``track_tau``) at the
    frame window's middle ``mid_times[f]``. The cross-check of a moving object's 3D track against what the two
    microphones hear; NaN for an object that never sounds where both are known."""
    from soundmask.audio.evidence import predicted_delays

    F, K = active.shape
    out = np.full(K, np.nan)
    ok_track = np.isfinite(track_tau)
    if ok_track.sum() < 2:
        return out
    tau_audio = np.interp(np.asarray(mid_times, float), track_times[ok_track], track_tau[ok_track])
    for k in range(K):
        d = [
            abs(float(predicted_delays(positions[f, k], frames[f].mic_left, frames[f].mic_right, c)) - tau_audio[f])
            for f in np.flatnonzero(active[:, k]).tolist()
            if frames[f].mic_left is not None and np.isfinite(positions[f, k]).all()
        ]
        if d:
            out[k] = float(np.median(d))
    return out


def _gated(x: np.ndarray, sr: int, windows: Sequence[Segment], active: np.ndarray) -> np.ndarray:
    out = np.zeros_like(x, dtype=np.float32)
    for w, a in zip(windows, active, strict=True):
        if a:
            lo, hi = max(0, round(w.start * sr)), min(x.size, round(w.end * sr))
            out[lo:hi] = x[lo:hi]
    return out


def separate_objects(
    audio: np.ndarray,
    sr: int,
    windows: Sequence[Segment],
    active: Any,
    positions: Any,
    component_ids: Sequence[int],
    mics: Any = None,
    *,
    method: Literal["mask", "mvdr", "das"] = "mask",
    loading: float = 0.1,
    c: float = SPEED_OF_SOUND,
    seed: int = 0,
) -> list[ObjectAudio]:
    """Each object's own signal (module notes) from ``audio`` ((2, S) stereo, channel 0 = left, or (S,) mono) at
    ``sr``: object ``k`` (``component_ids[k]``) sounds in frame window ``windows[f]`` when ``active[f, k]``, at
    ``positions[f, k]`` (world metres); ``mics`` (F, 2, 3) the left and right microphone of each window (None: no
    steering, the gated mixture)."""
    if method not in ("mask", "mvdr", "das"):
        raise ConfigError(f"separation method must be mask, mvdr or das, got {method!r}")
    F, K = len(windows), len(component_ids)
    act = np.asarray(active, dtype=bool).reshape(F, K)
    x = np.asarray(audio, dtype=np.float32)
    stereo = x.ndim == 2 and x.shape[0] == 2
    if not stereo and x.ndim != 1:
        raise DataError(f"audio must be (2, samples) stereo or (samples,) mono, got shape {x.shape}")
    if mics is None or not stereo:
        mono = x[0] if stereo else x
        return [
            ObjectAudio(int(cid), _gated(mono, sr, windows, act[:, k]), int(sr), act[:, k].copy(), "gated")
            for k, cid in enumerate(component_ids)
        ]
    from soundmask.audio.evidence import extract, predicted_delays

    pos = np.asarray(positions, dtype=np.float64).reshape(F, K, 3)
    mp = np.asarray(mics, dtype=np.float64).reshape(F, 2, 3)
    delays = predicted_delays(pos, mp[:, None, 0], mp[:, None, 1], c)  # (F, K)
    delays = np.where(act & np.isfinite(delays), delays, np.nan)
    if method == "mask":
        from soundmask.audio.informed import informed_separation

        sigs = informed_separation(x, sr, windows, delays, act & np.isfinite(delays), seed=seed)
        return [
            ObjectAudio(int(cid), sigs[k], int(sr), act[:, k].copy(), "mask") for k, cid in enumerate(component_ids)
        ]
    out = []
    for k, cid in enumerate(component_ids):
        others = np.delete(delays, k, axis=1)  # the other bound objects, NaN where they are silent
        sig = extract(x, sr, windows, delays[:, k], others, method=method, loading=loading)
        out.append(ObjectAudio(int(cid), sig, int(sr), act[:, k].copy(), method))
    return out


def tag_objects(
    tags: Sequence[SoundTag],
    audio: Sequence[ObjectAudio],
    windows: Sequence[Segment],
    *,
    embedder: Any = None,
    top_k: int = 3,
) -> list[SoundTag]:
    """``tags`` with each one's own signal attached (``audio``, matched by component id) and its label, top
    ``top_k`` scores and embedding from YAMNet (or ``embedder``) on that signal over the windows where it sounds
    (mean of the per-window scores and embeddings). A tag without signal or without an active window, or when
    tagging fails (no YAMNet weights), keeps its mixture label."""
    by_id = {int(a.component_id): a for a in audio}
    if embedder is None:
        try:
            from soundmask.audio.embed import get_embedder

            embedder = get_embedder("yamnet")
        except Exception:  # noqa: BLE001 - tagging is optional, as on the mixture (soundmask.audio.cues)
            embedder = None
    out = []
    for tag in tags:
        oa = by_id.get(int(tag.component_id))
        if oa is None:
            out.append(tag)
            continue
        new = replace(tag, audio=oa.signal, sample_rate=int(oa.sample_rate))
        wins = [windows[int(f)] for f in np.flatnonzero(oa.active)]
        if embedder is not None and wins and np.any(oa.signal):
            try:
                tg = embedder.tag(oa.signal, oa.sample_rate, wins)
            except Exception:  # noqa: BLE001 - keep the mixture's label rather than fail the whole lift
                tg = []
            if tg:
                scores = np.mean([t.scores for t in tg], axis=0)
                order = np.argsort(-scores, kind="stable")[:top_k]
                new.label = str(tg[0].labels[order[0]])
                new.scores = {str(tg[0].labels[i]): float(scores[i]) for i in order}
                new.embedding = np.mean([t.embedding for t in tg], axis=0).astype(np.float32).ravel()
        out.append(new)
    return out
