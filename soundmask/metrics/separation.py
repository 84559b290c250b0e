"""Source-separation scores: scale-invariant signal-to-distortion ratio (SI-SDR) and its improvement.

SI-SDR (Le Roux et al., "SDR — half-baked or well done?", ICASSP 2019), per channel, in dB: with the estimate
``ŝ`` and the reference ``s`` made zero-mean, ``α = ⟨ŝ, s⟩ / ⟨s, s⟩`` and

    SI-SDR = 10 log10( ‖α s‖² / ‖α s − ŝ‖² ).

It does not change when the estimate is scaled, and rewards only the part of the estimate along the reference.
Computed by torchmetrics (``scale_invariant_signal_distortion_ratio``, ``zero_mean=True``) in float64.

Signals are ``(samples,)`` or ``(channels, samples)`` (e.g. a stereo stem, channel 0 = left); :func:`si_sdr`
averages the per-channel values in dB (:func:`si_sdr_channels` gives them). The references of a generated scene
are its per-object stems (``soundmask.data.scene.load_object_audio``), which sum to the stereo mixture.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from soundmask.errors import ConfigError

__all__ = ["si_sdr", "si_sdr_channels", "si_sdr_improvement"]


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
