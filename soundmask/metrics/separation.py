"""Source-separation scores: scale-invariant signal-to-distortion ratio (SI-SDR) and its improvement.

SI-SDR (Le Roux et al., "SDR — half-baked or well done?", ICASSP 2019), per channel, in dB: with the estimate
``ŝ`` and the reference ``s`` made zero-mean, ``α = ⟨ŝ, s⟩ / ⟨s, s⟩`` and

    SI-SDR = 10 log10( ‖α s‖² / ‖α s − ŝ‖² ).

It does not change when the estimate is scaled, and rewards only the part of the estimate along the reference.
Computed by torchmetrics (``scale_invariant_signal_distortion_ratio``, ``zero_mean=True``) in float64.

Signals are ``(samples,)`` or ``(channels, samples)`` (e.g. a stereo stem, channel 0 = left); :func:`si_sdr`
averages the per-channel values in dB (:func:`si_sdr_channels` gives them). The references of a generated scene
are its per-object stems (``soundmask.data.scene.load_object_audio``), which sum to the stereo mixture.

Scoring a scene's per-object signals (:func:`score_separation`, ``separation_*`` in ``soundmask lift --json`` and the
demo's ``metrics.json``): every sounding object that a tag found (:func:`soundmask.metrics.objects.score_objects`
pairs them) is scored with its tag's signal as the estimate and the **left channel** of its own stem as the
reference (the extracted signal is aligned with the left microphone), on the samples inside its sound events:

* ``separation_si_sdr_db`` — the mean over those objects of the SI-SDR on the samples where the object sounds;
* ``separation_si_sdri_db`` — the mean over the objects that sound together with another sounding object of the
  SI-SDR improvement over the mixture's left channel on those overlapping samples only (where separating is
  needed; alone, the mixture already is the object's signal and the improvement says little);
* ``separation_objects`` — per object: id, tag index, both values and the seconds scored.

Stretches shorter than ``min_seconds`` (0.25 s) are not scored, nor an object whose tag's signal is silent all the
time it sounds (``estimate_silent``: SI-SDR is 0 / 0 there); the values are None when nothing is scored (no
stems, nothing found, no signal).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from soundmask.errors import ConfigError

__all__ = ["SEPARATION_KEYS", "SeparationScores", "score_separation", "si_sdr", "si_sdr_channels", "si_sdr_improvement"]

SEPARATION_KEYS = ("separation_si_sdr_db", "separation_si_sdri_db")
"""The separation scores that ``soundmask lift --json`` and the demo's ``metrics.json`` report."""


def _pair(estimate: Any, reference: Any) -> tuple[np.ndarray, np.ndarray]:
    est = np.asarray(estimate, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if est.shape != ref.shape:
        raise ConfigError(
            f"estimate has shape {est.shape}, reference {ref.shape}", fix="cut both to the same channels and samples"
        )
    if est.ndim not in (1, 2) or est.shape[-1] < 2:
        raise ConfigError(f"signals must be (samples,) or (channels, samples) with >= 2 samples, got {est.shape}")
    if not (np.isfinite(est).all() and np.isfinite(ref).all()):
        raise ConfigError("estimate or reference has NaN or infinite samples")
    centred = ref - ref.mean(axis=-1, keepdims=True)
    silent = np.flatnonzero(np.all(centred.reshape(-1, ref.shape[-1]) == 0, axis=-1))
    if silent.size:
        raise ConfigError(
            f"reference channel {int(silent[0])} is silent (constant): SI-SDR is undefined",
            fix="score only stretches where the reference sounds",
        )
    return est, ref


def si_sdr_channels(estimate: Any, reference: Any) -> np.ndarray:
    """SI-SDR in dB per channel: float64 ``(channels,)`` for ``(channels, samples)`` inputs, ``()`` for ``(samples,)``.

    Both zero-mean first; the same shape required (:class:`ConfigError` otherwise, or for NaN/inf samples or a
    silent reference channel). A perfect estimate gives a very large value (≳ 150 dB, float64 rounding).
    """
    import torch
    from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio

    est, ref = _pair(estimate, reference)
    out = scale_invariant_signal_distortion_ratio(torch.from_numpy(est), torch.from_numpy(ref), zero_mean=True)
    return np.asarray(out.numpy(), dtype=np.float64)


def si_sdr(estimate: Any, reference: Any) -> float:
    """SI-SDR in dB, the mean over channels of :func:`si_sdr_channels` (one channel: its value)."""
    return float(np.mean(si_sdr_channels(estimate, reference)))


def si_sdr_improvement(estimate: Any, mixture: Any, reference: Any) -> float:
    """SI-SDRi in dB: ``si_sdr(estimate, reference) − si_sdr(mixture, reference)`` — what separating gained over
    using the mixture itself as the estimate (each term the channel mean)."""
    return si_sdr(estimate, reference) - si_sdr(mixture, reference)


@dataclass
class SeparationScores:
    """The per-object signal scores of one scene (module notes); ``objects`` one dict per scored object."""

    separation_si_sdr_db: float | None
    separation_si_sdri_db: float | None
    objects: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _event_mask(events: Sequence[tuple[float, float]], sr: float, n: int) -> np.ndarray:
    m = np.zeros(n, dtype=bool)
    for a, b in events:
        m[max(0, int(round(a * sr))) : max(0, min(n, int(round(b * sr))))] = True
    return m


def score_separation(
    estimates: Mapping[int, tuple[int, Any]],
    stems: Mapping[int, Any],
    mixture: Any,
    sr: float,
    events: Mapping[int, Sequence[tuple[float, float]]],
    min_seconds: float = 0.25,
) -> SeparationScores:
    """Score ``estimates`` (object id → (tag index, signal (S,))) against the left channel of ``stems`` (object id
    → (2, S) or (S,)) on the samples inside the object's ``events`` (object id → (start, end) s, every sounding
    object of the scene), and against the ``mixture``'s left channel where another object sounds too (module
    notes). Signals are cut to the shortest length."""
    mix = np.asarray(mixture, dtype=np.float64)
    mix = mix[0] if mix.ndim == 2 else mix
    rows, sdr, sdri = [], [], []
    for oid, (k, est_) in sorted(estimates.items()):
        if oid not in stems or est_ is None:
            continue
        ref = np.asarray(stems[oid], dtype=np.float64)
        ref = ref[0] if ref.ndim == 2 else ref
        est = np.asarray(est_, dtype=np.float64).ravel()
        n = min(ref.size, est.size, mix.size)
        own = _event_mask(events.get(oid, []), sr, n)
        others = np.zeros(n, dtype=bool)
        for j, ev in events.items():
            if j != oid:
                others |= _event_mask(ev, sr, n)
        both = own & others
        row: dict[str, Any] = {"object_id": int(oid), "tag": int(k), "seconds": round(float(own.sum() / sr), 3)}
        row["overlap_seconds"] = round(float(both.sum() / sr), 3)
        row["si_sdr_db"] = row["si_sdri_db"] = None
        row["estimate_silent"] = bool(own.any() and not np.any(est[:n][own]))
        if row["estimate_silent"]:  # the tag is silent while the object sounds: SI-SDR is undefined (0 / 0)
            rows.append(row)
            continue
        if own.sum() >= min_seconds * sr and np.ptp(ref[:n][own]) > 0:
            row["si_sdr_db"] = round(si_sdr(est[:n][own], ref[:n][own]), 3)
            sdr.append(row["si_sdr_db"])
        if both.sum() >= min_seconds * sr and np.ptp(ref[:n][both]) > 0:
            row["si_sdri_db"] = round(si_sdr_improvement(est[:n][both], mix[:n][both], ref[:n][both]), 3)
            sdri.append(row["si_sdri_db"])
        rows.append(row)
    return SeparationScores(
        round(float(np.mean(sdr)), 3) if sdr else None, round(float(np.mean(sdri)), 3) if sdri else None, rows
    )
