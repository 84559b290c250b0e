"""Activity chunking: the stretches of a recording where something sounds, as :class:`~soundmask.audio.types.Segment`.

Energy detector (the classic short-time-energy endpoint detector with hysteresis, cf. Rabiner & Sambur 1975):

1. frame power (mean square over ``frame`` s every ``hop`` s, channels averaged) in dB;
2. a robust noise floor: the 10th percentile of the frame levels, but never closer than 40 dB to the loudest frame
   (a recording that sounds throughout still has its sound found);
3. hysteresis: a stretch of frames above the *off* threshold counts when one of its frames reaches the *on*
   threshold ``max(floor + snr_db, max + threshold_db, absolute_db)``; off = on − ``hysteresis_db`` (not below
   floor + snr/2). ``absolute_db`` (−70 dBFS) keeps digital silence, dither and faint hiss out; a steady sound
   louder than that which lasts the whole file (a fan, room tone) is one segment — the silence veto below can drop
   what is only background;
4. gaps shorter than ``min_gap`` are closed, segments shorter than ``min_segment`` dropped;
5. score: the mean of the frames' level normalised between the floor (0) and the loudest frame (1).

Optional extras:

* speech: silero-vad (Silero Team, github.com/snakers4/silero-vad; ONNX, 16 kHz) speech stretches become
  ``kind="speech"`` segments; the energy segments keep what speech does not cover (``kind="sound"``). Skipped, with a
  logged note, when ``silero_vad`` is not installed.
* a silence veto: per-hop "Silence" class probabilities of an audio tagger (YAMNet: 0.96 s windows every 0.48 s) as a
  plain ``(times, probs)`` pair of arrays — ``times`` are the windows' centres (s) — or a callable
  ``(mono, sr) -> (times, probs)``; segments whose mean silence probability reaches ``silence_threshold`` are dropped.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import ndimage

from soundmask.audio.io import resample
from soundmask.audio.types import Segment
from soundmask.errors import ConfigError, DataError

__all__ = ["ActivityProfile", "activity", "activity_profile", "chunk", "frame_precision_recall", "speech_segments"]

log = logging.getLogger(__name__)

Interval = tuple[float, float]
SilenceScores = tuple[np.ndarray, np.ndarray] | Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]
_EPS_POWER = 1e-12  # −120 dB: digital silence
_FLOOR_PERCENTILE = 10.0
_FLOOR_MAX_BELOW_PEAK = 40.0  # dB
_VAD_SR = 16000
_VAD_PAD = 0.1  # s of context around each energy segment given to the VAD


@dataclass
class ActivityProfile:
    """Frame levels of a recording and the thresholds the detector derived from them (all dB re full scale)."""

    times: np.ndarray  # (N,) frame centres, s
    level_db: np.ndarray  # (N,)
    floor_db: float
    max_db: float
    on_db: float
    off_db: float
    hop: float

    @property
    def normalised(self) -> np.ndarray:
        """Frame activity in [0, 1]: the level between the noise floor (0) and the loudest frame (1)."""
        span = max(self.max_db - self.floor_db, 1e-9)
        return np.clip((self.level_db - self.floor_db) / span, 0.0, 1.0)


def _as_mono_power(audio: np.ndarray) -> np.ndarray:
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[1] == 0:
        raise DataError(f"audio must be (samples,) or (channels, samples) with samples, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise DataError("audio contains NaN or infinite samples", fix="clean the recording before chunking")
    return a


def activity_profile(
    audio: np.ndarray,
    sr: int,
    *,
    frame: float = 0.02,
    hop: float = 0.01,
    threshold_db: float = -45.0,
    snr_db: float = 10.0,
    hysteresis_db: float = 6.0,
    absolute_db: float = -70.0,
) -> ActivityProfile:
    """Frame levels (centred frames, mean square over channels and ``frame`` s, every ``hop`` s) and thresholds."""
    if sr <= 0 or frame <= 0 or hop <= 0:
        raise ConfigError(f"sample rate, frame and hop must be > 0, got {sr} Hz, {frame} s, {hop} s")
    a = _as_mono_power(audio)
    n, h = max(1, round(frame * sr)), max(1, round(hop * sr))
    power = np.mean(a.astype(np.float64) ** 2, axis=0)
    csum = np.concatenate([[0.0], np.cumsum(np.pad(power, (n // 2, n - n // 2)))])
    starts = np.arange(0, len(power), h)  # frame k is centred on sample k·h
    level = 10 * np.log10(np.maximum((csum[starts + n] - csum[starts]) / n, _EPS_POWER))
    top = float(level.max())
    floor = min(float(np.percentile(level, _FLOOR_PERCENTILE)), top - _FLOOR_MAX_BELOW_PEAK)
    on = max(floor + snr_db, top + threshold_db, absolute_db)
    off = max(on - hysteresis_db, floor + 0.5 * snr_db)
    return ActivityProfile(starts / sr, level, floor, top, on, off, h / sr)


def _hysteresis(prof: ActivityProfile) -> np.ndarray:
    """Frames above ``off`` in runs that reach ``on`` (vectorised: label the runs, keep those with an ``on`` frame)."""
    labels, count = ndimage.label(prof.level_db >= prof.off_db)
    if count == 0:
        return np.zeros(len(labels), bool)
    strong = ndimage.maximum(prof.level_db, labels, index=np.arange(1, count + 1)) >= prof.on_db
    return np.concatenate([[False], strong])[labels]


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[first, last]`` frame indices of the True runs of ``mask``."""
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), (np.flatnonzero(d == -1) - 1).tolist(), strict=True))


def _merge(intervals: Sequence[tuple[float, float]], min_gap: float) -> list[tuple[float, float]]:
    """Union of intervals, also closing gaps shorter than ``min_gap``."""
    out: list[tuple[float, float]] = []
    for a, b in sorted(intervals):
        if out and a - out[-1][1] < min_gap:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _subtract(intervals: Sequence[Interval], cut: Sequence[Interval]) -> list[Interval]:
    """``intervals`` minus the union of ``cut`` (both sorted lists of (start, end))."""
    out: list[tuple[float, float]] = []
    for a, b in intervals:
        pieces = [(a, b)]
        for c0, c1 in cut:
            pieces = [p for q in pieces for p in ((q[0], min(q[1], c0)), (max(q[0], c1), q[1])) if p[1] > p[0]]
        out += pieces
    return out


def _score(prof: ActivityProfile, a: float, b: float) -> float:
    sel = (prof.times >= a) & (prof.times <= b)
    act = prof.normalised[sel] if sel.any() else prof.normalised[[int(np.argmin(np.abs(prof.times - 0.5 * (a + b))))]]
    return float(np.mean(act))


# ----------------------------------------------------------------------------------------------- silero-vad
@functools.lru_cache(maxsize=1)
def _silero() -> tuple[Any, Callable[..., Any]] | None:
    """The silero-vad ONNX model and ``get_speech_timestamps`` (loaded once), or None when not installed."""
    try:
        from silero_vad import get_speech_timestamps, load_silero_vad

        return load_silero_vad(onnx=True), get_speech_timestamps
    except Exception as e:  # noqa: BLE001 - ImportError, or onnxruntime failing to load: run without speech
        log.warning(
            "silero-vad is not available (%s: %s); chunking without speech detection "
            "(fix: pip install silero-vad onnxruntime)",
            type(e).__name__,
            e,
        )
        return None


def speech_segments(
    audio: np.ndarray,
    sr: int,
    min_segment: float = 0.25,
    min_gap: float = 0.2,
    threshold: float = 0.5,
    spans: Sequence[tuple[float, float]] | None = None,
) -> list[tuple[float, float]] | None:
    """Speech stretches (s) found by silero-vad on the channel mix at 16 kHz; None when silero-vad is unavailable.

    ``spans``: only look inside these (start, end) stretches, e.g. the energy segments (speech is never silent),
    which saves the VAD's time on silence."""
    vad = _silero()
    if vad is None:
        return None
    import torch

    model, get_speech_timestamps = vad
    mono = resample(_as_mono_power(audio).mean(axis=0), sr, _VAD_SR)
    found: list[tuple[float, float]] = []
    for a, b in spans if spans is not None else [(0.0, len(mono) / _VAD_SR)]:
        i0, i1 = max(0, int(a * _VAD_SR)), min(len(mono), int(np.ceil(b * _VAD_SR)))
        if i1 - i0 < _VAD_SR * min_segment:
            continue
        stamps = get_speech_timestamps(
            torch.from_numpy(np.ascontiguousarray(mono[i0:i1])),
            model,
            threshold=threshold,
            sampling_rate=_VAD_SR,
            min_speech_duration_ms=int(1000 * min_segment),
            min_silence_duration_ms=int(1000 * min_gap),
        )
        found += [((i0 + s["start"]) / _VAD_SR, (i0 + s["end"]) / _VAD_SR) for s in stamps]
    return found


# ------------------------------------------------------------------------------------------ silence veto
def _silence_of(scores: SilenceScores, audio: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    times, probs = scores(_as_mono_power(audio).mean(axis=0), sr) if callable(scores) else scores
    t, p = np.asarray(times, dtype=np.float64).reshape(-1), np.asarray(probs, dtype=np.float64).reshape(-1)
    if len(t) != len(p):
        raise ConfigError(
            f"silence_scores: {len(t)} times but {len(p)} probabilities",
            fix="pass (times, probs) arrays of the same length",
        )
    return t, p


def _silent(seg: tuple[float, float], times: np.ndarray, probs: np.ndarray, threshold: float) -> bool:
    """Mean silence probability of the hops centred in ``seg`` (the nearest hop when none is) ≥ ``threshold``."""
    if len(times) == 0:
        return False
    sel = (times >= seg[0]) & (times <= seg[1])
    p = probs[sel] if sel.any() else probs[[int(np.argmin(np.abs(times - 0.5 * (seg[0] + seg[1]))))]]
    return bool(np.mean(p) >= threshold)


# ----------------------------------------------------------------------------------------------- chunking
def chunk(
    audio: np.ndarray,
    sr: int,
    *,
    min_segment: float = 0.25,
    min_gap: float = 0.2,
    threshold_db: float = -45.0,
    snr_db: float = 10.0,
    hysteresis_db: float = 6.0,
    absolute_db: float = -70.0,
    frame: float = 0.02,
    hop: float = 0.01,
    speech: bool | Literal["auto"] = "auto",
    silence_scores: SilenceScores | None = None,
    silence_threshold: float = 0.5,
) -> list[Segment]:
    """Segments of ``audio`` (``(S,)`` or ``(C, S)``) where something sounds, sorted by start (see the module notes).

    ``threshold_db``: frames more than this far below the loudest frame never start a segment; ``snr_db``: nor do
    frames less than this above the noise floor, nor frames below ``absolute_db`` dBFS. ``frame``/``hop`` (s): the
    level frames. ``speech``: True runs silero-vad (a logged warning when it is not installed), ``"auto"`` runs it
    when installed, False never. ``silence_scores`` / ``silence_threshold``: a YAMNet-style silence veto.
    """
    if min_segment < 0 or min_gap < 0:
        raise ConfigError(f"min_segment and min_gap must be ≥ 0 s, got {min_segment}, {min_gap}")
    if speech not in (True, False, "auto"):
        raise ConfigError(f"speech must be True, False or 'auto', got {speech!r}")
    prof = activity_profile(
        audio,
        sr,
        frame=frame,
        hop=hop,
        threshold_db=threshold_db,
        snr_db=snr_db,
        hysteresis_db=hysteresis_db,
        absolute_db=absolute_db,
    )
    duration = np.asarray(audio).shape[-1] / sr
    runs = [
        (max(0.0, prof.times[a] - prof.hop / 2), min(duration, prof.times[b] + prof.hop / 2))
        for a, b in _runs(_hysteresis(prof))
    ]
    sound = [s for s in _merge(runs, min_gap) if s[1] - s[0] >= min_segment]
    spoken = _speech(audio, sr, speech, min_segment, min_gap, duration, sound) if sound else []
    parts = [(s, "speech") for s in spoken]
    parts += [(s, "sound") for s in _subtract(sound, spoken) if s[1] - s[0] >= min_segment]
    if silence_scores is not None and parts:
        t, p = _silence_of(silence_scores, audio, sr)
        parts = [(s, k) for s, k in parts if not _silent(s, t, p, silence_threshold)]
    parts.sort(key=lambda item: item[0])
    return [Segment(float(a), float(b), _score(prof, a, b), kind) for (a, b), kind in parts]


def _speech(
    audio: np.ndarray,
    sr: int,
    speech: bool | str,
    min_segment: float,
    min_gap: float,
    duration: float,
    sound: Sequence[tuple[float, float]],
) -> list[tuple[float, float]]:
    if speech is False:
        return []
    if speech == "auto" and importlib.util.find_spec("silero_vad") is None:
        log.info("silero-vad is not installed: chunking on energy only")
        return []
    spans = _merge([(a - _VAD_PAD, b + _VAD_PAD) for a, b in sound], 0.0)
    found = speech_segments(audio, sr, min_segment, min_gap, spans=spans)
    if found is None:
        return []
    clipped = [(max(0.0, a), min(duration, b)) for a, b in _merge(found, min_gap)]
    return [(a, b) for a, b in clipped if b - a >= min_segment]


# --------------------------------------------------------------------------------------------- evaluation
def _intervals(items: Sequence[Any]) -> np.ndarray:
    """(N, 2) start/end of Segments, SoundEvents (anything with ``.start``/``.end``) or (start, end) pairs."""
    rows = [(float(x.start), float(x.end)) if hasattr(x, "start") else (float(x[0]), float(x[1])) for x in items]
    return np.asarray(rows, dtype=np.float64).reshape(-1, 2)


def activity(segments: Sequence[Any], times: np.ndarray) -> np.ndarray:
    """Boolean array: ``times[i]`` lies in some segment ``[start, end)`` (segments may overlap, in any order)."""
    t = np.asarray(times, dtype=np.float64)
    iv = _merge([tuple(r) for r in _intervals(segments)], 0.0)
    if not iv:
        return np.zeros(t.shape, bool)
    starts, ends = np.asarray(iv).T
    k = np.searchsorted(starts, t, side="right") - 1
    return (k >= 0) & (t < ends[np.clip(k, 0, None)])


def frame_precision_recall(
    pred_segments: Sequence[Any], true_events: Sequence[Any], duration: float, hop: float = 0.01
) -> tuple[float, float]:
    """Frame-level (every ``hop`` s over ``[0, duration]``) precision and recall of predicted against true activity.

    ``true_events``: :class:`~soundmask.data.types.SoundEvent`, :class:`Segment` or (start, end) pairs. An empty
    prediction has precision 1; an empty truth has recall 1."""
    t = (np.arange(int(np.ceil(duration / hop))) + 0.5) * hop
    p, g = activity(pred_segments, t), activity(true_events, t)
    tp = float(np.sum(p & g))
    return (tp / p.sum() if p.any() else 1.0), (tp / g.sum() if g.any() else 1.0)
